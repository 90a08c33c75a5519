/*
 * main.c - command line, start-up (configuration, socket, privileges, daemon) and shutdown.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

#include "control.h"
#include "diag.h"
#include "log.h"
#include "milter.h"
#include "policy.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

enum exit_code { EXIT_OK = 0, EXIT_CONFIG = 1, EXIT_USAGE = 2, EXIT_RUNTIME = 3 };

struct options {
	const char *config;
	const char *socket;
	const char *user;
	const char *pidfile;
	const char *level;
	bool foreground;
	bool check;
};

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: milter-policy [-c CONFIG] [-p SOCKET] [-u USER] [-P PIDFILE] [-f] [-d "
	        "LEVEL]"
	        " [-n] [-V] [-h]\n"
	        "  -c CONFIG   main configuration (default %s/milter-policy/milter-policy.conf)\n"
	        "  -p SOCKET   listen on SOCKET: inet:PORT@HOST, inet6:PORT@HOST, unix:/path\n"
	        "  -u USER     run as USER (and its group) once the socket is open\n"
	        "  -P PIDFILE  write the process id to PIDFILE\n"
	        "  -f          stay in the foreground, log to stderr as well as syslog\n"
	        "  -d LEVEL    log level: error, warning, info or debug\n"
	        "  -n          check the configuration and every rule file, then exit\n"
	        "  -V          print the version and exit\n"
	        "  -h          this help\n",
	        SYSCONFDIR);
}

static int parse_options(int argc, char **argv, struct options *o)
{
	int ch;

	o->config = SYSCONFDIR "/milter-policy/milter-policy.conf";
	while ((ch = getopt(argc, argv, "c:p:u:P:fd:nVh")) != -1) {
		switch (ch) {
		case 'c':
			o->config = optarg;
			break;
		case 'p':
			o->socket = optarg;
			break;
		case 'u':
			o->user = optarg;
			break;
		case 'P':
			o->pidfile = optarg;
			break;
		case 'f':
			o->foreground = true;
			break;
		case 'd':
			o->level = optarg;
			break;
		case 'n':
			o->check = true;
			break;
		case 'V':
			printf("milter-policy %s\n", PACKAGE_VERSION);
			exit(EXIT_OK);
		case 'h':
			usage(stdout);
			exit(EXIT_OK);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "milter-policy: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return -1;
	}
	if (o->level != NULL && log_level_parse(o->level) < 0) {
		fprintf(stderr,
		        "milter-policy: -d: unknown level '%s' (use error, warning, info or "
		        "debug)\n",
		        o->level);
		return -1;
	}
	return 0;
}

static void print_errors(const struct diag *d)
{
	for (size_t i = 0; i < diag_count(d); i++)
		fprintf(stderr, "%s\n", diag_line(d, i));
}

/* Under systemd, stderr may be the journal, which gets the syslog lines already. */
static bool stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	return js != NULL && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(2, &st) == 0 &&
	       (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

/* -n: what a reload would load, per stage. */
static int check_only(const struct config *cfg)
{
	struct diag *d = diag_new();
	struct policy *p = policy_load(cfg, d);
	char summary[256];

	if (p == NULL) {
		print_errors(d);
		fprintf(stderr, "milter-policy: %zu error%s: configuration not valid\n",
		        diag_count(d), diag_count(d) == 1 ? "" : "s");
		diag_free(d);
		return EXIT_CONFIG;
	}
	for (int s = 0; s < STAGE_COUNT; s++)
		printf("%s: %zu rule%s\n", stage_name(s), p->nstage_rules[s],
		       p->nstage_rules[s] == 1 ? "" : "s");
	policy_summary(p, summary, sizeof(summary));
	printf("ok: %s\n", summary);
	policy_unref(p);
	diag_free(d);
	return EXIT_OK;
}

/* A unix socket left by a dead instance is removed; a live one is refused. */
static int prepare_socket(const char *conn)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct stat st;
	const char *path;
	int fd, rc;

	/* libmilter's notation: unix:/path, local:/path (any case), or a bare path */
	if (strncasecmp(conn, "unix:", 5) == 0)
		path = conn + 5;
	else if (strncasecmp(conn, "local:", 6) == 0)
		path = conn + 6;
	else if (strchr(conn, ':') == NULL)
		path = conn;
	else
		return 0;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_msg(LOG_ERR, "socket path too long: %s", path);
		return -1;
	}
	strcpy(sun.sun_path, path);
	/* Only a socket is ours to replace: a mistyped path must not delete a file. */
	if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
		log_msg(LOG_ERR, "%s exists and is not a socket: not removing it", path);
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	close(fd);
	if (rc == 0) {
		log_msg(LOG_ERR, "socket %s is in use by another process", path);
		return -1;
	}
	if (unlink(path) != 0 && errno != ENOENT) {
		log_msg(LOG_ERR, "cannot remove stale socket %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int drop_privileges(const char *user)
{
	struct passwd *pw;

	if (user == NULL)
		return 0;
	pw = getpwnam(user);
	if (pw == NULL) {
		log_msg(LOG_ERR, "user '%s' does not exist", user);
		return -1;
	}
	if (geteuid() != 0) {
		/* Started as that user already (systemd User=): nothing to drop. */
		if (pw->pw_uid == geteuid())
			return 0;
		log_msg(LOG_ERR, "cannot become user '%s': not started as root", user);
		return -1;
	}
	if (setgid(pw->pw_gid) != 0 || initgroups(pw->pw_name, pw->pw_gid) != 0 ||
	    setuid(pw->pw_uid) != 0) {
		log_msg(LOG_ERR, "cannot become user '%s': %s", user, strerror(errno));
		return -1;
	}
	return 0;
}

static int write_pidfile(const char *path)
{
	FILE *f;

	if (path == NULL)
		return 0;
	f = fopen(path, "w");
	if (f == NULL || fprintf(f, "%ld\n", (long)getpid()) < 0 || fclose(f) != 0) {
		log_msg(LOG_ERR, "cannot write pidfile %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int daemonize(void)
{
	pid_t pid = fork();
	int fd;

	if (pid < 0)
		return -1;
	if (pid > 0)
		_exit(EXIT_OK);
	if (setsid() < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0)
		_exit(EXIT_OK);
	if (chdir("/") != 0)
		return -1;
	fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	return 0;
}

/* Opens the socket, drops privileges, detaches, runs libmilter until stopped. */
static int serve(struct config *cfg, const struct options *o, const char *config_path)
{
	const char *sock = o->socket ? o->socket : cfg->socket;
	const char *user = o->user ? o->user : cfg->user;
	const char *pidfile = o->pidfile ? o->pidfile : cfg->pidfile;
	int rc;

	if (geteuid() == 0 && user == NULL && !cfg->allow_root) {
		log_msg(LOG_ERR,
		        "refusing to run as root: give -u USER, user = \"...\" in %s, or "
		        "allow_root = true",
		        config_path);
		return EXIT_CONFIG;
	}
	if (prepare_socket(sock) != 0 || smfi_setconn((char *)sock) != MI_SUCCESS ||
	    milter_register() != 0 || smfi_opensocket(false) != MI_SUCCESS) {
		log_msg(LOG_ERR, "cannot open socket %s", sock);
		return EXIT_RUNTIME;
	}
	if (drop_privileges(user) != 0)
		return EXIT_RUNTIME;
	if (!o->foreground && daemonize() != 0) {
		log_msg(LOG_ERR, "cannot become a daemon: %s", strerror(errno));
		return EXIT_RUNTIME;
	}
	if (write_pidfile(pidfile) != 0)
		return EXIT_RUNTIME;
	if (control_start(config_path, cfg, o->level ? log_level_parse(o->level) : -1) != 0) {
		log_msg(LOG_ERR, "cannot start the control thread");
		return EXIT_RUNTIME;
	}
	log_msg(LOG_INFO, "milter-policy %s listening on %s", PACKAGE_VERSION, sock);
	rc = smfi_main() == MI_SUCCESS ? EXIT_OK : EXIT_RUNTIME;
	log_msg(LOG_INFO, "stopped (%u connection%s still open)", milter_connections(),
	        milter_connections() == 1 ? "" : "s");
	if (pidfile != NULL)
		unlink(pidfile);
	return rc;
}

int main(int argc, char **argv)
{
	struct options o = {0};
	struct diag *d;
	struct config *cfg;
	struct policy *p;
	static char config_path[PATH_MAX], pidfile_path[PATH_MAX + 256];
	char summary[256];
	int rc;

	control_block_signals();
	if (parse_options(argc, argv, &o) != 0)
		return EXIT_USAGE;
	/* Reloads re-read the file after chdir("/"): keep its absolute path. */
	if (realpath(o.config, config_path) == NULL)
		snprintf(config_path, sizeof(config_path), "%s", o.config);
	if (o.pidfile != NULL && o.pidfile[0] != '/') {
		char cwd[PATH_MAX];
		if (getcwd(cwd, sizeof(cwd)) != NULL &&
		    snprintf(pidfile_path, sizeof(pidfile_path), "%s/%s", cwd, o.pidfile) <
		            (int)sizeof(pidfile_path))
			o.pidfile = pidfile_path;
	}
	d = diag_new();
	cfg = config_load(config_path, d);
	if (cfg == NULL) {
		print_errors(d);
		diag_free(d);
		return EXIT_CONFIG;
	}
	if (o.check) {
		rc = check_only(cfg);
		config_free(cfg);
		diag_free(d);
		return rc;
	}
	log_open("milter-policy", cfg->syslog_facility,
	         o.level ? log_level_parse(o.level) : cfg->log_level,
	         o.foreground && !stderr_is_journal());
	p = policy_load(cfg, d);
	if (p == NULL) {
		for (size_t i = 0; i < diag_count(d); i++)
			log_msg(LOG_ERR, "%s", diag_line(d, i));
		log_msg(LOG_ERR, "not started: %zu configuration error%s", diag_count(d),
		        diag_count(d) == 1 ? "" : "s");
		if (!o.foreground)
			print_errors(d);
		config_free(cfg);
		diag_free(d);
		return EXIT_CONFIG;
	}
	policy_summary(p, summary, sizeof(summary));
	policy_install(p);
	log_msg(LOG_INFO, "loaded: %s, generation %lu", summary, p->generation);
	rc = serve(cfg, &o, config_path);
	policy_uninstall();
	config_free(cfg);
	diag_free(d);
	return rc;
}
