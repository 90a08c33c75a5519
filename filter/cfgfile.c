/*
 * cfgfile.c - reading configuration files for libconfuse (see cfgfile.h for why).
 */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
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

/* ---- options set twice ---- */

/* A token of prepared text: a word, a quoted string, or one of "{}=,(" and "+=". */
struct token {
	const char *p;
	size_t len;
	int line;
};

struct tokenizer {
	const char *p;
	int line;
};

static bool next_token(struct tokenizer *tz, struct token *t)
{
	const char *p = tz->p;

	for (; *p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'; p++)
		tz->line += *p == '\n';
	if (*p == '\0')
		return false;
	t->p = p;
	t->line = tz->line;
	if (*p == '"' || *p == '\'') {
		char q = *p++;
		for (; *p != '\0' && *p != q; p++) {
			tz->line += *p == '\n';
			if (*p == '\\' && p[1] != '\0' && (q == '"' || p[1] == '\'')) {
				p++;
				tz->line += *p == '\n'; /* a line continuation is a line too */
			}
		}
		p += *p == q;
	} else if (*p == '+' && p[1] == '=') {
		p += 2;
	} else if (isalnum((unsigned char)*p) || *p == '_' || *p == '-' || *p == '.') {
		while (isalnum((unsigned char)*p) || *p == '_' || *p == '-' || *p == '.' ||
		       *p == '/' || *p == ':')
			p++;
	} else {
		p++;
	}
	t->len = (size_t)(p - t->p);
	tz->p = p;
	return true;
}

static bool token_is(const struct token *t, const char *s)
{
	return t->len == strlen(s) && strncmp(t->p, s, t->len) == 0;
}

/* The options set with '=' in one block (the file, or a section), for finding a second. */
struct block {
	struct token kind, title; /* kind.len == 0 for the file; title without its quotes */
	struct token *set;
	size_t nset, cap;
};

static void block_note(struct block *b, const struct token *name, const char *path, struct diag *d,
                       int *dups)
{
	for (size_t i = 0; i < b->nset; i++) {
		if (b->set[i].len != name->len || strncmp(b->set[i].p, name->p, name->len) != 0)
			continue;
		if (b->kind.len == 0)
			diag_add(d, path, name->line,
			         "option '%.*s' is set twice (first at line %d)", (int)name->len,
			         name->p, b->set[i].line);
		else
			diag_add(d, path, name->line,
			         "%.*s '%.*s': option '%.*s' is set twice (first at line %d)",
			         (int)b->kind.len, b->kind.p, (int)b->title.len, b->title.p,
			         (int)name->len, name->p, b->set[i].line);
		(*dups)++;
		return;
	}
	mem_grow((void **)&b->set, b->nset, &b->cap, sizeof(*b->set));
	b->set[b->nset++] = *name;
}

/* libconfuse keeps the last of two "name = value" in one block, lists included, without a
   word; an administrator who wrote both meant something else.  ("name += value" appends and
   is fine.)  Blocks are the file and its sections ("kind ["title"] {"); a '{' after '=' opens
   a list value, not a block.  Syntax errors are left to libconfuse. */
static int check_set_twice(const char *text, const char *path, struct diag *d)
{
	struct tokenizer tz = {text, 1};
	struct block *stack = mem_calloc(1, sizeof(*stack));
	size_t depth = 0, cap = 1;
	struct token t, prev = {0}, prev2 = {0};
	int dups = 0, list_depth = 0;

	while (next_token(&tz, &t)) {
		if (list_depth > 0) {
			list_depth += token_is(&t, "{") - token_is(&t, "}");
		} else if (token_is(&t, "{") && (token_is(&prev, "=") || token_is(&prev, "+="))) {
			list_depth = 1;
		} else if (token_is(&t, "{")) {
			mem_grow((void **)&stack, depth + 1, &cap, sizeof(*stack));
			stack[++depth] = (struct block){0};
			if (prev.len >= 2 && (*prev.p == '"' || *prev.p == '\'')) {
				stack[depth].kind = prev2;
				stack[depth].title =
				        (struct token){prev.p + 1, prev.len - 2, prev.line};
			} else {
				stack[depth].kind = prev; /* a section without a title */
			}
		} else if (token_is(&t, "}") && depth > 0) {
			free(stack[depth--].set);
		} else if (token_is(&t, "=") && prev.len > 0 && !token_is(&prev2, "=") &&
		           !token_is(&prev2, "+=") &&
		           (isalpha((unsigned char)*prev.p) || *prev.p == '_')) {
			block_note(&stack[depth], &prev, path, d, &dups);
		}
		prev2 = prev;
		prev = t;
	}
	for (size_t i = 0; i <= depth; i++)
		free(stack[i].set);
	free(stack);
	return dups > 0 ? -1 : 0;
}

int cfgfile_parse_text(cfg_t *cfg, const char *path, const char *text, struct diag *d)
{
	int twice = check_set_twice(text, path, d), rc;

	pthread_mutex_lock(&cfgfile_lock);
	cur_diag = d;
	cur_path = path;
	cfg_set_error_function(cfg, report);
	rc = cfg_parse_buf(cfg, text);
	cur_diag = NULL;
	cur_path = NULL;
	pthread_mutex_unlock(&cfgfile_lock);
	return rc == CFG_SUCCESS && twice == 0 ? 0 : -1;
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

/* A walk over the tokens of prepared text that stops at each top-level `word "title"`
   section. */
struct section_scan {
	struct tokenizer tz;
	struct token prev;
	int line, depth;
};

static void section_scan_init(struct section_scan *s, const char *text)
{
	*s = (struct section_scan){.tz = {text, 1}};
}

/* The next top-level section: its first character (the word), with its line in s->line and
   the length of the word in *wordlen; NULL at the end of the text. */
static const char *scan_next_section(struct section_scan *s, size_t *wordlen)
{
	struct token t;

	while (next_token(&s->tz, &t)) {
		struct token word = s->prev;

		s->prev = t;
		if (token_is(&t, "{") || token_is(&t, "}")) {
			s->depth += token_is(&t, "{") ? 1 : -1;
		} else if (s->depth == 0 && *t.p == '"' && word.len > 0 &&
		           (isalpha((unsigned char)*word.p) || *word.p == '_')) {
			s->line = word.line;
			*wordlen = word.len;
			return word.p;
		}
	}
	return NULL;
}

int *cfgfile_section_lines(const char *text, const char *kind, size_t *n)
{
	struct section_scan s;
	size_t klen = strlen(kind), wlen, cap = 0;
	const char *w;
	int *lines = NULL;

	*n = 0;
	section_scan_init(&s, text);
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
	struct section_scan s;
	size_t from = 0, count = 0, cap = 0, wlen;
	int from_line = 1;
	const char *w;
	char **parts = NULL;

	assert(max_sections > 0);
	*nparts = 0;
	section_scan_init(&s, text);
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
