/*
 * history - the DMARC aggregate-report history (see history.h)
 *
 * Owns: the open day file of one history directory (one descriptor, swapped
 * under a mutex when the UTC day changes) and the write counters. The
 * reader owns nothing beyond one call: a fixed buffer of
 * HISTORY_READ_BUFFER bytes streams the file.
 */
#include "lmtpfilter/history.h"
#include "lmtpfilter/log.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HISTORY_MAGIC '\x01'
#define HISTORY_HEADER_LEN 19          /* \x01 "H1" 8 hex length, 8 hex CRC */
#define HISTORY_VERSION "1"
#define HISTORY_FIXED_FIELDS 24        /* payload fields up to the DKIM count */
#define HISTORY_READ_BUFFER (256u * 1024)
#define HISTORY_FILE_MODE 0640
#define SECONDS_PER_DAY 86400

struct history {
	char *dir;
	GMutex lock;
	int fd;                 /* the open day file, or -1 */
	long day;               /* days since the epoch of fd */
	guint64 appended, dropped;
	bool failure_logged;
};

static const char *const policy_names[] = { "-", "none", "quarantine", "reject" };
static const char *const disposition_names[] = { "none", "pass", "quarantine", "reject" };
static const char *const override_names[] = {
	"-", "trusted_forwarder", "policy_test_mode", "local_policy", "mailing_list", "other",
};
static const char *const auth_names[] = {
	"none", "pass", "fail", "softfail", "policy", "neutral", "temperror", "permerror",
};

/* name_lookup - index of name in names, or -1. */
static int name_lookup(const char *const *names, size_t count, const char *name)
{
	for (size_t i = 0; i < count; i++)
		if (strcmp(names[i], name) == 0)
			return (int)i;
	return -1;
}

const char *history_policy_name(enum history_policy p)
{
	return (unsigned)p < G_N_ELEMENTS(policy_names) ? policy_names[p] : "-";
}

const char *history_disposition_name(enum history_disposition d)
{
	return (unsigned)d < G_N_ELEMENTS(disposition_names) ? disposition_names[d] : "none";
}

const char *history_override_name(enum history_override o)
{
	return (unsigned)o < G_N_ELEMENTS(override_names) ? override_names[o] : "-";
}

const char *history_auth_name(enum history_auth a)
{
	return (unsigned)a < G_N_ELEMENTS(auth_names) ? auth_names[a] : "none";
}

int history_auth_parse(const char *name)
{
	return name_lookup(auth_names, G_N_ELEMENTS(auth_names), name);
}

int history_policy_parse(const char *name)
{
	return name_lookup(policy_names, G_N_ELEMENTS(policy_names), name);
}

int history_disposition_parse(const char *name)
{
	return name_lookup(disposition_names, G_N_ELEMENTS(disposition_names), name);
}

int history_override_parse(const char *name)
{
	return name_lookup(override_names, G_N_ELEMENTS(override_names), name);
}

/* crc32 - the IEEE 802.3 CRC-32 (as gzip uses), bitwise: records are short. */
static guint32 crc32_of(const char *data, size_t len)
{
	static guint32 table[256];
	static gsize table_ready;

	if (g_once_init_enter(&table_ready)) {
		for (guint32 i = 0; i < 256; i++) {
			guint32 c = i;
			for (int k = 0; k < 8; k++)
				c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
			table[i] = c;
		}
		g_once_init_leave(&table_ready, 1);
	}
	guint32 crc = 0xffffffffu;
	for (size_t i = 0; i < len; i++)
		crc = table[(crc ^ (unsigned char)data[i]) & 0xff] ^ (crc >> 8);
	return crc ^ 0xffffffffu;
}

/* field_ok - a field that the payload can carry: no control byte, bounded. */
static bool field_ok(const char *s)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++)
		if ((unsigned char)s[n] < 0x20 || s[n] == 0x7f)
			return false;
	return n <= HISTORY_FIELD_MAX;
}

/* put_field - append "\t" + s (or s alone if first); false if it does not fit
 * or is not a valid field. */
static bool put_field(GString *out, const char *s, bool first)
{
	if (s == NULL)
		s = "";
	if (!field_ok(s))
		return false;
	if (!first)
		g_string_append_c(out, '\t');
	g_string_append(out, s);
	return true;
}

static bool put_fixed_fields(GString *p, const struct history_record *r)
{
	char time_text[32], flags[8][2] = { { 0 } };

	g_snprintf(time_text, sizeof(time_text), "%lld", (long long)r->time);
	flags[0][0] = r->adkim == 's' ? 's' : 'r';
	flags[1][0] = r->aspf == 's' ? 's' : 'r';
	flags[2][0] = r->testing ? 'y' : 'n';
	flags[3][0] = r->psd == HISTORY_PSD_Y ? 'y' : r->psd == HISTORY_PSD_N ? 'n' : 'u';
	flags[4][0] = r->discovery == HISTORY_DISCOVERY_PSL ? 'p' : 't';
	flags[5][0] = r->dkim_aligned ? '1' : '0';
	flags[6][0] = r->spf_aligned ? '1' : '0';
	const char *fields[] = {
		time_text, r->source_ip, r->envelope_from, r->header_from, r->policy_domain,
		r->org_domain, history_policy_name(r->p), history_policy_name(r->sp),
		history_policy_name(r->np), flags[0], flags[1], flags[2], flags[3], flags[4],
		flags[5], flags[6], history_disposition_name(r->disposition),
		history_override_name(r->override), r->override_comment, r->spf_domain,
		r->spf_scope_helo ? "helo" : "mfrom",
	};
	bool ok = put_field(p, HISTORY_VERSION, true);
	for (size_t i = 0; ok && i < G_N_ELEMENTS(fields); i++)
		ok = put_field(p, fields[i], false);
	return ok && put_field(p, history_auth_name(r->spf_result), false);
}

size_t history_encode(const struct history_record *r, char *buf, size_t size)
{
	char count[16];
	size_t n = 0;

	if (r->source_ip == NULL || r->header_from == NULL || r->policy_domain == NULL ||
	    r->dkim_count > HISTORY_DKIM_MAX)
		return 0;
	GString *p = g_string_sized_new(512);
	bool ok = put_fixed_fields(p, r);
	g_snprintf(count, sizeof(count), "%zu", r->dkim_count);
	ok = ok && put_field(p, count, false);
	for (size_t i = 0; ok && i < r->dkim_count; i++)
		ok = put_field(p, r->dkim[i].domain, false) && put_field(p, r->dkim[i].selector, false) &&
		     put_field(p, history_auth_name(r->dkim[i].result), false);
	if (ok && HISTORY_HEADER_LEN + p->len + 1 <= MIN(size, (size_t)HISTORY_RECORD_MAX)) {
		n = (size_t)g_snprintf(buf, size, "%cH1%08zx%08x", HISTORY_MAGIC, p->len,
				       crc32_of(p->str, p->len));
		memcpy(buf + n, p->str, p->len);
		n += p->len;
		buf[n++] = '\n';
	}
	g_string_free(p, TRUE);
	return n;
}

char *history_day_file(const char *dir, time_t t)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	return g_strdup_printf("%s/%04d-%02d-%02d.dmh", dir, tm.tm_year + 1900, tm.tm_mon + 1,
			       tm.tm_mday);
}

int history_open(const char *dir, struct history **history_r, char **error_r)
{
	if (!g_file_test(dir, G_FILE_TEST_IS_DIR)) {
		*error_r = g_strdup_printf("dmarc_history %s: not a directory", dir);
		return -1;
	}
	struct history *h = g_new0(struct history, 1);
	h->dir = g_strdup(dir);
	g_mutex_init(&h->lock);
	h->fd = -1;
	h->day = -1;
	*history_r = h;
	return 0;
}

void history_close(struct history **history)
{
	struct history *h = *history;

	if (h == NULL)
		return;
	if (h->fd >= 0)
		close(h->fd);
	g_mutex_clear(&h->lock);
	g_free(h->dir);
	g_free(h);
	*history = NULL;
}

/* drop - count a dropped record; log the first failure only (a full disk
 * must not flood the log either). Called with the lock held. */
static int drop(struct history *h, const char *why, int err)
{
	h->dropped++;
	if (!h->failure_logged) {
		log_warning("dmarc_history %s: record dropped: %s%s%s", h->dir, why,
			    err ? ": " : "", err ? g_strerror(err) : "");
		h->failure_logged = true;
	}
	return -1;
}

/* day_fd - the descriptor of day's file, opened (and the old one closed) on
 * a change of day; -1 with errno. Called with the lock held. */
static int day_fd(struct history *h, time_t t)
{
	long day = (long)(t >= 0 ? t / SECONDS_PER_DAY : (t - SECONDS_PER_DAY + 1) / SECONDS_PER_DAY);

	if (day == h->day && h->fd >= 0)
		return h->fd;
	if (h->fd >= 0)
		close(h->fd);
	char *path = history_day_file(h->dir, t);
	h->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, HISTORY_FILE_MODE);
	int saved = errno;
	g_free(path);
	h->day = h->fd >= 0 ? day : -1;
	errno = saved;
	return h->fd;
}

int history_append(struct history *h, const struct history_record *record)
{
	char buf[HISTORY_RECORD_MAX];
	size_t len = history_encode(record, buf, sizeof(buf));
	int rc = 0;

	g_mutex_lock(&h->lock);
	if (len == 0) {
		rc = drop(h, "record too long or with control bytes", 0);
	} else {
		int fd = day_fd(h, record->time);
		ssize_t n = fd >= 0 ? write(fd, buf, len) : -1;
		if (fd < 0)
			rc = drop(h, "cannot open the day file", errno);
		else if (n != (ssize_t)len)
			rc = drop(h, "write failed", n < 0 ? errno : ENOSPC);
		else
			h->appended++;
	}
	g_mutex_unlock(&h->lock);
	return rc;
}

void history_get_stats(struct history *h, struct history_stats *stats_r)
{
	g_mutex_lock(&h->lock);
	stats_r->appended = h->appended;
	stats_r->dropped = h->dropped;
	g_mutex_unlock(&h->lock);
}

/* ------------------------------------------------------------ reading */

static int parse_flag(const char *s, const char *allowed)
{
	if (s[0] == '\0' || s[1] != '\0' || strchr(allowed, s[0]) == NULL)
		return -1;
	return s[0];
}

/* decode_enums - fields 7..22 of the payload into r; false if one is bad. */
static bool decode_enums(char **f, struct history_record *r)
{
	int p = history_policy_parse(f[7]), sp = history_policy_parse(f[8]);
	int np = history_policy_parse(f[9]), adkim = parse_flag(f[10], "rs");
	int aspf = parse_flag(f[11], "rs"), t = parse_flag(f[12], "yn");
	int psd = parse_flag(f[13], "ynu"), disc = parse_flag(f[14], "tp");
	int da = parse_flag(f[15], "01"), sa = parse_flag(f[16], "01");
	int disp = history_disposition_parse(f[17]), ov = history_override_parse(f[18]);
	int spf = history_auth_parse(f[22]);

	if (p <= HISTORY_POLICY_UNSET || sp < 0 || np < 0 || adkim < 0 || aspf < 0 || t < 0 ||
	    psd < 0 || disc < 0 || da < 0 || sa < 0 || disp < 0 || ov < 0 || spf < 0 ||
	    (strcmp(f[21], "mfrom") != 0 && strcmp(f[21], "helo") != 0))
		return false;
	r->p = p; r->sp = sp; r->np = np;
	r->adkim = (char)adkim; r->aspf = (char)aspf;
	r->testing = t == 'y';
	r->psd = psd == 'y' ? HISTORY_PSD_Y : psd == 'n' ? HISTORY_PSD_N : HISTORY_PSD_U;
	r->discovery = disc == 'p' ? HISTORY_DISCOVERY_PSL : HISTORY_DISCOVERY_TREEWALK;
	r->dkim_aligned = da == '1';
	r->spf_aligned = sa == '1';
	r->disposition = disp;
	r->override = ov;
	r->spf_result = spf;
	r->spf_scope_helo = strcmp(f[21], "helo") == 0;
	return true;
}

/* decode_payload - split payload (NUL-terminated, modified in place) into r;
 * false if it is not a record of this version. */
static bool decode_payload(char *payload, struct history_record *r)
{
	char *f[HISTORY_FIXED_FIELDS + 3 * HISTORY_DKIM_MAX];
	size_t n = 0;
	char *s = payload, *end;

	while (n < G_N_ELEMENTS(f)) {
		f[n++] = s;
		if ((s = strchr(s, '\t')) == NULL)
			break;
		*s++ = '\0';
	}
	if (s != NULL || n < HISTORY_FIXED_FIELDS || strcmp(f[0], HISTORY_VERSION) != 0)
		return false;
	memset(r, 0, sizeof(*r));
	long long t = strtoll(f[1], &end, 10);
	unsigned long dkim = strtoul(f[23], &end, 10);
	if (f[1][0] == '\0' || dkim > HISTORY_DKIM_MAX || *end != '\0' ||
	    n != HISTORY_FIXED_FIELDS + 3 * dkim || f[2][0] == '\0' || f[5][0] == '\0' ||
	    !decode_enums(f, r))
		return false;
	r->time = (time_t)t;
	r->source_ip = f[2]; r->envelope_from = f[3]; r->header_from = f[4];
	r->policy_domain = f[5]; r->org_domain = f[6];
	r->override_comment = f[19]; r->spf_domain = f[20];
	r->dkim_count = dkim;
	for (size_t i = 0; i < dkim; i++) {
		char **d = f + HISTORY_FIXED_FIELDS + 3 * i;
		int result = history_auth_parse(d[2]);
		if (result < 0 || result == HISTORY_AUTH_SOFTFAIL)
			return false;
		r->dkim[i] = (struct history_dkim){ d[0], d[1], result };
	}
	return true;
}

/* hex8 - the 8 hex digits at s; false if they are not. */
static bool hex8(const char *s, guint32 *value_r)
{
	guint32 v = 0;

	for (int i = 0; i < 8; i++) {
		int d = g_ascii_xdigit_value(s[i]);
		if (d < 0)
			return false;
		v = v << 4 | (guint32)d;
	}
	*value_r = v;
	return true;
}

/* frame_check - at buf (starting with the magic, avail bytes): 1 and the
 * frame length if a whole valid frame is there, 0 if more bytes are needed,
 * -1 if it is corrupt. */
static int frame_check(char *buf, size_t avail, size_t *frame_len_r)
{
	guint32 len, crc;

	if (avail < HISTORY_HEADER_LEN)
		return 0;
	if (buf[1] != 'H' || buf[2] != '1' || !hex8(buf + 3, &len) || !hex8(buf + 11, &crc) ||
	    HISTORY_HEADER_LEN + (size_t)len + 1 > HISTORY_RECORD_MAX)
		return -1;
	size_t total = HISTORY_HEADER_LEN + (size_t)len + 1;
	if (avail < total)
		return 0;
	if (buf[total - 1] != '\n' || crc32_of(buf + HISTORY_HEADER_LEN, len) != crc ||
	    memchr(buf + HISTORY_HEADER_LEN, HISTORY_MAGIC, len) != NULL)
		return -1;
	*frame_len_r = total;
	return 1;
}

struct reader {
	char *buf;
	size_t start, end;      /* unread bytes are buf[start..end) */
	bool eof;
	history_record_cb *cb;
	void *context;
	struct history_read_stats *stats;
};

/* reader_step - handle what is at buf[start]: a frame, garbage or a need
 * for more bytes. Returns false when more bytes are needed. */
static bool reader_step(struct reader *rd)
{
	char *at = memchr(rd->buf + rd->start, HISTORY_MAGIC, rd->end - rd->start);
	size_t frame_len;
	struct history_record r;

	if (at == NULL) {
		rd->start = rd->end;
		return false;
	}
	rd->start = (size_t)(at - rd->buf);
	int rc = frame_check(at, rd->end - rd->start, &frame_len);
	if (rc == 0) {
		if (rd->eof) {          /* a torn last record */
			rd->stats->skipped++;
			rd->start = rd->end;
		}
		return false;
	}
	if (rc < 0) {
		rd->stats->skipped++;
		rd->start++;
		return true;
	}
	at[frame_len - 1] = '\0';
	if (decode_payload(at + HISTORY_HEADER_LEN, &r)) {
		rd->stats->records++;
		rd->cb(&r, rd->context);
	} else {
		rd->stats->skipped++;
	}
	rd->start += frame_len;
	return true;
}

int history_read_file(const char *path, history_record_cb *cb, void *context,
		      struct history_read_stats *stats, char **error_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct reader rd = { .cb = cb, .context = context, .stats = stats };

	if (fd < 0) {
		*error_r = g_strdup_printf("%s: %s", path, g_strerror(errno));
		return -1;
	}
	rd.buf = g_malloc(HISTORY_READ_BUFFER);
	while (!rd.eof || rd.start < rd.end) {
		while (rd.start < rd.end && reader_step(&rd))
			;
		if (rd.eof)
			break;
		memmove(rd.buf, rd.buf + rd.start, rd.end - rd.start);
		rd.end -= rd.start;
		rd.start = 0;
		ssize_t n = read(fd, rd.buf + rd.end, HISTORY_READ_BUFFER - rd.end);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r = g_strdup_printf("%s: %s", path, g_strerror(errno));
			g_free(rd.buf);
			close(fd);
			return -1;
		}
		rd.end += (size_t)n;
		rd.eof = n == 0;
	}
	g_free(rd.buf);
	close(fd);
	return 0;
}
