#!/bin/sh
# build-deb.sh [-t TARBALL] OUTDIR - builds the milter-policy .deb into OUTDIR.
#
# The package is built the Debian way, from a release tarball with packaging/debian/ put at
# its top as ./debian.  Without -t, the tarball is made first ("make dist" in a copy of this
# source tree), so the package is built from exactly what a release ships.  The source tree
# itself is never written to.
#
# Environment: DEB_BUILD_OPTIONS is passed on (e.g. nocheck); KEEP_WORK=1 keeps the work
# directory.  Needs: autoconf, automake, pkg-config, debhelper, dpkg-dev and the
# Build-Depends of packaging/debian/control.
set -eu

usage() {
	echo "usage: $0 [-t TARBALL] OUTDIR" >&2
	exit 2
}

tarball=
while getopts t: opt; do
	case $opt in
	t) tarball=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || usage
mkdir -p "$1"
outdir=$(cd "$1" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
[ -z "$tarball" ] || tarball=$(cd "$(dirname "$tarball")" && pwd)/$(basename "$tarball")

work=$(mktemp -d "${TMPDIR:-/tmp}/milter-policy-deb.XXXXXX")
cleanup() {
	if [ "${KEEP_WORK:-0}" = 1 ]; then
		echo "build-deb: work directory kept: $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT

if [ -z "$tarball" ]; then
	echo "build-deb: making the release tarball" >&2
	mkdir "$work/src"
	# A copy, so that autoreconf and configure leave the source tree alone.  In a git work
	# tree: the tracked files and the new ones not ignored, without build products.
	if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		(cd "$top" && git ls-files -z -c -o --exclude-standard |
			tar --null -T - --ignore-failed-read -cf -) | (cd "$work/src" && tar -xf -)
	else
		(cd "$top" && tar -cf - --exclude=./.git .) | (cd "$work/src" && tar -xf -)
	fi
	(
		cd "$work/src"
		[ ! -f Makefile ] || make distclean >/dev/null 2>&1 || true
		autoreconf -fi
		./configure --disable-tests >/dev/null
		make dist
	)
	tarball=$(ls "$work"/src/milter-policy-*.tar.gz)
fi

# milter-policy-0.1.0.tar.gz -> upstream version 0.1.0
name=$(basename "$tarball" .tar.gz)
version=${name#milter-policy-}
debversion=$(dpkg-parsechangelog -l "$top/packaging/debian/changelog" -S Version)
if [ "${debversion%-*}" != "$version" ]; then
	echo "build-deb: $tarball is version $version but packaging/debian/changelog says" \
		"$debversion: add a changelog entry (dch -v $version-1)" >&2
	exit 1
fi

mkdir "$work/pkg"
cp "$tarball" "$work/pkg/milter-policy_$version.orig.tar.gz"
tar -xzf "$tarball" -C "$work/pkg"
src="$work/pkg/$name"
rm -rf "$src/debian"
cp -a "$top/packaging/debian" "$src/debian"

echo "build-deb: dpkg-buildpackage in $src" >&2
(cd "$src" && dpkg-buildpackage -us -uc -b)

cp "$work"/pkg/*.deb "$outdir"/
for f in "$work"/pkg/*.deb; do
	echo "build-deb: built $outdir/$(basename "$f")"
done
