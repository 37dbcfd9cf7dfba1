#!/bin/sh
# engines_listed.sh -- guard: the engine listings are tables that people
# (--list-engines) and programs (--list-engines=tsv) can read, and say the
# same (muxd.1, OPTIONS).
#
# Each human line is a unique name, a description and at least one [tag]
# at its end; an engine with --accept strategies shows them as "(--accept:
# A B; default A)", and one that takes --threads "(--threads)". Each tsv
# line is name, tags, strategies with the default first (or -), and
# threads, workers or -, tab-separated. muxd refuses any strategy an
# engine does not list with a usage error that lists the ones it takes.

top=${top_srcdir:-${srcdir:-$(dirname "$0")/..}}
. "$top/tests/tap.sh"
: "${MUXD:?MUXD must be the absolute path of src/muxd}"

human=$("$MUXD" --list-engines) || bail_out "muxd --list-engines failed"
tsv=$("$MUXD" --list-engines=tsv) || bail_out "muxd --list-engines=tsv failed"
names=$(printf '%s\n' "$human" | awk 'NF { print $1 }')
[ -n "$names" ] || bail_out "muxd --list-engines printed no engine"

is "$(printf '%s\n' "$names" | sort | uniq -d)" "" "no engine is listed twice"
untagged=$(printf '%s\n' "$human" | grep -Ev '(\[[a-z0-9-]+\])+$' | awk '{ print $1 }')
is "$untagged" "" "every engine's line ends with its [tags]"
is "$(printf '%s\n' "$tsv" | cut -f1)" "$names" \
	"--list-engines=tsv lists the same engines in the same order"
malformed=$(printf '%s\n' "$tsv" | awk -F '\t' 'NF != 4 || $2 == "" ||
	$4 !~ /^(threads|workers|-)$/ { print $1 }')
is "$malformed" "" "each tsv line: name, tags, strategies, threads|workers|-"

# The human line's tags, strategies (the default first) and option, in
# the tsv form, for comparing.
as_tsv() {
	printf '%s\n' "$human" | awk '{
		name = $1; tags = ""; line = $0
		while (match(line, /\[[a-z0-9-]+\]/)) {
			tags = tags (tags == "" ? "" : " ") substr(line, RSTART + 1, RLENGTH - 2)
			line = substr(line, RSTART + RLENGTH)
		}
		strategies = "-"
		if (match($0, /\(--accept: [a-z ]*; default [a-z]*\)/)) {
			s = substr($0, RSTART + 11, RLENGTH - 12)
			split(s, part, "; default ")
			strategies = part[2]
			n = split(part[1], each, " ")
			for (i = 1; i <= n; i++)
				if (each[i] != part[2])
					strategies = strategies " " each[i]
		}
		option = index($0, "(--threads)") ? "threads" : \
			 index($0, "[pool]") || index($0, "[offload]") ? "workers" : "-"
		printf "%s\t%s\t%s\t%s\n", name, tags, strategies, option
	}'
}
is "$(as_tsv)" "$tsv" "the tsv rows say what the human lines say"

all_strategies=$(printf '%s\n' "$tsv" | cut -f3 | tr ' ' '\n' | grep -v '^-$' | sort -u)
[ -n "$all_strategies" ] || bail_out "no engine lists an --accept strategy"

# check_accept NAME STRATEGIES: the strategies listed are the ones muxd
# lets the engine take.
check_accept() {
	name=$1 strategies=$2
	[ "$strategies" = - ] && strategies=
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
		for s in $strategies; do
			case $msg in
			*"$s"*) ;;
			*) ok 1 "$name: the refusal lists what it takes ($strategies)"
			   diag "muxd said: $msg"
			   return ;;
			esac
		done
		[ -n "$strategies" ] &&
			ok 0 "$name: the refusal lists what it takes ($strategies)"
		break
	done
}

tab=$(printf '\t')
printf '%s\n' "$tsv" | {
	while IFS=$tab read -r name tags strategies option; do
		check_accept "$name" "$strategies"
	done
	tap_done
}
