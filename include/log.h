/*
 * log.h - syslog, and stderr too when running in the foreground.
 */
#ifndef MP_LOG_H
#define MP_LOG_H

#include <stdbool.h>
#include <syslog.h>

/* ident: program name; facility: LOG_MAIL ...; level: the most verbose priority logged. */
void log_open(const char *ident, int facility, int level, bool to_stderr);
void log_set_level(int level);
bool log_enabled(int priority);

/* priority: LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG. */
void log_msg(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* For tests: every line logged is also passed to sink (NULL to stop). */
typedef void (*log_sink_fn)(int priority, const char *line, void *ctx);
void log_set_sink(log_sink_fn sink, void *ctx);

/* "error", "warning", "info", "debug" -> LOG_ERR ...; -1 if unknown. */
int log_level_parse(const char *name);
/* "mail", "daemon", "local0".."local7", "user" -> LOG_MAIL ...; -1 if unknown. */
int log_facility_parse(const char *name);

#endif
