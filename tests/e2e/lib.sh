# Shared functions for the end-to-end tests: a private Postfix or Sendmail on 127.0.0.1 with
# milter-policy attached, an smtp-sink behind it, swaks as the client.
#
# Everything lives in one mktemp directory ($E2E_TMP); every process started here is recorded
# by pid (each runs as its own process group) and stopped by e2e_cleanup, which a trap runs on
# any exit. Waits are bounded polls, never fixed sleeps.
#
# Sourced by bash scripts (test_postfix.sh, test_sendmail.sh).

E2E_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MP_DAEMON=${MP_DAEMON:-$(cd "$E2E_SRC/../.." && pwd)/filter/milter-policy}
E2E_RULES=${E2E_RULES:-$E2E_SRC/policies/e2e.rules}
E2E_PASSED=0
E2E_FAILED=0
E2E_PGIDS=""
E2E_POSTFIX_CONF=""
E2E_KEEP=${E2E_KEEP:-}

# --- reporting -------------------------------------------------------------------------------

e2e_ok() {
	E2E_PASSED=$((E2E_PASSED + 1))
	echo "ok - $*"
}

e2e_notok() {
	E2E_FAILED=$((E2E_FAILED + 1))
	echo "not ok - $*"
}

# e2e_check NAME EXPECTED ACTUAL: exact comparison; shows both on failure.
e2e_check() {
	if [ "$2" = "$3" ]; then
		e2e_ok "$1"
	else
		e2e_notok "$1"
		printf '#   expected: %s\n' "$2" | sed '2,$s/^/#             /'
		printf '#   got:      %s\n' "$3" | sed '2,$s/^/#             /'
	fi
}

# e2e_true NAME COMMAND...: passes if COMMAND succeeds.
e2e_true() {
	local name=$1
	shift
	if "$@"; then
		e2e_ok "$name"
	else
		e2e_notok "$name"
	fi
}

# e2e_fatal MESSAGE: a precondition is missing; count it as a failure and stop.
e2e_fatal() {
	echo "# FATAL: $*" >&2
	e2e_notok "setup: $*"
	e2e_summary
	exit 1
}

e2e_summary() {
	echo "$E2E_PASSED passed, $E2E_FAILED failed"
	[ "$E2E_FAILED" -eq 0 ]
}

# --- setup and cleanup -----------------------------------------------------------------------

e2e_init() {
	[ "$(id -u)" -eq 0 ] || e2e_fatal "the e2e tests run MTAs and need root"
	E2E_TMP=$(mktemp -d /tmp/mp-e2e.XXXXXX) || e2e_fatal "mktemp failed"
	# Postfix and Sendmail daemons running as other users must traverse it.
	chmod 755 "$E2E_TMP"
	trap e2e_cleanup EXIT
	trap 'exit 130' INT TERM HUP
	e2e_need python3 swaks
}

e2e_need() {
	local p
	for p in "$@"; do
		command -v "$p" >/dev/null 2>&1 || e2e_fatal "required program '$p' not found"
	done
}

e2e_cleanup() {
	local rc=$? g
	trap - EXIT INT TERM HUP
	[ -n "$E2E_POSTFIX_CONF" ] && e2e_postfix_stop
	for g in $E2E_PGIDS; do
		e2e_stop_group "$g"
	done
	if [ "$rc" -ne 0 ] || [ -n "$E2E_KEEP" ]; then
		e2e_dump_logs
	fi
	if [ -n "$E2E_KEEP" ]; then
		echo "# kept $E2E_TMP" >&2
	elif [ -n "${E2E_TMP:-}" ]; then
		rm -rf "$E2E_TMP"
	fi
	exit "$rc"
}

# Logs help only when something failed: print their tails as TAP comments.
e2e_dump_logs() {
	local f
	for f in "$E2E_TMP"/*.log "$E2E_TMP"/*/*.log; do
		[ -s "$f" ] || continue
		echo "# ---- ${f#"$E2E_TMP"/} (last 40 lines)"
		tail -n 40 "$f" | sed 's/^/# /'
	done
}

# e2e_wait SECONDS COMMAND...: poll COMMAND every 0.1 s until it succeeds or time runs out.
e2e_wait() {
	local n=$(($1 * 10))
	shift
	while [ "$n" -gt 0 ]; do
		"$@" && return 0
		sleep 0.1
		n=$((n - 1))
	done
	"$@"
}

e2e_port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

e2e_port_closed() {
	! e2e_port_open "$1"
}

e2e_free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# e2e_spawn LOGFILE COMMAND...: start COMMAND in the background as its own process group and
# record it; prints nothing, sets E2E_LAST_PID.
e2e_spawn() {
	local log=$1
	shift
	# A background job of a non-interactive shell is no group leader, so setsid does not
	# fork and $! is the command itself.
	setsid "$@" >"$log" 2>&1 </dev/null &
	E2E_LAST_PID=$!
	E2E_PGIDS="$E2E_PGIDS $E2E_LAST_PID"
}

e2e_alive() {
	kill -0 "$1" 2>/dev/null
}

e2e_group_alive() {
	kill -0 -- "-$1" 2>/dev/null
}

# e2e_stop_group PGID [SECONDS]: TERM the group, wait up to SECONDS (default 10), then KILL
# it. Returns the exit status of the group leader (137 or so if it had to be killed).
e2e_stop_group() {
	local g=$1 rc
	if e2e_group_alive "$g"; then
		kill -TERM -- "-$g" 2>/dev/null
		if ! e2e_wait "${2:-10}" eval "! e2e_group_alive $g"; then
			echo "# process group $g did not stop on SIGTERM; killing it" >&2
			kill -KILL -- "-$g" 2>/dev/null
		fi
	fi
	wait "$g" 2>/dev/null
	rc=$?
	E2E_PGIDS=$(echo "$E2E_PGIDS" | tr ' ' '\n' | grep -vx "$g" | tr '\n' ' ')
	return $rc
}

# --- the daemon ------------------------------------------------------------------------------

# e2e_daemon_start: start $MP_DAEMON on a fresh loopback port with the e2e rules.
# Sets MP_PORT (kept across restarts) and MP_PID.
e2e_daemon_start() {
	[ -x "$MP_DAEMON" ] || e2e_fatal "daemon $MP_DAEMON not found or not executable (set MP_DAEMON)"
	[ -r "$E2E_RULES" ] || e2e_fatal "rule file $E2E_RULES not readable"
	MP_PORT=${MP_PORT:-$(e2e_free_port)}
	cat >"$E2E_TMP/milter-policy.conf" <<EOF
socket = "inet:$MP_PORT@127.0.0.1"
allow_root = true
log_level = debug
policies = { "$E2E_RULES" }
EOF
	# Environment variables named like fields: a text that shows ENV-LEAK was expanded by
	# libconfuse from the environment at load time, not by the daemon from the session.
	e2e_spawn "$E2E_TMP/daemon.log" env client_ip=ENV-LEAK helo=ENV-LEAK from=ENV-LEAK \
		rcpt=ENV-LEAK rule=ENV-LEAK queue_id=ENV-LEAK \
		"$MP_DAEMON" -f -c "$E2E_TMP/milter-policy.conf"
	MP_PID=$E2E_LAST_PID
	if ! e2e_wait 10 e2e_port_open "$MP_PORT"; then
		cat "$E2E_TMP/daemon.log" >&2
		e2e_fatal "daemon did not listen on 127.0.0.1:$MP_PORT within 10 s"
	fi
}

# e2e_daemon_stop: SIGTERM; checks that the daemon stops by itself with exit status 0
# (SPEC: 0 is a clean stop) and its port closes.
e2e_daemon_stop() {
	local rc
	e2e_stop_group "$MP_PID"
	rc=$?
	e2e_check "daemon stops on SIGTERM with exit status 0" 0 "$rc"
	e2e_wait 5 e2e_port_closed "$MP_PORT" || e2e_fatal "port $MP_PORT still open after the daemon stopped"
}

# --- the sink --------------------------------------------------------------------------------

# e2e_sink_start: smtp-sink on a fresh port, one file per message in $E2E_TMP/sink/.
e2e_sink_start() {
	local sink=/usr/sbin/smtp-sink
	[ -x "$sink" ] || e2e_fatal "$sink not found (Debian package postfix)"
	SINK_PORT=$(e2e_free_port)
	SINK_DIR=$E2E_TMP/sink
	mkdir -p "$SINK_DIR"
	chown nobody "$SINK_DIR"
	# smtp-sink refuses to run as root without -u.
	e2e_spawn "$E2E_TMP/sink.log" "$sink" -u nobody -d "$SINK_DIR/msg." "127.0.0.1:$SINK_PORT" 32
	SINK_PID=$E2E_LAST_PID
	e2e_wait 10 e2e_port_open "$SINK_PORT" || e2e_fatal "smtp-sink did not listen on port $SINK_PORT"
}

# e2e_sink_find MARKER: print the sink file that contains MARKER (a unique string).
e2e_sink_find() {
	grep -lF -- "$1" "$SINK_DIR"/msg.* 2>/dev/null | head -n 1
}

e2e_sink_has() {
	[ -n "$(e2e_sink_find "$1")" ]
}

# e2e_sink_wait MARKER [SECONDS]: wait until a message with MARKER reached the sink.
e2e_sink_wait() {
	e2e_wait "${2:-20}" e2e_sink_has "$1"
}

# --- swaks -----------------------------------------------------------------------------------

# e2e_swaks NAME SWAKS-ARGS...: run one SMTP session against $SMTP_PORT (HELO name $E2E_HELO,
# default good.e2e.test) and keep a normalised transcript in $E2E_TMP/swaks/NAME.t with lines
# "C: command" and "S: reply" (message lines are left out; the final dot is "C: ."). A server
# that closes the connection gives "S: <EOF>". Sets E2E_T to the transcript.
e2e_swaks() {
	local name=$1
	shift
	mkdir -p "$E2E_TMP/swaks"
	swaks --server 127.0.0.1 --port "$SMTP_PORT" --timeout 20 \
		--helo "${E2E_HELO:-good.e2e.test}" "$@" \
		>"$E2E_TMP/swaks/$name.out" 2>&1
	awk '
		/^ [-~]> / {
			l = substr($0, 5)
			if (indata) {
				if (l == ".") { print "C: ."; indata = 0 }
				next
			}
			print "C: " l
			last = l
			next
		}
		/^<(-|\*\*|~|~\*\*) / {
			sub(/^<(-|\*\*|~|~\*\*) +/, "")
			print "S: " $0
			if (last == "DATA" && $0 ~ /^354/) indata = 1
			next
		}
		/closed connection|Remote host closed|Connection reset/ { print "S: <EOF>" }
	' "$E2E_TMP/swaks/$name.out" >"$E2E_TMP/swaks/$name.t"
	E2E_T=$E2E_TMP/swaks/$name.t
}

# e2e_reply CMD-PREFIX [TRANSCRIPT]: the reply lines to the first command starting with
# CMD-PREFIX (case-insensitive), joined by newlines. "BANNER" gives the greeting.
e2e_reply() {
	awk -v want="$1" '
		BEGIN { want = toupper(want); on = seen = (want == "BANNER") }
		/^C: / { if (seen) exit; on = seen = (index(toupper(substr($0, 4)), want) == 1); next }
		/^S: <EOF>$/ { next }
		/^S: / && on { print substr($0, 4) }
	' "${2:-$E2E_T}"
}

# e2e_closed [TRANSCRIPT]: succeeds if the server closed the connection on the client.
e2e_closed() {
	grep -qx 'S: <EOF>' "${2:-$E2E_T}"
}

# e2e_sent CMD-PREFIX [TRANSCRIPT]: succeeds if the client sent a command starting so.
e2e_sent() {
	grep -qi "^C: $1" "${2:-$E2E_T}"
}

# e2e_check_reply NAME CMD-PREFIX EXPECTED: exact reply check with the transcript on failure.
e2e_check_reply() {
	local got
	got=$(e2e_reply "$2")
	e2e_check "$1" "$3" "$got"
	[ "$3" = "$got" ] || sed 's/^/#   | /' "$E2E_T"
}

# --- Postfix ---------------------------------------------------------------------------------

# e2e_postfix_start [MASTER-ENTRY...]: a private Postfix instance on a fresh loopback port
# relaying to the sink, with the daemon as its only smtpd milter. Extra master.cf entries
# ("name/type = line", as postconf -M takes them) are added before the start. Sets
# SMTP_PORT, PF_CONF, PF_LOG.
e2e_postfix_start() {
	e2e_need postfix postconf postqueue postsuper
	local pf=$E2E_TMP/postfix
	PF_CONF=$pf/conf
	PF_LOG=$E2E_TMP/postfix.log
	SMTP_PORT=$(e2e_free_port)
	mkdir -p "$PF_CONF" "$pf/queue" "$pf/data"
	chown postfix "$pf/data"
	# STARTTLS with a throwaway self-signed certificate (a client says EHLO again after it)
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=postfix.e2e.test" \
		-keyout "$PF_CONF/tls.key" -out "$PF_CONF/tls.crt" >/dev/null 2>&1 ||
		e2e_fatal "openssl could not make a test certificate"
	local master=/etc/postfix/master.cf
	[ -r "$master" ] || master=/usr/share/postfix/master.cf.dist
	[ -r "$master" ] || e2e_fatal "no master.cf to start from (Debian package postfix)"
	cp "$master" "$PF_CONF/master.cf"
	: >"$PF_CONF/main.cf"
	: >"$PF_LOG"
	postconf -c "$PF_CONF" -e \
		"compatibility_level = 3.6" \
		"queue_directory = $pf/queue" \
		"data_directory = $pf/data" \
		"mail_owner = postfix" \
		"setgid_group = postdrop" \
		"maillog_file = $PF_LOG" \
		"maillog_file_prefixes = $E2E_TMP" \
		"myhostname = postfix.e2e.test" \
		"mydomain = e2e.test" \
		"myorigin = \$myhostname" \
		"smtpd_banner = \$myhostname ESMTP" \
		"inet_interfaces = 127.0.0.1" \
		"inet_protocols = ipv4" \
		"mydestination =" \
		"mynetworks = 127.0.0.0/8" \
		"relay_domains =" \
		"relayhost = [127.0.0.1]:$SINK_PORT" \
		"smtpd_relay_restrictions = permit_mynetworks, reject" \
		"smtpd_recipient_restrictions =" \
		"alias_maps =" \
		"alias_database =" \
		"local_recipient_maps =" \
		"biff = no" \
		"smtp_dns_support_level = disabled" \
		"smtputf8_enable = no" \
		"smtpd_tls_security_level = may" \
		"smtpd_tls_cert_file = $PF_CONF/tls.crt" \
		"smtpd_tls_key_file = $PF_CONF/tls.key" \
		"smtpd_milters = inet:127.0.0.1:$MP_PORT" \
		"milter_default_action = tempfail" \
		"milter_connect_timeout = 5s" \
		"milter_command_timeout = 10s" \
		"milter_content_timeout = 20s" \
		"smtpd_error_sleep_time = 0" \
		"smtpd_soft_error_limit = 100" \
		"smtpd_hard_error_limit = 200" \
		"smtpd_client_connection_rate_limit = 0" \
		"anvil_rate_time_unit = 60s" \
		"smtp_connect_timeout = 5s" \
		"queue_run_delay = 300s" \
		"minimal_backoff_time = 300s" \
		"delay_warning_time = 0" \
		"bounce_queue_lifetime = 0" \
		|| e2e_fatal "postconf -e failed"
	# The stock service listens on port 25 and runs chrooted: move it to our port, and
	# turn chroot off everywhere (the test instance has no chroot tree).
	postconf -c "$PF_CONF" -M# smtp/inet || e2e_fatal "postconf -M# failed"
	postconf -c "$PF_CONF" -M "127.0.0.1:$SMTP_PORT/inet = 127.0.0.1:$SMTP_PORT inet n - n - - smtpd" ||
		e2e_fatal "postconf -M failed"
	if [ $# -gt 0 ]; then
		postconf -c "$PF_CONF" -M "$@" || e2e_fatal "postconf -M $* failed"
	fi
	postconf -c "$PF_CONF" -F '*/*/chroot = n' || e2e_fatal "postconf -F failed"
	E2E_POSTFIX_CONF=$PF_CONF
	# postfix prints errors only to a terminal; they land in the log otherwise.
	if ! postfix -c "$PF_CONF" start >"$E2E_TMP/postfix-start.log" 2>&1; then
		cat "$E2E_TMP/postfix-start.log" "$PF_LOG" >&2
		e2e_fatal "postfix start failed (see above)"
	fi
	e2e_wait 15 e2e_port_open "$SMTP_PORT" || e2e_fatal "postfix did not listen on 127.0.0.1:$SMTP_PORT"
}

e2e_postfix_master_pid() {
	local f=$E2E_TMP/postfix/queue/pid/master.pid
	[ -r "$f" ] && tr -d ' \n' <"$f"
}

e2e_postfix_stop() {
	local pid
	pid=$(e2e_postfix_master_pid)
	postfix -c "$E2E_POSTFIX_CONF" stop >/dev/null 2>&1
	if [ -n "$pid" ] && ! e2e_wait 10 eval "! e2e_alive $pid"; then
		echo "# postfix master $pid did not stop; killing it" >&2
		kill -KILL "$pid" 2>/dev/null
	fi
	E2E_POSTFIX_CONF=""
}

# e2e_postfix_queue_json: one JSON object per queued message (postqueue -j).
e2e_postfix_queue_json() {
	postqueue -c "$PF_CONF" -j 2>/dev/null
}

# --- Sendmail --------------------------------------------------------------------------------

# Where the unpacked Sendmail packages are kept between runs.
E2E_SM_CACHE=${MP_E2E_CACHE:-/var/tmp/milter-policy-e2e}
E2E_SM_PKGS="sendmail-bin sendmail-base sendmail-cf"

# Shared libraries the sendmail binary needs, and the Debian 12 package that holds each.
e2e_sm_lib_package() {
	case $1 in
	libwrap.so.*) echo libwrap0 ;;
	liblockfile.so.*) echo liblockfile1 ;;
	libldap-2.5.so.* | liblber-2.5.so.*) echo libldap-2.5-0 ;;
	libsasl2.so.*) echo libsasl2-2 ;;
	libnsl.so.*) echo libnsl2 ;;
	libtirpc.so.*) echo libtirpc3 ;;
	libdb-5.3.so) echo libdb5.3 ;;
	libssl.so.* | libcrypto.so.*) echo libssl3 ;;
	*) return 1 ;;
	esac
}

e2e_sm_libpath() {
	local m
	m=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -dumpmachine 2>/dev/null)
	echo "$1/lib/$m:$1/usr/lib/$m:$1/lib:$1/usr/lib"
}

e2e_sm_missing_libs() {
	LD_LIBRARY_PATH=$(e2e_sm_libpath "$1") ldd "$1/usr/libexec/sendmail/sendmail" 2>&1 |
		awk '/not found/ { print $1 }'
}

# e2e_sm_fetch_into DIR PACKAGES...: apt-get download and dpkg -x into DIR/root.
e2e_sm_fetch_into() {
	local dir=$1 deb
	shift
	mkdir -p "$dir/debs" "$dir/root"
	(cd "$dir/debs" && apt-get download "$@") >>"$dir/fetch.log" 2>&1 ||
		e2e_fatal "apt-get download $* failed (has 'apt-get update' run?): $(tail -n 3 "$dir/fetch.log")"
	for deb in "$dir"/debs/*.deb; do
		dpkg -x "$deb" "$dir/root" || e2e_fatal "dpkg -x $deb failed"
	done
}

# e2e_sendmail_root: make sure the cache holds an unpacked Sendmail whose libraries all
# resolve; sets SM_ROOT. Debian's sendmail conflicts with postfix, so it is never installed.
e2e_sendmail_root() {
	SM_ROOT=$E2E_SM_CACHE/root
	if [ -f "$E2E_SM_CACHE/stamp" ] && [ -x "$SM_ROOT/usr/libexec/sendmail/sendmail" ] &&
		[ -z "$(e2e_sm_missing_libs "$SM_ROOT")" ]; then
		return 0
	fi
	e2e_need apt-get dpkg ldd
	mkdir -p "$(dirname "$E2E_SM_CACHE")"
	local new
	new=$(mktemp -d "$E2E_SM_CACHE.new.XXXXXX") || e2e_fatal "cannot create $E2E_SM_CACHE.new.*"
	# apt's download sandbox user must be able to write there.
	chmod 755 "$new"
	e2e_sm_fetch_into "$new" $E2E_SM_PKGS
	local missing lib pkgs=""
	missing=$(e2e_sm_missing_libs "$new/root")
	for lib in $missing; do
		pkgs="$pkgs $(e2e_sm_lib_package "$lib")" ||
			e2e_fatal "sendmail needs $lib, and lib.sh does not know its package"
	done
	if [ -n "$pkgs" ]; then
		rm -f "$new"/debs/*.deb
		e2e_sm_fetch_into "$new" $(echo "$pkgs" | tr ' ' '\n' | sort -u)
	fi
	missing=$(e2e_sm_missing_libs "$new/root")
	[ -z "$missing" ] || e2e_fatal "sendmail libraries still missing: $missing"
	# The packaged binary is setgid; a setgid binary ignores LD_LIBRARY_PATH.
	chmod g-s "$new/root/usr/libexec/sendmail/sendmail"
	rm -rf "$new/debs"
	date >"$new/stamp"
	rm -rf "$E2E_SM_CACHE"
	mv "$new" "$E2E_SM_CACHE" || e2e_fatal "cannot move $new to $E2E_SM_CACHE"
}

# e2e_sm_ns COMMAND...: run COMMAND in its own UTS and mount namespace with host name
# sm.e2e.test and private hosts/nsswitch/resolv.conf, so Sendmail's start-up host name
# lookups stay on this machine. E2E_SM_NS holds the command prefix that does it.
e2e_sm_ns_init() {
	E2E_SM_NS=(unshare --uts --mount sh -c '
		sm=$1; shift
		hostname sm.e2e.test &&
		mount --bind "$sm/etc/hosts" /etc/hosts &&
		mount --bind "$sm/etc/resolv.conf" /etc/resolv.conf &&
		mount --bind "$sm/etc/nsswitch.conf" /etc/nsswitch.conf &&
		exec "$@"' sh "$E2E_TMP/sendmail" env LD_LIBRARY_PATH="$(e2e_sm_libpath "$SM_ROOT")")
}

e2e_sm_ns() {
	"${E2E_SM_NS[@]}" "$@"
}

# e2e_sendmail_cf: build the private sendmail.cf with m4 and the sendmail-cf macros.
e2e_sendmail_cf() {
	local sm=$E2E_TMP/sendmail cf=$SM_ROOT/usr/share/sendmail/cf
	mkdir -p "$sm/etc" "$sm/queue" "$sm/run"
	chmod 700 "$sm/queue"
	printf '127.0.0.1\tsm.e2e.test sm localhost\n::1\tlocalhost\n' >"$sm/etc/hosts"
	printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' >"$sm/etc/resolv.conf"
	printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files\n' >"$sm/etc/nsswitch.conf"
	printf 'hosts files\naliases files\n' >"$sm/etc/service.switch"
	: >"$sm/etc/local-host-names"
	: >"$sm/etc/trusted-users"
	: >"$sm/etc/aliases"
	# The milter timeouts are short so a dead daemon costs little; F=T: tempfail when the
	# filter is unavailable.
	cat >"$sm/sendmail.mc" <<EOF
divert(-1)
milter-policy end-to-end test instance
divert(0)dnl
VERSIONID(\`milter-policy e2e')dnl
OSTYPE(\`linux')dnl
define(\`confDONT_BLAME_SENDMAIL', \`TrustStickyBit')dnl
define(\`QUEUE_DIR', \`$sm/queue')dnl
define(\`confPID_FILE', \`$sm/run/sendmail.pid')dnl
define(\`STATUS_FILE', \`$sm/run/sendmail.st')dnl
define(\`confCW_FILE', \`-o $sm/etc/local-host-names')dnl
define(\`confCT_FILE', \`-o $sm/etc/trusted-users')dnl
define(\`ALIAS_FILE', \`$sm/etc/aliases')dnl
define(\`confSERVICE_SWITCH_FILE', \`$sm/etc/service.switch')dnl
define(\`confHOSTS_FILE', \`$sm/etc/hosts')dnl
define(\`confHELP_FILE', \`$sm/etc/helpfile')dnl
define(\`confDONT_PROBE_INTERFACES', \`True')dnl
define(\`confDOMAIN_NAME', \`sm.e2e.test')dnl
define(\`confTO_IDENT', \`0s')dnl
define(\`confTO_CONNECT', \`5s')dnl
define(\`confTO_INITIAL', \`10s')dnl
define(\`confREFUSE_LA', \`999')dnl
define(\`confQUEUE_LA', \`999')dnl
define(\`confDELAY_LA', \`0')dnl
define(\`confMIN_FREE_BLOCKS', \`0')dnl
define(\`confLOG_LEVEL', \`14')dnl
define(\`confMILTER_LOG_LEVEL', \`14')dnl
define(\`confDELIVERY_MODE', \`background')dnl
define(\`confBIND_OPTS', \`-DNSRCH -DEFNAMES')dnl
define(\`SMART_HOST', \`esmtp:[127.0.0.1]')dnl
define(\`ESMTP_MAILER_ARGS', \`TCP \$h $SINK_PORT')dnl
define(\`confTO_QUEUERETURN', \`1h')dnl
FEATURE(\`no_default_msa')dnl
FEATURE(\`nocanonify')dnl
FEATURE(\`accept_unresolvable_domains')dnl
FEATURE(\`accept_unqualified_senders')dnl
FEATURE(\`promiscuous_relay')dnl
DAEMON_OPTIONS(\`Port=$SMTP_PORT, Addr=127.0.0.1, Name=MTA')dnl
INPUT_MAIL_FILTER(\`milter-policy', \`S=inet:$MP_PORT@127.0.0.1, F=T, T=C:5s;S:10s;R:10s;E:20s')dnl
MAILER(\`smtp')dnl
EOF
	cp "$SM_ROOT/etc/mail/helpfile" "$sm/etc/helpfile" 2>/dev/null || : >"$sm/etc/helpfile"
	m4 -D_CF_DIR_="$cf/" "$cf/m4/cf.m4" "$sm/sendmail.mc" >"$sm/sendmail.cf" 2>"$E2E_TMP/m4.log" ||
		e2e_fatal "m4 failed to build sendmail.cf: $(cat "$E2E_TMP/m4.log")"
	SM_CF=$sm/sendmail.cf
}

# e2e_sendmail_start: a private Sendmail 8.17 on a fresh loopback port, in the foreground
# (-bD), relaying to the sink, every SMTP line recorded in $SM_TRAFFIC.
e2e_sendmail_start() {
	e2e_need unshare m4 setsid hostname
	unshare --uts --mount true 2>/dev/null ||
		e2e_fatal "unshare --uts --mount does not work here (needs CAP_SYS_ADMIN)"
	e2e_sendmail_root
	SMTP_PORT=$(e2e_free_port)
	e2e_sendmail_cf
	SM_TRAFFIC=$E2E_TMP/sendmail-traffic.log
	e2e_sm_ns_init
	e2e_spawn "$E2E_TMP/sendmail.log" "${E2E_SM_NS[@]}" "$SM_ROOT/usr/libexec/sendmail/sendmail" \
		-C "$SM_CF" -bD -q30s -X "$SM_TRAFFIC" -O LogLevel=14
	SM_PID=$E2E_LAST_PID
	if ! e2e_wait 20 e2e_port_open "$SMTP_PORT"; then
		cat "$E2E_TMP/sendmail.log" >&2
		e2e_fatal "sendmail did not listen on 127.0.0.1:$SMTP_PORT within 20 s"
	fi
}

# e2e_sendmail_quarantined: list Sendmail's quarantined queue (mailq -qQ).
e2e_sendmail_quarantined() {
	e2e_sm_ns "$SM_ROOT/usr/libexec/sendmail/sendmail" -C "$SM_CF" -bp -qQ 2>&1
}

# --- the checks both MTAs share --------------------------------------------------------------
#
# The test script sets E2E_MTA (postfix | sendmail) and defines:
#   e2e_mta_rcpt_ok ADDR     the reply line to an accepted RCPT TO:<ADDR>
#   e2e_mta_queue_id REPLY   the queue id in the reply to the final dot
#   e2e_mta_held ID          succeeds if message ID is quarantined (Postfix: hold queue)
#   e2e_mta_queued ID        succeeds if message ID is in any queue

# e2e_addr ADDR CODE: Sendmail puts "<address>... " before the text of 450, 550 and 553
# replies to MAIL and RCPT; Postfix passes the text unchanged.
e2e_addr() {
	if [ "$E2E_MTA" = sendmail ]; then
		case $2 in 450 | 550 | 553) printf '<%s>... ' "$1" ;; esac
	fi
}

# e2e_accepted NAME: the final dot got a 250; prints the queue id.
e2e_accepted_id() {
	local r
	r=$(e2e_reply ".")
	case $r in
	250\ *) e2e_mta_queue_id "$r" ;;
	*) return 1 ;;
	esac
}

e2e_policy_checks() {
	local m="$E2E_MTA-$$" r id f

	# Accepted mail reaches the sink with the add_header header.
	e2e_swaks accept --from a@e2e.test --to ok@e2e.test --header "Subject: E2E-OK $m"
	id=$(e2e_accepted_id)
	e2e_true "accept: message accepted ($id)" [ -n "$id" ]
	if e2e_sink_wait "E2E-OK $m"; then
		e2e_ok "accept: message reached the sink"
		f=$(e2e_sink_find "E2E-OK $m")
		e2e_true "accept: add_header header in the delivered message" \
			grep -qx 'X-E2E-Checked: add-header from=a@e2e.test' "$f"
	else
		e2e_notok "accept: message reached the sink"
		e2e_notok "accept: add_header header in the delivered message"
	fi

	# Connect: no reply text can go with xxfi_connect, so the rule is answered at the next
	# command that can carry text; both MTAs hold HELO replies back until MAIL FROM.
	e2e_swaks connect-reject --local-interface 127.0.0.2 --from a@e2e.test --to ok@e2e.test
	r=$(e2e_reply BANNER)
	e2e_true "connect reject: greeting still 220 ($r)" [ "${r#220 }" != "$r" ]
	e2e_check_reply "connect reject: answered at MAIL FROM" "MAIL FROM:" \
		"554 5.7.1 Client 127.0.0.2 refused"
	e2e_swaks connect-tempfail --local-interface 127.0.0.3 --from a@e2e.test --to ok@e2e.test
	e2e_check_reply "connect tempfail: answered at MAIL FROM" "MAIL FROM:" \
		"451 4.7.1 Client 127.0.0.3 deferred"

	# HELO: the EHLO itself gets 250, the reject comes at MAIL FROM.
	E2E_HELO=bad-helo.e2e.test e2e_swaks helo --from a@e2e.test --to ok@e2e.test
	r=$(e2e_reply "EHLO" | head -n 1)
	e2e_true "helo reject: EHLO answered 250 ($r)" [ "${r#250}" != "$r" ]
	e2e_check_reply "helo reject: answered at MAIL FROM" "MAIL FROM:" \
		"550 5.7.1 HELO bad-helo.e2e.test refused"

	# MAIL
	e2e_swaks mail --from tempfail@e2e.test --to ok@e2e.test
	e2e_check_reply "mail tempfail: 450 reply" "MAIL FROM:" \
		"450 4.7.1 $(e2e_addr tempfail@e2e.test 450)Sender tempfail@e2e.test deferred"

	# 421 ends the session.
	e2e_swaks close --from close@e2e.test --to ok@e2e.test
	e2e_check_reply "mail 421: reply" "MAIL FROM:" "421 4.7.0 Closing session for close@e2e.test"
	e2e_true "mail 421: server closed the connection" e2e_closed

	# RCPT: one of two recipients refused, the other accepted and delivered alone.
	e2e_swaks rcpt --from a@e2e.test --to nosuchuser@e2e.test,good@e2e.test \
		--header "Subject: E2E-RCPT $m"
	e2e_check_reply "rcpt reject: 550 5.1.1 for the unknown recipient" "RCPT TO:<nosuchuser@" \
		"550 5.1.1 $(e2e_addr nosuchuser@e2e.test 550)Recipient nosuchuser@e2e.test unknown"
	e2e_check_reply "rcpt reject: other recipient accepted" "RCPT TO:<good@" \
		"$(e2e_mta_rcpt_ok good@e2e.test)"
	if e2e_sink_wait "E2E-RCPT $m"; then
		f=$(e2e_sink_find "E2E-RCPT $m")
		e2e_check "rcpt reject: delivered to the accepted recipient only" \
			"X-Rcpt-Args: <good@e2e.test>" "$(grep '^X-Rcpt-Args:' "$f" | sed 's/ ORCPT=.*//')"
	else
		e2e_notok "rcpt reject: delivered to the accepted recipient only"
	fi

	# Multi-line reply, '%' in the text, a 4xx at RCPT.
	e2e_swaks multi --from a@e2e.test --to multiline@e2e.test,percent@e2e.test,busy@e2e.test
	e2e_check_reply "multi-line reply" "RCPT TO:<multiline@" \
		"550-5.7.1 $(e2e_addr multiline@e2e.test 550)Recipient multiline@e2e.test refused:
550-5.7.1 second line
550 5.7.1 see https://example.org/policy"
	e2e_check_reply "'%' in reply text reaches the client" "RCPT TO:<percent@" \
		"550 5.7.1 $(e2e_addr percent@e2e.test 550)100% sure: percent@e2e.test refused"
	e2e_check_reply "rcpt tempfail 452" "RCPT TO:<busy@" "452 4.2.2 Mailbox busy@e2e.test busy"

	# Header, with the queue id expanded: {i} is known from DATA on.
	e2e_swaks header --from a@e2e.test --to ok@e2e.test --header "Subject: E2E-HEADER-REJECT"
	r=$(e2e_reply ".")
	id=$(printf '%s\n' "$r" | sed -n 's/^554 5\.7\.1 Subject refused (queue id \([0-9A-Za-z]\{8,\}\))$/\1/p')
	e2e_true "header reject: 554 5.7.1 with \${queue_id} expanded ($r)" [ -n "$id" ]
	[ -n "$id" ] && e2e_mta_check_queue_id "header reject" "$id"

	# Body and end of message.
	e2e_swaks body --from a@e2e.test --to ok@e2e.test --body "line one
marker E2E-BODY-REJECT here
line three"
	e2e_check_reply "body reject: 554" "." "554 5.6.0 Message body refused"
	head -c 30000 /dev/zero | tr '\0' 'x' | fold -w 72 >"$E2E_TMP/big.txt"
	e2e_swaks eom --from a@e2e.test --to ok@e2e.test --body "@$E2E_TMP/big.txt"
	e2e_check_reply "eom size reject: 552 5.3.4" "." "552 5.3.4 Message too big for this policy"

	# Quarantine: accepted, then held.
	e2e_swaks quarantine --from a@e2e.test --to ok@e2e.test --header "Subject: E2E-QUARANTINE $m"
	id=$(e2e_accepted_id)
	e2e_true "quarantine: message accepted ($id)" [ -n "$id" ]
	e2e_true "quarantine: message $id is held" e2e_wait 10 e2e_mta_held "$id"

	# Discard: accepted, never delivered nor queued. A message sent afterwards reaching
	# the sink shows the discarded one had its chance.
	e2e_swaks discard --from a@e2e.test --to ok@e2e.test --header "Subject: E2E-DISCARD $m"
	id=$(e2e_accepted_id)
	e2e_true "discard: message accepted ($id)" [ -n "$id" ]
	e2e_swaks after-discard --from a@e2e.test --to ok@e2e.test --header "Subject: E2E-AFTER $m"
	e2e_true "discard: a later message was delivered" e2e_sink_wait "E2E-AFTER $m"
	e2e_true "discard: discarded message not delivered" eval "! e2e_sink_has 'E2E-DISCARD $m'"
	e2e_true "discard: discarded message not queued" eval "! e2e_mta_queued '$id'"
}
