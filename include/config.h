/*
 * config.h - the main configuration file (milter-policy.conf).
 */
#ifndef MP_CONFIG_H
#define MP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include <confuse.h>

struct diag;

enum on_error { ON_ERROR_TEMPFAIL, ON_ERROR_CONTINUE };

struct config {
	char *path;      /* the file read */
	char *socket;    /* "inet:8891@127.0.0.1" */
	char *user;      /* NULL: stay as started */
	char *pidfile;   /* NULL: none */
	char **policies; /* glob patterns, relative ones resolved against path's directory */
	size_t npolicies;
	enum on_error on_error;
	int log_level;       /* syslog priority: LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG */
	int syslog_facility; /* LOG_MAIL, LOG_LOCAL0 ... */
	size_t body_limit;   /* bytes of body kept for body rules */
	bool allow_root;
	unsigned stop_timeout; /* seconds SIGTERM waits for transactions in flight */
};

/* Parses path.  NULL with every error in d ("file:line: message") on failure.
   The result is owned by the caller: config_free(). */
struct config *config_load(const char *path, struct diag *d);
void config_free(struct config *c); /* NULL is a no-op */

/* "1M" -> 1048576.  Suffixes K, M, G (powers of 1024), case-insensitive.
   Returns 0, or -1 if s is not a number with an optional suffix or overflows. */
int config_parse_size(const char *s, unsigned long long *out);

#endif
