/*
 * mem.h - memory allocation that never returns NULL.
 *
 * Running out of memory is treated as fatal, as Postfix's mymalloc() does: the error is
 * logged and the process aborts.  Mail is not lost by that: the MTA applies its
 * milter_default_action (tempfail by default) while the service manager restarts the filter.
 * Every other error path stays free of "what if malloc failed" branches.
 */
#ifndef MP_MEM_H
#define MP_MEM_H

#include <stddef.h>

void *mem_alloc(size_t n);               /* malloc; n == 0 allowed */
void *mem_calloc(size_t n, size_t size); /* zeroed */
void *mem_realloc(void *p, size_t n);
char *mem_strdup(const char *s);
char *mem_strndup(const char *s, size_t n); /* at most n bytes, always NUL-terminated */

/* Grows *v (an array of size-byte elements holding n) so that one more fits, doubling *cap. */
void mem_grow(void **v, size_t n, size_t *cap, size_t size);

#endif
