/*
 * field.c - the table of fields.
 */
#include <string.h>

#include "field.h"

static const struct field_info fields[FIELD_COUNT] = {
        {"client_ip", FIELD_CLIENT_IP, FIELD_T_IP, STAGE_CONNECT, false, true, true},
        {"client_name", FIELD_CLIENT_NAME, FIELD_T_HOST, STAGE_CONNECT, false, true, true},
        {"client_port", FIELD_CLIENT_PORT, FIELD_T_NUMBER, STAGE_CONNECT, false, true, true},
        {"helo", FIELD_HELO, FIELD_T_HOST, STAGE_HELO, false, true, true},
        {"from", FIELD_FROM, FIELD_T_ADDR, STAGE_MAIL, false, true, true},
        {"from_local", FIELD_FROM_LOCAL, FIELD_T_LOCAL, STAGE_MAIL, false, true, true},
        {"from_domain", FIELD_FROM_DOMAIN, FIELD_T_DOMAIN, STAGE_MAIL, false, true, true},
        {"auth_user", FIELD_AUTH_USER, FIELD_T_STRING, STAGE_MAIL, false, true, true},
        {"rcpt", FIELD_RCPT, FIELD_T_ADDR, STAGE_RCPT, false, true, true},
        {"rcpt_local", FIELD_RCPT_LOCAL, FIELD_T_LOCAL, STAGE_RCPT, false, true, true},
        {"rcpt_domain", FIELD_RCPT_DOMAIN, FIELD_T_DOMAIN, STAGE_RCPT, false, true, true},
        {"rcpt_count", FIELD_RCPT_COUNT, FIELD_T_NUMBER, STAGE_RCPT, false, true, true},
        {"header", FIELD_HEADER, FIELD_T_STRING, STAGE_HEADER, true, true, true},
        {"header_count", FIELD_HEADER_COUNT, FIELD_T_NUMBER, STAGE_HEADER, false, true, true},
        {"body", FIELD_BODY, FIELD_T_STRING, STAGE_BODY, false, true, false},
        {"size", FIELD_SIZE, FIELD_T_NUMBER, STAGE_EOM, false, true, true},
        {"macro", FIELD_MACRO, FIELD_T_STRING, STAGE_CONNECT, true, true, true},
        {"queue_id", FIELD_QUEUE_ID, FIELD_T_STRING, STAGE_CONNECT, false, true, true},
        {"tls_version", FIELD_TLS_VERSION, FIELD_T_STRING, STAGE_HELO, false, true, true},
        {"tagged", FIELD_TAGGED, FIELD_T_BOOL, STAGE_CONNECT, true, true, false},
        {"rule", FIELD_RULE, FIELD_T_STRING, STAGE_CONNECT, false, false, true},
};

const struct field_info *field_by_name(const char *name, size_t len)
{
	for (size_t i = 0; i < FIELD_COUNT; i++)
		if (strlen(fields[i].name) == len && memcmp(fields[i].name, name, len) == 0)
			return &fields[i];
	return NULL;
}

const struct field_info *field_by_id(enum field_id id)
{
	if ((unsigned)id >= FIELD_COUNT)
		return NULL;
	return &fields[id];
}

enum stage field_stage(const struct field_info *f, const char *arg)
{
	static const struct {
		const char *prefix;
		enum stage stage;
	} macros[] = {
	        {"{auth_", STAGE_MAIL},   {"{mail_", STAGE_MAIL},  {"{rcpt_", STAGE_RCPT},
	        {"{tls_", STAGE_HELO},    {"{cipher", STAGE_HELO}, {"{cert_", STAGE_HELO},
	        {"{verify}", STAGE_HELO},
	};

	if (f->id != FIELD_MACRO || arg == NULL)
		return f->stage;
	for (size_t i = 0; i < sizeof(macros) / sizeof(macros[0]); i++)
		if (strncmp(arg, macros[i].prefix, strlen(macros[i].prefix)) == 0)
			return macros[i].stage;
	return STAGE_CONNECT;
}

enum stage field_min_stage(const struct field_info *f, const char *arg)
{
	return f->id == FIELD_SIZE ? STAGE_MAIL : field_stage(f, arg);
}
