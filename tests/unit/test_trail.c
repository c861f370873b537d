/*
 * test_trail - Received parsing on real-world lines and the trusted walk
 * that finds the hop where a message entered the organisation.
 */
#include "mime/trail.h"

#include <glib.h>
#include <string.h>

struct hop_case {
	const char *value;
	int ret;
	const char *helo, *rdns, *ip, *by, *proto;
	bool authenticated;
	const char *auth_user;
};

static const struct hop_case hop_cases[] = {
	/* Postfix */
	{ " from helo.example (rdns.example [203.0.113.5]) by mail.example.com (Postfix) with ESMTPS id ABC for <x@y>; Mon, 1 Jan 2024 00:00:00 +0000",
	  0, "helo.example", "rdns.example", "203.0.113.5", "mail.example.com", "ESMTPS", false, "" },
	{ " from www.wormly.com (unknown [184.72.226.23])\r\n\tby mail.example.com (Postfix) with ESMTP id 4T1; Tue, 2 Jan 2024 10:00:00 +0000",
	  0, "www.wormly.com", "", "184.72.226.23", "mail.example.com", "ESMTP", false, "" },
	{ " from v6.example (v6.example [IPv6:2001:db8::1]) by mail.example.com (Postfix) with ESMTP id X; d",
	  0, "v6.example", "v6.example", "2001:db8::1", "mail.example.com", "ESMTP", false, "" },
	{ " from laptop (unknown [198.51.100.7]) (Authenticated sender: alice@example.com) by mail.example.com (Postfix) with ESMTPSA id Y; d",
	  0, "laptop", "", "198.51.100.7", "mail.example.com", "ESMTPSA", true, "alice@example.com" },
	{ " from laptop (unknown [198.51.100.7]) by mail.example.com (Postfix) with ESMTPA id Y; d",
	  0, "laptop", "", "198.51.100.7", "mail.example.com", "ESMTPA", true, "" },
	{ " from m (m.example [::ffff:1.2.3.4]) by mail.example.com (Postfix) with esmtpsa id Z; d",
	  0, "m", "m.example", "1.2.3.4", "mail.example.com", "esmtpsa", true, "" },
	{ " from m (unknown [IPv6:::ffff:1.2.3.4]) by mail.example.com (Postfix) with ESMTP id Z; d",
	  0, "m", "", "1.2.3.4", "mail.example.com", "ESMTP", false, "" },
	{ " from [10.1.2.3] (unknown [203.0.113.9]) by mail.example.com (Postfix) with ESMTP id Q; d",
	  0, "[10.1.2.3]", "", "203.0.113.9", "mail.example.com", "ESMTP", false, "" },
	{ " by mail.example.com (Postfix, from userid 1000)\n\tid 4ABC; Mon, 1 Jan 2024", 0, "", "", "", "mail.example.com", "", false, "" },
	{ " from localhost (localhost [127.0.0.1]) by mail.example.com (Postfix) with ESMTP id R; d",
	  0, "localhost", "localhost", "127.0.0.1", "mail.example.com", "ESMTP", false, "" },
	/* a claim in a comment is no authentication: the protocol says ESMTP */
	{ " from laptop (unknown [198.51.100.7]) (Authenticated sender: alice@example.com) by mail.example.com (Postfix) with ESMTP id Y; d",
	  0, "laptop", "", "198.51.100.7", "mail.example.com", "ESMTP", false, "" },
	{ " from laptop (authenticated bits=0) (unknown [198.51.100.7]) by mail.example.com (Postfix) with ESMTP id Y; d",
	  0, "laptop", "", "198.51.100.7", "mail.example.com", "ESMTP", false, "" },
	{ " from helo (rdns.example [192.0.2.4]) (authenticated bits=0) by mx.example.org (8.17.1/8.17.1) with ESMTPS id 1; d",
	  0, "helo", "rdns.example", "192.0.2.4", "mx.example.org", "ESMTPS", false, "" },
	/* Sendmail */
	{ " from helo.example (rdns.example [192.0.2.4]) by mx.example.org (8.15.2/8.15.2) with ESMTP id 123; d",
	  0, "helo.example", "rdns.example", "192.0.2.4", "mx.example.org", "ESMTP", false, "" },
	{ " from helo.example ([192.0.2.4]) by mx.example.org (8.15.2/8.15.2) with ESMTP id 123; d",
	  0, "helo.example", "", "192.0.2.4", "mx.example.org", "ESMTP", false, "" },
	{ " from helo.example (liar.example [192.0.2.4] (may be forged)) by mx.example.org (8.15.2/8.15.2) with ESMTP id 1; d",
	  0, "helo.example", "", "192.0.2.4", "mx.example.org", "ESMTP", false, "" },
	{ " from helo (ident@rdns.example [192.0.2.4]) (authenticated bits=0) by mx.example.org (8.17.1/8.17.1) with ESMTPSA id 1; d",
	  0, "helo", "rdns.example", "192.0.2.4", "mx.example.org", "ESMTPSA", true, "" },
	/* Exim */
	{ " from rdns.example ([198.51.100.2] helo=helo.example) by exim.example.net with esmtp (Exim 4.96) (envelope-from <a@b.example>) id 1r; d",
	  0, "helo.example", "rdns.example", "198.51.100.2", "exim.example.net", "esmtp", false, "" },
	{ " from rdns.example ([198.51.100.2]) by exim.example.net with esmtp (Exim 4.96) id 1r; d",
	  0, "rdns.example", "rdns.example", "198.51.100.2", "exim.example.net", "esmtp", false, "" },
	{ " from [198.51.100.2] (helo=x.example) by exim.example.net with esmtpsa (TLS1.3) tls TLS_AES_256_GCM_SHA384 (Exim 4.96) id 1r; d",
	  0, "x.example", "", "198.51.100.2", "exim.example.net", "esmtpsa", true, "" },
	{ " from [198.51.100.2] (port=4312 helo=x.example) by exim.example.net with esmtp (Exim 4.94.2) id 1r; d",
	  0, "x.example", "", "198.51.100.2", "exim.example.net", "esmtp", false, "" },
	{ " from rdns.example ([2001:db8::25]:587 helo=h) by exim.example.net with esmtp (Exim 4.96) id 1; d",
	  0, "h", "rdns.example", "2001:db8::25", "exim.example.net", "esmtp", false, "" },
	/* Dovecot LMTP */
	{ " from mail.example.com ([127.0.0.1])\n\tby mail.example.com with LMTP\n\tid abc (envelope-from <a@b>)\n\tfor <c@d>; d",
	  0, "mail.example.com", "", "127.0.0.1", "mail.example.com", "LMTP", false, "" },
	/* Gmail-style: trailing dot in the reverse name, "for" before the date */
	{ " from mail-sor-f41.google.com (mail-sor-f41.google.com. [209.85.220.41]) by mx.google.com with SMTPS id s1sor for <a@b> (Google Transport Security); d",
	  0, "mail-sor-f41.google.com", "mail-sor-f41.google.com.", "209.85.220.41", "mx.google.com", "SMTPS", false, "" },
	/* nested comments, no "from", odd spacing */
	{ " by mail.example.com (Postfix (really (yes))) with ESMTP id Q ; d", 0, "", "", "", "mail.example.com", "ESMTP", false, "" },
	{ "from h (r [192.0.2.1])by mail.example.com(Postfix)with ESMTP;d", 0, "h", "r", "192.0.2.1", "mail.example.com", "ESMTP", false, "" },
	/* a date without "for"/"id", semicolons in an address */
	{ " from h (r [192.0.2.1]) by mail.example.com with ESMTP for <\"a;b\"@example.com>; d", 0, "h", "r", "192.0.2.1", "mail.example.com", "ESMTP", false, "" },
	/* garbled */
	{ " from h (r [192.0.2.1] by mail.example.com with ESMTP; d", -1, "", "", "", "", "", false, "" },
	{ " from h r [192.0.2.1]) by mail.example.com with ESMTP; d", -1, "", "", "", "", "", false, "" },
	{ " from h (r [192.0.2.1", -1, "", "", "", "", "", false, "" },
	{ " from h (r [192.0.2.1]) by", -1, "", "", "", "", "", false, "" },
	{ " from (r [192.0.2.1]) by mail.example.com; d", -1, "", "", "", "", "", false, "" },
	{ " from h (r [192.0.2.1]) by a.example by mail.example.com with ESMTP; d", -1, "", "", "", "", "", false, "" },
	{ " from h (r [192.0.2.1]) from h2 (r [192.0.2.2]) by mail.example.com; d", -1, "", "", "", "", "", false, "" },
	{ " from h (r [192.0.2.1) by mail.example.com; d", -1, "", "", "", "", "", false, "" },
	/* not an address literal: parsed, but no client address */
	{ " from h (r [not.an.ip]) by mail.example.com with ESMTP; d", 0, "h", "r", "", "mail.example.com", "ESMTP", false, "" },
	{ " from h (r [192.0.2.300]) by mail.example.com with ESMTP; d", 0, "h", "r", "", "mail.example.com", "ESMTP", false, "" },
	{ "", 0, "", "", "", "", "", false, "" },
};

static void test_parse_table(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(hop_cases); i++) {
		const struct hop_case *c = &hop_cases[i];
		struct received_hop hop;

		g_test_message("case %zu: %s", i, c->value);
		g_assert_cmpint(trail_parse_received(c->value, &hop), ==, c->ret);
		g_assert_cmpstr(hop.from_helo, ==, c->helo);
		g_assert_cmpstr(hop.from_rdns, ==, c->rdns);
		g_assert_cmpstr(hop.from_ip, ==, c->ip);
		g_assert_cmpstr(hop.by_host, ==, c->by);
		g_assert_cmpstr(hop.with_proto, ==, c->proto);
		g_assert_cmpint(hop.authenticated, ==, c->authenticated);
		g_assert_cmpstr(hop.auth_user, ==, c->auth_user);
	}
}

static void test_local_submission_flag(void)
{
	struct received_hop hop;

	g_assert_cmpint(trail_parse_received(" by mail.example.com (Postfix, from userid 1000) id 4ABC; d", &hop), ==, 0);
	g_assert_true(hop.local_submission);
	g_assert_cmpint(trail_parse_received(" by mail.example.com (Postfix) id 4ABC; d", &hop), ==, 0);
	g_assert_false(hop.local_submission);
}

static void test_overlong_value_is_garbled(void)
{
	GString *s = g_string_new(" from ");
	struct received_hop hop;

	for (int i = 0; i < 300; i++)
		g_string_append_c(s, 'a');
	g_string_append(s, " (r [192.0.2.1]) by mail.example.com with ESMTP; d");
	g_assert_cmpint(trail_parse_received(s->str, &hop), ==, -1);
	g_string_free(s, TRUE);
}

/* ---- the trusted walk ---- */

static bool trusted_prefixes(void *ctx, const char *ip)
{
	const char *const *prefixes = ctx;

	for (size_t i = 0; prefixes[i] != NULL; i++)
		if (g_str_has_prefix(ip, prefixes[i]) || strcmp(ip, prefixes[i]) == 0)
			return true;
	return false;
}

static const char *const trusted_nets[] = { "127.", "::1", "10.0.0.", NULL };
static char *ours[] = { "mail.example.com", "MX2.Example.COM." };

static void facts_of(const char *headers, struct conn_facts *f)
{
	struct header_block *block = NULL;
	g_autofree char *error = NULL;

	g_assert_cmpint(header_block_parse(headers, strlen(headers), &block, &error), ==, 0);
	g_assert_cmpint(trail_facts(block, ours, G_N_ELEMENTS(ours), trusted_prefixes, (void *)trusted_nets, f), ==, 0);
	header_block_free(&block);
}

static void test_direct_border(void)
{
	struct conn_facts f;

	facts_of("Received: from www.wormly.com (unknown [184.72.226.23])\r\n"
		 "\tby mail.example.com (Postfix) with ESMTP id 4T1; Tue, 2 Jan 2024\r\n"
		 "Received: from forged (forged [10.0.0.9]) by mail.example.com (Postfix) with ESMTPA; d\r\n"
		 "From: x@example.com\r\n\r\n", &f);
	g_assert_cmpint(f.source, ==, FACTS_TRAIL);
	g_assert_cmpstr(f.client_ip, ==, "184.72.226.23");
	g_assert_cmpstr(f.helo, ==, "www.wormly.com");
	g_assert_cmpstr(f.rdns, ==, "");
	g_assert_false(f.authenticated);
	g_assert_false(f.all_trusted);
}

static void test_backup_mx_walked_past(void)
{
	struct conn_facts f;

	facts_of("Received: from mx2.example.com (mx2.example.com [10.0.0.2]) by mail.example.com (Postfix) with ESMTP id A; d\n"
		 "Received: from sender.example.org (out.example.org [198.51.100.20]) by mx2.example.com (Postfix) with ESMTPS id B; d\n"
		 "Received: from forged (forged [192.0.2.99]) by mail.example.com (Postfix) with ESMTP id C; d\n"
		 "Subject: s\n\n", &f);
	g_assert_cmpint(f.source, ==, FACTS_TRAIL);
	g_assert_cmpstr(f.client_ip, ==, "198.51.100.20");
	g_assert_cmpstr(f.helo, ==, "sender.example.org");
	g_assert_cmpstr(f.rdns, ==, "out.example.org");
}

static void test_content_filter_reinjection_walked_past(void)
{
	struct conn_facts f;

	facts_of("Received: from localhost (localhost [127.0.0.1]) by mail.example.com (Postfix) with ESMTP id A; d\n"
		 "Received: from mail.example.com ([127.0.0.1]) by localhost (mail.example.com [127.0.0.1]) (amavisd-new, port 10024) with ESMTP id x; d\n"
		 "Received: from h.example.net (h.example.net [IPv6:2001:db8::5]) by mail.example.com (Postfix) with ESMTP id B; d\n"
		 "\n", &f);
	g_assert_cmpint(f.source, ==, FACTS_TRAIL);
	g_assert_cmpstr(f.client_ip, ==, "2001:db8::5");
	g_assert_cmpstr(f.helo, ==, "h.example.net");
}

static void test_authenticated_submission(void)
{
	struct conn_facts f;

	facts_of("Received: from laptop (unknown [198.51.100.7])\n\t(Authenticated sender: alice)\n"
		 "\tby mail.example.com (Postfix) with ESMTPSA id Y; d\n\n", &f);
	g_assert_cmpint(f.source, ==, FACTS_TRAIL);
	g_assert_true(f.authenticated);
	g_assert_cmpstr(f.auth_user, ==, "alice");
	g_assert_cmpstr(f.client_ip, ==, "198.51.100.7");

	/* Postfix's default: no "Authenticated sender" comment, the protocol says it */
	facts_of("Received: from laptop (unknown [198.51.100.7])\n"
		 "\tby mail.example.com (Postfix) with ESMTPA id Y; d\n\n", &f);
	g_assert_true(f.authenticated);
	g_assert_cmpstr(f.auth_user, ==, "");

	/* webmail on localhost, authenticated: the border is that hop, not "all trusted" */
	facts_of("Received: from webmail (localhost [127.0.0.1]) by mail.example.com (Postfix) with ESMTPA id Y; d\n\n", &f);
	g_assert_cmpint(f.source, ==, FACTS_TRAIL);
	g_assert_true(f.authenticated);
	g_assert_false(f.all_trusted);
}

/* Only our MTA's line for the border hop says whether the client
 * authenticated: everything below it, and comments in it, the sender can write. */
static void test_forged_authentication_not_believed(void)
{
	static const char *const blocks[] = {
		/* an ESMTPSA line below ours, for the same client address */
		"Received: from evil (unknown [198.51.100.7]) by mail.example.com (Postfix) with ESMTP id A; d\n"
		"Received: from laptop (unknown [198.51.100.7])\n\t(Authenticated sender: alice)\n"
		"\tby mail.example.com (Postfix) with ESMTPSA id B; d\n\n",
		/* the same below a trusted hop of ours and an untrusted one */
		"Received: from lo (localhost [127.0.0.1]) by mail.example.com (Postfix) with ESMTP id A; d\n"
		"Received: from evil (unknown [203.0.113.66]) by mx2.example.com (Postfix) with ESMTP id B; d\n"
		"Received: from laptop (unknown [198.51.100.7]) by mail.example.com (Postfix) with ESMTPSA id C; d\n\n",
		/* our line claims it only in comments */
		"Received: from laptop (unknown [198.51.100.7]) (Authenticated sender: alice)\n"
		"\tby mail.example.com (Postfix) with ESMTP id A; d\n\n",
		"Received: from laptop (authenticated) (unknown [198.51.100.7]) by mail.example.com (Postfix) with ESMTP id A; d\n\n",
	};

	for (size_t i = 0; i < G_N_ELEMENTS(blocks); i++) {
		struct conn_facts f;

		g_test_message("block %zu", i);
		facts_of(blocks[i], &f);
		g_assert_cmpint(f.source, ==, FACTS_TRAIL);
		g_assert_false(f.authenticated);
		g_assert_cmpstr(f.auth_user, ==, "");
		g_assert_false(f.all_trusted);
	}
}

static void test_all_trusted(void)
{
	struct conn_facts f;

	facts_of("Received: from localhost (localhost [127.0.0.1]) by mail.example.com (Postfix) with ESMTP id A; d\n"
		 "Received: from app (app [10.0.0.7]) by mx2.example.com (Postfix) with SMTP id B; d\n\n", &f);
	g_assert_cmpint(f.source, ==, FACTS_TRAIL);
	g_assert_true(f.all_trusted);
	g_assert_cmpstr(f.client_ip, ==, "10.0.0.7");
	g_assert_cmpstr(f.reason, !=, "");

	facts_of("Received: from localhost (localhost [127.0.0.1]) by mail.example.com (Postfix) with ESMTP id A; d\n"
		 "Received: by mail.example.com (Postfix, from userid 33) id B; d\n\n", &f);
	g_assert_cmpint(f.source, ==, FACTS_TRAIL);
	g_assert_true(f.all_trusted);
	g_assert_nonnull(strstr(f.reason, "host itself"));
}

static void test_no_facts(void)
{
	static const char *const blocks[] = {
		/* no Received at all */
		"From: a@b\nSubject: s\n\n",
		/* topmost Received not ours (forged or unlisted MTA) */
		"Received: from x (x [192.0.2.1]) by evil.example (Postfix) with ESMTP; d\n"
		"Received: from y (y [198.51.100.1]) by mail.example.com (Postfix) with ESMTP; d\n\n",
		/* garbled top hop */
		"Received: from x (x [192.0.2.1] by mail.example.com (Postfix) with ESMTP; d\n\n",
		/* ours but no address */
		"Received: from x (x) by mail.example.com (Postfix) with ESMTP; d\n\n",
		/* below a trusted relay, a field by an unlisted host with an untrusted client */
		"Received: from mx3 (mx3 [10.0.0.3]) by mail.example.com (Postfix) with ESMTP; d\n"
		"Received: from evil (evil [192.0.2.66]) by mx3.example.com (Postfix) with ESMTP; d\n"
		"Received: from good (good [198.51.100.1]) by mail.example.com (Postfix) with ESMTP; d\n\n",
		/* garbled below a trusted hop */
		"Received: from lo (lo [127.0.0.1]) by mail.example.com (Postfix) with ESMTP; d\n"
		"Received: from x (x [[192.0.2.1] by mail.example.com; d\n\n",
	};

	for (size_t i = 0; i < G_N_ELEMENTS(blocks); i++) {
		struct conn_facts f;

		facts_of(blocks[i], &f);
		g_test_message("block %zu: %s", i, f.reason);
		g_assert_cmpint(f.source, ==, FACTS_NONE);
		g_assert_cmpstr(f.client_ip, ==, "");
		g_assert_cmpstr(f.reason, !=, "");
	}
}

static int hops_examined;

static bool counting_trusted(void *ctx, const char *ip)
{
	hops_examined++;
	return true;
}

/* a thousand trusted hops cost no more than TRAIL_HOPS_MAX parses */
static void test_thousand_hops_bounded(void)
{
	GString *s = g_string_new("");
	struct header_block *block = NULL;
	g_autofree char *error = NULL;
	struct conn_facts f;

	for (int i = 0; i < 1000; i++)
		g_string_append_printf(s, "Received: from h%d (h%d [127.0.0.%d]) by mail.example.com (Postfix) with ESMTP; d\n",
				       i, i, i % 250 + 1);
	g_string_append(s, "\n");
	header_block_parse(s->str, s->len, &block, &error);
	hops_examined = 0;
	g_assert_cmpint(trail_facts(block, ours, 1, counting_trusted, NULL, &f), ==, 0);
	g_assert_cmpint(f.source, ==, FACTS_NONE);
	g_assert_cmpint(hops_examined, ==, TRAIL_HOPS_MAX);
	g_assert_nonnull(strstr(f.reason, "longer than"));
	header_block_free(&block);
	g_string_free(s, TRUE);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/trail/parse_table", test_parse_table);
	g_test_add_func("/trail/local_submission_flag", test_local_submission_flag);
	g_test_add_func("/trail/overlong_value_is_garbled", test_overlong_value_is_garbled);
	g_test_add_func("/trail/direct_border", test_direct_border);
	g_test_add_func("/trail/backup_mx_walked_past", test_backup_mx_walked_past);
	g_test_add_func("/trail/content_filter_reinjection_walked_past", test_content_filter_reinjection_walked_past);
	g_test_add_func("/trail/authenticated_submission", test_authenticated_submission);
	g_test_add_func("/trail/forged_authentication_not_believed", test_forged_authentication_not_believed);
	g_test_add_func("/trail/all_trusted", test_all_trusted);
	g_test_add_func("/trail/no_facts", test_no_facts);
	g_test_add_func("/trail/thousand_hops_bounded", test_thousand_hops_bounded);
	return g_test_run();
}
