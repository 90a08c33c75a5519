/*
 * conn.c - per-connection state and the stage driver: runs a stage's rules in order, applies
 * modifiers, lets the first terminal match decide, and logs each decision.
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <assert.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conn.h"
#include "expr.h"
#include "log.h"
#include "policy.h"
#include "mem.h"

/* An envelope address and its two halves, in one allocation: "full\0local\0domain\0",
   the domain lowercased. */
struct addr {
	char *full;
	const char *local;
	const char *domain;
};

struct header {
	char *name;
	char *value;
};

struct added_header {
	char *name;
	char *value;
};

/* Modifications collected for end of message. */
struct mods {
	struct added_header *headers;
	size_t n, cap;
	char *quarantine;
};

/* How long what a rule set (tags, added headers, quarantine) lasts: set by a connect rule,
   the connection; by a helo rule, until the next HELO (a client says EHLO again after
   STARTTLS, and the MTA tells the filter again); by a later one, the message. */
enum scope { SCOPE_CONNECT, SCOPE_HELO, SCOPE_MESSAGE, SCOPE_COUNT };

/* What an earlier stage decided and later stages must keep answering. */
enum conn_state { CONN_OPEN, CONN_ACCEPTED, CONN_REFUSED, CONN_DISCARD };
enum msg_state { MSG_NONE, MSG_OPEN, MSG_ACCEPTED, MSG_DONE };

struct conn {
	struct policy *policy;
	conn_macro_fn macro;
	void *macro_ctx;

	char *client_name, *client_ip, *helo;
	unsigned client_port;
	bool *tags[SCOPE_COUNT];
	struct mods mods[SCOPE_COUNT];
	enum conn_state conn_state;
	bool helo_decided;    /* conn_state is a helo rule's: a new HELO starts over */
	bool connect_pending; /* a connect rule refused: answer at the next stage */
	const struct rule *pending_rule;
	struct conn_verdict refusal; /* CONN_REFUSED or connect_pending */

	enum msg_state msg_state;
	struct addr from;
	bool has_size;
	unsigned long long size_param;
	struct addr rcpt; /* the recipient being checked at the rcpt stage */
	struct addr *rcpts;
	size_t nrcpts, rcpts_cap;
	struct header *headers;
	size_t nheaders, headers_cap;
	unsigned long long header_bytes;
	unsigned char *body;
	size_t body_len, body_cap;
	unsigned long long body_total;

	enum stage stage;
	const struct rule *rule; /* the rule being evaluated, for ${rule} */
	pcre2_match_data *match_data;
	pcre2_match_context *match_context; /* limits, and this connection's JIT stack */
	pcre2_jit_stack *jit_stack;         /* made on first need */
};

static void addr_set(struct addr *a, const char *text)
{
	size_t len, at;
	char *p, *local, *domain;

	free(a->full);
	while (*text == ' ')
		text++;
	if (*text == '<')
		text++;
	len = strcspn(text, ">");
	p = mem_alloc(2 * len + 3);
	memcpy(p, text, len);
	p[len] = '\0';
	/* split at the last '@'; without one, all of it is the local part */
	for (at = len; at > 0 && p[at - 1] != '@'; at--)
		;
	local = p + len + 1;
	if (at == 0) {
		memcpy(local, p, len + 1);
		domain = local + len;
	} else {
		memcpy(local, p, at - 1);
		local[at - 1] = '\0';
		domain = local + at;
		memcpy(domain, p + at, len - at + 1);
		/* domains are compared lowercased, whatever the client wrote */
		for (char *d = domain; *d != '\0'; d++)
			if (*d >= 'A' && *d <= 'Z')
				*d += 'a' - 'A';
	}
	a->full = p;
	a->local = local;
	a->domain = domain;
}

static void addr_clear(struct addr *a)
{
	free(a->full);
	a->full = NULL;
	a->local = a->domain = NULL;
}

static void mods_clear(struct mods *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->headers[i].name);
		free(m->headers[i].value);
	}
	free(m->headers);
	free(m->quarantine);
	memset(m, 0, sizeof(*m));
}

/* True if the message already gets exactly this header (from this or another rule). */
static bool mods_has_header(const struct mods *m, const char *name, const char *value)
{
	for (size_t i = 0; i < m->n; i++)
		if (strcasecmp(m->headers[i].name, name) == 0 &&
		    strcmp(m->headers[i].value, value) == 0)
			return true;
	return false;
}

static void mods_add_header(struct mods *m, const char *name, const char *value)
{
	mem_grow((void **)&m->headers, m->n, &m->cap, sizeof(*m->headers));
	m->headers[m->n].name = mem_strdup(name);
	m->headers[m->n].value = mem_strdup(value);
	m->n++;
}

static void scope_clear(struct conn *c, enum scope sc)
{
	memset(c->tags[sc], 0, c->policy->ntags * sizeof(bool));
	mods_clear(&c->mods[sc]);
}

static enum scope scope_of(enum stage s)
{
	return s == STAGE_CONNECT ? SCOPE_CONNECT : s == STAGE_HELO ? SCOPE_HELO : SCOPE_MESSAGE;
}

static void message_clear(struct conn *c)
{
	addr_clear(&c->from);
	addr_clear(&c->rcpt);
	for (size_t i = 0; i < c->nrcpts; i++)
		addr_clear(&c->rcpts[i]);
	c->nrcpts = 0;
	for (size_t i = 0; i < c->nheaders; i++) {
		free(c->headers[i].name);
		free(c->headers[i].value);
	}
	c->nheaders = 0;
	c->header_bytes = 0;
	c->body_len = 0;
	if (c->body != NULL)
		c->body[0] = '\0'; /* read as a string too (in, ==): no trace of the last message */
	c->body_total = 0;
	c->has_size = false;
	c->size_param = 0;
	scope_clear(c, SCOPE_MESSAGE);
	c->msg_state = MSG_NONE;
}

/*
 * Regex matching.  The limits keep a pathological pattern from stalling a thread: a match
 * that passes them is a runtime error (on_error).  The interpreter counts depth; JIT code
 * uses its own stack instead, PCRE2's default of 32 KiB of which fails ordinary patterns such
 * as /(ab|cd)+z/ on a few KB of body, so each connection gets one of up to CONN_JIT_STACK_MAX
 * (reserved, not used, until a match needs it).  A connection runs on one thread at a time,
 * so neither is ever shared.
 */
#define CONN_MATCH_LIMIT 1000000
#define CONN_DEPTH_LIMIT 10000
#define CONN_JIT_STACK_MIN (32 * 1024)
#define CONN_JIT_STACK_MAX (4 * 1024 * 1024)

static pcre2_jit_stack *conn_jit_stack(void *arg)
{
	struct conn *c = arg;

	if (c->jit_stack == NULL)
		c->jit_stack = pcre2_jit_stack_create(CONN_JIT_STACK_MIN, CONN_JIT_STACK_MAX, NULL);
	return c->jit_stack; /* NULL: PCRE2 falls back to 32 KiB on the machine stack */
}

static pcre2_match_context *conn_new_match_context(struct conn *c)
{
	pcre2_match_context *m = pcre2_match_context_create(NULL);

	if (m == NULL)
		return NULL;
	pcre2_set_match_limit(m, CONN_MATCH_LIMIT);
	pcre2_set_depth_limit(m, CONN_DEPTH_LIMIT);
	pcre2_jit_stack_assign(m, conn_jit_stack, c);
	return m;
}

struct conn *conn_new(struct policy *p, conn_macro_fn macro, void *macro_ctx)
{
	struct conn *c = calloc(1, sizeof(*c));
	bool ok;

	if (c == NULL)
		return NULL;
	c->macro = macro;
	c->macro_ctx = macro_ctx;
	ok = (c->match_data = pcre2_match_data_create(1, NULL)) != NULL &&
	     (c->match_context = conn_new_match_context(c)) != NULL;
	for (int sc = 0; sc < SCOPE_COUNT; sc++)
		ok = ok && (c->tags[sc] = calloc(p->ntags + 1, sizeof(bool))) != NULL;
	if (!ok) {
		conn_free(c); /* without p: the caller keeps its reference */
		return NULL;
	}
	c->policy = p;
	c->client_ip = mem_strdup("");
	c->client_name = mem_strdup("");
	c->helo = mem_strdup("");
	return c;
}

void conn_free(struct conn *c)
{
	if (c == NULL)
		return;
	if (c->policy != NULL)
		message_clear(c);
	free(c->rcpts);
	free(c->headers);
	free(c->body);
	free(c->client_name);
	free(c->client_ip);
	free(c->helo);
	for (int sc = 0; sc < SCOPE_COUNT; sc++) {
		free(c->tags[sc]);
		mods_clear(&c->mods[sc]);
	}
	pcre2_match_data_free(c->match_data);
	pcre2_match_context_free(c->match_context);
	pcre2_jit_stack_free(c->jit_stack);
	policy_unref(c->policy);
	free(c);
}

const struct policy *conn_policy(const struct conn *c)
{
	return c->policy;
}

void conn_set_macro_ctx(struct conn *c, void *macro_ctx)
{
	c->macro_ctx = macro_ctx;
}

static void set_string(char **dst, const char *src)
{
	free(*dst);
	*dst = mem_strdup(src != NULL ? src : "");
}

void conn_connect(struct conn *c, const char *hostname, const char *ip, unsigned port)
{
	/* Without reverse DNS the MTA passes "[address]": Postfix calls that client "unknown". */
	if (hostname == NULL || hostname[0] == '[' || hostname[0] == '\0')
		hostname = "unknown";
	set_string(&c->client_name, hostname);
	set_string(&c->client_ip, ip);
	c->client_port = port;
}

/* A HELO after another (EHLO again after STARTTLS) is judged afresh: what helo rules
   decided or set for the last one goes; what connect rules did stays. */
void conn_helo(struct conn *c, const char *helo)
{
	set_string(&c->helo, helo);
	scope_clear(c, SCOPE_HELO);
	if (c->helo_decided) {
		c->conn_state = CONN_OPEN;
		c->helo_decided = false;
	}
}

void conn_mail(struct conn *c, char *const *argv)
{
	message_clear(c);
	c->msg_state = MSG_OPEN;
	addr_set(&c->from, argv[0] != NULL ? argv[0] : "");
	for (size_t i = 1; argv[0] != NULL && argv[i] != NULL; i++) {
		char *end;
		if (strncasecmp(argv[i], "SIZE=", 5) != 0)
			continue;
		c->size_param = strtoull(argv[i] + 5, &end, 10);
		c->has_size = end != argv[i] + 5 && *end == '\0';
	}
}

void conn_rcpt(struct conn *c, char *const *argv)
{
	addr_set(&c->rcpt, argv[0] != NULL ? argv[0] : "");
}

void conn_header(struct conn *c, const char *name, const char *value)
{
	struct header *h;

	mem_grow((void **)&c->headers, c->nheaders, &c->headers_cap, sizeof(*c->headers));
	h = &c->headers[c->nheaders++];
	h->name = mem_strdup(name);
	while (*value == ' ' || *value == '\t')
		value++;
	h->value = mem_strdup(value);
	/* Unfold: a folded header reaches us with CRLF (or LF) + white space inside. */
	char *w = h->value;
	for (const char *r = h->value; *r != '\0'; r++)
		if (*r != '\r' && *r != '\n')
			*w++ = *r;
	*w = '\0';
	c->header_bytes += strlen(name) + 2 + strlen(value) + 2;
}

void conn_body(struct conn *c, const unsigned char *chunk, size_t len)
{
	size_t limit = c->policy->body_limit, keep;

	c->body_total += len;
	keep = c->body_len < limit ? limit - c->body_len : 0;
	if (keep > len)
		keep = len;
	if (keep == 0)
		return;
	if (c->body_len + keep + 1 > c->body_cap) {
		size_t cap = c->body_cap * 2 + 65536;
		while (cap < c->body_len + keep + 1)
			cap *= 2;
		c->body = mem_realloc(c->body, cap);
		c->body_cap = cap;
	}
	memcpy(c->body + c->body_len, chunk, keep);
	c->body_len += keep;
	c->body[c->body_len] = '\0';
}

void conn_abort(struct conn *c)
{
	message_clear(c);
}

/* ---- field values ---- */

static const char *macro_value(struct conn *c, const char *name)
{
	const char *v = c->macro != NULL ? c->macro(c->macro_ctx, name) : NULL;

	if (v == NULL) {
		if (log_enabled(LOG_DEBUG))
			log_msg(LOG_DEBUG, "macro %s was not sent by the MTA at stage %s", name,
			        stage_name(c->stage));
		return "";
	}
	return v;
}

static bool each_addr(struct conn *c, enum field_id id, conn_value_fn fn, void *ctx)
{
	const struct addr *list = c->stage == STAGE_RCPT ? &c->rcpt : c->rcpts;
	size_t n = c->stage == STAGE_RCPT ? 1 : c->nrcpts;

	if (n == 0 || list[0].full == NULL)
		return fn("", 0, ctx);
	for (size_t i = 0; i < n; i++) {
		const char *v = id == FIELD_RCPT         ? list[i].full
		                : id == FIELD_RCPT_LOCAL ? list[i].local
		                                         : list[i].domain;
		if (fn(v, strlen(v), ctx))
			return true;
	}
	return false;
}

static bool each_header(struct conn *c, const char *name, conn_value_fn fn, void *ctx)
{
	bool any = false;

	for (size_t i = 0; i < c->nheaders; i++) {
		if (strcasecmp(c->headers[i].name, name) != 0)
			continue;
		any = true;
		if (fn(c->headers[i].value, strlen(c->headers[i].value), ctx))
			return true;
	}
	return any ? false : fn("", 0, ctx);
}

static const char *scalar(struct conn *c, enum field_id id, const char *arg)
{
	const char *from_part[] = {c->from.full, c->from.local, c->from.domain};

	switch (id) {
	case FIELD_CLIENT_IP:
		return c->client_ip;
	case FIELD_CLIENT_NAME:
		return c->client_name;
	case FIELD_HELO:
		return c->helo;
	case FIELD_FROM:
	case FIELD_FROM_LOCAL:
	case FIELD_FROM_DOMAIN: {
		const char *v = from_part[id - FIELD_FROM];
		return v != NULL ? v : "";
	}
	case FIELD_AUTH_USER:
		return macro_value(c, "{auth_authen}");
	case FIELD_MACRO:
		return macro_value(c, arg);
	case FIELD_QUEUE_ID:
		return macro_value(c, "i");
	case FIELD_TLS_VERSION:
		return macro_value(c, "{tls_version}");
	case FIELD_BODY:
		return c->body != NULL ? (const char *)c->body : "";
	case FIELD_RULE:
		return c->rule != NULL ? c->rule->name : "";
	default:
		return NULL;
	}
}

bool conn_each_value(struct conn *c, enum field_id id, const char *arg, conn_value_fn fn, void *ctx)
{
	const char *v;
	unsigned long long n;
	char num[32];

	switch (id) {
	case FIELD_RCPT:
	case FIELD_RCPT_LOCAL:
	case FIELD_RCPT_DOMAIN:
		return each_addr(c, id, fn, ctx);
	case FIELD_HEADER:
		return each_header(c, arg, fn, ctx);
	case FIELD_BODY:
		return fn(scalar(c, id, arg), c->body_len, ctx);
	case FIELD_CLIENT_PORT:
	case FIELD_RCPT_COUNT:
	case FIELD_HEADER_COUNT:
	case FIELD_SIZE:
		if (!conn_number(c, id, &n))
			return false;
		return fn(num, (size_t)snprintf(num, sizeof(num), "%llu", n), ctx);
	default:
		v = scalar(c, id, arg);
		assert(v != NULL);
		return fn(v, strlen(v), ctx);
	}
}

bool conn_number(struct conn *c, enum field_id id, unsigned long long *out)
{
	switch (id) {
	case FIELD_CLIENT_PORT:
		*out = c->client_port;
		return true;
	case FIELD_RCPT_COUNT:
		*out = c->nrcpts;
		return true;
	case FIELD_HEADER_COUNT:
		*out = c->nheaders;
		return true;
	case FIELD_SIZE:
		if (c->stage < STAGE_BODY) {
			*out = c->size_param;
			return c->has_size;
		}
		*out = c->header_bytes + 2 + c->body_total;
		return true;
	default:
		assert(!"not a numeric field");
		return false;
	}
}

bool conn_header_exists(struct conn *c, const char *name)
{
	for (size_t i = 0; i < c->nheaders; i++)
		if (strcasecmp(c->headers[i].name, name) == 0)
			return true;
	return false;
}

bool conn_tagged(const struct conn *c, int tag)
{
	for (int sc = 0; sc < SCOPE_COUNT; sc++)
		if (c->tags[sc][tag])
			return true;
	return false;
}

void *conn_match_data(struct conn *c)
{
	return c->match_data;
}

void *conn_match_context(struct conn *c)
{
	return c->match_context;
}

struct first_value {
	char *buf;
	size_t buflen, len;
	size_t full; /* the whole value's length, for the caller to see it was cut */
	bool joined; /* join several recipients with ", " */
};

static bool copy_value(const char *v, size_t len, void *arg)
{
	struct first_value *f = arg;
	size_t room;

	if (f->full > 0 && f->joined) {
		f->full += 2;
		if (f->len + 2 < f->buflen) {
			memcpy(f->buf + f->len, ", ", 2);
			f->len += 2;
		}
	}
	f->full += len;
	room = f->len < f->buflen ? f->buflen - f->len - 1 : 0;
	memcpy(f->buf + f->len, v, len < room ? len : room);
	f->len += len < room ? len : room;
	f->buf[f->len] = '\0';
	return !f->joined;
}

size_t conn_expand_value(void *conn, enum field_id id, const char *arg, char *buf, size_t len)
{
	struct conn *c = conn;
	struct first_value f = {buf, len, 0, 0, false};

	if (len == 0)
		return 0;
	buf[0] = '\0';
	if (id == FIELD_RULE) {
		snprintf(buf, len, "%s", scalar(c, id, arg));
		return strlen(c->rule != NULL ? c->rule->name : "");
	}
	f.joined = id == FIELD_RCPT || id == FIELD_RCPT_LOCAL || id == FIELD_RCPT_DOMAIN;
	conn_each_value(c, id, arg, copy_value, &f);
	return f.full;
}

/* ---- logging ---- */

/*
 * One line per decision, Postfix-like:
 *   QUEUEID: reject: RCPT from host[192.0.2.7]: 550 5.7.1 <u@example>: text; rule=r from=<a@b>
 * helo=<x> reply is NULL for decisions without one; text is an optional free text after the
 * address.
 */
static void log_event(struct conn *c, const char *what, enum stage s, const struct rule *r,
                      const struct reply_text *reply, const char *text, const char *note)
{
	const char *qid = c->macro != NULL ? c->macro(c->macro_ctx, "i") : NULL;
	const char *addr = s == STAGE_RCPT ? c->rcpt.full : s == STAGE_MAIL ? c->from.full : NULL;
	char line[REPLY_MAX_LINES * REPLY_LINE_MAX], head[64] = "", who[600] = "";

	line[0] = '\0';
	if (reply != NULL) {
		reply_text_format(reply, line, sizeof(line));
		/* "550 5.7.1 text" -> head "550 5.7.1 ", text after it */
		size_t skip =
		        strlen(reply->code) + 1 + (reply->xcode[0] ? strlen(reply->xcode) + 1 : 0);
		snprintf(head, sizeof(head), "%.*s", (int)skip, line);
		text = strlen(line) >= skip ? line + skip : "";
	}
	if (text == NULL)
		text = "";
	if (addr != NULL)
		snprintf(who, sizeof(who), "<%s>%s", addr, *text ? ": " : "");
	log_msg(LOG_INFO, "%s: %s: %s from %s[%s]%s%s%s%s; rule=%s from=<%s> helo=<%s>%s",
	        qid != NULL && *qid ? qid : "NOQUEUE", what, stage_log_name(s), c->client_name,
	        c->client_ip, *head || *who || *text ? ": " : "", head, who, text,
	        r != NULL ? r->name : "-", c->from.full != NULL ? c->from.full : "", c->helo,
	        note != NULL ? note : "");
}

static const char *verdict_word(enum action a)
{
	return action_name(a);
}

/* ---- the stage driver ---- */

static void expand(struct conn *c, const struct reply_template *t, char *buf, size_t len)
{
	if (reply_template_expand(t, conn_expand_value, c, buf, len))
		log_msg(LOG_WARNING, "rule %s: expanded text truncated to %zu octets",
		        c->rule != NULL ? c->rule->name : "-", len - 1);
}

static bool conn_has_added_header(const struct conn *c, const char *name, const char *value)
{
	for (int sc = 0; sc < SCOPE_COUNT; sc++)
		if (mods_has_header(&c->mods[sc], name, value))
			return true;
	return false;
}

/* tag, add_header, log, quarantine: applied when the rule matches, whatever its action. */
static void apply_modifiers(struct conn *c, const struct rule *r, enum stage s)
{
	enum scope sc = scope_of(s);
	struct mods *m = &c->mods[sc];
	char buf[1000];

	if (r->tag >= 0)
		c->tags[sc][r->tag] = true;
	/* A rcpt rule matches once per recipient: each distinct header is added once. */
	for (size_t i = 0; i < r->nadd_headers; i++) {
		expand(c, r->add_header_values[i], buf, sizeof(buf));
		if (!conn_has_added_header(c, r->add_header_names[i], buf))
			mods_add_header(m, r->add_header_names[i], buf);
	}
	if (r->log_text != NULL) {
		expand(c, r->log_text, buf, sizeof(buf));
		log_event(c, "log", s, r, NULL, buf, NULL);
	}
	if (r->quarantine != NULL) {
		expand(c, r->quarantine, buf, sizeof(buf));
		if (m->quarantine != NULL && strcmp(m->quarantine, buf) == 0)
			return; /* the same reason again (another recipient): said already */
		free(m->quarantine);
		m->quarantine = mem_strdup(buf);
		log_event(c, "quarantine", s, r, NULL, buf, NULL);
	}
}

static bool terminal(enum action a)
{
	return a == ACTION_ACCEPT || a == ACTION_REJECT || a == ACTION_TEMPFAIL ||
	       a == ACTION_DISCARD;
}

/* Records what a terminal decision means for later stages, and logs it. */
static void settle(struct conn *c, enum stage s, const struct rule *r, struct conn_verdict *v,
                   const char *note)
{
	bool refusal = v->action == ACTION_REJECT || v->action == ACTION_TEMPFAIL;

	if (refusal && s == STAGE_CONNECT) {
		/* libmilter cannot send text from connect: answer at the next stage. */
		c->connect_pending = true;
		c->pending_rule = r;
		c->refusal = *v;
		v->action = ACTION_CONTINUE;
		return;
	}
	if (refusal && s == STAGE_HELO) {
		c->conn_state = CONN_REFUSED;
		c->refusal = *v;
	}
	if (s == STAGE_HELO &&
	    (refusal || v->action == ACTION_ACCEPT || v->action == ACTION_DISCARD))
		c->helo_decided = true;
	if (v->action == ACTION_ACCEPT && s <= STAGE_HELO) {
		c->conn_state = CONN_ACCEPTED;
		v->connection = true;
	} else if (v->action == ACTION_ACCEPT) {
		c->msg_state = MSG_ACCEPTED;
	}
	if (v->action == ACTION_DISCARD && s <= STAGE_HELO) {
		c->conn_state = CONN_DISCARD;
		v->action = ACTION_CONTINUE; /* no message yet: every message will be discarded */
		log_event(c, "discard", s, r, NULL, "every message of this connection", note);
		return;
	}
	if (v->action == ACTION_DISCARD || (refusal && s >= STAGE_HEADER))
		c->msg_state = MSG_DONE;
	log_event(c, verdict_word(v->action), s, r, refusal ? &v->reply : NULL, NULL, note);
}

/* Answers what an earlier stage decided for the whole connection; true if it did. */
static bool answer_earlier(struct conn *c, enum stage s, struct conn_verdict *v)
{
	if (c->connect_pending && s > STAGE_CONNECT) {
		c->connect_pending = false;
		c->conn_state = CONN_REFUSED;
		*v = c->refusal;
		log_event(c, verdict_word(v->action), STAGE_CONNECT, c->pending_rule, &v->reply,
		          NULL, s == STAGE_HELO ? " (answered at HELO)" : " (answered at MAIL)");
		return true;
	}
	switch (c->conn_state) {
	case CONN_REFUSED:
		*v = c->refusal;
		return true;
	case CONN_ACCEPTED:
		v->action = ACTION_ACCEPT;
		v->connection = true;
		return true;
	case CONN_DISCARD:
		if (s < STAGE_MAIL)
			return false;
		v->action = ACTION_DISCARD;
		if (s == STAGE_MAIL)
			log_event(c, "discard", s, NULL, NULL, "the connection is discarded", NULL);
		return true;
	case CONN_OPEN:
		break;
	}
	if (s >= STAGE_MAIL && c->msg_state == MSG_ACCEPTED) {
		v->action = ACTION_ACCEPT;
		return true;
	}
	return false;
}

void conn_error_verdict(struct conn *c, enum stage s, const char *why, struct conn_verdict *v)
{
	memset(v, 0, sizeof(*v));
	if (c->policy->on_error == ON_ERROR_CONTINUE) {
		log_msg(LOG_ERR, "error at %s from %s[%s]: %s; on_error=continue: going on",
		        stage_log_name(s), c->client_name, c->client_ip, why);
		v->action = ACTION_CONTINUE;
		return;
	}
	log_msg(LOG_ERR, "error at %s from %s[%s]: %s; on_error=tempfail", stage_log_name(s),
	        c->client_name, c->client_ip, why);
	v->action = ACTION_TEMPFAIL;
	snprintf(v->reply.code, sizeof(v->reply.code), "451");
	snprintf(v->reply.xcode, sizeof(v->reply.xcode), "4.3.0");
	v->reply.nlines = 1;
	snprintf(v->reply.lines[0], sizeof(v->reply.lines[0]),
	         "Temporary policy failure, please try again later");
}

/* Evaluates one rule; true if it decided the stage. */
static bool run_rule(struct conn *c, enum stage s, const struct rule *r, struct conn_verdict *v)
{
	char err[256];
	enum expr_result res;

	c->rule = r;
	res = expr_eval(r->when, c, err, sizeof(err));
	if (res == EXPR_ERROR) {
		char why[512];
		snprintf(why, sizeof(why), "rule %s (%s:%d): %s", r->name, r->file, r->line, err);
		conn_error_verdict(c, s, why, v);
		if (v->action == ACTION_CONTINUE)
			return false;
		settle(c, s, r, v, " (on_error)");
		return true;
	}
	if (res == EXPR_FALSE)
		return false;
	if (r->dry_run) {
		char text[1000] = "", what[1100];
		if (r->log_text != NULL)
			expand(c, r->log_text, text, sizeof(text));
		snprintf(what, sizeof(what), "would %s%s%s", action_name(r->action),
		         text[0] ? ": " : "", text);
		log_event(c, "dry-run", s, r, NULL, what, " (not applied)");
		return false;
	}
	apply_modifiers(c, r, s);
	if (!terminal(r->action)) {
		if (r->log_text == NULL && r->quarantine == NULL && log_enabled(LOG_DEBUG))
			log_event(c, "match", s, r, NULL, NULL, NULL);
		return false;
	}
	v->action = r->action;
	if (r->reply != NULL)
		reply_render(r->reply, conn_expand_value, c, &v->reply);
	if (v->reply.truncated)
		log_msg(LOG_WARNING, "rule %s: reply text truncated to fit an SMTP reply line",
		        r->name);
	settle(c, s, r, v, NULL);
	return true;
}

void conn_run(struct conn *c, enum stage s, struct conn_verdict *v)
{
	const struct policy *p = c->policy;

	memset(v, 0, sizeof(*v));
	v->action = ACTION_CONTINUE;
	c->stage = s;
	if (answer_earlier(c, s, v))
		return;
	if (s >= STAGE_MAIL && c->msg_state == MSG_DONE)
		return;
	for (size_t i = 0; i < p->nstage_rules[s]; i++)
		if (run_rule(c, s, p->stage_rules[s][i], v))
			break;
	c->rule = NULL;
	if (s == STAGE_RCPT && v->action != ACTION_REJECT && v->action != ACTION_TEMPFAIL) {
		mem_grow((void **)&c->rcpts, c->nrcpts, &c->rcpts_cap, sizeof(*c->rcpts));
		c->rcpts[c->nrcpts++] = c->rcpt;
		c->rcpt = (struct addr){NULL, NULL, NULL};
	}
}

void conn_close(struct conn *c)
{
	/* A connect rule refused, and the client left before any stage could say so. */
	if (c->connect_pending) {
		c->connect_pending = false;
		log_event(c, action_name(c->refusal.action), STAGE_CONNECT, c->pending_rule,
		          &c->refusal.reply, NULL, " (client left before the answer)");
	}
}

bool conn_wants_eom(const struct conn *c)
{
	return conn_add_header_count(c) > 0 || conn_quarantine_reason(c) != NULL;
}

size_t conn_add_header_count(const struct conn *c)
{
	size_t n = 0;

	for (int sc = 0; sc < SCOPE_COUNT; sc++)
		n += c->mods[sc].n;
	return n;
}

void conn_add_header_get(const struct conn *c, size_t i, const char **name, const char **value)
{
	int sc = 0;

	assert(i < conn_add_header_count(c));
	for (; i >= c->mods[sc].n; sc++)
		i -= c->mods[sc].n;
	*name = c->mods[sc].headers[i].name;
	*value = c->mods[sc].headers[i].value;
}

const char *conn_quarantine_reason(const struct conn *c)
{
	/* the latest: a message's reason over a helo rule's over a connect rule's */
	for (int sc = SCOPE_COUNT - 1; sc >= 0; sc--)
		if (c->mods[sc].quarantine != NULL)
			return c->mods[sc].quarantine;
	return NULL;
}
