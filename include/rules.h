/*
 * rules.h - the rule-file compiler: parses each rule file into its own libconfuse tree and
 * compiles lists, conditions and replies into rules of a new policy.
 */
#ifndef MP_RULES_H
#define MP_RULES_H

#include <stddef.h>

struct diag;
struct policy;

/* Compiles files in the order given.  Returns a policy with one reference (settings, macros
   and generation left for the caller), or NULL with every error in d as "file:line: message". */
struct policy *rules_compile(char *const *files, size_t nfiles, struct diag *d);

/* Frees what rules_compile() built (called by policy_unref on the last reference). */
void rules_free_policy(struct policy *p);

#endif
