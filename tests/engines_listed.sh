#!/bin/sh
# engines_listed.sh -- guard: the engine tests and muxd's engine table agree.
#
# Every engine that `muxd --list-engines` prints needs tests/engine/NAME.sh
# running conform for that same NAME (extra muxd options may follow it, as
# the pool engines' --workers 64 does), and tests/abuse-engine/NAME.sh
# running abuse for it; no wrapper may name an engine muxd does not have:
# a matrix kept by hand drifts, this one cannot.

top=${top_srcdir:-${srcdir:-$(dirname "$0")/..}}
. "$top/tests/tap.sh"
: "${MUXD:?MUXD must be the absolute path of src/muxd}"

listing=$("$MUXD" --list-engines) || bail_out "muxd --list-engines failed"
names=$(printf '%s\n' "$listing" | awk 'NF { print $1 }')
[ -n "$names" ] || bail_out "muxd --list-engines printed no engine"

# check_wrappers DIR PROGRAM: every listed engine has an executable
# tests/DIR/NAME.sh that runs PROGRAM for that NAME, and every
# tests/DIR/*.sh names a listed engine.
check_wrappers() {
	dir=$1
	program=$2
	for name in $names; do
		wrapper=$top/tests/$dir/$name.sh
		what="engine $name has an executable tests/$dir/$name.sh"
		if [ ! -x "$wrapper" ]; then
			ok 1 "$what"
			diag "missing or not executable: $wrapper"
		elif ! grep -Eq "/$program\" $name( |\$)" "$wrapper"; then
			ok 1 "$what"
			diag "$wrapper does not run $program for $name:"
			diag "$(cat "$wrapper")"
		else
			ok 0 "$what"
		fi
	done

	unknown=
	for wrapper in "$top"/tests/$dir/*.sh; do
		[ -e "$wrapper" ] || continue
		name=$(basename "$wrapper" .sh)
		printf '%s\n' "$names" | grep -qxF -- "$name" || unknown="$unknown $name"
	done
	is "$unknown" "" "every tests/$dir/*.sh names an engine muxd lists"
}

duplicates=$(printf '%s\n' "$names" | sort | uniq -d)
is "$duplicates" "" "no engine is listed twice"

check_wrappers engine conform
check_wrappers abuse-engine abuse

tap_done
