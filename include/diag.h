/*
 * diag.h - configuration errors, collected as "file:line: message" lines.
 *
 * Loading a configuration never stops at the first error: every error found is added here,
 * and the caller decides (refuse to start, or keep the running policy).
 */
#ifndef MP_DIAG_H
#define MP_DIAG_H

#include <stddef.h>

struct diag;

struct diag *diag_new(void);
void diag_free(struct diag *d); /* diag_free(NULL) is a no-op */

/* Adds "file:line: message".  line <= 0 gives "file: message"; file NULL gives "message".
   Control characters and bytes that are not valid UTF-8 are stored as '?'. */
void diag_add(struct diag *d, const char *file, int line, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

size_t diag_count(const struct diag *d);
/* The i-th line, owned by d. */
const char *diag_line(const struct diag *d, size_t i);

#endif
