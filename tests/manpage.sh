#!/bin/sh
# manpage.sh -- the manual page is the one home of every option: each long
# option that `muxd --help` (and `muxbench --help`) lists is described in
# muxd.1 (muxbench.1), and every engine and service muxd lists has its
# entry there.

top=${top_srcdir:-${srcdir:-$(dirname "$0")/..}}
. "$top/tests/tap.sh"
: "${MUXD:?MUXD must be the absolute path of src/muxd}"
: "${MUXBENCH:?MUXBENCH must be the absolute path of src/muxbench}"

# options PROGRAM: the long options its --help lists, one a line.
options() {
	"$1" --help | grep -o -- '--[a-z][a-z0-9-]*' | sort -u
}

# missing PAGE WORD...: the words the page never names as roff writes
# them (a "-" in a name is "\-").
missing() {
	page=$1
	shift
	for word in "$@"; do
		roff=$(printf '%s' "$word" | sed 's/-/\\\\-/g')
		grep -q -- "$roff" "$page" || printf '%s ' "$word"
	done
}

plan 4
is "$(missing "$top/muxd.1" $(options "$MUXD"))" "" \
	"muxd.1 describes every option of muxd --help"
is "$(missing "$top/muxbench.1" $(options "$MUXBENCH"))" "" \
	"muxbench.1 describes every option of muxbench --help"
is "$(missing "$top/muxd.1" $("$MUXD" --list-engines=tsv | cut -f1))" "" \
	"muxd.1 has every engine muxd lists"
is "$(missing "$top/muxd.1" $("$MUXD" --list-services | awk '{ print $1 }'))" "" \
	"muxd.1 has every service muxd lists"
tap_done
