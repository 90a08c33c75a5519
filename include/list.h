/*
 * list.h - lists of CIDRs, domains, addresses and strings, and the indexes that answer
 * "is this value in the list" without scanning it.
 *
 * Two layers:
 *  - struct list_index: an immutable-after-load set of one kind.  Lookups cost O(1) hash
 *    probes (domains: one probe per label; CIDRs: one probe per prefix length present).
 *  - struct list: a named list from a rule file ("list" section).  It keeps its raw entries
 *    with their origin (file:line) until the policy is compiled, and builds an index of a
 *    given kind on demand, once, so the same list can serve a CIDR test and a string test.
 *
 * Thread safety: a sealed index, and a list whose indexes are built, are read-only and may be
 * used by any number of threads at once.  Building is single-threaded.
 */
#ifndef MP_LIST_H
#define MP_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct diag;

enum list_kind {
	LIST_CIDR,   /* "192.0.2.0/24", "2001:db8::/32", bare addresses (= /32, /128).
	                IPv4 entries also match the IPv4-mapped IPv6 form (::ffff:a.b.c.d) and
	                vice versa. */
	LIST_DOMAIN, /* "example.com" matches exactly; ".example.com" matches every subdomain
	                (not example.com itself); case-insensitive; a trailing dot is ignored. */
	LIST_ADDR,   /* mail addresses, exact, case-insensitive; "" (null sender) allowed. */
	LIST_STRING  /* exact, case-sensitive. */
};

struct list_index;

struct list_index *list_index_new(enum list_kind kind);
void list_index_free(struct list_index *idx); /* NULL is a no-op */

/* Adds one entry (len bytes, need not be NUL-terminated).  Returns 0, or -1 with a message
   such as "bad CIDR '10.0.0.0/33'" written to err (errlen bytes, always terminated). */
int list_index_add(struct list_index *idx, const char *entry, size_t len, char *err, size_t errlen);

/* True if value (NUL-terminated) is in the set, per the index's kind.  For LIST_CIDR the value
   is an IP address in text form (v4 or v6, no brackets); an unparsable value never matches. */
bool list_index_match(const struct list_index *idx, const char *value);

size_t list_index_count(const struct list_index *idx); /* entries added (duplicates count once) */
enum list_kind list_index_kind(const struct list_index *idx);

struct list;

/* file/line: where the list is declared, for messages. Strings are copied. */
struct list *list_new(const char *name, const char *file, int line);
void list_free(struct list *l); /* NULL is a no-op; frees the indexes too */

const char *list_name(const struct list *l); /* owned by l */

/* An inline item; file:line is where it was written. */
void list_add_item(struct list *l, const char *item, const char *file, int line);

/* Reads path: one item per line; leading/trailing white space trimmed; blank lines and lines
   whose first non-blank is '#' skipped; a '#' after white space starts a comment.
   Returns 0, or -1 with "path: cannot read: <strerror>" in d. */
int list_add_file(struct list *l, const char *path, struct diag *d);

/* The index of that kind, built from the raw entries on first call and cached in l.
   On bad entries, adds one "file:line: list 'name': bad CIDR '...'" per bad entry to d and
   returns NULL (a second call for the same kind returns NULL again without new messages).
   Owned by l. */
const struct list_index *list_index_get(struct list *l, enum list_kind kind, struct diag *d);

/* Number of entries added (inline and from files); still valid after list_drop_sources. */
size_t list_entry_count(const struct list *l);

/* Frees the raw entries once every index the policy needs is built; indexes stay. */
void list_drop_sources(struct list *l);

#endif
