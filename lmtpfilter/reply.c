/*
 * reply - format the replies we send and parse those Dovecot sends
 *
 * Owns nothing; callers give the buffers. Every line we write is at most
 * REPLY_LINE_MAX bytes with its CRLF, holds no control characters, and is
 * never cut inside a UTF-8 character. Parsing is strict about the reply
 * code and separator (anything else is a protocol error the caller turns
 * into a temporary failure) and lenient about the text: a line of any
 * length and content keeps its code, and its text is made one we can
 * relay (no control characters, valid UTF-8, cut to the text buffer).
 */
#include "lmtpfilter/reply.h"

#include <glib.h>
#include <string.h>

#define REPLY_CODE_LEN 3       /* "250" */
#define REPLY_CODE_FALLBACK 451 /* what an invalid code is sent as */
#define REPLY_ENHANCED_PART_MAX 3 /* digits of subject and detail (RFC 3463) */

/* append_clean - copy s to buf[*pos..limit), control characters as spaces;
 * a cut falls on a UTF-8 character boundary. */
static void append_clean(char *buf, size_t *pos, size_t limit, const char *s)
{
	size_t start = *pos, i;

	for (i = 0; s[i] != '\0' && *pos < limit; i++) {
		unsigned char c = (unsigned char)s[i];
		buf[(*pos)++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
	}
	if (s[i] == '\0' || ((unsigned char)s[i] & 0xc0) != 0x80)
		return;
	/* cut inside a multi-byte character: drop its leading bytes */
	while (*pos > start && ((unsigned char)buf[*pos - 1] & 0xc0) == 0x80)
		(*pos)--;
	if (*pos > start && (unsigned char)buf[*pos - 1] >= 0xc0)
		(*pos)--;
}

/* format_line - one line with separator sep (' ' or '-'); see reply_format. */
static size_t format_line(char *buf, size_t size, int code, char sep, const char *enhanced, const char *text)
{
	bool have_enhanced = enhanced != NULL && *enhanced != '\0';
	bool have_text = text != NULL && *text != '\0';
	size_t cap, limit, pos;

	if (size == 0)
		return 0;
	cap = MIN((size_t)REPLY_LINE_MAX, size - 1);
	if (cap < REPLY_CODE_LEN + 2) {
		buf[0] = '\0';
		return 0;
	}
	if (code < 200 || code > 599)
		code = REPLY_CODE_FALLBACK;
	buf[0] = (char)('0' + code / 100);
	buf[1] = (char)('0' + code / 10 % 10);
	buf[2] = (char)('0' + code % 10);
	pos = REPLY_CODE_LEN;
	limit = cap - 2;  /* room for CRLF */
	if ((sep == '-' || have_enhanced || have_text) && pos < limit)
		buf[pos++] = sep;
	if (have_enhanced)
		append_clean(buf, &pos, limit, enhanced);
	if (have_enhanced && have_text)
		append_clean(buf, &pos, limit, " ");
	if (have_text)
		append_clean(buf, &pos, limit, text);
	buf[pos++] = '\r';
	buf[pos++] = '\n';
	buf[pos] = '\0';
	return pos;
}

size_t reply_format(char *buf, size_t size, int code, const char *enhanced, const char *text)
{
	return format_line(buf, size, code, ' ', enhanced, text);
}

size_t reply_format_multi(char *buf, size_t size, int code, const char *const *lines, size_t count)
{
	size_t pos = 0, last_start = 0, last_len = 0;

	if (count == 0)
		return reply_format(buf, size, code, NULL, NULL);
	for (size_t i = 0; i < count; i++) {
		char line[REPLY_LINE_MAX + 1];
		size_t n = format_line(line, sizeof(line), code, '-', NULL, lines[i]);

		if (pos + n + 1 > size)
			break;
		memcpy(buf + pos, line, n);
		last_start = pos;
		last_len = n;
		pos += n;
	}
	if (last_len == 0)  /* not even the first line fits whole */
		return reply_format(buf, size, code, NULL, lines[0]);
	/* the last line that fitted ends the reply */
	buf[last_start + REPLY_CODE_LEN] = ' ';
	if (last_len == REPLY_CODE_LEN + 3) {
		/* "250 \r\n" → "250\r\n" */
		memcpy(buf + last_start + REPLY_CODE_LEN, "\r\n", 2);
		pos--;
	}
	buf[pos] = '\0';
	return pos;
}

/* enhanced_len - length of "c.sss.ddd" at text (class must be cls), or 0. */
static size_t enhanced_len(const char *text, size_t len, char cls)
{
	size_t i = 0;

	if (len < 5 || (cls != '2' && cls != '4' && cls != '5') || text[0] != cls || text[1] != '.')
		return 0;
	i = 2;
	for (int part = 0; part < 2; part++) {
		size_t start = i;
		while (i < len && g_ascii_isdigit(text[i]) && i - start < REPLY_ENHANCED_PART_MAX)
			i++;
		if (i == start)
			return 0;
		if (part == 0) {
			if (i >= len || text[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < len && text[i] != ' ')
		return 0;
	return i;
}

/* text_char - the length of the character at src (n > 0 bytes left) and
 * what it becomes: *subst_r is ' ' for a control character (C0, DEL, C1),
 * '?' for a byte that does not begin a valid UTF-8 character (which is then
 * one byte long), 0 when the character is kept as it is. */
static size_t text_char(const char *src, size_t n, char *subst_r)
{
	unsigned char c = (unsigned char)src[0];
	gunichar u;

	if (c < 0x80) {
		*subst_r = c < 0x20 || c == 0x7f ? ' ' : '\0';
		return 1;
	}
	u = g_utf8_get_char_validated(src, (gssize)MIN(n, (size_t)G_MAXSSIZE));
	if (u == (gunichar)-1 || u == (gunichar)-2) {
		*subst_r = '?';
		return 1;
	}
	*subst_r = u < 0xa0 ? ' ' : '\0';
	return (size_t)g_utf8_skip[c];
}

/* clean_text - src[0..n) into dst (size > 0) as text we can relay, cut
 * before the first character that does not fit; returns its length. */
static size_t clean_text(const char *src, size_t n, char *dst, size_t size)
{
	size_t in = 0, out = 0;

	while (in < n) {
		char subst;
		size_t clen = text_char(src + in, n - in, &subst);
		size_t olen = subst != '\0' ? 1 : clen;

		if (out + olen >= size)
			break;
		if (subst != '\0')
			dst[out] = subst;
		else
			memcpy(dst + out, src + in, clen);
		in += clen;
		out += olen;
	}
	dst[out] = '\0';
	return out;
}

int reply_parse_line(const char *line, size_t len, struct lmtp_reply *reply_r)
{
	size_t text_len, elen;

	memset(reply_r, 0, sizeof(*reply_r));
	if (len < REPLY_CODE_LEN)
		return -1;
	if (line[0] < '2' || line[0] > '5' || !g_ascii_isdigit(line[1]) || !g_ascii_isdigit(line[2]))
		return -1;
	if (len > REPLY_CODE_LEN && line[3] != ' ' && line[3] != '-')
		return -1;
	reply_r->code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	reply_r->last = len == REPLY_CODE_LEN || line[3] == ' ';
	if (len == REPLY_CODE_LEN)
		return 0;

	/* cleaned first, as reply_format would clean it, so a relayed reply
	 * means what we parsed */
	text_len = clean_text(line + REPLY_CODE_LEN + 1, len - REPLY_CODE_LEN - 1, reply_r->text,
			      sizeof(reply_r->text));
	elen = enhanced_len(reply_r->text, text_len, line[0]);
	if (elen > 0) {
		memcpy(reply_r->enhanced, reply_r->text, elen);
		reply_r->enhanced[elen] = '\0';
		if (elen < text_len)  /* the space after the code */
			elen++;
		memmove(reply_r->text, reply_r->text + elen, text_len - elen + 1);
	}
	return 0;
}

void reply_set(struct lmtp_reply *reply_r, int code, const char *enhanced, const char *text)
{
	reply_r->code = code;
	g_strlcpy(reply_r->enhanced, enhanced != NULL ? enhanced : "", sizeof(reply_r->enhanced));
	g_strlcpy(reply_r->text, text, sizeof(reply_r->text));
	reply_r->last = true;
}
