/*
 * expr.h - the condition language of "when": compiled once at load, evaluated per stage.
 *
 *   expr    := or
 *   or      := and { "or" and }
 *   and     := unary { "and" unary }
 *   unary   := "not" unary | "(" expr ")" | "exists" field | "tagged" "(" string ")" | compare
 *   compare := field op operand
 *   field   := name [ "(" string ")" ]           header("Subject"), macro("{i}")
 *   op      := "==" | "!=" | "=~" | "!~" | "contains" | "in" | "<" | "<=" | ">" | ">="
 *   operand := string | number[K|M|G] | /regex/flags | "[" item { "," item } "]" | @list
 *
 * Strings are "double-quoted" with \" and \\ escapes.  Regexes are PCRE2, compiled once (JIT
 * where available) and matched under match and depth limits.
 */
#ifndef MP_EXPR_H
#define MP_EXPR_H

#include <stdbool.h>
#include <stddef.h>

#include "field.h"
#include "types.h"

struct diag;
struct list;
struct conn;

/* What the compiler needs from the rule compiler: named lists and tags. */
struct expr_env {
	/* Returns the list of that name, or NULL if none. */
	struct list *(*find_list)(void *ctx, const char *name);
	/* Returns the tag's id and the stage of the first earlier rule that sets it via *stage,
	   or -1 if no earlier rule sets it. */
	int (*find_tag)(void *ctx, const char *name, enum stage *stage);
	void *ctx;
	const char *file; /* for messages about list entries */
	int line;
};

struct expr;

/* Compiles src.  On error returns NULL and writes a one-line message naming the column,
   e.g. "unknown field 'clinet_ip' at column 1", into err.  List-entry errors (a bad CIDR in a
   named list) go to d with their own file:line. */
struct expr *expr_compile(const char *src, const struct expr_env *env, struct diag *d, char *err,
                          size_t errlen);
void expr_free(struct expr *e); /* NULL is a no-op */

/* The earliest stage at which every field the expression uses is known. */
enum stage expr_stage(const struct expr *e);
/* The earliest stage at which it may run when the rule names its stage: as expr_stage(),
   except that size may be tested at mail (the client's SIZE= declaration). */
enum stage expr_min_stage(const struct expr *e);
/* Calls fn for every macro name the expression reads with macro("{name}"). */
void expr_macros(const struct expr *e, void (*fn)(const char *name, void *ctx), void *ctx);

enum expr_result { EXPR_FALSE, EXPR_TRUE, EXPR_ERROR };

/* Evaluates e against the connection's current state.  EXPR_ERROR (a regex hit its match
   limit, out of memory) comes with a message in err. */
enum expr_result expr_eval(const struct expr *e, struct conn *c, char *err, size_t errlen);

#endif
