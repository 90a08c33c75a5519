/*
 * test_config.c - the main configuration, diag, log, and stage/action names.
 *
 * Configuration files are written into a fresh temporary directory, so the line numbers the
 * tests expect are visible right here.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cfgfile.h"
#include "config.h"
#include "diag.h"
#include "log.h"
#include "types.h"
#include "testfile.h"

/* ---- helpers ---- */

static char tmpdir[1024]; /* short, so paths built from it fit in PATH_MAX */

static int setup_dir(void **state)
{
	const char *base = getenv("TMPDIR");

	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "%s/test_config.XXXXXX", base ? base : "/tmp");
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown_dir(void **state)
{
	char cmd[PATH_MAX + 16];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static const char *write_conf(const char *name, const char *text)
{
	return testfile_write(tmpdir, name, text, strlen(text));
}

static void assert_diag_line(const struct diag *d, size_t i, const char *path, int line,
                             const char *msg)
{
	char want[PATH_MAX + 512];

	if (line > 0)
		snprintf(want, sizeof(want), "%s:%d: %s", path, line, msg);
	else
		snprintf(want, sizeof(want), "%s: %s", path, msg);
	assert_true(i < diag_count(d));
	assert_string_equal(diag_line(d, i), want);
}

/* Loads text that must fail with exactly one error, and checks it. */
static void assert_load_error(const char *text, int line, const char *msg)
{
	const char *path = write_conf("bad.conf", text);
	struct diag *d = diag_new();
	struct config *c = config_load(path, d);

	assert_null(c);
	assert_int_equal(diag_count(d), 1);
	assert_diag_line(d, 0, path, line, msg);
	diag_free(d);
}

/* ---- types ---- */

static void test_stage_names(void **state)
{
	static const char *const names[] = {"connect", "helo", "mail", "rcpt",
	                                    "header",  "body", "eom"};
	static const char *const log_names[] = {"CONNECT", "HELO", "MAIL",          "RCPT",
	                                        "HEADER",  "BODY", "END-OF-MESSAGE"};
	enum stage s;

	(void)state;
	for (int i = 0; i < STAGE_COUNT; i++) {
		assert_string_equal(stage_name((enum stage)i), names[i]);
		assert_string_equal(stage_log_name((enum stage)i), log_names[i]);
		s = STAGE_COUNT;
		assert_int_equal(stage_parse(names[i], &s), 0);
		assert_int_equal(s, i);
	}
	assert_int_equal(stage_parse("HELO", &s), 0);
	assert_int_equal(s, STAGE_HELO);
	assert_null(stage_name(STAGE_COUNT));
	assert_null(stage_log_name(STAGE_COUNT));
	assert_null(stage_name((enum stage) - 1));
	s = STAGE_BODY;
	assert_int_equal(stage_parse("end-of-message", &s), -1);
	assert_int_equal(stage_parse("", &s), -1);
	assert_int_equal(stage_parse("connects", &s), -1);
	assert_int_equal(s, STAGE_BODY);
}

static void test_action_names(void **state)
{
	static const char *const names[] = {"continue", "accept",  "reject",
	                                    "tempfail", "discard", "quarantine"};
	enum action a;

	(void)state;
	for (int i = 0; i <= ACTION_QUARANTINE; i++) {
		assert_string_equal(action_name((enum action)i), names[i]);
		a = ACTION_CONTINUE;
		assert_int_equal(action_parse(names[i], &a), 0);
		assert_int_equal(a, i);
	}
	assert_int_equal(action_parse("Reject", &a), 0);
	assert_int_equal(a, ACTION_REJECT);
	assert_null(action_name((enum action)(ACTION_QUARANTINE + 1)));
	a = ACTION_ACCEPT;
	assert_int_equal(action_parse("drop", &a), -1);
	assert_int_equal(action_parse("", &a), -1);
	assert_int_equal(a, ACTION_ACCEPT);
}

/* ---- diag ---- */

static void test_diag_format(void **state)
{
	struct diag *d = diag_new();

	(void)state;
	assert_non_null(d);
	assert_int_equal(diag_count(d), 0);
	diag_add(d, "a.conf", 12, "bad %s", "thing");
	diag_add(d, "b.conf", 0, "cannot read: %s", "gone");
	diag_add(d, "c.conf", -3, "negative line");
	diag_add(d, NULL, 7, "no file %d%%", 100);
	assert_int_equal(diag_count(d), 4);
	assert_string_equal(diag_line(d, 0), "a.conf:12: bad thing");
	assert_string_equal(diag_line(d, 1), "b.conf: cannot read: gone");
	assert_string_equal(diag_line(d, 2), "c.conf: negative line");
	assert_string_equal(diag_line(d, 3), "no file 100%");
	diag_free(d);
	diag_free(NULL);
}

/* What a file quoted into a message cannot put into a log: control characters and bytes that
   are not UTF-8 (stray, overlong, surrogate, too large, cut short).  Valid UTF-8 stays. */
static void test_diag_printable(void **state)
{
	struct diag *d = diag_new();

	(void)state;
	diag_add(d, "r\tx.rules", 3, "name '%s'", "a\x01\x1b[31m\x7f\n");
	diag_add(d, "r.rules", 4, "name '%s'", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa7");
	diag_add(d, "r.rules", 5, "name '%s'",
	         "\x80\xff\xc0\xaf\xed\xa0\x80\xf4\x90\x80\x80\xe2\x82");
	assert_string_equal(diag_line(d, 0), "r?x.rules:3: name 'a?"
	                                     "?[31m?"
	                                     "?'");
	assert_string_equal(diag_line(d, 1),
	                    "r.rules:4: name 'caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa7'");
	assert_string_equal(diag_line(d, 2), "r.rules:5: name '"
	                                     "?????????????"
	                                     "'");
	diag_free(d);
}

static void test_diag_grows(void **state)
{
	struct diag *d = diag_new();
	char want[64], big[3000];

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (int i = 0; i < 1000; i++)
		diag_add(d, "f", i + 1, "error %d", i);
	diag_add(d, "f", 1, "%s", big);
	assert_int_equal(diag_count(d), 1001);
	for (int i = 0; i < 1000; i++) {
		snprintf(want, sizeof(want), "f:%d: error %d", i + 1, i);
		assert_string_equal(diag_line(d, (size_t)i), want);
	}
	assert_int_equal(strlen(diag_line(d, 1000)), strlen("f:1: ") + strlen(big));
	diag_free(d);
}

/* ---- log ---- */

struct sink {
	int n;
	int priority[8];
	char line[8][4200];
};

static void sink_fn(int priority, const char *line, void *ctx)
{
	struct sink *s = ctx;

	if (s->n < 8) {
		s->priority[s->n] = priority;
		snprintf(s->line[s->n], sizeof(s->line[0]), "%s", line);
	}
	s->n++;
}

static void test_log_levels(void **state)
{
	struct sink s = {0};

	(void)state;
	log_set_sink(sink_fn, &s);
	log_set_level(LOG_WARNING);
	assert_true(log_enabled(LOG_ERR));
	assert_true(log_enabled(LOG_WARNING));
	assert_false(log_enabled(LOG_INFO));
	assert_false(log_enabled(LOG_DEBUG));
	log_msg(LOG_INFO, "not logged %d", 1);
	log_msg(LOG_DEBUG, "not logged %d", 2);
	log_msg(LOG_WARNING, "warned %s", "here");
	log_msg(LOG_ERR, "failed");
	assert_int_equal(s.n, 2);
	assert_int_equal(s.priority[0], LOG_WARNING);
	assert_string_equal(s.line[0], "warned here");
	assert_int_equal(s.priority[1], LOG_ERR);
	assert_string_equal(s.line[1], "failed");

	log_set_level(LOG_DEBUG);
	assert_true(log_enabled(LOG_DEBUG));
	log_msg(LOG_DEBUG, "debug");
	assert_int_equal(s.n, 3);
	assert_string_equal(s.line[2], "debug");

	log_set_sink(NULL, NULL);
	log_msg(LOG_ERR, "after the sink");
	assert_int_equal(s.n, 3);
	log_set_level(LOG_INFO);
}

static void test_log_one_line(void **state)
{
	struct sink s = {0};
	char big[6000];
	size_t len;

	(void)state;
	memset(big, 'y', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	log_set_sink(sink_fn, &s);
	log_set_level(LOG_INFO);
	log_msg(LOG_INFO, "Subject: %s", "a\r\nX-Forged: 1\tend");
	log_msg(LOG_INFO, "%s", big);
	log_set_sink(NULL, NULL);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.line[0], "Subject: a??X-Forged: 1 end");
	len = strlen(s.line[1]);
	assert_true(len > 1000 && len < sizeof(big) - 1);
	assert_string_equal(s.line[1] + len - 3, "...");
	assert_null(strchr(s.line[1], '\n'));
}

static void test_log_stderr(void **state)
{
	char path[PATH_MAX], buf[256], want[128];
	int fd, saved;
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/stderr.txt", tmpdir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	saved = dup(2);
	assert_true(saved >= 0);
	assert_int_equal(dup2(fd, 2), 2);
	log_open("milter-policy", LOG_MAIL, LOG_INFO, true);
	log_msg(LOG_INFO, "hello %s", "world");
	log_msg(LOG_DEBUG, "filtered out");
	log_msg(LOG_ERR, "second\nline");
	log_open("milter-policy", LOG_MAIL, LOG_INFO, false);
	log_msg(LOG_ERR, "syslog only");
	fflush(stderr);
	assert_int_equal(dup2(saved, 2), 2);
	close(saved);
	close(fd);

	f = fopen(path, "r");
	assert_non_null(f);
	snprintf(want, sizeof(want), "milter-policy[%ld]: hello world\n", (long)getpid());
	assert_non_null(fgets(buf, sizeof(buf), f));
	assert_string_equal(buf, want);
	snprintf(want, sizeof(want), "milter-policy[%ld]: second?line\n", (long)getpid());
	assert_non_null(fgets(buf, sizeof(buf), f));
	assert_string_equal(buf, want);
	assert_null(fgets(buf, sizeof(buf), f));
	fclose(f);
}

static void test_log_names(void **state)
{
	(void)state;
	assert_int_equal(log_level_parse("error"), LOG_ERR);
	assert_int_equal(log_level_parse("warning"), LOG_WARNING);
	assert_int_equal(log_level_parse("info"), LOG_INFO);
	assert_int_equal(log_level_parse("debug"), LOG_DEBUG);
	assert_int_equal(log_level_parse("DEBUG"), LOG_DEBUG);
	assert_int_equal(log_level_parse("notice"), -1);
	assert_int_equal(log_level_parse(""), -1);
	assert_int_equal(log_facility_parse("mail"), LOG_MAIL);
	assert_int_equal(log_facility_parse("daemon"), LOG_DAEMON);
	assert_int_equal(log_facility_parse("user"), LOG_USER);
	assert_int_equal(log_facility_parse("local0"), LOG_LOCAL0);
	assert_int_equal(log_facility_parse("local7"), LOG_LOCAL7);
	assert_int_equal(log_facility_parse("local8"), -1);
	assert_int_equal(log_facility_parse("kern"), -1);
}

/* ---- sizes ---- */

static void test_parse_size(void **state)
{
	unsigned long long v;

	(void)state;
	assert_int_equal(config_parse_size("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(config_parse_size("1K", &v), 0);
	assert_int_equal(v, 1024);
	assert_int_equal(config_parse_size("1m", &v), 0);
	assert_int_equal(v, 1048576);
	assert_int_equal(config_parse_size("64M", &v), 0);
	assert_int_equal(v, 64ULL << 20);
	assert_int_equal(config_parse_size("3g", &v), 0);
	assert_int_equal(v, 3ULL << 30);
	assert_int_equal(config_parse_size("0k", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(config_parse_size("18446744073709551615", &v), 0);
	assert_true(v == ULLONG_MAX);

	v = 42;
	assert_int_equal(config_parse_size("18446744073709551616", &v), -1);
	assert_int_equal(config_parse_size("17179869184G", &v), -1); /* 2^34 G = 2^64 */
	assert_int_equal(config_parse_size("", &v), -1);
	assert_int_equal(config_parse_size("K", &v), -1);
	assert_int_equal(config_parse_size("-1", &v), -1);
	assert_int_equal(config_parse_size("+1", &v), -1);
	assert_int_equal(config_parse_size(" 1", &v), -1);
	assert_int_equal(config_parse_size("1 ", &v), -1);
	assert_int_equal(config_parse_size("1KB", &v), -1);
	assert_int_equal(config_parse_size("1T", &v), -1);
	assert_int_equal(config_parse_size("1.5M", &v), -1);
	assert_int_equal(config_parse_size("0x10", &v), -1);
	assert_int_equal(config_parse_size("abc", &v), -1);
	assert_int_equal(v, 42);
	assert_int_equal(config_parse_size("17179869183G", &v), 0);
	assert_true(v == 17179869183ULL << 30);
}

/* ---- the main configuration ---- */

static void test_defaults(void **state)
{
	const char *path = write_conf("empty.conf", "# nothing set\n");
	struct diag *d = diag_new();
	struct config *c = config_load(path, d);
	char want[PATH_MAX];

	(void)state;
	assert_int_equal(diag_count(d), 0);
	assert_non_null(c);
	assert_string_equal(c->path, path);
	assert_string_equal(c->socket, "inet:8891@127.0.0.1");
	assert_null(c->user);
	assert_null(c->pidfile);
	assert_int_equal(c->npolicies, 1);
	snprintf(want, sizeof(want), "%s/policies/*.rules", tmpdir);
	assert_string_equal(c->policies[0], want);
	assert_int_equal(c->on_error, ON_ERROR_TEMPFAIL);
	assert_int_equal(c->log_level, LOG_INFO);
	assert_int_equal(c->syslog_facility, LOG_MAIL);
	assert_int_equal(c->body_limit, 1048576);
	assert_false(c->allow_root);
	assert_int_equal(c->stop_timeout, 30);
	config_free(c);
	config_free(NULL);
	diag_free(d);
}

static void test_every_option(void **state)
{
	const char *path = write_conf("full.conf", "# every option\n"
	                                           "socket   = \"unix:/run/mp/mp.sock\"\n"
	                                           "user     = \"mpuser\"   # trailing comment\n"
	                                           "pidfile  = \"run/mp.pid\"\n"
	                                           "policies = { \"/etc/mp/*.rules\",  # absolute\n"
	                                           "             \"local/*.rules\" }\n"
	                                           "on_error = continue\n"
	                                           "log_level = debug\n"
	                                           "syslog_facility = local3\n"
	                                           "body_limit = 512k\n"
	                                           "allow_root = true\n"
	                                           "stop_timeout = 0\n");
	struct diag *d = diag_new();
	struct config *c = config_load(path, d);
	char want[PATH_MAX];

	(void)state;
	assert_int_equal(diag_count(d), 0);
	assert_non_null(c);
	assert_string_equal(c->socket, "unix:/run/mp/mp.sock");
	assert_string_equal(c->user, "mpuser");
	snprintf(want, sizeof(want), "%s/run/mp.pid", tmpdir);
	assert_string_equal(c->pidfile, want);
	assert_int_equal(c->npolicies, 2);
	assert_string_equal(c->policies[0], "/etc/mp/*.rules");
	snprintf(want, sizeof(want), "%s/local/*.rules", tmpdir);
	assert_string_equal(c->policies[1], want);
	assert_int_equal(c->on_error, ON_ERROR_CONTINUE);
	assert_int_equal(c->log_level, LOG_DEBUG);
	assert_int_equal(c->syslog_facility, LOG_LOCAL3);
	assert_int_equal(c->body_limit, 512 * 1024);
	assert_true(c->allow_root);
	assert_int_equal(c->stop_timeout, 0);
	config_free(c);
	diag_free(d);
}

static void test_more_values(void **state)
{
	const char *path = write_conf("more.conf", "socket = \"inet6:8891@[::1]\"\n"
	                                           "policies = {}\n"
	                                           "pidfile = \"/run/mp.pid\"\n"
	                                           "user = \"\"\n"
	                                           "log_level = error\n"
	                                           "syslog_facility = daemon\n"
	                                           "body_limit = 64M\n"
	                                           "stop_timeout = 3600\n"
	                                           "on_error = tempfail\n"
	                                           "allow_root = false\n");
	struct diag *d = diag_new();
	struct config *c = config_load(path, d);

	(void)state;
	assert_int_equal(diag_count(d), 0);
	assert_non_null(c);
	assert_string_equal(c->socket, "inet6:8891@[::1]");
	assert_int_equal(c->npolicies, 0);
	assert_string_equal(c->pidfile, "/run/mp.pid");
	assert_null(c->user);
	assert_int_equal(c->log_level, LOG_ERR);
	assert_int_equal(c->syslog_facility, LOG_DAEMON);
	assert_int_equal(c->body_limit, 64 * 1024 * 1024);
	assert_int_equal(c->stop_timeout, 3600);
	assert_int_equal(c->on_error, ON_ERROR_TEMPFAIL);
	assert_false(c->allow_root);
	config_free(c);
	diag_free(d);
}

/* A config path given relative to the working directory still yields absolute paths. */
static void test_relative_config_path(void **state)
{
	char cwd[PATH_MAX], sub[PATH_MAX + 8], want[PATH_MAX + 32];
	struct diag *d = diag_new();
	struct config *c, *c2;

	(void)state;
	snprintf(sub, sizeof(sub), "%s/sub", tmpdir);
	assert_int_equal(mkdir(sub, 0700), 0);
	write_conf("sub/rel.conf", "policies = { \"p/*.rules\", \"../q.rules\" }\n"
	                           "pidfile = \"mp.pid\"\n");
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(tmpdir), 0);
	c = config_load("sub/rel.conf", d);
	assert_int_equal(chdir(sub), 0);
	c2 = config_load("rel.conf", d);
	assert_int_equal(chdir(cwd), 0);

	assert_int_equal(diag_count(d), 0);
	assert_non_null(c);
	assert_non_null(c2);
	assert_string_equal(c->path, "sub/rel.conf");
	assert_int_equal(c->npolicies, 2);
	snprintf(want, sizeof(want), "%s/sub/p/*.rules", tmpdir);
	assert_string_equal(c->policies[0], want);
	assert_string_equal(c2->policies[0], want);
	snprintf(want, sizeof(want), "%s/sub/../q.rules", tmpdir);
	assert_string_equal(c->policies[1], want);
	assert_string_equal(c2->policies[1], want);
	snprintf(want, sizeof(want), "%s/sub/mp.pid", tmpdir);
	assert_string_equal(c->pidfile, want);
	assert_string_equal(c2->pidfile, want);
	config_free(c);
	config_free(c2);
	diag_free(d);
}

static void test_unknown_option(void **state)
{
	(void)state;
	/* '#' comments on the lines before must not shift the line number. */
	assert_load_error("# first\n"
	                  "socket = \"inet:1@127.0.0.1\" # second\n"
	                  "/* third\n"
	                  "   fourth */\n"
	                  "bogus = 1\n",
	                  5, "no such option 'bogus'");
}

static void test_bad_values(void **state)
{
	const char *path = write_conf("bad.conf", "log_level = info\n"
	                                          "on_error = bounce\n"
	                                          "log_level = verbose\n"
	                                          "syslog_facility = local9\n"
	                                          "body_limit = lots\n"
	                                          "body_limit = 65M\n"
	                                          "stop_timeout = 3601\n"
	                                          "stop_timeout = -1\n"
	                                          "stop_timeout = 5m\n"
	                                          "socket = \"tcp:25\"\n"
	                                          "policies = { \"a\", \"\" }\n"
	                                          "body_limit = -1\n");
	struct diag *d = diag_new();
	struct config *c = config_load(path, d);

	(void)state;
	assert_null(c);
	assert_int_equal(diag_count(d), 16);
	/* options set twice first (found before libconfuse parses), then every bad value */
	assert_diag_line(d, 0, path, 3, "option 'log_level' is set twice (first at line 1)");
	assert_diag_line(d, 1, path, 6, "option 'body_limit' is set twice (first at line 5)");
	assert_diag_line(d, 2, path, 8, "option 'stop_timeout' is set twice (first at line 7)");
	assert_diag_line(d, 3, path, 9, "option 'stop_timeout' is set twice (first at line 7)");
	assert_diag_line(d, 4, path, 12, "option 'body_limit' is set twice (first at line 5)");
	assert_diag_line(d, 5, path, 2,
	                 "on_error: invalid value 'bounce' (expected tempfail or continue)");
	assert_diag_line(d, 6, path, 3,
	                 "log_level: invalid value 'verbose' (expected error, warning, info or "
	                 "debug)");
	assert_diag_line(d, 7, path, 4,
	                 "syslog_facility: invalid value 'local9' (expected mail, daemon, user or "
	                 "local0 to local7)");
	assert_diag_line(d, 8, path, 5,
	                 "body_limit: invalid size 'lots' (digits with an optional K, M or G)");
	assert_diag_line(d, 9, path, 6, "body_limit: 65M is more than the maximum of 64M");
	assert_diag_line(d, 10, path, 7, "stop_timeout: 3601 is out of range (0 to 3600 seconds)");
	assert_diag_line(d, 11, path, 8, "stop_timeout: invalid number of seconds '-1'");
	assert_diag_line(d, 12, path, 9, "stop_timeout: invalid number of seconds '5m'");
	assert_diag_line(d, 13, path, 10,
	                 "socket: invalid socket 'tcp:25' (expected unix:/path, inet:PORT@HOST or "
	                 "inet6:PORT@HOST)");
	assert_diag_line(d, 14, path, 11, "policies: empty pattern");
	assert_diag_line(d, 15, path, 12,
	                 "body_limit: invalid size '-1' (digits with an optional K, M or G)");
	diag_free(d);
}

static void test_each_bad_value_alone(void **state)
{
	(void)state;
	assert_load_error("\n\non_error = reject\n", 3,
	                  "on_error: invalid value 'reject' (expected tempfail or continue)");
	assert_load_error("log_level = \"\"\n", 1,
	                  "log_level: invalid value '' (expected error, warning, info or debug)");
	assert_load_error("\nsyslog_facility = kern\n", 2,
	                  "syslog_facility: invalid value 'kern' (expected mail, daemon, user or "
	                  "local0 to local7)");
	assert_load_error("body_limit = 1.5M\n", 1,
	                  "body_limit: invalid size '1.5M' (digits with an optional K, M or G)");
	assert_load_error("body_limit = 99999999999999999999\n", 1,
	                  "body_limit: invalid size '99999999999999999999' (digits with an "
	                  "optional K, M or G)");
	assert_load_error("socket = \"\"\n", 1,
	                  "socket: invalid socket '' (expected unix:/path, inet:PORT@HOST or "
	                  "inet6:PORT@HOST)");
	assert_load_error("socket = \"inet:\"\n", 1,
	                  "socket: invalid socket 'inet:' (expected unix:/path, inet:PORT@HOST or "
	                  "inet6:PORT@HOST)");
	assert_load_error("\nallow_root = maybe\n", 2,
	                  "invalid boolean value for option 'allow_root'");
}

static void test_missing_file(void **state)
{
	char path[PATH_MAX];
	struct diag *d = diag_new();

	(void)state;
	snprintf(path, sizeof(path), "%s/no-such.conf", tmpdir);
	assert_null(config_load(path, d));
	assert_int_equal(diag_count(d), 1);
	assert_diag_line(d, 0, path, 0, "cannot read: No such file or directory");

	/* A directory: libconfuse's lexer would exit() the process on it. */
	assert_null(config_load(tmpdir, d));
	assert_int_equal(diag_count(d), 2);
	assert_diag_line(d, 1, tmpdir, 0, "cannot read: Is a directory");
	diag_free(d);
}

/* ---- cfgfile_parse, as every module parses its files ---- */

static struct diag *seen_diag;

static int check_color(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *v = cfg_opt_getnstr(opt, 0);

	seen_diag = cfgfile_diag();
	if (strcmp(v, "red") != 0 && strcmp(v, "green") != 0) {
		cfg_error(cfg, "%s: no such color '%s'", opt->name, v);
		return -1;
	}
	return 0;
}

static void test_parse_file(void **state)
{
	cfg_opt_t opts[] = {
	        CFG_STR("color", "red", CFGF_NONE),
	        CFG_INT("count", 0, CFGF_NONE),
	        CFG_END(),
	};
	const char *path;
	struct diag *d = diag_new();
	cfg_t *cfg;

	(void)state;
	assert_null(cfgfile_diag());

	path = write_conf("other.conf", "# x\ncolor = green\ncount = 3\n");
	cfg = cfg_init(opts, CFGF_NONE);
	cfg_set_validate_func(cfg, "color", check_color);
	seen_diag = NULL;
	assert_int_equal(cfgfile_parse(cfg, path, d), 0);
	assert_ptr_equal(seen_diag, d);
	assert_string_equal(cfg_getstr(cfg, "color"), "green");
	assert_int_equal(cfg_getint(cfg, "count"), 3);
	assert_int_equal(diag_count(d), 0);
	assert_null(cfgfile_diag());
	cfg_free(cfg);

	path = write_conf("other.conf", "count = 3\n# x\ncolor = blue\n");
	cfg = cfg_init(opts, CFGF_NONE);
	cfg_set_validate_func(cfg, "color", check_color);
	assert_int_equal(cfgfile_parse(cfg, path, d), -1);
	assert_int_equal(diag_count(d), 1);
	assert_diag_line(d, 0, path, 3, "color: no such color 'blue'");
	cfg_free(cfg);

	path = write_conf("other.conf", "count = many\n");
	cfg = cfg_init(opts, CFGF_NONE);
	assert_int_equal(cfgfile_parse(cfg, path, d), -1);
	assert_int_equal(diag_count(d), 2);
	assert_diag_line(d, 1, path, 1, "invalid integer value for option 'count'");
	cfg_free(cfg);
	diag_free(d);
}

/* What a string option holds after quoting, as the man page promises: single quotes keep
   every backslash as typed (only \' is special), double quotes take C-like escapes, ${...}
   is kept in both, and a '#' inside quotes is no comment. */
static void test_quoting(void **state)
{
	cfg_opt_t opts[] = {
	        CFG_STR_LIST("s", NULL, CFGF_NONE),
	        CFG_END(),
	};
	static const char *const want[] = {
	        "x\\\\y", "x\\y",       "x'y",     "x\\\\'y", "/\\\\d/",
	        "x\\y",   "${helo} #1", "${helo}", "a\"b",
	};
	const char *path = write_conf(
	        "quote.conf", "s = { 'x\\\\y', 'x\\y', 'x\\'y', 'x\\\\\\'y',\n"
	                      "  '/\\\\d/', \"x\\\\y\", \"${helo} #1\", '${helo}', \"a\\\"b\" }\n");
	struct diag *d = diag_new();
	cfg_t *cfg = cfg_init(opts, CFGF_NONE);

	(void)state;
	assert_int_equal(cfgfile_parse(cfg, path, d), 0);
	assert_int_equal(cfg_size(cfg, "s"), sizeof(want) / sizeof(want[0]));
	for (unsigned i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_string_equal(cfg_getnstr(cfg, "s", i), want[i]);
	cfg_free(cfg);
	diag_free(d);
}

/* An option set twice in one block is an error (libconfuse would keep the last); "+=" adds
   to a list; list values, nested braces and sections are not confused with blocks. */
static void test_set_twice(void **state)
{
	cfg_opt_t sec_opts[] = {
	        CFG_STR_LIST("s", NULL, CFGF_NONE),
	        CFG_STR("t", NULL, CFGF_NONE),
	        CFG_END(),
	};
	cfg_opt_t opts[] = {
	        CFG_STR_LIST("s", NULL, CFGF_NONE),
	        CFG_SEC("sec", sec_opts, CFGF_MULTI | CFGF_TITLE),
	        CFG_END(),
	};
	struct diag *d = diag_new();
	const char *path;
	cfg_t *cfg;

	(void)state;
	path = write_conf("twice.conf", "s = { \"a\", \"{\" }\ns += \"b\"\n"
	                                "sec \"x\" { s = { \"t = 1\" } t = \"=\" s += \"c\" }\n"
	                                "sec \"y\" { t = \"1\" }\n");
	cfg = cfg_init(opts, CFGF_NONE);
	assert_int_equal(cfgfile_parse(cfg, path, d), 0);
	assert_int_equal(cfg_size(cfg, "s"), 3);
	assert_int_equal(cfg_size(cfg_gettsec(cfg, "sec", "x"), "s"), 2);
	cfg_free(cfg);

	path = write_conf("twice.conf", "s = \"a\"\nsec \"x\" {\n t = \"1\"\n s = {\"b\"}\n"
	                                "t = \"2\" }\ns = { \"c\" }\n");
	cfg = cfg_init(opts, CFGF_NONE);
	assert_int_equal(cfgfile_parse(cfg, path, d), -1);
	assert_int_equal(diag_count(d), 2);
	assert_diag_line(d, 0, path, 5, "sec 'x': option 't' is set twice (first at line 3)");
	assert_diag_line(d, 1, path, 6, "option 's' is set twice (first at line 1)");
	cfg_free(cfg);

	/* a backslash-newline inside double quotes continues the string: still a line */
	path = write_conf("twice.conf", "s = \"a\\\nb\"\nsec \"x\" { t = \"1\"\n t = \"2\" }\n");
	cfg = cfg_init(opts, CFGF_NONE);
	assert_int_equal(cfgfile_parse(cfg, path, d), -1);
	assert_int_equal(diag_count(d), 3);
	assert_diag_line(d, 2, path, 4, "sec 'x': option 't' is set twice (first at line 3)");
	cfg_free(cfg);
	diag_free(d);
}

/* Parts end before a top-level section only: never inside quotes or braces; each part is
   padded with line breaks so that its lines are the file's. */
static void test_split(void **state)
{
	const char *text = "list \"a\" { items = { \"rule \\\"x\\\" {\" } }\n"
	                   "rule \"b\" {\n  when = 'rule \"y\" }'\n}\n"
	                   "\n"
	                   "rule \"c\" { } rule \"d\" {}\n"
	                   "rule \"e\" {\nrule \"f\" {}\n}\n";
	size_t n, nl;
	char **parts;
	int *lines;

	(void)state;
	parts = cfgfile_split(text, 2, &n);
	assert_int_equal(n, 3); /* a b | c d | e (f is inside e) */
	assert_string_equal(parts[0], "list \"a\" { items = { \"rule \\\"x\\\" {\" } }\n"
	                              "rule \"b\" {\n  when = 'rule \"y\" }'\n}\n\n");
	assert_string_equal(parts[1], "\n\n\n\n\nrule \"c\" { } rule \"d\" {}\n");
	assert_string_equal(parts[2], "\n\n\n\n\n\nrule \"e\" {\nrule \"f\" {}\n}\n");
	lines = cfgfile_section_lines(parts[1], "rule", &nl);
	assert_int_equal(nl, 2);
	assert_int_equal(lines[0], 6);
	assert_int_equal(lines[1], 6);
	free(lines);
	lines = cfgfile_section_lines(parts[2], "rule", &nl);
	assert_int_equal(nl, 1);
	assert_int_equal(lines[0], 7);
	free(lines);
	for (size_t i = 0; i < n; i++)
		free(parts[i]);
	free(parts);

	parts = cfgfile_split("", 1000, &n);
	assert_int_equal(n, 1);
	assert_string_equal(parts[0], "");
	free(parts[0]);
	free(parts);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_stage_names),
	        cmocka_unit_test(test_action_names),
	        cmocka_unit_test(test_diag_format),
	        cmocka_unit_test(test_diag_printable),
	        cmocka_unit_test(test_diag_grows),
	        cmocka_unit_test(test_log_levels),
	        cmocka_unit_test(test_log_one_line),
	        cmocka_unit_test(test_log_stderr),
	        cmocka_unit_test(test_log_names),
	        cmocka_unit_test(test_parse_size),
	        cmocka_unit_test(test_defaults),
	        cmocka_unit_test(test_every_option),
	        cmocka_unit_test(test_split),
	        cmocka_unit_test(test_quoting),
	        cmocka_unit_test(test_set_twice),
	        cmocka_unit_test(test_more_values),
	        cmocka_unit_test(test_relative_config_path),
	        cmocka_unit_test(test_unknown_option),
	        cmocka_unit_test(test_bad_values),
	        cmocka_unit_test(test_each_bad_value_alone),
	        cmocka_unit_test(test_missing_file),
	        cmocka_unit_test(test_parse_file),
	};
	int rc = cmocka_run_group_tests(tests, setup_dir, teardown_dir);

	return rc ? 1 : 0;
}
