/*
 * test_expr.c - the condition language: parsing (operators, precedence, fields, errors with
 * their column), stages, macros, and evaluation against a connection driven by hand.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conn.h"
#include "diag.h"
#include "expr.h"
#include "list.h"
#include "policy.h"

/* ---- a compile environment: two named lists and one tag ---- */

struct env_state {
	struct list *lists[2];
	struct diag *diag;
};

static struct list *env_find_list(void *ctx, const char *name)
{
	struct env_state *st = ctx;

	for (size_t i = 0; i < 2; i++)
		if (st->lists[i] != NULL && strcmp(list_name(st->lists[i]), name) == 0)
			return st->lists[i];
	return NULL;
}

static int env_find_tag(void *ctx, const char *name, enum stage *stage)
{
	(void)ctx;
	if (strcmp(name, "seen") == 0) {
		*stage = STAGE_MAIL;
		return 0;
	}
	return -1;
}

static struct env_state est;
static struct expr_env env = {env_find_list, env_find_tag, &est, "test.rules", 1};

static int env_setup(void **state)
{
	(void)state;
	est.diag = diag_new();
	est.lists[0] = list_new("nets", "test.rules", 1);
	list_add_item(est.lists[0], "192.0.2.0/24", "test.rules", 2);
	list_add_item(est.lists[0], "2001:db8::/32", "test.rules", 2);
	est.lists[1] = list_new("badnets", "test.rules", 5);
	list_add_item(est.lists[1], "10.0.0.0/33", "test.rules", 6);
	return 0;
}

static int env_teardown(void **state)
{
	(void)state;
	list_free(est.lists[0]);
	list_free(est.lists[1]);
	diag_free(est.diag);
	memset(&est, 0, sizeof(est));
	return 0;
}

static struct expr *compile(const char *src)
{
	char err[512];
	struct expr *e = expr_compile(src, &env, est.diag, err, sizeof(err));

	if (e == NULL)
		fail_msg("'%s' does not compile: %s", src, err);
	return e;
}

static void compile_fails(const char *src, const char *expected)
{
	char err[512];
	struct expr *e = expr_compile(src, &env, est.diag, err, sizeof(err));

	if (e != NULL) {
		expr_free(e);
		fail_msg("'%s' compiled; expected error: %s", src, expected);
	}
	if (strcmp(err, expected) != 0)
		fail_msg("'%s':\n  expected: %s\n  actual:   %s", src, expected, err);
}

/* ---- a connection with a fake MTA ---- */

struct macros {
	const char *name[8];
	const char *value[8];
};

static const char *fake_macro(void *ctx, const char *name)
{
	struct macros *m = ctx;

	for (size_t i = 0; m != NULL && i < 8 && m->name[i] != NULL; i++)
		if (strcmp(m->name[i], name) == 0)
			return m->value[i];
	return NULL;
}

static struct macros mtab = {
        {"{auth_authen}", "i", "{tls_version}", "{mycro}"},
        {"Alice", "4ABC12", "TLSv1.3", "X-42"},
};

/* A policy without rules: conn_run() only moves the connection from stage to stage. */
static struct conn *conn_empty(size_t body_limit)
{
	struct policy *p = calloc(1, sizeof(*p));
	struct conn *c;

	assert_non_null(p);
	p->refs = 1;
	p->body_limit = body_limit;
	c = conn_new(p, fake_macro, &mtab);
	assert_non_null(c);
	return c;
}

static void stage(struct conn *c, enum stage s)
{
	struct conn_verdict v;

	conn_run(c, s, &v);
	assert_int_equal(v.action, ACTION_CONTINUE);
}

static char *argv_mail[] = {"<Bob@Example.COM>", "SIZE=2048", "BODY=8BITMIME", NULL};

/* Connection up to the header stage: two recipients accepted, three headers. */
static struct conn *conn_at_header(void)
{
	struct conn *c = conn_empty(1 << 20);
	char *r1[] = {"<one@Dest.example>", NULL};
	char *r2[] = {"<two@other.example>", "NOTIFY=NEVER", NULL};

	conn_connect(c, "mail.client.example", "192.0.2.7", 40025);
	stage(c, STAGE_CONNECT);
	conn_helo(c, "Mail.Client.Example");
	stage(c, STAGE_HELO);
	conn_mail(c, argv_mail);
	stage(c, STAGE_MAIL);
	conn_rcpt(c, r1);
	stage(c, STAGE_RCPT);
	conn_rcpt(c, r2);
	stage(c, STAGE_RCPT);
	conn_header(c, "Subject", " Hello\r\n World");
	conn_header(c, "Received", " from a");
	conn_header(c, "received", " from b");
	stage(c, STAGE_HEADER);
	return c;
}

static enum expr_result eval(struct conn *c, const char *src)
{
	char err[256] = "";
	struct expr *e = compile(src);
	enum expr_result r = expr_eval(e, c, err, sizeof(err));

	expr_free(e);
	return r;
}

#define assert_true_expr(c, src)                                                                   \
	do {                                                                                       \
		if (eval(c, src) != EXPR_TRUE)                                                     \
			fail_msg("expected true: %s", src);                                        \
	} while (0)
#define assert_false_expr(c, src)                                                                  \
	do {                                                                                       \
		if (eval(c, src) != EXPR_FALSE)                                                    \
			fail_msg("expected false: %s", src);                                       \
	} while (0)

/* ---- parsing ---- */

static void test_every_operator_compiles(void **state)
{
	static const char *const ok[] = {
	        "helo == \"x\"",
	        "helo != \"x\"",
	        "helo =~ /^x$/",
	        "helo !~ /^x$/i",
	        "helo contains \"x\"",
	        "helo in [\"x\", \".y\"]",
	        "client_ip in @nets",
	        "client_port < 10",
	        "client_port <= 10",
	        "size > 1K",
	        "size >= 2M",
	        "size == 1G",
	        "exists header(\"Subject\")",
	        "not helo == \"x\"",
	        "helo == \"a\" and helo == \"b\"",
	        "helo == \"a\" or helo == \"b\"",
	        "(helo == \"a\")",
	        "tagged(\"seen\")",
	        "helo=~/x/msix",
	        "  helo  ==  \"x\"  ",
	        "helo in []",
	        "client_port in [25, 587]",
	        "header(\"Subject\") == \"say \\\"hi\\\" \\\\ bye\"",
	        "helo =~ /a\\/b/",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		expr_free(compile(ok[i]));
}

static void test_every_field_and_its_stage(void **state)
{
	static const struct {
		const char *src;
		enum stage stage;
	} t[] = {
	        {"client_ip == \"192.0.2.1\"", STAGE_CONNECT},
	        {"client_name == \"x\"", STAGE_CONNECT},
	        {"client_port == 25", STAGE_CONNECT},
	        {"helo == \"x\"", STAGE_HELO},
	        {"from == \"x\"", STAGE_MAIL},
	        {"from_local == \"x\"", STAGE_MAIL},
	        {"from_domain == \"x\"", STAGE_MAIL},
	        {"auth_user == \"x\"", STAGE_MAIL},
	        {"rcpt == \"x\"", STAGE_RCPT},
	        {"rcpt_local == \"x\"", STAGE_RCPT},
	        {"rcpt_domain == \"x\"", STAGE_RCPT},
	        {"rcpt_count > 1", STAGE_RCPT},
	        {"header(\"Subject\") == \"x\"", STAGE_HEADER},
	        {"exists header(\"Subject\")", STAGE_HEADER},
	        {"header_count > 1", STAGE_HEADER},
	        {"body contains \"x\"", STAGE_BODY},
	        {"size > 1", STAGE_EOM},
	        {"macro(\"j\") == \"x\"", STAGE_CONNECT},
	        {"macro(\"{auth_type}\") == \"x\"", STAGE_MAIL},
	        {"macro(\"{mail_mailer}\") == \"x\"", STAGE_MAIL},
	        {"macro(\"{rcpt_mailer}\") == \"x\"", STAGE_RCPT},
	        {"macro(\"{tls_version}\") == \"x\"", STAGE_HELO},
	        {"macro(\"{cert_subject}\") == \"x\"", STAGE_HELO},
	        {"queue_id == \"x\"", STAGE_HEADER},
	        {"tls_version == \"x\"", STAGE_HELO},
	        {"tagged(\"seen\")", STAGE_MAIL},
	        {"helo == \"x\" and rcpt_domain == \"y\"", STAGE_RCPT},
	        {"rcpt_domain == \"y\" or client_ip == \"192.0.2.1\"", STAGE_RCPT},
	        {"not body contains \"x\"", STAGE_BODY},
	        {"(helo == \"x\" or from == \"y\") and client_port > 1", STAGE_MAIL},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct expr *e = compile(t[i].src);
		if (expr_stage(e) != t[i].stage)
			fail_msg("%s: stage %s, expected %s", t[i].src, stage_name(expr_stage(e)),
			         stage_name(t[i].stage));
		expr_free(e);
	}
}

static void test_min_stage_size(void **state)
{
	struct expr *e;
	(void)state;
	e = compile("size > 10M");
	assert_int_equal(expr_stage(e), STAGE_EOM);
	assert_int_equal(expr_min_stage(e), STAGE_MAIL);
	expr_free(e);
	e = compile("not (helo == \"x\" and size > 1)");
	assert_int_equal(expr_stage(e), STAGE_EOM);
	assert_int_equal(expr_min_stage(e), STAGE_MAIL);
	expr_free(e);
	e = compile("size > 1 or rcpt == \"a@b\"");
	assert_int_equal(expr_stage(e), STAGE_EOM);
	assert_int_equal(expr_min_stage(e), STAGE_RCPT);
	expr_free(e);
	e = compile("helo == \"x\"");
	assert_int_equal(expr_min_stage(e), STAGE_HELO);
	expr_free(e);
}

struct seen_macros {
	char names[8][32];
	size_t n;
};

static void collect(const char *name, void *ctx)
{
	struct seen_macros *s = ctx;

	assert_true(s->n < 8);
	snprintf(s->names[s->n++], sizeof(s->names[0]), "%s", name);
}

static void test_macros_listed(void **state)
{
	struct seen_macros s = {0};
	struct expr *e =
	        compile("macro(\"{a}\") == \"1\" or (helo == \"x\" and not macro(\"b\") =~ /y/)");
	(void)state;
	expr_macros(e, collect, &s);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.names[0], "{a}");
	assert_string_equal(s.names[1], "b");
	expr_free(e);
}

static void test_errors_name_the_column(void **state)
{
	static const struct {
		const char *src, *err;
	} t[] = {
	        {"clinet_ip == \"x\"", "unknown field 'clinet_ip' at column 1"},
	        {"helo == \"x\" and rule == \"y\"", "unknown field 'rule' at column 17"},
	        {"", "expected a field name, found the end of the condition at column 1"},
	        {"   ", "expected a field name, found the end of the condition at column 4"},
	        {"helo == \"x\" and",
	         "expected a field name, found the end of the condition at column 16"},
	        {"not", "expected a field name, found the end of the condition at column 4"},
	        {"== \"x\"", "expected a field name, found '=' at column 1"},
	        {"helo", "expected an operator after helo (the condition ends here) at column 5"},
	        {"helo ~= \"x\"", "expected an operator after helo at column 6"},
	        {"helo == \"x", "unterminated string at column 9"},
	        {"helo == x", "expected a \"string\" at column 9"},
	        {"helo < 5", "helo is not a number: <, <=, >, >= compare numbers at column 6"},
	        {"client_port < \"x\"", "expected a number at column 15"},
	        {"size > 10X", "bad number '10X' (digits with an optional K, M or G) at column 8"},
	        {"(helo == \"x\"", "expected ')' at column 13"},
	        {"helo == \"x\")", "unexpected ')' at column 12"},
	        {"helo == \"x\" helo == \"y\"", "unexpected 'helo == \"y\"' at column 13"},
	        {"helo =~ \"x\"", "expected a /regex/ after the operator at column 9"},
	        {"helo =~ /abc", "unterminated regex at column 9"},
	        {"helo =~ /x/q", "unknown regex flag 'q' (use i, m, s or x) at column 12"},
	        {"helo =~ /a(b/", "bad regex: missing closing parenthesis at column 13"},
	        {"helo in \"x\"", "expected [ ... ] or @list after 'in' at column 9"},
	        {"helo in @nolist", "unknown list '@nolist' at column 9"},
	        {"helo in @", "expected a list name after '@' at column 10"},
	        {"helo in [\"a\" \"b\"]", "expected ',' or ']' in list at column 14"},
	        {"client_ip in [\"10.0.0.0/33\"]",
	         "bad CIDR '10.0.0.0/33': prefix length must be 0..32 at column 15"},
	        {"header == \"x\"", "header needs an argument, as in header(\"name\") at column 8"},
	        {"header(\"\") == \"x\"", "header(\"\") needs a name at column 1"},
	        {"header(\"a\" == \"x\"", "expected ')' at column 12"},
	        {"tagged(\"nope\")", "tag \"nope\" is not set by any earlier rule at column 8"},
	        {"tagged \"seen\"", "tagged needs an argument, as in tagged(\"name\") at column 8"},
	        {"helo in [\"a\",]", "expected a \"string\" at column 14"},
	        /* last: the column of the field after "exists" (currently 7, the space) */
	        {"exists helo", "exists takes header(\"Name\"), not helo at column 8"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		compile_fails(t[i].src, t[i].err);
}

static void test_bad_named_list_reports_entries(void **state)
{
	char err[256];
	struct expr *e;
	size_t n = diag_count(est.diag);
	(void)state;
	e = expr_compile("client_ip in @badnets", &env, est.diag, err, sizeof(err));
	assert_null(e);
	assert_string_equal(err, "list '@badnets' has bad entries");
	assert_int_equal(diag_count(est.diag), n + 1);
	assert_string_equal(diag_line(est.diag, n),
	                    "test.rules:6: list 'badnets': bad CIDR '10.0.0.0/33': prefix length "
	                    "must be 0..32");
	/* asked again, the list stays bad without a second message */
	e = expr_compile("client_ip in @badnets", &env, est.diag, err, sizeof(err));
	assert_null(e);
	assert_int_equal(diag_count(est.diag), n + 1);
	/* the same list as strings is fine */
	expr_free(compile("auth_user in @badnets"));
}

/* ---- evaluation ---- */

static void test_precedence(void **state)
{
	struct conn *c = conn_at_header();
	(void)state;
	/* helo is "Mail.Client.Example" */
	assert_true_expr(c, "helo == \"mail.client.example\"");
	/* and binds tighter than or: T or (F and F) */
	assert_true_expr(c, "helo == \"mail.client.example\" or helo == \"y\" and helo == \"z\"");
	assert_false_expr(c,
	                  "(helo == \"mail.client.example\" or helo == \"y\") and helo == \"z\"");
	/* not binds tighter than and: (not F) and F */
	assert_false_expr(c, "not helo == \"y\" and helo == \"z\"");
	assert_true_expr(c, "not (helo == \"y\" and helo == \"z\")");
	/* not binds tighter than or: (not T) or T */
	assert_true_expr(c, "not helo == \"mail.client.example\" or client_port == 40025");
	assert_false_expr(c, "not (helo == \"mail.client.example\" or client_port == 40025)");
	assert_true_expr(c, "not not helo == \"mail.client.example\"");
	/* left to right for a chain of the same operator */
	assert_true_expr(c, "helo == \"a\" or helo == \"b\" or client_port == 40025");
	assert_false_expr(c, "client_port == 40025 and helo == \"mail.client.example\" and "
	                     "helo == \"c\"");
	assert_true_expr(c, "((((client_port == 40025))))");
	conn_free(c);
}

/* Nesting is bounded (parsing and evaluation recurse on a worker's stack); long flat chains of
   one operator are not nesting, however long. */
static void test_nesting_bounded_chains_flat(void **state)
{
	struct conn *c = conn_at_header();
	size_t n = 5000, len = n * 32 + 64;
	char *src = malloc(len), *p = src;
	(void)state;

	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "%shelo == \"h%zu\"", i ? " or " : "", i);
	strcpy(p, " or client_port == 40025");
	assert_true_expr(c, src);
	memset(src, '(', 201);
	strcpy(src + 201, "helo == \"x\"");
	compile_fails(src, "condition too deep: more than 200 nested levels at column 202");
	for (p = src, n = 0; n < 201; n++)
		p += sprintf(p, "not ");
	strcpy(p, "helo == \"x\"");
	compile_fails(src, "condition too deep: more than 200 nested levels at column 804");
	memset(src, '(', 200);
	strcpy(src + 200, "client_port == 40025");
	memset(src + strlen(src), ')', 200);
	src[200 + strlen("client_port == 40025") + 200] = '\0';
	assert_true_expr(c, src);
	free(src);
	conn_free(c);
}

static void test_operators(void **state)
{
	struct conn *c = conn_at_header();
	(void)state;
	assert_true_expr(c, "client_port == 40025");
	assert_true_expr(c, "client_port != 25");
	assert_false_expr(c, "client_port != 40025");
	assert_true_expr(c, "client_port < 40026");
	assert_false_expr(c, "client_port < 40025");
	assert_true_expr(c, "client_port <= 40025");
	assert_false_expr(c, "client_port <= 40024");
	assert_true_expr(c, "client_port > 40024");
	assert_false_expr(c, "client_port > 40025");
	assert_true_expr(c, "client_port >= 40025");
	assert_false_expr(c, "client_port >= 40026");
	assert_true_expr(c, "client_port in [25, 40025]");
	assert_false_expr(c, "client_port in [25, 587]");
	assert_true_expr(c, "client_port =~ /^400/");
	assert_true_expr(c, "client_port contains \"002\"");
	assert_true_expr(c, "header(\"Subject\") =~ /^hello/i");
	assert_false_expr(c, "header(\"Subject\") =~ /^hello/");
	assert_true_expr(c, "header(\"Subject\") !~ /^hello/");
	assert_false_expr(c, "header(\"Subject\") !~ /^hello/i");
	assert_true_expr(c, "header(\"Subject\") contains \"lo Wo\"");
	assert_false_expr(c, "header(\"Subject\") contains \"lo wo\"");
	assert_true_expr(c, "exists header(\"SUBJECT\")");
	assert_false_expr(c, "exists header(\"X-Spam\")");
	assert_true_expr(c, "not exists header(\"X-Spam\")");
	assert_true_expr(c, "client_ip in @nets");
	assert_true_expr(c, "client_name in [\".client.example\"]");
	assert_false_expr(c, "client_name in [\"client.example\"]");
	/* regex flags: m, s, x */
	assert_true_expr(c, "header(\"Subject\") =~ /H e l l o/x");
	assert_false_expr(c, "header(\"Subject\") =~ /H e l l o/");
	conn_free(c);
}

static void test_regex_flags_m_s(void **state)
{
	struct conn *c = conn_empty(1 << 20);
	char *argv[] = {"<a@b>", NULL};
	static const unsigned char body[] = "first line\r\nsecond line\r\n";
	(void)state;
	conn_mail(c, argv);
	stage(c, STAGE_MAIL);
	stage(c, STAGE_HEADER);
	conn_body(c, body, sizeof(body) - 1);
	stage(c, STAGE_BODY);
	assert_true_expr(c, "body =~ /^second/m");
	assert_false_expr(c, "body =~ /^second/");
	assert_true_expr(c, "body =~ /first.*second/s");
	assert_false_expr(c, "body =~ /first.*second/");
	assert_true_expr(c, "body =~ /LINE.*LINE/is");
	conn_free(c);
}

/* Every field, with the value a rule sees. */
static void test_field_values(void **state)
{
	struct conn *c = conn_at_header();
	(void)state;
	assert_true_expr(c, "client_ip == \"192.0.2.7\"");
	assert_true_expr(c, "client_name == \"MAIL.client.example\"");
	assert_true_expr(c, "client_port == 40025");
	assert_true_expr(c, "helo == \"mail.client.example\"");
	/* addresses: no angle brackets, no ESMTP parameters; case-insensitive */
	assert_true_expr(c, "from == \"bob@example.com\"");
	assert_true_expr(c, "from_local == \"BOB\"");
	assert_true_expr(c, "from_domain == \"example.com\"");
	assert_true_expr(c, "from_domain in [\"EXAMPLE.com\"]");
	assert_true_expr(c, "from =~ /^Bob@Example\\.COM$/");
	/* auth_user is {auth_authen}: a plain string, case-sensitive */
	assert_true_expr(c, "auth_user == \"Alice\"");
	assert_false_expr(c, "auth_user == \"alice\"");
	/* at header: any accepted recipient */
	assert_true_expr(c, "rcpt == \"one@dest.example\"");
	assert_true_expr(c, "rcpt == \"two@other.example\"");
	assert_true_expr(c, "rcpt_local == \"two\"");
	assert_true_expr(c, "rcpt_domain == \"dest.example\"");
	assert_false_expr(c, "rcpt_domain == \"nowhere.example\"");
	assert_true_expr(c, "rcpt_count == 2");
	/* folded header joined, leading space removed */
	assert_true_expr(c, "header(\"subject\") == \"Hello World\"");
	/* several headers of one name: any of them */
	assert_true_expr(c, "header(\"Received\") == \"from a\"");
	assert_true_expr(c, "header(\"Received\") == \"from b\"");
	assert_false_expr(c, "header(\"Received\") == \"From b\"");
	assert_true_expr(c, "header(\"X-None\") == \"\"");
	assert_true_expr(c, "header_count == 3");
	/* size before eom: the SIZE= declaration */
	assert_true_expr(c, "size == 2K");
	assert_true_expr(c, "macro(\"{mycro}\") == \"X-42\"");
	assert_true_expr(c, "macro(\"{unsent}\") == \"\"");
	assert_true_expr(c, "queue_id == \"4ABC12\"");
	assert_true_expr(c, "tls_version == \"TLSv1.3\"");
	conn_free(c);
}

static void test_rcpt_at_rcpt_is_current(void **state)
{
	struct conn *c = conn_empty(1 << 20);
	char *m[] = {"<>", NULL};
	char *r1[] = {"<first@one.example>", NULL};
	char *r2[] = {"<second@two.example>", NULL};
	(void)state;
	conn_mail(c, m);
	stage(c, STAGE_MAIL);
	/* the null sender is "" and has no declared size */
	assert_true_expr(c, "from == \"\"");
	assert_true_expr(c, "from_domain == \"\"");
	assert_false_expr(c, "size > 0");
	assert_false_expr(c, "size == 0");
	conn_rcpt(c, r1);
	stage(c, STAGE_RCPT);
	/* the stage stays rcpt until the next conn_run: the current recipient only */
	conn_rcpt(c, r2);
	assert_true_expr(c, "rcpt == \"second@two.example\"");
	assert_true_expr(c, "rcpt_domain == \"two.example\"");
	assert_false_expr(c, "rcpt_domain == \"one.example\"");
	assert_true_expr(c, "rcpt_count == 1");
	stage(c, STAGE_RCPT);
	stage(c, STAGE_HEADER);
	assert_true_expr(c, "rcpt_domain == \"one.example\"");
	assert_true_expr(c, "rcpt_domain == \"two.example\"");
	assert_true_expr(c, "rcpt_count == 2");
	conn_free(c);
}

static void test_body_chunks_and_limit(void **state)
{
	struct conn *c = conn_empty(12);
	char *m[] = {"<a@b>", NULL};
	(void)state;
	conn_mail(c, m);
	stage(c, STAGE_MAIL);
	conn_header(c, "Subject", " x");
	stage(c, STAGE_HEADER);
	conn_body(c, (const unsigned char *)"abcfo", 5);
	conn_body(c, (const unsigned char *)"obarXXXXXXXXXXneedle", 20);
	stage(c, STAGE_BODY);
	/* a match spans the chunks */
	assert_true_expr(c, "body =~ /foobar/");
	assert_true_expr(c, "body contains \"foob\"");
	/* beyond body_limit (12 bytes) is not scanned */
	assert_false_expr(c, "body contains \"needle\"");
	assert_true_expr(c, "body == \"abcfoobarXXX\"");
	/* size counts everything: "Subject: x\r\n" (12) + "\r\n" (2) + 25 */
	assert_true_expr(c, "size == 39");
	conn_free(c);
}

static void test_regex_match_limit_is_an_error(void **state)
{
	struct conn *c = conn_at_header();
	char err[256] = "";
	struct expr *e;
	(void)state;
	conn_header(c, "X-Evil", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!");
	stage(c, STAGE_HEADER);
	e = compile("header(\"X-Evil\") =~ /(a+)+$/");
	assert_int_equal(expr_eval(e, c, err, sizeof(err)), EXPR_ERROR);
	assert_string_equal(err, "regex match failed: match limit exceeded");
	expr_free(e);
	/* the error propagates through not, and, or, but a decided and/or stops early */
	e = compile("not header(\"X-Evil\") =~ /(a+)+$/");
	assert_int_equal(expr_eval(e, c, err, sizeof(err)), EXPR_ERROR);
	expr_free(e);
	e = compile("helo == \"nope\" or header(\"X-Evil\") =~ /(a+)+$/");
	assert_int_equal(expr_eval(e, c, err, sizeof(err)), EXPR_ERROR);
	expr_free(e);
	e = compile("helo == \"nope\" and header(\"X-Evil\") =~ /(a+)+$/");
	assert_int_equal(expr_eval(e, c, err, sizeof(err)), EXPR_FALSE);
	expr_free(e);
	e = compile("client_port == 40025 or header(\"X-Evil\") =~ /(a+)+$/");
	assert_int_equal(expr_eval(e, c, err, sizeof(err)), EXPR_TRUE);
	expr_free(e);
	conn_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_every_operator_compiles),
	        cmocka_unit_test(test_every_field_and_its_stage),
	        cmocka_unit_test(test_min_stage_size),
	        cmocka_unit_test(test_macros_listed),
	        cmocka_unit_test(test_errors_name_the_column),
	        cmocka_unit_test(test_bad_named_list_reports_entries),
	        cmocka_unit_test(test_precedence),
	        cmocka_unit_test(test_nesting_bounded_chains_flat),
	        cmocka_unit_test(test_operators),
	        cmocka_unit_test(test_regex_flags_m_s),
	        cmocka_unit_test(test_field_values),
	        cmocka_unit_test(test_rcpt_at_rcpt_is_current),
	        cmocka_unit_test(test_body_chunks_and_limit),
	        cmocka_unit_test(test_regex_match_limit_is_an_error),
	};
	int rc = cmocka_run_group_tests(tests, env_setup, env_teardown);

	return rc ? 1 : 0;
}
