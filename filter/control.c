/*
 * control.c - the control thread: reloads and graceful stop, driven by signals.
 *
 * Why reload by SIGHUP is deterministic here
 * -------------------------------------------
 * Inside smfi_main(), libmilter starts a thread that sigwait()s for SIGHUP, SIGTERM and SIGINT
 * and stops the milter on any of them.  Two threads waiting for the same signal race: the
 * kernel gives a process-directed signal to whichever it picks.  So the race is removed at its
 * root: this program defines sigwait() itself.  The dynamic linker binds libmilter's call to
 * this definition (the executable comes first in symbol lookup), and it waits for the
 * requested set minus the four signals this module owns — for libmilter's set, nothing at all.
 * Every thread blocks the four signals (control_block_signals() runs before any thread
 * exists), and the only thread that ever dequeues them is the control thread, with
 * sigwaitinfo().  A SIGHUP, however many and however close together, is a reload; a signal that
 * arrives while a reload runs stays pending and is taken right after it.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

#include "config.h"
#include "control.h"
#include "diag.h"
#include "log.h"
#include "milter.h"
#include "policy.h"

static void owned_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGUSR1);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
}

/* Interposes libc's sigwait() for libmilter's signal thread (see above). */
int sigwait(const sigset_t *set, int *sig)
{
	sigset_t rest = *set, owned;

	owned_signals(&owned);
	for (int s = 1; s < NSIG; s++)
		if (sigismember(&owned, s) == 1)
			sigdelset(&rest, s);
	for (;;) {
		int s = sigisemptyset(&rest) ? (pause(), -1) : sigwaitinfo(&rest, NULL);
		if (s > 0) {
			*sig = s;
			return 0;
		}
		if (errno != EINTR)
			return errno;
	}
}

void control_block_signals(void)
{
	sigset_t set;

	owned_signals(&set);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static const char *config_path;
static const struct config *running;
static pthread_t listener_thread; /* the thread that runs smfi_main() */
static int forced_level = -1;     /* -d LEVEL on the command line wins over log_level */

/* SIGUSR2 only interrupts the listener's poll() (see graceful_stop). */
static void interrupt_poll(int sig)
{
	(void)sig;
}

static void log_errors(const struct diag *d)
{
	for (size_t i = 0; i < diag_count(d); i++)
		log_msg(LOG_ERR, "reload failed, keeping previous policy: %s", diag_line(d, i));
}

/* Settings that only a restart can change are reported, never silently ignored. */
static void report_restart_settings(const struct config *now)
{
	const struct {
		const char *name, *was, *is;
	} s[] = {
	        {"socket", running->socket, now->socket},
	        {"user", running->user, now->user},
	        {"pidfile", running->pidfile, now->pidfile},
	};

	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
		const char *a = s[i].was ? s[i].was : "", *b = s[i].is ? s[i].is : "";
		if (strcmp(a, b) != 0)
			log_msg(LOG_WARNING,
			        "reload: %s changed from '%s' to '%s'; restart to apply", s[i].name,
			        a, b);
	}
}

int control_reload(const char *path, const struct config *started)
{
	struct diag *d = diag_new();
	struct config *cfg = config_load(path, d);
	struct policy *p = cfg != NULL ? policy_load(cfg, d) : NULL;
	char summary[256];

	running = started;
	if (p == NULL) {
		log_errors(d);
		log_msg(LOG_ERR, "reload failed, keeping previous policy: %zu error%s",
		        diag_count(d), diag_count(d) == 1 ? "" : "s");
		config_free(cfg);
		diag_free(d);
		return -1;
	}
	report_restart_settings(cfg);
	log_set_level(forced_level >= 0 ? forced_level : cfg->log_level);
	policy_summary(p, summary, sizeof(summary));
	policy_install(p);
	log_msg(LOG_INFO, "reload: %s, generation %lu", summary, p->generation);
	config_free(cfg);
	diag_free(d);
	return 0;
}

static void *stopper_main(void *done)
{
	smfi_stop();
	__atomic_store_n((bool *)done, true, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * smfi_stop() sets libmilter's stop flag, then waits for the listener's lock, which the
 * listener holds inside poll() for up to 5 s.  So smfi_stop() runs in a thread of its own while
 * this one interrupts that poll() until it has returned: libmilter sees EINTR, checks the flag,
 * and leaves at once, so that a restart can open the socket straight away.
 */
static void stop_listener(void)
{
	bool done = false;
	pthread_t tid;

	if (pthread_create(&tid, NULL, stopper_main, &done) != 0) {
		smfi_stop();
		return;
	}
	for (int i = 0; i < 1000 && !__atomic_load_n(&done, __ATOMIC_ACQUIRE); i++) {
		pthread_kill(listener_thread, SIGUSR2);
		nanosleep(&(struct timespec){0, 10000000}, NULL);
	}
	pthread_join(tid, NULL);
}

/* Waits (bounded) for transactions in flight, then stops libmilter. */
static void graceful_stop(int sig)
{
	unsigned limit = running->stop_timeout * 10;

	milter_stop_accepting();
	log_msg(LOG_INFO, "%s: stopping after %u transaction%s in flight (at most %us)",
	        strsignal(sig), milter_transactions(), milter_transactions() == 1 ? "" : "s",
	        running->stop_timeout);
	for (unsigned i = 0; i < limit && milter_transactions() > 0; i++)
		nanosleep(&(struct timespec){0, 100000000}, NULL);
	if (milter_transactions() > 0)
		log_msg(LOG_WARNING, "stopping with %u transaction%s still in flight",
		        milter_transactions(), milter_transactions() == 1 ? "" : "s");
	/* A transaction ends in the end-of-message callback, and libmilter writes its reply
	   only after the callback returns: give that write (microseconds) time to happen. */
	nanosleep(&(struct timespec){0, 100000000}, NULL);
	stop_listener();
}

static void *control_main(void *arg)
{
	sigset_t set;

	(void)arg;
	owned_signals(&set);
	for (;;) {
		int sig = sigwaitinfo(&set, NULL);

		if (sig == SIGHUP || sig == SIGUSR1) {
			control_reload(config_path, running);
		} else if (sig == SIGTERM || sig == SIGINT) {
			graceful_stop(sig);
			return NULL;
		}
	}
}

int control_start(const char *path, const struct config *started, int level)
{
	pthread_t tid;

	struct sigaction sa = {.sa_handler = interrupt_poll}; /* no SA_RESTART: poll() returns */

	config_path = path;
	running = started;
	forced_level = level;
	listener_thread = pthread_self();
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR2, &sa, NULL) != 0)
		return -1;
	if (pthread_create(&tid, NULL, control_main, NULL) != 0)
		return -1;
	pthread_detach(tid);
	return 0;
}
