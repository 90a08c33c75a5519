# The policy core: pure C, no libmilter.  Unit tests link it directly.
noinst_LIBRARIES += filter/libpolicy.a
filter_libpolicy_a_SOURCES = \
	filter/types.c \
	filter/diag.c \
	filter/mem.c \
	filter/file.c \
	filter/cfgfile.c \
	filter/log.c \
	filter/config.c \
	filter/field.c \
	filter/hashset.c \
	filter/list.c \
	filter/reply.c \
	filter/expr.c \
	filter/policy.c \
	filter/rules.c \
	filter/conn.c \
	include/types.h include/diag.h include/mem.h include/file.h include/cfgfile.h include/log.h include/config.h include/field.h \
	include/hashset.h include/list.h include/reply.h include/expr.h include/policy.h include/rules.h include/conn.h

POLICY_LIBS = filter/libpolicy.a $(CONFUSE_LIBS) $(PCRE2_LIBS) $(PTHREAD_LIBS)

# The daemon: libmilter glue, signals and reload, command line.
sbin_PROGRAMS += filter/milter-policy
filter_milter_policy_SOURCES = \
	filter/main.c \
	filter/milter.c \
	filter/control.c \
	include/milter.h include/control.h
filter_milter_policy_CFLAGS = $(AM_CFLAGS) $(MILTER_CFLAGS)
filter_milter_policy_LDADD = $(POLICY_LIBS) $(MILTER_LIBS)
