# Tests: everything here runs under "make check".
# Each cmocka binary links the pure policy core only (no libmilter).
TEST_CORE_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
TEST_CORE_LDADD = $(POLICY_LIBS) $(CMOCKA_LIBS)
# Writing the files a test loads (tests/unit/testfile.h).
TESTFILE = tests/unit/testfile.c tests/unit/testfile.h

# --- unit: lists (tests/unit/test_list.c)
check_PROGRAMS += tests/unit/test_list
tests_unit_test_list_SOURCES = tests/unit/test_list.c $(TESTFILE)
tests_unit_test_list_CFLAGS = $(TEST_CORE_CFLAGS)
tests_unit_test_list_LDADD = $(TEST_CORE_LDADD)

# --- unit: replies (tests/unit/test_reply.c)
check_PROGRAMS += tests/unit/test_reply
tests_unit_test_reply_CFLAGS = $(TEST_CORE_CFLAGS)
tests_unit_test_reply_LDADD = $(TEST_CORE_LDADD)

# --- unit: main configuration, diag, log (tests/unit/test_config.c)
check_PROGRAMS += tests/unit/test_config
tests_unit_test_config_SOURCES = tests/unit/test_config.c $(TESTFILE)
tests_unit_test_config_CFLAGS = $(TEST_CORE_CFLAGS)
tests_unit_test_config_LDADD = $(TEST_CORE_LDADD)

# --- unit: the policy core (expressions, evaluation, bad rule files, snapshots).
# Data under tests/unit/rules and tests/unit/badrules; MP_SRCDIR finds it when the binary is
# run by hand (make check exports MP_TOP_SRCDIR).
TEST_CORE_CPPFLAGS = $(AM_CPPFLAGS) -DMP_SRCDIR='"$(abs_top_srcdir)"'
check_PROGRAMS += tests/unit/test_expr tests/unit/test_eval tests/unit/test_badrules \
	tests/unit/test_snapshot
tests_unit_test_expr_CPPFLAGS = $(TEST_CORE_CPPFLAGS)
tests_unit_test_expr_CFLAGS = $(TEST_CORE_CFLAGS)
tests_unit_test_expr_LDADD = $(TEST_CORE_LDADD)
tests_unit_test_eval_CPPFLAGS = $(TEST_CORE_CPPFLAGS)
tests_unit_test_eval_SOURCES = tests/unit/test_eval.c $(TESTFILE)
tests_unit_test_eval_CFLAGS = $(TEST_CORE_CFLAGS)
tests_unit_test_eval_LDADD = $(TEST_CORE_LDADD)
tests_unit_test_badrules_CPPFLAGS = $(TEST_CORE_CPPFLAGS)
tests_unit_test_badrules_CFLAGS = $(TEST_CORE_CFLAGS)
tests_unit_test_badrules_LDADD = $(TEST_CORE_LDADD)
tests_unit_test_snapshot_CPPFLAGS = $(TEST_CORE_CPPFLAGS)
tests_unit_test_snapshot_SOURCES = tests/unit/test_snapshot.c $(TESTFILE)
tests_unit_test_snapshot_CFLAGS = $(TEST_CORE_CFLAGS)
tests_unit_test_snapshot_LDADD = $(TEST_CORE_LDADD)
EXTRA_DIST += tests/unit/rules tests/unit/badrules

UNIT_TESTS = $(check_PROGRAMS)
TESTS += $(UNIT_TESTS)

# --- command line: -n on the shipped policy and examples, exit codes (tests/cli/)
CLI_TESTS = tests/cli/test_cli.sh tests/cli/test_hostile_rules.sh
TESTS += $(CLI_TESTS)
EXTRA_DIST += $(CLI_TESTS)

# --- protocol: the real daemon driven over the milter protocol (tests/proto/)
PROTO_TESTS = tests/proto/test_protocol.py tests/proto/test_reload.py tests/proto/test_hostile.py
TESTS += $(PROTO_TESTS)
EXTRA_DIST += tests/proto/milterclient.py tests/proto/daemon.py tests/proto/runner.py $(PROTO_TESTS) \
	tests/proto/policies

# Test output: the summary of every test reaches the console (fd 9), the rest stays in the
# .log files.
AM_TESTS_FD_REDIRECT = 9>&2
LOG_COMPILER = $(SHELL) $(top_srcdir)/tests/run-test
TEST_EXTENSIONS = .py .sh
PY_LOG_COMPILER = $(SHELL) $(top_srcdir)/tests/run-test $(PYTHON3)
SH_LOG_COMPILER = $(SHELL) $(top_srcdir)/tests/run-test $(SHELL)
AM_TESTS_ENVIRONMENT = \
	MP_TOP_SRCDIR='$(abs_top_srcdir)'; export MP_TOP_SRCDIR; \
	MP_TOP_BUILDDIR='$(abs_top_builddir)'; export MP_TOP_BUILDDIR; \
	MP_DAEMON='$(abs_top_builddir)/filter/milter-policy'; export MP_DAEMON;
EXTRA_DIST += tests/run-test
include $(srcdir)/tests/e2e/local.mk
