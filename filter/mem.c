/*
 * mem.c - allocation that never returns NULL (see mem.h for why).
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mem.h"

static void *checked(void *p, size_t n)
{
	if (p == NULL) {
		log_msg(LOG_ERR, "out of memory allocating %zu bytes: exiting", n);
		abort();
	}
	return p;
}

void *mem_alloc(size_t n)
{
	return checked(malloc(n ? n : 1), n);
}

void *mem_calloc(size_t n, size_t size)
{
	return checked(calloc(n ? n : 1, size ? size : 1), n * size);
}

void *mem_realloc(void *p, size_t n)
{
	return checked(realloc(p, n ? n : 1), n);
}

char *mem_strdup(const char *s)
{
	return mem_strndup(s, strlen(s));
}

char *mem_strndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = mem_alloc(len + 1);

	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

void mem_grow(void **v, size_t n, size_t *cap, size_t size)
{
	if (n < *cap)
		return;
	*cap = *cap * 2 + 16;
	*v = mem_realloc(*v, *cap * size);
}
