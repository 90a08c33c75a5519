/*
 * testfile.h - writing the files a unit test loads (rule files, lists, configurations).
 */
#ifndef MP_TESTFILE_H
#define MP_TESTFILE_H

#include <stddef.h>

/* Writes len bytes of text to dir/name, replacing it; fails the test on any error.  Returns
   the path in a static buffer, valid until the next call. */
const char *testfile_write(const char *dir, const char *name, const char *text, size_t len);

#endif
