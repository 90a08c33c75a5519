/*
 * types.c - names of stages and actions.
 */
#include <stddef.h>
#include <strings.h>

#include "types.h"

static const char *const stage_names[STAGE_COUNT] = {
        "connect", "helo", "mail", "rcpt", "header", "body", "eom",
};

static const char *const stage_log_names[STAGE_COUNT] = {
        "CONNECT", "HELO", "MAIL", "RCPT", "HEADER", "BODY", "END-OF-MESSAGE",
};

static const char *const action_names[] = {
        "continue", "accept", "reject", "tempfail", "discard", "quarantine",
};

#define ACTION_COUNT (sizeof(action_names) / sizeof(action_names[0]))

const char *stage_name(enum stage s)
{
	if ((unsigned)s >= STAGE_COUNT)
		return NULL;
	return stage_names[s];
}

const char *stage_log_name(enum stage s)
{
	if ((unsigned)s >= STAGE_COUNT)
		return NULL;
	return stage_log_names[s];
}

/* Case-insensitive, like the other keywords an administrator types (log_level, on_error). */
int stage_parse(const char *name, enum stage *out)
{
	for (unsigned i = 0; i < STAGE_COUNT; i++) {
		if (strcasecmp(name, stage_names[i]) == 0) {
			*out = (enum stage)i;
			return 0;
		}
	}
	return -1;
}

const char *action_name(enum action a)
{
	if ((unsigned)a >= ACTION_COUNT)
		return NULL;
	return action_names[a];
}

int action_parse(const char *name, enum action *out)
{
	for (unsigned i = 0; i < ACTION_COUNT; i++) {
		if (strcasecmp(name, action_names[i]) == 0) {
			*out = (enum action)i;
			return 0;
		}
	}
	return -1;
}
