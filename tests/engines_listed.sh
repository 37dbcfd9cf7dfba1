#!/bin/sh
# engines_listed.sh -- guard: `muxd --list-engines` is a table the test
# matrix (tests/matrix.sh) and scripts can read.
#
# Each line is a unique name, a description and at least one [tag] at its
# end; an engine with --accept strategies shows them as "(--accept: A B;
# default A)", with its default among them, and muxd refuses any other
# strategy for it with a usage error that lists the ones it takes.

top=${top_srcdir:-${srcdir:-$(dirname "$0")/..}}
. "$top/tests/tap.sh"
: "${MUXD:?MUXD must be the absolute path of src/muxd}"

listing=$("$MUXD" --list-engines) || bail_out "muxd --list-engines failed"
names=$(printf '%s\n' "$listing" | awk 'NF { print $1 }')
[ -n "$names" ] || bail_out "muxd --list-engines printed no engine"

duplicates=$(printf '%s\n' "$names" | sort | uniq -d)
is "$duplicates" "" "no engine is listed twice"

untagged=$(printf '%s\n' "$listing" | grep -Ev '(\[[a-z0-9-]+\])+$' | awk '{ print $1 }')
is "$untagged" "" "every engine's line ends with its [tags]"

all_strategies=$(printf '%s\n' "$listing" |
	sed -n 's/.*(--accept: \([a-z ]*\);.*/\1/p' | tr ' ' '\n' | sort -u)
[ -n "$all_strategies" ] || bail_out "no engine lists an --accept strategy"

# check_accept NAME REST: the engine's strategies as listed are the ones
# muxd lets it take.
check_accept() {
	name=$1 rest=$2
	strategies=$(printf '%s\n' "$rest" | sed -n 's/.*(--accept: \([a-z ]*\); default \([a-z]*\)).*/\1/p')
	default=$(printf '%s\n' "$rest" | sed -n 's/.*(--accept: \([a-z ]*\); default \([a-z]*\)).*/\2/p')
	for other in $all_strategies; do
		case " $strategies " in *" $other "*) continue ;; esac
		# timeout: a strategy wrongly taken would start serving.
		msg=$(timeout 10 "$MUXD" --engine "$name" --accept="$other" \
			--listen echo=127.0.0.1:0 2>&1 >/dev/null)
		is "$?" 2 "$name: --accept=$other is a usage error (exit 2)"
		case $msg in
		*"$name"*"$other"*)
			ok 0 "$name: the refusal names the engine and the strategy" ;;
		*)
			ok 1 "$name: the refusal names the engine and the strategy"
			diag "muxd said: $msg" ;;
		esac
		if [ -n "$strategies" ]; then
			case $msg in
			*"$strategies"*) ok 0 "$name: the refusal lists what it takes ($strategies)" ;;
			*) ok 1 "$name: the refusal lists what it takes ($strategies)"
			   diag "muxd said: $msg" ;;
			esac
		fi
		break
	done
	[ -z "$strategies" ] && return
	case " $strategies " in
	*" $default "*) ok 0 "$name: its default --accept=$default is one it takes" ;;
	*) ok 1 "$name: its default --accept=$default is one it takes" ;;
	esac
}

printf '%s\n' "$listing" | {
	while read -r name rest; do
		[ -n "$name" ] && check_accept "$name" "$rest"
	done
	tap_done
}
