/*
 * file.h - reading a whole file (rule files, list files) in one go.
 */
#ifndef MP_FILE_H
#define MP_FILE_H

#include <stddef.h>

struct diag;

/* Reads path into *buf (NUL-terminated; caller frees) and its length into *len.  Returns 0, or
   -1 with "path: cannot read: <reason>" in d (a directory, a missing file, an I/O error). */
int file_read(const char *path, char **buf, size_t *len, struct diag *d);

#endif
