#!/bin/bash
# End-to-end test: a private Sendmail 8.17 (Debian's packages unpacked, never installed) on
# 127.0.0.1 with milter-policy as INPUT_MAIL_FILTER (F=T), relaying to an smtp-sink, driven
# by swaks. Prints "ok - ..."/"not ok - ..." per check and "N passed, N failed"; exits 1 if
# any check failed. Needs root, unshare and, on the first run, apt-get download. See README.md.
[ -n "$BASH_VERSION" ] || exec bash "$0" "$@"

. "$(dirname "$0")/lib.sh"

E2E_MTA=sendmail

e2e_mta_rcpt_ok() {
	echo "250 2.1.5 <$1>... Recipient ok"
}

e2e_mta_queue_id() {
	printf '%s\n' "$1" | sed -n 's/^250 2\.0\.0 \([0-9A-Za-z]\{8,\}\) Message accepted for delivery$/\1/p'
}

e2e_mta_held() {
	e2e_sendmail_quarantined | awk -v id="$1" '
		$1 == id { on = 1; next }
		on && /QUARANTINE: held by e2e/ { found = 1 }
		{ on = 0 }
		END { exit !found }'
}

# A queued message has a qf (or hf/Qf) file named after its id.
e2e_mta_queued() {
	ls "$E2E_TMP/sendmail/queue" 2>/dev/null | grep -q -- "$1\$"
}

# Sendmail's ids are 14 characters (time-encoded prefix and pid); without syslog there is
# no log to compare with, so check the form.
e2e_mta_check_queue_id() {
	e2e_true "$1: queue id $2 has Sendmail's form" eval "printf '%s' '$2' | grep -qE '^[0-9A-Za-z]{14}$'"
}

e2e_init
e2e_daemon_start
e2e_sink_start
e2e_sendmail_start

e2e_policy_checks

# Daemon down: F=T makes Sendmail tempfail every transaction with its own text.
e2e_daemon_stop
e2e_swaks down-tempfail --from a@e2e.test --to ok@e2e.test
e2e_check_reply "daemon down, F=T: MAIL FROM" "MAIL FROM:" "451 4.3.2 Please try again later"

e2e_summary
