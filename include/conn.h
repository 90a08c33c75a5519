/*
 * conn.h - the state of one MTA connection (client, HELO, the message in progress) and the
 * driver that runs a stage's rules against it and decides.
 *
 * Pure C: the libmilter glue feeds it what the MTA sent and turns its verdicts into milter
 * replies, so unit tests drive it directly.  A conn is used by one thread at a time (libmilter
 * runs one connection's callbacks one after another).
 */
#ifndef MP_CONN_H
#define MP_CONN_H

#include <stdbool.h>
#include <stddef.h>

#include "field.h"
#include "reply.h"
#include "types.h"

struct policy;

/* The value of an MTA macro ("{auth_authen}", "i") during the callback in progress, or NULL
   if the MTA did not send it.  The string need only live until the callback returns. */
typedef const char *(*conn_macro_fn)(void *ctx, const char *name);

struct conn;

/* Takes over the caller's reference to p: the connection evaluates on p until it ends.
   NULL if out of memory; the caller then still holds its reference. */
struct conn *conn_new(struct policy *p, conn_macro_fn macro, void *macro_ctx);
void conn_free(struct conn *c); /* NULL is a no-op; drops the policy reference */
const struct policy *conn_policy(const struct conn *c);
/* The glue's context for macro lookups changes with each callback. */
void conn_set_macro_ctx(struct conn *c, void *macro_ctx);

/* What the MTA sent (strings are copied). */
void conn_connect(struct conn *c, const char *hostname, const char *ip, unsigned port);
void conn_helo(struct conn *c, const char *helo);
/* Starts a new message: fresh message state. argv: "<addr>", then ESMTP parameters. */
void conn_mail(struct conn *c, char *const *argv);
void conn_rcpt(struct conn *c, char *const *argv);
void conn_header(struct conn *c, const char *name, const char *value);
void conn_body(struct conn *c, const unsigned char *chunk, size_t len);
/* The MTA abandoned the message (or the connection dropped mid-message). */
void conn_abort(struct conn *c);
/* The connection ends: logs a decision nobody could be told of. */
void conn_close(struct conn *c);

struct conn_verdict {
	enum action action;      /* CONTINUE, ACCEPT, REJECT, TEMPFAIL or DISCARD */
	bool connection;         /* ACCEPT: for the whole connection */
	struct reply_text reply; /* REJECT, TEMPFAIL */
};

/* Runs the rules of stage s (and answers what an earlier stage decided).  s must follow
   the MTA's order; STAGE_BODY and STAGE_EOM are both run at end of message. */
void conn_run(struct conn *c, enum stage s, struct conn_verdict *v);

/* True while modifications wait for end of message (so an accept must not end callbacks). */
bool conn_wants_eom(const struct conn *c);
/* Headers to add at end of message: 0..n-1; name and value owned by c. */
size_t conn_add_header_count(const struct conn *c);
void conn_add_header_get(const struct conn *c, size_t i, const char **name, const char **value);
/* Reason to quarantine the message with, or NULL. Owned by c. */
const char *conn_quarantine_reason(const struct conn *c);
/* The answer for a runtime failure outside rule evaluation (out of memory in the glue). */
void conn_error_verdict(struct conn *c, enum stage s, const char *why, struct conn_verdict *v);

/* ---- The evaluator's view of the fields (expr.c). ---- */

/* Calls fn for each value of the field at the current stage (a field with no value gives
   one ""), until fn returns true; returns whether it did. */
typedef bool (*conn_value_fn)(const char *value, size_t len, void *ctx);
bool conn_each_value(struct conn *c, enum field_id id, const char *arg, conn_value_fn fn,
                     void *ctx);
/* Numeric fields; false if the value is unknown (an undeclared SIZE). */
bool conn_number(struct conn *c, enum field_id id, unsigned long long *out);
bool conn_header_exists(struct conn *c, const char *name);
bool conn_tagged(const struct conn *c, int tag);
/* PCRE2 match data and match context (limits, JIT stack) owned by the connection, for the
   evaluator's pcre2_match(). */
void *conn_match_data(struct conn *c);
void *conn_match_context(struct conn *c);

/* Expansion of ${field} for the current rule and stage: a reply_value_fn with ctx = conn. */
size_t conn_expand_value(void *conn, enum field_id id, const char *arg, char *buf, size_t len);

#endif
