/*
 * test_list.c - list indexes (CIDR, domain, address, string), list files, named lists.
 *
 * List files are written to a fresh temporary directory by each test that needs one, so the
 * tests depend on neither the source nor the build directory.
 */
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

#include "diag.h"
#include "hashset.h"
#include "list.h"
#include "testfile.h"

/* ---- helpers ---- */

static struct list_index *index_of(enum list_kind kind, const char *const *entries)
{
	struct list_index *idx = list_index_new(kind);
	char err[256];

	for (size_t i = 0; entries[i] != NULL; i++) {
		int rc = list_index_add(idx, entries[i], strlen(entries[i]), err, sizeof(err));
		if (rc != 0)
			fail_msg("entry '%s' refused: %s", entries[i], err);
	}
	return idx;
}

/* The message list_index_add() gives for entry, or "" if it accepts it. */
static const char *add_error(enum list_kind kind, const char *entry)
{
	static char err[256];
	struct list_index *idx = list_index_new(kind);

	if (list_index_add(idx, entry, strlen(entry), err, sizeof(err)) == 0) {
		assert_string_equal(err, "");
		err[0] = '\0';
	}
	list_index_free(idx);
	return err;
}

static void assert_refused(enum list_kind kind, const char *entry, const char *msg)
{
	assert_string_equal(add_error(kind, entry), msg);
}

/* A temporary directory for list files, removed by teardown. */
static char tmpdir[64];

static int setup_tmp(void **state)
{
	(void)state;
	strcpy(tmpdir, "/tmp/test_list.XXXXXX");
	return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int teardown_tmp(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static const char *write_file(const char *name, const char *text, size_t len)
{
	return testfile_write(tmpdir, name, text, len);
}

/* ---- CIDR ---- */

static void test_cidr_v4(void **state)
{
	static const char *const e[] = {"192.0.2.0/24", "198.51.100.7", "203.0.113.128/25", NULL};
	struct list_index *idx = index_of(LIST_CIDR, e);

	(void)state;
	assert_int_equal(list_index_kind(idx), LIST_CIDR);
	assert_int_equal(list_index_count(idx), 3);
	assert_true(list_index_match(idx, "192.0.2.0"));
	assert_true(list_index_match(idx, "192.0.2.255"));
	assert_false(list_index_match(idx, "192.0.3.0"));
	assert_false(list_index_match(idx, "192.0.1.255"));
	assert_true(list_index_match(idx, "198.51.100.7"));
	assert_false(list_index_match(idx, "198.51.100.8"));
	assert_false(list_index_match(idx, "198.51.100.6"));
	assert_true(list_index_match(idx, "203.0.113.128"));
	assert_true(list_index_match(idx, "203.0.113.255"));
	assert_false(list_index_match(idx, "203.0.113.127"));
	/* IPv6 addresses outside the mapped range never match an IPv4 entry. */
	assert_false(list_index_match(idx, "2001:db8::c000:200"));
	assert_false(list_index_match(idx, "::192.0.2.1"));
	list_index_free(idx);
}

static void test_cidr_v6(void **state)
{
	static const char *const e[] = {"2001:db8::/32", "2001:DB8:FFFF::1", "fe80::/10", NULL};
	struct list_index *idx = index_of(LIST_CIDR, e);

	(void)state;
	assert_true(list_index_match(idx, "2001:db8::"));
	assert_true(list_index_match(idx, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"));
	assert_true(list_index_match(idx, "2001:DB8:1::1"));
	assert_false(list_index_match(idx, "2001:db9::"));
	assert_false(list_index_match(idx, "2001:db7:ffff::"));
	assert_true(list_index_match(idx, "febf::1"));
	assert_false(list_index_match(idx, "fec0::1"));
	assert_false(list_index_match(idx, "1.2.3.4"));
	list_index_free(idx);

	static const char *const e2[] = {"2001:db8:1:2::/64", NULL};
	idx = index_of(LIST_CIDR, e2);
	assert_true(list_index_match(idx, "2001:db8:1:2:ffff::1"));
	assert_false(list_index_match(idx, "2001:db8:1:3::1"));
	list_index_free(idx);
}

static void test_cidr_zero(void **state)
{
	static const char *const v4all[] = {"0.0.0.0/0", NULL};
	static const char *const all[] = {"::/0", NULL};
	struct list_index *idx = index_of(LIST_CIDR, v4all);

	(void)state;
	/* 0.0.0.0/0 is every IPv4 address, in either notation, and nothing else. */
	assert_true(list_index_match(idx, "0.0.0.0"));
	assert_true(list_index_match(idx, "255.255.255.255"));
	assert_true(list_index_match(idx, "10.1.2.3"));
	assert_true(list_index_match(idx, "::ffff:10.1.2.3"));
	assert_false(list_index_match(idx, "2001:db8::1"));
	assert_false(list_index_match(idx, "::1"));
	assert_false(list_index_match(idx, "::"));
	list_index_free(idx);

	idx = index_of(LIST_CIDR, all);
	assert_true(list_index_match(idx, "::"));
	assert_true(list_index_match(idx, "::1"));
	assert_true(list_index_match(idx, "2001:db8::1"));
	assert_true(list_index_match(idx, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
	assert_true(list_index_match(idx, "10.1.2.3"));
	assert_true(list_index_match(idx, "::ffff:10.1.2.3"));
	assert_false(list_index_match(idx, "not-an-ip"));
	list_index_free(idx);
}

static void test_cidr_host_routes(void **state)
{
	static const char *const e[] = {"10.0.0.1/32",
	                                "255.255.255.255",
	                                "0.0.0.0/32",
	                                "2001:db8::1/128",
	                                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
	                                "::/128",
	                                NULL};
	struct list_index *idx = index_of(LIST_CIDR, e);

	(void)state;
	assert_int_equal(list_index_count(idx), 6);
	assert_true(list_index_match(idx, "10.0.0.1"));
	assert_false(list_index_match(idx, "10.0.0.0"));
	assert_false(list_index_match(idx, "10.0.0.2"));
	/* All-ones and all-zeros keys are ordinary entries. */
	assert_true(list_index_match(idx, "255.255.255.255"));
	assert_false(list_index_match(idx, "255.255.255.254"));
	assert_true(list_index_match(idx, "0.0.0.0"));
	assert_true(list_index_match(idx, "2001:db8::1"));
	assert_false(list_index_match(idx, "2001:db8::2"));
	assert_true(list_index_match(idx, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
	assert_false(list_index_match(idx, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"));
	assert_true(list_index_match(idx, "::"));
	assert_false(list_index_match(idx, "::2"));
	list_index_free(idx);
}

static void test_cidr_mapped(void **state)
{
	static const char *const v4[] = {"10.0.0.0/8", "192.0.2.1", NULL};
	static const char *const v6[] = {"::ffff:10.0.0.0/104", "::FFFF:C000:201", NULL};
	static const char *const wide[] = {"::ffff:0:0/96", NULL};
	static const char *const covering[] = {"::/80", NULL};
	struct list_index *idx = index_of(LIST_CIDR, v4);

	(void)state;
	/* IPv4 entries match IPv4-mapped values... */
	assert_true(list_index_match(idx, "10.1.2.3"));
	assert_true(list_index_match(idx, "::ffff:10.1.2.3"));
	assert_true(list_index_match(idx, "::ffff:a01:203"));
	assert_true(list_index_match(idx, "::ffff:192.0.2.1"));
	assert_false(list_index_match(idx, "::ffff:192.0.2.2"));
	assert_false(list_index_match(idx, "::ffff:11.0.0.0"));
	assert_false(list_index_match(idx, "::10.1.2.3")); /* IPv4-compatible is not mapped */
	list_index_free(idx);

	/* ...and IPv4-mapped entries match IPv4 values. */
	idx = index_of(LIST_CIDR, v6);
	assert_true(list_index_match(idx, "10.255.0.1"));
	assert_true(list_index_match(idx, "::ffff:10.255.0.1"));
	assert_false(list_index_match(idx, "11.0.0.1"));
	assert_true(list_index_match(idx, "192.0.2.1"));
	assert_false(list_index_match(idx, "192.0.2.2"));
	list_index_free(idx);

	/* ::ffff:0:0/96 is 0.0.0.0/0. */
	idx = index_of(LIST_CIDR, wide);
	assert_true(list_index_match(idx, "1.2.3.4"));
	assert_false(list_index_match(idx, "::1"));
	list_index_free(idx);

	/* An IPv6 prefix shorter than /96 that covers the mapped range covers IPv4. */
	idx = index_of(LIST_CIDR, covering);
	assert_true(list_index_match(idx, "1.2.3.4"));
	assert_true(list_index_match(idx, "::1"));
	assert_false(list_index_match(idx, "::1:0:0:1"));
	list_index_free(idx);

	static const char *const e95[] = {"::fffe:0:0/95", NULL};
	static const char *const compat[] = {"::/96", NULL};
	idx = index_of(LIST_CIDR, e95);
	assert_true(list_index_match(idx, "203.0.113.1"));
	assert_true(list_index_match(idx, "::fffe:1:2"));
	assert_false(list_index_match(idx, "::fffd:1:2"));
	list_index_free(idx);
	/* ::/96 is the IPv4-compatible range, not IPv4. */
	idx = index_of(LIST_CIDR, compat);
	assert_false(list_index_match(idx, "203.0.113.1"));
	assert_true(list_index_match(idx, "::203.0.113.1"));
	list_index_free(idx);
}

static void test_cidr_overlap_and_duplicates(void **state)
{
	static const char *const e[] = {"10.0.0.0/8",          "10.1.0.0/16",   "10.1.2.3",
	                                "::ffff:10.0.0.0/104", "10.0.0.0/8",    "2001:db8::/32",
	                                "2001:db8:1::/48",     "2001:DB8::/32", NULL};
	struct list_index *idx = index_of(LIST_CIDR, e);

	(void)state;
	/* The same prefix written three ways counts once. */
	assert_int_equal(list_index_count(idx), 5);
	assert_true(list_index_match(idx, "10.1.2.3"));
	assert_true(list_index_match(idx, "10.1.2.4"));
	assert_true(list_index_match(idx, "10.2.0.0"));
	assert_false(list_index_match(idx, "11.1.2.3"));
	assert_true(list_index_match(idx, "2001:db8:1::5"));
	assert_true(list_index_match(idx, "2001:db8:2::5"));
	assert_false(list_index_match(idx, "2001:db9:1::5"));
	list_index_free(idx);
}

static void test_cidr_errors(void **state)
{
	(void)state;
	assert_refused(LIST_CIDR, "10.1.2.3/8",
	               "bad CIDR '10.1.2.3/8': host bits set (did you mean 10.0.0.0/8?)");
	assert_refused(LIST_CIDR, "192.0.2.1/24",
	               "bad CIDR '192.0.2.1/24': host bits set (did you mean 192.0.2.0/24?)");
	assert_refused(LIST_CIDR, "1.2.3.4/0",
	               "bad CIDR '1.2.3.4/0': host bits set (did you mean 0.0.0.0/0?)");
	assert_refused(LIST_CIDR, "2001:db8::1/32",
	               "bad CIDR '2001:db8::1/32': host bits set (did you mean 2001:db8::/32?)");
	assert_refused(LIST_CIDR, "::ffff:10.1.2.3/104",
	               "bad CIDR '::ffff:10.1.2.3/104': host bits set "
	               "(did you mean ::ffff:10.0.0.0/104?)");
	assert_refused(LIST_CIDR, "10.0.0.0/33",
	               "bad CIDR '10.0.0.0/33': prefix length must be 0..32");
	assert_refused(LIST_CIDR, "::/129", "bad CIDR '::/129': prefix length must be 0..128");
	assert_refused(LIST_CIDR, "10.0.0.0/", "bad CIDR '10.0.0.0/': bad prefix length");
	assert_refused(LIST_CIDR, "10.0.0.0/-1", "bad CIDR '10.0.0.0/-1': bad prefix length");
	assert_refused(LIST_CIDR, "10.0.0.0/8x", "bad CIDR '10.0.0.0/8x': bad prefix length");
	assert_refused(LIST_CIDR, "10.0.0.0/1000", "bad CIDR '10.0.0.0/1000': bad prefix length");
	assert_refused(LIST_CIDR, "10.0.0.0/8/8", "bad CIDR '10.0.0.0/8/8': bad prefix length");
	assert_refused(LIST_CIDR, "", "bad CIDR '': empty entry");
	assert_refused(LIST_CIDR, "example.com", "bad CIDR 'example.com': not an IP address");
	assert_refused(LIST_CIDR, "1.2.3", "bad CIDR '1.2.3': not an IP address");
	assert_refused(LIST_CIDR, "1.2.3.4.5", "bad CIDR '1.2.3.4.5': not an IP address");
	assert_refused(LIST_CIDR, "256.0.0.1", "bad CIDR '256.0.0.1': not an IP address");
	assert_refused(LIST_CIDR, "/8", "bad CIDR '/8': not an IP address");
	assert_refused(LIST_CIDR, "10.0.0.0 /8", "bad CIDR '10.0.0.0 /8': not an IP address");
	assert_refused(LIST_CIDR, "[192.0.2.1]", "bad CIDR '[192.0.2.1]': not an IP address");
	assert_refused(LIST_CIDR, "2001:db8:::1", "bad CIDR '2001:db8:::1': not an IP address");
	assert_refused(LIST_CIDR, "fe80::1%eth0", "bad CIDR 'fe80::1%eth0': not an IP address");
	assert_refused(LIST_CIDR, "1.2.3.4\n", "bad CIDR '1.2.3.4?': not an IP address");
	/* Accepted: the edge lengths. */
	assert_string_equal(add_error(LIST_CIDR, "0.0.0.0/0"), "");
	assert_string_equal(add_error(LIST_CIDR, "::/0"), "");
	assert_string_equal(add_error(LIST_CIDR, "1.2.3.4/32"), "");
	assert_string_equal(add_error(LIST_CIDR, "::1/128"), "");
}

static void test_cidr_bad_values(void **state)
{
	static const char *const e[] = {"0.0.0.0/0", "::/0", NULL};
	struct list_index *idx = index_of(LIST_CIDR, e);

	(void)state;
	/* An unparsable value never matches, not even ::/0. */
	assert_false(list_index_match(idx, ""));
	assert_false(list_index_match(idx, "unknown"));
	assert_false(list_index_match(idx, "[192.0.2.1]"));
	assert_false(list_index_match(idx, "192.0.2.1/32"));
	assert_false(list_index_match(idx, " 192.0.2.1"));
	assert_false(list_index_match(idx, "IPv6:2001:db8::1"));
	list_index_free(idx);
}

static void test_error_buffer(void **state)
{
	struct list_index *idx = list_index_new(LIST_CIDR);
	char err[8];
	char longentry[300];

	(void)state;
	memset(err, 'x', sizeof(err));
	assert_int_equal(list_index_add(idx, "nonsense", 8, err, sizeof(err)), -1);
	assert_string_equal(err, "bad CID");
	/* Long entries are cut in messages. */
	memset(longentry, 'a', sizeof(longentry));
	{
		char big[512];

		assert_int_equal(
		        list_index_add(idx, longentry, sizeof(longentry), big, sizeof(big)), -1);
		assert_non_null(strstr(big, "aaa...': not an IP address"));
		assert_true(strlen(big) < 150);
	}
	/* Entries need no terminating NUL: only len bytes count. */
	assert_int_equal(list_index_add(idx, "10.0.0.0/8junk", 10, err, sizeof(err)), 0);
	assert_true(list_index_match(idx, "10.9.9.9"));
	assert_int_equal(list_index_count(idx), 1);
	list_index_free(idx);
}

/* ---- domains ---- */

static void test_domain_match(void **state)
{
	static const char *const e[] = {"example.com", ".example.org", "Mixed.Case.NET.", "a.b.c.d",
	                                NULL};
	struct list_index *idx = index_of(LIST_DOMAIN, e);

	(void)state;
	assert_int_equal(list_index_kind(idx), LIST_DOMAIN);
	/* Exact entries match exactly. */
	assert_true(list_index_match(idx, "example.com"));
	assert_false(list_index_match(idx, "www.example.com"));
	assert_false(list_index_match(idx, "xexample.com"));
	assert_false(list_index_match(idx, "com"));
	/* A leading dot matches subdomains at any depth, not the domain itself. */
	assert_false(list_index_match(idx, "example.org"));
	assert_true(list_index_match(idx, "www.example.org"));
	assert_true(list_index_match(idx, "a.b.c.example.org"));
	assert_false(list_index_match(idx, "wwwexample.org"));
	assert_false(list_index_match(idx, "example.org.evil.test"));
	/* Case folded on both sides; a trailing dot ignored on both sides. */
	assert_true(list_index_match(idx, "EXAMPLE.Com"));
	assert_true(list_index_match(idx, "example.com."));
	assert_true(list_index_match(idx, "WWW.Example.ORG."));
	assert_true(list_index_match(idx, "mixed.case.net"));
	assert_true(list_index_match(idx, "MIXED.CASE.NET."));
	assert_false(list_index_match(idx, "x.mixed.case.net"));
	assert_true(list_index_match(idx, "a.b.c.d"));
	assert_false(list_index_match(idx, "b.c.d"));
	/* Values that are no domain never match. */
	assert_false(list_index_match(idx, ""));
	assert_false(list_index_match(idx, "."));
	assert_false(list_index_match(idx, ".example.org"));
	assert_false(list_index_match(idx, "a..example.org"));
	assert_false(list_index_match(idx, "example.com.."));
	list_index_free(idx);
}

static void test_domain_suffix_and_exact(void **state)
{
	static const char *const e[] = {"example.net", ".example.net", ".com", NULL};
	struct list_index *idx = index_of(LIST_DOMAIN, e);

	(void)state;
	assert_int_equal(list_index_count(idx), 3);
	assert_true(list_index_match(idx, "example.net"));
	assert_true(list_index_match(idx, "mx.example.net"));
	assert_false(list_index_match(idx, "net"));
	assert_true(list_index_match(idx, "anything.com"));
	assert_true(list_index_match(idx, "a.b.anything.com"));
	assert_false(list_index_match(idx, "com"));
	list_index_free(idx);
}

static void test_domain_duplicates(void **state)
{
	static const char *const e[] = {
	        "example.com",   "EXAMPLE.COM", "example.com.", "Example.Com.", ".example.com",
	        ".EXAMPLE.com.", NULL};
	struct list_index *idx = index_of(LIST_DOMAIN, e);

	(void)state;
	assert_int_equal(list_index_count(idx), 2);
	list_index_free(idx);
}

static void test_domain_errors(void **state)
{
	(void)state;
	assert_refused(LIST_DOMAIN, "", "bad domain '': empty entry");
	assert_refused(LIST_DOMAIN, ".", "bad domain '.': empty entry");
	assert_refused(LIST_DOMAIN, "..", "bad domain '..': empty label");
	assert_refused(LIST_DOMAIN, "a..b", "bad domain 'a..b': empty label");
	assert_refused(LIST_DOMAIN, "..example.com", "bad domain '..example.com': empty label");
	assert_refused(LIST_DOMAIN, "example.com..", "bad domain 'example.com..': empty label");
	assert_refused(LIST_DOMAIN, "exa mple.com",
	               "bad domain 'exa mple.com': contains white space or a control character");
	assert_refused(LIST_DOMAIN, "example.com\t",
	               "bad domain 'example.com?': contains white space or a control character");
	assert_refused(LIST_DOMAIN, "exa\001mple.com",
	               "bad domain 'exa?mple.com': contains white space or a control character");
	assert_refused(LIST_DOMAIN, "user@example.com",
	               "bad domain 'user@example.com': contains '@' (an address, not a domain)");
	assert_refused(LIST_DOMAIN, "*.example.com",
	               "bad domain '*.example.com': wildcards are not supported "
	               "(a leading dot matches every subdomain)");
	assert_refused(LIST_DOMAIN, "mx*.example.com",
	               "bad domain 'mx*.example.com': wildcards are not supported");
	assert_string_equal(add_error(LIST_DOMAIN, "localhost"), "");
	assert_string_equal(add_error(LIST_DOMAIN, "xn--bcher-kva.example"), "");
	assert_string_equal(add_error(LIST_DOMAIN, "_dmarc.example.com"), "");
}

/* ---- addresses and strings ---- */

static void test_addr(void **state)
{
	static const char *const e[] = {"User@Example.COM", "<postmaster@example.org>", "<>",
	                                "local-only", NULL};
	struct list_index *idx = index_of(LIST_ADDR, e);

	(void)state;
	assert_int_equal(list_index_kind(idx), LIST_ADDR);
	assert_int_equal(list_index_count(idx), 4);
	assert_true(list_index_match(idx, "user@example.com"));
	assert_true(list_index_match(idx, "USER@EXAMPLE.COM"));
	assert_false(list_index_match(idx, "user@example.co"));
	assert_false(list_index_match(idx, "xuser@example.com"));
	assert_false(list_index_match(idx, "user@sub.example.com"));
	assert_true(list_index_match(idx, "postmaster@example.org"));
	assert_true(list_index_match(idx, "<PostMaster@example.org>"));
	assert_true(list_index_match(idx, "Local-Only"));
	/* "<>" is the null sender, found as "" or "<>". */
	assert_true(list_index_match(idx, ""));
	assert_true(list_index_match(idx, "<>"));
	list_index_free(idx);

	static const char *const e2[] = {"a@b.example", NULL};
	idx = index_of(LIST_ADDR, e2);
	assert_false(list_index_match(idx, ""));
	assert_false(list_index_match(idx, "<>"));
	list_index_free(idx);

	/* "" inline is the null sender too; duplicates count once. */
	static const char *const e3[] = {"", "<>", "A@B", "a@b", "<a@B>", NULL};
	idx = index_of(LIST_ADDR, e3);
	assert_int_equal(list_index_count(idx), 2);
	assert_true(list_index_match(idx, ""));
	assert_true(list_index_match(idx, "A@b"));
	list_index_free(idx);
}

static void test_addr_errors(void **state)
{
	(void)state;
	assert_refused(LIST_ADDR, "a@b.example c@d.example",
	               "bad address 'a@b.example c@d.example': "
	               "contains white space or a control character");
	assert_refused(LIST_ADDR, "a@b\r",
	               "bad address 'a@b?': "
	               "contains white space or a control character");
}

static void test_string(void **state)
{
	static const char *const e[] = {"Hello", "hello world", "", "TLSv1.3", NULL};
	struct list_index *idx = index_of(LIST_STRING, e);
	char err[128];

	(void)state;
	assert_int_equal(list_index_kind(idx), LIST_STRING);
	assert_int_equal(list_index_count(idx), 4);
	assert_true(list_index_match(idx, "Hello"));
	assert_false(list_index_match(idx, "hello"));
	assert_false(list_index_match(idx, "HELLO"));
	assert_false(list_index_match(idx, "Hello "));
	assert_true(list_index_match(idx, "hello world"));
	assert_true(list_index_match(idx, ""));
	assert_true(list_index_match(idx, "TLSv1.3"));
	assert_false(list_index_match(idx, "tlsv1.3"));
	/* Angle brackets are not special in strings. */
	assert_int_equal(list_index_add(idx, "<x>", 3, err, sizeof(err)), 0);
	assert_true(list_index_match(idx, "<x>"));
	assert_false(list_index_match(idx, "x"));
	assert_int_equal(list_index_add(idx, "Hello", 5, err, sizeof(err)), 0);
	assert_int_equal(list_index_count(idx), 5);
	assert_int_equal(list_index_add(idx, "a\0b", 3, err, sizeof(err)), -1);
	assert_string_equal(err, "bad string 'a?b': contains a NUL byte");
	list_index_free(idx);
}

static void test_empty_index(void **state)
{
	(void)state;
	for (int k = LIST_CIDR; k <= LIST_STRING; k++) {
		struct list_index *idx = list_index_new((enum list_kind)k);

		assert_int_equal(list_index_count(idx), 0);
		assert_false(list_index_match(idx, ""));
		assert_false(list_index_match(idx, "1.2.3.4"));
		assert_false(list_index_match(idx, "example.com"));
		list_index_free(idx);
	}
}

/* ---- named lists ---- */

static void test_list_inline(void **state)
{
	struct list *l = list_new("trusted", "rules/a.rules", 3);
	struct diag *d = diag_new();
	const struct list_index *idx, *again;

	(void)state;
	assert_string_equal(list_name(l), "trusted");
	list_add_item(l, "127.0.0.0/8", "rules/a.rules", 4);
	list_add_item(l, "192.0.2.0/24", "rules/a.rules", 4);
	list_add_item(l, "2001:db8::/32", "rules/a.rules", 5);
	list_add_item(l, "127.0.0.0/8", "rules/a.rules", 6);
	assert_int_equal(list_entry_count(l), 4);
	idx = list_index_get(l, LIST_CIDR, d);
	assert_non_null(idx);
	assert_int_equal(diag_count(d), 0);
	assert_int_equal(list_index_count(idx), 3);
	assert_true(list_index_match(idx, "127.0.0.1"));
	assert_true(list_index_match(idx, "2001:db8::25"));
	assert_false(list_index_match(idx, "10.0.0.1"));
	/* Built once, cached. */
	again = list_index_get(l, LIST_CIDR, d);
	assert_ptr_equal(idx, again);
	/* The same entries as strings. */
	again = list_index_get(l, LIST_STRING, d);
	assert_non_null(again);
	assert_ptr_not_equal(idx, again);
	assert_true(list_index_match(again, "127.0.0.0/8"));
	assert_false(list_index_match(again, "127.0.0.1"));
	/* Indexes outlive the sources. */
	list_drop_sources(l);
	assert_int_equal(list_entry_count(l), 4);
	assert_ptr_equal(list_index_get(l, LIST_CIDR, d), idx);
	assert_true(list_index_match(idx, "192.0.2.9"));
	assert_int_equal(diag_count(d), 0);
	list_free(l);
	diag_free(d);
}

static void test_list_bad_entries(void **state)
{
	static const char text[] = "# trusted networks\n"
	                           "10.0.0.0/8\n"
	                           "10.1.2.3/8\n"
	                           "\n"
	                           "example.com\n";
	const char *path = write_file("bad.cidr", text, sizeof(text) - 1);
	char pathcopy[128];
	char want[256];
	struct list *l = list_new("nets", "rules/a.rules", 7);
	struct diag *d = diag_new();

	(void)state;
	snprintf(pathcopy, sizeof(pathcopy), "%s", path);
	list_add_item(l, "192.0.2.0/24", "rules/a.rules", 8);
	list_add_item(l, "192.0.2.0/33", "rules/a.rules", 8);
	assert_int_equal(list_add_file(l, pathcopy, d), 0);
	list_add_item(l, "garbage", "rules/b.rules", 12);
	assert_int_equal(list_entry_count(l), 6);
	assert_int_equal(diag_count(d), 0);

	assert_null(list_index_get(l, LIST_CIDR, d));
	assert_int_equal(diag_count(d), 4);
	assert_string_equal(diag_line(d, 0),
	                    "rules/a.rules:8: list 'nets': bad CIDR '192.0.2.0/33': "
	                    "prefix length must be 0..32");
	snprintf(want, sizeof(want),
	         "%s:3: list 'nets': bad CIDR '10.1.2.3/8': host bits set (did you mean "
	         "10.0.0.0/8?)",
	         pathcopy);
	assert_string_equal(diag_line(d, 1), want);
	snprintf(want, sizeof(want), "%s:5: list 'nets': bad CIDR 'example.com': not an IP address",
	         pathcopy);
	assert_string_equal(diag_line(d, 2), want);
	assert_string_equal(diag_line(d, 3),
	                    "rules/b.rules:12: list 'nets': bad CIDR 'garbage': not an IP address");
	/* Asking again: NULL again, no new messages. */
	assert_null(list_index_get(l, LIST_CIDR, d));
	assert_int_equal(diag_count(d), 4);
	/* Another kind of the same list is independent. */
	assert_non_null(list_index_get(l, LIST_STRING, d));
	assert_int_equal(diag_count(d), 4);
	list_drop_sources(l);
	assert_null(list_index_get(l, LIST_CIDR, d));
	assert_int_equal(diag_count(d), 4);
	list_free(l);
	diag_free(d);
}

static void test_list_many_bad_entries(void **state)
{
	struct list *l = list_new("doms", "rules/a.rules", 2);
	struct diag *d = diag_new();

	(void)state;
	for (int i = 0; i < 25; i++)
		list_add_item(l, "bad domain", "rules/a.rules", 10 + i);
	list_add_item(l, "good.example", "rules/a.rules", 40);
	assert_null(list_index_get(l, LIST_DOMAIN, d));
	/* Ten reported with their line, the rest summed up at the list. */
	assert_int_equal(diag_count(d), 11);
	assert_string_equal(diag_line(d, 0), "rules/a.rules:10: list 'doms': bad domain "
	                                     "'bad domain': contains white space or a control "
	                                     "character");
	assert_string_equal(diag_line(d, 9), "rules/a.rules:19: list 'doms': bad domain "
	                                     "'bad domain': contains white space or a control "
	                                     "character");
	assert_string_equal(diag_line(d, 10), "rules/a.rules:2: list 'doms': 15 more bad domain "
	                                      "entries");
	list_free(l);
	diag_free(d);
}

static void test_list_file_parsing(void **state)
{
	static const char text[] = "\xef\xbb\xbf"
	                           "# comment line\r\n"
	                           "   # indented comment\r\n"
	                           "\r\n"
	                           "   \t  \r\n"
	                           "  Alpha  \r\n"
	                           "beta # trailing comment\r\n"
	                           "gamma#not-a-comment\r\n"
	                           "\tdelta\t\r\n"
	                           "two words here\n"
	                           "<>\n"
	                           "#\n"
	                           "last-without-newline";
	const char *path = write_file("parse.txt", text, sizeof(text) - 1);
	struct list *l = list_new("words", "rules/a.rules", 1);
	struct diag *d = diag_new();
	const struct list_index *s;

	(void)state;
	assert_int_equal(list_add_file(l, path, d), 0);
	assert_int_equal(diag_count(d), 0);
	assert_int_equal(list_entry_count(l), 7);
	s = list_index_get(l, LIST_STRING, d);
	assert_non_null(s);
	assert_int_equal(list_index_count(s), 7);
	assert_true(list_index_match(s, "Alpha"));
	assert_true(list_index_match(s, "beta"));
	assert_true(list_index_match(s, "gamma#not-a-comment"));
	assert_true(list_index_match(s, "delta"));
	assert_true(list_index_match(s, "two words here"));
	assert_true(list_index_match(s, "<>"));
	assert_true(list_index_match(s, "last-without-newline"));
	assert_false(list_index_match(s, "# comment line"));
	assert_false(list_index_match(s, "beta # trailing comment"));
	assert_false(list_index_match(s, "Alpha\r"));
	assert_false(list_index_match(s, ""));
	assert_false(list_index_match(s, "gamma"));
	/* "<>" in a file is the null sender for an address index; the line with a space is not
	   an address (reported with its line number). */
	assert_null(list_index_get(l, LIST_ADDR, d));
	assert_int_equal(diag_count(d), 1);
	assert_non_null(strstr(diag_line(d, 0), ":9: list 'words': bad address 'two words here'"));
	list_free(l);
	diag_free(d);
}

static void test_list_file_null_sender(void **state)
{
	static const char text[] = "<>\nMailer-Daemon@Example.COM\n";
	const char *path = write_file("senders.txt", text, sizeof(text) - 1);
	struct list *l = list_new("senders", "rules/a.rules", 1);
	struct diag *d = diag_new();
	const struct list_index *a;

	(void)state;
	assert_int_equal(list_add_file(l, path, d), 0);
	a = list_index_get(l, LIST_ADDR, d);
	assert_non_null(a);
	assert_true(list_index_match(a, ""));
	assert_true(list_index_match(a, "mailer-daemon@example.com"));
	assert_false(list_index_match(a, "mailer-daemon@example.org"));
	list_free(l);
	diag_free(d);
}

static void test_list_file_errors(void **state)
{
	struct list *l = list_new("x", "rules/a.rules", 1);
	struct diag *d = diag_new();
	char want[256];

	(void)state;
	assert_int_equal(list_add_file(l, "/nonexistent/dir/list.txt", d), -1);
	assert_int_equal(diag_count(d), 1);
	assert_string_equal(diag_line(d, 0),
	                    "/nonexistent/dir/list.txt: cannot read: No such file or directory");
	assert_int_equal(list_add_file(l, tmpdir, d), -1);
	assert_int_equal(diag_count(d), 2);
	snprintf(want, sizeof(want), "%s: cannot read: Is a directory", tmpdir);
	assert_string_equal(diag_line(d, 1), want);
	assert_int_equal(list_entry_count(l), 0);
	/* An empty file is an empty list. */
	assert_int_equal(list_add_file(l, write_file("empty", "", 0), d), 0);
	assert_int_equal(list_entry_count(l), 0);
	assert_non_null(list_index_get(l, LIST_DOMAIN, d));
	assert_int_equal(diag_count(d), 2);
	list_free(l);
	diag_free(d);
}

/* Files that would hang or exhaust a reload, and binary files, are refused with a reason. */
static void test_list_file_hostile(void **state)
{
	struct list *l = list_new("x", "rules/a.rules", 1);
	struct diag *d = diag_new();
	char fifo[128], want[256];

	(void)state;
	snprintf(fifo, sizeof(fifo), "%s/fifo", tmpdir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_int_equal(list_add_file(l, fifo, d), -1); /* returns: no writer is waited for */
	snprintf(want, sizeof(want), "%s: cannot read: not a regular file", fifo);
	assert_string_equal(diag_line(d, 0), want);
	assert_int_equal(list_add_file(l, "/dev/zero", d), -1);
	assert_string_equal(diag_line(d, 1), "/dev/zero: cannot read: not a regular file");
	assert_int_equal(list_add_file(l, write_file("nul", "10.0.0.1\n10.0.0.2\n\0\n", 20), d),
	                 -1);
	snprintf(want, sizeof(want), "%s/nul:3: contains a NUL byte: not a text file", tmpdir);
	assert_string_equal(diag_line(d, 2), want);
	assert_int_equal(diag_count(d), 3);
	assert_int_equal(list_entry_count(l), 0);
	unlink(fifo);
	list_free(l);
	diag_free(d);
}

/* The name map the loader finds lists and tags by. */
static void test_hashset_names(void **state)
{
	enum { N = 10000 };
	static char names[N][16];
	struct hashset_names m = {0};
	size_t v = 0;

	(void)state;
	assert_false(hashset_names_get(&m, "a", &v));
	for (size_t i = 0; i < N; i++) {
		snprintf(names[i], sizeof(names[i]), "name-%zu", i);
		assert_true(hashset_names_put(&m, names[i], i));
	}
	assert_false(hashset_names_put(&m, "name-17", 99)); /* a copy of the name: found */
	for (size_t i = 0; i < N; i++) {
		assert_true(hashset_names_get(&m, names[i], &v));
		assert_int_equal(v, i);
	}
	assert_false(hashset_names_get(&m, "name-10000", &v));
	assert_false(hashset_names_get(&m, "Name-1", &v)); /* case counts */
	hashset_names_clear(&m);
	assert_false(hashset_names_get(&m, "name-1", &v));
	hashset_names_clear(&m);
}

/* 100,000 IPv4 hosts, 1,000 IPv6 /64s and 100,000 domains from files, each one found. */
static void test_list_big(void **state)
{
	enum { N = 100000 };
	size_t cap = (size_t)N * 40, len = 0;
	char *buf = malloc(cap);
	struct list *nets = list_new("nets", "rules/a.rules", 1);
	struct list *doms = list_new("doms", "rules/a.rules", 2);
	struct diag *d = diag_new();
	const struct list_index *ni, *di;
	char v[80];

	(void)state;
	assert_non_null(buf);
	for (int i = 0; i < N; i++)
		len += (size_t)sprintf(buf + len, "10.%d.%d.%d\n", i >> 16, (i >> 8) & 255,
		                       i & 255);
	for (int i = 0; i < 1000; i++)
		len += (size_t)sprintf(buf + len, "2001:db8:%x::/64\n", i);
	assert_int_equal(list_add_file(nets, write_file("big.cidr", buf, len), d), 0);
	len = 0;
	for (int i = 0; i < N; i++)
		len += (size_t)sprintf(buf + len, "%shost%d.Example%d.test\n", i % 2 ? "." : "", i,
		                       i % 100);
	assert_int_equal(list_add_file(doms, write_file("big.dom", buf, len), d), 0);
	free(buf);

	ni = list_index_get(nets, LIST_CIDR, d);
	di = list_index_get(doms, LIST_DOMAIN, d);
	assert_int_equal(diag_count(d), 0);
	assert_non_null(ni);
	assert_non_null(di);
	list_drop_sources(nets);
	list_drop_sources(doms);
	assert_int_equal(list_index_count(ni), N + 1000);
	assert_int_equal(list_index_count(di), N);
	for (int i = 0; i < N; i++) {
		sprintf(v, "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
		if (!list_index_match(ni, v))
			fail_msg("%s not found", v);
		sprintf(v, "::ffff:10.%d.%d.%d", (i + N) >> 16, ((i + N) >> 8) & 255,
		        (i + N) & 255);
		if (list_index_match(ni, v))
			fail_msg("%s found", v);
		/* Even entries are exact, odd ones match subdomains only. */
		sprintf(v, "HOST%d.example%d.TEST", i, i % 100);
		if (list_index_match(di, v) != (i % 2 == 0))
			fail_msg("%s: wrong answer", v);
		sprintf(v, "mx.host%d.example%d.test", i, i % 100);
		if (list_index_match(di, v) != (i % 2 == 1))
			fail_msg("%s: wrong answer", v);
		sprintf(v, "host%d.example%d.test", i, (i + 1) % 100);
		if (list_index_match(di, v))
			fail_msg("%s found", v);
	}
	for (int i = 0; i < 1000; i++) {
		sprintf(v, "2001:db8:%x::%x", i, i + 1);
		assert_true(list_index_match(ni, v));
	}
	assert_false(list_index_match(ni, "2001:db8:3e8::1"));
	list_free(nets);
	list_free(doms);
	diag_free(d);
}

static void test_free_null(void **state)
{
	(void)state;
	list_free(NULL);
	list_index_free(NULL);
}

static void test_free_unbuilt(void **state)
{
	struct list *l = list_new("x", "f", 1);

	(void)state;
	/* Freed with sources and no index; and a list never given an entry. */
	list_add_item(l, "a", "f", 2);
	list_free(l);
	list_free(list_new("y", "f", 3));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_cidr_v4),
	        cmocka_unit_test(test_cidr_v6),
	        cmocka_unit_test(test_cidr_zero),
	        cmocka_unit_test(test_cidr_host_routes),
	        cmocka_unit_test(test_cidr_mapped),
	        cmocka_unit_test(test_cidr_overlap_and_duplicates),
	        cmocka_unit_test(test_cidr_errors),
	        cmocka_unit_test(test_cidr_bad_values),
	        cmocka_unit_test(test_error_buffer),
	        cmocka_unit_test(test_domain_match),
	        cmocka_unit_test(test_domain_suffix_and_exact),
	        cmocka_unit_test(test_domain_duplicates),
	        cmocka_unit_test(test_domain_errors),
	        cmocka_unit_test(test_addr),
	        cmocka_unit_test(test_addr_errors),
	        cmocka_unit_test(test_string),
	        cmocka_unit_test(test_empty_index),
	        cmocka_unit_test(test_list_inline),
	        cmocka_unit_test(test_list_bad_entries),
	        cmocka_unit_test(test_list_many_bad_entries),
	        cmocka_unit_test(test_list_file_parsing),
	        cmocka_unit_test(test_list_file_null_sender),
	        cmocka_unit_test(test_list_file_errors),
	        cmocka_unit_test(test_list_file_hostile),
	        cmocka_unit_test(test_hashset_names),
	        cmocka_unit_test(test_list_big),
	        cmocka_unit_test(test_free_null),
	        cmocka_unit_test(test_free_unbuilt),
	};
	int rc = cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);

	return rc ? 1 : 0;
}
