#!/bin/sh
# Hostile and odd rule and list files at load time (-n, which is what a reload runs): each is
# refused with "file[:line]: reason" and exit 1, or loads, within a bounded time; never a
# crash, a hang or a raw binary byte in the output.
set -u
daemon=${MP_DAEMON:-filter/milter-policy}
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
printf 'policies = { "r.rules" }\n' >"$tmp/c.conf"

ok() { pass=$((pass + 1)); echo "ok - $1"; }
notok() { fail=$((fail + 1)); echo "not ok - $1"; sed 's/^/    /' "$tmp/out" | head -n 20; }

# load NAME STATUS [LINE]: -n on $tmp/c.conf exits STATUS within 60 s (and prints LINE
# exactly, if given); its output is valid UTF-8 without control characters.
load() {
	timeout 60 "$daemon" -n -c "$tmp/c.conf" >"$tmp/out" 2>&1
	got=$?
	if [ "$got" -ne "$2" ]; then
		notok "$1: exit $got, wanted $2"
	elif [ $# -ge 3 ] && ! grep -qxF -- "$3" "$tmp/out"; then
		notok "$1: no line '$3'"
	elif LC_ALL=C grep -q '[[:cntrl:]]' "$tmp/out" ||
		! iconv -f UTF-8 -t UTF-8 "$tmp/out" >/dev/null 2>&1; then
		notok "$1: a control character or a byte that is not UTF-8 in the output"
	else
		ok "$1"
	fi
}
rules() { printf "$@" >"$tmp/r.rules"; }
rule_when() { printf 'rule "a" {\n when = '"'"'%s'"'"'\n action = reject\n}\n' "$1" >"$tmp/r.rules"; }

rules 'rule "a" {\n when = '"'"'helo == "x\0y"'"'"'\n}\n'
load "a NUL byte in a rule file" 1 "$tmp/r.rules:2: contains a NUL byte: not a text file"

head -c 65536 /dev/urandom >"$tmp/r.rules"
printf '\0' >>"$tmp/r.rules"
load "a binary rule file" 1

tr -d '\000' </dev/urandom | head -c 65536 >"$tmp/r.rules"
load "random bytes without NUL as a rule file" 1

rm -f "$tmp/r.rules" && mkdir "$tmp/r.rules"
load "a directory as a rule file" 1 "$tmp/r.rules: cannot read: Is a directory"
rmdir "$tmp/r.rules"

mkfifo "$tmp/r.rules"
load "a FIFO as a rule file (a reload must not wait for a writer)" 1 \
	"$tmp/r.rules: cannot read: not a regular file"
rm -f "$tmp/r.rules"

ln -s /dev/zero "$tmp/r.rules"
load "a rule file linked to /dev/zero" 1 "$tmp/r.rules: cannot read: not a regular file"
rm -f "$tmp/r.rules"

ln -s r.rules "$tmp/r.rules"
load "a symlink loop" 1 "$tmp/r.rules: cannot read: Too many levels of symbolic links"
rm -f "$tmp/r.rules"

: >"$tmp/r.rules"
load "an empty rule file" 0 "ok: 1 file, 0 rules, 0 lists (0 entries)"

rules 'rule "a" {\r\n when = '"'"'helo == "x"'"'"'\r\n action = reject\r\n}\r\n'
load "CRLF line ends" 0 "ok: 1 file, 1 rule, 0 lists (0 entries)"

rule_when "helo == \"$(head -c 2000000 /dev/zero | tr '\0' x)\""
load "a 2 MB string in a condition" 0 "ok: 1 file, 1 rule, 0 lists (0 entries)"

rule_when "$(head -c 100000 /dev/zero | tr '\0' '(')helo == \"x\"$(head -c 100000 /dev/zero | tr '\0' ')')"
load "100,000 nested parentheses" 1 \
	"$tmp/r.rules:2: rule 'a': when: condition too deep: more than 200 nested levels at column 202"

rule_when "$(awk 'BEGIN { for (i = 0; i < 50000; i++) printf "%shelo == \"h%d\"", i ? " or " : "", i }')"
load "an or-chain of 50,000 terms" 0 "helo: 1 rule"

rule_when "helo =~ /$(awk 'BEGIN { for (i = 0; i < 5000; i++) printf "(a"; for (i = 0; i < 5000; i++) printf ")" }')/"
load "a regex nested 5,000 deep" 1 \
	"$tmp/r.rules:2: rule 'a': when: bad regex: parentheses are too deeply nested at column 511"

awk 'BEGIN { for (i = 0; i < 20000; i++) printf "rule \"r%d\" { when = '"'"'helo == \"h%d\"'"'"' }\n", i, i }' \
	>"$tmp/r.rules"
load "20,000 rules" 0 "ok: 1 file, 20000 rules, 0 lists (0 entries)"

# Lists
rules 'list "l" { file = "l.list" }\nrule "a" { when = '"'"'client_ip in @l'"'"' }\n'
printf '192.0.2.1\n10.0.0.0/8\n\0\n' >"$tmp/l.list"
load "a NUL byte in a list file" 1 "$tmp/l.list:3: contains a NUL byte: not a text file"

tr -d '\000' </dev/urandom | head -c 200000 >"$tmp/l.list"
load "a binary list file: errors, printable" 1
n=$(grep -c "^$tmp/l.list:[0-9]*: list 'l': bad CIDR" "$tmp/out")
if [ "$n" -ge 1 ] && [ "$n" -le 10 ]; then ok "a binary list file: at most 10 entries reported ($n)"
else notok "a binary list file: $n entries reported, wanted 1 to 10"; fi

rm -f "$tmp/l.list" && mkfifo "$tmp/l.list"
load "a FIFO as a list file" 1 "$tmp/l.list: cannot read: not a regular file"
rm -f "$tmp/l.list" && ln -s /dev/zero "$tmp/l.list"
load "a list file linked to /dev/zero" 1 "$tmp/l.list: cannot read: not a regular file"
rm -f "$tmp/l.list"

rules 'list "l" { file = "l.list" }\nrule "a" { when = '"'"'helo in @l'"'"' }\n'
head -c 3000000 /dev/zero | tr '\0' a >"$tmp/l.list"
load "a 3 MB line in a list file" 0 "ok: 1 file, 1 rule, 1 list (1 entry)"

truncate -s 1025M "$tmp/l.list"
load "a list file over 1 GiB" 1 "$tmp/l.list: cannot read: larger than 1024 MiB"
rm -f "$tmp/l.list"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
