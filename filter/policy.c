/*
 * policy.c - policy snapshots: loading from a configuration, reference counting, and the
 * atomically swapped "current" snapshot.
 */
#include <glob.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "expr.h"
#include "list.h"
#include "policy.h"
#include "reply.h"
#include "rules.h"
#include "mem.h"

/* The macros asked of the MTA at every stage, whatever the rules use. */
static const char *const base_macros[STAGE_COUNT] = {
        [STAGE_CONNECT] = "j {daemon_name} {if_addr} {client_addr} {client_name} {client_port}",
        [STAGE_HELO] = "{tls_version} {cipher} {cipher_bits} {cert_subject} {cert_issuer}",
        [STAGE_MAIL] = "i {auth_type} {auth_authen} {auth_author} {mail_addr}",
        [STAGE_RCPT] = "i {rcpt_addr} {rcpt_host} {rcpt_mailer}",
        [STAGE_HEADER] = "i",
        [STAGE_BODY] = "i",
        [STAGE_EOM] = "i",
};

static pthread_mutex_t current_lock = PTHREAD_MUTEX_INITIALIZER;
static struct policy *current;        /* guarded by current_lock */
static unsigned long last_generation; /* guarded by current_lock */

/* Expands each pattern (sorted), in the order given; a pattern that matches nothing is an
   error, since a typo there would silently drop rules. */
static char **expand_policies(const struct config *cfg, size_t *np, struct diag *d)
{
	char **out = NULL;
	size_t n = 0;

	for (size_t i = 0; i < cfg->npolicies; i++) {
		glob_t g;
		int rc = glob(cfg->policies[i], GLOB_ERR, NULL, &g);

		if (rc == GLOB_NOMATCH || (rc == 0 && g.gl_pathc == 0)) {
			diag_add(d, cfg->path, 0, "policies: '%s' matches no file",
			         cfg->policies[i]);
		} else if (rc != 0) {
			diag_add(d, cfg->path, 0, "policies: cannot read '%s'", cfg->policies[i]);
		} else {
			out = mem_realloc(out, (n + g.gl_pathc) * sizeof(char *));
			for (size_t k = 0; k < g.gl_pathc; k++)
				out[n++] = mem_strdup(g.gl_pathv[k]);
		}
		if (rc != GLOB_NOMATCH)
			globfree(&g);
	}
	*np = n;
	return out;
}

struct macro_set {
	char *buf[STAGE_COUNT];
	enum stage stage;
};

static void add_macro(const char *name, void *ctx)
{
	struct macro_set *m = ctx;
	char **s = &m->buf[m->stage];
	size_t len = strlen(*s);

	/* A name already asked for at this stage is not asked twice. */
	for (const char *p = *s; (p = strstr(p, name)) != NULL; p++)
		if ((p == *s || p[-1] == ' ') &&
		    (p[strlen(name)] == ' ' || p[strlen(name)] == '\0'))
			return;
	*s = mem_realloc(*s, len + strlen(name) + 2);
	sprintf(*s + len, " %s", name);
}

static void collect_macros(struct policy *p)
{
	struct macro_set m;

	for (int s = 0; s < STAGE_COUNT; s++)
		m.buf[s] = mem_strdup(base_macros[s]);
	for (size_t i = 0; i < p->nrules; i++) {
		const struct rule *r = p->rules[i];
		m.stage = r->stage == STAGE_BODY ? STAGE_HEADER : r->stage; /* see policy.h */
		expr_macros(r->when, add_macro, &m);
		reply_macros(r->reply, add_macro, &m);
		for (size_t k = 0; k < r->nadd_headers; k++)
			reply_template_macros(r->add_header_values[k], add_macro, &m);
		reply_template_macros(r->log_text, add_macro, &m);
		reply_template_macros(r->quarantine, add_macro, &m);
	}
	for (int s = 0; s < STAGE_COUNT; s++)
		p->macros[s] = m.buf[s];
}

struct policy *policy_load(const struct config *cfg, struct diag *d)
{
	size_t errors = diag_count(d), nfiles;
	char **files = expand_policies(cfg, &nfiles, d);
	/* Compiled even after a glob error, so that one run reports every error. */
	struct policy *p = rules_compile(files, nfiles, d);

	for (size_t i = 0; i < nfiles; i++)
		free(files[i]);
	free(files);
	if (p != NULL && diag_count(d) > errors) {
		rules_free_policy(p);
		return NULL;
	}
	if (p == NULL)
		return NULL;
	p->on_error = cfg->on_error;
	p->body_limit = cfg->body_limit;
	collect_macros(p);
	return p;
}

struct policy *policy_ref(struct policy *p)
{
	__atomic_add_fetch(&p->refs, 1, __ATOMIC_RELAXED);
	return p;
}

void policy_unref(struct policy *p)
{
	if (p == NULL)
		return;
	if (__atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL) == 0)
		rules_free_policy(p);
}

void policy_summary(const struct policy *p, char *buf, size_t len)
{
	snprintf(buf, len, "%zu file%s, %zu rule%s, %zu list%s (%zu entr%s)", p->nfiles,
	         p->nfiles == 1 ? "" : "s", p->nrules, p->nrules == 1 ? "" : "s", p->nlists,
	         p->nlists == 1 ? "" : "s", p->list_entries, p->list_entries == 1 ? "y" : "ies");
}

struct policy *policy_current(void)
{
	struct policy *p;

	pthread_mutex_lock(&current_lock);
	p = current != NULL ? policy_ref(current) : NULL;
	pthread_mutex_unlock(&current_lock);
	return p;
}

void policy_install(struct policy *p)
{
	struct policy *old;

	pthread_mutex_lock(&current_lock);
	p->generation = ++last_generation;
	old = current;
	current = p;
	pthread_mutex_unlock(&current_lock);
	policy_unref(old); /* freed here only if no connection still uses it */
}

void policy_uninstall(void)
{
	struct policy *old;

	pthread_mutex_lock(&current_lock);
	old = current;
	current = NULL;
	pthread_mutex_unlock(&current_lock);
	policy_unref(old);
}
