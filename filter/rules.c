/*
 * rules.c - the rule-file compiler.
 *
 * Two passes: every file is parsed first and its lists registered (a rule may use a list from
 * any file), then rules are compiled in order.  Nothing is half-built: any error leaves the
 * whole result NULL, with every error found reported as "file:line: message".
 */
#include <assert.h>
#include <ctype.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfgfile.h"
#include "diag.h"
#include "expr.h"
#include "hashset.h"
#include "list.h"
#include "policy.h"
#include "reply.h"
#include "rules.h"
#include "mem.h"

/* Where each option was set: libconfuse keeps no line numbers, so a validator on every option
   records them while the file is parsed (sorted afterwards, for lookups). */
struct optline {
	cfg_t *sec;
	const char *opt;
	int line;
};

/* A rule file is parsed in parts of at most RULES_PART_SECTIONS sections (see cfgfile_split);
   each part is one rulefile here, with the file's path. */
#define RULES_PART_SECTIONS 1000

struct rulefile {
	char *path;
	cfg_t *cfg;
	bool parsed;
	struct optline *lines; /* sorted by section, then option name, once parsed */
	size_t nlines, lines_cap;
	int *rule_lines, *list_lines; /* line of the k-th rule and list section */
	size_t nrule_lines, nlist_lines;
};

/* libconfuse validators have no user pointer: the file being parsed is global, and compiles
   are serialised. */
static pthread_mutex_t rules_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rulefile *parsing; /* guarded by rules_lock */

struct tagdef {
	enum stage stage;
};

struct build {
	struct policy *p;
	struct diag *d;
	struct rulefile *files; /* every part of every file, in order */
	size_t nfiles, files_cap;
	struct tagdef *tags;
	struct hashset_names list_names, tag_names; /* index in p->lists, p->tags */
	size_t rules_cap, lists_cap;
};

static int optline_cmp(const void *a, const void *b)
{
	const struct optline *x = a, *y = b;

	if (x->sec != y->sec)
		return (uintptr_t)x->sec < (uintptr_t)y->sec ? -1 : 1;
	return strcmp(x->opt, y->opt);
}

/* The line where opt was first set in section sec of f, or 0. */
static int option_line(const struct rulefile *f, cfg_t *sec, const char *opt)
{
	struct optline key = {sec, opt, 0};
	const struct optline *hit = bsearch(&key, f->lines, f->nlines, sizeof(key), optline_cmp);

	return hit != NULL ? hit->line : 0;
}

/* Validator on every option: remembers where it was first set (libconfuse keeps no lines;
   an option set twice is refused by cfgfile, and "+=" or a list's further values call this
   again). */
static int record_line(cfg_t *sec, cfg_opt_t *opt)
{
	struct rulefile *f = parsing;

	/* A section's options are parsed one after another: earlier ones are at the end. */
	for (size_t i = f->nlines; i > 0 && f->lines[i - 1].sec == sec; i--)
		if (strcmp(f->lines[i - 1].opt, opt->name) == 0)
			return 0;
	mem_grow((void **)&f->lines, f->nlines, &f->lines_cap, sizeof(*f->lines));
	f->lines[f->nlines++] = (struct optline){sec, opt->name, sec->line};
	return 0;
}

static cfg_opt_t list_opts[] = {
        CFG_STR_LIST("items", NULL, CFGF_NODEFAULT),
        CFG_STR_LIST("file", NULL, CFGF_NODEFAULT),
        CFG_END(),
};

static cfg_opt_t rule_opts[] = {
        CFG_STR("when", NULL, CFGF_NODEFAULT),
        CFG_STR("stage", NULL, CFGF_NODEFAULT),
        CFG_STR("action", "continue", CFGF_NONE),
        CFG_STR("code", NULL, CFGF_NODEFAULT),
        CFG_STR("xcode", NULL, CFGF_NODEFAULT),
        CFG_STR_LIST("message", NULL, CFGF_NODEFAULT),
        CFG_STR_LIST("add_header", NULL, CFGF_NODEFAULT),
        CFG_STR("tag", NULL, CFGF_NODEFAULT),
        CFG_STR("log", NULL, CFGF_NODEFAULT),
        CFG_BOOL("dry_run", cfg_false, CFGF_NONE),
        CFG_STR("quarantine", NULL, CFGF_NODEFAULT),
        CFG_END(),
};

static cfg_opt_t file_opts[] = {
        CFG_SEC("list", list_opts, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
        CFG_SEC("rule", rule_opts, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
        CFG_END(),
};

static void set_validators(cfg_t *cfg, const char *sec, cfg_opt_t *opts)
{
	char name[64];

	for (cfg_opt_t *o = opts; o->name != NULL; o++) {
		snprintf(name, sizeof(name), "%s|%s", sec, o->name);
		cfg_set_validate_func(cfg, name, record_line);
	}
}

/* A path written in a rule file, relative to that file's directory. */
static char *resolve_path(const char *rulefile, const char *path)
{
	char *dir, *out, *copy;

	if (path[0] == '/')
		return mem_strdup(path);
	copy = mem_strdup(rulefile);
	dir = dirname(copy);
	out = mem_calloc(strlen(dir) + strlen(path) + 2, 1);
	sprintf(out, "%s/%s", dir, path);
	free(copy);
	return out;
}

static struct list *find_list_named(const struct build *b, const char *name)
{
	size_t i;

	return hashset_names_get(&b->list_names, name, &i) ? b->p->lists[i] : NULL;
}

/* The first file (parsed so far) that declares list name. */
static int section_line(const int *lines, size_t n, unsigned k)
{
	return k < n ? lines[k] : 0;
}

/* Where list name was first declared: "file:line". */
static void first_list_origin(const struct build *b, const char *name, char *buf, size_t len)
{
	for (size_t i = 0; i < b->nfiles; i++) {
		const struct rulefile *f = &b->files[i];
		for (unsigned k = 0; f->parsed && k < cfg_size(f->cfg, "list"); k++)
			if (strcmp(cfg_title(cfg_getnsec(f->cfg, "list", k)), name) == 0) {
				snprintf(buf, len, "%s:%d", f->path,
				         section_line(f->list_lines, f->nlist_lines, k));
				return;
			}
	}
	assert(!"a defined list has a file");
}

static void load_list(struct build *b, struct rulefile *f, unsigned k)
{
	cfg_t *sec = cfg_getnsec(f->cfg, "list", k);
	const char *name = cfg_title(sec);
	int line = section_line(f->list_lines, f->nlist_lines, k);
	struct list *l;

	if (find_list_named(b, name) != NULL) {
		char first[PATH_MAX + 32];
		first_list_origin(b, name, first, sizeof(first));
		diag_add(b->d, f->path, line, "list '%s' is already defined at %s", name, first);
		return;
	}
	l = list_new(name, f->path, line);
	for (unsigned i = 0; i < cfg_size(sec, "items"); i++)
		list_add_item(l, cfg_getnstr(sec, "items", i), f->path,
		              option_line(f, sec, "items"));
	for (unsigned i = 0; i < cfg_size(sec, "file"); i++) {
		char *path = resolve_path(f->path, cfg_getnstr(sec, "file", i));
		list_add_file(l, path, b->d);
		free(path);
	}
	mem_grow((void **)&b->p->lists, b->p->nlists, &b->lists_cap, sizeof(*b->p->lists));
	hashset_names_put(&b->list_names, list_name(l), b->p->nlists);
	b->p->lists[b->p->nlists++] = l;
}

static struct list *env_find_list(void *ctx, const char *name)
{
	return find_list_named(ctx, name);
}

static int env_find_tag(void *ctx, const char *name, enum stage *stage)
{
	struct build *b = ctx;
	size_t i;

	if (!hashset_names_get(&b->tag_names, name, &i))
		return -1;
	*stage = b->tags[i].stage;
	return (int)i;
}

static int add_tag(struct build *b, const char *name, enum stage stage)
{
	enum stage st;
	int id = env_find_tag(b, name, &st);
	size_t cap;

	if (id >= 0)
		return id;
	cap = b->p->ntags;
	mem_grow((void **)&b->p->tags, b->p->ntags, &cap, sizeof(*b->p->tags));
	cap = b->p->ntags;
	mem_grow((void **)&b->tags, b->p->ntags, &cap, sizeof(*b->tags));
	b->p->tags[b->p->ntags] = mem_strdup(name);
	b->tags[b->p->ntags].stage = stage;
	hashset_names_put(&b->tag_names, b->p->tags[b->p->ntags], b->p->ntags);
	return (int)b->p->ntags++;
}

/* Context for the messages of one rule. */
struct rulectx {
	struct build *b;
	struct rulefile *f;
	cfg_t *sec;
	struct rule *r;
	int line;
	bool failed;
};

static void rule_error(struct rulectx *rc, const char *opt, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void rule_error(struct rulectx *rc, const char *opt, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int line = opt != NULL ? option_line(rc->f, rc->sec, opt) : 0;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	diag_add(rc->b->d, rc->f->path, line ? line : rc->line, "rule '%s': %s", rc->r->name, msg);
	rc->failed = true;
}

static struct reply_template *compile_template(struct rulectx *rc, const char *opt,
                                               const char *text, enum stage *latest)
{
	char err[512];
	struct reply_template *t = reply_template_new(text, err, sizeof(err));

	if (t == NULL) {
		rule_error(rc, opt, "%s: %s", opt, err);
		return NULL;
	}
	if (reply_template_stage(t) > *latest)
		*latest = reply_template_stage(t);
	return t;
}

/* add_header = { "X-Name: value ${field}" } */
static void compile_add_headers(struct rulectx *rc, enum stage *latest)
{
	struct rule *r = rc->r;
	unsigned n = cfg_size(rc->sec, "add_header");

	r->add_header_names = mem_calloc(n, sizeof(char *));
	r->add_header_values = mem_calloc(n, sizeof(struct reply_template *));
	for (unsigned i = 0; i < n; i++) {
		const char *h = cfg_getnstr(rc->sec, "add_header", i);
		const char *colon = strchr(h, ':');
		size_t namelen = colon ? (size_t)(colon - h) : 0;
		const char *value = colon ? colon + 1 : "";

		for (size_t k = 0; k < namelen; k++)
			if (h[k] <= ' ' || h[k] > '~')
				namelen = 0;
		if (namelen == 0) {
			rule_error(rc, "add_header",
			           "add_header '%s': expected \"Name: value\" with a "
			           "header name of printable characters and no spaces",
			           h);
			continue;
		}
		while (*value == ' ')
			value++;
		r->add_header_names[r->nadd_headers] = mem_strndup(h, namelen);
		r->add_header_values[r->nadd_headers] =
		        compile_template(rc, "add_header", value, latest);
		if (r->add_header_values[r->nadd_headers] == NULL) {
			free(r->add_header_names[r->nadd_headers]);
			continue;
		}
		r->nadd_headers++;
	}
}

/* The option a reply_new() message is about, for its line: "code 250 is not...",
   "xcode 4.7.1 does not match...", "bad xcode '5.7'...", else the message text. */
static const char *reply_error_option(const char *err)
{
	if (strncmp(err, "code ", 5) == 0)
		return "code";
	if (strncmp(err, "xcode ", 6) == 0 || strncmp(err, "bad xcode ", 10) == 0)
		return "xcode";
	return "message";
}

static void compile_reply(struct rulectx *rc, enum stage *latest)
{
	struct rule *r = rc->r;
	unsigned n = cfg_size(rc->sec, "message");
	const char **lines = mem_calloc(n, sizeof(char *));
	char err[512];

	for (unsigned i = 0; i < n; i++)
		lines[i] = cfg_getnstr(rc->sec, "message", i);
	r->reply = reply_new(r->action, cfg_getstr(rc->sec, "code"), cfg_getstr(rc->sec, "xcode"),
	                     lines, n, err, sizeof(err));
	free(lines);
	if (r->reply == NULL) {
		const char *opt = reply_error_option(err);

		if (strcmp(opt, "message") == 0 && strncmp(err, "message", 7) != 0)
			rule_error(rc, opt, "message: %s", err); /* a bad ${...} in the text */
		else
			rule_error(rc, opt, "%s", err);
		return;
	}
	if (reply_stage(r->reply) > *latest)
		*latest = reply_stage(r->reply);
}

static void compile_modifiers(struct rulectx *rc, enum stage *latest)
{
	struct rule *r = rc->r;
	const char *s;

	compile_add_headers(rc, latest);
	if ((s = cfg_getstr(rc->sec, "log")) != NULL)
		r->log_text = compile_template(rc, "log", s, latest);
	s = cfg_getstr(rc->sec, "quarantine");
	if (s != NULL && r->action != ACTION_QUARANTINE)
		rule_error(rc, "quarantine", "quarantine = \"reason\" needs action = quarantine");
	if (r->action == ACTION_QUARANTINE)
		r->quarantine =
		        compile_template(rc, "quarantine", s ? s : "held by rule ${rule}", latest);
	r->dry_run = cfg_getbool(rc->sec, "dry_run");
}

static bool compile_action(struct rulectx *rc)
{
	const char *a = cfg_getstr(rc->sec, "action");

	if (action_parse(a, &rc->r->action) != 0) {
		rule_error(rc, "action",
		           "unknown action '%s' (use continue, accept, reject, "
		           "tempfail, discard or quarantine)",
		           a);
		return false;
	}
	if (rc->r->action != ACTION_REJECT && rc->r->action != ACTION_TEMPFAIL) {
		static const char *reply_opts[] = {"code", "xcode", "message"};
		for (size_t i = 0; i < 3; i++)
			if (cfg_size(rc->sec, reply_opts[i]) > 0)
				rule_error(rc, reply_opts[i],
				           "%s is only for action reject or "
				           "tempfail, not %s",
				           reply_opts[i], a);
	}
	return true;
}

/* The rule's stage: as written (not before min), or needed, the earliest at which everything
   it uses is known; min differs from needed only for size, which mail knows as SIZE=. */
static void decide_stage(struct rulectx *rc, enum stage needed, enum stage min)
{
	const char *s = cfg_getstr(rc->sec, "stage");
	struct rule *r = rc->r;

	if (s == NULL) {
		r->stage = needed;
		return;
	}
	if (stage_parse(s, &r->stage) != 0) {
		rule_error(rc, "stage",
		           "unknown stage '%s' (use connect, helo, mail, rcpt, header, "
		           "body or eom)",
		           s);
		return;
	}
	if (r->stage < min)
		rule_error(rc, "stage",
		           "stage %s is too early: the rule uses a field first known at stage %s",
		           s, stage_name(min));
}

static void compile_rule(struct build *b, struct rulefile *f, unsigned k)
{
	cfg_t *sec = cfg_getnsec(f->cfg, "rule", k);
	struct rule *r = mem_calloc(1, sizeof(*r));
	struct rulectx rc = {b, f, sec, r, 0, false};
	const char *when = cfg_getstr(sec, "when");
	struct expr_env env = {env_find_list, env_find_tag, b, f->path, 0};
	enum stage needed, min, texts = STAGE_CONNECT;
	char err[512];

	r->name = mem_strdup(cfg_title(sec));
	r->file = mem_strdup(f->path);
	r->line = rc.line = section_line(f->rule_lines, f->nrule_lines, k);
	r->tag = -1;
	mem_grow((void **)&b->p->rules, b->p->nrules, &b->rules_cap, sizeof(*b->p->rules));
	b->p->rules[b->p->nrules++] = r; /* owned by the policy from here, even if bad */

	if (when == NULL) {
		rule_error(&rc, NULL, "missing 'when': every rule needs a condition");
		return;
	}
	env.line = option_line(f, sec, "when");
	r->when = expr_compile(when, &env, b->d, err, sizeof(err));
	if (r->when == NULL) {
		if (err[0] != '\0')
			rule_error(&rc, "when", "when: %s", err);
		return;
	}
	if (!compile_action(&rc))
		return;
	/* texts (reply, headers, log, quarantine) need their fields known too */
	if (r->action == ACTION_REJECT || r->action == ACTION_TEMPFAIL)
		compile_reply(&rc, &texts);
	compile_modifiers(&rc, &texts);
	needed = expr_stage(r->when) > texts ? expr_stage(r->when) : texts;
	min = expr_min_stage(r->when) > texts ? expr_min_stage(r->when) : texts;
	decide_stage(&rc, needed, min);
	if (cfg_getstr(sec, "tag") != NULL && !rc.failed)
		r->tag = add_tag(b, cfg_getstr(sec, "tag"), r->stage);
}

struct ordered_rule {
	const struct rule *rule;
	size_t order; /* position in evaluation order */
};

static int rule_order_cmp(const void *a, const void *b)
{
	const struct ordered_rule *x = a, *y = b;
	int c = strcmp(x->rule->name, y->rule->name);

	return c != 0 ? c : (x->order < y->order ? -1 : 1);
}

/* Rule names are unique across all files: they name the rule in every log line. */
static void check_rule_names(struct build *b)
{
	size_t n = b->p->nrules;
	struct ordered_rule *sorted = mem_calloc(n, sizeof(*sorted));
	const struct rule *first = NULL;

	for (size_t i = 0; i < n; i++)
		sorted[i] = (struct ordered_rule){b->p->rules[i], i};
	qsort(sorted, n, sizeof(*sorted), rule_order_cmp);
	for (size_t i = 0; i < n; i++) {
		const struct rule *r = sorted[i].rule;
		if (first == NULL || strcmp(first->name, r->name) != 0) {
			first = r;
			continue;
		}
		diag_add(b->d, r->file, r->line,
		         "rule '%s': a rule of this name is already defined at %s:%d", r->name,
		         first->file, first->line);
	}
	free(sorted);
}

static bool parse_part(struct build *b, struct rulefile *f, const char *text)
{
	f->cfg = cfg_init(file_opts, CFGF_NONE);
	if (f->cfg == NULL)
		abort();
	set_validators(f->cfg, "rule", rule_opts);
	set_validators(f->cfg, "list", list_opts);
	parsing = f;
	if (cfgfile_parse_text(f->cfg, f->path, text, b->d) != 0)
		return false;
	qsort(f->lines, f->nlines, sizeof(*f->lines), optline_cmp);
	f->rule_lines = cfgfile_section_lines(text, "rule", &f->nrule_lines);
	f->list_lines = cfgfile_section_lines(text, "list", &f->nlist_lines);
	return true;
}

/* A file contributes its lists and rules only if every part of it parsed. */
static void parse_file(struct build *b, char *path)
{
	char *text = cfgfile_read(path, b->d), **parts;
	size_t nparts, first = b->nfiles, i;
	bool ok = true;

	if (text == NULL)
		return;
	parts = cfgfile_split(text, RULES_PART_SECTIONS, &nparts);
	free(text);
	for (i = 0; i < nparts; i++) {
		if (ok) {
			mem_grow((void **)&b->files, b->nfiles, &b->files_cap, sizeof(*b->files));
			b->files[b->nfiles] = (struct rulefile){.path = path};
			ok = parse_part(b, &b->files[b->nfiles++], parts[i]);
		}
		free(parts[i]);
	}
	free(parts);
	for (i = first; ok && i < b->nfiles; i++) {
		b->files[i].parsed = true;
		for (unsigned k = 0; k < cfg_size(b->files[i].cfg, "list"); k++)
			load_list(b, &b->files[i], k);
	}
}

static void index_by_stage(struct policy *p)
{
	for (size_t i = 0; i < p->nrules; i++)
		p->nstage_rules[p->rules[i]->stage]++;
	for (int s = 0; s < STAGE_COUNT; s++) {
		p->stage_rules[s] = mem_calloc(p->nstage_rules[s], sizeof(struct rule *));
		p->nstage_rules[s] = 0;
	}
	for (size_t i = 0; i < p->nrules; i++) {
		struct rule *r = p->rules[i];
		p->stage_rules[r->stage][p->nstage_rules[r->stage]++] = r;
	}
}

struct policy *rules_compile(char *const *paths, size_t npaths, struct diag *d)
{
	struct build b = {0};
	size_t errors = diag_count(d);

	b.p = mem_calloc(1, sizeof(*b.p));
	b.p->refs = 1;
	b.d = d;
	pthread_mutex_lock(&rules_lock);
	for (size_t i = 0; i < npaths; i++)
		parse_file(&b, paths[i]);
	for (size_t i = 0; i < b.nfiles; i++)
		for (unsigned k = 0; b.files[i].parsed && k < cfg_size(b.files[i].cfg, "rule"); k++)
			compile_rule(&b, &b.files[i], k);
	check_rule_names(&b);
	parsing = NULL;
	pthread_mutex_unlock(&rules_lock);

	b.p->files = mem_calloc(npaths, sizeof(char *));
	for (size_t i = 0; i < npaths; i++)
		b.p->files[b.p->nfiles++] = mem_strdup(paths[i]);
	for (size_t i = 0; i < b.nfiles; i++) {
		cfg_free(b.files[i].cfg);
		free(b.files[i].lines);
		free(b.files[i].rule_lines);
		free(b.files[i].list_lines);
	}
	free(b.files);
	free(b.tags);
	hashset_names_clear(&b.list_names);
	hashset_names_clear(&b.tag_names);
	for (size_t i = 0; i < b.p->nlists; i++) {
		b.p->list_entries += list_entry_count(b.p->lists[i]);
		list_drop_sources(b.p->lists[i]);
	}
	if (diag_count(d) > errors) {
		rules_free_policy(b.p);
		return NULL;
	}
	index_by_stage(b.p);
	return b.p;
}

static void rule_free(struct rule *r)
{
	if (r == NULL)
		return;
	free(r->name);
	free(r->file);
	expr_free(r->when);
	reply_free(r->reply);
	for (size_t i = 0; i < r->nadd_headers; i++) {
		free(r->add_header_names[i]);
		reply_template_free(r->add_header_values[i]);
	}
	free(r->add_header_names);
	free(r->add_header_values);
	reply_template_free(r->log_text);
	reply_template_free(r->quarantine);
	free(r);
}

void rules_free_policy(struct policy *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->nrules; i++)
		rule_free(p->rules[i]);
	free(p->rules);
	for (int s = 0; s < STAGE_COUNT; s++) {
		free(p->stage_rules[s]);
		free(p->macros[s]);
	}
	for (size_t i = 0; i < p->nlists; i++)
		list_free(p->lists[i]);
	free(p->lists);
	for (size_t i = 0; i < p->nfiles; i++)
		free(p->files[i]);
	free(p->files);
	for (size_t i = 0; i < p->ntags; i++)
		free(p->tags[i]);
	free(p->tags);
	free(p);
}
