#!/bin/sh
# report.sh -- make bench's report, remade from the run kept in
# bench/results: the tables, and with gnuplot the three charts (rates,
# costs, latencies), each with the panels the README describes. The
# benchmark itself is not run: it takes far too long for make check.

top=${top_srcdir:-${srcdir:-$(dirname "$0")/..}}
. "$top/tests/tap.sh"

# The newest run with every kind of scenario the charts draw (a run of a
# few scenarios has no stamp or idle panel to look for).
csv=
for f in $(ls -r "$top"/bench/results/*.csv 2>/dev/null); do
	grep -q ',stamp-c32,' "$f" && grep -q ',idle-' "$f" && grep -q ',pingpong-' "$f" &&
		{ csv=$f; break; }
done
if [ -z "$csv" ]; then
	echo "1..0 # SKIP no bench/results/*.csv of a full run to report on"
	exit 0
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/muxd-report.XXXXXX") || bail_out "mktemp failed"
trap 'rm -rf "$tmp"' EXIT
cp "$csv" "$tmp/run.csv"
sh "$top/bench/report.sh" "$tmp/run.csv" >"$tmp/run.md" 2>"$tmp/err"
check "the report of $(basename "$csv") has its tables" grep -q '^| engine' "$tmp/run.md"
is "$(cat "$tmp/err")" "" "report.sh says nothing on standard error"

# A CSV made here, in bench.sh's columns: row ROUND ENGINE SCENARIO
# STATUS [COLUMN=VALUE]..., the columns not given left empty.
header=$(sed -n 's/^csv_header="\(.*\)"$/\1/p' "$top/bench/bench.sh")
row() {
	awk -v header="$header" 'BEGIN {
		n = split(header, name, ",")
		v["round"] = ARGV[1]; v["engine"] = ARGV[2]; v["scenario"] = ARGV[3]
		v["status"] = ARGV[4]
		for (i = 5; i < ARGC; i++) { split(ARGV[i], kv, "="); v[kv[1]] = kv[2] }
		for (i = 1; i <= n; i++) printf "%s%s", v[name[i]], i < n ? "," : "\n"
	}' "$@"
}
{
	echo "$header"
	for r in 1 2; do
		row $r multi-reactor pingpong-100 ok mode=pingpong n=100 rate=1000 \
			unit=msg/s thread_accepted=50/50
	done
} >"$tmp/balance.csv"
sh "$top/bench/report.sh" "$tmp/balance.csv" >"$tmp/balance.md" 2>/dev/null
is "$(grep '^- multi-reactor, pingpong-100:' "$tmp/balance.md")" \
	"- multi-reactor, pingpong-100: 50/50; 50/50" \
	"per-thread balance: one entry per round, no leading separator"

if ! command -v gnuplot >/dev/null 2>&1; then
	skip 5 "gnuplot is not installed: no charts"
	tap_done
fi
# has_panels FILE TEXT...: FILE exists and holds every TEXT (SVG keeps
# the titles as text).
has_panels() {
	file=$1
	shift
	[ -s "$file" ] || return 1
	for text in "$@"; do
		grep -q "$text" "$file" || { diag "$file lacks '$text'"; return 1; }
	done
}
rates() { [ -s "$tmp/run.png" ] && has_panels "$tmp/run.svg" "connections per second"; }
memory() {
	[ -s "$tmp/run-cost.png" ] &&
		has_panels "$tmp/run-cost.svg" "memory per idle connection, KiB (log scale)"
}
latency() {
	[ -s "$tmp/run-latency.png" ] &&
		has_panels "$tmp/run-latency.svg" ">p50<" ">p99<" "connections N"
}
check "rates chart, png and svg" rates
check "cost chart: CPU per message and per connection, lower is better" \
	has_panels "$tmp/run-cost.svg" "lower is better" \
	"CPU microseconds per message" "per connection"
check "cost chart: system calls per message by kind" \
	has_panels "$tmp/run-cost.svg" "system calls per message, by kind" \
	">read<" ">write<" ">wait<"
check "cost chart: memory per idle connection on a log scale, png and svg" memory
check "latency chart: p50 and p99 at each N, png and svg" latency
tap_done
