/*
 * test_eval.c - rules evaluated end to end: rule files loaded with policy_load(), a connection
 * driven stage by stage as the libmilter glue would, verdicts, modifications and log lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "conn.h"
#include "diag.h"
#include "log.h"
#include "policy.h"
#include "reply.h"
#include "testfile.h"

#ifndef MP_SRCDIR
#define MP_SRCDIR "."
#endif

/* ---- captured log ---- */

#define LOG_KEEP 64
static char logbuf[LOG_KEEP][4096];
static int logpri[LOG_KEEP];
static size_t nlog;

static void sink(int priority, const char *line, void *ctx)
{
	(void)ctx;
	if (nlog < LOG_KEEP) {
		logpri[nlog] = priority;
		snprintf(logbuf[nlog++], sizeof(logbuf[0]), "%s", line);
	}
}

/* The first captured line containing s, or NULL. */
static const char *log_find(const char *s)
{
	for (size_t i = 0; i < nlog; i++)
		if (strstr(logbuf[i], s) != NULL)
			return logbuf[i];
	return NULL;
}

/* ---- fake MTA macros ---- */

static const char *queue_id; /* macro "i"; NULL: not sent */
static const char *auth_authen;
static const char *tls_version;

static const char *fake_macro(void *ctx, const char *name)
{
	(void)ctx;
	if (strcmp(name, "i") == 0)
		return queue_id;
	if (strcmp(name, "{auth_authen}") == 0)
		return auth_authen;
	if (strcmp(name, "{tls_version}") == 0)
		return tls_version;
	return NULL;
}

/* ---- loading ---- */

static char tmpdir[64];
static int nfile;

/* The path of a new file tmpdir/name (caller frees). */
static char *write_rules(const char *name, const char *text)
{
	return strdup(testfile_write(tmpdir, name, text, strlen(text)));
}

static struct policy *load_patterns(char **patterns, size_t n, enum on_error oe, size_t body_limit)
{
	struct config cfg = {0};
	struct diag *d = diag_new();
	struct policy *p;

	cfg.path = "/etc/milter-policy/milter-policy.conf";
	cfg.policies = patterns;
	cfg.npolicies = n;
	cfg.on_error = oe;
	cfg.body_limit = body_limit;
	p = policy_load(&cfg, d);
	if (p == NULL) {
		for (size_t i = 0; i < diag_count(d); i++)
			print_error("%s\n", diag_line(d, i));
		diag_free(d);
		fail_msg("the policy does not load");
	}
	assert_int_equal(diag_count(d), 0);
	diag_free(d);
	return p;
}

/* Loads one rule file with the given text. */
static struct policy *load_opts(const char *text, enum on_error oe, size_t body_limit)
{
	char name[32];
	char *path;
	struct policy *p;

	snprintf(name, sizeof(name), "t%d.rules", nfile++);
	path = write_rules(name, text);
	p = load_patterns(&path, 1, oe, body_limit);
	unlink(path);
	free(path);
	return p;
}

static struct policy *load(const char *text)
{
	return load_opts(text, ON_ERROR_TEMPFAIL, 1 << 20);
}

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_eval.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	log_set_sink(sink, NULL);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	log_set_sink(NULL, NULL);
	rmdir(tmpdir);
	return 0;
}

static int reset(void **state)
{
	(void)state;
	nlog = 0;
	queue_id = NULL;
	auth_authen = NULL;
	tls_version = NULL;
	log_set_level(LOG_INFO);
	return 0;
}

/* ---- driving a connection ---- */

static struct conn_verdict V;

static enum action run(struct conn *c, enum stage s)
{
	conn_run(c, s, &V);
	return V.action;
}

static struct conn *open_conn(struct policy *p, const char *ip)
{
	/* the connection takes over a reference of its own */
	struct conn *c = conn_new(policy_ref(p), fake_macro, NULL);

	assert_non_null(c);
	conn_connect(c, "host.example", ip, 40000);
	return c;
}

static enum action helo(struct conn *c, const char *name)
{
	conn_helo(c, name);
	return run(c, STAGE_HELO);
}

static enum action mail(struct conn *c, const char *addr, const char *param)
{
	char *argv[] = {(char *)addr, (char *)param, NULL};

	conn_mail(c, argv);
	return run(c, STAGE_MAIL);
}

static enum action rcpt(struct conn *c, const char *addr)
{
	char *argv[] = {(char *)addr, NULL};

	conn_rcpt(c, argv);
	return run(c, STAGE_RCPT);
}

static enum action header(struct conn *c, const char *name, const char *value)
{
	conn_header(c, name, value);
	return ACTION_CONTINUE;
}

static enum action body(struct conn *c, const char *text)
{
	conn_body(c, (const unsigned char *)text, strlen(text));
	return ACTION_CONTINUE;
}

/* End of headers, body, end of message: the first decision, or CONTINUE. */
static enum action finish(struct conn *c)
{
	if (run(c, STAGE_HEADER) != ACTION_CONTINUE)
		return V.action;
	if (run(c, STAGE_BODY) != ACTION_CONTINUE)
		return V.action;
	return run(c, STAGE_EOM);
}

static void assert_reply(const char *code, const char *xcode, const char *line0)
{
	assert_string_equal(V.reply.code, code);
	assert_string_equal(V.reply.xcode, xcode);
	assert_true(V.reply.nlines >= 1);
	assert_string_equal(V.reply.lines[0], line0);
}

/* Names of the headers to add, "Name: value" joined with "|". */
static const char *added(struct conn *c)
{
	static char buf[2048];
	size_t n = conn_add_header_count(c);

	buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		const char *name, *value;
		conn_add_header_get(c, i, &name, &value);
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%s: %s", i ? "|" : "",
		         name, value);
	}
	return buf;
}

/* ---- stages and actions ---- */

static const char stages_rules[] =
        "rule \"c\" { when = 'client_ip == \"192.0.2.1\"' action = reject message = \"connect\" }\n"
        "rule \"h\" { when = 'helo == \"h.example\"' action = reject message = \"helo\" }\n"
        "rule \"m\" { when = 'from == \"m@x.example\"' action = reject message = \"mail\" }\n"
        "rule \"r\" { when = 'rcpt == \"r@x.example\"' action = reject message = \"rcpt\" }\n"
        "rule \"hd\" { when = 'header(\"Subject\") == \"hd\"' action = reject message = \"hdr\" }\n"
        "rule \"b\" { when = 'body contains \"bodyword\"' action = reject message = \"body\" }\n"
        "rule \"e\" { when = 'size > 1K' action = reject message = \"eom\" }\n";

struct trigger {
	const char *ip, *helo, *from, *rcpt, *subject, *body;
};

/* One session; returns the stage of the first decision (STAGE_COUNT if none). */
static enum stage session(struct policy *p, const struct trigger *t)
{
	struct conn *c = open_conn(p, t->ip);
	enum stage at = STAGE_COUNT;

	if (run(c, STAGE_CONNECT) != ACTION_CONTINUE)
		at = STAGE_CONNECT;
	else if (helo(c, t->helo) != ACTION_CONTINUE)
		at = STAGE_HELO;
	else if (mail(c, t->from, NULL) != ACTION_CONTINUE)
		at = STAGE_MAIL;
	else if (rcpt(c, t->rcpt) != ACTION_CONTINUE)
		at = STAGE_RCPT;
	else {
		header(c, "Subject", t->subject);
		body(c, t->body);
		if (run(c, STAGE_HEADER) != ACTION_CONTINUE)
			at = STAGE_HEADER;
		else if (run(c, STAGE_BODY) != ACTION_CONTINUE)
			at = STAGE_BODY;
		else if (run(c, STAGE_EOM) != ACTION_CONTINUE)
			at = STAGE_EOM;
	}
	conn_free(c);
	return at;
}

static void test_every_stage(void **state)
{
	struct policy *p = load(stages_rules);
	const struct trigger none = {"192.0.2.9",     "ok.example", "<a@x.example>",
	                             "<b@x.example>", " ok",        "fine\r\n"};
	struct trigger t;
	(void)state;

	for (int s = 0; s < STAGE_COUNT; s++)
		assert_int_equal(p->nstage_rules[s], 1);
	assert_string_equal(p->stage_rules[STAGE_EOM][0]->name, "e");

	assert_int_equal(session(p, &none), STAGE_COUNT);
	t = none, t.ip = "192.0.2.1";
	assert_int_equal(session(p, &t), STAGE_HELO); /* decided at connect, answered at HELO */
	assert_string_equal(V.reply.lines[0], "connect");
	t = none, t.helo = "H.Example";
	assert_int_equal(session(p, &t), STAGE_HELO);
	assert_string_equal(V.reply.lines[0], "helo");
	t = none, t.from = "<M@X.example>";
	assert_int_equal(session(p, &t), STAGE_MAIL);
	assert_string_equal(V.reply.lines[0], "mail");
	t = none, t.rcpt = "<r@x.example>";
	assert_int_equal(session(p, &t), STAGE_RCPT);
	assert_string_equal(V.reply.lines[0], "rcpt");
	t = none, t.subject = " hd";
	assert_int_equal(session(p, &t), STAGE_HEADER);
	assert_string_equal(V.reply.lines[0], "hdr");
	t = none, t.body = "a bodyword\r\n";
	assert_int_equal(session(p, &t), STAGE_BODY);
	assert_string_equal(V.reply.lines[0], "body");
	{
		static char big[1500];
		memset(big, 'x', sizeof(big) - 1);
		t = none, t.body = big;
		assert_int_equal(session(p, &t), STAGE_EOM);
		assert_string_equal(V.reply.lines[0], "eom");
	}
	policy_unref(p);
}

static void test_actions_and_first_match(void **state)
{
	struct policy *p =
	        load("rule \"note\" { when = 'from_domain == \"x.example\"' add_header = { \"X-A: "
	             "1\" } }\n"
	             "rule \"acc\" { when = 'from == \"boss@x.example\"' action = accept }\n"
	             "rule \"tf\" { when = 'from_domain == \"x.example\"' action = tempfail }\n"
	             "rule \"rej\" { when = 'from_domain == \"x.example\"' action = reject }\n"
	             "rule \"q\" { when = 'rcpt == \"q@y.example\"' action = quarantine\n"
	             "            quarantine = \"held for ${rcpt}\" }\n"
	             "rule \"after-q\" { when = 'rcpt == \"q@y.example\"' add_header = { \"X-B: "
	             "2\" } }\n"
	             "rule \"d\" { when = 'header(\"Subject\") == \"drop\"' action = discard }\n"
	             "rule \"never\" { when = 'rcpt_domain == \"y.example\"' action = reject }\n");
	struct conn *c;
	(void)state;

	/* continue runs on; the first terminal rule decides; later ones do not run */
	c = open_conn(p, "192.0.2.9");
	assert_int_equal(run(c, STAGE_CONNECT), ACTION_CONTINUE);
	assert_int_equal(helo(c, "a.example"), ACTION_CONTINUE);
	assert_int_equal(mail(c, "<someone@x.example>", NULL), ACTION_TEMPFAIL);
	assert_reply("451", "4.7.1", "Try again later");
	assert_int_equal(V.reply.nlines, 1);
	assert_string_equal(added(c), "X-A: 1");
	assert_null(log_find("rule=rej"));
	assert_non_null(log_find("tempfail: MAIL from host.example[192.0.2.9]: 451 4.7.1 "
	                         "<someone@x.example>: Try again later; rule=tf"));
	/* a new message after the refused one */
	assert_int_equal(mail(c, "<boss@x.example>", NULL), ACTION_ACCEPT);
	assert_false(V.connection);
	/* accept ends the checks of this message: the rcpt reject rule is not reached */
	assert_int_equal(rcpt(c, "<z@y.example>"), ACTION_ACCEPT);
	assert_int_equal(finish(c), ACTION_ACCEPT);
	/* the next message is checked again */
	assert_int_equal(mail(c, "<other@z.example>", NULL), ACTION_CONTINUE);
	assert_int_equal(rcpt(c, "<z@y.example>"), ACTION_REJECT);
	assert_reply("550", "5.7.1", "Rejected by policy");
	/* quarantine is not terminal: the next rule runs too */
	assert_int_equal(rcpt(c, "<q@y.example>"), ACTION_REJECT);
	assert_string_equal(conn_quarantine_reason(c), "held for q@y.example");
	assert_string_equal(added(c), "X-B: 2");
	assert_true(conn_wants_eom(c));
	/* discard at header */
	assert_int_equal(mail(c, "<other@z.example>", NULL), ACTION_CONTINUE);
	assert_null(conn_quarantine_reason(c));
	assert_int_equal(rcpt(c, "<keep@w.example>"), ACTION_CONTINUE);
	header(c, "Subject", " drop");
	assert_int_equal(finish(c), ACTION_DISCARD);
	assert_non_null(log_find("discard: HEADER from host.example[192.0.2.9]; rule=d "));
	conn_free(c);
	policy_unref(p);
}

static void test_files_in_sorted_order(void **state)
{
	char *b = write_rules(
	        "20-b.rules",
	        "rule \"b\" { when = 'helo == \"x\"' action = reject message = \"b\" }\n");
	char *a = write_rules(
	        "10-a.rules",
	        "rule \"a\" { when = 'helo == \"x\"' action = reject message = \"a\" }\n");
	char pattern[128];
	char *pp = pattern;
	struct policy *p;
	struct conn *c;
	(void)state;

	snprintf(pattern, sizeof(pattern), "%s/*.rules", tmpdir);
	p = load_patterns(&pp, 1, ON_ERROR_TEMPFAIL, 1024);
	assert_int_equal(p->nfiles, 2);
	c = open_conn(p, "192.0.2.9");
	assert_int_equal(helo(c, "x"), ACTION_REJECT);
	assert_string_equal(V.reply.lines[0], "a");
	conn_free(c);
	policy_unref(p);
	unlink(a);
	unlink(b);
	free(a);
	free(b);
}

/* ---- recipients and messages ---- */

static void test_per_recipient(void **state)
{
	struct policy *p =
	        load("rule \"bad-rcpt\" { when = 'rcpt_domain == \"bad.example\"' action = reject\n"
	             "  code = 550 xcode = \"5.1.2\" message = \"no ${rcpt_domain} here\" }\n"
	             "rule \"count\" { when = 'rcpt_count >= 1' stage = rcpt add_header = { "
	             "\"X-Second: ${rcpt}\" } }\n"
	             "rule \"hdr-bad\" { when = 'rcpt_domain == \"bad.example\"' stage = header\n"
	             "  add_header = { \"X-Bad: yes\" } }\n"
	             "rule \"hdr-good\" { when = 'rcpt_domain == \"good.example\"' stage = header\n"
	             "  add_header = { \"X-Good: ${rcpt}\" } }\n"
	             "rule \"eom-any\" { when = 'rcpt_local == \"two\" and rcpt_count == 2' stage "
	             "= eom\n"
	             "  add_header = { \"X-Eom: ${rcpt_count}\" } }\n");
	struct conn *c = open_conn(p, "192.0.2.9");
	(void)state;

	assert_int_equal(mail(c, "<a@b.example>", NULL), ACTION_CONTINUE);
	assert_int_equal(rcpt(c, "<one@bad.example>"), ACTION_REJECT);
	assert_reply("550", "5.1.2", "no bad.example here");
	assert_int_equal(rcpt(c, "<one@good.example>"), ACTION_CONTINUE);
	assert_int_equal(rcpt(c, "<two@Good.Example>"), ACTION_CONTINUE);
	assert_int_equal(finish(c), ACTION_CONTINUE);
	/* the refused recipient counts nowhere; the others are all there at header and eom */
	assert_string_equal(added(c), "X-Second: two@Good.Example|"
	                              "X-Good: one@good.example, two@Good.Example|X-Eom: 2");
	conn_free(c);
	policy_unref(p);
}

static void test_reset_between_messages(void **state)
{
	struct policy *p = load(
	        "rule \"conn-tag\" { when = 'helo == \"tagme\"' tag = \"ctag\" add_header = { "
	        "\"X-C: 1\" } }\n"
	        "rule \"msg-tag\" { when = 'from == \"t@x.example\"' tag = \"mtag\" add_header = { "
	        "\"X-M: ${from}\" } }\n"
	        "rule \"see-c\" { when = 'tagged(\"ctag\")' stage = rcpt add_header = { \"X-Saw-C: "
	        "1\" } }\n"
	        "rule \"see-m\" { when = 'tagged(\"mtag\")' stage = rcpt add_header = { \"X-Saw-M: "
	        "1\" } }\n"
	        "rule \"hdr\" { when = 'exists header(\"X-One\")' add_header = { \"X-H: 1\" } }\n");
	struct conn *c = open_conn(p, "192.0.2.9");
	(void)state;

	assert_int_equal(helo(c, "tagme"), ACTION_CONTINUE);
	assert_int_equal(mail(c, "<t@x.example>", "SIZE=10"), ACTION_CONTINUE);
	assert_int_equal(rcpt(c, "<r@y.example>"), ACTION_CONTINUE);
	header(c, "X-One", " 1");
	assert_int_equal(finish(c), ACTION_CONTINUE);
	assert_string_equal(added(c), "X-C: 1|X-M: t@x.example|X-Saw-C: 1|X-Saw-M: 1|X-H: 1");

	/* second message: the message tag, headers and recipients are gone; the connection's
	   HELO and its tag stay */
	assert_int_equal(mail(c, "<u@x.example>", NULL), ACTION_CONTINUE);
	assert_int_equal(rcpt(c, "<r2@y.example>"), ACTION_CONTINUE);
	assert_int_equal(finish(c), ACTION_CONTINUE);
	assert_string_equal(added(c), "X-C: 1|X-Saw-C: 1");

	/* an aborted message leaves nothing behind either */
	assert_int_equal(mail(c, "<t@x.example>", NULL), ACTION_CONTINUE);
	conn_abort(c);
	assert_int_equal(mail(c, "<u@x.example>", NULL), ACTION_CONTINUE);
	assert_int_equal(rcpt(c, "<r3@y.example>"), ACTION_CONTINUE);
	assert_string_equal(added(c), "X-C: 1|X-Saw-C: 1");
	conn_free(c);
	policy_unref(p);
}

/* ---- lists ---- */

static const char *matches(struct policy *p, const char *ip, const char *name, const char *helo_,
                           const char *from, const char *rcpt_)
{
	static char buf[2048];
	struct conn *c = conn_new(policy_ref(p), fake_macro, NULL);
	size_t n;

	conn_connect(c, name, ip, 1);
	assert_int_equal(run(c, STAGE_CONNECT), ACTION_CONTINUE);
	assert_int_equal(helo(c, helo_), ACTION_CONTINUE);
	assert_int_equal(mail(c, from, NULL), ACTION_CONTINUE);
	assert_int_equal(rcpt(c, rcpt_), ACTION_CONTINUE);
	buf[0] = '\0';
	n = conn_add_header_count(c);
	for (size_t i = 0; i < n; i++) {
		const char *hn, *hv;
		conn_add_header_get(c, i, &hn, &hv);
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%s", i ? " " : "", hv);
	}
	conn_free(c);
	return buf;
}

static void test_lists_through_rules(void **state)
{
	char *path;
	struct policy *p;
	(void)state;

	assert_true(asprintf(&path, "%s/tests/unit/rules/lists.rules",
	                     getenv("MP_TOP_SRCDIR") ? getenv("MP_TOP_SRCDIR") : MP_SRCDIR) > 0);
	p = load_patterns(&path, 1, ON_ERROR_TEMPFAIL, 1024);
	free(path);

	/* CIDR: /0 of each family, /32, /128, v4-mapped both ways */
	assert_string_equal(matches(p, "192.0.2.7", "n", "h", "<>", "<r@x>"), "all4 all6 host32");
	assert_string_equal(matches(p, "192.0.2.8", "n", "h", "<>", "<r@x>"), "all4 all6");
	assert_string_equal(matches(p, "2001:db8::7", "n", "h", "<>", "<r@x>"), "all6 host128");
	assert_string_equal(matches(p, "2001:db8::8", "n", "h", "<>", "<r@x>"), "all6");
	assert_string_equal(matches(p, "::ffff:198.51.100.9", "n", "h", "<>", "<r@x>"),
	                    "all4 all6 v4net");
	assert_string_equal(matches(p, "203.0.113.5", "n", "h", "<>", "<r@x>"), "all4 all6 mapped");
	assert_string_equal(matches(p, "203.0.114.5", "n", "h", "<>", "<r@x>"), "all4 all6");
	/* domains: exact, ".suffix" for subdomains only, case folding, trailing dot */
	assert_string_equal(matches(p, "2001:db8::8", "n", "EXAMPLE.com", "<a@Inline.Example>",
	                            "<r@deep.SUB.example.net>"),
	                    "all6 helo-domains from-domains rcpt-domains");
	assert_string_equal(matches(p, "2001:db8::8", "n", "sub.example.net", "<a@www.example.com>",
	                            "<r@trailing.example>"),
	                    "all6 rcpt-domains");
	/* addresses: exact, case-insensitive */
	assert_string_equal(matches(p, "2001:db8::8", "n", "h", "<bob@example.com>", "<r@x>"),
	                    "all6 from-domains senders");
	assert_string_equal(matches(p, "2001:db8::8", "n", "h", "<bob@example.com.au>", "<r@x>"),
	                    "all6");
	/* inline suffix entries on client_name */
	assert_string_equal(matches(p, "2001:db8::8", "mx.client.example", "h", "<>", "<r@x>"),
	                    "all6 inline-suffix");
	assert_string_equal(matches(p, "2001:db8::8", "client.example", "h", "<>", "<r@x>"),
	                    "all6");
	assert_string_equal(matches(p, "2001:db8::8", "Exact.Example", "h", "<>", "<r@x>"),
	                    "all6 inline-suffix");
	policy_unref(p);
}

/* ---- replies ---- */

static void test_replies(void **state)
{
	struct policy *p = load(
	        "rule \"multi\" { when = 'helo == \"multi\"' action = reject code = 554\n"
	        "  message = { \"HELO ${helo} refused from ${client_ip}\", \"rule ${rule}\" } }\n"
	        "rule \"codeonly\" { when = 'helo == \"code\"' action = reject code = 553 }\n"
	        "rule \"tf\" { when = 'helo == \"tf\"' action = tempfail code = 450 xcode = "
	        "\"4.2.0\" }\n"
	        "rule \"echo\" { when = 'helo =~ /^echo/' action = reject\n"
	        "  message = \"100% sure: ${helo}\" }\n"
	        "rule \"hdr\" { when = 'header(\"Subject\") contains \"spam\"' action = reject\n"
	        "  message = \"subject '${header(\\\"Subject\\\")}' id ${queue_id}\" }\n");
	struct conn *c;
	char esc[2 * REPLY_LINE_MAX + 1];
	(void)state;

	c = open_conn(p, "192.0.2.9");
	assert_int_equal(helo(c, "multi"), ACTION_REJECT);
	assert_reply("554", "5.7.1", "HELO multi refused from 192.0.2.9");
	assert_int_equal(V.reply.nlines, 2);
	assert_string_equal(V.reply.lines[1], "rule multi");
	conn_free(c);

	c = open_conn(p, "192.0.2.9");
	assert_int_equal(helo(c, "code"), ACTION_REJECT);
	assert_reply("553", "5.7.1", "Rejected by policy");
	conn_free(c);

	c = open_conn(p, "192.0.2.9");
	assert_int_equal(helo(c, "tf"), ACTION_TEMPFAIL);
	assert_reply("450", "4.2.0", "Try again later");
	conn_free(c);

	/* '%' is kept as text (the glue doubles it); CR/LF from the client become spaces */
	c = open_conn(p, "192.0.2.9");
	assert_int_equal(helo(c, "echo%s\r\n250 ok"), ACTION_REJECT);
	assert_int_equal(V.reply.nlines, 1);
	assert_string_equal(V.reply.lines[0], "100% sure: echo%s  250 ok");
	reply_escape_percent(V.reply.lines[0], esc, sizeof(esc));
	assert_string_equal(esc, "100%% sure: echo%%s  250 ok");
	conn_free(c);

	queue_id = "4QID";
	c = open_conn(p, "192.0.2.9");
	assert_int_equal(helo(c, "x"), ACTION_CONTINUE);
	assert_int_equal(mail(c, "<a@b>", NULL), ACTION_CONTINUE);
	assert_int_equal(rcpt(c, "<c@d>"), ACTION_CONTINUE);
	header(c, "Subject", " buy spam\r\n\tnow");
	assert_int_equal(finish(c), ACTION_REJECT);
	assert_reply("550", "5.7.1", "subject 'buy spam now' id 4QID");
	conn_free(c);
	policy_unref(p);
}

static void test_reject_log_line(void **state)
{
	struct policy *p = load(
	        "rule \"no-such-domain\" {\n"
	        "  when = 'rcpt_domain in [\"example.invalid\", \".test\"]'\n"
	        "  action = reject\n  code = 550\n  xcode = \"5.1.2\"\n"
	        "  message = \"Recipient domain ${rcpt_domain} is not served here.\"\n}\n"
	        "rule \"bad-sender\" { when = 'from == \"x@bad.example\"' action = reject }\n");
	struct conn *c;
	(void)state;

	queue_id = "3F2A81C0D4";
	c = open_conn(p, "192.0.2.7");
	assert_int_equal(helo(c, "x"), ACTION_CONTINUE);
	assert_int_equal(mail(c, "<a@b.example>", "SIZE=100"), ACTION_CONTINUE);
	assert_int_equal(rcpt(c, "<u@example.invalid>"), ACTION_REJECT);
	assert_int_equal(nlog, 1);
	assert_int_equal(logpri[0], LOG_INFO);
	assert_string_equal(logbuf[0],
	                    "3F2A81C0D4: reject: RCPT from host.example[192.0.2.7]: 550 5.1.2 "
	                    "<u@example.invalid>: Recipient domain example.invalid is not served "
	                    "here.; rule=no-such-domain from=<a@b.example> helo=<x>");
	conn_free(c);

	/* no queue id yet at MAIL: NOQUEUE, as Postfix logs */
	queue_id = NULL;
	nlog = 0;
	c = open_conn(p, "192.0.2.7");
	assert_int_equal(helo(c, "y"), ACTION_CONTINUE);
	assert_int_equal(mail(c, "<x@bad.example>", NULL), ACTION_REJECT);
	assert_int_equal(nlog, 1);
	assert_string_equal(logbuf[0], "NOQUEUE: reject: MAIL from host.example[192.0.2.7]: 550 "
	                               "5.7.1 <x@bad.example>: Rejected by policy; rule=bad-sender "
	                               "from=<x@bad.example> helo=<y>");
	conn_free(c);
	policy_unref(p);
}

/* ---- modifiers ---- */

static void test_dry_run_tag_add_header_quarantine(void **state)
{
	struct policy *p =
	        load("rule \"dry\" { when = 'from_domain == \"x.example\"' action = reject dry_run "
	             "= true\n"
	             "  tag = \"dry\" add_header = { \"X-Dry: 1\" } }\n"
	             "rule \"tag\" { when = 'from_local == \"tagme\"' tag = \"t\" }\n"
	             "rule \"saw-dry\" { when = 'tagged(\"dry\")' action = reject message = \"dry "
	             "applied\" }\n"
	             "rule \"saw-tag\" { when = 'tagged(\"t\") and rcpt == \"r@y.example\"' action "
	             "= tempfail }\n"
	             "rule \"hdr\" { when = 'rcpt_count == 0' add_header = { \"X-Policy: ${rule} "
	             "for ${rcpt}\" } }\n"
	             "rule \"hold\" { when = 'header(\"Subject\") =~ /hold/' action = quarantine\n"
	             "  quarantine = \"subject ${header(\\\"Subject\\\")}\" }\n");
	struct conn *c = open_conn(p, "192.0.2.9");
	(void)state;

	/* dry_run: logged, not acted on, and its modifiers not applied */
	assert_int_equal(mail(c, "<tagme@x.example>", NULL), ACTION_CONTINUE);
	assert_non_null(log_find("NOQUEUE: dry-run: MAIL from host.example[192.0.2.9]: "
	                         "<tagme@x.example>: would reject; rule=dry"));
	assert_non_null(log_find("(not applied)"));
	assert_string_equal(added(c), "");
	/* a tag set at mail is seen at rcpt */
	assert_int_equal(rcpt(c, "<r@y.example>"), ACTION_TEMPFAIL);
	/* first match: the later "hdr" rule did not run for that recipient */
	assert_string_equal(added(c), "");
	/* the refused recipient is not counted */
	assert_int_equal(rcpt(c, "<s@y.example>"), ACTION_CONTINUE);
	assert_string_equal(added(c), "X-Policy: hdr for s@y.example");
	assert_int_equal(rcpt(c, "<t@y.example>"), ACTION_CONTINUE);
	assert_string_equal(added(c), "X-Policy: hdr for s@y.example");
	header(c, "Subject", " please hold");
	assert_null(conn_quarantine_reason(c));
	assert_int_equal(finish(c), ACTION_CONTINUE);
	assert_string_equal(conn_quarantine_reason(c), "subject please hold");
	assert_non_null(log_find("quarantine: HEADER from host.example[192.0.2.9]: subject please "
	                         "hold; rule=hold"));
	conn_free(c);
	policy_unref(p);
}

/* ---- connection-level decisions ---- */

static const char connect_rules[] =
        "rule \"refuse\" { when = 'client_ip == \"192.0.2.66\"' action = reject code = 554\n"
        "  message = \"go away ${client_ip}\" }\n"
        "rule \"later\" { when = 'client_ip == \"192.0.2.67\"' action = tempfail code = 421 }\n"
        "rule \"friend\" { when = 'client_ip == \"192.0.2.1\"' action = accept }\n"
        "rule \"blackhole\" { when = 'client_ip == \"192.0.2.13\"' action = discard }\n"
        "rule \"any-helo\" { when = 'helo =~ /./' action = reject message = \"helo\" }\n"
        "rule \"any-mail\" { when = 'from =~ /./' action = reject message = \"mail\" }\n";

static void test_connect_reject_answered_at_helo(void **state)
{
	struct policy *p = load(connect_rules);
	struct conn *c = open_conn(p, "192.0.2.66");
	(void)state;

	assert_int_equal(run(c, STAGE_CONNECT), ACTION_CONTINUE);
	assert_int_equal(nlog, 0);
	assert_int_equal(helo(c, "h"), ACTION_REJECT);
	assert_reply("554", "5.7.1", "go away 192.0.2.66");
	assert_int_equal(nlog, 1);
	assert_string_equal(logbuf[0], "NOQUEUE: reject: CONNECT from host.example[192.0.2.66]: "
	                               "554 5.7.1 go away 192.0.2.66; rule=refuse from=<> helo=<h> "
	                               "(answered at HELO)");
	/* and it stays refused */
	assert_int_equal(mail(c, "<a@b>", NULL), ACTION_REJECT);
	assert_reply("554", "5.7.1", "go away 192.0.2.66");
	conn_free(c);
	policy_unref(p);
}

static void test_connect_reject_answered_at_mail(void **state)
{
	struct policy *p = load(connect_rules);
	struct conn *c = open_conn(p, "192.0.2.67");
	(void)state;

	assert_int_equal(run(c, STAGE_CONNECT), ACTION_CONTINUE);
	/* no HELO: answered at MAIL */
	assert_int_equal(mail(c, "<a@b>", NULL), ACTION_TEMPFAIL);
	assert_reply("421", "4.7.1", "Try again later");
	assert_non_null(log_find("tempfail: CONNECT from host.example[192.0.2.67]: 421 4.7.1 Try "
	                         "again later; rule=later"));
	assert_non_null(log_find("(answered at MAIL)"));
	conn_free(c);
	policy_unref(p);
}

static void test_accept_at_connect_ends_checks(void **state)
{
	struct policy *p = load(connect_rules);
	struct conn *c = open_conn(p, "192.0.2.1");
	(void)state;

	assert_int_equal(run(c, STAGE_CONNECT), ACTION_ACCEPT);
	assert_true(V.connection);
	assert_int_equal(helo(c, "h"), ACTION_ACCEPT);
	assert_true(V.connection);
	assert_int_equal(mail(c, "<a@b>", NULL), ACTION_ACCEPT);
	assert_int_equal(rcpt(c, "<c@d>"), ACTION_ACCEPT);
	assert_int_equal(finish(c), ACTION_ACCEPT);
	assert_int_equal(mail(c, "<a@b>", NULL), ACTION_ACCEPT);
	assert_null(log_find("rule=any-"));
	conn_free(c);
	policy_unref(p);
}

static void test_discard(void **state)
{
	struct policy *p = load(
	        "rule \"blackhole\" { when = 'client_ip == \"192.0.2.13\"' action = discard }\n"
	        "rule \"d-rcpt\" { when = 'rcpt == \"trap@x\"' action = discard }\n"
	        "rule \"after\" { when = 'rcpt =~ /./' stage = eom action = reject }\n");
	struct conn *c = open_conn(p, "192.0.2.13");
	(void)state;

	/* at connect: every message of the connection is discarded */
	assert_int_equal(run(c, STAGE_CONNECT), ACTION_CONTINUE);
	assert_int_equal(helo(c, "h"), ACTION_CONTINUE);
	assert_int_equal(mail(c, "<a@b>", NULL), ACTION_DISCARD);
	assert_int_equal(mail(c, "<a@b>", NULL), ACTION_DISCARD);
	conn_free(c);

	/* at rcpt: the message is discarded, and no later rule runs for it */
	c = open_conn(p, "192.0.2.14");
	assert_int_equal(mail(c, "<a@b>", NULL), ACTION_CONTINUE);
	assert_int_equal(rcpt(c, "<trap@x>"), ACTION_DISCARD);
	assert_int_equal(finish(c), ACTION_CONTINUE);
	assert_null(log_find("rule=after"));
	/* the next message is checked again */
	assert_int_equal(mail(c, "<a@b>", NULL), ACTION_CONTINUE);
	assert_int_equal(rcpt(c, "<r@x>"), ACTION_CONTINUE);
	assert_int_equal(finish(c), ACTION_REJECT);
	conn_free(c);
	policy_unref(p);
}

/* ---- on_error ---- */

static const char redos_rules[] =
        "rule \"redos\" { when = 'header(\"Subject\") =~ /(a+)+$/' action = reject }\n"
        "rule \"next\" { when = 'header_count > 0' stage = header add_header = { \"X-Next: 1\" } "
        "}\n";

static enum action redos_session(struct policy *p, struct conn **cp)
{
	struct conn *c = open_conn(p, "192.0.2.9");

	*cp = c;
	assert_int_equal(mail(c, "<a@b>", NULL), ACTION_CONTINUE);
	assert_int_equal(rcpt(c, "<c@d>"), ACTION_CONTINUE);
	header(c, "Subject", " aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!");
	return run(c, STAGE_HEADER);
}

static void test_on_error_tempfail(void **state)
{
	struct policy *p = load_opts(redos_rules, ON_ERROR_TEMPFAIL, 1024);
	struct conn *c;
	const char *l;
	(void)state;

	assert_int_equal(redos_session(p, &c), ACTION_TEMPFAIL);
	assert_reply("451", "4.3.0", "Temporary policy failure, please try again later");
	assert_string_equal(added(c), "");
	l = log_find("error at HEADER");
	assert_non_null(l);
	assert_non_null(strstr(l, "rule redos ("));
	assert_non_null(strstr(l, "match limit"));
	assert_non_null(strstr(l, "on_error=tempfail"));
	assert_non_null(log_find("tempfail: HEADER from host.example[192.0.2.9]: 451 4.3.0 "
	                         "Temporary policy failure, please try again later; rule=redos"));
	conn_free(c);
	policy_unref(p);
}

/* EHLO again after STARTTLS: helo rules judge the new HELO afresh (what they decided or
   set for the first goes); what connect rules decided or set stays. */
static void test_helo_again_after_starttls(void **state)
{
	struct policy *p = load(
	        "rule \"conn\" { when = 'client_ip == \"192.0.2.9\"' tag = \"c\"\n"
	        "  add_header = { \"X-Conn: 1\" } }\n"
	        "rule \"plain\" { when = 'tls_version == \"\"' action = reject code = 550 xcode = "
	        "\"5.7.0\"\n  message = \"Must issue a STARTTLS command first\" }\n"
	        "rule \"tls\" { when = 'helo == \"h\"' tag = \"t\"\n"
	        "  add_header = { \"X-TLS: ${tls_version}\" } }\n"
	        "rule \"seen\" { when = 'tagged(\"c\") and tagged(\"t\")' stage = mail "
	        "add_header = { \"X-Both: yes\" } }\n");
	struct conn *c = open_conn(p, "192.0.2.9");
	(void)state;

	assert_int_equal(run(c, STAGE_CONNECT), ACTION_CONTINUE);
	tls_version = NULL;
	assert_int_equal(helo(c, "h"), ACTION_REJECT);
	assert_reply("550", "5.7.0", "Must issue a STARTTLS command first");
	tls_version = "TLSv1.3";
	assert_int_equal(helo(c, "h"), ACTION_CONTINUE);
	assert_int_equal(mail(c, "<a@b.example>", NULL), ACTION_CONTINUE);
	assert_int_equal(rcpt(c, "<c@d.example>"), ACTION_CONTINUE);
	assert_string_equal(added(c), "X-Conn: 1|X-TLS: TLSv1.3|X-Both: yes");
	/* and a third HELO without TLS is refused again */
	tls_version = NULL;
	assert_int_equal(helo(c, "h"), ACTION_REJECT);
	assert_int_equal(mail(c, "<a@b.example>", NULL), ACTION_REJECT);
	conn_free(c);
	policy_unref(p);

	/* a refusal by a connect rule stays, whatever HELO follows */
	p = load("rule \"c\" { when = 'client_ip == \"192.0.2.9\"' action = reject code = 554 }\n");
	c = open_conn(p, "192.0.2.9");
	assert_int_equal(run(c, STAGE_CONNECT), ACTION_CONTINUE); /* answered at the next stage */
	assert_int_equal(helo(c, "h"), ACTION_REJECT);
	assert_int_equal(helo(c, "h"), ACTION_REJECT);
	assert_int_equal(mail(c, "<a@b.example>", NULL), ACTION_REJECT);
	assert_reply("554", "5.7.1", "Rejected by policy");
	conn_free(c);
	policy_unref(p);
}

/* A message's body is its own: a second message with an empty body does not match what
   the first one held. */
static void test_body_of_one_message_only(void **state)
{
	struct policy *p =
	        load("rule \"b\" { when = 'body in [\"secret\"]' action = reject }\n"
	             "rule \"e\" { when = 'body == \"secret\"' action = tempfail }\n");
	struct conn *c = open_conn(p, "192.0.2.9");
	(void)state;

	for (int i = 0; i < 2; i++) {
		assert_int_equal(mail(c, "<a@b.example>", NULL), ACTION_CONTINUE);
		assert_int_equal(rcpt(c, "<c@d.example>"), ACTION_CONTINUE);
		header(c, "Subject", " s");
		if (i == 0)
			body(c, "secret");
		assert_int_equal(finish(c), i == 0 ? ACTION_REJECT : ACTION_CONTINUE);
	}
	conn_free(c);
	policy_unref(p);
}

/* client_ip == compares addresses: case, zero compression and IPv4-mapped forms match. */
static void test_client_ip_equality_is_by_address(void **state)
{
	struct policy *p =
	        load("rule \"v6\" { when = 'client_ip == \"2001:DB8:0::1\"' stage = mail "
	             "action = reject code = 554 }\n"
	             "rule \"v4\" { when = 'client_ip == \"192.0.2.1\"' stage = mail "
	             "action = reject code = 553 }\n"
	             "rule \"ne\" { when = 'client_ip != \"192.0.2.2\"' stage = mail "
	             "action = tempfail }\n");
	static const struct {
		const char *ip;
		enum action want;
		const char *code;
	} cases[] = {
	        {"2001:db8::1", ACTION_REJECT, "554"},
	        {"2001:0db8:0:0::0001", ACTION_REJECT, "554"},
	        {"192.0.2.1", ACTION_REJECT, "553"},
	        {"::ffff:192.0.2.1", ACTION_REJECT, "553"},
	        {"192.0.2.2", ACTION_CONTINUE, NULL},
	        {"::ffff:192.0.2.2", ACTION_CONTINUE, NULL},
	        {"2001:db8::2", ACTION_TEMPFAIL, "451"},
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct conn *c = open_conn(p, cases[i].ip);
		if (mail(c, "<a@b.example>", NULL) != cases[i].want)
			fail_msg("client %s: %s", cases[i].ip, action_name(V.action));
		if (cases[i].code != NULL)
			assert_string_equal(V.reply.code, cases[i].code);
		conn_free(c);
	}
	policy_unref(p);
}

/* An ordinary pattern over a long body is no error: PCRE2's JIT needs more than its default
   32 KiB stack for /(ab|cd)+z/ on a few KB (each connection has its own, bigger one). */
static void test_regex_over_a_long_body(void **state)
{
	struct policy *p = load_opts("rule \"abz\" { when = 'body =~ /(ab|cd)+z/' action = reject "
	                             "code = 554 }\n",
	                             ON_ERROR_TEMPFAIL, 256 * 1024);
	char *text = malloc(60002);
	struct conn *c;
	(void)state;

	assert_non_null(text);
	for (int i = 0; i < 30000; i++)
		memcpy(text + 2 * i, i % 2 ? "cd" : "ab", 2);
	text[60000] = '\0';
	for (int round = 0; round < 2; round++) {
		c = open_conn(p, "192.0.2.9");
		assert_int_equal(mail(c, "<a@b>", NULL), ACTION_CONTINUE);
		assert_int_equal(rcpt(c, "<c@d>"), ACTION_CONTINUE);
		header(c, "Subject", " s");
		body(c, text);
		if (round == 0) {
			assert_int_equal(finish(c), ACTION_CONTINUE); /* no z: no match, no error */
		} else {
			body(c, "z\r\n");
			assert_int_equal(finish(c), ACTION_REJECT);
			assert_reply("554", "5.7.1", "Rejected by policy");
		}
		assert_null(log_find("regex match failed"));
		conn_free(c);
	}
	free(text);
	policy_unref(p);
}

static void test_on_error_continue(void **state)
{
	struct policy *p = load_opts(redos_rules, ON_ERROR_CONTINUE, 1024);
	struct conn *c;
	(void)state;

	assert_int_equal(redos_session(p, &c), ACTION_CONTINUE);
	/* no decision: the rule did not match, and the stage went on with the next rule */
	assert_string_equal(added(c), "X-Next: 1");
	assert_non_null(log_find("on_error=continue"));
	assert_null(log_find("reject:"));
	assert_int_equal(run(c, STAGE_EOM), ACTION_CONTINUE);
	conn_free(c);
	policy_unref(p);
}

/* ---- size and stages ---- */

static void test_size_at_mail_and_eom(void **state)
{
	struct policy *p = load(
	        "rule \"declared\" { when = 'size > 1K' stage = mail action = reject code = 552\n"
	        "  xcode = \"5.3.4\" message = \"declared ${size}\" }\n"
	        "rule \"actual\" { when = 'size > 1K' action = reject code = 552 xcode = "
	        "\"5.3.4\"\n"
	        "  message = \"actual ${size}\" }\n");
	struct conn *c;
	char big[1100];
	(void)state;

	assert_int_equal(p->nstage_rules[STAGE_MAIL], 1);
	assert_int_equal(p->nstage_rules[STAGE_EOM], 1);

	c = open_conn(p, "192.0.2.9");
	assert_int_equal(mail(c, "<a@b>", "SIZE=2048"), ACTION_REJECT);
	assert_reply("552", "5.3.4", "declared 2048");
	/* undeclared: no comparison holds at mail; the real size decides at eom */
	assert_int_equal(mail(c, "<a@b>", NULL), ACTION_CONTINUE);
	assert_int_equal(rcpt(c, "<c@d>"), ACTION_CONTINUE);
	header(c, "Subject", " s");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	body(c, big);
	assert_int_equal(finish(c), ACTION_REJECT);
	/* "Subject: s\r\n" (12) + "\r\n" (2) + 1099 */
	assert_reply("552", "5.3.4", "actual 1113");
	/* a small message with a big lying SIZE= is refused at mail only */
	assert_int_equal(mail(c, "<a@b>", "size=5000"), ACTION_REJECT);
	assert_int_equal(mail(c, "<a@b>", "SIZE=100"), ACTION_CONTINUE);
	assert_int_equal(rcpt(c, "<c@d>"), ACTION_CONTINUE);
	body(c, "small\r\n");
	assert_int_equal(finish(c), ACTION_CONTINUE);
	conn_free(c);
	policy_unref(p);
}

static void test_stage_inference(void **state)
{
	struct policy *p = load(
	        "rule \"rh\" { when = 'rcpt_domain == \"x\" and helo == \"y\"' }\n"
	        "rule \"late\" { when = 'helo == \"y\"' stage = eom }\n"
	        "rule \"reply-rcpt\" { when = 'helo == \"z\"' action = reject message = "
	        "\"${rcpt}\" }\n"
	        "rule \"hdr-rcpt\" { when = 'client_port > 0' add_header = { \"X-R: ${rcpt}\" } }\n"
	        "rule \"c\" { when = 'client_ip == \"1.2.3.4\"' }\n"
	        "rule \"tag-at-mail\" { when = 'from == \"a@b\"' tag = \"m\" }\n"
	        "rule \"uses-tag\" { when = 'tagged(\"m\")' }\n"
	        "rule \"uses-tag-late\" { when = 'tagged(\"m\") or body contains \"x\"' }\n");
	static const struct {
		const char *name;
		enum stage stage;
	} want[] = {
	        {"rh", STAGE_RCPT},         {"late", STAGE_EOM},
	        {"reply-rcpt", STAGE_RCPT}, {"hdr-rcpt", STAGE_RCPT},
	        {"c", STAGE_CONNECT},       {"tag-at-mail", STAGE_MAIL},
	        {"uses-tag", STAGE_MAIL},   {"uses-tag-late", STAGE_BODY},
	};
	(void)state;

	assert_int_equal(p->nrules, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < p->nrules; i++) {
		assert_string_equal(p->rules[i]->name, want[i].name);
		if (p->rules[i]->stage != want[i].stage)
			fail_msg("rule %s: stage %s, expected %s", want[i].name,
			         stage_name(p->rules[i]->stage), stage_name(want[i].stage));
	}
	policy_unref(p);
}

static void test_stage_too_early_is_an_error(void **state)
{
	char *path =
	        write_rules("early.rules", "\n"
	                                   "rule \"early\" {\n"
	                                   "  when = 'rcpt_domain == \"x\" and helo == \"y\"'\n"
	                                   "  stage = helo\n"
	                                   "}\n");
	struct config cfg = {0};
	struct diag *d = diag_new();
	(void)state;

	cfg.path = "/etc/milter-policy/milter-policy.conf";
	cfg.policies = &path;
	cfg.npolicies = 1;
	assert_null(policy_load(&cfg, d));
	assert_int_equal(diag_count(d), 1);
	assert_true(strncmp(diag_line(d, 0), path, strlen(path)) == 0);
	assert_string_equal(
	        diag_line(d, 0) + strlen(path),
	        ":4: rule 'early': stage helo is too early: the rule uses a field first "
	        "known at stage rcpt");
	diag_free(d);
	unlink(path);
	free(path);
}

/* Fields read only by texts count for the stage and for the macros asked of the MTA. */
static void test_texts_decide_stage_and_macros(void **state)
{
	struct policy *p = load(
	        "rule \"t\" { when = 'client_ip == \"192.0.2.1\"'\n"
	        "  log = 'host ${macro(\"{rcpt_host}\")}' }\n"
	        "rule \"u\" { when = 'header_count > 0' stage = eom\n"
	        "  add_header = { 'X-Foo: ${macro(\"{foo}\")}' } }\n"
	        "rule \"v\" { when = 'helo == \"x\"' action = reject message = \"${size}\" }\n");
	(void)state;

	assert_int_equal(p->rules[0]->stage, STAGE_RCPT);
	assert_non_null(strstr(p->macros[STAGE_RCPT], " {rcpt_host}"));
	assert_non_null(strstr(p->macros[STAGE_EOM], " {foo}"));
	/* ${size} in a text reads the SIZE= declaration: known at mail */
	assert_int_equal(p->rules[2]->stage, STAGE_MAIL);
	policy_unref(p);
}

/* A rcpt rule matches once per recipient; each distinct header is added once. */
static void test_add_header_once_per_distinct_value(void **state)
{
	struct policy *p = load("rule \"same\" { when = 'rcpt_domain == \"d.example\"'\n"
	                        "  add_header = { \"X-Seen: yes\", \"X-Rcpt: ${rcpt}\" } }\n");
	struct conn *c = open_conn(p, "192.0.2.9");
	(void)state;

	assert_int_equal(mail(c, "<a@b.example>", NULL), ACTION_CONTINUE);
	assert_int_equal(rcpt(c, "<one@d.example>"), ACTION_CONTINUE);
	assert_int_equal(rcpt(c, "<two@d.example>"), ACTION_CONTINUE);
	assert_int_equal(rcpt(c, "<one@d.example>"), ACTION_CONTINUE);
	assert_int_equal(finish(c), ACTION_CONTINUE);
	assert_string_equal(added(c), "X-Seen: yes|X-Rcpt: one@d.example|X-Rcpt: two@d.example");
	conn_free(c);
	policy_unref(p);
}

/* size != N is false, like every comparison, when no size was declared (SPEC). */
static void test_undeclared_size_compares_false(void **state)
{
	struct policy *p = load(
	        "rule \"ne\" { when = 'size != 100' stage = mail action = reject }\n"
	        "rule \"nm\" { when = 'size !~ /^1/' stage = mail action = reject code = 554 }\n"
	        "rule \"nn\" { when = 'not size == 100' stage = mail\n"
	        "  action = tempfail }\n");
	struct conn *c = open_conn(p, "192.0.2.9");
	(void)state;

	assert_int_equal(mail(c, "<a@b.example>", "SIZE=200"), ACTION_REJECT);
	assert_reply("550", "5.7.1", "Rejected by policy");
	assert_int_equal(mail(c, "<a@b.example>", "SIZE=100"), ACTION_CONTINUE);
	/* undeclared: size != 100 and size !~ /^1/ are false; "not size == 100" is the way to
	   say "not known" */
	assert_int_equal(mail(c, "<a@b.example>", NULL), ACTION_TEMPFAIL);
	conn_free(c);
	policy_unref(p);

	p = load("rule \"nm\" { when = 'size !~ /^1/' stage = mail action = reject code = 554 }\n");
	c = open_conn(p, "192.0.2.9");
	assert_int_equal(mail(c, "<a@b.example>", "SIZE=200"), ACTION_REJECT);
	assert_reply("554", "5.7.1", "Rejected by policy");
	assert_int_equal(mail(c, "<a@b.example>", "SIZE=100"), ACTION_CONTINUE);
	assert_int_equal(mail(c, "<a@b.example>", NULL), ACTION_CONTINUE);
	conn_free(c);
	policy_unref(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup(test_every_stage, reset),
	        cmocka_unit_test_setup(test_actions_and_first_match, reset),
	        cmocka_unit_test_setup(test_files_in_sorted_order, reset),
	        cmocka_unit_test_setup(test_per_recipient, reset),
	        cmocka_unit_test_setup(test_reset_between_messages, reset),
	        cmocka_unit_test_setup(test_lists_through_rules, reset),
	        cmocka_unit_test_setup(test_replies, reset),
	        cmocka_unit_test_setup(test_reject_log_line, reset),
	        cmocka_unit_test_setup(test_dry_run_tag_add_header_quarantine, reset),
	        cmocka_unit_test_setup(test_connect_reject_answered_at_helo, reset),
	        cmocka_unit_test_setup(test_connect_reject_answered_at_mail, reset),
	        cmocka_unit_test_setup(test_accept_at_connect_ends_checks, reset),
	        cmocka_unit_test_setup(test_discard, reset),
	        cmocka_unit_test_setup(test_on_error_tempfail, reset),
	        cmocka_unit_test_setup(test_helo_again_after_starttls, reset),
	        cmocka_unit_test_setup(test_body_of_one_message_only, reset),
	        cmocka_unit_test_setup(test_client_ip_equality_is_by_address, reset),
	        cmocka_unit_test_setup(test_regex_over_a_long_body, reset),
	        cmocka_unit_test_setup(test_on_error_continue, reset),
	        cmocka_unit_test_setup(test_size_at_mail_and_eom, reset),
	        cmocka_unit_test_setup(test_stage_inference, reset),
	        cmocka_unit_test_setup(test_stage_too_early_is_an_error, reset),
	        cmocka_unit_test_setup(test_texts_decide_stage_and_macros, reset),
	        cmocka_unit_test_setup(test_add_header_once_per_distinct_value, reset),
	        cmocka_unit_test_setup(test_undeclared_size_compares_false, reset),
	};
	int rc = cmocka_run_group_tests(tests, setup, teardown);

	return rc ? 1 : 0;
}
