/*
 * control.h - signals: reload on SIGHUP and SIGUSR1, graceful stop on SIGTERM and SIGINT.
 *
 * libmilter's own signal thread would stop the filter on SIGHUP (and race any other thread
 * that waits for it).  control.c takes every one of these signals away from libmilter by
 * construction: see the comment on sigwait() there.
 */
#ifndef MP_CONTROL_H
#define MP_CONTROL_H

struct config;

/* Blocks the four signals in the calling thread, so every thread created later inherits the
   mask.  Call first thing in main(), before any thread exists. */
void control_block_signals(void);

/* Starts the control thread; call from the thread that will run smfi_main().  config_path is
   re-read on reload; running is the configuration the daemon started with (to report settings that
   need a restart); level is the log level given with -d, which reloads keep, or -1.  Returns 0 or
   -1. */
int control_start(const char *config_path, const struct config *running, int level);

/* Loads config_path and its policy, logging as a reload does; installs it if valid.
   Returns 0 if installed, -1 if the previous policy was kept. */
int control_reload(const char *config_path, const struct config *running);

#endif
