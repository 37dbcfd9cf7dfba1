#!/bin/sh
# engines_listed.sh -- guard: the engine tests and muxd's engine table agree.
#
# Every engine that `muxd --list-engines` prints needs tests/engine/NAME.sh
# running conform for that same NAME (extra muxd options may follow it, as
# the pool engines' --workers 64 does), and no wrapper may name an engine
# muxd does not have: a matrix kept by hand drifts, this one cannot.

top=${top_srcdir:-${srcdir:-$(dirname "$0")/..}}
. "$top/tests/tap.sh"
: "${MUXD:?MUXD must be the absolute path of src/muxd}"

listing=$("$MUXD" --list-engines) || bail_out "muxd --list-engines failed"
names=$(printf '%s\n' "$listing" | awk 'NF { print $1 }')
[ -n "$names" ] || bail_out "muxd --list-engines printed no engine"

for name in $names; do
	wrapper=$top/tests/engine/$name.sh
	if [ ! -x "$wrapper" ]; then
		ok 1 "engine $name has an executable tests/engine/$name.sh"
		diag "missing or not executable: $wrapper"
	elif ! grep -Eq "/conform\" $name( |\$)" "$wrapper"; then
		ok 1 "engine $name has an executable tests/engine/$name.sh"
		diag "$wrapper does not run conform for $name:"
		diag "$(cat "$wrapper")"
	else
		ok 0 "engine $name has an executable tests/engine/$name.sh"
	fi
done

duplicates=$(printf '%s\n' "$names" | sort | uniq -d)
is "$duplicates" "" "no engine is listed twice"

unknown=
for wrapper in "$top"/tests/engine/*.sh; do
	[ -e "$wrapper" ] || continue
	name=$(basename "$wrapper" .sh)
	printf '%s\n' "$names" | grep -qxF -- "$name" || unknown="$unknown $name"
done
is "$unknown" "" "every tests/engine/*.sh names an engine muxd lists"

tap_done
