/*
 * file.h - reading a whole text file (rule files, list files) in one go.
 */
#ifndef MP_FILE_H
#define MP_FILE_H

#include <stddef.h>

struct diag;

/* The largest file read: far above a 10-million-entry list, far below what would starve the
   running daemon of memory while a reload reads it. */
#define FILE_MAX_SIZE ((size_t)1 << 30)

/* Reads path into *buf (NUL-terminated; caller frees) and its length into *len.  Returns 0, or
   -1 with "path[:line]: <reason>" in d: missing, unreadable, not a regular file (a directory,
   a FIFO or a device would hang or exhaust a reload), larger than FILE_MAX_SIZE, or holding a
   NUL byte (not a text file). */
int file_read(const char *path, char **buf, size_t *len, struct diag *d);

#endif
