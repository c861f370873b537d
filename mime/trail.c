/*
 * trail - parse Received fields and find the border hop
 *
 * Owns nothing beyond the call: values are unfolded into temporary
 * buffers, tokens point into them.
 * Limits: TRAIL_HOPS_MAX Received fields per message, TRAIL_TOKENS_MAX
 * top-level tokens and TRAIL_COMMENT_WORDS_MAX words per comment; more
 * makes the field garbled (no facts), never a guess.
 *
 * Grammar handled (RFC 5321 4.4 as written by real MTAs): a sequence of
 * words and (nested, backslash-escaped) comments up to the first ";" at
 * the top level (the date follows). The words "from", "by", "via", "with",
 * "id", "for" start clauses; the next word is the clause's value and the
 * comments after it belong to that clause. Other words are ignored.
 */
#include "mime/trail.h"
#include "mime/ipaddr.h"

#include <arpa/inet.h>
#include <glib.h>
#include <string.h>

#define TRAIL_TOKENS_MAX 128
#define TRAIL_COMMENT_WORDS_MAX 32
#define TRAIL_COMMENTS_MAX 16

enum token_type { TOKEN_WORD, TOKEN_COMMENT };

struct token {
	enum token_type type;
	const char *s;   /* a word, or a comment's inside without the outer parentheses */
	size_t len;
};

struct clauses {
	const struct token *from, *by, *with;
	const struct token *from_comments[TRAIL_COMMENTS_MAX];
	size_t from_comment_count;
	const struct token *comments[TRAIL_COMMENTS_MAX]; /* every top-level comment */
	size_t comment_count;
	bool by_exim;
	bool by_local_userid;
};

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* scan_comment - s[*i] is "(": move *i past the matching ")"; -1 when unbalanced */
static int scan_comment(const char *s, size_t *i)
{
	size_t depth = 0;

	for (; s[*i] != '\0'; (*i)++) {
		if (s[*i] == '\\' && s[*i + 1] != '\0')
			(*i)++;
		else if (s[*i] == '(')
			depth++;
		else if (s[*i] == ')' && --depth == 0) {
			(*i)++;
			return 0;
		}
	}
	return -1;
}

/* scan_word - a word runs to whitespace, "(", ")" or ";"; inside <...>,
 * [...] and "..." those are part of it. -1 when one is left open. */
static int scan_word(const char *s, size_t *i)
{
	char close = '\0';

	for (; s[*i] != '\0'; (*i)++) {
		char c = s[*i];

		if (close != '\0') {
			if (c == '\\' && close == '"' && s[*i + 1] != '\0')
				(*i)++;
			else if (c == close)
				close = '\0';
			continue;
		}
		if (is_wsp(c) || c == '(' || c == ')' || c == ';')
			break;
		if (c == '<')
			close = '>';
		else if (c == '[')
			close = ']';
		else if (c == '"')
			close = '"';
	}
	return close == '\0' ? 0 : -1;
}

static int tokenize(const char *s, struct token *tokens, size_t *count_r)
{
	size_t i = 0, n = 0;

	for (;;) {
		size_t start;

		while (is_wsp(s[i]))
			i++;
		if (s[i] == '\0' || s[i] == ';')
			break;
		if (s[i] == ')' || n == TRAIL_TOKENS_MAX)
			return -1;
		start = i;
		if (s[i] == '(') {
			if (scan_comment(s, &i) < 0)
				return -1;
			tokens[n++] = (struct token){ TOKEN_COMMENT, s + start + 1, i - start - 2 };
		} else {
			if (scan_word(s, &i) < 0)
				return -1;
			tokens[n++] = (struct token){ TOKEN_WORD, s + start, i - start };
		}
	}
	*count_r = n;
	return 0;
}

static bool token_is(const struct token *t, const char *word)
{
	size_t len = strlen(word);

	return t->type == TOKEN_WORD && t->len == len && g_ascii_strncasecmp(t->s, word, len) == 0;
}

static bool has_prefix_ci(const char *s, size_t len, const char *prefix)
{
	size_t plen = strlen(prefix);

	return len >= plen && g_ascii_strncasecmp(s, prefix, plen) == 0;
}

/* note_mta_comment - the MTA names itself in a comment after by/with */
static void note_mta_comment(struct clauses *c, const struct token *t)
{
	if (has_prefix_ci(t->s, t->len, "Exim "))
		c->by_exim = true;
	if (has_prefix_ci(t->s, t->len, "Postfix, from userid"))
		c->by_local_userid = true;
}

/* collect_clauses - assign values and comments to the from/by/with clauses */
static int collect_clauses(const struct token *tokens, size_t n, struct clauses *c)
{
	static const char *const keywords[] = { "from", "by", "via", "with", "id", "for" };
	const char *clause = NULL;

	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < n; i++) {
		const struct token *t = &tokens[i];
		const char *kw = NULL;

		if (t->type == TOKEN_COMMENT) {
			if (c->comment_count == TRAIL_COMMENTS_MAX)
				return -1;
			c->comments[c->comment_count++] = t;
			if (clause != NULL && strcmp(clause, "from") == 0)
				c->from_comments[c->from_comment_count++] = t;
			else if (clause != NULL)
				note_mta_comment(c, t); /* "(Exim 4.96)" follows "with" */
			continue;
		}
		for (size_t k = 0; k < G_N_ELEMENTS(keywords) && kw == NULL; k++)
			if (token_is(t, keywords[k]))
				kw = keywords[k];
		if (kw == NULL)
			continue;
		clause = kw;
		if (i + 1 == n || tokens[i + 1].type != TOKEN_WORD) {
			if (strcmp(kw, "from") == 0 || strcmp(kw, "by") == 0 || strcmp(kw, "with") == 0)
				return -1;
			continue;
		}
		i++;
		if (strcmp(kw, "from") == 0 || strcmp(kw, "by") == 0 || strcmp(kw, "with") == 0) {
			const struct token **slot = kw[0] == 'f' ? &c->from : kw[0] == 'b' ? &c->by : &c->with;

			if (*slot != NULL)
				return -1;
			*slot = &tokens[i];
		}
	}
	return 0;
}

static int copy_text(char *dst, size_t size, const char *s, size_t len)
{
	if (len >= size)
		return -1;
	memcpy(dst, s, len);
	dst[len] = '\0';
	return 0;
}

/* literal_ip - "[addr]" or "[addr]:port" to a normalised address */
static int literal_ip(const char *s, size_t len, char *out, size_t size)
{
	const char *close;

	if (len < 2 || s[0] != '[')
		return -1;
	close = memchr(s, ']', len);
	if (close == NULL)
		return -1;
	return ipaddr_normalise(s + 1, (size_t)(close - s - 1), out, size);
}

struct comment_words {
	struct token words[TRAIL_COMMENT_WORDS_MAX];
	size_t count;
};

static int split_comment(const struct token *comment, struct comment_words *w)
{
	char *copy = g_strndup(comment->s, comment->len);
	size_t i = 0;
	int ret = 0;

	w->count = 0;
	for (;;) {
		size_t start;

		while (is_wsp(copy[i]))
			i++;
		if (copy[i] == '\0')
			break;
		if (w->count == TRAIL_COMMENT_WORDS_MAX) {
			ret = -1;
			break;
		}
		start = i;
		if (copy[i] == '(') {
			if (scan_comment(copy, &i) < 0) {
				ret = -1;
				break;
			}
			w->words[w->count++] = (struct token){ TOKEN_COMMENT, comment->s + start + 1, i - start - 2 };
			continue;
		}
		while (copy[i] != '\0' && !is_wsp(copy[i]) && copy[i] != '(')
			i++;
		w->words[w->count++] = (struct token){ TOKEN_WORD, comment->s + start, i - start };
	}
	g_free(copy);
	return ret;
}

/* from_comment - read "(R [IP] helo=H (may be forged))"-style comments */
static int from_comment(const struct token *comment, struct received_hop *hop, bool *helo_given,
			bool *rdns_given)
{
	struct comment_words w;
	bool forged = false;

	if (split_comment(comment, &w) < 0)
		return -1;
	for (size_t i = 0; i < w.count; i++) {
		const struct token *t = &w.words[i];

		if (t->type == TOKEN_COMMENT) {
			forged = forged || has_prefix_ci(t->s, t->len, "may be forged");
		} else if (has_prefix_ci(t->s, t->len, "helo=")) {
			if (copy_text(hop->from_helo, sizeof(hop->from_helo), t->s + 5, t->len - 5) < 0)
				return -1;
			*helo_given = true;
		} else if (t->s[0] == '[' && hop->from_ip[0] == '\0') {
			if (memchr(t->s, ']', t->len) == NULL)
				return -1;
			if (literal_ip(t->s, t->len, hop->from_ip, sizeof(hop->from_ip)) < 0)
				hop->from_ip[0] = '\0';
			if (i > 0 && w.words[i - 1].type == TOKEN_WORD && memchr(w.words[i - 1].s, '=', w.words[i - 1].len) == NULL) {
				const char *r = w.words[i - 1].s;
				size_t rlen = w.words[i - 1].len;
				const char *at = memchr(r, '@', rlen); /* Sendmail ident: user@host */

				if (at != NULL) {
					rlen -= (size_t)(at + 1 - r);
					r = at + 1;
				}
				if (copy_text(hop->from_rdns, sizeof(hop->from_rdns), r, rlen) < 0)
					return -1;
				*rdns_given = true;
			}
		}
	}
	if (forged || g_ascii_strcasecmp(hop->from_rdns, "unknown") == 0)
		hop->from_rdns[0] = '\0';
	return 0;
}

static int parse_from(const struct clauses *c, struct received_hop *hop)
{
	bool helo_given = false, rdns_given = false;
	const struct token *from = c->from;

	for (size_t i = 0; i < c->from_comment_count; i++) {
		const struct token *t = c->from_comments[i];

		bool relevant = (memchr(t->s, '[', t->len) != NULL && hop->from_ip[0] == '\0') ||
				g_strstr_len(t->s, (gssize)t->len, "helo=") != NULL;

		if (relevant && from_comment(t, hop, &helo_given, &rdns_given) < 0)
			return -1;
	}
	if (from->s[0] == '[') {
		/* Exim without a reverse name: "from [IP] (helo=H)" */
		if (hop->from_ip[0] == '\0' && literal_ip(from->s, from->len, hop->from_ip, sizeof(hop->from_ip)) < 0)
			hop->from_ip[0] = '\0';
		if (!helo_given && copy_text(hop->from_helo, sizeof(hop->from_helo), from->s, from->len) < 0)
			return -1;
		return 0;
	}
	if (helo_given || (c->by_exim && !rdns_given)) {
		/* Exim: "from R ([IP] helo=H)", or "from R ([IP])" when H equals R */
		if (copy_text(hop->from_rdns, sizeof(hop->from_rdns), from->s, from->len) < 0)
			return -1;
		if (!helo_given)
			memcpy(hop->from_helo, hop->from_rdns, sizeof(hop->from_helo));
		return 0;
	}
	return copy_text(hop->from_helo, sizeof(hop->from_helo), from->s, from->len);
}

/* parse_auth - an authenticated client: the RFC 3848 protocol in "with"
 * (ESMTPA, ESMTPSA and kin). That clause follows "by" and holds nothing the
 * client sent, and a second one makes the field garbled, so the client
 * cannot claim it. Comments can be the client's words, copied by an MTA
 * that writes the HELO argument unfiltered ("from x (authenticated) ...";
 * Postfix turns blanks and parentheses into '?', not every MTA does): they
 * never make a hop authenticated. Postfix's "(Authenticated sender: u)"
 * only names the user of a hop the protocol already says is authenticated. */
static int parse_auth(const struct clauses *c, struct received_hop *hop)
{
	static const char *const auth_protocols[] = {
		"ESMTPA", "ESMTPSA", "LMTPA", "LMTPSA", "UTF8SMTPA", "UTF8SMTPSA", "UTF8LMTPA", "UTF8LMTPSA",
	};

	for (size_t i = 0; i < G_N_ELEMENTS(auth_protocols) && c->with != NULL; i++)
		if (token_is(c->with, auth_protocols[i]))
			hop->authenticated = true;
	for (size_t i = 0; i < c->comment_count && hop->authenticated; i++) {
		const struct token *t = c->comments[i];
		static const char prefix[] = "Authenticated sender:";
		const char *u;
		size_t ulen;

		if (!has_prefix_ci(t->s, t->len, prefix))
			continue;
		u = t->s + strlen(prefix);
		ulen = t->len - strlen(prefix);
		while (ulen > 0 && is_wsp(*u)) {
			u++;
			ulen--;
		}
		while (ulen > 0 && is_wsp(u[ulen - 1]))
			ulen--;
		if (copy_text(hop->auth_user, sizeof(hop->auth_user), u, ulen) < 0)
			return -1;
	}
	return 0;
}

int trail_parse_received(const char *value, struct received_hop *hop_r)
{
	struct token tokens[TRAIL_TOKENS_MAX];
	struct clauses c;
	size_t n = 0;

	memset(hop_r, 0, sizeof(*hop_r));
	if (tokenize(value, tokens, &n) < 0 || collect_clauses(tokens, n, &c) < 0)
		goto garbled;
	if (c.by != NULL && copy_text(hop_r->by_host, sizeof(hop_r->by_host), c.by->s, c.by->len) < 0)
		goto garbled;
	if (c.with != NULL && copy_text(hop_r->with_proto, sizeof(hop_r->with_proto), c.with->s, c.with->len) < 0)
		goto garbled;
	if (c.from != NULL && parse_from(&c, hop_r) < 0)
		goto garbled;
	if (parse_auth(&c, hop_r) < 0)
		goto garbled;
	hop_r->local_submission = c.from == NULL && c.by_local_userid;
	return 0;
garbled:
	memset(hop_r, 0, sizeof(*hop_r));
	return -1;
}

static bool host_is_ours(const char *host, char *const *names, size_t count)
{
	size_t hlen = strlen(host);

	if (hlen > 0 && host[hlen - 1] == '.')
		hlen--;
	for (size_t i = 0; i < count; i++) {
		size_t nlen = strlen(names[i]);

		if (nlen > 0 && names[i][nlen - 1] == '.')
			nlen--;
		if (hlen > 0 && nlen == hlen && g_ascii_strncasecmp(host, names[i], hlen) == 0)
			return true;
	}
	return false;
}

static void facts_from_hop(struct conn_facts *f, const struct received_hop *hop)
{
	f->source = FACTS_TRAIL;
	g_strlcpy(f->client_ip, hop->from_ip, sizeof(f->client_ip));
	g_strlcpy(f->helo, hop->from_helo, sizeof(f->helo));
	g_strlcpy(f->rdns, hop->from_rdns, sizeof(f->rdns));
	f->authenticated = hop->authenticated;
	g_strlcpy(f->auth_user, hop->auth_user, sizeof(f->auth_user));
}

static void no_facts(struct conn_facts *f, const char *reason, const char *host)
{
	memset(f, 0, sizeof(*f));
	f->source = FACTS_NONE;
	g_snprintf(f->reason, sizeof(f->reason), "%s%s%.100s", reason, host != NULL ? ": " : "",
		 host != NULL ? host : "");
}

struct walk {
	size_t examined;
	bool have_ours;            /* a trusted hop of ours was walked past */
	struct received_hop last;  /* the last one */
};

/* walk_hop - 1: go on, 0: *facts_r final */
static int walk_hop(struct walk *w, const struct raw_header *h, char *const *names, size_t count,
		    trail_trusted_fn trusted, void *ctx, struct conn_facts *f)
{
	char *value = header_value_unfold(h);
	struct received_hop hop;
	int ret = trail_parse_received(value, &hop);
	bool first = w->examined == 1;

	g_free(value);
	if (ret < 0) {
		no_facts(f, first ? "topmost Received field is garbled" : "garbled Received field in the trusted trail", NULL);
		return 0;
	}
	if (!host_is_ours(hop.by_host, names, count)) {
		if (!first && hop.from_ip[0] != '\0' && trusted(ctx, hop.from_ip))
			return 1;
		no_facts(f, first ? "topmost Received field is not by one of mta_hostnames" :
			 "Received field below a trusted relay is not by one of mta_hostnames",
			 hop.by_host[0] != '\0' ? hop.by_host : "(no by)");
		return 0;
	}
	if (hop.local_submission) {
		facts_from_hop(f, w->have_ours ? &w->last : &hop);
		f->all_trusted = true;
		g_strlcpy(f->reason, "submitted on the host itself (no client)", sizeof(f->reason));
		return 0;
	}
	if (hop.from_ip[0] == '\0') {
		no_facts(f, "Received field of ours without a client address", NULL);
		return 0;
	}
	if (!hop.authenticated && trusted(ctx, hop.from_ip)) {
		w->have_ours = true;
		w->last = hop;
		return 1;
	}
	facts_from_hop(f, &hop);
	return 0;
}

int trail_facts(const struct header_block *block, char *const *mta_hostnames, size_t mta_count,
		trail_trusted_fn trusted, void *ctx, struct conn_facts *facts_r)
{
	struct walk w;

	if (block == NULL || trusted == NULL || facts_r == NULL || (mta_hostnames == NULL && mta_count > 0))
		return -1;
	memset(&w, 0, sizeof(w));
	memset(facts_r, 0, sizeof(*facts_r));
	for (size_t i = 0; i < block->count; i++) {
		if (!header_name_is(&block->headers[i], "Received"))
			continue;
		if (++w.examined > TRAIL_HOPS_MAX) {
			no_facts(facts_r, "trusted trail longer than " G_STRINGIFY(TRAIL_HOPS_MAX) " Received fields", NULL);
			return 0;
		}
		if (walk_hop(&w, &block->headers[i], mta_hostnames, mta_count, trusted, ctx, facts_r) == 0)
			return 0;
	}
	if (w.examined == 0) {
		no_facts(facts_r, "no Received field", NULL);
		return 0;
	}
	facts_from_hop(facts_r, &w.last);
	facts_r->all_trusted = true;
	g_strlcpy(facts_r->reason, "every hop is inside trusted networks", sizeof(facts_r->reason));
	return 0;
}
