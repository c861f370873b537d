/*
 * from - From addresses through GMime's InternetAddressList
 *
 * Phases: the bounds (size, colons, comments that close), then GMime's
 * parse of the unfolded value, then a walk of its list (groups at most
 * FROM_GROUP_DEPTH_MAX deep) that stops at the first mailbox without a
 * domain or past FROM_ADDRESSES_MAX.
 *
 * Owns: the GMime objects of one call (unref'd before it returns) and the
 * strings of the struct from_list it fills.
 */
#include "mime/from.h"

#include <gmime/gmime.h>
#include <glib.h>
#include <stdbool.h>
#include <string.h>

struct from_walk {
	GPtrArray *domains;       /* char *, owned */
	const char *error;        /* static text, or NULL */
};

/* from_mailbox_addr - the address with its domain as an A-label. An
 * all-ASCII address is taken as it is: GMime's IDN form of one is the same
 * string (mixed case, "xn--" labels, invalid labels alike), and asking
 * libidn2 for it costs about 2.5 % of a message's instructions. */
static const char *from_mailbox_addr(InternetAddressMailbox *mb)
{
	const char *addr = internet_address_mailbox_get_addr(mb);

	if (addr != NULL && g_str_is_ascii(addr))
		return addr;
	return internet_address_mailbox_get_idn_addr(mb);
}

/* from_mailbox - one mailbox's domain onto the walk. */
static void from_mailbox(InternetAddressMailbox *mb, struct from_walk *w)
{
	const char *addr = from_mailbox_addr(mb);
	const char *at = addr != NULL ? strrchr(addr, '@') : NULL;

	if (w->domains->len >= FROM_ADDRESSES_MAX) {
		w->error = "too many From addresses";
		return;
	}
	if (at == NULL || at[1] == '\0') {
		w->error = "From address without a domain";
		return;
	}
	g_ptr_array_add(w->domains, g_strdup(at + 1));
}

/* from_group - the mailboxes of LIST, DEPTH groups down. */
static void from_group(InternetAddressList *list, unsigned depth, struct from_walk *w)
{
	int n = internet_address_list_length(list);

	for (int i = 0; i < n && w->error == NULL; i++) {
		InternetAddress *ia = internet_address_list_get_address(list, i);

		if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
			from_mailbox(INTERNET_ADDRESS_MAILBOX(ia), w);
		} else if (INTERNET_ADDRESS_IS_GROUP(ia)) {
			if (depth >= FROM_GROUP_DEPTH_MAX) {
				w->error = "nested groups in From";
				return;
			}
			from_group(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)),
				   depth + 1, w);
		}
	}
}

/* from_colons - the ':' in a From value, wherever they are: GMime (in its
 * lenient mode) opens a group at one, also inside a quoted string it
 * cannot close, so this bounds the nesting it will see. */
static size_t from_colons(const char *value)
{
	size_t n = 0;

	for (const char *p = strchr(value, ':'); p != NULL; p = strchr(p + 1, ':'))
		n++;
	return n;
}

/* from_comment_end - past the comment opening at p, read as GMime's
 * skip_comment reads it (a backslash takes the next byte, parentheses
 * nest), or NULL if it never closes. */
static const char *from_comment_end(const char *p)
{
	size_t depth = 1;

	for (p++; *p != '\0'; p++) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		else if (*p == '(')
			depth++;
		else if (*p == ')' && --depth == 0)
			return p + 1;
	}
	return NULL;
}

/* from_quote_end - past the quoted string opening at p (a backslash takes
 * the next byte), or NULL if it never closes. */
static const char *from_quote_end(const char *p)
{
	for (p++; *p != '\0'; p++) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		else if (*p == '"')
			return p + 1;
	}
	return NULL;
}

/* from_comments_close - whether every comment GMime may start closes:
 * after a domain literal GMime 3.2 leaks the parsed address (up to the
 * whole field) when the comment that follows never closes. A '(' inside a
 * quoted string that closes ("Sales (EU" <a@example.com>) starts no
 * comment; past a quote that never closes, every '(' counts, as GMime's
 * lenient mode may read one there. Linear: every '(' inside a comment that
 * closes closes as well. */
static bool from_comments_close(const char *value)
{
	const char *p = value;

	while ((p = strpbrk(p, "\"(")) != NULL) {
		if (*p == '"') {
			const char *end = from_quote_end(p);
			if (end == NULL) {
				p++;
				break;
			}
			p = end;
		} else if ((p = from_comment_end(p)) == NULL) {
			return false;
		}
	}
	for (p = p != NULL ? strchr(p, '(') : NULL; p != NULL; p = strchr(p, '(')) {
		if ((p = from_comment_end(p)) == NULL)
			return false;
	}
	return true;
}

/* from_bounds - NULL if VALUE is within what GMime's parser survives,
 * else why not (static text). */
static const char *from_bounds(const char *value)
{
	if (strlen(value) > FROM_FIELD_MAX)
		return "From field over " G_STRINGIFY(FROM_FIELD_MAX) " bytes";
	if (from_colons(value) > FROM_COLONS_MAX)
		return "From field with over " G_STRINGIFY(FROM_COLONS_MAX) " colons";
	if (!from_comments_close(value))
		return "From field with an unclosed comment";
	return NULL;
}

void from_init(void)
{
	g_mime_init();
}

int from_parse(const char *value, struct from_list *list_r, char **error_r)
{
	struct from_walk w = { .domains = g_ptr_array_new(), .error = NULL };
	InternetAddressList *list;
	char *unfolded;

	memset(list_r, 0, sizeof(*list_r));
	if ((w.error = from_bounds(value)) == NULL) {
		unfolded = g_strdup(value);
		g_strdelimit(unfolded, "\r\n", ' ');
		list = internet_address_list_parse(NULL, unfolded);
		g_free(unfolded);
		if (list == NULL) {
			w.error = "unparsable From field";
		} else {
			from_group(list, 0, &w);
			g_object_unref(list);
		}
	}
	list_r->count = w.domains->len;
	g_ptr_array_add(w.domains, NULL);
	list_r->domains = (char **)g_ptr_array_free(w.domains, FALSE);
	if (w.error == NULL)
		return 0;
	*error_r = g_strdup(w.error);
	return -1;
}

void from_list_clear(struct from_list *list)
{
	g_strfreev(list->domains);
	list->domains = NULL;
	list->count = 0;
}
