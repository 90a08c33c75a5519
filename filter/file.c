/*
 * file.c - reading a whole file in one go.
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

int file_read(const char *path, char **bufp, size_t *lenp, struct diag *d)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t cap = 65536, len = 0;
	struct stat st;
	char *buf;

	if (fd < 0 || fstat(fd, &st) != 0) {
		diag_add(d, path, 0, "cannot read: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (S_ISDIR(st.st_mode)) {
		diag_add(d, path, 0, "cannot read: %s", strerror(EISDIR));
		close(fd);
		return -1;
	}
	if (S_ISREG(st.st_mode))
		cap = (size_t)st.st_size + 1; /* one read, and room for the NUL */
	buf = mem_alloc(cap);
	for (;;) {
		ssize_t r;

		if (len + 1 >= cap)
			buf = mem_realloc(buf, cap *= 2);
		r = read(fd, buf + len, cap - len - 1);
		if (r == 0)
			break;
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			diag_add(d, path, 0, "cannot read: %s", strerror(errno));
			free(buf);
			close(fd);
			return -1;
		}
		len += (size_t)r;
	}
	close(fd);
	buf[len] = '\0';
	*bufp = buf;
	*lenp = len;
	return 0;
}
