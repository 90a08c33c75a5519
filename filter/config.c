/*
 * config.c - the main configuration file (milter-policy.conf).
 *
 * Every value is checked while libconfuse parses it, in a parse callback, so an error carries
 * the line of the option.  A callback that finds an error reports it and lets the parse go on,
 * so one run shows every bad value; whether the load failed is read from the diag.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <unistd.h>

#include "cfgfile.h"
#include "config.h"
#include "diag.h"
#include "log.h"

#define CONFIG_SOCKET_DEFAULT "inet:8891@127.0.0.1"
#define CONFIG_POLICIES_DEFAULT "policies/*.rules"
#define CONFIG_BODY_LIMIT_DEFAULT (1024L * 1024)
#define CONFIG_BODY_LIMIT_MAX (64ULL * 1024 * 1024)
#define CONFIG_STOP_TIMEOUT_DEFAULT 30
#define CONFIG_STOP_TIMEOUT_MAX 3600

/* The multiplier of a size suffix, or 0 if c is not one. */
static unsigned long long config_size_unit(char c)
{
	switch (c) {
	case 'k':
	case 'K':
		return 1ULL << 10;
	case 'm':
	case 'M':
		return 1ULL << 20;
	case 'g':
	case 'G':
		return 1ULL << 30;
	default:
		return 0;
	}
}

int config_parse_size(const char *s, unsigned long long *out)
{
	unsigned long long v = 0, mult = 1;
	const char *p = s;

	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (ULLONG_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (*p != '\0' && ((mult = config_size_unit(*p)) == 0 || p[1] != '\0'))
		return -1;
	if (v > ULLONG_MAX / mult)
		return -1;
	*out = v * mult;
	return 0;
}

/* libmilter's notation: {unix|local}:/path, inet:port@host, inet6:port@host, or a bare path. */
static int cb_socket(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	static const char *const schemes[] = {"unix:", "local:", "inet:", "inet6:"};
	const char *colon = strchr(value, ':');
	bool ok = value[0] != '\0' && colon == NULL;

	for (size_t i = 0; !ok && i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		size_t n = strlen(schemes[i]);
		ok = strncasecmp(value, schemes[i], n) == 0 && value[n] != '\0';
	}
	if (!ok)
		cfg_error(cfg,
		          "%s: invalid socket '%s' (expected unix:/path, inet:PORT@HOST or "
		          "inet6:PORT@HOST)",
		          opt->name, value);
	*(const char **)result = value;
	return 0;
}

static int cb_policy(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	if (value[0] == '\0')
		cfg_error(cfg, "%s: empty pattern", opt->name);
	*(const char **)result = value;
	return 0;
}

static int cb_on_error(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	if (strcasecmp(value, "tempfail") == 0) {
		*(long *)result = ON_ERROR_TEMPFAIL;
	} else if (strcasecmp(value, "continue") == 0) {
		*(long *)result = ON_ERROR_CONTINUE;
	} else {
		cfg_error(cfg, "%s: invalid value '%s' (expected tempfail or continue)", opt->name,
		          value);
		*(long *)result = ON_ERROR_TEMPFAIL;
	}
	return 0;
}

static int cb_log_level(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	int level = log_level_parse(value);

	if (level == -1) {
		cfg_error(cfg, "%s: invalid value '%s' (expected error, warning, info or debug)",
		          opt->name, value);
		level = LOG_INFO;
	}
	*(long *)result = level;
	return 0;
}

static int cb_facility(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	int facility = log_facility_parse(value);

	if (facility == -1) {
		cfg_error(cfg,
		          "%s: invalid value '%s' (expected mail, daemon, user or "
		          "local0 to local7)",
		          opt->name, value);
		facility = LOG_MAIL;
	}
	*(long *)result = facility;
	return 0;
}

static int cb_body_limit(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	unsigned long long size;

	*(long *)result = CONFIG_BODY_LIMIT_DEFAULT;
	if (config_parse_size(value, &size) != 0)
		cfg_error(cfg, "%s: invalid size '%s' (digits with an optional K, M or G)",
		          opt->name, value);
	else if (size > CONFIG_BODY_LIMIT_MAX)
		cfg_error(cfg, "%s: %s is more than the maximum of 64M", opt->name, value);
	else
		*(long *)result = (long)size;
	return 0;
}

static int cb_stop_timeout(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	unsigned long long n;

	*(long *)result = CONFIG_STOP_TIMEOUT_DEFAULT;
	/* No suffix: a size suffix on seconds would be a mistake, not a multiplier. */
	if (config_parse_size(value, &n) != 0 || !isdigit((unsigned char)value[strlen(value) - 1]))
		cfg_error(cfg, "%s: invalid number of seconds '%s'", opt->name, value);
	else if (n > CONFIG_STOP_TIMEOUT_MAX)
		cfg_error(cfg, "%s: %s is out of range (0 to %d seconds)", opt->name, value,
		          CONFIG_STOP_TIMEOUT_MAX);
	else
		*(long *)result = (long)n;
	return 0;
}

/* The directory relative paths are resolved against, made absolute: the daemon changes its
   working directory when it detaches, and a reload must find the same files. */
static char *config_base_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char cwd[PATH_MAX];
	size_t dlen = slash == NULL ? 0 : (size_t)(slash - path);
	size_t clen;
	char *dir;

	if (slash == path)
		return strdup("/");
	if (path[0] == '/')
		return strndup(path, dlen);
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		return NULL;
	clen = strlen(cwd);
	if ((dir = malloc(clen + 1 + dlen + 1)) == NULL)
		return NULL;
	memcpy(dir, cwd, clen);
	dir[clen] = '\0';
	if (dlen > 0 && !(dlen == 1 && path[0] == '.')) {
		if (clen > 1)
			dir[clen++] = '/';
		memcpy(dir + clen, path, dlen);
		dir[clen + dlen] = '\0';
	}
	return dir;
}

static char *config_resolve(const char *dir, const char *p)
{
	size_t dlen = strlen(dir), plen = strlen(p);
	char *s;

	if (p[0] == '/')
		return strdup(p);
	if ((s = malloc(dlen + 1 + plen + 1)) == NULL)
		return NULL;
	memcpy(s, dir, dlen);
	if (dlen == 0 || dir[dlen - 1] != '/')
		s[dlen++] = '/';
	memcpy(s + dlen, p, plen + 1);
	return s;
}

/* NULL for an option that is unset or empty: both mean "none". */
static int config_dup_opt(cfg_t *cfg, const char *name, char **out)
{
	const char *v = cfg_getstr(cfg, name);

	*out = NULL;
	if (v == NULL || v[0] == '\0')
		return 0;
	return (*out = strdup(v)) == NULL ? -1 : 0;
}

static int config_fill_paths(struct config *c, cfg_t *cfg)
{
	char *dir = config_base_dir(c->path);
	const char *pidfile = cfg_getstr(cfg, "pidfile");
	cfg_opt_t *opt = cfg_getopt(cfg, "policies");
	bool set = (opt->flags & CFGF_MODIFIED) != 0;
	unsigned n = set ? cfg_opt_size(opt) : 1;
	int rc = -1;

	if (dir == NULL)
		return -1;
	if (pidfile != NULL && pidfile[0] != '\0' &&
	    (c->pidfile = config_resolve(dir, pidfile)) == NULL)
		goto out;
	if (n > 0 && (c->policies = calloc(n, sizeof(*c->policies))) == NULL)
		goto out;
	for (; c->npolicies < n; c->npolicies++) {
		const char *p = set ? cfg_opt_getnstr(opt, (unsigned)c->npolicies)
		                    : CONFIG_POLICIES_DEFAULT;
		if ((c->policies[c->npolicies] = config_resolve(dir, p)) == NULL)
			goto out;
	}
	rc = 0;
out:
	free(dir);
	return rc;
}

static struct config *config_from_cfg(cfg_t *cfg, const char *path)
{
	struct config *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->on_error = (enum on_error)cfg_getint(cfg, "on_error");
	c->log_level = (int)cfg_getint(cfg, "log_level");
	c->syslog_facility = (int)cfg_getint(cfg, "syslog_facility");
	c->body_limit = (size_t)cfg_getint(cfg, "body_limit");
	c->allow_root = cfg_getbool(cfg, "allow_root");
	c->stop_timeout = (unsigned)cfg_getint(cfg, "stop_timeout");
	if ((c->path = strdup(path)) == NULL || config_dup_opt(cfg, "socket", &c->socket) != 0 ||
	    config_dup_opt(cfg, "user", &c->user) != 0 || config_fill_paths(c, cfg) != 0) {
		config_free(c);
		return NULL;
	}
	return c;
}

/* Parses path; -1 if libconfuse or any validator reported an error. */
static int parse_checked(cfg_t *cfg, const char *path, struct diag *d)
{
	size_t before = diag_count(d);

	if (cfgfile_parse(cfg, path, d) != 0)
		return -1;
	return diag_count(d) > before ? -1 : 0;
}

struct config *config_load(const char *path, struct diag *d)
{
	cfg_opt_t opts[] = {
	        CFG_STR_CB("socket", CONFIG_SOCKET_DEFAULT, CFGF_NONE, cb_socket),
	        CFG_STR("user", NULL, CFGF_NONE),
	        CFG_STR("pidfile", NULL, CFGF_NONE),
	        /* The default is applied after the parse: a list default would make cfg_init()
	           run libconfuse's global lexer outside the parse lock. */
	        CFG_STR_LIST_CB("policies", NULL, CFGF_NONE, cb_policy),
	        CFG_INT_CB("on_error", ON_ERROR_TEMPFAIL, CFGF_NONE, cb_on_error),
	        CFG_INT_CB("log_level", LOG_INFO, CFGF_NONE, cb_log_level),
	        CFG_INT_CB("syslog_facility", LOG_MAIL, CFGF_NONE, cb_facility),
	        CFG_INT_CB("body_limit", CONFIG_BODY_LIMIT_DEFAULT, CFGF_NONE, cb_body_limit),
	        CFG_BOOL("allow_root", cfg_false, CFGF_NONE),
	        CFG_INT_CB("stop_timeout", CONFIG_STOP_TIMEOUT_DEFAULT, CFGF_NONE, cb_stop_timeout),
	        CFG_END(),
	};
	struct config *c = NULL;
	cfg_t *cfg;

	if ((cfg = cfg_init(opts, CFGF_NONE)) == NULL) {
		diag_add(d, path, 0, "out of memory");
		return NULL;
	}
	/* errno: ENOMEM, or getcwd()'s reason when the working directory is gone. */
	if (parse_checked(cfg, path, d) == 0 && (c = config_from_cfg(cfg, path)) == NULL)
		diag_add(d, path, 0, "cannot load: %s", strerror(errno));
	cfg_free(cfg);
	return c;
}

void config_free(struct config *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->npolicies; i++)
		free(c->policies[i]);
	free(c->policies);
	free(c->path);
	free(c->socket);
	free(c->user);
	free(c->pidfile);
	free(c);
}
