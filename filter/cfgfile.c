/*
 * cfgfile.c - reading configuration files for libconfuse (see cfgfile.h for why).
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfgfile.h"
#include "diag.h"
#include "file.h"
#include "mem.h"

static pthread_mutex_t cfgfile_lock = PTHREAD_MUTEX_INITIALIZER;
static struct diag *cur_diag; /* guarded by cfgfile_lock */
static const char *cur_path;  /* guarded by cfgfile_lock */

/*
 * Copies text for libconfuse: comments become spaces (line breaks kept, so line numbers stay
 * right), and "${" inside double-quoted strings becomes "\${", since libconfuse would otherwise
 * replace ${name} with an environment variable and rule templates would lose their fields.
 */
char *cfgfile_prepare(const char *text)
{
	enum { PLAIN, DQUOTE, SQUOTE, LINE, BLOCK } st = PLAIN;
	char *out = malloc(2 * strlen(text) + 1), *o = out;

	if (out == NULL)
		return NULL;
	for (const char *p = text; *p != '\0'; p++) {
		char ch = *p;

		switch (st) {
		case PLAIN:
			if (ch == '"')
				st = DQUOTE;
			else if (ch == '\'')
				st = SQUOTE;
			else if (ch == '#' || (ch == '/' && p[1] == '/'))
				st = LINE, ch = ' ';
			else if (ch == '/' && p[1] == '*')
				st = BLOCK, ch = ' ', *o++ = ' ', p++;
			break;
		case DQUOTE:
			if (ch == '\\' && p[1] != '\0')
				*o++ = *p++, ch = *p;
			else if (ch == '$' && p[1] == '{')
				*o++ = '\\';
			else if (ch == '"')
				st = PLAIN;
			break;
		case SQUOTE: /* only \' is special in libconfuse's single quotes */
			if (ch == '\\' && p[1] == '\'')
				*o++ = *p++, ch = *p;
			else if (ch == '\'')
				st = PLAIN;
			break;
		case LINE:
			if (ch == '\n')
				st = PLAIN;
			else
				ch = ' ';
			break;
		case BLOCK:
			if (ch == '*' && p[1] == '/')
				st = PLAIN, *o++ = ' ', p++;
			if (ch != '\n')
				ch = ' ';
			break;
		}
		*o++ = ch;
	}
	*o = '\0';
	return out;
}

/* The file as text: a NUL byte means it is not a rule file (and libconfuse would stop there). */
static char *read_text(const char *path, struct diag *d)
{
	char *buf;
	size_t len;

	if (file_read(path, &buf, &len, d) != 0)
		return NULL;
	if (strlen(buf) != len) {
		diag_add(d, path, 0, "contains a NUL byte: not a text file");
		free(buf);
		return NULL;
	}
	return buf;
}

static void report(cfg_t *cfg, const char *fmt, va_list ap)
{
	char msg[512];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	diag_add(cur_diag, cur_path, cfg != NULL ? cfg->line : 0, "%s", msg);
}

int cfgfile_parse(cfg_t *cfg, const char *path, struct diag *d, char **textp)
{
	char *raw = read_text(path, d), *text;
	int rc;

	if (textp != NULL)
		*textp = NULL;
	if (raw == NULL)
		return -1;
	text = cfgfile_prepare(raw);
	free(raw);
	if (text == NULL) {
		diag_add(d, path, 0, "cannot read: out of memory");
		return -1;
	}
	pthread_mutex_lock(&cfgfile_lock);
	cur_diag = d;
	cur_path = path;
	cfg_set_error_function(cfg, report);
	rc = cfg_parse_buf(cfg, text);
	cur_diag = NULL;
	cur_path = NULL;
	pthread_mutex_unlock(&cfgfile_lock);
	if (textp != NULL)
		*textp = text;
	else
		free(text);
	return rc == CFG_SUCCESS ? 0 : -1;
}

struct diag *cfgfile_diag(void)
{
	return cur_diag;
}

const char *cfgfile_path(void)
{
	return cur_path;
}

int *cfgfile_section_lines(const char *text, const char *kind, size_t *n)
{
	size_t klen = strlen(kind), cap = 0;
	int *lines = NULL, line = 1, depth = 0;
	char quote = 0;

	*n = 0;
	for (const char *p = text; *p != '\0'; p++) {
		if (*p == '\n')
			line++;
		if (quote != 0) {
			if (*p == '\\' && p[1] != '\0' && (quote == '"' || p[1] == '\''))
				p++;
			else if (*p == quote)
				quote = 0;
		} else if (*p == '"' || *p == '\'') {
			quote = *p;
		} else if (*p == '{' || *p == '}') {
			depth += *p == '{' ? 1 : -1;
		} else if (depth == 0 && strncmp(p, kind, klen) == 0 &&
		           (p == text || strchr(" \t\n}", p[-1]) != NULL)) {
			const char *q = p + klen;
			while (*q == ' ' || *q == '\t')
				q++;
			if (*q == '"') {
				mem_grow((void **)&lines, *n, &cap, sizeof(*lines));
				lines[(*n)++] = line;
			}
		}
	}
	return lines;
}
