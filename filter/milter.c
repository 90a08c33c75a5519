/*
 * milter.c - libmilter callbacks.  Each one hands what the MTA sent to the connection state
 * (conn.c), runs the stage, and turns the verdict into a milter reply.  No policy logic here.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libmilter/mfapi.h>

#include "conn.h"
#include "log.h"
#include "milter.h"
#include "policy.h"

/* libmilter refuses a reply line longer than this once '%' is doubled. */
#define MILTER_REPLY_MAX 980

static unsigned transactions; /* atomic */
static unsigned connections;  /* atomic */
static bool stopping;         /* atomic: no new connections or transactions */

void milter_stop_accepting(void)
{
	__atomic_store_n(&stopping, true, __ATOMIC_RELAXED);
}

static bool is_stopping(void)
{
	return __atomic_load_n(&stopping, __ATOMIC_RELAXED);
}

unsigned milter_transactions(void)
{
	return __atomic_load_n(&transactions, __ATOMIC_RELAXED);
}

unsigned milter_connections(void)
{
	return __atomic_load_n(&connections, __ATOMIC_RELAXED);
}

static const char *macro_get(void *ctx, const char *name)
{
	return smfi_getsymval(ctx, (char *)name);
}

/* What libmilter keeps for us per connection (smfi_setpriv). */
struct session {
	struct conn *conn;
	bool in_transaction; /* counted in transactions */
};

/* The connection's state, bound to this callback's context; NULL if there is none. */
static struct session *session_of(SMFICTX *ctx)
{
	struct session *ss = smfi_getpriv(ctx);

	if (ss != NULL)
		conn_set_macro_ctx(ss->conn, ctx);
	return ss;
}

static struct session *session_start(SMFICTX *ctx)
{
	struct policy *p = policy_current();
	struct session *ss = calloc(1, sizeof(*ss));

	if (p == NULL || ss == NULL || (ss->conn = conn_new(p, macro_get, ctx)) == NULL) {
		policy_unref(p); /* conn_new took it only if it succeeded */
		free(ss);
		return NULL;
	}
	smfi_setpriv(ctx, ss);
	__atomic_add_fetch(&connections, 1, __ATOMIC_RELAXED);
	return ss;
}

static void transaction_begin(struct session *ss)
{
	if (!ss->in_transaction) {
		ss->in_transaction = true;
		__atomic_add_fetch(&transactions, 1, __ATOMIC_RELAXED);
	}
}

static void transaction_end(struct session *ss)
{
	if (ss->in_transaction) {
		ss->in_transaction = false;
		__atomic_sub_fetch(&transactions, 1, __ATOMIC_RELAXED);
	}
}

static void set_reply(SMFICTX *ctx, const struct reply_text *r)
{
	char esc[REPLY_MAX_LINES][2 * REPLY_LINE_MAX + 1];
	char *l[REPLY_MAX_LINES + 1] = {0};
	int rc;

	for (size_t i = 0; i < r->nlines; i++) {
		reply_escape_percent(r->lines[i], esc[i], sizeof(esc[i]));
		if (strlen(esc[i]) > MILTER_REPLY_MAX - 16) {
			size_t cut = MILTER_REPLY_MAX - 16;
			/* never leave a lone '%' at the cut */
			size_t pct = 0;
			for (size_t k = cut; k > 0 && esc[i][k - 1] == '%'; k--)
				pct++;
			esc[i][cut - (pct % 2)] = '\0';
			log_msg(LOG_WARNING,
			        "reply %s %s: line %zu cut to %zu octets: with each '%%' "
			        "doubled it passed libmilter's limit of %d",
			        r->code, r->xcode, i + 1, cut - (pct % 2), MILTER_REPLY_MAX);
		}
		l[i] = esc[i];
	}
	if (r->nlines <= 1)
		rc = smfi_setreply(ctx, (char *)r->code, r->xcode[0] ? (char *)r->xcode : NULL,
		                   r->nlines ? l[0] : NULL);
	else
		rc = smfi_setmlreply(ctx, r->code, r->xcode[0] ? r->xcode : NULL, l[0], l[1], l[2],
		                     l[3], l[4], l[5], l[6], l[7], l[8], l[9], l[10], l[11], l[12],
		                     l[13], l[14], l[15], l[16], l[17], l[18], l[19], l[20], l[21],
		                     l[22], l[23], l[24], l[25], l[26], l[27], l[28], l[29], l[30],
		                     l[31], (char *)NULL);
	if (rc != MI_SUCCESS)
		log_msg(LOG_ERR,
		        "libmilter refused the reply %s %s %s: the MTA answers with its own "
		        "text",
		        r->code, r->xcode, r->lines[0]);
}

static sfsistat answer(SMFICTX *ctx, struct conn *c, enum stage s, const struct conn_verdict *v)
{
	switch (v->action) {
	case ACTION_CONTINUE:
		return SMFIS_CONTINUE;
	case ACTION_ACCEPT:
		/* Modifications wait for end of message: keep the callbacks coming till then. */
		if (s < STAGE_EOM && conn_wants_eom(c))
			return SMFIS_CONTINUE;
		return SMFIS_ACCEPT;
	case ACTION_REJECT:
		set_reply(ctx, &v->reply);
		return SMFIS_REJECT;
	case ACTION_TEMPFAIL:
		set_reply(ctx, &v->reply);
		return SMFIS_TEMPFAIL;
	case ACTION_DISCARD:
		return SMFIS_DISCARD;
	case ACTION_QUARANTINE:
		break;
	}
	return SMFIS_CONTINUE;
}

/* A callback without its connection state (it could not be allocated): tempfail. */
/* A runtime error without a connection to answer for: what on_error says. */
static sfsistat no_state(const char *where)
{
	struct policy *p = policy_current();
	bool go_on = p != NULL && p->on_error == ON_ERROR_CONTINUE;

	policy_unref(p);
	log_msg(LOG_ERR, "%s: no connection state (out of memory?); on_error=%s", where,
	        go_on ? "continue" : "tempfail");
	return go_on ? SMFIS_CONTINUE : SMFIS_TEMPFAIL;
}

static sfsistat run(SMFICTX *ctx, struct session *ss, enum stage s)
{
	struct conn_verdict v;
	sfsistat rc;

	conn_run(ss->conn, s, &v);
	rc = answer(ctx, ss->conn, s, &v);
	/* The message is over when decided, except that a refused recipient refuses only itself;
	   the MTA sends no abort for a message the filter decided. */
	if (s >= STAGE_MAIL && rc != SMFIS_CONTINUE &&
	    !(s == STAGE_RCPT && (rc == SMFIS_REJECT || rc == SMFIS_TEMPFAIL)))
		transaction_end(ss);
	return rc;
}

static sfsistat cb_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2,
                             unsigned long f3, unsigned long *pf0, unsigned long *pf1,
                             unsigned long *pf2, unsigned long *pf3)
{
	/* libmilter's stage numbers for smfi_setsymlist, and our stage for each */
	static const struct {
		int where;
		enum stage stage;
	} symlists[] = {
	        {SMFIM_CONNECT, STAGE_CONNECT}, {SMFIM_HELO, STAGE_HELO},
	        {SMFIM_ENVFROM, STAGE_MAIL},    {SMFIM_ENVRCPT, STAGE_RCPT},
	        {SMFIM_DATA, STAGE_HEADER},     {SMFIM_EOH, STAGE_HEADER},
	        {SMFIM_EOM, STAGE_EOM},
	};
	struct session *ss;
	const struct policy *p;

	if (is_stopping())
		return SMFIS_REJECT; /* the MTA's milter_default_action applies */
	ss = smfi_getpriv(ctx) ? session_of(ctx) : session_start(ctx);
	(void)f2;
	(void)f3;
	if (ss == NULL) {
		/* Without state this connection cannot be filtered: the MTA's
		   milter_default_action applies. */
		log_msg(LOG_ERR, "negotiate: no connection state (out of memory?)");
		return SMFIS_REJECT;
	}
	p = conn_policy(ss->conn);
	*pf0 = (SMFIF_ADDHDRS | SMFIF_QUARANTINE | SMFIF_SETSYMLIST) & f0;
	/* Every stage with a reply (never SMFIP_NR_*): any stage may refuse. */
	*pf1 = (SMFIP_NOUNKNOWN | SMFIP_NODATA) & f1;
	*pf2 = 0;
	*pf3 = 0;
	if (f0 & SMFIF_SETSYMLIST)
		for (size_t i = 0; i < sizeof(symlists) / sizeof(symlists[0]); i++)
			if (smfi_setsymlist(ctx, symlists[i].where, p->macros[symlists[i].stage]) !=
			    MI_SUCCESS)
				log_msg(LOG_WARNING, "could not ask the MTA for macros '%s'",
				        p->macros[symlists[i].stage]);
	return SMFIS_CONTINUE;
}

static void format_ip(const struct sockaddr *sa, char *ip, size_t len, unsigned *port)
{
	ip[0] = '\0';
	*port = 0;
	if (sa == NULL)
		return;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, ip, len);
		*port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, len);
		*port = ntohs(in6->sin6_port);
	}
}

static sfsistat cb_connect(SMFICTX *ctx, char *hostname, _SOCK_ADDR *sa)
{
	struct session *ss = smfi_getpriv(ctx) ? session_of(ctx) : session_start(ctx);
	char ip[INET6_ADDRSTRLEN];
	unsigned port;

	if (ss == NULL)
		return no_state("connect");
	format_ip(sa, ip, sizeof(ip), &port);
	if (ip[0] == '\0') {
		/* no socket address (a local submission): the MTA's macro, if any */
		const char *m = smfi_getsymval(ctx, "{client_addr}");
		snprintf(ip, sizeof(ip), "%s", m != NULL ? m : "");
	}
	conn_connect(ss->conn, hostname, ip, port);
	return run(ctx, ss, STAGE_CONNECT);
}

static sfsistat cb_helo(SMFICTX *ctx, char *helo)
{
	struct session *ss = session_of(ctx);

	if (ss == NULL)
		return no_state("helo");
	conn_helo(ss->conn, helo);
	return run(ctx, ss, STAGE_HELO);
}

static sfsistat cb_envfrom(SMFICTX *ctx, char **argv)
{
	struct session *ss = session_of(ctx);

	if (ss == NULL)
		return no_state("mail");
	if (is_stopping()) {
		/* 421: the client retries later, elsewhere or after the restart */
		smfi_setreply(ctx, "421", "4.3.2", "Service shutting down, try again later");
		return SMFIS_TEMPFAIL;
	}
	/* xxfi_abort is not called after a message the filter already decided: start afresh. */
	transaction_begin(ss);
	conn_mail(ss->conn, argv);
	return run(ctx, ss, STAGE_MAIL);
}

static sfsistat cb_envrcpt(SMFICTX *ctx, char **argv)
{
	struct session *ss = session_of(ctx);

	if (ss == NULL)
		return no_state("rcpt");
	conn_rcpt(ss->conn, argv);
	return run(ctx, ss, STAGE_RCPT);
}

static sfsistat cb_header(SMFICTX *ctx, char *name, char *value)
{
	struct session *ss = session_of(ctx);

	if (ss == NULL)
		return no_state("header");
	conn_header(ss->conn, name, value);
	return SMFIS_CONTINUE;
}

static sfsistat cb_eoh(SMFICTX *ctx)
{
	struct session *ss = session_of(ctx);

	if (ss == NULL)
		return no_state("end of headers");
	return run(ctx, ss, STAGE_HEADER);
}

static sfsistat cb_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
	struct session *ss = session_of(ctx);

	if (ss == NULL)
		return no_state("body");
	conn_body(ss->conn, chunk, len);
	return SMFIS_CONTINUE;
}

/* add_header and quarantine, at the one callback where libmilter allows them. */
static void apply_modifications(SMFICTX *ctx, struct conn *c)
{
	const char *reason = conn_quarantine_reason(c);

	for (size_t i = 0; i < conn_add_header_count(c); i++) {
		const char *name, *value;
		conn_add_header_get(c, i, &name, &value);
		if (smfi_addheader(ctx, (char *)name, (char *)value) != MI_SUCCESS)
			log_msg(LOG_ERR, "could not add header %s: the MTA refused it", name);
	}
	if (reason != NULL && smfi_quarantine(ctx, (char *)reason) != MI_SUCCESS)
		log_msg(LOG_ERR, "could not quarantine the message: the MTA refused it");
}

static sfsistat cb_eom(SMFICTX *ctx)
{
	struct session *ss = session_of(ctx);
	struct conn_verdict v;

	if (ss == NULL)
		return no_state("end of message");
	conn_run(ss->conn, STAGE_BODY, &v);
	if (v.action == ACTION_CONTINUE)
		conn_run(ss->conn, STAGE_EOM, &v);
	if (v.action == ACTION_CONTINUE || v.action == ACTION_ACCEPT)
		apply_modifications(ctx, ss->conn);
	transaction_end(ss);
	conn_abort(ss->conn); /* the message is done: its state goes */
	return answer(ctx, ss->conn, STAGE_EOM, &v);
}

static sfsistat cb_abort(SMFICTX *ctx)
{
	struct session *ss = session_of(ctx);

	if (ss != NULL) {
		transaction_end(ss);
		conn_abort(ss->conn);
	}
	return SMFIS_CONTINUE;
}

static sfsistat cb_close(SMFICTX *ctx)
{
	struct session *ss = smfi_getpriv(ctx);

	if (ss != NULL) {
		transaction_end(ss);
		conn_set_macro_ctx(ss->conn, ctx);
		conn_close(ss->conn);
		conn_free(ss->conn);
		free(ss);
		smfi_setpriv(ctx, NULL);
		__atomic_sub_fetch(&connections, 1, __ATOMIC_RELAXED);
	}
	return SMFIS_CONTINUE;
}

int milter_register(void)
{
	struct smfiDesc desc = {
	        .xxfi_name = "milter-policy",
	        .xxfi_version = SMFI_VERSION,
	        .xxfi_flags = SMFIF_ADDHDRS | SMFIF_QUARANTINE | SMFIF_SETSYMLIST,
	        .xxfi_connect = cb_connect,
	        .xxfi_helo = cb_helo,
	        .xxfi_envfrom = cb_envfrom,
	        .xxfi_envrcpt = cb_envrcpt,
	        .xxfi_header = cb_header,
	        .xxfi_eoh = cb_eoh,
	        .xxfi_body = cb_body,
	        .xxfi_eom = cb_eom,
	        .xxfi_abort = cb_abort,
	        .xxfi_close = cb_close,
	        .xxfi_negotiate = cb_negotiate,
	};

	return smfi_register(desc) == MI_SUCCESS ? 0 : -1;
}
