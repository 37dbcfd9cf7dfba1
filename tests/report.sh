#!/bin/sh
# report.sh -- make bench's report and charts, and a tiny live run.
#
# The report is remade from the full run kept in bench/results and from
# CSVs made here, in bench.sh's own columns: every scenario, with runs
# skipped and failed, so that each table and chart has something to show
# and to leave out. The charts are checked through their SVG, which keeps
# every title and key entry as text. Then bench.sh itself runs for a few
# seconds on one engine: a progress line per run, the scenarios muxd has
# no service for skipped with the reason, no warning from gnuplot.

top=${top_srcdir:-${srcdir:-$(dirname "$0")/..}}
. "$top/tests/tap.sh"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/muxd-report.XXXXXX") || bail_out "mktemp failed"
# MUXD_TEST_KEEP keeps the CSVs, reports and charts made here, to look at.
trap 'if [ -n "${MUXD_TEST_KEEP:-}" ]; then diag "kept $tmp"; else rm -rf "$tmp"; fi' EXIT
have_gnuplot=no
command -v gnuplot >/dev/null 2>&1 && have_gnuplot=yes

# has_text FILE TEXT...: FILE exists and holds every TEXT.
has_text() {
	file=$1
	shift
	[ -s "$file" ] || { diag "$file is missing or empty"; return 1; }
	for text in "$@"; do
		grep -qF -- "$text" "$file" || { diag "$file lacks '$text'"; return 1; }
	done
}
lacks_text() { ! grep -qF -- "$2" "$1" || { diag "$1 has '$2'"; return 1; }; }

# ---- the full run kept in bench/results ----

# The newest run with every kind of classic scenario (a run of a few
# scenarios has no stamp or idle panel to look for).
csv=
for f in $(ls -r "$top"/bench/results/*.csv 2>/dev/null); do
	grep -q ',stamp-c32,' "$f" && grep -q ',idle-' "$f" && grep -q ',pingpong-' "$f" &&
		{ csv=$f; break; }
done
if [ -z "$csv" ]; then
	skip 7 "no bench/results/*.csv of a full run to report on"
else
	cp "$csv" "$tmp/run.csv"
	sh "$top/bench/report.sh" "$tmp/run.csv" >"$tmp/run.md" 2>"$tmp/err"
	check "the report of $(basename "$csv") has its tables" grep -q '^| engine' "$tmp/run.md"
	is "$(cat "$tmp/err")" "" "report.sh says nothing on standard error"
	if [ $have_gnuplot = no ]; then
		skip 5 "gnuplot is not installed: no charts"
	else
		check "rates chart: y axes named, legends in words, CPU per connection on a log scale" \
			has_text "$tmp/run.svg" "connections per second" "messages per second" \
			"1 client at a time" "32 clients at once" "100 connections" \
			"server CPU per connection" "microseconds (log scale)"
		check "cost chart: CPU per message and per connection, lower is better" \
			has_text "$tmp/run-cost.svg" "lower is better" \
			"server CPU per message" "per connection"
		check "cost chart: system calls per message by kind" \
			has_text "$tmp/run-cost.svg" "system calls per message by kind" \
			">read<" ">write<" ">wait<"
		check "cost chart: memory per idle connection on a log scale" \
			has_text "$tmp/run-cost.svg" "server memory per idle connection" "KiB (log scale)"
		check "latency chart: p50 and p99 against N, by family, with two N or more" \
			has_text "$tmp/run-latency.svg" "p50: processes and threads" \
			"p99: single-threaded reactors" "connections N"
	fi
fi

# ---- CSVs made here ----

# row ROUND ENGINE SCENARIO STATUS [COLUMN=VALUE]...: a CSV line in
# bench.sh's columns, those not given left empty.
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

# A quick run's kind: one N of ping-pong, and every new scenario. k is an
# engine's cost factor, so that the figures differ from row to row.
measured() {	# ROUND ENGINE K
	r=$1 e=$2 k=$3
	row $r $e stamp-c32 ok mode=connrate n=32 rate=$((40000 / k)) unit=conn/s \
		server_us_per_unit=$((20 * k)) p50_us=100 p99_us=300
	row $r $e pingpong-100 ok mode=pingpong n=100 rate=$((90000 / k)) unit=msg/s \
		server_us_per_unit=$((8 * k)) p50_us=$((1000 * k)) p99_us=$((3000 * k)) \
		sys_read=1 sys_write=1 sys_wait=0.1
	row $r $e idle-1000 ok mode=idle n=1000 rate=1000 unit=open kib_per_conn=$((k * k))
	row $r $e latency-curve-cap ok mode=pingpong n=100 rate=$((90000 / k)) unit=msg/s
	for load in 10 30 50 70 90; do
		row $r $e latency-curve-$load ok mode=pingpong n=100 rate=$((900 * load / k)) \
			unit=msg/s offered=$((900 * load / k)) p50_us=$((100 * k)) \
			p99_us=$((load * load * k)) p999_us=$((2 * load * load * k))
	done
	row $r $e mixed ok mode=work n=100 rate=8000 unit=req/s offered=8000 \
		light_p99_us=$((500 * k)) heavy_p99_us=$((6000 * k))
	row $r $e backend-10k ok mode=delay n=10000 rate=$((99000 / k)) unit=req/s \
		server_us_per_unit=$((5 * k)) kib_per_conn=$((k * k))
}
skipped() {	# ROUND ENGINE SCENARIO... REASON as the last argument
	r=$1 e=$2
	shift 2
	for s; do :; done
	why=$s
	while [ $# -gt 1 ]; do
		row $r $e "$1" skip note="$why"
		shift
	done
}
{
	echo "$header"
	for r in 1 2; do
		measured $r epoll-lt 1
		measured $r pthread 2
		measured $r io_uring 1
		measured $r fork 5
		row $r iterative stamp-c32 ok mode=connrate n=32 rate=30000 unit=conn/s server_us_per_unit=15
		skipped $r iterative pingpong-100 idle-1000 latency-curve-cap latency-curve-10 \
			latency-curve-30 latency-curve-50 latency-curve-70 latency-curve-90 mixed \
			backend-10k "serves one connection at a time"
		row $r libuv pingpong-100 ok mode=pingpong n=100 rate=70000 unit=msg/s \
			server_us_per_unit=9 p50_us=900 p99_us=2000 sys_perf=2.1
		skipped $r libuv mixed backend-10k "ref-libuv serves upper and stamp only"
	done
	row 1 fork mixed fail mode=work n=100 note=timeout
} | awk -F, '!($2 == "fork" && $3 == "mixed" && $6 == "ok")' >"$tmp/new.csv"
sh "$top/bench/report.sh" "$tmp/new.csv" >"$tmp/new.md" 2>"$tmp/new.err"
is "$(cat "$tmp/new.err")" "" \
	"a run with one N and every new scenario: nothing on standard error (no gnuplot warning)"
check "report: the latency-curve, mixed and backend-10k tables" \
	has_text "$tmp/new.md" "## Latency against load" "## Mixed work" \
	"## 10,000 clients waiting on a backend"
check "report: the skips of a row once per reason, latency-curve's loads in one" \
	has_text "$tmp/new.md" "- iterative, pingpong-100, idle-1000, latency-curve, mixed, backend-10k: serves one connection at a time"
if [ $have_gnuplot = no ]; then
	skip 7 "gnuplot is not installed: no charts"
else
	check "rates chart: a skipped bar says skipped" has_text "$tmp/new.svg" ">skipped<"
	check "cost chart: the reference rows' system calls drawn from perf's count" \
		has_text "$tmp/new-cost.svg" "all kinds (perf)"
	check "latency chart with one N: bars of p50 and p99, no lines against N" \
		has_text "$tmp/new-latency.svg" "at N=100 connections" ">p50<" ">p99<"
	check "latency chart with one N: no N axis" lacks_text "$tmp/new-latency.svg" "connections N"
	check "curve chart: p50, p99 and p99.9 against the load, by family" \
		has_text "$tmp/new-curve.svg" "p99.9: single-threaded reactors" \
		"p50: multi-threaded and completion engines" "p99: processes and threads" \
		"load, % of the engine's own closed-loop capacity" "iterative: skipped"
	check "mixed chart: light and heavy p99, a failed run marked" \
		has_text "$tmp/new-mixed.svg" "light requests (99 %)" "heavy requests (1 %)" \
		">failed<" ">skipped<"
	check "backend chart: rate, CPU per request, memory per connection" \
		has_text "$tmp/new-backend.svg" "requests answered per second" \
		"server CPU per request" "memory per waiting connection"
fi

# Every engine muxd lists, and the reference rows: each its own colour
# and marker, no group of more than 8.
{
	echo "$header"
	for e in $("$MUXD" --list-engines=tsv | cut -f1) libuv libevent nginx; do
		row 1 $e stamp-c32 ok mode=connrate n=32 rate=1000 unit=conn/s
	done
} >"$tmp/all.csv"
sh "$top/bench/report.sh" --styles "$tmp/all.csv" >"$tmp/styles"
is "$(wc -l <"$tmp/styles" | tr -d ' ')" "$(($("$MUXD" --list-engines | wc -l) + 3))" \
	"chart styles: one for every engine and reference row"
is "$(cut -f3,4 "$tmp/styles" | sort | uniq -d)" "" \
	"chart styles: no two rows share a colour and marker"
is "$(cut -f2 "$tmp/styles" | sort | uniq -c | awk '$1 > 8')" "" \
	"chart styles: no group (panel) of more than 8 lines"

# ---- a tiny live run ----

sh "$top/bench/bench.sh" --engines=epoll-lt --scenarios=stamp-c32,latency-curve,mixed \
	--rounds=1 --duration=0.2 --warmup=0 --no-refs --no-nginx \
	--out="$tmp/live" >"$tmp/live.out" 2>"$tmp/live.err"
is "$?" 0 "bench.sh on one engine: exit status 0"
is "$(grep -c '^bench.sh: \[[0-9]*/8\] round 1/1, ' "$tmp/live.err")" 8 \
	"bench.sh: one progress line per run on standard error, 8 of 8"
check "bench.sh: a progress line names the scenario, the engine and the rate" \
	grep -q '^bench.sh: \[1/8\] round 1/1, stamp-c32, epoll-lt: [0-9.]* conn/s' "$tmp/live.err"
check "bench.sh: latency-curve's loads are asked of the engine's own capacity" \
	grep -q '^bench.sh: \[7/8\] round 1/1, latency-curve-90, epoll-lt: [0-9.]* msg/s ([0-9]* asked)' "$tmp/live.err"
if "$MUXD" --list-services | grep -q '^work '; then
	check "bench.sh: mixed runs where muxd serves work" \
		grep -q '^bench.sh: \[8/8\] round 1/1, mixed, epoll-lt: [0-9.]* req/s' "$tmp/live.err"
else
	check "bench.sh: mixed skipped, muxd having no work service" \
		grep -qF '[8/8] round 1/1, mixed, epoll-lt: skip: muxd has no work service' "$tmp/live.err"
fi
lacks() { ! grep -i "warning" "$1"; }
check "bench.sh: no warning on standard error" lacks "$tmp/live.err"
tap_done
