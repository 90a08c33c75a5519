/*
 * types.h - the vocabulary shared by every module: SMTP stages and rule actions.
 */
#ifndef MP_TYPES_H
#define MP_TYPES_H

/* Stages in the order an SMTP transaction reaches them.  A rule runs at one stage. */
enum stage {
	STAGE_CONNECT,
	STAGE_HELO,
	STAGE_MAIL,
	STAGE_RCPT,
	STAGE_HEADER, /* once, at end of headers */
	STAGE_BODY,   /* once, when the whole body is known (at end of message) */
	STAGE_EOM,
	STAGE_COUNT
};

enum action {
	ACTION_CONTINUE,
	ACTION_ACCEPT,
	ACTION_REJECT,
	ACTION_TEMPFAIL,
	ACTION_DISCARD,
	ACTION_QUARANTINE
};

/* "connect", "helo", ... as written in rule files; NULL for an invalid stage. */
const char *stage_name(enum stage s);
/* "CONNECT", "HELO", "MAIL", "RCPT", "HEADER", "BODY", "END-OF-MESSAGE" as logged. */
const char *stage_log_name(enum stage s);
/* Returns 0 and sets *out, or -1 if name is not a stage. */
int stage_parse(const char *name, enum stage *out);

/* "continue", "accept", ... ; NULL for an invalid action. */
const char *action_name(enum action a);
int action_parse(const char *name, enum action *out);

#endif
