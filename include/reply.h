/*
 * reply.h - text templates with ${field} references, and the SMTP replies of reject and
 * tempfail rules: code validation at load, expansion made SMTP-safe at run time.
 *
 * Load time (compile): every error is a configuration error, reported through err/errlen
 * as a message without file:line (the caller prefixes it).
 * Run time (render): never fails; over-long text is truncated and flagged.
 */
#ifndef MP_REPLY_H
#define MP_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#include "field.h"
#include "types.h"

#define REPLY_MAX_LINES 32 /* libmilter's smfi_setmlreply limit */
#define REPLY_LINE_MAX 512 /* RFC 5321: a reply line, code and CRLF included */

/*
 * Looks up the value of a field for expansion.  Writes the value (NUL-terminated, truncated
 * to buflen) into buf and returns its full length.  arg is the field's argument (the header
 * name in ${header("Subject")}) or NULL.  A field with no value yields "".
 */
typedef size_t (*reply_value_fn)(void *ctx, enum field_id id, const char *arg, char *buf,
                                 size_t buflen);

/* A text with ${name} or ${name("arg")} references; "$$" is a literal '$'. */
struct reply_template;

/* Errors: "unknown field 'x' in '${x}'", "unterminated '${' ", "field 'tagged' cannot be
   expanded", "control character in text" ... */
struct reply_template *reply_template_new(const char *text, char *err, size_t errlen);
void reply_template_free(struct reply_template *t); /* NULL is a no-op */

/* Length of the text with every reference removed (to check limits at load). */
size_t reply_template_literal_len(const struct reply_template *t);
/* The latest stage among the fields it references (STAGE_CONNECT if none). */
enum stage reply_template_stage(const struct reply_template *t);

/* Calls fn for every macro name the text reads with ${macro("{name}")}; NULL t is empty. */
void reply_template_macros(const struct reply_template *t, void (*fn)(const char *name, void *ctx),
                           void *ctx);

/* Expands into out (outlen bytes, always NUL-terminated).  Expanded values are made safe:
   CR, LF and other control characters become ' ', bytes >= 0x80 become '?'.
   Returns true if the result was truncated. */
bool reply_template_expand(const struct reply_template *t, reply_value_fn fn, void *ctx, char *out,
                           size_t outlen);

/* The reply of a reject or tempfail rule. */
struct reply;

/*
 * action must be ACTION_REJECT or ACTION_TEMPFAIL.  code, xcode may be NULL (defaults:
 * reject 550 5.7.1 "Rejected by policy", tempfail 451 4.7.1 "Try again later"; a code
 * without xcode gets "<class>.7.1").  lines/nlines may be NULL/0 for the default text.
 * Errors: "code 250 is not a valid reject code (use 550, 551, 552, 553, 554, 555 or
 * 500-504)", "xcode '4.7.1' does not match code 550: its first digit must be 5",
 * "bad xcode 'x': expected class.subject.detail such as 5.7.1", "message has 33 lines
 * (at most 32)", "message line 1 is 600 octets long (at most 497 with code 550 5.7.1)".
 */
struct reply *reply_new(enum action action, const char *code, const char *xcode,
                        const char *const *lines, size_t nlines, char *err, size_t errlen);
void reply_free(struct reply *r); /* NULL is a no-op */

/* As reply_template_macros(), for every line of the reply; NULL r is empty. */
void reply_macros(const struct reply *r, void (*fn)(const char *name, void *ctx), void *ctx);

const char *reply_code(const struct reply *r);  /* "550"; owned by r */
const char *reply_xcode(const struct reply *r); /* "5.7.1"; owned by r */
enum stage reply_stage(const struct reply *r);  /* latest stage its text references */

/* A rendered reply: plain text (no '%' escaping), each line within REPLY_LINE_MAX octets
   once "code xcode " and CRLF are added. */
struct reply_text {
	char code[4];
	char xcode[12];
	size_t nlines;
	bool truncated; /* some line was cut to fit */
	char lines[REPLY_MAX_LINES][REPLY_LINE_MAX];
};

void reply_render(const struct reply *r, reply_value_fn fn, void *ctx, struct reply_text *out);

/* libmilter treats '%' as a format character: copies src into dst doubling every '%'.
   dst must hold 2 * strlen(src) + 1 bytes. */
void reply_escape_percent(const char *src, char *dst, size_t dstlen);

/* One-line form for the log: "550 5.7.1 first line" (further lines joined with " "). Writes at
   most outlen bytes, NUL-terminated. */
void reply_text_format(const struct reply_text *t, char *out, size_t outlen);

#endif
