/*
 * diag.c - a growable list of "file:line: message" lines.
 */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "diag.h"

struct diag {
	char **lines;
	size_t count;
	size_t size;
	/* Errors that could not be stored for lack of memory still count: a configuration
	   with an error must never look valid. */
	size_t lost;
};

static const char lost_line[] = "out of memory: error message lost";

struct diag *diag_new(void)
{
	return calloc(1, sizeof(struct diag));
}

void diag_free(struct diag *d)
{
	if (d == NULL)
		return;
	for (size_t i = 0; i < d->count; i++)
		free(d->lines[i]);
	free(d->lines);
	free(d);
}

static char *diag_vformat(const char *fmt, va_list ap)
{
	va_list aq;
	char *s;
	int n;

	va_copy(aq, ap);
	n = vsnprintf(NULL, 0, fmt, aq);
	va_end(aq);
	if (n < 0)
		return NULL;
	if ((s = malloc((size_t)n + 1)) == NULL)
		return NULL;
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	return s;
}

static char *diag_format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *diag_format(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = diag_vformat(fmt, ap);
	va_end(ap);
	return s;
}

static char *diag_prefix(const char *file, int line, const char *msg)
{
	if (file == NULL)
		return diag_format("%s", msg);
	if (line <= 0)
		return diag_format("%s: %s", file, msg);
	return diag_format("%s:%d: %s", file, line, msg);
}

static int diag_grow(struct diag *d)
{
	size_t size;
	char **lines;

	if (d->count < d->size)
		return 0;
	size = d->size ? d->size * 2 : 8;
	if ((lines = reallocarray(d->lines, size, sizeof(*lines))) == NULL)
		return -1;
	d->lines = lines;
	d->size = size;
	return 0;
}

/* The length of the valid UTF-8 sequence at s (1 to 4), or 0 if the bytes there are not one
   (a stray continuation byte, an overlong form, a surrogate, beyond U+10FFFF, cut short). */
static size_t diag_utf8_len(const unsigned char *s)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

/* Messages quote what was in a file, and a file may be binary: every control character and
   every byte that is not valid UTF-8 becomes '?', so that no log or terminal gets raw bytes. */
static void diag_printable(char *s)
{
	unsigned char *p = (unsigned char *)s;

	while (*p != '\0') {
		size_t n = diag_utf8_len(p);

		if (n == 0 || (n == 1 && (*p < 0x20 || *p == 0x7f))) {
			*p++ = '?';
			continue;
		}
		p += n;
	}
}

void diag_add(struct diag *d, const char *file, int line, const char *fmt, ...)
{
	char *msg, *full = NULL;
	va_list ap;

	assert(d != NULL && fmt != NULL);
	va_start(ap, fmt);
	msg = diag_vformat(fmt, ap);
	va_end(ap);
	if (msg != NULL)
		full = diag_prefix(file, line, msg);
	free(msg);
	if (full == NULL || diag_grow(d) == -1) {
		free(full);
		d->lost++;
		return;
	}
	diag_printable(full);
	d->lines[d->count++] = full;
}

size_t diag_count(const struct diag *d)
{
	assert(d != NULL);
	return d->count + d->lost;
}

const char *diag_line(const struct diag *d, size_t i)
{
	assert(d != NULL && i < d->count + d->lost);
	if (i >= d->count)
		return lost_line;
	return d->lines[i];
}
