#!/bin/sh
# bench.sh -- every engine of muxd side by side: `make bench`.
#
# For each scenario and each engine of `muxd --list-engines=tsv`, start muxd on
# loopback (pinned to one CPU), drive it with muxbench (pinned to another),
# stop it, and keep one CSV row per run. Engines are interleaved (A B C ...
# A B C ...) over several rounds, because a shared machine drifts and a
# block of runs per engine would turn that drift into a ranking; the report
# gives medians with min-max. What cannot run is skipped with its reason,
# decided from the engine's tags, never its name.
#
# Reference rows run in the same rounds: the same services written against
# libuv and libevent (bench/ref_*.c, built by `make bench` when pkg-config
# finds the library), and nginx for stamp. System calls per unit: for muxd,
# the sum of its --stats counters over the measured interval; for the
# references, every system call perf counts in that interval.
#
# Three scenarios ask what a server model is chosen for: latency-curve
# (upper ping-pong over 100 connections at 10 to 90 % of the capacity the
# same engine showed a moment before, as an open loop), mixed (work
# requests, 1 % of them about 5 ms of CPU, at a rate that keeps the server
# about half busy) and backend-10k (10,000 connections each waiting 100 ms
# a request on delay). A scenario whose service muxd does not list
# (`muxd --list-services`) is skipped with that reason.
#
# One progress line per run on standard error. Writes OUT/DATE-HOST.csv
# (every run), .md (the tables) and, with gnuplot, .png and .svg charts.
# Needs muxd and muxbench: $MUXD and $MUXBENCH, or ./src/muxd and
# ./src/muxbench.
set -u

usage() {
	cat <<EOF
usage: bench.sh [OPTION]...
  --engines=LIST     engines to run, comma-separated (default: all listed)
  --scenarios=LIST   scenarios, comma-separated (default: all; see below)
  --rounds=N         rounds, engines interleaved in each (default 3)
  --duration=S       measured seconds per run (default 3)
  --warmup=S         unmeasured seconds before each (default 1)
  --max-procs=N      most processes a [processes] engine is given (default 1000)
  --out=DIR          where results go (default bench/results)
  --quick            1 round, 1 s runs, three scenarios: about 2 minutes
  --no-nginx         leave out the nginx reference row even if nginx is here
  --no-refs          leave out the libuv and libevent reference rows
  --server-cpus=LIST CPUs muxd runs on, as taskset -c takes them (default 0)
  --client-cpus=LIST CPUs muxbench runs on (default 1); engines that take
                     --threads get one thread per server CPU
  --traces           also trace each engine under pingpong, and draw the
                     timelines into the report (bench/traces.sh)
  --trace-cost       also measure what --trace costs, off and on
  -h, --help
scenarios: $ALL_SCENARIOS
EOF
}

# id:mode:connections:service
SCENARIO_TABLE="
stamp-c1:connrate:1:stamp
stamp-c32:connrate:32:stamp
pingpong-1:pingpong:1:upper
pingpong-100:pingpong:100:upper
pingpong-1000:pingpong:1000:upper
pingpong-10000:pingpong:10000:upper
stream-1:stream:1:upper
stream-16:stream:16:upper
idle-1000:idle:1000:upper
idle-10000:idle:10000:upper
latency-curve:pingpong:100:upper
mixed:work:100:work
backend-10k:delay:10000:delay"
# latency-curve: the closed-loop capacity, then these loads, in percent
# of it; mixed: the light size and the heavy one's CPU time (ms).
CURVE_LOADS="10 30 50 70 90"
LIGHT_N=100
HEAVY_MS=5
ALL_SCENARIOS=$(echo "$SCENARIO_TABLE" | cut -d: -f1 | tr '\n' ' ' | sed 's/^ *//')

MUXD=${MUXD:-./src/muxd}
MUXBENCH=${MUXBENCH:-./src/muxbench}
REF_DIR=${REF_DIR:-./bench}
PKG_CONFIG=${PKG_CONFIG:-pkg-config}
engines="" scenarios=$ALL_SCENARIOS rounds=3 duration=3 warmup=1
max_procs=1000 out=bench/results nginx=yes refs="libuv libevent"
server_cpus="" client_cpus="" traces=no trace_cost=no
heavy_n=0 mixed_rate="" mixed_reason=""	# mixed's, from calibrate_work

for arg; do
	case $arg in
	--engines=*) engines=$(echo "${arg#*=}" | tr ',' ' ') ;;
	--scenarios=*) scenarios=$(echo "${arg#*=}" | tr ',' ' ') ;;
	--rounds=*) rounds=${arg#*=} ;;
	--duration=*) duration=${arg#*=} ;;
	--warmup=*) warmup=${arg#*=} ;;
	--max-procs=*) max_procs=${arg#*=} ;;
	--out=*) out=${arg#*=} ;;
	--quick) rounds=1 duration=1 warmup=0.3
		scenarios="stamp-c32 pingpong-100 stream-1" ;;
	--no-nginx) nginx=no ;;
	--no-refs) refs="" ;;
	--server-cpus=*) server_cpus=${arg#*=} ;;
	--client-cpus=*) client_cpus=${arg#*=} ;;
	--traces) traces=yes ;;
	--trace-cost) trace_cost=yes ;;
	-h|--help) usage; exit 0 ;;
	*) echo "bench.sh: unknown option '$arg'" >&2; usage >&2; exit 2 ;;
	esac
done

die() { echo "bench.sh: $*" >&2; exit 1; }
say() { echo "bench.sh: $*" >&2; }

for s in $scenarios; do
	echo "$SCENARIO_TABLE" | grep -q "^$s:" ||
		die "unknown scenario '$s' (known: $ALL_SCENARIOS)"
done
[ -x "$MUXD" ] || die "no muxd at $MUXD (build it, or set MUXD)"
[ -x "$MUXBENCH" ] || die "no muxbench at $MUXBENCH (build it, or set MUXBENCH)"

# name, tags, --accept strategies, threads|workers|-: tab-separated.
engine_list=$("$MUXD" --list-engines=tsv) || die "$MUXD --list-engines=tsv failed"
service_list=$("$MUXD" --list-services | awk '{print $1}') ||
	die "$MUXD --list-services failed"
[ -n "$engines" ] || engines=$(echo "$engine_list" | cut -f1 | tr '\n' ' ')
for e in $engines; do
	echo "$engine_list" | awk -F '\t' -v e="$e" '$1 == e {f = 1} END {exit !f}' ||
		die "unknown engine '$e'"
done

tmp=$(mktemp -d) || die "mktemp failed"
server_pid=""
perf_pid=""
cleanup() {
	[ -n "$perf_pid" ] && kill -INT "$perf_pid" 2>/dev/null
	[ -n "$server_pid" ] && kill -9 "$server_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Descriptors for 10000 connections on each side.
ulimit -n "$(ulimit -Hn)" 2>/dev/null

# Server on CPU 0, load generator on CPU 1, when there are two; or the
# sets given (--server-cpus, --client-cpus), e.g. 0-7 and 8-15 to measure
# how the multi-threaded engines scale.
cpus=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
pin_server="" pin_client="" pinning="none (one CPU)" server_ncpus=1
if [ "$cpus" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
	: "${server_cpus:=0}" "${client_cpus:=1}"
	pin_server="taskset -c $server_cpus" pin_client="taskset -c $client_cpus"
	pinning="server on CPU(s) $server_cpus, muxbench on CPU(s) $client_cpus (taskset)"
	server_ncpus=$(taskset -c "$server_cpus" nproc) || die "bad --server-cpus '$server_cpus'"
	taskset -c "$client_cpus" true || die "bad --client-cpus '$client_cpus'"
fi

has_tag() { echo "$engine_list" | awk -F '\t' -v e="$1" -v t="$2" '$1 == e && index(" " $2 " ", " " t " ") {f = 1} END {exit !f}'; }
has_service() { echo "$service_list" | grep -qx "$1"; }

# Why engine $1 cannot run scenario mode $2 with $3 connections of
# service $4, or nothing.
skip_reason() {
	if ! has_service "$4"; then
		echo "muxd has no $4 service yet (not in muxd --list-services)"
	elif has_tag "$1" serial && [ "$2" != connrate ] && [ "$3" -gt 1 ]; then
		echo "serves one connection at a time"
	elif has_tag "$1" fd-setsize && [ "$3" -gt 1000 ]; then
		echo "select cannot watch descriptors >= FD_SETSIZE (1024)"
	elif has_tag "$1" processes && [ "$2" != connrate ] && [ "$3" -gt "$max_procs" ]; then
		echo "one process per connection: $3 is over --max-procs=$max_procs"
	fi
}

# muxd's options for engine $1, mode $2, $3 connections.
server_options() {
	echo "--engine $1 --quiet --stats --idle-timeout 0 --max-conns $(($3 + 100))"
	if has_tag "$1" pool && [ "$2" != connrate ]; then
		echo "--workers $(($3 > 8 ? $3 : 8))"
	fi
	# A pool that waits out the delays (half-sync): a worker per client,
	# "--workers big enough" for every wait to run at once.
	if has_tag "$1" offload && [ "$2" = delay ]; then
		echo "--workers $3"
	fi
	takes_threads "$1" && echo "--threads $server_ncpus"
}

# Engines that take --threads: one thread per server CPU.
takes_threads() { echo "$engine_list" | awk -F '\t' -v e="$1" '$1 == e && $4 == "threads" {f = 1} END {exit !f}'; }

# The connections each serving thread accepted, from the last stats line
# (at exit): "a/b/c" and the busiest over the least busy, or nothing.
thread_balance() {
	awk '/muxd: stats:/ {
		for (i = 1; i <= NF; i++) if ($i ~ /^accepted_per_thread=/) v = substr($i, 21)
	} END {
		if (v == "") exit
		n = split(v, a, ","); lo = hi = a[1]
		for (i = 2; i <= n; i++) { if (a[i] + 0 < lo + 0) lo = a[i]; if (a[i] + 0 > hi + 0) hi = a[i] }
		gsub(",", "/", v)
		printf "%s (max/min %s)", v, (lo > 0 ? sprintf("%.2f", hi / lo) : "inf")
	}' "$tmp/err"
}

# Start a server command ($@) that prints `listening SERVICE ADDR PORT`;
# sets server_pid and port, or returns 1.
start_server() {
	: >"$tmp/out"	# now: the child's redirection may come after our first look
	$pin_server "$@" >"$tmp/out" 2>"$tmp/err" &
	server_pid=$!
	i=0
	while [ $i -lt 100 ]; do
		port=$(awk '$1 == "listening" {print $4; exit}' "$tmp/out")
		[ -n "$port" ] && return 0
		kill -0 "$server_pid" 2>/dev/null || break
		sleep 0.05
		i=$((i + 1))
	done
	say "server did not start: $(cat "$tmp/err")"
	stop_server
	return 1
}

stop_server() {
	[ -n "$server_pid" ] || return 0
	kill -TERM "$server_pid" 2>/dev/null
	i=0
	while kill -0 "$server_pid" 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -9 "$server_pid" 2>/dev/null
	wait "$server_pid" 2>/dev/null
	server_pid=""
}

# The number after the last "KEY": in muxbench's one-line JSON; the
# overall latencies come after those of each work size.
json() { sed -n "s/.*\"$1\":\([-0-9.e+]*\).*/\1/p" "$tmp/json"; }

# Counter $1 between the two SIGUSR1 lines muxbench asked for (first and
# second "muxd: stats:" lines of the server's log).
stat_delta() {
	awk -v k="$1" '/muxd: stats:/ {
		for (i = 1; i <= NF; i++) if (split($i, kv, "=") == 2 && kv[1] == k) v[++n] = kv[2]
	} END { if (n >= 2) print v[2] - v[1]; else print "" }' "$tmp/err"
}

csv_header="round,engine,scenario,mode,n,status,rate,unit,p50_us,p99_us,errors,units,server_cpu_s,client_cpu_s,server_us_per_unit,client_us_per_unit,kib_per_conn,server_pss_kib,rss_kib_per_conn,server_rss_kib,sys_accept,sys_read,sys_write,sys_wait,sys_ctl,sys_fork,sys_thread,sys_lock,sys_uring_enter,sys_total,sys_perf,thread_accepted,offered,p90_us,p999_us,p9999_us,max_us,late,late_max_us,unanswered,light_p99_us,heavy_p99_us,setting,note"

# A row with nothing measured: status $1, note $2.
blank_fields=$(echo "$csv_header" | awk -F, '{ for (i = 7; i <= NF; i++) printf "," }')
empty_row() {
	echo "$round,$engine,$id,$mode,$n,$1$blank_fields\"$2\""
	progress "$1: $2"
}

# One line on standard error for each run, as it ends: $1 what came of it.
progress() {
	done_runs=$((done_runs + 1))
	say "[$done_runs/$total] round $round/$rounds, $id, $engine: $1"
}

# Why reference server $1 is not here, or nothing.
ref_missing() {
	[ -x "$REF_DIR/ref-$1" ] && return
	if "$PKG_CONFIG" --exists "$1" 2>/dev/null; then
		echo "$REF_DIR/ref-$1 not built (make bench builds it)"
	else
		echo "$1 not found by pkg-config"
	fi
}

# Start the server of row $engine for this scenario, or set reason.
start_row() {
	reason=""
	case $engine in
	nginx) start_nginx || reason="nginx did not start" ;;
	libuv|libevent)
		case $service in
		upper|stamp) reason=$(ref_missing "$engine") ;;
		*) reason="ref-$engine serves upper and stamp only" ;;
		esac
		[ -n "$reason" ] ||
			start_server "$REF_DIR/ref-$engine" --listen "$service=127.0.0.1:0" ||
			reason="ref-$engine did not start" ;;
	*)
		reason=$(skip_reason "$engine" "$mode" "$n" "$service")
		[ -n "$reason" ] ||
			start_server "$MUXD" $(server_options "$engine" "$mode" "$n") \
				--listen "$service=127.0.0.1:0" ||
			reason="muxd did not start" ;;
	esac
}

# One run: round $1, engine $2 (a muxd engine or a reference), scenario
# line $3. Prints its CSV rows: one, or latency-curve's capacity and loads.
run_one() {
	round=$1 engine=$2
	id=$(echo "$3" | cut -d: -f1) mode=$(echo "$3" | cut -d: -f2)
	n=$(echo "$3" | cut -d: -f3) service=$(echo "$3" | cut -d: -f4)
	bench_args="" setting=""
	case $id in
	latency-curve) run_curve ;;
	mixed)
		if [ -n "$mixed_reason" ] && is_muxd_row; then
			empty_row skip "$mixed_reason"
			return
		fi
		bench_args="--work-mix $LIGHT_N:99,$heavy_n:1 --rate $mixed_rate"
		setting="work $LIGHT_N:99 and $heavy_n:1 (about $HEAVY_MS ms) at $mixed_rate/s"
		run_measured ;;
	backend-10k)
		bench_args="--delay-ms 100" setting="delay 100 ms in closed loops"
		run_measured ;;
	*) run_measured ;;
	esac
}

# latency-curve: the row's closed-loop capacity, then an open loop at
# each of CURVE_LOADS percent of it, each run on a server of its own.
run_curve() {
	curve=$id
	id=$curve-cap setting="closed loop"
	run_measured
	capacity=$run_rate why=$run_reason
	for load in $CURVE_LOADS; do
		id=$curve-$load setting="$load % of the closed-loop capacity"
		if [ -n "$why" ]; then
			empty_row skip "$why"
			continue
		elif [ -z "$capacity" ]; then
			empty_row fail "no capacity: its closed-loop run failed"
			continue
		fi
		bench_args="--rate $(awk -v c="$capacity" -v p="$load" \
			'BEGIN { r = int(c * p / 100 + 0.5); print r < 1 ? 1 : r }')"
		run_measured
	done
}

# One measured run of the current row and scenario, muxbench given
# bench_args. Sets run_rate (empty unless it succeeded) and run_reason
# (why it was skipped, or empty).
run_measured() {
	run_rate="" run_reason=""
	start_row
	if [ -n "$reason" ]; then
		run_reason=$reason
		empty_row skip "$reason"
		return
	fi
	hold=$duration
	[ "$mode" = idle ] && hold=1
	start_perf
	$pin_client "$MUXBENCH" "$mode" --port "$port" --connections "$n" \
		--duration "$hold" --warmup "$warmup" --json --no-progress \
		$bench_args --server-pid "$server_pid" --server-stats \
		>"$tmp/json" 2>"$tmp/bench.err"
	bench_status=$?
	stop_perf
	stop_server
	emit_row "$bench_status"
}

# The number after "KEY": in the work class of size $1 in the JSON's
# "classes", key $2 among its latencies.
class_latency() {
	sed -n "s/.*\"$1\":{\"weight\":[0-9]*,\"replies\":[0-9]*,\"latency_us\":{[^}]*\"$2\":\([0-9]*\).*/\1/p" "$tmp/json"
}

# The kinds of the errors muxbench counted, "connect=3 timeout=1", or
# nothing: so that a report's errors say what they were.
error_kinds() {
	for kind in connect reset eof wrong timeout; do
		n=$(json "$kind")
		[ -n "$n" ] && [ "$n" != 0 ] && printf '%s=%s ' "$kind" "$n"
	done
}

# The CSV row of the run whose muxbench JSON is in $tmp/json.
emit_row() {
	status=ok
	[ "$1" -eq 0 ] || status=fail
	[ -s "$tmp/json" ] || {
		empty_row fail "$(head -c 200 "$tmp/bench.err" | tr '\n",' '   ')"
		return
	}
	case $mode in
	connrate) rate=$(json connects_per_s) unit="conn/s" units=$(json connects) ;;
	pingpong) rate=$(json messages_per_s) unit="msg/s" units=$(json messages) ;;
	stream) rate=$(json mb_per_s) unit="MB/s" units=$(awk -v b="$(json bytes)" 'BEGIN {print b / 1e6}') ;;
	idle) rate=$(json open) unit="open" units=$(json open) ;;
	delay|work) rate=$(json messages_per_s) unit="req/s" units=$(json messages) ;;
	esac
	[ $status = ok ] && run_rate=$rate
	row=$(awk -v OFS=, -v round="$round" -v engine="$engine" -v id="$id" \
	    -v mode="$mode" -v n="$n" -v status="$status" -v rate="$rate" \
	    -v unit="$unit" -v p50="$(json p50)" -v p99="$(json p99)" \
	    -v errors="$(json total)" -v units="$units" -v open="$(json open)" \
	    -v scpu="$(json cpu_s)" -v cuser="$(json user_s)" -v csys="$(json sys_s)" \
	    -v pss="$(json pss_kib)" -v pss0="$(json pss_before_kib)" \
	    -v rss="$(json rss_kib)" -v rss0="$(json rss_before_kib)" \
	    -v acc="$(stat_delta sys_accept)" -v rd="$(stat_delta sys_read)" \
	    -v wr="$(stat_delta sys_write)" -v wt="$(stat_delta sys_wait)" \
	    -v ctl="$(stat_delta sys_epoll_ctl)" -v fk="$(stat_delta sys_fork)" \
	    -v th="$(stat_delta sys_thread)" -v lk="$(stat_delta sys_lock)" \
	    -v ue="$(stat_delta sys_uring_enter)" \
	    -v perf="$(perf_count)" -v muxd="$(is_muxd_row && echo 1)" \
	    -v balance="$(thread_balance)" -v offered="$(json target)" \
	    -v p90="$(json p90)" -v p999="$(json p999)" -v p9999="$(json p9999)" \
	    -v max="$(json max)" -v late="$(json late)" \
	    -v late_max="$(json late_max_us)" -v unanswered="$(json unanswered)" \
	    -v light="$(class_latency "$LIGHT_N" p99)" \
	    -v heavy="$( [ "$mode" = work ] && class_latency "$heavy_n" p99)" \
	    -v setting="$setting" -v kinds="$(error_kinds)" '
	function per(x) { return units > 0 && x != "" ? sprintf("%.3f", x / units) : "" }
	BEGIN {
		gsub(/,/, ";", setting)	# a field of the CSV
		open_loop = offered + 0 > 0
		ccpu = cuser + csys
		# the memory of idle connections, or of waiting ones
		mem = (mode == "idle" || mode == "delay") && open > 0 && pss0 > 0
		stats_total = acc == "" ? "" : acc + rd + wr + wt + ctl + fk + th + lk + ue
		print round, engine, id, mode, n, status, rate, unit, p50, p99, errors,
		      units, scpu, ccpu, per(scpu * 1e6), per(ccpu * 1e6),
		      mem ? sprintf("%.2f", (pss - pss0) / open) : "", mem ? pss : "",
		      mem ? sprintf("%.2f", (rss - rss0) / open) : "", mem ? rss : "",
		      per(acc), per(rd), per(wr), per(wt), per(ctl), per(fk), per(th),
		      per(lk), per(ue), per(muxd ? stats_total : perf), per(perf), balance,
		      (open_loop ? offered : ""), p90, p999, p9999, max,
		      (open_loop ? late : ""), (open_loop ? late_max : ""),
		      (open_loop ? unanswered : ""), (mode == "work" ? light : ""),
		      (mode == "work" ? heavy : ""), "\"" setting "\"", kinds
	}')
	echo "$row"
	progress "$(echo "$row" | awk -F, -v s="$status" '{
		printf "%s %s", $7, $8
		if ($33 != "") printf " (%s asked)", $33
		if (s != "ok") printf ", failed"
		if ($11 > 0) printf ", %s errors", $11
	}')"
}

is_muxd_row() { case $engine in nginx|libuv|libevent) return 1 ;; esac; }

# perf counts the system calls of the server's processes, those alive
# when it starts, in 20 ms intervals (unpinned: on muxbench's busy CPU it
# would fall behind); the SIGUSR1 that muxbench sends at
# each end of the measured interval marks where to add. Started for every
# row, so that the cost of tracing falls on every row alike; kept only
# where it saw every process: not for muxd engines whose processes or
# threads come and go.
perf_ok=no
command -v perf >/dev/null 2>&1 &&
	perf stat -e raw_syscalls:sys_enter -e signal:signal_deliver \
		--filter 'sig == 10' -o /dev/null -- true >/dev/null 2>&1 &&
	perf_ok=yes

start_perf() {
	[ $perf_ok = yes ] || return 0
	perf_out=$tmp/perf.$round.$id.$engine	# one per run: nothing stale
	perf stat -x, -I 20 -e raw_syscalls:sys_enter \
		-e signal:signal_deliver --filter 'sig == 10' -o "$perf_out" \
		-p "$(echo "$server_pid" $(pgrep -P "$server_pid") | tr ' ' ,)" \
		2>"$tmp/perf.err" &
	perf_pid=$!
	i=0
	while ! grep -q sys_enter "$perf_out" 2>/dev/null && [ $i -lt 60 ]; do
		sleep 0.05
		i=$((i + 1))
	done
}

# perf may lag behind its 20 ms on a busy machine, and what it has not
# printed when it is stopped is lost: first let it print twice more, so
# that its last line counts everything up to now.
stop_perf() {
	[ -n "$perf_pid" ] || return 0
	lines=$(grep -c sys_enter "$perf_out")
	i=0
	while [ "$(grep -c sys_enter "$perf_out")" -lt $((lines + 2)) ] && [ $i -lt 40 ]; do
		sleep 0.05
		i=$((i + 1))
	done
	kill -INT "$perf_pid" 2>/dev/null
	wait "$perf_pid" 2>/dev/null
	perf_pid=""
}

# System calls perf counted between the two SIGUSR1, or nothing: from the
# interval of the first to the one before the second, so that the two
# partial intervals at the ends even out.
perf_count() {
	[ $perf_ok = yes ] || return 0
	if is_muxd_row && { has_tag "$engine" processes || has_tag "$engine" threads; }; then
		return 0
	fi
	awk -F, 'NF > 3 && $1 !~ /^#/ {
		t = $1 + 0; c = $2 ~ /^[0-9]+$/ ? $2 : 0
		if ($4 ~ /sys_enter/) { at[++n] = t; calls[n] = c }
		else if ($4 ~ /signal_deliver/ && c > 0) { if (first == "") first = t; last = t }
	} END {
		if (first == "" || last == first) exit
		for (i = 1; i <= n; i++) if (at[i] >= first && at[i] < last) sum += calls[i]
		print sum + 0
	}' "$perf_out" 2>/dev/null
}

# mixed: the heavy size that costs the server about HEAVY_MS of CPU, and
# the rate that keeps the server's CPUs about half busy, both from the
# CPU time a request of each size alone costs muxd's default engine over
# one connection. Sets heavy_n and mixed_rate, or mixed_reason.
calibrate_work() {
	mixed_reason="" heavy_n=0 mixed_rate=""
	if ! has_service work; then
		mixed_reason="muxd has no work service yet (not in muxd --list-services)"
		return
	fi
	work_cost "$LIGHT_N:1"
	light_us=$cost
	work_cost 1000000:1
	if [ -z "$light_us" ] || [ -z "$cost" ]; then
		mixed_reason="the work service's cost could not be measured"
		return
	fi
	eval "$(awk -v l="$light_us" -v h="$cost" -v ms="$HEAVY_MS" \
		-v cpus="$server_ncpus" 'BEGIN {
		n = int(1e6 * ms * 1000 / h + 0.5)
		if (n < 1) n = 1
		if (n > 1e8) n = 1e8
		mean = 0.99 * l + 0.01 * h * n / 1e6
		printf "heavy_n=%d mixed_rate=%d\n", n, 0.5 * cpus * 1e6 / mean + 0.5
	}')"
	say "mixed: work N=$LIGHT_N costs $light_us us of server CPU, N=1000000 $cost us: heavy N=$heavy_n, $mixed_rate requests a second"
}

# Server CPU microseconds per work request of mix $1 over one
# connection, in cost (empty if it could not be measured).
work_cost() {
	cost=""
	start_server "$MUXD" --quiet --listen work=127.0.0.1:0 || return
	$pin_client "$MUXBENCH" work --port "$port" --work-mix "$1" \
		--duration 1 --warmup 0.2 --json --no-progress \
		--server-pid "$server_pid" >"$tmp/json" 2>"$tmp/bench.err"
	bench_status=$?
	stop_server
	[ $bench_status -eq 0 ] || return
	cost=$(awk -v c="$(json cpu_s)" -v m="$(json messages)" \
		'BEGIN { if (m > 0 && c > 0) printf "%.2f", c * 1e6 / m }')
}

# nginx as a reference stamp server: the stream module's `return`.
nginx_ok=no
nginx_module=/usr/lib/nginx/modules/ngx_stream_module.so
start_nginx() {
	for try in 1 2 3 4 5; do
		port=$((20000 + ($$ * 7 + try * 131) % 20000))
		mkdir -p "$tmp/nginx"
		cat >"$tmp/nginx/nginx.conf" <<EOF
$( [ -f "$nginx_module" ] && echo "load_module $nginx_module;" )
daemon off;
worker_processes 1;
worker_rlimit_nofile 20000;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log;
events { worker_connections 16384; }
stream {
	map \$msec \$unix_seconds { "~^(?<s>[0-9]+)\\." \$s; }
	server { listen 127.0.0.1:$port backlog=511; return "\$unix_seconds\\r\\n"; }
}
EOF
		$pin_server nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" \
			>"$tmp/out" 2>"$tmp/err" &
		server_pid=$!
		sleep 0.5
		kill -0 "$server_pid" 2>/dev/null && return 0
		wait "$server_pid" 2>/dev/null
	done
	server_pid=""
	return 1
}

if [ $nginx = yes ] && command -v nginx >/dev/null 2>&1; then
	case " $scenarios " in *" stamp-c1 "*|*" stamp-c32 "*) nginx_ok=yes ;; esac
fi

host=$(hostname 2>/dev/null || uname -n)
stamp=$(date +%Y-%m-%d)
mkdir -p "$out" || die "cannot make $out"
base=$out/$stamp-$host
csv=$base.csv
echo "$csv_header" >"$csv"

# The reference libraries' versions, for the report's header.
ref_versions=""
for lib in $refs; do
	v=$("$PKG_CONFIG" --modversion "$lib" 2>/dev/null) || v="not found"
	ref_versions="$ref_versions${ref_versions:+, }$lib $v"
done
[ $perf_ok = yes ] || say "perf cannot count raw_syscalls:sys_enter here: no system call totals for the reference rows"

rows="$engines $refs"
total=0
for s in $scenarios; do
	runs=1
	[ "$s" = latency-curve ] && runs=$((1 + $(echo $CURVE_LOADS | wc -w)))
	case $s in stamp-*) [ $nginx_ok = yes ] && total=$((total + 1)) ;; esac
	total=$((total + runs * $(echo $rows | wc -w)))
done
total=$((total * rounds))
say "$total runs: $rounds round(s) of $(echo $rows | wc -w) servers x $(echo $scenarios | wc -w) scenarios, $duration s each; $pinning"
case " $scenarios " in *" mixed "*) calibrate_work ;; esac
done_runs=0
r=1
while [ $r -le "$rounds" ]; do
	for s in $scenarios; do
		line=$(echo "$SCENARIO_TABLE" | grep "^$s:")
		for e in $rows; do
			run_one "$r" "$e" "$line" >>"$csv"
		done
		case $s in stamp-*) [ $nginx_ok = yes ] && run_one "$r" nginx "$line" >>"$csv" ;; esac
	done
	r=$((r + 1))
done

. "$(dirname "$0")/report.sh"
report "$csv" >"$base.md"
. "$(dirname "$0")/traces.sh"
[ $trace_cost = no ] || trace_cost "$base" >>"$base.md"
[ $traces = no ] || record_traces "$base" >>"$base.md"
charts "$csv" "$base"
cat "$base.md"
say "wrote $base.md and $base.csv$( [ -f "$base.png" ] && echo " and charts")"
