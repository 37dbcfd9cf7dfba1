#!/bin/sh
# matrix.sh SUITE.matrix -- one test program against every engine that
# `muxd --list-engines` prints, as one TAP stream.
#
# The matrix follows the dispatch table: the listing names each engine,
# its [tags] and its --accept strategies, so an engine is tested the day
# it joins the table, with no file in tests/ to add. The suite is the
# file's name:
#   conform   tests/conform, each engine with its defaults
#   variants  tests/conform, each engine's other --accept strategies, and
#             each [pool] engine with a small pool (--workers 8) that the
#             clients outnumber
#   abuse     tests/abuse, each engine with its defaults
#   completion  tests/completion, each engine tagged [completion]: scale,
#             late completions, buffer shortage
#   soak      tests/soak, each engine with its defaults: seeded data
#             through slow, pausing, resetting clients, every byte checked
#   requests  tests/requests, each engine with its defaults: delay and
#             work, waits that never block a loop, clients that leave
#   ready     tests/ready, each engine (it tries every --accept strategy
#             itself): started under descriptor limits too small for it
# Each run's results are renumbered into this stream and named after the
# run ("prefork --accept=flock: ..."); a run that bails out, dies or stops
# short of its plan counts as a failure, and the other runs go on.
#
# MUXD_MATRIX_ENGINES="a b" keeps those engines only, MUXD_MATRIX_TAG=T
# those tagged [T] (check-valgrind and check-tsan-engines use them).

suite=$(basename "${1:?usage: matrix.sh SUITE.matrix}" .matrix)
: "${MUXD:?MUXD must be the absolute path of src/muxd}"
: "${MUXD_TESTS_BUILDDIR:?MUXD_TESTS_BUILDDIR must name the tests build dir}"

case $suite in
conform | variants) program=conform ;;
abuse) program=abuse ;;
soak) program=soak ;;
requests) program=requests ;;
ready) program=ready ;;
completion) program=completion MUXD_MATRIX_TAG=completion ;;
*) echo "Bail out! matrix.sh: no suite '$suite'"; exit 1 ;;
esac

listing=$("$MUXD" --list-engines) || { echo "Bail out! muxd --list-engines failed"; exit 1; }
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

wanted() { # NAME REST: does the caller's filter keep this engine?
	if [ -n "${MUXD_MATRIX_ENGINES-}" ]; then
		case " $MUXD_MATRIX_ENGINES " in *" $1 "*) ;; *) return 1 ;; esac
	fi
	if [ -n "${MUXD_MATRIX_TAG-}" ]; then
		case $2 in *"[$MUXD_MATRIX_TAG]"*) ;; *) return 1 ;; esac
	fi
	return 0
}

# The runs of one engine for this suite.
engine_runs() {
	name=$1 rest=$2
	if [ "$suite" != variants ]; then
		run "$name"
		return
	fi
	strategies=$(printf '%s\n' "$rest" | sed -n 's/.*(--accept: \([a-z ]*\); default \([a-z]*\)).*/\1/p')
	default=$(printf '%s\n' "$rest" | sed -n 's/.*(--accept: \([a-z ]*\); default \([a-z]*\)).*/\2/p')
	for strategy in $strategies; do
		[ "$strategy" = "$default" ] || run "$name" "--accept=$strategy"
	done
	case $rest in *"[pool]"*) run "$name" --workers 8 ;; esac
}

# One line at a time, in this shell: a redirected loop would make the
# shell keep a copy of its standard input that every muxd inherits.
set -f
IFS='
'
for line in $listing; do
	unset IFS
	set -- $line
	name=$1
	shift
	wanted "$name" "$*" && engine_runs "$name" "$*"
done

[ "$count" -gt 0 ] || { echo "Bail out! no engine matched (MUXD_MATRIX_ENGINES, MUXD_MATRIX_TAG)"; exit 1; }
echo "1..$count"
[ "$failed" -eq 0 ]
