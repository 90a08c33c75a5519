/*
 * log.c - syslog, and stderr too when running in the foreground.
 *
 * Every call gives exactly one line: control characters in the text (a CR/LF from a header
 * value, say) are replaced, so nothing a client sends can forge a log line.
 */
#include <assert.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"

#define LOG_LINE_MAX 4096

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int log_level = LOG_INFO;
/* Guarded by log_lock. */
static char log_ident[64] = "milter-policy";
static bool log_stderr;
static log_sink_fn log_sink;
static void *log_sink_ctx;

struct log_name {
	const char *name;
	int value;
};

static const struct log_name log_levels[] = {
        {"error", LOG_ERR},
        {"warning", LOG_WARNING},
        {"info", LOG_INFO},
        {"debug", LOG_DEBUG},
};

static const struct log_name log_facilities[] = {
        {"mail", LOG_MAIL},     {"daemon", LOG_DAEMON}, {"user", LOG_USER},
        {"local0", LOG_LOCAL0}, {"local1", LOG_LOCAL1}, {"local2", LOG_LOCAL2},
        {"local3", LOG_LOCAL3}, {"local4", LOG_LOCAL4}, {"local5", LOG_LOCAL5},
        {"local6", LOG_LOCAL6}, {"local7", LOG_LOCAL7},
};

void log_open(const char *ident, int facility, int level, bool to_stderr)
{
	pthread_mutex_lock(&log_lock);
	/* openlog() keeps the pointer: give it our own copy. */
	snprintf(log_ident, sizeof(log_ident), "%s", ident);
	log_stderr = to_stderr;
	closelog();
	openlog(log_ident, LOG_PID | LOG_NDELAY, facility);
	atomic_store(&log_level, level);
	pthread_mutex_unlock(&log_lock);
}

void log_set_level(int level)
{
	atomic_store(&log_level, level);
}

bool log_enabled(int priority)
{
	return LOG_PRI(priority) <= atomic_load(&log_level);
}

void log_set_sink(log_sink_fn sink, void *ctx)
{
	pthread_mutex_lock(&log_lock);
	log_sink = sink;
	log_sink_ctx = ctx;
	pthread_mutex_unlock(&log_lock);
}

static void log_sanitize(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = *s == '\t' ? ' ' : '?';
}

void log_msg(int priority, const char *fmt, ...)
{
	char line[LOG_LINE_MAX];
	va_list ap;
	int n;

	if (!log_enabled(priority))
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		snprintf(line, sizeof(line), "(log format error: %s)", fmt);
	else if ((size_t)n >= sizeof(line))
		memcpy(line + sizeof(line) - 4, "...", 4);
	log_sanitize(line);

	pthread_mutex_lock(&log_lock);
	syslog(LOG_PRI(priority), "%s", line);
	if (log_stderr)
		fprintf(stderr, "%s[%ld]: %s\n", log_ident, (long)getpid(), line);
	if (log_sink != NULL)
		log_sink(LOG_PRI(priority), line, log_sink_ctx);
	pthread_mutex_unlock(&log_lock);
}

static int log_lookup(const struct log_name *t, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(name, t[i].name) == 0)
			return t[i].value;
	return -1;
}

int log_level_parse(const char *name)
{
	return log_lookup(log_levels, sizeof(log_levels) / sizeof(log_levels[0]), name);
}

int log_facility_parse(const char *name)
{
	return log_lookup(log_facilities, sizeof(log_facilities) / sizeof(log_facilities[0]), name);
}
