# End-to-end tests: a private Postfix and a private Sendmail on 127.0.0.1 with the built
# daemon attached, driven by swaks. They need root, the postfix and swaks packages, and for
# Sendmail one "apt-get update" beforehand (see tests/e2e/README.md). tests/local.mk sets
# MP_DAEMON and runs .sh tests through tests/run-test.
# Include from the top Makefile.am: include $(srcdir)/tests/e2e/local.mk
TESTS += tests/e2e/test_postfix.sh tests/e2e/test_sendmail.sh
EXTRA_DIST += \
	tests/e2e/README.md \
	tests/e2e/lib.sh \
	tests/e2e/test_postfix.sh \
	tests/e2e/test_sendmail.sh \
	tests/e2e/policies/e2e.rules
