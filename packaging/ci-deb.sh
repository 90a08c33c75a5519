#!/bin/sh
# ci-deb.sh - builds the .deb, installs it, and checks the installed package:
# the daemon validates the shipped configuration, the files and the user are in place.
# Removes the package again at the end (the system user stays, as on Debian).
#
# Meant for CI machines: needs root (apt-get), the Build-Depends of packaging/debian/control
# (packaging/install-deps) and python3.  Arguments go to build-deb.sh (-t TARBALL).
# Exit 0 if every check passed.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
out=$(mktemp -d "${TMPDIR:-/tmp}/milter-policy-ci-deb.XXXXXX")
installed=0
daemon=
# Waits for another apt/dpkg run to finish instead of failing at once.
apt_wait="-o DPkg::Lock::Timeout=300"
cleanup() {
	[ -z "$daemon" ] || kill -TERM "$daemon" 2>/dev/null || true
	if [ $installed = 1 ]; then
		apt-get $apt_wait purge -y -q milter-policy >/dev/null 2>&1 ||
			dpkg --purge milter-policy || true
	fi
	rm -rf "$out"
}
trap cleanup EXIT

# This script installs and purges the package, and runs the daemon on its packaged socket:
# never on a systemd host where the package is in use.  (On a CI machine without systemd, a
# package left by an interrupted run is simply replaced.)
if [ -d /run/systemd/system ] &&
	dpkg-query -W -f='${Status}' milter-policy 2>/dev/null | grep -q ' installed$'; then
	echo "ci-deb: milter-policy is installed on this systemd host: not touching it" >&2
	exit 1
fi

# The unit tests run in CI's own build: don't repeat them inside the package build.
DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:+$DEB_BUILD_OPTIONS }nocheck" "$top/packaging/build-deb.sh" "$@" "$out"

deb=$(ls "$out"/milter-policy_*.deb | grep -v dbgsym)
echo "ci-deb: installing $deb"
installed=1
DEBIAN_FRONTEND=noninteractive apt-get $apt_wait install -y -q "$deb"

passed=0
failed=0
check() {
	what=$1
	shift
	if "$@"; then
		echo "ok - $what"
		passed=$((passed + 1))
	else
		echo "not ok - $what"
		failed=$((failed + 1))
	fi
}

conf=/etc/milter-policy/milter-policy.conf
check "installed milter-policy -n accepts $conf" /usr/sbin/milter-policy -n -c "$conf"
check "milter-policy -V runs" /usr/sbin/milter-policy -V
check "system user milter-policy exists" getent passwd milter-policy
check "user milter-policy has no login shell" \
	sh -c 'getent passwd milter-policy | cut -d: -f7 | grep -qx /usr/sbin/nologin'
check "$conf is a conffile" \
	sh -c "dpkg-query -W -f='\${Conffiles}' milter-policy | grep -q ' $conf '"
check "/etc/milter-policy/default.rules is a conffile" \
	sh -c "dpkg-query -W -f='\${Conffiles}' milter-policy | grep -q ' /etc/milter-policy/default.rules '"
check "/etc/milter-policy/lists/ is installed" test -d /etc/milter-policy/lists
check "examples are installed" \
	sh -c 'ls /usr/share/doc/milter-policy/examples/*.rules >/dev/null'
check "/etc/default/milter-policy is installed" test -f /etc/default/milter-policy
check "systemd unit is installed" test -f /lib/systemd/system/milter-policy.service
check "socket directory helper is installed" \
	test -x /usr/libexec/milter-policy/milter-policy-socketdir
for page in milter-policy.8 milter-policy.conf.5 milter-policy.rules.5; do
	check "man page $page is installed" \
		test -f "/usr/share/man/man${page##*.}/$page.gz"
done
check "the check also runs as the milter-policy user" \
	setpriv --reuid=milter-policy --regid=milter-policy --clear-groups \
	/usr/sbin/milter-policy -n -c "$conf"

check "systemd-analyze verify accepts the unit" \
	systemd-analyze verify /lib/systemd/system/milter-policy.service

# The unit's start, as systemd would do it (no systemd here): RuntimeDirectory, the socket
# directory helper as root, then the daemon as milter-policy with UMask=0007.
sock=/run/milter-policy/milter-policy.sock
group=milter-policy
! getent group postfix >/dev/null || group=postfix
install -d -o milter-policy -g milter-policy -m 0750 /run/milter-policy
check "socket directory helper runs" \
	/usr/libexec/milter-policy/milter-policy-socketdir "unix:$sock" milter-policy
check "socket directory is milter-policy:$group" \
	sh -c "stat -c '%U:%G' /run/milter-policy | grep -qx milter-policy:$group"
setpriv --reuid=milter-policy --regid=milter-policy --init-groups \
	sh -c "umask 0007; exec /usr/sbin/milter-policy -f -c $conf -p unix:$sock" &
daemon=$!
i=0
while [ ! -S "$sock" ] && [ $i -lt 100 ] && kill -0 $daemon 2>/dev/null; do
	sleep 0.1
	i=$((i + 1))
done
check "daemon listens on $sock" test -S "$sock"
check "socket is mode 770, group $group" \
	sh -c "stat -c '%a %U %G' $sock | grep -qx '770 milter-policy $group'"
# Prints "connected" or the error's name (EACCES ...): a failure to start Python is neither.
try_connect() {
	setpriv --reuid="$1" --regid="$2" --clear-groups /usr/bin/python3 -c '
import socket, sys, errno
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
    print("connected")
except OSError as e:
    print(errno.errorcode.get(e.errno, e.errno))
' "$sock"
}
connect_gives() {
	[ "$(try_connect "$1" "$2")" = "$3" ]
}
if [ $group = postfix ]; then
	check "user postfix (no supplementary groups) can connect" \
		connect_gives postfix postfix connected
fi
check "user nobody cannot connect (EACCES)" connect_gives nobody nogroup EACCES
kill -TERM $daemon
rc=0
wait $daemon || rc=$?
daemon=
check "daemon stops on SIGTERM with status 0 (got $rc)" test $rc -eq 0
rm -rf /run/milter-policy

echo "ci-deb: $passed passed, $failed failed"
[ $failed -eq 0 ]
