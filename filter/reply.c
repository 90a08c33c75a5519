/*
 * reply.c - text templates with ${field} references, and the SMTP replies of reject and
 * tempfail rules.
 *
 * A template is parsed once at load into segments: literal text (kept as written, "$$"
 * already turned into '$') and field references.  Everything that can be wrong with a text
 * is found at load; expansion only copies, sanitizes and truncates.
 */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reply.h"

#define REPLY_CRLF_LEN 2

struct reply_seg {
	const struct field_info *field; /* NULL for literal text */
	char *text;                     /* the literal text, or the argument (NULL if none) */
	size_t len;
};

struct reply_template {
	struct reply_seg *segs;
	size_t nsegs;
	size_t literal_len;
	enum stage stage;
};

struct reply {
	enum action action;
	char code[4];
	char xcode[12];
	size_t nlines;
	struct reply_template *lines[REPLY_MAX_LINES];
};

/* Parsing state of one template: the text, where we are, and where errors go. */
struct reply_parse {
	const char *text;
	const char *p;
	struct reply_template *t;
	char *lit; /* pending literal text, unescaped */
	size_t litlen;
	char *err;
	size_t errlen;
};

static const char *const reply_reject_codes[] = {"550", "551", "552", "553", "554", "555",
                                                 "500", "501", "502", "503", "504", NULL};
static const char *const reply_tempfail_codes[] = {"421", "450", "451", "452", "455", NULL};

static void reply_err(char *err, size_t errlen, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void reply_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static bool reply_is_control(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/* ---- templates: parsing ---- */

static int reply_seg_push(struct reply_parse *ps, const struct field_info *field, const char *text,
                          size_t len)
{
	struct reply_template *t = ps->t;
	struct reply_seg *segs, *s;

	segs = realloc(t->segs, (t->nsegs + 1) * sizeof(*segs));
	if (segs == NULL)
		goto nomem;
	t->segs = segs;
	s = &segs[t->nsegs];
	s->field = field;
	s->len = len;
	s->text = NULL;
	if (text != NULL) {
		if ((s->text = malloc(len + 1)) == NULL)
			goto nomem;
		memcpy(s->text, text, len);
		s->text[len] = '\0';
	}
	t->nsegs++;
	return 0;
nomem:
	reply_err(ps->err, ps->errlen, "out of memory");
	return -1;
}

/* Literal text accumulates in ps->lit so that "a$$b" is one segment. */
static int reply_flush_literal(struct reply_parse *ps)
{
	if (ps->litlen == 0)
		return 0;
	if (reply_seg_push(ps, NULL, ps->lit, ps->litlen) == -1)
		return -1;
	ps->t->literal_len += ps->litlen;
	ps->litlen = 0;
	return 0;
}

static int reply_literal_char(struct reply_parse *ps, char c)
{
	if (reply_is_control((unsigned char)c)) {
		reply_err(ps->err, ps->errlen, "control character 0x%02X in text at offset %zu",
		          (unsigned char)c, (size_t)(ps->p - ps->text));
		return -1;
	}
	ps->lit[ps->litlen++] = c;
	return 0;
}

/* The reference starting at ref ("${"), for messages: up to its '}', the end of the text, or
   a control character (a message is one line). */
static int reply_ref_span(const char *ref)
{
	size_t n = 0;

	while (ref[n] != '\0' && !reply_is_control((unsigned char)ref[n])) {
		if (ref[n++] == '}')
			break;
	}
	return (int)n;
}

/* "what '${ref}'", then ": hint" if there is one. */
static int reply_ref_error(struct reply_parse *ps, const char *ref, const char *what,
                           const char *hint)
{
	reply_err(ps->err, ps->errlen, "%s '%.*s'%s%s", what, reply_ref_span(ref), ref,
	          hint != NULL ? ": " : "", hint != NULL ? hint : "");
	return -1;
}

/* Reads ("arg") at ps->p; sets *arg and *arglen.  Returns -1 on a syntax error. */
static int reply_parse_arg(struct reply_parse *ps, const char *ref, const char **arg,
                           size_t *arglen)
{
	const char *p = ps->p, *start;

	if (p[1] == '\0')
		return reply_ref_error(ps, ref, "unterminated reference", NULL);
	if (p[1] != '"')
		return reply_ref_error(ps, ref, "bad reference", "expected ${name(\"arg\")}");
	p += 2;
	start = p;
	while (*p != '\0' && *p != '"') {
		if (reply_is_control((unsigned char)*p))
			return reply_ref_error(ps, ref, "control character in",
			                       "not allowed in names");
		p++;
	}
	if (*p == '\0')
		return reply_ref_error(ps, ref, "unterminated reference", NULL);
	*arg = start;
	*arglen = (size_t)(p - start);
	p++;
	if (*p == '\0')
		return reply_ref_error(ps, ref, "unterminated reference", NULL);
	if (*p != ')')
		return reply_ref_error(ps, ref, "bad reference", "expected ${name(\"arg\")}");
	ps->p = p + 1;
	if (*arglen == 0)
		return reply_ref_error(ps, ref, "empty argument in", NULL);
	return 0;
}

static int reply_check_field(struct reply_parse *ps, const char *ref, const struct field_info *f,
                             const char *name, size_t namelen, bool has_arg)
{
	int span = (int)(ps->p - ref);

	if (f == NULL) {
		reply_err(ps->err, ps->errlen, "unknown field '%.*s' in '%.*s'", (int)namelen, name,
		          span, ref);
		return -1;
	}
	if (!f->in_template) {
		reply_err(ps->err, ps->errlen, "field '%s' cannot be expanded in '%.*s'", f->name,
		          span, ref);
		return -1;
	}
	if (f->takes_arg && !has_arg) {
		reply_err(ps->err, ps->errlen,
		          "field '%s' needs an argument in '%.*s' (write ${%s(\"name\")})", f->name,
		          span, ref, f->name);
		return -1;
	}
	if (!f->takes_arg && has_arg) {
		reply_err(ps->err, ps->errlen, "field '%s' takes no argument in '%.*s'", f->name,
		          span, ref);
		return -1;
	}
	return 0;
}

/* Parses the reference at ps->p, which points just after "${". */
static int reply_parse_ref(struct reply_parse *ps)
{
	const char *ref = ps->p - 2, *name = ps->p, *arg = NULL;
	const struct field_info *f;
	size_t namelen, arglen = 0;

	while ((*ps->p >= 'a' && *ps->p <= 'z') || (*ps->p >= 'A' && *ps->p <= 'Z') ||
	       (*ps->p >= '0' && *ps->p <= '9') || *ps->p == '_')
		ps->p++;
	namelen = (size_t)(ps->p - name);
	if (*ps->p == '\0')
		return reply_ref_error(ps, ref, "unterminated reference", NULL);
	if (namelen == 0 || (*ps->p != '(' && *ps->p != '}'))
		return reply_ref_error(ps, ref, "bad reference",
		                       "expected ${name} or ${name(\"arg\")}");
	if (*ps->p == '(' && reply_parse_arg(ps, ref, &arg, &arglen) == -1)
		return -1;
	if (*ps->p == '\0')
		return reply_ref_error(ps, ref, "unterminated reference", NULL);
	if (*ps->p != '}')
		return reply_ref_error(ps, ref, "bad reference", "expected '}'");
	ps->p++;
	f = field_by_name(name, namelen);
	if (reply_check_field(ps, ref, f, name, namelen, arg != NULL) == -1)
		return -1;
	if (reply_flush_literal(ps) == -1 || reply_seg_push(ps, f, arg, arglen) == -1)
		return -1;
	/* a text reads what is there: ${size} at mail is the SIZE= declaration */
	if (field_min_stage(f, ps->t->segs[ps->t->nsegs - 1].text) > ps->t->stage)
		ps->t->stage = field_min_stage(f, ps->t->segs[ps->t->nsegs - 1].text);
	return 0;
}

static int reply_parse_all(struct reply_parse *ps)
{
	while (*ps->p != '\0') {
		if (ps->p[0] == '$' && ps->p[1] == '{') {
			ps->p += 2;
			if (reply_parse_ref(ps) == -1)
				return -1;
		} else if (ps->p[0] == '$' && ps->p[1] == '$') {
			ps->lit[ps->litlen++] = '$';
			ps->p += 2;
		} else {
			if (reply_literal_char(ps, *ps->p) == -1)
				return -1;
			ps->p++;
		}
	}
	return reply_flush_literal(ps);
}

struct reply_template *reply_template_new(const char *text, char *err, size_t errlen)
{
	struct reply_parse ps;
	int rc;

	assert(text != NULL);
	memset(&ps, 0, sizeof(ps));
	ps.text = ps.p = text;
	ps.err = err;
	ps.errlen = errlen;
	ps.t = calloc(1, sizeof(*ps.t));
	ps.lit = malloc(strlen(text) + 1);
	if (ps.t == NULL || ps.lit == NULL) {
		reply_err(err, errlen, "out of memory");
		free(ps.lit);
		free(ps.t);
		return NULL;
	}
	ps.t->stage = STAGE_CONNECT;
	rc = reply_parse_all(&ps);
	free(ps.lit);
	if (rc == -1) {
		reply_template_free(ps.t);
		return NULL;
	}
	return ps.t;
}

void reply_template_free(struct reply_template *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nsegs; i++)
		free(t->segs[i].text);
	free(t->segs);
	free(t);
}

size_t reply_template_literal_len(const struct reply_template *t)
{
	return t->literal_len;
}

enum stage reply_template_stage(const struct reply_template *t)
{
	return t->stage;
}

/* ---- templates: expansion ---- */

/*
 * Where to cut s (which is longer than n) so that no UTF-8 sequence is split.  Only literal
 * text can hold bytes >= 0x80 (expanded values are made ASCII), so this stays within one
 * literal segment.  Invalid UTF-8 is cut where it falls.
 */
static size_t reply_utf8_cut(const char *s, size_t n)
{
	size_t i = n;

	while (i > 0 && n - i < 3 && ((unsigned char)s[i] & 0xC0) == 0x80)
		i--;
	if (((unsigned char)s[i] & 0xC0) == 0x80)
		return n;
	return i;
}

static void reply_sanitize(char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (reply_is_control(c))
			s[i] = ' ';
		else if (c >= 0x80)
			s[i] = '?';
	}
}

/* Appends a segment at out + *pos, where room bytes remain (NUL included).  Returns true if
   it did not fit. */
static bool reply_expand_seg(const struct reply_seg *s, reply_value_fn fn, void *ctx, char *out,
                             size_t *pos, size_t room)
{
	size_t len, n;

	if (s->field == NULL) {
		len = s->len;
		n = len < room ? len : reply_utf8_cut(s->text, room - 1);
		memcpy(out + *pos, s->text, n);
	} else if (fn == NULL) {
		len = n = 0;
	} else {
		len = fn(ctx, s->field->id, s->text, out + *pos, room);
		n = len < room ? len : room - 1;
		reply_sanitize(out + *pos, n);
	}
	*pos += n;
	out[*pos] = '\0';
	return len >= room;
}

bool reply_template_expand(const struct reply_template *t, reply_value_fn fn, void *ctx, char *out,
                           size_t outlen)
{
	size_t pos = 0;

	assert(t != NULL && out != NULL && outlen > 0);
	out[0] = '\0';
	for (size_t i = 0; i < t->nsegs; i++) {
		if (reply_expand_seg(&t->segs[i], fn, ctx, out, &pos, outlen - pos))
			return true;
	}
	return false;
}

/* ---- replies: codes ---- */

static bool reply_code_in(const char *code, const char *const *list)
{
	for (size_t i = 0; list[i] != NULL; i++)
		if (strcmp(code, list[i]) == 0)
			return true;
	return false;
}

static int reply_check_code(enum action action, const char *code, char *err, size_t errlen)
{
	bool reject = action == ACTION_REJECT;
	/* Quoted unless it looks like a code, so that "" or "5 5" read clearly. */
	const char *q = strlen(code) == 3 && strspn(code, "0123456789") == 3 ? "" : "'";

	if (reply_code_in(code, reject ? reply_reject_codes : reply_tempfail_codes))
		return 0;
	if (reject)
		reply_err(err, errlen,
		          "code %s%s%s is not a valid reject code "
		          "(use 550, 551, 552, 553, 554, 555 or 500-504)",
		          q, code, q);
	else
		reply_err(err, errlen,
		          "code %s%s%s is not a valid tempfail code "
		          "(use 421, 450, 451, 452 or 455)",
		          q, code, q);
	return -1;
}

/* RFC 3463 subject and detail: 1 to 3 digits, no leading zero unless it is "0".  Returns the
   number of characters read, 0 if there is no valid number at s. */
static size_t reply_xcode_part(const char *s)
{
	size_t n = 0;

	while (n < 4 && s[n] >= '0' && s[n] <= '9')
		n++;
	if (n == 0 || n > 3 || (n > 1 && s[0] == '0'))
		return 0;
	return n;
}

static bool reply_xcode_valid(const char *x)
{
	size_t n;

	if ((x[0] != '2' && x[0] != '4' && x[0] != '5') || x[1] != '.')
		return false;
	x += 2;
	if ((n = reply_xcode_part(x)) == 0 || x[n] != '.')
		return false;
	x += n + 1;
	if ((n = reply_xcode_part(x)) == 0 || x[n] != '\0')
		return false;
	return true;
}

static int reply_check_xcode(const char *code, const char *xcode, char *err, size_t errlen)
{
	if (!reply_xcode_valid(xcode)) {
		reply_err(err, errlen,
		          "bad xcode '%s': expected class.subject.detail such as 5.7.1", xcode);
		return -1;
	}
	if (xcode[0] != code[0]) {
		reply_err(err, errlen, "xcode %s does not match code %s: its class must be %c",
		          xcode, code, code[0]);
		return -1;
	}
	return 0;
}

static int reply_set_codes(struct reply *r, const char *code, const char *xcode, char *err,
                           size_t errlen)
{
	if (code == NULL)
		code = r->action == ACTION_REJECT ? "550" : "451";
	if (reply_check_code(r->action, code, err, errlen) == -1)
		return -1;
	memcpy(r->code, code, sizeof(r->code));
	if (xcode == NULL) {
		snprintf(r->xcode, sizeof(r->xcode), "%c.7.1", code[0]);
		return 0;
	}
	if (reply_check_xcode(code, xcode, err, errlen) == -1)
		return -1;
	/* A valid xcode is at most "5.999.999". */
	snprintf(r->xcode, sizeof(r->xcode), "%s", xcode);
	return 0;
}

/* ---- replies: text ---- */

/* The longest text a line may have: REPLY_LINE_MAX less "code xcode " and CRLF. */
static size_t reply_text_max(const char *code, const char *xcode)
{
	return REPLY_LINE_MAX - (strlen(code) + 1 + strlen(xcode) + 1) - REPLY_CRLF_LEN;
}

/* SMTP replies are ASCII (RFC 5321 4.2; SMTPUTF8 does not change replies), and what an MTA
   does with other bytes varies: a load error beats a mangled reply.  (Headers and log texts
   may hold UTF-8.) */
static bool reply_check_ascii(const char *text, char *msg, size_t len)
{
	for (const char *p = text; *p != '\0'; p++)
		if ((unsigned char)*p >= 0x80) {
			reply_err(msg, len,
			          "byte 0x%02X at offset %zu is not ASCII (an SMTP reply is ASCII)",
			          (unsigned char)*p, (size_t)(p - text));
			return false;
		}
	return true;
}

static int reply_add_line(struct reply *r, const char *text, size_t lineno, bool numbered,
                          char *err, size_t errlen)
{
	struct reply_template *t = NULL;
	char msg[1024];
	size_t len, max;

	if (!reply_check_ascii(text, msg, sizeof(msg)) ||
	    (t = reply_template_new(text, msg, sizeof(msg))) == NULL) {
		if (numbered)
			reply_err(err, errlen, "message line %zu: %s", lineno, msg);
		else
			reply_err(err, errlen, "%s", msg);
		return -1;
	}
	len = reply_template_literal_len(t);
	max = reply_text_max(r->code, r->xcode);
	if (len > max) {
		reply_err(err, errlen,
		          "message line %zu is %zu octets long (at most %zu with code %s %s)",
		          lineno, len, max, r->code, r->xcode);
		reply_template_free(t);
		return -1;
	}
	r->lines[r->nlines++] = t;
	return 0;
}

static int reply_set_lines(struct reply *r, const char *const *lines, size_t nlines, char *err,
                           size_t errlen)
{
	const char *deflt = r->action == ACTION_REJECT ? "Rejected by policy" : "Try again later";

	if (lines == NULL || nlines == 0)
		return reply_add_line(r, deflt, 1, false, err, errlen);
	if (nlines > REPLY_MAX_LINES) {
		reply_err(err, errlen, "message has %zu lines (at most %d)", nlines,
		          REPLY_MAX_LINES);
		return -1;
	}
	for (size_t i = 0; i < nlines; i++) {
		if (reply_add_line(r, lines[i], i + 1, nlines > 1, err, errlen) == -1)
			return -1;
	}
	return 0;
}

struct reply *reply_new(enum action action, const char *code, const char *xcode,
                        const char *const *lines, size_t nlines, char *err, size_t errlen)
{
	struct reply *r;

	assert(action == ACTION_REJECT || action == ACTION_TEMPFAIL);
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		reply_err(err, errlen, "out of memory");
		return NULL;
	}
	r->action = action;
	if (reply_set_codes(r, code, xcode, err, errlen) == -1 ||
	    reply_set_lines(r, lines, nlines, err, errlen) == -1) {
		reply_free(r);
		return NULL;
	}
	return r;
}

void reply_free(struct reply *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->nlines; i++)
		reply_template_free(r->lines[i]);
	free(r);
}

const char *reply_code(const struct reply *r)
{
	return r->code;
}

const char *reply_xcode(const struct reply *r)
{
	return r->xcode;
}

void reply_template_macros(const struct reply_template *t, void (*fn)(const char *, void *),
                           void *ctx)
{
	for (size_t i = 0; t != NULL && i < t->nsegs; i++)
		if (t->segs[i].field != NULL && t->segs[i].field->id == FIELD_MACRO)
			fn(t->segs[i].text, ctx);
}

void reply_macros(const struct reply *r, void (*fn)(const char *, void *), void *ctx)
{
	for (size_t i = 0; r != NULL && i < r->nlines; i++)
		reply_template_macros(r->lines[i], fn, ctx);
}

enum stage reply_stage(const struct reply *r)
{
	enum stage s = STAGE_CONNECT;

	for (size_t i = 0; i < r->nlines; i++) {
		if (reply_template_stage(r->lines[i]) > s)
			s = reply_template_stage(r->lines[i]);
	}
	return s;
}

void reply_render(const struct reply *r, reply_value_fn fn, void *ctx, struct reply_text *out)
{
	size_t room = reply_text_max(r->code, r->xcode) + 1;

	memcpy(out->code, r->code, sizeof(out->code));
	memcpy(out->xcode, r->xcode, sizeof(out->xcode));
	out->nlines = r->nlines;
	out->truncated = false;
	for (size_t i = 0; i < r->nlines; i++) {
		if (reply_template_expand(r->lines[i], fn, ctx, out->lines[i], room))
			out->truncated = true;
	}
}

void reply_escape_percent(const char *src, char *dst, size_t dstlen)
{
	size_t n = 0;

	if (dstlen == 0)
		return;
	/* Never leave a lone '%' at the end if dst is too short: that would spoil the reply. */
	for (; *src != '\0'; src++) {
		size_t need = *src == '%' ? 2 : 1;

		if (n + need >= dstlen)
			break;
		dst[n++] = *src;
		if (*src == '%')
			dst[n++] = '%';
	}
	dst[n] = '\0';
}

/* Appends s at out + *pos, keeping the NUL within outlen. */
static void reply_append(char *out, size_t outlen, size_t *pos, const char *s)
{
	size_t len = strlen(s), room = outlen - *pos - 1;

	if (len > room)
		len = room;
	memcpy(out + *pos, s, len);
	*pos += len;
	out[*pos] = '\0';
}

void reply_text_format(const struct reply_text *t, char *out, size_t outlen)
{
	size_t pos = 0;

	if (outlen == 0)
		return;
	out[0] = '\0';
	reply_append(out, outlen, &pos, t->code);
	reply_append(out, outlen, &pos, " ");
	reply_append(out, outlen, &pos, t->xcode);
	for (size_t i = 0; i < t->nlines; i++) {
		reply_append(out, outlen, &pos, " ");
		reply_append(out, outlen, &pos, t->lines[i]);
	}
}
