#!/bin/sh
# matrix.sh SUITE.matrix -- one test program against every engine that
# `muxd --list-engines=tsv` lists, as one TAP stream.
#
# The matrix follows the dispatch table: the listing gives each engine's
# name, tags and --accept strategies, so an engine is tested the day it
# joins the table, with no file in tests/ to add. The .matrix file says
# what to run, one "key: value" line each ('#' lines are comments):
#   program: P    tests/P ENGINE [ARGS], P's usage
#   tag: T        only the engines tagged T
#   runs: R       "default" (the engine with its defaults, the default) or
#                 "variants": each of its --accept strategies but the
#                 default, and a [pool] engine with a small pool
#                 (--workers 8) that the clients outnumber
# Each run's results are renumbered into this stream and named after the
# run ("prefork --accept=flock: ..."); a run that bails out, dies or stops
# short of its plan counts as a failure, and the other runs go on.
#
# MUXD_MATRIX_ENGINES="a b" keeps those engines only, MUXD_MATRIX_TAG=T
# those tagged T (check-valgrind and check-tsan-engines use them).

matrix=${1:?usage: matrix.sh SUITE.matrix}
: "${MUXD:?MUXD must be the absolute path of src/muxd}"
: "${MUXD_TESTS_BUILDDIR:?MUXD_TESTS_BUILDDIR must name the tests build dir}"

# key KEY: its value in the .matrix file, or nothing.
key() {
	sed -n "s/^$1:[ \t]*//p" "$matrix" | head -n 1
}

program=$(key program)
runs=$(key runs)
suite_tag=$(key tag)
[ -n "$program" ] || { echo "Bail out! $matrix names no program"; exit 1; }
case ${runs:-default} in
default | variants) ;;
*) echo "Bail out! $matrix: no runs '$runs'"; exit 1 ;;
esac
listing=$("$MUXD" --list-engines=tsv) ||
	{ echo "Bail out! muxd --list-engines=tsv failed"; exit 1; }
out=$(mktemp) && tap=$(mktemp) || exit 1
trap 'rm -f "$out" "$tap"' EXIT
count=0
failed=0

# The TAP of one run, renumbered from base and named after the run; its
# last line is "= RESULTS FAILURES" for the caller.
renumber() {
	awk -v base="$1" -v label="$2" -v status="$3" '
	function result(word, rest) {
		n++
		if (word == "not ok") bad++
		sub(/^[0-9]+( - | )?/, "", rest)
		printf "%s %d - %s: %s\n", word, base + n, label, rest
	}
	function failure(why) {
		n++; bad++
		printf "not ok %d - %s: %s\n", base + n, label, why
	}
	/^not ok / { result("not ok", substr($0, 8)); next }
	/^ok / { result("ok", substr($0, 4)); next }
	/^1\.\.0/ {
		why = $0; sub(/^1\.\.0[ \t]*(#[ \t]*)?(SKIP|skip)?[ \t]*/, "", why)
		n++; skipped = 1
		printf "ok %d - %s # SKIP %s\n", base + n, label, why
		next
	}
	/^1\.\.[0-9]+/ { planned = substr($1, 4) + 0; next }
	/^Bail out!/ { failure($0); next }
	{ print }
	END {
		ran = n
		if (!skipped && planned == "")
			failure("no plan: the run ended early (" status ")")
		else if (!skipped && ran < planned)
			failure("ran " ran " of " planned " planned tests (" status ")")
		if (status != "exit 0" && !bad)
			failure("ended with " status " and no failed test")
		printf "= %d %d\n", n, bad
	}' "$out"
}

# run ARGS...: tests/PROGRAM ARGS, added to this stream.
run() {
	"$MUXD_TESTS_BUILDDIR/$program" "$@" </dev/null >"$out" 2>&1
	status="exit $?"
	renumber "$count" "$*" "$status" >"$tap"
	sed '$d' "$tap"
	set -- $(tail -n 1 "$tap")
	count=$((count + $2))
	failed=$((failed + $3))
}

has_tag() { # TAGS TAG
	case " $1 " in *" $2 "*) return 0 ;; esac
	return 1
}

wanted() { # NAME TAGS: do the suite and the caller's filter keep it?
	if [ -n "${MUXD_MATRIX_ENGINES-}" ]; then
		case " $MUXD_MATRIX_ENGINES " in *" $1 "*) ;; *) return 1 ;; esac
	fi
	for tag in $suite_tag ${MUXD_MATRIX_TAG-}; do
		has_tag "$2" "$tag" || return 1
	done
	return 0
}

# The runs of one engine: NAME TAGS STRATEGIES (the default first).
engine_runs() {
	if [ "${runs:-default}" = default ]; then
		run "$1"
		return
	fi
	set -- "$1" "$2" $3
	name=$1 tags=$2
	shift 2
	[ $# -gt 0 ] && shift	# the default: the other suites run it
	for strategy in "$@"; do
		run "$name" "--accept=$strategy"
	done
	has_tag "$tags" pool && run "$name" --workers 8
}

# One line at a time, in this shell: a redirected loop would make the
# shell keep a copy of its standard input that every muxd inherits.
set -f
tab=$(printf '\t')
IFS='
'
for line in $listing; do
	IFS=$tab
	set -- $line
	unset IFS
	[ "$3" = - ] && set -- "$1" "$2" ""
	wanted "$1" "$2" && engine_runs "$1" "$2" "$3"
done

[ "$count" -gt 0 ] || { echo "Bail out! no engine matched (MUXD_MATRIX_ENGINES, MUXD_MATRIX_TAG)"; exit 1; }
echo "1..$count"
[ "$failed" -eq 0 ]
