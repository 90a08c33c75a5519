/*
 * hashset.c - the hash sets that list indexes are made of (see hashset.h).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "hashset.h"
#include "mem.h"

#define HASHSET_HUGE_PAGE (2 * 1024 * 1024)

/* A hash table of size bytes, every byte set to fill.  Big tables get transparent huge pages:
   each lookup in a big list is a random access, and TLB misses would double its cost. */
static void *hashset_table_alloc(size_t size, int fill)
{
	void *p;

	if (size < HASHSET_HUGE_PAGE) {
		p = mem_alloc(size);
	} else {
		size = (size + HASHSET_HUGE_PAGE - 1) & ~(size_t)(HASHSET_HUGE_PAGE - 1);
		if ((p = aligned_alloc(HASHSET_HUGE_PAGE, size)) == NULL)
			abort();
#ifdef MADV_HUGEPAGE
		(void)madvise(p, size, MADV_HUGEPAGE); /* only advice: fine if refused */
#endif
	}
	return memset(p, fill, size);
}

/* ---- string set ---- */

static bool hashset_over_load(size_t count, size_t cap)
{
	return count * 10 >= cap * 7;
}

static size_t hashset_capacity_for(size_t count)
{
	size_t cap = 8;

	while (hashset_over_load(count, cap))
		cap *= 2;
	return cap;
}

static void hashset_str_resize(struct hashset_str *s, size_t cap)
{
	struct hashset_slot *slots = hashset_table_alloc(cap * sizeof(*slots), 0);

	for (size_t i = 0; s->count > 0 && i <= s->mask; i++) {
		size_t j;

		if (s->slots[i].off == 0)
			continue;
		for (j = s->slots[i].hash & (cap - 1); slots[j].off != 0; j = (j + 1) & (cap - 1))
			;
		slots[j] = s->slots[i];
	}
	free(s->slots);
	s->slots = slots;
	s->mask = cap - 1;
}

void hashset_str_reserve(struct hashset_str *s, size_t count, size_t bytes)
{
	size_t cap = hashset_capacity_for(count);

	if (s->slots == NULL || cap > s->mask + 1)
		hashset_str_resize(s, cap);
	if (bytes > s->cap - s->used) {
		s->cap = s->used + bytes;
		s->arena = mem_realloc(s->arena, s->cap);
	}
}

static bool hashset_str_eq(const char *stored, const char *p, size_t n, bool fold)
{
	if (!fold)
		return memcmp(stored, p, n) == 0 && stored[n] == '\0';
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)stored[i] != hashset_lower((unsigned char)p[i]))
			return false;
	return stored[n] == '\0';
}

/* The slot holding (p, n), or the empty slot where it would go. */
static struct hashset_slot *hashset_str_probe(const struct hashset_str *s, const char *p, size_t n,
                                              uint32_t hash)
{
	size_t i = hash & s->mask;

	for (;; i = (i + 1) & s->mask) {
		struct hashset_slot *sl = &s->slots[i];

		if (sl->off == 0)
			return sl;
		if (sl->hash == hash && hashset_str_eq(s->arena + sl->off - 1, p, n, s->fold))
			return sl;
	}
}

bool hashset_str_has(const struct hashset_str *s, const char *p, size_t n, uint32_t hash)
{
	if (s->count == 0)
		return false;
	return hashset_str_probe(s, p, n, hash)->off != 0;
}

/* Returns 1 if added, 0 if already there, -1 if the arena would pass 4 GiB. */
int hashset_str_add(struct hashset_str *s, const char *p, size_t n)
{
	uint32_t hash = hashset_str_hash(p, n, s->fold);
	struct hashset_slot *sl;
	char *dst;

	if (s->slots == NULL || hashset_over_load(s->count + 1, s->mask + 1))
		hashset_str_resize(s, s->slots == NULL ? 8 : (s->mask + 1) * 2);
	sl = hashset_str_probe(s, p, n, hash);
	if (sl->off != 0)
		return 0;
	if (n >= UINT32_MAX - 1 - s->used)
		return -1;
	if (n + 1 > s->cap - s->used) {
		s->cap = (s->cap + n + 1) * 2;
		s->arena = mem_realloc(s->arena, s->cap);
	}
	dst = s->arena + s->used;
	for (size_t i = 0; i < n; i++)
		dst[i] = s->fold ? (char)hashset_lower((unsigned char)p[i]) : p[i];
	dst[n] = '\0';
	sl->off = (uint32_t)s->used + 1;
	sl->hash = hash;
	s->used += n + 1;
	s->count++;
	return 1;
}

void hashset_str_clear(struct hashset_str *s)
{
	free(s->slots);
	free(s->arena);
}

/* ---- sets of fixed-size keys, for CIDRs ---- */

/* All-ones keys mark empty slots; the all-ones key itself is kept in a flag. */
struct hashset_32 {
	uint32_t *keys;
	size_t mask, count;
	bool has_ones;
};

struct hashset_128 {
	struct hashset_key128 *keys;
	size_t mask, count;
	bool has_ones;
};

static size_t hashset_hash32(uint32_t k)
{
	return (size_t)hashset_fmix(k);
}

static size_t hashset_hash128(struct hashset_key128 k)
{
	return (size_t)hashset_fmix(k.hi ^ hashset_fmix(k.lo));
}

static bool hashset_is_ones128(struct hashset_key128 k)
{
	return k.hi == UINT64_MAX && k.lo == UINT64_MAX;
}

bool hashset_32_has(const struct hashset_32 *s, uint32_t k)
{
	if (k == UINT32_MAX)
		return s->has_ones;
	for (size_t i = hashset_hash32(k) & s->mask; s->keys[i] != UINT32_MAX;
	     i = (i + 1) & s->mask)
		if (s->keys[i] == k)
			return true;
	return false;
}

static void hashset_32_put(uint32_t *keys, size_t mask, uint32_t k)
{
	size_t i;

	for (i = hashset_hash32(k) & mask; keys[i] != UINT32_MAX; i = (i + 1) & mask)
		;
	keys[i] = k;
}

static void hashset_32_grow(struct hashset_32 *s)
{
	size_t cap = (s->mask + 1) * 2;
	uint32_t *keys = hashset_table_alloc(cap * sizeof(*keys), 0xff);

	for (size_t i = 0; i <= s->mask; i++)
		if (s->keys[i] != UINT32_MAX)
			hashset_32_put(keys, cap - 1, s->keys[i]);
	free(s->keys);
	s->keys = keys;
	s->mask = cap - 1;
}

struct hashset_32 *hashset_32_new(void)
{
	struct hashset_32 *s = mem_calloc(1, sizeof(*s));

	s->mask = 7;
	s->keys = hashset_table_alloc(8 * sizeof(*s->keys), 0xff);
	return s;
}

/* Returns true if k was not there yet. */
bool hashset_32_add(struct hashset_32 *s, uint32_t k)
{
	if (hashset_32_has(s, k))
		return false;
	if (k == UINT32_MAX) {
		s->has_ones = true;
		return true;
	}
	if (hashset_over_load(s->count + 1, s->mask + 1))
		hashset_32_grow(s);
	hashset_32_put(s->keys, s->mask, k);
	s->count++;
	return true;
}

void hashset_32_free(struct hashset_32 *s)
{
	if (s == NULL)
		return;
	free(s->keys);
	free(s);
}

bool hashset_128_has(const struct hashset_128 *s, struct hashset_key128 k)
{
	if (hashset_is_ones128(k))
		return s->has_ones;
	for (size_t i = hashset_hash128(k) & s->mask; !hashset_is_ones128(s->keys[i]);
	     i = (i + 1) & s->mask)
		if (s->keys[i].hi == k.hi && s->keys[i].lo == k.lo)
			return true;
	return false;
}

static void hashset_128_put(struct hashset_key128 *keys, size_t mask, struct hashset_key128 k)
{
	size_t i;

	for (i = hashset_hash128(k) & mask; !hashset_is_ones128(keys[i]); i = (i + 1) & mask)
		;
	keys[i] = k;
}

static void hashset_128_grow(struct hashset_128 *s)
{
	size_t cap = (s->mask + 1) * 2;
	struct hashset_key128 *keys = hashset_table_alloc(cap * sizeof(*keys), 0xff);

	for (size_t i = 0; i <= s->mask; i++)
		if (!hashset_is_ones128(s->keys[i]))
			hashset_128_put(keys, cap - 1, s->keys[i]);
	free(s->keys);
	s->keys = keys;
	s->mask = cap - 1;
}

struct hashset_128 *hashset_128_new(void)
{
	struct hashset_128 *s = mem_calloc(1, sizeof(*s));

	s->mask = 7;
	s->keys = hashset_table_alloc(8 * sizeof(*s->keys), 0xff);
	return s;
}

bool hashset_128_add(struct hashset_128 *s, struct hashset_key128 k)
{
	if (hashset_128_has(s, k))
		return false;
	if (hashset_is_ones128(k)) {
		s->has_ones = true;
		return true;
	}
	if (hashset_over_load(s->count + 1, s->mask + 1))
		hashset_128_grow(s);
	hashset_128_put(s->keys, s->mask, k);
	s->count++;
	return true;
}

void hashset_128_free(struct hashset_128 *s)
{
	if (s == NULL)
		return;
	free(s->keys);
	free(s);
}

/* ---- names to numbers ---- */

struct hashset_name {
	const char *name; /* NULL: an empty slot */
	size_t value;
};

static struct hashset_name *hashset_names_probe(struct hashset_name *slots, size_t mask,
                                                const char *name)
{
	size_t i = hashset_str_hash(name, strlen(name), false) & mask;

	while (slots[i].name != NULL && strcmp(slots[i].name, name) != 0)
		i = (i + 1) & mask;
	return &slots[i];
}

static void hashset_names_grow(struct hashset_names *m)
{
	size_t cap = m->slots == NULL ? 8 : (m->mask + 1) * 2;
	struct hashset_name *slots = mem_calloc(cap, sizeof(*slots));

	for (size_t i = 0; m->slots != NULL && i <= m->mask; i++)
		if (m->slots[i].name != NULL)
			*hashset_names_probe(slots, cap - 1, m->slots[i].name) = m->slots[i];
	free(m->slots);
	m->slots = slots;
	m->mask = cap - 1;
}

bool hashset_names_put(struct hashset_names *m, const char *name, size_t value)
{
	struct hashset_name *sl;

	if (m->slots == NULL || hashset_over_load(m->count + 1, m->mask + 1))
		hashset_names_grow(m);
	sl = hashset_names_probe(m->slots, m->mask, name);
	if (sl->name != NULL)
		return false;
	*sl = (struct hashset_name){name, value};
	m->count++;
	return true;
}

bool hashset_names_get(const struct hashset_names *m, const char *name, size_t *value)
{
	const struct hashset_name *sl;

	if (m->count == 0)
		return false;
	sl = hashset_names_probe(m->slots, m->mask, name);
	if (sl->name == NULL)
		return false;
	*value = sl->value;
	return true;
}

void hashset_names_clear(struct hashset_names *m)
{
	free(m->slots);
	*m = (struct hashset_names){0};
}
