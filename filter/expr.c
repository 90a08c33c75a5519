/*
 * expr.c - compiler and evaluator of "when" conditions.
 *
 * The compiler is a recursive-descent parser straight over the text (no token list): the
 * grammar is small, and the regex operand (/.../flags) depends on the operator before it.
 * Everything costly is done here, once: regexes compiled (and JIT-compiled), inline lists
 * indexed, named lists resolved to their index of the right kind.
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "conn.h"
#include "diag.h"
#include "expr.h"
#include "list.h"
#include "mem.h"

/* Nesting of a condition: parsing and evaluation recurse this deep, on a worker's stack. */
#define EXPR_MAX_NESTING 200

enum node_kind { NODE_AND, NODE_OR, NODE_NOT, NODE_EXISTS, NODE_TAGGED, NODE_CMP };

/* OP_NE only on numbers (elsewhere != is not(==)): an unknown number compares false. */
enum cmp_op { OP_EQ, OP_NE, OP_MATCH, OP_CONTAINS, OP_IN, OP_LT, OP_LE, OP_GT, OP_GE };

struct expr {
	enum node_kind kind;
	enum stage stage;
	enum stage min_stage;
	int height;         /* levels of nodes below and including this one */
	struct expr **kids; /* AND, OR: the operands; NOT: the one operand */
	size_t nkids;
	enum field_id field; /* CMP, EXISTS */
	char *arg;           /* header or macro name */
	enum cmp_op op;
	char *str; /* EQ, CONTAINS */
	size_t len;
	unsigned long long num; /* numeric comparisons */
	bool negated;           /* !~ or !in on a number: false too when the number is unknown */
	pcre2_code *re;
	const struct list_index *index; /* IN */
	struct list_index *owned_index; /* an inline [ ... ] list */
	int tag;                        /* TAGGED */
};

struct parser {
	const char *src;
	const char *p;
	const struct expr_env *env;
	struct diag *diag;
	char *err;
	size_t errlen;
	bool failed;
	int nesting; /* parentheses and "not" open */
};

static struct expr *parse_or(struct parser *ps);

static void fail(struct parser *ps, const char *at, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void fail(struct parser *ps, const char *at, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (ps->failed)
		return;
	ps->failed = true;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (at != NULL)
		snprintf(ps->err, ps->errlen, "%s at column %d", msg, (int)(at - ps->src) + 1);
	else
		snprintf(ps->err, ps->errlen, "%s", msg);
}

static struct expr *node_new(enum node_kind kind)
{
	struct expr *e = mem_calloc(1, sizeof(*e));

	e->kind = kind;
	e->tag = -1;
	return e;
}

/*
 * A node over its operands (one for NOT; any number for AND and OR, kept flat so that a long
 * "a or b or c ..." costs no depth).  Takes over kids, an array of nkids nodes.
 */
static struct expr *node_join(struct parser *ps, enum node_kind kind, struct expr **kids,
                              size_t nkids)
{
	struct expr *e = node_new(kind);

	e->kids = kids;
	e->nkids = nkids;
	for (size_t i = 0; i < nkids; i++) {
		if (kids[i]->height >= e->height)
			e->height = kids[i]->height + 1;
		if (kids[i]->stage > e->stage)
			e->stage = kids[i]->stage;
		if (kids[i]->min_stage > e->min_stage)
			e->min_stage = kids[i]->min_stage;
	}
	if (e->height > EXPR_MAX_NESTING) {
		fail(ps, ps->p, "condition too deep: more than %d nested levels", EXPR_MAX_NESTING);
		expr_free(e);
		return NULL;
	}
	return e;
}

static struct expr *node_not(struct parser *ps, struct expr *operand)
{
	struct expr **kids = mem_alloc(sizeof(*kids));

	kids[0] = operand;
	return node_join(ps, NODE_NOT, kids, 1);
}

void expr_free(struct expr *e)
{
	if (e == NULL)
		return;
	for (size_t i = 0; i < e->nkids; i++)
		expr_free(e->kids[i]);
	free(e->kids);
	free(e->arg);
	free(e->str);
	pcre2_code_free(e->re);
	list_index_free(e->owned_index);
	free(e);
}

static void skip_space(struct parser *ps)
{
	while (isspace((unsigned char)*ps->p))
		ps->p++;
}

static bool is_ident_char(char ch)
{
	return isalnum((unsigned char)ch) || ch == '_';
}

/* Reads an identifier; returns its length (0 if none). */
static size_t read_ident(struct parser *ps, const char **start)
{
	skip_space(ps);
	*start = ps->p;
	while (is_ident_char(*ps->p))
		ps->p++;
	return (size_t)(ps->p - *start);
}

/* True and consumes it if the next word is kw (a whole word). */
static bool accept_word(struct parser *ps, const char *kw)
{
	size_t n = strlen(kw);

	skip_space(ps);
	if (strncmp(ps->p, kw, n) == 0 && !is_ident_char(ps->p[n])) {
		ps->p += n;
		return true;
	}
	return false;
}

static bool accept_char(struct parser *ps, char ch)
{
	skip_space(ps);
	if (*ps->p == ch) {
		ps->p++;
		return true;
	}
	return false;
}

/*
 * Reads text between delim characters into a malloc'd copy, or fails with the message for a
 * missing opening delimiter or for the end of input.  A backslash before delim stands for
 * delim; "\\\\" stands for one backslash in a string, and stays as written in a regex, where
 * PCRE2 reads it.
 */
static char *read_delimited(struct parser *ps, char delim, bool in_regex, size_t *lenp,
                            const char *expected, const char *unterminated)
{
	const char *start;
	char *out, *o;

	skip_space(ps);
	start = ps->p;
	if (*ps->p != delim) {
		fail(ps, start, "%s", expected);
		return NULL;
	}
	out = o = mem_alloc(strlen(ps->p) + 1);
	for (ps->p++; *ps->p != delim; ps->p++) {
		if (*ps->p == '\0') {
			free(out);
			fail(ps, start, "%s", unterminated);
			return NULL;
		}
		if (*ps->p == '\\' && ps->p[1] == delim)
			ps->p++;
		else if (*ps->p == '\\' && ps->p[1] == '\\' && (ps->p++, in_regex))
			*o++ = '\\';
		*o++ = *ps->p;
	}
	ps->p++;
	*o = '\0';
	if (lenp != NULL)
		*lenp = (size_t)(o - out);
	return out;
}

/* A "double-quoted" string with \" and \\ escapes; returns a malloc'd copy or NULL. */
static char *parse_string(struct parser *ps, size_t *lenp)
{
	return read_delimited(ps, '"', false, lenp, "expected a \"string\"", "unterminated string");
}

static bool parse_number(struct parser *ps, unsigned long long *out)
{
	const char *start;
	char buf[64];
	size_t n;

	skip_space(ps);
	start = ps->p;
	while (isalnum((unsigned char)*ps->p))
		ps->p++;
	n = (size_t)(ps->p - start);
	if (n == 0 || n >= sizeof(buf) || !isdigit((unsigned char)*start)) {
		fail(ps, start, "expected a number");
		return false;
	}
	memcpy(buf, start, n);
	buf[n] = '\0';
	if (config_parse_size(buf, out) != 0) {
		fail(ps, start, "bad number '%s' (digits with an optional K, M or G)", buf);
		return false;
	}
	return true;
}

/* field := name [ "(" string ")" ] */
static const struct field_info *parse_field(struct parser *ps, char **argp)
{
	const char *start;
	size_t n = read_ident(ps, &start);
	const struct field_info *fi;

	*argp = NULL;
	if (n == 0) {
		if (*start == '\0')
			fail(ps, start, "expected a field name, found the end of the condition");
		else
			fail(ps, start, "expected a field name, found '%c'", *start);
		return NULL;
	}
	fi = field_by_name(start, n);
	if (fi == NULL || !fi->in_expr) {
		fail(ps, start, "unknown field '%.*s'", (int)n, start);
		return NULL;
	}
	if (fi->takes_arg) {
		if (!accept_char(ps, '(')) {
			fail(ps, ps->p, "%s needs an argument, as in %s(\"name\")", fi->name,
			     fi->name);
			return NULL;
		}
		*argp = parse_string(ps, NULL);
		if (*argp == NULL)
			return NULL;
		if (**argp == '\0') {
			fail(ps, start, "%s(\"\") needs a name", fi->name);
			return NULL;
		}
		if (!accept_char(ps, ')')) {
			fail(ps, ps->p, "expected ')'");
			return NULL;
		}
	}
	return fi;
}

static enum list_kind list_kind_for(enum field_type t)
{
	switch (t) {
	case FIELD_T_IP:
		return LIST_CIDR;
	case FIELD_T_HOST:
	case FIELD_T_DOMAIN:
		return LIST_DOMAIN;
	case FIELD_T_ADDR:
	case FIELD_T_LOCAL:
		return LIST_ADDR;
	default:
		return LIST_STRING;
	}
}

/* "[" item { "," item } "]" with items strings or numbers, indexed like a named list. */
static bool parse_inline_list(struct parser *ps, struct expr *e, enum list_kind kind)
{
	char errbuf[256];

	e->owned_index = list_index_new(kind);
	e->index = e->owned_index;
	if (accept_char(ps, ']'))
		return true;
	do {
		const char *at;
		char *item;
		size_t len;
		char num[32];

		skip_space(ps);
		at = ps->p;
		if (isdigit((unsigned char)*ps->p) && kind == LIST_STRING) {
			unsigned long long v;
			if (!parse_number(ps, &v))
				return false;
			len = (size_t)snprintf(num, sizeof(num), "%llu", v);
			item = mem_strdup(num);
		} else {
			item = parse_string(ps, &len);
		}
		if (item == NULL)
			return false;
		if (list_index_add(e->owned_index, item, len, errbuf, sizeof(errbuf)) != 0) {
			free(item);
			fail(ps, at, "%s", errbuf);
			return false;
		}
		free(item);
	} while (accept_char(ps, ','));
	if (!accept_char(ps, ']')) {
		fail(ps, ps->p, "expected ',' or ']' in list");
		return false;
	}
	return true;
}

static bool parse_named_list(struct parser *ps, struct expr *e, enum list_kind kind)
{
	const char *start;
	size_t n = read_ident(ps, &start);
	char name[256];
	struct list *l;

	if (n == 0 || n >= sizeof(name)) {
		fail(ps, start, "expected a list name after '@'");
		return false;
	}
	memcpy(name, start, n);
	name[n] = '\0';
	l = ps->env->find_list(ps->env->ctx, name);
	if (l == NULL) {
		fail(ps, start - 1, "unknown list '@%s'", name);
		return false;
	}
	e->index = list_index_get(l, kind, ps->diag);
	if (e->index == NULL) {
		/* Each bad entry is already in the diag with its own file:line. */
		ps->failed = true;
		snprintf(ps->err, ps->errlen, "list '@%s' has bad entries", name);
		return false;
	}
	return true;
}

static bool parse_regex(struct parser *ps, struct expr *e)
{
	const char *start;
	uint32_t options = 0;
	char *pat;
	int errcode;
	PCRE2_SIZE erroff;

	skip_space(ps);
	start = ps->p;
	pat = read_delimited(ps, '/', true, NULL, "expected a /regex/ after the operator",
	                     "unterminated regex");
	if (pat == NULL)
		return false;
	for (; is_ident_char(*ps->p); ps->p++) {
		switch (*ps->p) {
		case 'i':
			options |= PCRE2_CASELESS;
			break;
		case 'm':
			options |= PCRE2_MULTILINE;
			break;
		case 's':
			options |= PCRE2_DOTALL;
			break;
		case 'x':
			options |= PCRE2_EXTENDED;
			break;
		default:
			free(pat);
			fail(ps, ps->p, "unknown regex flag '%c' (use i, m, s or x)", *ps->p);
			return false;
		}
	}
	e->re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, options, &errcode, &erroff,
	                      NULL);
	free(pat);
	if (e->re == NULL) {
		PCRE2_UCHAR msg[256];
		pcre2_get_error_message(errcode, msg, sizeof(msg));
		fail(ps, start + 1 + erroff, "bad regex: %s", (char *)msg);
		return false;
	}
	(void)pcre2_jit_compile(e->re, PCRE2_JIT_COMPLETE); /* the interpreter is the fallback */
	return true;
}

/* Reads a comparison operator; returns false if there is none. */
static bool parse_op(struct parser *ps, enum cmp_op *op, bool *negate)
{
	static const struct {
		const char *text;
		enum cmp_op op;
		bool negate;
	} ops[] = {
	        {"==", OP_EQ, false},   {"!=", OP_EQ, true},  {"=~", OP_MATCH, false},
	        {"!~", OP_MATCH, true}, {"<=", OP_LE, false}, {">=", OP_GE, false},
	        {"<", OP_LT, false},    {">", OP_GT, false},
	};

	skip_space(ps);
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		size_t n = strlen(ops[i].text);
		if (strncmp(ps->p, ops[i].text, n) == 0) {
			ps->p += n;
			*op = ops[i].op;
			*negate = ops[i].negate;
			return true;
		}
	}
	*negate = false;
	if (accept_word(ps, "contains")) {
		*op = OP_CONTAINS;
		return true;
	}
	if (accept_word(ps, "in")) {
		*op = OP_IN;
		return true;
	}
	return false;
}

/* client_ip == "address": compared as an address, not as text, so that 2001:DB8::1 finds
   2001:db8::1 and 192.0.2.1 finds ::ffff:192.0.2.1; a one-entry CIDR index does that. */
static bool parse_address(struct parser *ps, struct expr *e, const struct field_info *fi)
{
	const char *at;
	char errbuf[256], *addr;
	size_t len;
	bool ok = false;

	skip_space(ps);
	at = ps->p;
	if ((addr = parse_string(ps, &len)) == NULL)
		return false;
	e->op = OP_IN;
	e->owned_index = list_index_new(LIST_CIDR);
	e->index = e->owned_index;
	if (memchr(addr, '/', len) != NULL)
		fail(ps, at, "%s == takes one address; for a network write %s in [\"%s\"]",
		     fi->name, fi->name, addr);
	else if (list_index_add(e->owned_index, addr, len, errbuf, sizeof(errbuf)) != 0)
		fail(ps, at, "%s", errbuf);
	else
		ok = true;
	free(addr);
	return ok;
}

static bool parse_operand(struct parser *ps, struct expr *e, const struct field_info *fi,
                          const char *opat)
{
	bool numeric = fi->type == FIELD_T_NUMBER;

	switch (e->op) {
	case OP_LT:
	case OP_LE:
	case OP_GT:
	case OP_GE:
		if (!numeric) {
			fail(ps, opat, "%s is not a number: <, <=, >, >= compare numbers",
			     fi->name);
			return false;
		}
		return parse_number(ps, &e->num);
	case OP_NE:
		return parse_number(ps, &e->num);
	case OP_EQ:
		if (numeric)
			return parse_number(ps, &e->num);
		if (fi->type == FIELD_T_IP)
			return parse_address(ps, e, fi);
		e->str = parse_string(ps, &e->len);
		return e->str != NULL;
	case OP_CONTAINS:
		e->str = parse_string(ps, &e->len);
		return e->str != NULL;
	case OP_MATCH:
		return parse_regex(ps, e);
	case OP_IN:
		if (accept_char(ps, '['))
			return parse_inline_list(ps, e, list_kind_for(fi->type));
		if (accept_char(ps, '@'))
			return parse_named_list(ps, e, list_kind_for(fi->type));
		fail(ps, ps->p, "expected [ ... ] or @list after 'in'");
		return false;
	}
	assert(!"unreachable");
	return false;
}

static struct expr *parse_compare(struct parser *ps)
{
	const char *at, *opat;
	struct expr *e;
	const struct field_info *fi;
	bool negate;
	char *arg;

	skip_space(ps);
	at = ps->p;
	fi = parse_field(ps, &arg);
	if (fi == NULL) {
		free(arg);
		return NULL;
	}
	e = node_new(NODE_CMP);
	e->field = fi->id;
	e->arg = arg;
	/* The queue id reaches a condition reliably only once the message has headers (Postfix
	   sends {i} from DATA on); in reply texts it is simply empty until then. */
	e->stage = fi->id == FIELD_QUEUE_ID ? STAGE_HEADER : field_stage(fi, arg);
	e->min_stage = fi->id == FIELD_QUEUE_ID ? e->stage : field_min_stage(fi, arg);
	skip_space(ps);
	opat = ps->p;
	if (!parse_op(ps, &e->op, &negate)) {
		fail(ps, opat,
		     *opat ? "expected an operator after %s"
		           : "expected an operator after %s "
		             "(the condition ends here)",
		     fi->name);
		expr_free(e);
		return NULL;
	}
	(void)at;
	/* an undeclared size compares false, whatever the operator (not (...) is true) */
	if (negate && fi->type == FIELD_T_NUMBER) {
		if (e->op == OP_EQ)
			e->op = OP_NE;
		else
			e->negated = true;
		negate = false;
	}
	if (!parse_operand(ps, e, fi, opat)) {
		expr_free(e);
		return NULL;
	}
	return negate ? node_not(ps, e) : e;
}

static struct expr *parse_unary(struct parser *ps)
{
	struct expr *e;

	if (accept_word(ps, "not") || accept_char(ps, '(')) {
		bool paren = ps->p[-1] == '(';
		if (++ps->nesting > EXPR_MAX_NESTING) {
			fail(ps, ps->p, "condition too deep: more than %d nested levels",
			     EXPR_MAX_NESTING);
			return NULL;
		}
		e = paren ? parse_or(ps) : parse_unary(ps);
		ps->nesting--;
		if (e != NULL && paren && !accept_char(ps, ')')) {
			fail(ps, ps->p, "expected ')'");
			expr_free(e);
			return NULL;
		}
		return e == NULL || paren ? e : node_not(ps, e);
	}
	if (accept_word(ps, "exists")) {
		const char *at;
		char *arg;
		const struct field_info *fi;

		skip_space(ps);
		at = ps->p;
		fi = parse_field(ps, &arg);
		if (fi == NULL) {
			free(arg);
			return NULL;
		}
		if (fi->id != FIELD_HEADER) {
			free(arg);
			fail(ps, at, "exists takes header(\"Name\"), not %s", fi->name);
			return NULL;
		}
		e = node_new(NODE_EXISTS);
		e->field = fi->id;
		e->arg = arg;
		e->stage = e->min_stage = fi->stage;
		return e;
	}
	if (accept_word(ps, "tagged")) {
		const char *at;
		char *name;
		enum stage st;
		int tag;

		if (!accept_char(ps, '(')) {
			fail(ps, ps->p, "tagged needs an argument, as in tagged(\"name\")");
			return NULL;
		}
		skip_space(ps);
		at = ps->p;
		name = parse_string(ps, NULL);
		if (name == NULL)
			return NULL;
		tag = ps->env->find_tag(ps->env->ctx, name, &st);
		if (tag < 0) {
			fail(ps, at, "tag \"%s\" is not set by any earlier rule", name);
			free(name);
			return NULL;
		}
		free(name);
		if (!accept_char(ps, ')')) {
			fail(ps, ps->p, "expected ')'");
			return NULL;
		}
		e = node_new(NODE_TAGGED);
		e->tag = tag;
		e->stage = e->min_stage = st;
		return e;
	}
	return parse_compare(ps);
}

/* operand { word operand }, as one flat node when there are several. */
static struct expr *parse_binary(struct parser *ps, const char *word, enum node_kind kind,
                                 struct expr *(*operand)(struct parser *))
{
	struct expr **kids = NULL;
	size_t n = 0, cap = 0;
	struct expr *e = operand(ps);

	if (e == NULL || !accept_word(ps, word))
		return e;
	do {
		mem_grow((void **)&kids, n, &cap, sizeof(*kids));
		kids[n++] = e;
		e = operand(ps);
		if (e == NULL) {
			while (n > 0)
				expr_free(kids[--n]);
			free(kids);
			return NULL;
		}
	} while (accept_word(ps, word));
	mem_grow((void **)&kids, n, &cap, sizeof(*kids));
	kids[n++] = e;
	return node_join(ps, kind, kids, n);
}

static struct expr *parse_and(struct parser *ps)
{
	return parse_binary(ps, "and", NODE_AND, parse_unary);
}

static struct expr *parse_or(struct parser *ps)
{
	return parse_binary(ps, "or", NODE_OR, parse_and);
}

struct expr *expr_compile(const char *src, const struct expr_env *env, struct diag *d, char *err,
                          size_t errlen)
{
	struct parser ps = {src, src, env, d, err, errlen, false, 0};
	struct expr *e;

	if (errlen > 0)
		err[0] = '\0';
	e = parse_or(&ps);
	if (e != NULL) {
		skip_space(&ps);
		if (*ps.p != '\0') {
			fail(&ps, ps.p, "unexpected '%.20s'", ps.p);
			expr_free(e);
			return NULL;
		}
	}
	if (e == NULL && !ps.failed)
		fail(&ps, ps.p, "bad condition");
	return e;
}

enum stage expr_stage(const struct expr *e)
{
	return e->stage;
}

enum stage expr_min_stage(const struct expr *e)
{
	return e->min_stage;
}

void expr_macros(const struct expr *e, void (*fn)(const char *name, void *ctx), void *ctx)
{
	if (e == NULL)
		return;
	if (e->kind == NODE_CMP && e->field == FIELD_MACRO)
		fn(e->arg, ctx);
	for (size_t i = 0; i < e->nkids; i++)
		expr_macros(e->kids[i], fn, ctx);
}

/* ---- evaluation ---- */

struct match_ctx {
	const struct expr *e;
	struct conn *conn;
	bool caseless;
	bool error;
	char *err;
	size_t errlen;
};

static bool match_regex(struct match_ctx *m, const char *value, size_t len)
{
	int rc = pcre2_match(m->e->re, (PCRE2_SPTR)value, len, 0, 0, conn_match_data(m->conn),
	                     conn_match_context(m->conn));

	if (rc >= 0)
		return true;
	if (rc != PCRE2_ERROR_NOMATCH && !m->error) {
		PCRE2_UCHAR msg[200];
		pcre2_get_error_message(rc, msg, sizeof(msg));
		m->error = true;
		snprintf(m->err, m->errlen, "regex match failed: %s", (char *)msg);
		return true; /* stop iterating: the result is an error */
	}
	return false;
}

static bool match_value(const char *value, size_t len, void *arg)
{
	struct match_ctx *m = arg;
	const struct expr *e = m->e;

	switch (e->op) {
	case OP_EQ:
		if (len != e->len)
			return false;
		return m->caseless ? strncasecmp(value, e->str, len) == 0
		                   : memcmp(value, e->str, len) == 0;
	case OP_CONTAINS:
		return memmem(value, len, e->str, e->len) != NULL;
	case OP_MATCH:
		return match_regex(m, value, len);
	case OP_IN:
		return list_index_match(e->index, value);
	default:
		assert(!"numeric operators do not iterate values");
		return false;
	}
}

static bool field_caseless(enum field_id id)
{
	switch (field_by_id(id)->type) {
	case FIELD_T_HOST:
	case FIELD_T_ADDR:
	case FIELD_T_LOCAL:
	case FIELD_T_DOMAIN:
		return true;
	default:
		return false;
	}
}

static enum expr_result eval_number(const struct expr *e, struct conn *c)
{
	unsigned long long v;
	bool r;

	if (!conn_number(c, e->field, &v))
		return EXPR_FALSE;
	switch (e->op) {
	case OP_EQ:
		r = v == e->num;
		break;
	case OP_NE:
		r = v != e->num;
		break;
	case OP_LT:
		r = v < e->num;
		break;
	case OP_LE:
		r = v <= e->num;
		break;
	case OP_GT:
		r = v > e->num;
		break;
	case OP_GE:
		r = v >= e->num;
		break;
	default:
		assert(!"not a numeric operator");
		r = false;
	}
	return r ? EXPR_TRUE : EXPR_FALSE;
}

static enum expr_result eval_cmp(const struct expr *e, struct conn *c, char *err, size_t errlen)
{
	struct match_ctx m = {e, c, field_caseless(e->field), false, err, errlen};
	bool found;

	unsigned long long v;

	if (field_by_id(e->field)->type == FIELD_T_NUMBER && e->op != OP_MATCH &&
	    e->op != OP_CONTAINS && e->op != OP_IN)
		return eval_number(e, c);
	if (e->negated && !conn_number(c, e->field, &v))
		return EXPR_FALSE;
	found = conn_each_value(c, e->field, e->arg, match_value, &m);
	if (m.error)
		return EXPR_ERROR;
	return found != e->negated ? EXPR_TRUE : EXPR_FALSE;
}

enum expr_result expr_eval(const struct expr *e, struct conn *c, char *err, size_t errlen)
{
	enum expr_result l;

	switch (e->kind) {
	case NODE_AND:
	case NODE_OR:
		/* AND stops at the first operand that is not true, OR at the first not false */
		l = e->kind == NODE_AND ? EXPR_TRUE : EXPR_FALSE;
		for (size_t i = 0;
		     i < e->nkids && l == (e->kind == NODE_AND ? EXPR_TRUE : EXPR_FALSE); i++)
			l = expr_eval(e->kids[i], c, err, errlen);
		return l;
	case NODE_NOT:
		l = expr_eval(e->kids[0], c, err, errlen);
		return l == EXPR_ERROR ? l : l == EXPR_TRUE ? EXPR_FALSE : EXPR_TRUE;
	case NODE_EXISTS:
		return conn_header_exists(c, e->arg) ? EXPR_TRUE : EXPR_FALSE;
	case NODE_TAGGED:
		return conn_tagged(c, e->tag) ? EXPR_TRUE : EXPR_FALSE;
	case NODE_CMP:
		return eval_cmp(e, c, err, errlen);
	}
	assert(!"unknown node");
	return EXPR_ERROR;
}
