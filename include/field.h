/*
 * field.h - the fields a rule can test or a reply can expand: names, types, and the earliest
 * stage at which each is known.
 */
#ifndef MP_FIELD_H
#define MP_FIELD_H

#include <stdbool.h>
#include <stddef.h>

#include "types.h"

enum field_id {
	FIELD_CLIENT_IP,
	FIELD_CLIENT_NAME,
	FIELD_CLIENT_PORT,
	FIELD_HELO,
	FIELD_FROM,
	FIELD_FROM_LOCAL,
	FIELD_FROM_DOMAIN,
	FIELD_AUTH_USER,
	FIELD_RCPT,
	FIELD_RCPT_LOCAL,
	FIELD_RCPT_DOMAIN,
	FIELD_RCPT_COUNT,
	FIELD_HEADER, /* header("Name") */
	FIELD_HEADER_COUNT,
	FIELD_BODY,
	FIELD_SIZE,
	FIELD_MACRO, /* macro("{name}") */
	FIELD_QUEUE_ID,
	FIELD_TLS_VERSION,
	FIELD_TAGGED, /* tagged("name"): expressions only */
	FIELD_RULE,   /* the matching rule's name: reply text only */
	FIELD_COUNT
};

/* How values compare: == and in are case-insensitive for hosts, addresses and domains. */
enum field_type {
	FIELD_T_IP,     /* client_ip: "in" matches CIDRs */
	FIELD_T_HOST,   /* client_name, helo: case-insensitive; "in" has domain semantics */
	FIELD_T_ADDR,   /* from, rcpt: case-insensitive */
	FIELD_T_LOCAL,  /* from_local, rcpt_local: case-insensitive */
	FIELD_T_DOMAIN, /* from_domain, rcpt_domain: case-insensitive, ".sub" list entries */
	FIELD_T_STRING, /* case-sensitive */
	FIELD_T_NUMBER, /* client_port, rcpt_count, header_count, size */
	FIELD_T_BOOL    /* tagged() */
};

struct field_info {
	const char *name;
	enum field_id id;
	enum field_type type;
	enum stage stage; /* earliest stage at which the value is known */
	bool takes_arg;   /* header("Name"), macro("{x}"), tagged("t") */
	bool in_expr;     /* usable in "when" */
	bool in_template; /* usable as ${name} in replies, headers, log text */
};

/* The earliest stage at which the field is known; for macro("{name}") that depends on the
   macro: {auth_*} and {mail_*} at mail, {rcpt_*} at rcpt, {tls_*}, {cipher*}, {cert_*} and
   {verify} at helo, any other at connect. */
enum stage field_stage(const struct field_info *f, const char *arg);
/* The earliest stage at which the field can be read at all: as field_stage(), except size,
   which reads the client's SIZE= declaration before end of message. */
enum stage field_min_stage(const struct field_info *f, const char *arg);

/* NULL if no field has that name (len bytes, not necessarily NUL-terminated). */
const struct field_info *field_by_name(const char *name, size_t len);
const struct field_info *field_by_id(enum field_id id);

#endif
