/*
 * test_snapshot.c - policy snapshots: reference counting, the installed snapshot swapped under
 * a connection that still uses the old one, and loader failures that leave nothing behind.
 *
 * Run under AddressSanitizer, a snapshot freed too early is a use-after-free and one never
 * freed is a leak: both fail the run.
 */
#include <pthread.h>
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
#include "policy.h"
#include "testfile.h"

static char tmpdir[64];
static const char conf_path[] = "/etc/milter-policy/milter-policy.conf";

/* The path of a new file tmpdir/name (caller frees). */
static char *write_file(const char *name, const char *text)
{
	return strdup(testfile_write(tmpdir, name, text, strlen(text)));
}

static struct policy *load(char **patterns, size_t n, struct diag *d)
{
	struct config cfg = {0};

	cfg.path = (char *)conf_path;
	cfg.policies = patterns;
	cfg.npolicies = n;
	cfg.on_error = ON_ERROR_TEMPFAIL;
	cfg.body_limit = 4096;
	return policy_load(&cfg, d);
}

/* A policy whose one helo rule rejects with text. */
static struct policy *load_text(const char *name, const char *text)
{
	char *path = write_file(name, text);
	struct diag *d = diag_new();
	struct policy *p = load(&path, 1, d);

	if (p == NULL)
		fail_msg("%s", diag_count(d) ? diag_line(d, 0) : "no message");
	diag_free(d);
	unlink(path);
	free(path);
	return p;
}

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_snapshot.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	policy_uninstall();
	rmdir(tmpdir);
	return 0;
}

static const char *helo_reply(struct conn *c, const char *name)
{
	static struct conn_verdict v;

	conn_helo(c, name);
	conn_run(c, STAGE_HELO, &v);
	return v.action == ACTION_REJECT ? v.reply.lines[0] : "(no reject)";
}

static void test_ref_counting(void **state)
{
	struct policy *p = load_text("a.rules", "rule \"r\" { when = 'helo == \"x\"' }\n");
	(void)state;

	assert_int_equal(p->refs, 1);
	assert_ptr_equal(policy_ref(p), p);
	assert_ptr_equal(policy_ref(p), p);
	assert_int_equal(p->refs, 3);
	policy_unref(p);
	policy_unref(p);
	assert_int_equal(p->refs, 1);
	policy_unref(NULL);
	/* the connection takes over a reference, and drops it when it ends */
	{
		struct conn *c = conn_new(policy_ref(p), NULL, NULL);
		assert_int_equal(p->refs, 2);
		assert_ptr_equal(conn_policy(c), p);
		conn_free(c);
		assert_int_equal(p->refs, 1);
		conn_free(NULL);
	}
	policy_unref(p); /* the last: freed (a leak otherwise, under ASan) */
}

static void test_install_swaps_under_a_connection(void **state)
{
	struct policy *p1 =
	        load_text("v1.rules", "rule \"v1\" { when = 'helo =~ /./' action = reject "
	                              "message = \"version one\" }\n");
	struct policy *p2 =
	        load_text("v2.rules", "rule \"v2\" { when = 'helo =~ /./' action = reject "
	                              "message = \"version two\" }\n");
	struct policy *cur;
	struct conn *old, *fresh;
	(void)state;

	assert_null(policy_current());
	policy_install(p1); /* takes over our reference */
	assert_int_equal(p1->refs, 1);
	cur = policy_current();
	assert_ptr_equal(cur, p1);
	assert_int_equal(p1->refs, 2);
	old = conn_new(cur, NULL, NULL); /* the connection holds p1 */
	assert_int_equal(p1->generation, 1);

	policy_install(p2);
	assert_int_equal(p2->generation, 2);
	/* the install reference of p1 is gone; the connection's stays */
	assert_int_equal(p1->refs, 1);
	cur = policy_current();
	assert_ptr_equal(cur, p2);
	fresh = conn_new(cur, NULL, NULL);

	/* each connection evaluates on its own snapshot (ASan: p1 is still alive) */
	assert_string_equal(helo_reply(old, "a"), "version one");
	assert_string_equal(helo_reply(fresh, "a"), "version two");
	conn_free(old); /* p1 freed here */
	assert_string_equal(helo_reply(fresh, "b"), "version two");
	conn_free(fresh);
	assert_int_equal(p2->refs, 1);

	/* installing a third frees p2 at once: no connection holds it */
	policy_install(load_text("v3.rules", "rule \"v3\" { when = 'helo == \"x\"' }\n"));
	cur = policy_current();
	assert_int_equal(cur->generation, 3);
	assert_string_equal(cur->rules[0]->name, "v3");
	policy_unref(cur);
	policy_uninstall();
	assert_null(policy_current());
}

struct reader {
	int loops;
	unsigned long max_generation;
	int wrong; /* verdicts that were not the rule's (checked by the main thread) */
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;

	for (int i = 0; i < r->loops; i++) {
		struct policy *p = policy_current();
		struct conn *c;
		if (p == NULL)
			continue;
		if (p->generation > r->max_generation)
			r->max_generation = p->generation;
		c = conn_new(p, NULL, NULL);
		conn_helo(c, "x");
		{
			struct conn_verdict v;
			conn_run(c, STAGE_HELO, &v);
			if (v.action != ACTION_REJECT)
				r->wrong++;
		}
		conn_free(c);
	}
	return NULL;
}

/* Readers take and drop snapshots while they are swapped (ASan/TSan-friendly: no timing). */
static void test_concurrent_readers(void **state)
{
	pthread_t th[4];
	struct reader rd[4];
	struct policy *base = load_text("c.rules", "rule \"c\" { when = 'helo == \"x\"' action = "
	                                           "reject }\n");
	(void)state;

	policy_install(base);
	for (int i = 0; i < 4; i++) {
		rd[i] = (struct reader){2000, 0, 0};
		assert_int_equal(pthread_create(&th[i], NULL, reader_main, &rd[i]), 0);
	}
	for (int i = 0; i < 50; i++) {
		struct policy *cur = policy_current();
		/* a new snapshot sharing nothing with the old one */
		struct policy *p = load_text("c.rules", "rule \"c\" { when = 'helo == \"x\"' "
		                                        "action = reject }\n");
		policy_unref(cur);
		policy_install(p);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(rd[i].wrong, 0);
		assert_true(rd[i].max_generation >= 1);
	}
	policy_uninstall();
}

static void test_summary_and_macros(void **state)
{
	char *a =
	        write_file("10-a.rules", "list \"l\" { items = { \"a.example\", \"b.example\" } }\n"
	                                 "rule \"r1\" { when = 'helo in @l' }\n"
	                                 "rule \"r2\" { when = 'macro(\"{foo}\") == \"1\" and "
	                                 "macro(\"{auth_type}\") == \"x\"' }\n");
	char *b = write_file("20-b.rules", "rule \"r3\" { when = 'macro(\"{foo}\") == \"2\"' }\n"
	                                   "rule \"r4\" { when = 'body contains \"x\" and "
	                                   "macro(\"{bar}\") == \"1\"' message = \"${macro(\\\"{baz}\\\")}\"\n"
	                                   "  action = reject }\n");
	char pattern[128], *pp = pattern;
	char buf[128];
	struct diag *d = diag_new();
	struct policy *p;
	(void)state;

	snprintf(pattern, sizeof(pattern), "%s/*.rules", tmpdir);
	p = load(&pp, 1, d);
	assert_non_null(p);
	policy_summary(p, buf, sizeof(buf));
	assert_string_equal(buf, "2 files, 4 rules, 1 list (2 entries)");
	/* a macro a rule reads is asked for at its stage, once; the base set stays */
	assert_string_equal(p->macros[STAGE_MAIL],
	                    "i {auth_type} {auth_authen} {auth_author} {mail_addr} {foo}");
	assert_non_null(strstr(p->macros[STAGE_CONNECT], "{foo}"));
	assert_null(strstr(strstr(p->macros[STAGE_CONNECT], "{foo}") + 1, "{foo}"));
	/* a body rule's macros are asked for at end of headers: libmilter has no body list */
	assert_string_equal(p->macros[STAGE_HEADER], "i {bar} {baz}");
	assert_int_equal(p->on_error, ON_ERROR_TEMPFAIL);
	assert_int_equal(p->body_limit, 4096);
	policy_unref(p);
	unlink(a);
	unlink(b);
	free(a);
	free(b);

	p = load_text("one.rules", "rule \"r\" { when = 'helo == \"x\"' }\n");
	policy_summary(p, buf, sizeof(buf));
	assert_string_equal(buf, "1 file, 1 rule, 0 lists (0 entries)");
	policy_unref(p);
	diag_free(d);
}

/* Strips tmpdir from a diagnostic line. */
static const char *rel(const char *line)
{
	static char buf[1024];
	size_t n = strlen(tmpdir);
	size_t o = 0;

	for (const char *s = line; *s != '\0' && o + 1 < sizeof(buf);) {
		if (strncmp(s, tmpdir, n) == 0 && s[n] == '/') {
			s += n + 1;
			continue;
		}
		buf[o++] = *s++;
	}
	buf[o] = '\0';
	return buf;
}

static void test_loader_failures(void **state)
{
	char *good1 = write_file("10-good.rules", "rule \"g1\" { when = 'helo == \"x\"' }\n");
	char *bad1 = write_file("20-bad.rules", "rule \"b1\" {\n  when = 'helo == '\n}\n");
	char *good2 = write_file("30-good.rules", "rule \"g2\" { when = 'helo == \"y\"' }\n");
	char *bad2 = write_file("40-bad.rules",
	                        "rule \"b2\" { when = 'helo == \"y\"' action = nope }\n");
	char *installed_before;
	char *pats[3];
	struct diag *d;
	struct policy *keep = load_text("keep.rules", "rule \"keep\" { when = 'helo == \"x\"' }\n"),
	              *cur;
	(void)state;

	policy_install(keep);

	/* a file that does not exist */
	d = diag_new();
	pats[0] = "/nonexistent/milter-policy/x.rules";
	assert_null(load(pats, 1, d));
	assert_int_equal(diag_count(d), 1);
	assert_string_equal(diag_line(d, 0),
	                    "/etc/milter-policy/milter-policy.conf: policies: "
	                    "'/nonexistent/milter-policy/x.rules' matches no file");
	diag_free(d);

	/* a glob matching nothing */
	d = diag_new();
	assert_true(asprintf(&pats[0], "%s/*.nomatch", tmpdir) > 0);
	assert_null(load(pats, 1, d));
	assert_int_equal(diag_count(d), 1);
	assert_string_equal(rel(diag_line(d, 0)), "/etc/milter-policy/milter-policy.conf: "
	                                          "policies: '*.nomatch' matches no file");
	diag_free(d);

	/* broken files among good ones: every error, no snapshot */
	d = diag_new();
	assert_true(asprintf(&pats[1], "%s/*.rules", tmpdir) > 0);
	assert_null(load(&pats[1], 1, d));
	assert_int_equal(diag_count(d), 2);
	assert_string_equal(rel(diag_line(d, 0)),
	                    "20-bad.rules:2: rule 'b1': when: expected a \"string\" at column 9");
	assert_string_equal(
	        rel(diag_line(d, 1)),
	        "40-bad.rules:1: rule 'b2': unknown action 'nope' (use continue, accept, "
	        "reject, tempfail, discard or quarantine)");
	diag_free(d);

	/* a pattern matching nothing and broken files: still every error */
	d = diag_new();
	assert_null(load(pats, 2, d));
	assert_int_equal(diag_count(d), 3);
	assert_non_null(strstr(diag_line(d, 0), "matches no file"));
	assert_non_null(strstr(diag_line(d, 1), "20-bad.rules:2:"));
	assert_non_null(strstr(diag_line(d, 2), "40-bad.rules:1:"));
	diag_free(d);

	/* an unreadable list file named by a good rule file */
	d = diag_new();
	pats[2] = write_file("list.rules2", "list \"l\" { file = \"missing.list\" }\n"
	                                    "rule \"l\" { when = 'helo in @l' }\n");
	assert_null(load(&pats[2], 1, d));
	assert_int_equal(diag_count(d), 1);
	assert_string_equal(rel(diag_line(d, 0)),
	                    "missing.list: cannot read: No such file or directory");
	diag_free(d);

	/* the installed snapshot is untouched by failed loads */
	cur = policy_current();
	assert_ptr_equal(cur, keep);
	installed_before = cur->rules[0]->name;
	assert_string_equal(installed_before, "keep");
	policy_unref(cur);
	policy_uninstall();

	for (size_t i = 0; i < 3; i++)
		free(pats[i]);
	unlink(good1);
	unlink(bad1);
	unlink(good2);
	unlink(bad2);
	free(good1);
	free(bad1);
	free(good2);
	free(bad2);
	{
		char *l = NULL;
		assert_true(asprintf(&l, "%s/list.rules2", tmpdir) > 0);
		unlink(l);
		free(l);
	}
}

/* A rule file of n rules, one per line: a list "l" on line 1, then "r0".."r<n-1>" (rule i on
   line i + 2, rejecting HELO h<i>), then "last" using the list.  Rule i's line is odd[i] if
   that is set. */
static char *big_rules(int n, const char *const *odd)
{
	size_t cap = (size_t)n * 80 + 200, len = 0;
	char *t = malloc(cap);

	assert_non_null(t);
	len += (size_t)snprintf(t, cap, "list \"l\" { items = { \"10.0.0.0/8\" } }\n");
	for (int i = 0; i < n; i++) {
		if (odd != NULL && odd[i] != NULL)
			len += (size_t)snprintf(t + len, cap - len, "%s\n", odd[i]);
		else
			len += (size_t)snprintf(
			        t + len, cap - len,
			        "rule \"r%d\" { when = 'helo == \"h%d\"' action = reject }\n", i,
			        i);
	}
	snprintf(t + len, cap - len, "rule \"last\" { when = 'client_ip in @l' }\n");
	return t;
}

/* Loads text as big.rules; returns the number of errors, the first two in e0 and e1. */
static size_t load_errors(const char *text, char *e0, char *e1, size_t len)
{
	char *path = write_file("big.rules", text);
	struct diag *d = diag_new();
	size_t n;

	assert_null(load(&path, 1, d));
	n = diag_count(d);
	snprintf(e0, len, "%s", n > 0 ? rel(diag_line(d, 0)) : "");
	snprintf(e1, len, "%s", n > 1 ? rel(diag_line(d, 1)) : "");
	diag_free(d);
	unlink(path);
	free(path);
	return n;
}

/* A file of more sections than one libconfuse parse is given (rules.c parses in parts of
   1,000): rules in order at their lines, a list from the first part used in the last, and
   errors in later parts at their own lines. */
static void test_large_file_in_parts(void **state)
{
	const char *odd[2500] = {0};
	char *text = big_rules(2500, NULL), e0[512], e1[512];
	struct policy *p;

	(void)state;
	p = load_text("big.rules", text);
	free(text);
	assert_int_equal(p->nrules, 2501);
	assert_int_equal(p->nstage_rules[STAGE_HELO], 2500);
	for (int i = 0; i < 2500; i += 499) {
		char name[16];
		snprintf(name, sizeof(name), "r%d", i);
		assert_string_equal(p->stage_rules[STAGE_HELO][i]->name, name);
		assert_int_equal(p->stage_rules[STAGE_HELO][i]->line, i + 2);
	}
	assert_string_equal(p->stage_rules[STAGE_CONNECT][0]->name, "last");
	assert_int_equal(p->stage_rules[STAGE_CONNECT][0]->line, 2502);
	policy_unref(p);

	odd[2100] = "rule \"r2100\" { when = 'hleo == \"x\"' }";
	odd[2400] = "rule \"r0\" { when = 'helo == \"y\"' }";
	text = big_rules(2500, odd);
	assert_int_equal(load_errors(text, e0, e1, sizeof(e0)), 2);
	free(text);
	assert_string_equal(e0,
	                    "big.rules:2102: rule 'r2100': when: unknown field 'hleo' at column 1");
	assert_string_equal(e1,
	                    "big.rules:2402: rule 'r0': a rule of this name is already defined at "
	                    "big.rules:2");

	odd[2100] = NULL;
	odd[2400] = NULL;
	odd[1700] = "rule \"r1700\" { when = 'helo == \"x\"' bogus = 1 }";
	text = big_rules(2500, odd);
	assert_int_equal(load_errors(text, e0, e1, sizeof(e0)), 1);
	free(text);
	assert_string_equal(e0, "big.rules:1702: no such option 'bogus'");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_ref_counting),
	        cmocka_unit_test(test_install_swaps_under_a_connection),
	        cmocka_unit_test(test_concurrent_readers),
	        cmocka_unit_test(test_summary_and_macros),
	        cmocka_unit_test(test_loader_failures),
	        cmocka_unit_test(test_large_file_in_parts),
	};
	int rc = cmocka_run_group_tests(tests, setup, teardown);

	return rc ? 1 : 0;
}
