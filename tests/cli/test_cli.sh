#!/bin/sh
# The command line (SPEC §1): -n on the shipped policy and the examples, exit codes, errors
# with file:line, -V, -h, unknown options.
set -u
daemon=${MP_DAEMON:-filter/milter-policy}
src=$(cd "${MP_TOP_SRCDIR:-.}" && pwd)
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0

check() { # name expected-status command...
	name=$1 want=$2
	shift 2
	"$@" >"$tmp/out" 2>&1
	got=$?
	if [ "$got" -eq "$want" ]; then
		pass=$((pass + 1)); echo "ok - $name"
	else
		fail=$((fail + 1)); echo "not ok - $name: exit $got, wanted $want"; sed 's/^/    /' "$tmp/out"
	fi
}
expect_line() { # name pattern: the last command's output has a line matching pattern
	if grep -qE "$2" "$tmp/out"; then
		pass=$((pass + 1)); echo "ok - $1"
	else
		fail=$((fail + 1)); echo "not ok - $1: no line matching '$2' in:"; sed 's/^/    /' "$tmp/out"
	fi
}

check "-n on the shipped policy" 0 "$daemon" -n -c "$src/policies/milter-policy.conf"
for s in connect helo mail rcpt header body eom; do
	expect_line "-n prints a summary for stage $s" "^$s: [0-9]+ rules?$"
done
expect_line "-n prints the totals" '^ok: 1 file, [0-9]+ rules, 2 lists \([0-9]+ entr(y|ies)\)$'

for ex in "$src"/policies/examples/*.rules; do
	printf 'policies = { "%s" }\n' "$ex" >"$tmp/ex.conf"
	check "-n on example $(basename "$ex")" 0 "$daemon" -n -c "$tmp/ex.conf"
done

# A broken rule file: exit 1, every error as file:line: message.
cat >"$tmp/bad.rules" <<'RULES'
rule "a" {
    when = 'clinet_ip == "192.0.2.1"'
}
rule "b" {
    when   = 'helo == "x"'
    action = reject
    code   = 250
}
RULES
printf 'policies = { "bad.rules" }\n' >"$tmp/bad.conf"
check "-n on a broken policy exits 1" 1 "$daemon" -n -c "$tmp/bad.conf"
expect_line "-n names file:line of an unknown field" \
	"^$tmp/bad.rules:2: rule 'a': when: unknown field 'clinet_ip' at column 1$"
expect_line "-n names file:line of a bad code" \
	"^$tmp/bad.rules:7: rule 'b': code 250 is not a valid reject code"

printf 'sokcet = "inet:1@127.0.0.1"\n' >"$tmp/unknown.conf"
check "an unknown config option exits 1" 1 "$daemon" -n -c "$tmp/unknown.conf"
expect_line "an unknown config option names file:line" "^$tmp/unknown.conf:1: .*sokcet"

check "a missing config exits 1" 1 "$daemon" -n -c "$tmp/nonexistent.conf"
check "-V exits 0" 0 "$daemon" -V
expect_line "-V prints the version" '^milter-policy [0-9]'
check "-h exits 0" 0 "$daemon" -h
check "an unknown option exits 2" 2 "$daemon" -Z
check "a stray argument exits 2" 2 "$daemon" -n extra
check "a bad -d level exits 2" 2 "$daemon" -d loud -n

# Root without a user is refused (only meaningful as root).
if [ "$(id -u)" -eq 0 ]; then
	printf 'policies = { "%s/policies/default.rules" }\nsocket = "inet:1@127.0.0.1"\n' "$src" >"$tmp/root.conf"
	check "running as root without a user is refused" 1 "$daemon" -f -c "$tmp/root.conf"
	expect_line "the refusal says why" "refusing to run as root"
fi

# A stale unix socket (left by a killed instance) is removed, whatever the spelling of the
# prefix; a live one is refused.
stale_socket() {
	python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$1"
}
printf 'policies = { "%s/policies/default.rules" }\nallow_root = true\n' "$src" >"$tmp/sock.conf"
for spelling in "unix:" "UNIX:" "local:" ""; do
	sock="$tmp/s.sock"
	rm -f "$sock"
	stale_socket "$sock"
	"$daemon" -f -c "$tmp/sock.conf" -p "$spelling$sock" >"$tmp/out" 2>&1 &
	pid=$!
	up=no
	for _ in $(seq 50); do
		if grep -q "listening on" "$tmp/out"; then up=yes; break; fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if [ "$up" = yes ]; then
		pass=$((pass + 1)); echo "ok - stale socket replaced with -p '$spelling/path'"
		# a second instance on the live socket is refused, and the first keeps it
		check "a live socket ('$spelling') is not taken over" 3 "$daemon" -f -c "$tmp/sock.conf" -p "$spelling$sock"
		expect_line "the refusal names the socket" "socket $sock is in use"
	else
		fail=$((fail + 1)); echo "not ok - stale socket replaced with -p '$spelling/path'"
		sed 's/^/    /' "$tmp/out"
	fi
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
done

# A file that is not a socket at the socket path (a typo in socket=) is never removed.
echo "precious" >"$tmp/precious.txt"
check "a regular file at the socket path is refused" 3 "$daemon" -f -c "$tmp/sock.conf" -p "unix:$tmp/precious.txt"
expect_line "the refusal says why" "$tmp/precious.txt exists and is not a socket: not removing it"
if [ "$(cat "$tmp/precious.txt")" = precious ]; then
	pass=$((pass + 1)); echo "ok - the file is still there"
else
	fail=$((fail + 1)); echo "not ok - the file at the socket path was removed or changed"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
