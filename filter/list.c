/*
 * list.c - lists of CIDRs, domains, addresses and strings, indexed for O(1) lookups.
 *
 * A list may hold a million entries, so nothing here scans and nothing allocates per entry:
 *
 *  - Domains, addresses, strings: one open-addressing hash set (linear probing, load <= 0.7)
 *    of 8-byte slots {arena offset, hash tag} over a string arena holding the normalised
 *    entries NUL-terminated.  The hash runs right to left, so a domain lookup hashes the value
 *    once and probes the set at every label boundary on the way: "a.b.example.com" probes
 *    ".com", ".example.com", ".b.example.com" (subdomain entries are stored with their dot)
 *    and "a.b.example.com" itself.
 *  - CIDRs: one hash set of masked keys per prefix length present, probed for each present
 *    length only.  IPv4 is the IPv4-mapped IPv6 range ::ffff:0:0/96; prefixes inside it
 *    (IPv4 entries, and IPv6 entries of length >= 96 in that range) live in sets of 32-bit
 *    keys indexed by the IPv4 prefix length, everything else in sets of 128-bit keys.  This
 *    is the same set of prefixes as one 128-bit table per length, at a quarter of the memory
 *    for IPv4.  So 0.0.0.0/0 (= ::ffff:0:0/96) matches IPv4 and mapped addresses only, and
 *    ::/0 matches everything.
 *
 * Entry syntax decided here (messages name the entry and the reason):
 *  - CIDR: an address, or address/length with 0 <= length <= 32 (IPv4) or 128 (IPv6).  Host
 *    bits set (10.1.2.3/8) are an error, not silently masked: the administrator most likely
 *    mistyped either the address or the length, and the message suggests the network.
 *  - Domain: folded to lower case (ASCII), one trailing dot dropped; a leading dot means
 *    "subdomains only".  White space, control characters, '@', '*' and empty labels are
 *    errors ("*.example.com" suggests ".example.com").
 *  - Address: surrounding <> stripped, folded to lower case.  "<>" and "" are the null sender
 *    (in a list file, where blank lines are skipped, write "<>").  White space and control
 *    characters are errors (two addresses on one line, most likely).  Values looked up are
 *    normalised the same way, so "<>" and "" both find the null sender.
 *  - String: any bytes but NUL, exact and case-sensitive; "" is allowed.
 *
 * Out of memory while loading aborts, as elsewhere in the loader: there is nothing sensible
 * to go on with.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diag.h"
#include "file.h"
#include "hashset.h"
#include "list.h"
#include "mem.h"

#define LIST_KINDS 4
/* Bad entries reported per list and kind; the rest are counted in one line. */
#define LIST_MAX_REPORTED 10
/* An entry is echoed in messages up to this many bytes. */
#define LIST_QUOTE_MAX 80
/* Dropping sources bigger than this returns the freed memory to the system. */
#define LIST_TRIM_BYTES (1024 * 1024)

/* ---- CIDR sets ---- */

struct list_cidr {
	struct hashset_32 *v4[33];   /* by IPv4 prefix length (= mapped length - 96) */
	struct hashset_128 *v6[129]; /* by prefix length, outside the mapped range */
	uint8_t v4len[33];           /* lengths present, longest first */
	uint8_t v6len[129];
	int nv4, nv6;
	bool v4_all; /* an IPv6 prefix of length <= 96 covers ::ffff:0:0/96, all of IPv4 */
};

/* Inserts len into the descending array lens of n elements. */
static void list_len_insert(uint8_t *lens, int *n, int len)
{
	int i = *n;

	while (i > 0 && lens[i - 1] < len) {
		lens[i] = lens[i - 1];
		i--;
	}
	lens[i] = (uint8_t)len;
	(*n)++;
}

static uint32_t list_mask32(uint32_t a, int len)
{
	return len == 0 ? 0 : a & (UINT32_MAX << (32 - len));
}

static struct hashset_key128 list_mask128(struct hashset_key128 k, int len)
{
	if (len <= 64) {
		k.hi = len == 0 ? 0 : k.hi & (UINT64_MAX << (64 - len));
		k.lo = 0;
	} else {
		k.lo = len == 128 ? k.lo : k.lo & (UINT64_MAX << (128 - len));
	}
	return k;
}

static struct hashset_key128 list_key_from6(const unsigned char b[16])
{
	struct hashset_key128 k = {0, 0};

	for (int i = 0; i < 8; i++) {
		k.hi = k.hi << 8 | b[i];
		k.lo = k.lo << 8 | b[i + 8];
	}
	return k;
}

static bool list_is_mapped(struct hashset_key128 k)
{
	return k.hi == 0 && k.lo >> 32 == 0xffff;
}

static struct hashset_key128 list_mapped(uint32_t a)
{
	struct hashset_key128 k = {0, 0xffff00000000ULL | a};

	return k;
}

static bool list_cidr_add4(struct list_cidr *c, uint32_t a, int len)
{
	if (c->v4[len] == NULL) {
		c->v4[len] = hashset_32_new();
		list_len_insert(c->v4len, &c->nv4, len);
	}
	return hashset_32_add(c->v4[len], a);
}

static bool list_cidr_add6(struct list_cidr *c, struct hashset_key128 k, int len)
{
	struct hashset_key128 m = list_mask128(list_mapped(0), len);

	if (list_is_mapped(k) && len >= 96)
		return list_cidr_add4(c, (uint32_t)k.lo, len - 96);
	if (m.hi == k.hi && m.lo == k.lo)
		c->v4_all = true;
	if (c->v6[len] == NULL) {
		c->v6[len] = hashset_128_new();
		list_len_insert(c->v6len, &c->nv6, len);
	}
	return hashset_128_add(c->v6[len], k);
}

static bool list_cidr_match4(const struct list_cidr *c, uint32_t a)
{
	if (c->v4_all)
		return true;
	for (int i = 0; i < c->nv4; i++)
		if (hashset_32_has(c->v4[c->v4len[i]], list_mask32(a, c->v4len[i])))
			return true;
	return false;
}

static bool list_cidr_match6(const struct list_cidr *c, struct hashset_key128 k)
{
	if (list_is_mapped(k))
		return list_cidr_match4(c, (uint32_t)k.lo);
	for (int i = 0; i < c->nv6; i++)
		if (hashset_128_has(c->v6[c->v6len[i]], list_mask128(k, c->v6len[i])))
			return true;
	return false;
}

static void list_cidr_free(struct list_cidr *c)
{
	if (c == NULL)
		return;
	for (int i = 0; i <= 32; i++)
		hashset_32_free(c->v4[i]);
	for (int i = 0; i <= 128; i++)
		hashset_128_free(c->v6[i]);
	free(c);
}

/* ---- the index ---- */

/* Label counts present among domain entries (127 stands for more), so that a lookup skips
   the probes that cannot hit: a cache miss each, in a big list. */
struct list_labels {
	uint64_t exact[2];
	uint64_t sub[2];
};

struct list_index {
	enum list_kind kind;
	size_t count;
	struct hashset_str strs; /* DOMAIN, ADDR, STRING */
	struct list_labels labels;
	struct list_cidr *cidr; /* CIDR */
};

static void list_label_set(uint64_t map[2], size_t n)
{
	n = n < 127 ? n : 127;
	map[n / 64] |= 1ULL << (n % 64);
}

static bool list_label_has(const uint64_t map[2], size_t n)
{
	n = n < 127 ? n : 127;
	return (map[n / 64] >> (n % 64)) & 1;
}

/* Notes the label count of a valid domain entry (n bytes, without a trailing dot). */
static void list_label_note(struct list_labels *lb, const char *s, size_t n)
{
	size_t labels = 1;

	for (size_t i = 1; i < n; i++)
		labels += s[i] == '.';
	list_label_set(s[0] == '.' ? lb->sub : lb->exact, labels);
}

struct list_index *list_index_new(enum list_kind kind)
{
	struct list_index *idx = mem_calloc(1, sizeof(*idx));

	assert(kind >= LIST_CIDR && kind <= LIST_STRING);
	idx->kind = kind;
	idx->strs.fold = kind == LIST_DOMAIN || kind == LIST_ADDR;
	if (kind == LIST_CIDR)
		idx->cidr = mem_calloc(1, sizeof(*idx->cidr));
	return idx;
}

void list_index_free(struct list_index *idx)
{
	if (idx == NULL)
		return;
	hashset_str_clear(&idx->strs);
	list_cidr_free(idx->cidr);
	free(idx);
}

size_t list_index_count(const struct list_index *idx)
{
	return idx->count;
}

enum list_kind list_index_kind(const struct list_index *idx)
{
	return idx->kind;
}

static const char *list_kind_word(enum list_kind kind)
{
	switch (kind) {
	case LIST_CIDR:
		return "CIDR";
	case LIST_DOMAIN:
		return "domain";
	case LIST_ADDR:
		return "address";
	default:
		return "string";
	}
}

/* err = "bad <kind> '<entry>': <why>", the entry cut if long; a NUL or other control byte
   shows as '?' (the entry is not a C string; diag_add makes the rest of the line printable). */
static int list_bad(const struct list_index *idx, const char *entry, size_t len, char *err,
                    size_t errlen, const char *why)
{
	char q[LIST_QUOTE_MAX + 4];
	size_t n = len < LIST_QUOTE_MAX ? len : LIST_QUOTE_MAX;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)entry[i];
		q[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	strcpy(q + n, len > n ? "..." : "");
	snprintf(err, errlen, "bad %s '%s': %s", list_kind_word(idx->kind), q, why);
	return -1;
}

static bool list_is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Parses "addr" or "addr/len" into a 128-bit key (IPv4 mapped) and an IPv6 prefix length.
   Returns NULL, or the reason it is bad; hint gets the network when host bits are set. */
static const char *list_parse_cidr(const char *s, size_t n, struct hashset_key128 *key, int *plen,
                                   char *hint, size_t hintlen)
{
	char buf[INET6_ADDRSTRLEN + 1];
	const char *slash = memchr(s, '/', n);
	size_t alen = slash != NULL ? (size_t)(slash - s) : n;
	unsigned char b[16];
	struct hashset_key128 m;
	int len, max;
	bool v6;

	if (n == 0)
		return "empty entry";
	if (alen == 0 || alen >= sizeof(buf))
		return "not an IP address";
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	v6 = memchr(buf, ':', alen) != NULL;
	if (inet_pton(v6 ? AF_INET6 : AF_INET, buf, b) != 1)
		return "not an IP address";
	max = v6 ? 128 : 32;
	len = max;
	if (slash != NULL) {
		const char *p = slash + 1, *end = s + n;

		if (p == end || end - p > 3)
			return "bad prefix length";
		for (len = 0; p < end; p++) {
			if (*p < '0' || *p > '9')
				return "bad prefix length";
			len = len * 10 + (*p - '0');
		}
		if (len > max)
			return v6 ? "prefix length must be 0..128" : "prefix length must be 0..32";
	}
	if (v6) {
		*key = list_key_from6(b);
		*plen = len;
	} else {
		*key = list_mapped((uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
		                   (uint32_t)b[2] << 8 | b[3]);
		*plen = len + 96;
	}
	m = list_mask128(*key, *plen);
	if (m.hi == key->hi && m.lo == key->lo)
		return NULL;
	for (int i = 0; i < 8; i++) {
		b[i] = (unsigned char)(m.hi >> (56 - 8 * i));
		b[i + 8] = (unsigned char)(m.lo >> (56 - 8 * i));
	}
	inet_ntop(v6 ? AF_INET6 : AF_INET, v6 ? b : b + 12, buf, sizeof(buf));
	snprintf(hint, hintlen, "host bits set (did you mean %s/%d?)", buf, len);
	return hint;
}

static int list_add_cidr(struct list_index *idx, const char *s, size_t n, char *err, size_t errlen)
{
	struct hashset_key128 key;
	int plen;
	char hint[96];
	const char *why = list_parse_cidr(s, n, &key, &plen, hint, sizeof(hint));

	if (why != NULL)
		return list_bad(idx, s, n, err, errlen, why);
	if (list_cidr_add6(idx->cidr, key, plen))
		idx->count++;
	return 0;
}

/* Checks a domain entry; returns NULL or the reason it is bad.  *n loses a trailing dot. */
static const char *list_check_domain(const char *s, size_t *n)
{
	size_t len = *n;
	bool sub;

	if (len > 0 && s[len - 1] == '.')
		len--;
	if (len == 0)
		return "empty entry";
	*n = len;
	if (len >= 2 && s[0] == '*' && s[1] == '.')
		return "wildcards are not supported (a leading dot matches every subdomain)";
	sub = s[0] == '.';
	for (size_t i = sub; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= ' ' || c == 0x7f)
			return "contains white space or a control character";
		if (c == '@')
			return "contains '@' (an address, not a domain)";
		if (c == '*')
			return "wildcards are not supported";
		if (c == '.' && (i == sub || s[i - 1] == '.'))
			return "empty label";
	}
	if (s[len - 1] == '.')
		return "empty label";
	return NULL;
}

/* Drops one pair of surrounding angle brackets. */
static void list_strip_angles(const char **s, size_t *n)
{
	if (*n >= 2 && (*s)[0] == '<' && (*s)[*n - 1] == '>') {
		(*s)++;
		*n -= 2;
	}
}

static const char *list_check_addr(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= ' ' || c == 0x7f)
			return "contains white space or a control character";
	}
	return NULL;
}

int list_index_add(struct list_index *idx, const char *entry, size_t len, char *err, size_t errlen)
{
	const char *s = entry;
	size_t n = len;
	const char *why = NULL;

	assert(errlen > 0);
	err[0] = '\0';
	switch (idx->kind) {
	case LIST_CIDR:
		return list_add_cidr(idx, entry, len, err, errlen);
	case LIST_DOMAIN:
		why = list_check_domain(s, &n);
		break;
	case LIST_ADDR:
		list_strip_angles(&s, &n);
		why = list_check_addr(s, n);
		break;
	case LIST_STRING:
		if (memchr(s, '\0', n) != NULL)
			why = "contains a NUL byte";
		break;
	}
	if (why != NULL)
		return list_bad(idx, entry, len, err, errlen, why);
	if (idx->kind == LIST_DOMAIN)
		list_label_note(&idx->labels, s, n);
	switch (hashset_str_add(&idx->strs, s, n)) {
	case 1:
		idx->count++;
		return 0;
	case 0:
		return 0;
	default:
		return list_bad(idx, entry, len, err, errlen, "list too large (4 GiB)");
	}
}

/* At most one probe per label: at each dot, right to left, the suffix from the dot is a key
   (if entries of that many labels exist). */
static bool list_match_domain(const struct list_index *idx, const char *v)
{
	const struct hashset_str *s = &idx->strs;
	size_t n = strlen(v), labels = 0;
	uint64_t h = HASHSET_HASH_BASIS;

	if (n > 0 && v[n - 1] == '.')
		n--;
	if (n == 0 || v[0] == '.' || v[n - 1] == '.')
		return false;
	for (size_t i = n; i-- > 0;) {
		h = hashset_hash_step(h, (unsigned char)v[i], true);
		if (v[i] != '.')
			continue;
		if (v[i - 1] == '.')
			return false; /* an empty label: not a domain */
		if (list_label_has(idx->labels.sub, ++labels) &&
		    hashset_str_has(s, v + i, n - i, hashset_hash_finish(h)))
			return true;
	}
	return list_label_has(idx->labels.exact, labels + 1) &&
	       hashset_str_has(s, v, n, hashset_hash_finish(h));
}

static bool list_match_ip(const struct list_cidr *c, const char *v)
{
	unsigned char b[16];

	if (strchr(v, ':') != NULL) {
		if (inet_pton(AF_INET6, v, b) != 1)
			return false;
		return list_cidr_match6(c, list_key_from6(b));
	}
	if (inet_pton(AF_INET, v, b) != 1)
		return false;
	return list_cidr_match4(c, (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
	                                   (uint32_t)b[2] << 8 | b[3]);
}

bool list_index_match(const struct list_index *idx, const char *value)
{
	const char *s = value;
	size_t n;

	if (idx->count == 0)
		return false;
	switch (idx->kind) {
	case LIST_CIDR:
		return list_match_ip(idx->cidr, value);
	case LIST_DOMAIN:
		return list_match_domain(idx, value);
	case LIST_ADDR:
		n = strlen(s);
		list_strip_angles(&s, &n);
		break;
	default:
		n = strlen(s);
		break;
	}
	return hashset_str_has(&idx->strs, s, n, hashset_str_hash(s, n, idx->strs.fold));
}

/* ---- named lists ---- */

/* A raw entry: text in l->text, origin l->files[file]:line. */
struct list_src {
	uint32_t off, len;
	uint32_t file;
	int32_t line;
};

struct list {
	char *name;
	char *file;
	int line;
	struct list_src *src;
	size_t nsrc, srccap;
	char *text;
	size_t textlen, textcap;
	char **files; /* origins of entries; consecutive entries share one */
	size_t nfiles;
	size_t nentries;
	bool dropped;
	bool tried[LIST_KINDS];
	struct list_index *idx[LIST_KINDS];
};

struct list *list_new(const char *name, const char *file, int line)
{
	struct list *l = mem_calloc(1, sizeof(*l));

	l->name = mem_strdup(name);
	l->file = mem_strdup(file != NULL ? file : "");
	l->line = line;
	return l;
}

void list_free(struct list *l)
{
	if (l == NULL)
		return;
	list_drop_sources(l);
	for (int k = 0; k < LIST_KINDS; k++)
		list_index_free(l->idx[k]);
	free(l->name);
	free(l->file);
	free(l);
}

const char *list_name(const struct list *l)
{
	return l->name;
}

size_t list_entry_count(const struct list *l)
{
	return l->nentries;
}

static uint32_t list_origin(struct list *l, const char *file)
{
	if (file == NULL)
		file = "";
	if (l->nfiles == 0 || strcmp(l->files[l->nfiles - 1], file) != 0) {
		l->files = mem_realloc(l->files, (l->nfiles + 1) * sizeof(*l->files));
		l->files[l->nfiles++] = mem_strdup(file);
	}
	return (uint32_t)(l->nfiles - 1);
}

static void list_text_reserve(struct list *l, size_t n)
{
	if (n <= l->textcap - l->textlen)
		return;
	/* Offsets are 32-bit; list_add_file() refuses files that would pass this. */
	if (n > UINT32_MAX - l->textlen)
		abort();
	l->textcap = l->textcap * 2 > l->textlen + n ? l->textcap * 2 : l->textlen + n;
	if (l->textcap > UINT32_MAX)
		l->textcap = UINT32_MAX;
	l->text = mem_realloc(l->text, l->textcap);
}

static void list_push(struct list *l, const char *s, size_t n, uint32_t file, int line)
{
	struct list_src *e;

	assert(!l->dropped);
	list_text_reserve(l, n);
	if (l->nsrc == l->srccap) {
		l->srccap = l->srccap ? l->srccap * 2 : 64;
		l->src = mem_realloc(l->src, l->srccap * sizeof(*l->src));
	}
	e = &l->src[l->nsrc++];
	e->off = (uint32_t)l->textlen;
	e->len = (uint32_t)n;
	e->file = file;
	e->line = line;
	memcpy(l->text + l->textlen, s, n);
	l->textlen += n;
	l->nentries++;
}

void list_add_item(struct list *l, const char *item, const char *file, int line)
{
	list_push(l, item, strlen(item), list_origin(l, file), line);
}

/* Cuts a line down to its item: blanks around it and a comment ("#" after a blank) off. */
static size_t list_line_item(const char **p, size_t n)
{
	const char *s = *p, *hash;

	while (n > 0 && list_is_space((unsigned char)*s)) {
		s++;
		n--;
	}
	if (n == 0 || *s == '#')
		return 0;
	for (const char *q = s; (hash = memchr(q, '#', n - (size_t)(q - s))) != NULL;
	     q = hash + 1) {
		if (list_is_space((unsigned char)hash[-1])) {
			n = (size_t)(hash - s);
			break;
		}
	}
	while (n > 0 && list_is_space((unsigned char)s[n - 1]))
		n--;
	*p = s;
	return n;
}

int list_add_file(struct list *l, const char *path, struct diag *d)
{
	char *buf;
	size_t len;
	const char *p, *end;
	uint32_t origin;
	int line = 0;

	if (file_read(path, &buf, &len, d) != 0)
		return -1;
	if (len > UINT32_MAX - l->textlen) {
		diag_add(d, path, 0, "cannot read: list too large (4 GiB)");
		free(buf);
		return -1;
	}
	list_text_reserve(l, len);
	origin = list_origin(l, path);
	p = buf;
	end = buf + len;
	if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
		p += 3; /* a UTF-8 byte order mark, as some editors write */
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl != NULL ? nl : end;
		const char *item = p;
		size_t n = list_line_item(&item, (size_t)(eol - p));

		line++;
		if (n > 0)
			list_push(l, item, n, origin, line);
		p = eol + 1;
	}
	free(buf);
	return 0;
}

/* Hash sets sized once for n entries of text bytes, so a big list is built without rehash. */
static void list_index_reserve(struct list_index *idx, size_t n, size_t bytes)
{
	if (idx->kind != LIST_CIDR)
		hashset_str_reserve(&idx->strs, n, bytes + n);
}

const struct list_index *list_index_get(struct list *l, enum list_kind kind, struct diag *d)
{
	struct list_index *idx;
	size_t bad = 0;
	char err[256];

	assert(kind >= LIST_CIDR && kind <= LIST_STRING);
	if (l->tried[kind])
		return l->idx[kind];
	/* Every index the policy needs is built before the sources go. */
	assert(!l->dropped);
	l->tried[kind] = true;
	idx = list_index_new(kind);
	list_index_reserve(idx, l->nsrc, l->textlen);
	for (size_t i = 0; i < l->nsrc; i++) {
		const struct list_src *e = &l->src[i];

		if (list_index_add(idx, l->text + e->off, e->len, err, sizeof(err)) == 0)
			continue;
		if (bad++ < LIST_MAX_REPORTED)
			diag_add(d, l->files[e->file], e->line, "list '%s': %s", l->name, err);
	}
	if (bad > LIST_MAX_REPORTED)
		diag_add(d, l->file, l->line, "list '%s': %zu more bad %s entries", l->name,
		         bad - LIST_MAX_REPORTED, list_kind_word(kind));
	if (bad > 0) {
		list_index_free(idx);
		return NULL;
	}
	l->idx[kind] = idx;
	return idx;
}

void list_drop_sources(struct list *l)
{
	bool big = l->textlen + l->nsrc * sizeof(*l->src) > LIST_TRIM_BYTES;

	for (size_t i = 0; i < l->nfiles; i++)
		free(l->files[i]);
	free(l->files);
	free(l->src);
	free(l->text);
	l->files = NULL;
	l->src = NULL;
	l->text = NULL;
	l->nfiles = l->nsrc = l->srccap = l->textlen = l->textcap = 0;
	l->dropped = true;
#ifdef __GLIBC__
	/* The sources of a big list, freed, are holes under the indexes built after them; give
	   their pages back rather than keep twice the list's size resident until exit. */
	if (big)
		malloc_trim(0);
#endif
}
