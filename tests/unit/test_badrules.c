/*
 * test_badrules.c - every file in tests/unit/badrules/ (name.rules) must fail to load with the
 * diagnostic written on its first line:
 *
 *   # expect: name.rules:4: message
 *
 * The first diagnostic line is compared exactly, with the badrules directory stripped from
 * every path in it.  A second line "# load-first: other.inc" names a file (in the same
 * directory) loaded before it, for errors that need two files.
 */
#include <glob.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "diag.h"
#include "policy.h"

#ifndef MP_SRCDIR
#define MP_SRCDIR "."
#endif

#define MIN_BAD_FILES 30

static char dir[4096];

/* Reads the value of "# key: value" on line lineno (1-based) of path into out; false if that
   line is not such a comment. */
static bool header_line(const char *path, int lineno, const char *key, char *out, size_t len)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	char prefix[64];
	bool found = false;

	assert_non_null(f);
	snprintf(prefix, sizeof(prefix), "# %s: ", key);
	for (int i = 1; fgets(line, sizeof(line), f) != NULL; i++) {
		if (i < lineno)
			continue;
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, prefix, strlen(prefix)) == 0) {
			snprintf(out, len, "%s", line + strlen(prefix));
			found = true;
		}
		break;
	}
	fclose(f);
	return found;
}

/* Copies s into out with every "dir/" removed. */
static void strip_dir(const char *s, char *out, size_t len)
{
	char prefix[4200];
	size_t plen, o = 0;

	snprintf(prefix, sizeof(prefix), "%s/", dir);
	plen = strlen(prefix);
	while (*s != '\0' && o + 1 < len) {
		if (strncmp(s, prefix, plen) == 0) {
			s += plen;
			continue;
		}
		out[o++] = *s++;
	}
	out[o] = '\0';
}

/* Loads one bad file; returns true if its first diagnostic is the expected one. */
static bool check_file(const char *path)
{
	char expect[2048], first[256], actual[4096];
	char *files[2];
	size_t n = 0;
	struct config cfg = {0};
	struct diag *d = diag_new();
	struct policy *p;
	bool ok;

	if (!header_line(path, 1, "expect", expect, sizeof(expect))) {
		print_error("%s: first line is not '# expect: ...'\n", path);
		diag_free(d);
		return false;
	}
	if (header_line(path, 2, "load-first", first, sizeof(first))) {
		assert_true(asprintf(&files[n++], "%s/%s", dir, first) > 0);
	}
	files[n++] = strdup(path);
	cfg.path = "/etc/milter-policy/milter-policy.conf";
	cfg.policies = files;
	cfg.npolicies = n;
	cfg.on_error = ON_ERROR_TEMPFAIL;
	cfg.body_limit = 1024;
	p = policy_load(&cfg, d);
	if (p != NULL) {
		print_error("%s: loaded, expected: %s\n", path, expect);
		policy_unref(p);
		ok = false;
	} else if (diag_count(d) == 0) {
		print_error("%s: failed without a message, expected: %s\n", path, expect);
		ok = false;
	} else {
		strip_dir(diag_line(d, 0), actual, sizeof(actual));
		ok = strcmp(actual, expect) == 0;
		if (!ok)
			print_error("%s:\n  expected: %s\n  actual:   %s\n", strrchr(path, '/') + 1,
			            expect, actual);
	}
	for (size_t i = 0; i < n; i++)
		free(files[i]);
	diag_free(d);
	return ok;
}

static void test_bad_rule_files(void **state)
{
	const char *top = getenv("MP_TOP_SRCDIR") ? getenv("MP_TOP_SRCDIR") : MP_SRCDIR;
	char pattern[4200];
	glob_t g;
	size_t bad = 0;
	(void)state;

	snprintf(dir, sizeof(dir), "%s/tests/unit/badrules", top);
	snprintf(pattern, sizeof(pattern), "%s/*.rules", dir);
	assert_int_equal(glob(pattern, 0, NULL, &g), 0);
	if (g.gl_pathc < MIN_BAD_FILES)
		fail_msg("only %zu bad rule files in %s (at least %d)", g.gl_pathc, dir,
		         MIN_BAD_FILES);
	for (size_t i = 0; i < g.gl_pathc; i++)
		if (!check_file(g.gl_pathv[i]))
			bad++;
	print_message("%zu bad rule files checked, %zu with a wrong diagnostic\n", g.gl_pathc, bad);
	globfree(&g);
	assert_int_equal(bad, 0);
}

/* The same file loaded twice gives the same messages: no state survives a failed load
   (libconfuse's lexer, the option-line table). */
static void test_failure_leaves_no_state(void **state)
{
	const char *top = getenv("MP_TOP_SRCDIR") ? getenv("MP_TOP_SRCDIR") : MP_SRCDIR;
	char *path;
	struct config cfg = {0};
	struct diag *d1 = diag_new(), *d2 = diag_new();
	(void)state;

	assert_true(asprintf(&path, "%s/tests/unit/badrules/duplicate-option.rules", top) > 0);
	cfg.path = "/etc/milter-policy/milter-policy.conf";
	cfg.policies = &path;
	cfg.npolicies = 1;
	assert_null(policy_load(&cfg, d1));
	assert_null(policy_load(&cfg, d2));
	assert_int_equal(diag_count(d1), diag_count(d2));
	for (size_t i = 0; i < diag_count(d1); i++)
		assert_string_equal(diag_line(d1, i), diag_line(d2, i));
	diag_free(d1);
	diag_free(d2);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_bad_rule_files),
	        cmocka_unit_test(test_failure_leaves_no_state),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);

	return rc ? 1 : 0;
}
