/*
 * policy.h - a loaded policy: an immutable snapshot of every rule, list and setting that
 * transactions are evaluated against.
 *
 * policy_load() builds a complete new snapshot from a configuration (all files, all lists, all
 * regexes) or fails as a whole, leaving nothing half-built.  A snapshot is never modified once
 * built; it is shared by reference count: every connection holds a reference for its whole
 * life, and the snapshot is freed when the last reference goes.
 */
#ifndef MP_POLICY_H
#define MP_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "types.h"

struct diag;
struct expr;
struct reply;
struct reply_template;
struct list;

struct rule {
	char *name;
	char *file;
	int line;
	enum stage stage;
	enum action action;
	struct expr *when;
	struct reply *reply;     /* reject and tempfail */
	char **add_header_names; /* add_header = { "Name: value" } */
	struct reply_template **add_header_values;
	size_t nadd_headers;
	int tag;                           /* tag id set on match, or -1 */
	struct reply_template *log_text;   /* NULL: none */
	struct reply_template *quarantine; /* reason, with action quarantine */
	bool dry_run;
};

struct policy {
	/* Settings that a reload may change. */
	enum on_error on_error;
	size_t body_limit;

	struct rule **rules; /* every rule, in evaluation order */
	size_t nrules;
	struct rule **stage_rules[STAGE_COUNT]; /* the rules of each stage, in order */
	size_t nstage_rules[STAGE_COUNT];
	struct list **lists;
	size_t nlists;
	size_t list_entries;
	char **files; /* rule files loaded, in order */
	size_t nfiles;
	char **tags; /* tag names by id */
	size_t ntags;
	/* Macros to ask the MTA for at each stage (smfi_setsymlist), space-separated. */
	/* The macros to ask the MTA for at each stage (smfi_setsymlist), space-separated.  A
	   body rule's are in the header stage's list: libmilter has no body list, and what the
	   MTA sends at end of headers stays known through the body. */
	char *macros[STAGE_COUNT];
	unsigned long generation;
	int refs; /* atomic */
};

/* Builds a snapshot from cfg's policy files.  NULL with every error in d on failure. The
   result has one reference, owned by the caller. */
struct policy *policy_load(const struct config *cfg, struct diag *d);

struct policy *policy_ref(struct policy *p); /* returns p */
void policy_unref(struct policy *p);         /* NULL is a no-op; frees on the last reference */

/* "3 files, 41 rules, 2 lists (120034 entries)" into buf. */
void policy_summary(const struct policy *p, char *buf, size_t len);

/*
 * The running snapshot, swapped atomically by reloads.  policy_current() returns it with a new
 * reference for the caller (NULL before the first policy_install()).  policy_install() takes
 * over the caller's reference to p, gives it the next generation number, and drops the
 * previous snapshot's install reference.
 */
struct policy *policy_current(void);
void policy_install(struct policy *p);
/* Drops the installed snapshot (at exit). */
void policy_uninstall(void);

#endif
