/*
 * file.c - reading a whole text file in one go.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diag.h"
#include "file.h"
#include "mem.h"

/* Opens path for reading if it is a regular file of at most FILE_MAX_SIZE bytes; its size in
 *size.  O_NONBLOCK: opening a FIFO must not wait for a writer. */
static int file_open(const char *path, size_t *size, struct diag *d)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st;

	if (fd < 0 || fstat(fd, &st) != 0) {
		diag_add(d, path, 0, "cannot read: %s", strerror(errno));
		goto fail;
	}
	if (S_ISDIR(st.st_mode)) {
		diag_add(d, path, 0, "cannot read: %s", strerror(EISDIR));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		diag_add(d, path, 0, "cannot read: not a regular file");
		goto fail;
	}
	if ((unsigned long long)st.st_size > FILE_MAX_SIZE) {
		diag_add(d, path, 0, "cannot read: larger than %zu MiB", FILE_MAX_SIZE >> 20);
		goto fail;
	}
	*size = (size_t)st.st_size;
	return fd;
fail:
	if (fd >= 0)
		close(fd);
	return -1;
}

/* Reads to end of file, at most FILE_MAX_SIZE bytes (a file may grow while it is read). */
static char *file_slurp(int fd, size_t cap, size_t *lenp, const char *path, struct diag *d)
{
	char *buf = mem_alloc(cap);
	size_t len = 0;

	for (;;) {
		ssize_t r;

		if (len + 1 >= cap) {
			if (cap > FILE_MAX_SIZE) {
				diag_add(d, path, 0, "cannot read: larger than %zu MiB",
				         FILE_MAX_SIZE >> 20);
				break;
			}
			buf = mem_realloc(buf, cap *= 2);
		}
		r = read(fd, buf + len, cap - len - 1);
		if (r == 0) {
			buf[len] = '\0';
			*lenp = len;
			return buf;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			diag_add(d, path, 0, "cannot read: %s", strerror(errno));
			break;
		}
		len += (size_t)r;
	}
	free(buf);
	return NULL;
}

/* A NUL byte: not a text file (and the parsers would stop there). */
static int file_check_text(const char *buf, size_t len, const char *path, struct diag *d)
{
	const char *nul = memchr(buf, '\0', len);
	int line = 1;

	if (nul == NULL)
		return 0;
	for (const char *p = buf; (p = memchr(p, '\n', (size_t)(nul - p))) != NULL; p++)
		line++;
	diag_add(d, path, line, "contains a NUL byte: not a text file");
	return -1;
}

int file_read(const char *path, char **bufp, size_t *lenp, struct diag *d)
{
	size_t size, len;
	char *buf;
	int fd = file_open(path, &size, d);

	if (fd < 0)
		return -1;
	buf = file_slurp(fd, size + 1, &len, path, d); /* one read, and room for the NUL */
	close(fd);
	if (buf == NULL)
		return -1;
	if (file_check_text(buf, len, path, d) != 0) {
		free(buf);
		return -1;
	}
	*bufp = buf;
	*lenp = len;
	return 0;
}
