/*
 * milter.h - the libmilter callbacks: thin glue between libmilter and the policy core.
 */
#ifndef MP_MILTER_H
#define MP_MILTER_H

#include <stdbool.h>

/* Registers the callbacks with libmilter (smfi_register).  Returns 0 or -1. */
int milter_register(void);

/* From now on, new connections get milter_default_action and new transactions 421 4.3.2:
   a graceful stop waits only for what is in flight. */
void milter_stop_accepting(void);

/* Transactions (MAIL FROM to end of message or abort) in progress now. */
unsigned milter_transactions(void);
/* Connections open now. */
unsigned milter_connections(void);

#endif
