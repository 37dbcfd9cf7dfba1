#!/bin/sh
# install.sh -- `make install` into a scratch DESTDIR writes every file
# under the configured prefix, and nothing anywhere else (HACKING,
# "Building"): the programs, the manual pages, the examples and the
# bash completion among them.

top=${top_srcdir:-${srcdir:-$(dirname "$0")/..}}
. "$top/tests/tap.sh"
: "${MUXD_TESTS_BUILDDIR:?MUXD_TESTS_BUILDDIR must name the tests build dir}"
: "${MUXD_PREFIX:?MUXD_PREFIX must be the configured prefix}"
build=$(dirname "$MUXD_TESTS_BUILDDIR")
stage=$(mktemp -d) || bail_out "mktemp failed"
trap 'rm -rf "$stage"' EXIT

plan 4
${MAKE:-make} -s -C "$build" install DESTDIR="$stage" >"$stage.log" 2>&1
status=$?
ok $status "make install DESTDIR=... succeeds" || diag "$(tail -n 20 "$stage.log")"
rm -f "$stage.log"
outside=$(cd "$stage" && find . ! -type d | sed 's|^\.||' |
	grep -v "^$MUXD_PREFIX/")
is "$outside" "" "every file it installs is under the prefix $MUXD_PREFIX"
for f in bin/muxd share/bash-completion/completions/muxd; do
	[ -e "$stage$MUXD_PREFIX/$f" ] || missing="$missing $f"
done
is "${missing:-}" "" "the program and its bash completion are installed"
[ -x "$stage$MUXD_PREFIX/bin/muxd" ] &&
	"$stage$MUXD_PREFIX/bin/muxd" --version >/dev/null 2>&1
ok $? "the installed muxd runs"
tap_done
