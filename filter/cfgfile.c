/*
 * cfgfile.c - reading configuration files for libconfuse (see cfgfile.h for why).
 */
#include <assert.h>
#include <ctype.h>
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
 * right), "${" inside double-quoted strings becomes "\${", since libconfuse would otherwise
 * replace ${name} with an environment variable and rule templates would lose their fields,
 * and a backslash inside single quotes is doubled unless it escapes a quote, so that the
 * string keeps it as typed.
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
		case SQUOTE:
			/* Ours: only \' is special, every other backslash stays as typed.
			   libconfuse's: \\ is one backslash too, which would turn /\\d/ into /\d/;
			   so every other backslash goes to it doubled. */
			if (ch == '\\' && p[1] == '\'')
				*o++ = *p++, ch = *p;
			else if (ch == '\\')
				*o++ = '\\';
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

static void report(cfg_t *cfg, const char *fmt, va_list ap)
{
	char msg[512];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	diag_add(cur_diag, cur_path, cfg != NULL ? cfg->line : 0, "%s", msg);
}

char *cfgfile_read(const char *path, struct diag *d)
{
	char *raw, *text;
	size_t len;

	if (file_read(path, &raw, &len, d) != 0)
		return NULL;
	text = cfgfile_prepare(raw);
	free(raw);
	if (text == NULL)
		diag_add(d, path, 0, "cannot read: out of memory");
	return text;
}

int cfgfile_parse_text(cfg_t *cfg, const char *path, const char *text, struct diag *d)
{
	int rc;

	pthread_mutex_lock(&cfgfile_lock);
	cur_diag = d;
	cur_path = path;
	cfg_set_error_function(cfg, report);
	rc = cfg_parse_buf(cfg, text);
	cur_diag = NULL;
	cur_path = NULL;
	pthread_mutex_unlock(&cfgfile_lock);
	return rc == CFG_SUCCESS ? 0 : -1;
}

int cfgfile_parse(cfg_t *cfg, const char *path, struct diag *d)
{
	char *text = cfgfile_read(path, d);
	int rc;

	if (text == NULL)
		return -1;
	rc = cfgfile_parse_text(cfg, path, text, d);
	free(text);
	return rc;
}

struct diag *cfgfile_diag(void)
{
	return cur_diag;
}

const char *cfgfile_path(void)
{
	return cur_path;
}

/* A walk over prepared text that stops at each top-level `word "title"` section. */
struct section_scan {
	const char *text, *p;
	int line, depth;
	char quote;
};

/* The next top-level section: its first character (the word), with its line in s->line and
   the length of the word in *wordlen; NULL at the end of the text. */
static const char *scan_next_section(struct section_scan *s, size_t *wordlen)
{
	for (; *s->p != '\0'; s->p++) {
		const char *p = s->p, *q = p;

		if (*p == '\n')
			s->line++;
		if (s->quote != 0) {
			if (*p == '\\' && p[1] != '\0' && (s->quote == '"' || p[1] == '\''))
				s->p++;
			else if (*p == s->quote)
				s->quote = 0;
			continue;
		}
		if (*p == '"' || *p == '\'') {
			s->quote = *p;
			continue;
		}
		if (*p == '{' || *p == '}') {
			s->depth += *p == '{' ? 1 : -1;
			continue;
		}
		if (s->depth != 0 || !(isalpha((unsigned char)*p) || *p == '_') ||
		    (p != s->text && strchr(" \t\n}", p[-1]) == NULL))
			continue;
		while (isalnum((unsigned char)*q) || *q == '_' || *q == '-')
			q++;
		*wordlen = (size_t)(q - p);
		while (*q == ' ' || *q == '\t')
			q++;
		s->p = q; /* past the word: it is not looked at twice */
		if (*q == '"')
			return p;
		s->p--;
	}
	return NULL;
}

int *cfgfile_section_lines(const char *text, const char *kind, size_t *n)
{
	struct section_scan s = {text, text, 1, 0, 0};
	size_t klen = strlen(kind), wlen, cap = 0;
	const char *w;
	int *lines = NULL;

	*n = 0;
	while ((w = scan_next_section(&s, &wlen)) != NULL) {
		if (wlen == klen && strncmp(w, kind, klen) == 0) {
			mem_grow((void **)&lines, *n, &cap, sizeof(*lines));
			lines[(*n)++] = s.line;
		}
	}
	return lines;
}

/* text[from, to) preceded by line breaks for the lines before it: libconfuse counts lines from
   1 in every buffer it is given. */
static char *part_copy(const char *text, size_t from, size_t to, int line)
{
	char *out = mem_alloc((size_t)(line - 1) + (to - from) + 1);

	memset(out, '\n', (size_t)(line - 1));
	memcpy(out + line - 1, text + from, to - from);
	out[(size_t)(line - 1) + (to - from)] = '\0';
	return out;
}

char **cfgfile_split(const char *text, size_t max_sections, size_t *nparts)
{
	struct section_scan s = {text, text, 1, 0, 0};
	size_t from = 0, count = 0, cap = 0, wlen;
	int from_line = 1;
	const char *w;
	char **parts = NULL;

	assert(max_sections > 0);
	*nparts = 0;
	while ((w = scan_next_section(&s, &wlen)) != NULL) {
		if (count++ < max_sections)
			continue;
		mem_grow((void **)&parts, *nparts, &cap, sizeof(*parts));
		parts[(*nparts)++] = part_copy(text, from, (size_t)(w - text), from_line);
		from = (size_t)(w - text);
		from_line = s.line;
		count = 1;
	}
	mem_grow((void **)&parts, *nparts, &cap, sizeof(*parts));
	parts[(*nparts)++] = part_copy(text, from, strlen(text), from_line);
	return parts;
}
