/*
 * hashset.h - the hash sets that list indexes are made of: a set of strings over one arena
 * (domains, addresses, strings), and sets of 32- and 128-bit keys (CIDR prefixes).
 *
 * Open addressing with linear probing at load <= 0.7; nothing is allocated per entry, so a
 * million entries cost two allocations.  Big tables get transparent huge pages: each lookup
 * in a big list is a random access, and TLB misses would double its cost.  Out of memory
 * aborts (mem.h).  Not thread-safe while being built; read-only use is.
 */
#ifndef MP_HASHSET_H
#define MP_HASHSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

static inline unsigned char hashset_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

#define HASHSET_HASH_BASIS 0xcbf29ce484222325ULL
#define HASHSET_FNV_PRIME 0x100000001b3ULL

static inline uint64_t hashset_fmix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

/* A string is hashed right to left, a byte at a time, from HASHSET_HASH_BASIS: a domain
   lookup hashes the value once and has the hash of every suffix on the way.
   hashset_hash_finish() gives the hash that hashset_str_has() takes. */
static inline uint64_t hashset_hash_step(uint64_t h, unsigned char c, bool fold)
{
	return (h ^ (fold ? hashset_lower(c) : c)) * HASHSET_FNV_PRIME;
}

static inline uint32_t hashset_hash_finish(uint64_t h)
{
	return (uint32_t)(hashset_fmix(h) >> 32);
}

static inline uint32_t hashset_str_hash(const char *s, size_t n, bool fold)
{
	uint64_t h = HASHSET_HASH_BASIS;

	while (n > 0)
		h = hashset_hash_step(h, (unsigned char)s[--n], fold);
	return hashset_hash_finish(h);
}

/* ---- strings ---- */

struct hashset_slot {
	uint32_t off; /* arena offset + 1; 0 is an empty slot */
	uint32_t hash;
};

/* Zero-initialised is empty; set fold before the first add.  Owns its memory. */
struct hashset_str {
	struct hashset_slot *slots;
	size_t mask; /* capacity - 1; capacity is 0 or a power of two */
	size_t count;
	char *arena;
	size_t used, cap;
	bool fold; /* stored entries are lower case; compare values folded */
};

/* Makes room for count entries of bytes bytes in all (NULs included) in one go. */
void hashset_str_reserve(struct hashset_str *s, size_t count, size_t bytes);
/* Whether (p, n) is in s; hash is hashset_str_hash(p, n, s->fold). */
bool hashset_str_has(const struct hashset_str *s, const char *p, size_t n, uint32_t hash);
/* Returns 1 if added (folded if s->fold), 0 if already there, -1 if the arena would pass
   4 GiB. */
int hashset_str_add(struct hashset_str *s, const char *p, size_t n);
void hashset_str_clear(struct hashset_str *s); /* frees what s holds; s is then unusable */

/* ---- fixed-size keys ---- */

struct hashset_key128 {
	uint64_t hi, lo;
};

struct hashset_32;
struct hashset_128;

/* new() returns an empty set, which hashset_*_free() releases (NULL is a no-op); add()
   returns true if the key was not there yet. */
struct hashset_32 *hashset_32_new(void);
bool hashset_32_add(struct hashset_32 *s, uint32_t k);
bool hashset_32_has(const struct hashset_32 *s, uint32_t k);
void hashset_32_free(struct hashset_32 *s);

struct hashset_128 *hashset_128_new(void);
bool hashset_128_add(struct hashset_128 *s, struct hashset_key128 k);
bool hashset_128_has(const struct hashset_128 *s, struct hashset_key128 k);
void hashset_128_free(struct hashset_128 *s);

/* ---- names to numbers ---- */

/* A map from names (not copied: they must outlive the map) to numbers, such as the index of
   a list in an array.  Zero-initialised is empty. */
struct hashset_names {
	struct hashset_name *slots;
	size_t mask, count;
};

/* Adds name -> value; false (and no change) if name is there already. */
bool hashset_names_put(struct hashset_names *m, const char *name, size_t value);
/* Whether name is there; its value in *value if so. */
bool hashset_names_get(const struct hashset_names *m, const char *name, size_t *value);
void hashset_names_clear(struct hashset_names *m); /* frees what m holds; m is then empty */

#endif
