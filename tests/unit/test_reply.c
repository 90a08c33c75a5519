/*
 * test_reply.c - reply codes, templates, expansion and rendering.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "reply.h"

/* ---- a fake source of field values ---- */

struct fake {
	const char *values[FIELD_COUNT];
	const char *header_name; /* the only header ${header("...")} finds */
	const char *header_value;
	const char *macro_name; /* the only macro ${macro("...")} finds */
	const char *macro_value;
	int calls;
	char last_arg[64];
};

static size_t fake_value(void *ctx, enum field_id id, const char *arg, char *buf, size_t buflen)
{
	struct fake *f = ctx;
	const char *v = f->values[id] != NULL ? f->values[id] : "";
	size_t len;

	f->calls++;
	snprintf(f->last_arg, sizeof(f->last_arg), "%s", arg != NULL ? arg : "(null)");
	if (id == FIELD_HEADER)
		v = strcasecmp(arg, f->header_name) == 0 ? f->header_value : "";
	if (id == FIELD_MACRO)
		v = strcmp(arg, f->macro_name) == 0 ? f->macro_value : "";
	len = strlen(v);
	if (buflen > 0) {
		size_t n = len < buflen ? len : buflen - 1;

		memcpy(buf, v, n);
		buf[n] = '\0';
	}
	return len;
}

static void fake_init(struct fake *f)
{
	memset(f, 0, sizeof(*f));
	f->values[FIELD_CLIENT_IP] = "192.0.2.7";
	f->values[FIELD_HELO] = "mx.example.org";
	f->values[FIELD_RCPT] = "user@example.invalid";
	f->values[FIELD_RULE] = "no-such-domain";
	f->header_name = "Subject";
	f->header_value = "Buy now";
	f->macro_name = "{i}";
	f->macro_value = "4ABC123";
}

/* ---- helpers ---- */

static char err[1024];

static struct reply *new_reply(enum action a, const char *code, const char *xcode, const char *line)
{
	const char *lines[1] = {line};

	err[0] = '\0';
	return reply_new(a, code, xcode, line != NULL ? lines : NULL, line != NULL ? 1 : 0, err,
	                 sizeof(err));
}

static void assert_reply_error(enum action a, const char *code, const char *xcode, const char *line,
                               const char *msg)
{
	struct reply *r = new_reply(a, code, xcode, line);

	if (r != NULL)
		fail_msg("code=%s xcode=%s line=%s: accepted, expected \"%s\"", code ? code : "-",
		         xcode ? xcode : "-", line ? line : "-", msg);
	assert_string_equal(err, msg);
}

static void assert_template_error(const char *text, const char *msg)
{
	struct reply_template *t;

	err[0] = '\0';
	t = reply_template_new(text, err, sizeof(err));
	if (t != NULL) {
		reply_template_free(t);
		fail_msg("template \"%s\": accepted, expected \"%s\"", text, msg);
	}
	assert_string_equal(err, msg);
}

/* Expands text with the fake values into out (outlen bytes); returns the truncated flag. */
static bool expand(const char *text, struct fake *f, char *out, size_t outlen)
{
	struct reply_template *t;
	bool truncated;

	t = reply_template_new(text, err, sizeof(err));
	if (t == NULL)
		fail_msg("template \"%s\": %s", text, err);
	truncated = reply_template_expand(t, fake_value, f, out, outlen);
	reply_template_free(t);
	return truncated;
}

static char *repeat(char *buf, char c, size_t n)
{
	memset(buf, c, n);
	buf[n] = '\0';
	return buf;
}

/* ---- defaults ---- */

static void test_default_reject(void **state)
{
	struct reply_text rt;
	struct reply *r;

	(void)state;
	r = new_reply(ACTION_REJECT, NULL, NULL, NULL);
	assert_non_null(r);
	assert_string_equal(reply_code(r), "550");
	assert_string_equal(reply_xcode(r), "5.7.1");
	assert_int_equal(reply_stage(r), STAGE_CONNECT);
	reply_render(r, NULL, NULL, &rt);
	assert_string_equal(rt.code, "550");
	assert_string_equal(rt.xcode, "5.7.1");
	assert_int_equal(rt.nlines, 1);
	assert_false(rt.truncated);
	assert_string_equal(rt.lines[0], "Rejected by policy");
	reply_free(r);
}

static void test_default_tempfail(void **state)
{
	struct reply_text rt;
	struct reply *r;

	(void)state;
	r = new_reply(ACTION_TEMPFAIL, NULL, NULL, NULL);
	assert_non_null(r);
	assert_string_equal(reply_code(r), "451");
	assert_string_equal(reply_xcode(r), "4.7.1");
	reply_render(r, NULL, NULL, &rt);
	assert_int_equal(rt.nlines, 1);
	assert_string_equal(rt.lines[0], "Try again later");
	reply_free(r);
}

static void test_code_without_xcode(void **state)
{
	struct reply *r;

	(void)state;
	r = new_reply(ACTION_TEMPFAIL, "421", NULL, "closing");
	assert_non_null(r);
	assert_string_equal(reply_code(r), "421");
	assert_string_equal(reply_xcode(r), "4.7.1");
	reply_free(r);
	r = new_reply(ACTION_REJECT, "553", NULL, NULL);
	assert_non_null(r);
	assert_string_equal(reply_xcode(r), "5.7.1");
	reply_free(r);
}

static void test_xcode_without_code(void **state)
{
	struct reply *r;

	(void)state;
	r = new_reply(ACTION_REJECT, NULL, "5.1.2", NULL);
	assert_non_null(r);
	assert_string_equal(reply_code(r), "550");
	assert_string_equal(reply_xcode(r), "5.1.2");
	reply_free(r);
	assert_reply_error(ACTION_TEMPFAIL, NULL, "5.7.1", NULL,
	                   "xcode 5.7.1 does not match code 451: its class must be 4");
}

/* ---- codes ---- */

static void test_valid_codes(void **state)
{
	static const char *reject[] = {"550", "551", "552", "553", "554", "555",
	                               "500", "501", "502", "503", "504"};
	static const char *tempfail[] = {"421", "450", "451", "452", "455"};
	struct reply *r;

	(void)state;
	for (size_t i = 0; i < sizeof(reject) / sizeof(reject[0]); i++) {
		r = new_reply(ACTION_REJECT, reject[i], "5.7.0", "no");
		if (r == NULL)
			fail_msg("reject %s: %s", reject[i], err);
		assert_string_equal(reply_code(r), reject[i]);
		assert_string_equal(reply_xcode(r), "5.7.0");
		reply_free(r);
	}
	for (size_t i = 0; i < sizeof(tempfail) / sizeof(tempfail[0]); i++) {
		r = new_reply(ACTION_TEMPFAIL, tempfail[i], "4.3.0", "later");
		if (r == NULL)
			fail_msg("tempfail %s: %s", tempfail[i], err);
		assert_string_equal(reply_code(r), tempfail[i]);
		reply_free(r);
	}
}

#define REJECT_USE "(use 550, 551, 552, 553, 554, 555 or 500-504)"
#define TEMPFAIL_USE "(use 421, 450, 451, 452 or 455)"

static void test_invalid_reject_codes(void **state)
{
	static const char *bad[] = {"250", "354", "421", "451", "505", "549", "556", "599"};
	static const char *odd[] = {"5", "55", "5500", "abc", "", "55O", " 550", "550 "};
	char msg[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(msg, sizeof(msg), "code %s is not a valid reject code " REJECT_USE,
		         bad[i]);
		assert_reply_error(ACTION_REJECT, bad[i], NULL, NULL, msg);
	}
	/* What does not look like a code is quoted. */
	for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		snprintf(msg, sizeof(msg), "code '%s' is not a valid reject code " REJECT_USE,
		         odd[i]);
		assert_reply_error(ACTION_REJECT, odd[i], NULL, NULL, msg);
	}
	assert_reply_error(ACTION_REJECT, "250", NULL, NULL,
	                   "code 250 is not a valid reject code " REJECT_USE);
	assert_reply_error(ACTION_REJECT, "", NULL, NULL,
	                   "code '' is not a valid reject code " REJECT_USE);
}

static void test_invalid_tempfail_codes(void **state)
{
	static const char *bad[] = {"550", "400", "420", "422", "453",
	                            "454", "456", "499", "250", "500"};
	char msg[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(msg, sizeof(msg), "code %s is not a valid tempfail code " TEMPFAIL_USE,
		         bad[i]);
		assert_reply_error(ACTION_TEMPFAIL, bad[i], NULL, NULL, msg);
	}
	assert_reply_error(ACTION_TEMPFAIL, "550", NULL, NULL,
	                   "code 550 is not a valid tempfail code " TEMPFAIL_USE);
}

/* ---- xcodes ---- */

static void test_xcode_valid(void **state)
{
	static const char *good[] = {"5.0.0",  "5.7.1",     "5.1.10", "5.999.999",
	                             "5.10.0", "5.100.100", "5.9.9"};
	struct reply *r;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		r = new_reply(ACTION_REJECT, "554", good[i], NULL);
		if (r == NULL)
			fail_msg("xcode %s: %s", good[i], err);
		assert_string_equal(reply_xcode(r), good[i]);
		reply_free(r);
	}
	r = new_reply(ACTION_TEMPFAIL, "450", "4.2.2", NULL);
	assert_non_null(r);
	reply_free(r);
}

static void test_xcode_syntax(void **state)
{
	static const char *bad[] = {"5.7",    "5.7.",     "5..1",     ".7.1",  "5.07.1", "5.7.01",
	                            "5.00.1", "5.1000.1", "5.7.1000", "3.7.1", "1.7.1",  "55.7.1",
	                            "5.7.1 ", " 5.7.1",   "5.7.1.2",  "5.a.1", "5-7-1",  "x",
	                            "",       "5",        "5.7.-1"};
	char msg[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(msg, sizeof(msg),
		         "bad xcode '%s': expected class.subject.detail such as 5.7.1", bad[i]);
		assert_reply_error(ACTION_REJECT, "550", bad[i], NULL, msg);
	}
	assert_reply_error(ACTION_REJECT, "550", "5.7", NULL,
	                   "bad xcode '5.7': expected class.subject.detail such as 5.7.1");
}

static void test_xcode_class_mismatch(void **state)
{
	(void)state;
	assert_reply_error(ACTION_REJECT, "550", "4.7.1", NULL,
	                   "xcode 4.7.1 does not match code 550: its class must be 5");
	assert_reply_error(ACTION_REJECT, "550", "2.0.0", NULL,
	                   "xcode 2.0.0 does not match code 550: its class must be 5");
	assert_reply_error(ACTION_TEMPFAIL, "421", "5.7.1", NULL,
	                   "xcode 5.7.1 does not match code 421: its class must be 4");
}

/* A bad code is reported before a bad xcode or a bad text. */
static void test_error_order(void **state)
{
	(void)state;
	assert_reply_error(ACTION_REJECT, "250", "x", "${nope}",
	                   "code 250 is not a valid reject code " REJECT_USE);
	assert_reply_error(ACTION_REJECT, "550", "x", "${nope}",
	                   "bad xcode 'x': expected class.subject.detail such as 5.7.1");
}

/* ---- templates: parsing ---- */

static void test_template_field_errors(void **state)
{
	(void)state;
	assert_template_error("Hi ${nope} there", "unknown field 'nope' in '${nope}'");
	assert_template_error("${Client_IP}", "unknown field 'Client_IP' in '${Client_IP}'");
	assert_template_error("${nope(\"x\")}", "unknown field 'nope' in '${nope(\"x\")}'");
	assert_template_error("${tagged(\"spam\")}",
	                      "field 'tagged' cannot be expanded in '${tagged(\"spam\")}'");
	assert_template_error("${body}", "field 'body' cannot be expanded in '${body}'");
	assert_template_error("${header}", "field 'header' needs an argument in '${header}' "
	                                   "(write ${header(\"name\")})");
	assert_template_error("${macro}", "field 'macro' needs an argument in '${macro}' "
	                                  "(write ${macro(\"name\")})");
	assert_template_error("${client_ip(\"x\")}",
	                      "field 'client_ip' takes no argument in '${client_ip(\"x\")}'");
	/* The reference is quoted whole even when its argument holds a '}'. */
	assert_template_error("${rcpt(\"{i}\")}",
	                      "field 'rcpt' takes no argument in '${rcpt(\"{i}\")}'");
}

static void test_template_syntax_errors(void **state)
{
	(void)state;
	assert_template_error("${", "unterminated reference '${'");
	assert_template_error("at ${client_ip", "unterminated reference '${client_ip'");
	assert_template_error("${header(", "unterminated reference '${header('");
	assert_template_error("${header(\"Subj", "unterminated reference '${header(\"Subj'");
	assert_template_error("${header(\"Subject\"",
	                      "unterminated reference '${header(\"Subject\"'");
	assert_template_error("${header(\"Subject\")",
	                      "unterminated reference '${header(\"Subject\")'");
	assert_template_error("${}", "bad reference '${}': expected ${name} or ${name(\"arg\")}");
	assert_template_error("${client ip}",
	                      "bad reference '${client ip}': expected ${name} or ${name(\"arg\")}");
	assert_template_error("${header(Subject)}",
	                      "bad reference '${header(Subject)}': expected ${name(\"arg\")}");
	assert_template_error("${header(\"Subject\"x)}",
	                      "bad reference '${header(\"Subject\"x)}': expected ${name(\"arg\")}");
	assert_template_error("${header(\"Subject\") }",
	                      "bad reference '${header(\"Subject\") }': expected '}'");
	/* The quoted reference stops at a control character: a message is one line. */
	assert_template_error("${client_ip\r\n}",
	                      "bad reference '${client_ip': expected ${name} or ${name(\"arg\")}");
	assert_template_error("${header(\"Subj\r\n",
	                      "control character in '${header(\"Subj': not allowed in names");
	assert_template_error("${header(\"\")}", "empty argument in '${header(\"\")}'");
	assert_template_error("${header(\"a\tb\")}",
	                      "control character in '${header(\"a': not allowed in names");
}

static void test_template_control_chars(void **state)
{
	(void)state;
	assert_template_error("a\rb", "control character 0x0D in text at offset 1");
	assert_template_error("line\n", "control character 0x0A in text at offset 4");
	assert_template_error("\tx", "control character 0x09 in text at offset 0");
	assert_template_error("x\x01", "control character 0x01 in text at offset 1");
	assert_template_error("x\x1f", "control character 0x1F in text at offset 1");
	assert_template_error("del\x7f", "control character 0x7F in text at offset 3");
	/* Found after a reference too. */
	assert_template_error("${rule}\r", "control character 0x0D in text at offset 7");
}

static void test_template_literals(void **state)
{
	struct reply_template *t;
	char out[128];
	struct fake f;

	(void)state;
	fake_init(&f);
	assert_false(expand("costs $$5, $5 or 5$", &f, out, sizeof(out)));
	assert_string_equal(out, "costs $5, $5 or 5$");
	assert_false(expand("$$$$ $${rule} $$${rule}", &f, out, sizeof(out)));
	assert_string_equal(out, "$$ ${rule} $no-such-domain");
	assert_false(expand("", &f, out, sizeof(out)));
	assert_string_equal(out, "");
	assert_false(expand("100% { } \" ( ) caf\xc3\xa9", &f, out, sizeof(out)));
	assert_string_equal(out, "100% { } \" ( ) caf\xc3\xa9");
	assert_int_equal(f.calls, 1);

	t = reply_template_new("Hello ${helo}, $$5${rule}", err, sizeof(err));
	assert_non_null(t);
	assert_int_equal(reply_template_literal_len(t), strlen("Hello , $5"));
	reply_template_free(t);
}

static void test_template_stage(void **state)
{
	static const struct {
		const char *text;
		enum stage stage;
	} cases[] = {
	        {"plain", STAGE_CONNECT},
	        {"${client_ip} ${rule}", STAGE_CONNECT},
	        {"${helo}", STAGE_HELO},
	        {"${client_ip} ${helo}", STAGE_HELO},
	        {"${from}", STAGE_MAIL},
	        {"${rcpt} ${helo}", STAGE_RCPT},
	        {"${helo} ${rcpt_domain}", STAGE_RCPT},
	        {"${header(\"Subject\")} ${rcpt}", STAGE_HEADER},
	};
	struct reply_template *t;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		t = reply_template_new(cases[i].text, err, sizeof(err));
		assert_non_null(t);
		if (reply_template_stage(t) != cases[i].stage)
			fail_msg("\"%s\": stage %d, expected %d", cases[i].text,
			         reply_template_stage(t), cases[i].stage);
		reply_template_free(t);
	}
}

static void test_reply_stage(void **state)
{
	const char *lines[] = {"from ${client_ip}", "to ${rcpt}", "helo ${helo}"};
	struct reply *r;

	(void)state;
	r = reply_new(ACTION_REJECT, NULL, NULL, lines, 3, err, sizeof(err));
	assert_non_null(r);
	assert_int_equal(reply_stage(r), STAGE_RCPT);
	reply_free(r);
	r = reply_new(ACTION_REJECT, NULL, NULL, lines, 1, err, sizeof(err));
	assert_non_null(r);
	assert_int_equal(reply_stage(r), STAGE_CONNECT);
	reply_free(r);
}

/* ---- templates: expansion ---- */

static void test_expand_fields(void **state)
{
	char out[256];
	struct fake f;

	(void)state;
	fake_init(&f);
	assert_false(expand("${client_ip} ${rcpt}: ${rule}", &f, out, sizeof(out)));
	assert_string_equal(out, "192.0.2.7 user@example.invalid: no-such-domain");
	assert_false(expand("<${header(\"subject\")}>", &f, out, sizeof(out)));
	assert_string_equal(out, "<Buy now>");
	assert_string_equal(f.last_arg, "subject");
	assert_false(expand("id=${macro(\"{i}\")}.", &f, out, sizeof(out)));
	assert_string_equal(out, "id=4ABC123.");
	assert_string_equal(f.last_arg, "{i}");
	assert_false(expand("[${header(\"X-None\")}]", &f, out, sizeof(out)));
	assert_string_equal(out, "[]");
	/* A field with no value expands to "". */
	assert_false(expand("[${auth_user}]", &f, out, sizeof(out)));
	assert_string_equal(out, "[]");
	assert_string_equal(f.last_arg, "(null)");
}

static void test_expand_without_fn(void **state)
{
	struct reply_template *t;
	char out[64];

	(void)state;
	t = reply_template_new("ip=${client_ip}.", err, sizeof(err));
	assert_non_null(t);
	assert_false(reply_template_expand(t, NULL, NULL, out, sizeof(out)));
	assert_string_equal(out, "ip=.");
	reply_template_free(t);
}

static void test_expand_sanitizes_values(void **state)
{
	char out[256];
	struct fake f;

	(void)state;
	fake_init(&f);
	f.values[FIELD_HELO] = "evil\r\n250 OK\tx\x01y\x7fz";
	assert_false(expand("HELO ${helo}", &f, out, sizeof(out)));
	assert_string_equal(out, "HELO evil  250 OK x y z");
	f.values[FIELD_HELO] = "caf\xc3\xa9\xff";
	assert_false(expand("${helo}", &f, out, sizeof(out)));
	assert_string_equal(out, "caf???");
	/* '%' is left for reply_escape_percent. */
	f.values[FIELD_HELO] = "100%s%%";
	assert_false(expand("${helo} %", &f, out, sizeof(out)));
	assert_string_equal(out, "100%s%% %");
}

static void test_expand_truncates(void **state)
{
	char out[8];
	struct fake f;

	(void)state;
	fake_init(&f);
	f.values[FIELD_RULE] = "1234567";
	assert_false(expand("${rule}", &f, out, sizeof(out)));
	assert_string_equal(out, "1234567");
	f.values[FIELD_RULE] = "12345678";
	assert_true(expand("${rule}", &f, out, sizeof(out)));
	assert_string_equal(out, "1234567");
	f.values[FIELD_RULE] = "1234";
	assert_false(expand("abc${rule}", &f, out, sizeof(out)));
	assert_string_equal(out, "abc1234");
	assert_true(expand("abc${rule}d", &f, out, sizeof(out)));
	assert_string_equal(out, "abc1234");
	/* Full, then an empty value: nothing was lost. */
	f.values[FIELD_HELO] = "";
	assert_false(expand("abc${rule}${helo}", &f, out, sizeof(out)));
	assert_true(expand("abcdefgh", &f, out, sizeof(out)));
	assert_string_equal(out, "abcdefg");
	/* The value's bytes past the cut are sanitized too: only the kept part reaches out. */
	f.values[FIELD_RULE] = "ab\r\ncdefgh";
	assert_true(expand("${rule}", &f, out, sizeof(out)));
	assert_string_equal(out, "ab  cde");
}

/* A cut inside literal UTF-8 text never leaves half a character. */
static void test_expand_utf8_cut(void **state)
{
	char out[8];
	struct fake f;

	(void)state;
	fake_init(&f);
	f.values[FIELD_RULE] = "12345";
	/* "12345" + e-acute (2 bytes) fills 7 bytes exactly. */
	assert_false(expand("${rule}\xc3\xa9", &f, out, sizeof(out)));
	assert_string_equal(out, "12345\xc3\xa9");
	f.values[FIELD_RULE] = "123456";
	assert_true(expand("${rule}\xc3\xa9", &f, out, sizeof(out)));
	assert_string_equal(out, "123456");
	/* A 4-byte character cut after 1, 2 or 3 of its bytes. */
	f.values[FIELD_RULE] = "1234";
	assert_true(expand("${rule}\xf0\x9f\x98\x80", &f, out, sizeof(out)));
	assert_string_equal(out, "1234");
	f.values[FIELD_RULE] = "123";
	assert_false(expand("${rule}\xf0\x9f\x98\x80", &f, out, sizeof(out)));
	assert_string_equal(out, "123\xf0\x9f\x98\x80");
}

/* ---- lengths ---- */

static void test_line_length_at_load(void **state)
{
	char line[600], msg[256];
	struct reply_text rt;
	struct reply *r;

	(void)state;
	/* 512 = "550 5.7.1 " (10) + 500 + CRLF (2). */
	r = new_reply(ACTION_REJECT, "550", "5.7.1", repeat(line, 'a', 500));
	if (r == NULL)
		fail_msg("500 octets: %s", err);
	reply_render(r, NULL, NULL, &rt);
	assert_false(rt.truncated);
	assert_int_equal(strlen(rt.code) + 1 + strlen(rt.xcode) + 1 + strlen(rt.lines[0]) + 2,
	                 REPLY_LINE_MAX);
	reply_free(r);
	assert_reply_error(ACTION_REJECT, "550", "5.7.1", repeat(line, 'a', 501),
	                   "message line 1 is 501 octets long (at most 500 with code 550 5.7.1)");
	/* A longer xcode leaves less room. */
	r = new_reply(ACTION_REJECT, "550", "5.100.100", repeat(line, 'a', 496));
	assert_non_null(r);
	reply_free(r);
	assert_reply_error(
	        ACTION_REJECT, "550", "5.100.100", repeat(line, 'a', 497),
	        "message line 1 is 497 octets long (at most 496 with code 550 5.100.100)");
	/* "$$" counts as one octet, references count as none. */
	repeat(line, 'a', 499);
	strcat(line, "$$${rule}");
	r = new_reply(ACTION_REJECT, NULL, NULL, line);
	if (r == NULL)
		fail_msg("500 literal octets and a reference: %s", err);
	reply_free(r);
	strcat(line, "b");
	snprintf(msg, sizeof(msg),
	         "message line 1 is 501 octets long (at most 500 with code 550 5.7.1)");
	assert_reply_error(ACTION_REJECT, NULL, NULL, line, msg);
}

static void test_line_length_at_render(void **state)
{
	char line[600], value[600];
	struct reply_text rt;
	struct reply *r;
	struct fake f;

	(void)state;
	fake_init(&f);
	repeat(line, 'a', 490);
	strcat(line, "${rule}");
	r = new_reply(ACTION_REJECT, NULL, NULL, line);
	assert_non_null(r);

	f.values[FIELD_RULE] = repeat(value, 'r', 10);
	reply_render(r, fake_value, &f, &rt);
	assert_false(rt.truncated);
	assert_int_equal(strlen(rt.lines[0]), 500);

	f.values[FIELD_RULE] = repeat(value, 'r', 11);
	reply_render(r, fake_value, &f, &rt);
	assert_true(rt.truncated);
	assert_int_equal(strlen(rt.lines[0]), 500);
	assert_memory_equal(rt.lines[0] + 490, "rrrrrrrrrr", 10);

	f.values[FIELD_RULE] = repeat(value, 'r', 599);
	reply_render(r, fake_value, &f, &rt);
	assert_true(rt.truncated);
	assert_int_equal(strlen(rt.lines[0]), 500);
	reply_free(r);
}

static void test_line_count(void **state)
{
	const char *lines[REPLY_MAX_LINES + 1];
	struct reply_text rt;
	struct reply *r;

	(void)state;
	for (size_t i = 0; i < REPLY_MAX_LINES + 1; i++)
		lines[i] = "line ${rule}";
	r = reply_new(ACTION_REJECT, NULL, NULL, lines, REPLY_MAX_LINES, err, sizeof(err));
	assert_non_null(r);
	reply_render(r, NULL, NULL, &rt);
	assert_int_equal(rt.nlines, REPLY_MAX_LINES);
	assert_string_equal(rt.lines[REPLY_MAX_LINES - 1], "line ");
	reply_free(r);
	r = reply_new(ACTION_REJECT, NULL, NULL, lines, REPLY_MAX_LINES + 1, err, sizeof(err));
	assert_null(r);
	assert_string_equal(err, "message has 33 lines (at most 32)");
}

/* ---- rendering ---- */

static void test_multiline_render(void **state)
{
	const char *lines[] = {"Recipient domain ${rcpt} is not served here.",
	                       "See https://example.org/policy?a=100%", "rule ${rule}"};
	struct reply_text rt;
	struct reply *r;
	struct fake f;

	(void)state;
	fake_init(&f);
	r = reply_new(ACTION_REJECT, "550", "5.1.2", lines, 3, err, sizeof(err));
	assert_non_null(r);
	reply_render(r, fake_value, &f, &rt);
	assert_string_equal(rt.code, "550");
	assert_string_equal(rt.xcode, "5.1.2");
	assert_int_equal(rt.nlines, 3);
	assert_false(rt.truncated);
	assert_string_equal(rt.lines[0],
	                    "Recipient domain user@example.invalid is not served here.");
	assert_string_equal(rt.lines[1], "See https://example.org/policy?a=100%");
	assert_string_equal(rt.lines[2], "rule no-such-domain");
	/* A second render starts afresh. */
	f.values[FIELD_RCPT] = "x@y";
	reply_render(r, fake_value, &f, &rt);
	assert_string_equal(rt.lines[0], "Recipient domain x@y is not served here.");
	reply_free(r);
}

static void test_multiline_errors(void **state)
{
	const char *lines[] = {"fine", "bad ${nope}", "also\rbad"};
	char line[600];
	struct reply_template *t;
	struct reply *r;

	(void)state;
	r = reply_new(ACTION_REJECT, NULL, NULL, lines, 3, err, sizeof(err));
	assert_null(r);
	assert_string_equal(err, "message line 2: unknown field 'nope' in '${nope}'");
	lines[1] = "ok";
	r = reply_new(ACTION_REJECT, NULL, NULL, lines, 3, err, sizeof(err));
	assert_null(r);
	assert_string_equal(err, "message line 3: control character 0x0D in text at offset 4");
	lines[2] = repeat(line, 'z', 501);
	r = reply_new(ACTION_TEMPFAIL, NULL, NULL, lines, 3, err, sizeof(err));
	assert_null(r);
	assert_string_equal(err,
	                    "message line 3 is 501 octets long (at most 500 with code 451 4.7.1)");
	/* One line: the error is the template's own. */
	assert_reply_error(ACTION_REJECT, NULL, NULL, "${nope}",
	                   "unknown field 'nope' in '${nope}'");
	/* 8-bit text: an SMTP reply is ASCII; header and log templates may hold UTF-8. */
	lines[2] = "Zur\xc3\xbc"
	           "ckgewiesen";
	r = reply_new(ACTION_REJECT, NULL, NULL, lines, 3, err, sizeof(err));
	assert_null(r);
	assert_string_equal(err, "message line 3: byte 0xC3 at offset 3 is not ASCII (an SMTP "
	                         "reply is ASCII)");
	assert_reply_error(ACTION_TEMPFAIL, NULL, NULL, "\xff",
	                   "byte 0xFF at offset 0 is not ASCII (an SMTP reply is ASCII)");
	t = reply_template_new("Gr\xc3\xbc\xc3\x9f"
	                       "e ${helo}",
	                       err, sizeof(err));
	assert_non_null(t);
	reply_template_free(t);
}

/* nlines 0 with a non-NULL array still means the default text. */
static void test_zero_lines(void **state)
{
	const char *lines[] = {"unused"};
	struct reply_text rt;
	struct reply *r;

	(void)state;
	r = reply_new(ACTION_TEMPFAIL, "450", "4.2.0", lines, 0, err, sizeof(err));
	assert_non_null(r);
	reply_render(r, NULL, NULL, &rt);
	assert_int_equal(rt.nlines, 1);
	assert_string_equal(rt.lines[0], "Try again later");
	reply_free(r);
}

static void test_escape_percent(void **state)
{
	char out[64];

	(void)state;
	reply_escape_percent("100%", out, sizeof(out));
	assert_string_equal(out, "100%%");
	reply_escape_percent("%%s%", out, sizeof(out));
	assert_string_equal(out, "%%%%s%%");
	reply_escape_percent("no percent", out, sizeof(out));
	assert_string_equal(out, "no percent");
	reply_escape_percent("", out, sizeof(out));
	assert_string_equal(out, "");
	/* Exactly 2 * strlen + 1. */
	reply_escape_percent("%%%", out, 7);
	assert_string_equal(out, "%%%%%%");
	/* Too short: cut, but never after half a "%%". */
	reply_escape_percent("ab%cd", out, 4);
	assert_string_equal(out, "ab");
	reply_escape_percent("ab%cd", out, 5);
	assert_string_equal(out, "ab%%");
	reply_escape_percent("x", out, 1);
	assert_string_equal(out, "");
}

static void test_text_format(void **state)
{
	const char *lines[] = {"first ${rule}", "second", "third"};
	struct reply_text rt;
	char out[128];
	struct reply *r;
	struct fake f;

	(void)state;
	fake_init(&f);
	r = reply_new(ACTION_REJECT, "554", "5.7.0", lines, 3, err, sizeof(err));
	assert_non_null(r);
	reply_render(r, fake_value, &f, &rt);
	reply_text_format(&rt, out, sizeof(out));
	assert_string_equal(out, "554 5.7.0 first no-such-domain second third");
	reply_text_format(&rt, out, 14);
	assert_string_equal(out, "554 5.7.0 fir");
	reply_text_format(&rt, out, 1);
	assert_string_equal(out, "");
	reply_free(r);

	r = new_reply(ACTION_TEMPFAIL, NULL, NULL, NULL);
	assert_non_null(r);
	reply_render(r, NULL, NULL, &rt);
	reply_text_format(&rt, out, sizeof(out));
	assert_string_equal(out, "451 4.7.1 Try again later");
	reply_free(r);
}

static void test_free_null(void **state)
{
	(void)state;
	reply_free(NULL);
	reply_template_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_default_reject),
	        cmocka_unit_test(test_default_tempfail),
	        cmocka_unit_test(test_code_without_xcode),
	        cmocka_unit_test(test_xcode_without_code),
	        cmocka_unit_test(test_valid_codes),
	        cmocka_unit_test(test_invalid_reject_codes),
	        cmocka_unit_test(test_invalid_tempfail_codes),
	        cmocka_unit_test(test_xcode_valid),
	        cmocka_unit_test(test_xcode_syntax),
	        cmocka_unit_test(test_xcode_class_mismatch),
	        cmocka_unit_test(test_error_order),
	        cmocka_unit_test(test_template_field_errors),
	        cmocka_unit_test(test_template_syntax_errors),
	        cmocka_unit_test(test_template_control_chars),
	        cmocka_unit_test(test_template_literals),
	        cmocka_unit_test(test_template_stage),
	        cmocka_unit_test(test_reply_stage),
	        cmocka_unit_test(test_expand_fields),
	        cmocka_unit_test(test_expand_without_fn),
	        cmocka_unit_test(test_expand_sanitizes_values),
	        cmocka_unit_test(test_expand_truncates),
	        cmocka_unit_test(test_expand_utf8_cut),
	        cmocka_unit_test(test_line_length_at_load),
	        cmocka_unit_test(test_line_length_at_render),
	        cmocka_unit_test(test_line_count),
	        cmocka_unit_test(test_multiline_render),
	        cmocka_unit_test(test_multiline_errors),
	        cmocka_unit_test(test_zero_lines),
	        cmocka_unit_test(test_escape_percent),
	        cmocka_unit_test(test_text_format),
	        cmocka_unit_test(test_free_null),
	};
	int rc;

	rc = cmocka_run_group_tests(tests, NULL, NULL);
	return rc ? 1 : 0;
}
