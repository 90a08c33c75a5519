#!/bin/bash
# End-to-end test: a private Postfix 3.7 on 127.0.0.1 with milter-policy as its smtpd milter,
# relaying to an smtp-sink, driven by swaks. Prints "ok - ..."/"not ok - ..." per check and
# "N passed, N failed"; exits 1 if any check failed. Needs root. See README.md.
[ -n "$BASH_VERSION" ] || exec bash "$0" "$@"

. "$(dirname "$0")/lib.sh"

E2E_MTA=postfix

e2e_mta_rcpt_ok() {
	echo "250 2.1.5 Ok"
}

e2e_mta_queue_id() {
	printf '%s\n' "$1" | sed -n 's/^250 2\.0\.0 Ok: queued as \([0-9A-F]\{6,\}\)$/\1/p'
}

e2e_mta_held() {
	e2e_postfix_queue_json | grep -qF "\"queue_name\": \"hold\", \"queue_id\": \"$1\""
}

e2e_mta_queued() {
	e2e_postfix_queue_json | grep -qF "\"queue_id\": \"$1\""
}

# The id in the reply text is the one Postfix logs for the rejected message.
e2e_mta_check_queue_id() {
	e2e_true "$1: queue id $2 is Postfix's (log)" \
		grep -q "postfix/cleanup\[[0-9]*\]: $2: milter-reject: END-OF-MESSAGE" "$PF_LOG"
}

e2e_init
e2e_daemon_start
e2e_sink_start
# Two more smtpd services share the instance to test milter_default_action values other
# than the default (tempfail) while the daemon is down.
PF_ACCEPT_PORT=$(e2e_free_port)
PF_REJECT_PORT=$(e2e_free_port)
e2e_postfix_start \
	"127.0.0.1:$PF_ACCEPT_PORT/inet = 127.0.0.1:$PF_ACCEPT_PORT inet n - n - - smtpd -o milter_default_action=accept" \
	"127.0.0.1:$PF_REJECT_PORT/inet = 127.0.0.1:$PF_REJECT_PORT inet n - n - - smtpd -o milter_default_action=reject"
e2e_wait 15 e2e_port_open "$PF_ACCEPT_PORT" || e2e_fatal "extra smtpd on $PF_ACCEPT_PORT not listening"
e2e_wait 15 e2e_port_open "$PF_REJECT_PORT" || e2e_fatal "extra smtpd on $PF_REJECT_PORT not listening"

e2e_policy_checks

# EHLO, STARTTLS, EHLO again: Postfix tells the milter about both EHLOs; the header added by
# the helo rule comes from the second, encrypted one only.
m="tls-$$"
E2E_HELO=tls-check.e2e.test e2e_swaks tls --tls --from a@e2e.test --to ok@e2e.test \
	--header "Subject: E2E-TLS $m"
e2e_true "STARTTLS: message accepted" [ -n "$(e2e_accepted_id)" ]
if e2e_sink_wait "E2E-TLS $m"; then
	f=$(e2e_sink_find "E2E-TLS $m")
	e2e_check "STARTTLS: one TLS header, from the EHLO after STARTTLS" "1 1" \
		"$(grep -c '^X-E2E-TLS: ' "$f") $(grep '^X-E2E-TLS: ' "$f" | grep -c '\[TLSv1\.[23]\]')"
else
	e2e_notok "STARTTLS: message did not reach the sink"
fi

# {i} at MAIL: Postfix has no queue id before the first accepted RCPT; its own log says
# NOQUEUE for the MAIL reject.
e2e_true "mail reject logged as NOQUEUE by Postfix" \
	grep -q 'NOQUEUE: milter-reject: MAIL from [^:]*: 450 4.7.1 Sender tempfail@e2e.test deferred' "$PF_LOG"

# Daemon down: Postfix applies milter_default_action (tempfail by default in 3.7; the
# connect and HELO answers are held back until MAIL FROM like any other).
e2e_daemon_stop
m="down-$$"
e2e_swaks down-tempfail --from a@e2e.test --to ok@e2e.test --header "Subject: E2E-DOWN-T $m"
e2e_check_reply "daemon down, milter_default_action=tempfail: MAIL FROM" "MAIL FROM:" \
	"451 4.7.1 Service unavailable - try again later"
SMTP_PORT=$PF_REJECT_PORT e2e_swaks down-reject --from a@e2e.test --to ok@e2e.test
# A 5xx default action hits the connect stage first: Postfix's own 554 greeting, as for a
# milter reject at connect (the log has "550 5.5.0 Service unavailable").
e2e_check_reply "daemon down, milter_default_action=reject: 554 greeting" "BANNER" \
	"554 postfix.e2e.test ESMTP not accepting connections"
SMTP_PORT=$PF_ACCEPT_PORT e2e_swaks down-accept --from a@e2e.test --to ok@e2e.test \
	--header "Subject: E2E-DOWN-A $m"
e2e_true "daemon down, milter_default_action=accept: message accepted" [ -n "$(e2e_accepted_id)" ]
if e2e_sink_wait "E2E-DOWN-A $m"; then
	e2e_ok "daemon down, milter_default_action=accept: delivered"
	e2e_true "daemon down, milter_default_action=accept: no add_header header" \
		eval "! grep -q '^X-E2E-Checked:' '$(e2e_sink_find "E2E-DOWN-A $m")'"
else
	e2e_notok "daemon down, milter_default_action=accept: delivered"
fi

e2e_summary
