# traces.sh -- make bench's --traces and --trace-cost, apart from the rest
# of bench.sh, which sources this file.
#
# --traces: each engine, under one load (TRACE_SECONDS of pingpong with
# TRACE_CONNECTIONS clients), with --trace; the files are kept beside the
# report (gzipped: Perfetto and chrome://tracing open them so), and each
# becomes a timeline picture: the threads and processes down the side,
# time across, the TRACE_WINDOW_US with the most writes, coloured by kind
# of event. The report shows them side by side.
#
# --trace-cost: rounds of pingpong with 100 clients, interleaved, of muxd
# with every trace call compiled out (bench/muxd-notrace), of muxd without
# --trace and of muxd with it: what the calls cost when tracing is off
# (a branch each), and what recording costs when it is on.
#
# `sh bench/traces.sh FILE.json [FILE.png]` draws the timeline of any
# muxd trace.

TRACE_SECONDS=0.2
TRACE_WARMUP=0.2
TRACE_CONNECTIONS=100
TRACE_WINDOW_US=2000
# Threads for the engines that take --threads, however few CPUs the
# server has: the picture is of how they share the work.
TRACE_THREADS=4
TRACE_COST_ENGINES="epoll-lt pthread-pool"

# The functions below share bench.sh's globals (tmp, port, server_pid,
# engine, round); their own begin with t_, so that none of bench.sh's
# (csv, status, ...) is overwritten before the charts are drawn.

# ---- the timeline picture ----

# The events of JSON (one a line, as muxd writes them) in the window of
# TRACE_WINDOW_US with the most writes, as
# gnuplot data in $2.boxes (x0 x1 row colour: spans), $2.ticks (x y
# height colour: instants) and $2.rows (the gnuplot ytics); prints the
# number of rows.
timeline_data() {
	awk -v window="$TRACE_WINDOW_US" -v out="$2" '
	function field(k,    v) {
		if (!match($0, "\"" k "\":(\"[^\"]*\"|-?[0-9.]+)")) return ""
		v = substr($0, RSTART + length(k) + 3, RLENGTH - length(k) - 3)
		gsub(/"/, "", v)
		return v
	}
	function colour(name, ph) {
		if (ph == "i") return name == "read" ? 3050327 : name == "write" ? 14964526 : \
			name == "accept" ? 2056127 : name == "promote" ? 12720219 : \
			name == "trace events dropped" ? 16711935 : 0
		if (name == "read") return 8366041		# a blocking read
		if (name ~ /^(flock|mutex|wait |sleep)/) return 15122985
		if (name == "coroutine") return 9425295
		if (name == "work") return 14034728
		if (name == "fork" || name == "thread start") return 3355443
		if (name == "hand over" || name == "take") return 10181046
		return 11579568				# the kernel waits: grey
	}
	# First pass: the tracks, and where the work is (the writes).
	FNR == NR {
		ph = field("ph")
		if (ph == "M" && field("name") == "thread_name") {
			key = field("pid") " " field("tid")
			if (!(key in label)) order[++n] = key
			sub(/.*"args":/, "")
			label[key] = field("name")
			if (label[key] == "main") main = key
		} else if ((ph == "i" || ph == "X") && field("name") == "write") {
			writes[++nw] = field("ts") + 0
			if (nw == 1 || writes[nw] < first) first = writes[nw]
		}
		next
	}
	FNR == 1 {
		# Rows: the main thread first, then by pid and tid.
		for (i = 2; i <= n; i++)
			for (j = i; j > 1; j--) {
				split(order[j - 1], a, " "); split(order[j], b, " ")
				if (order[j] == main || (order[j - 1] != main && \
				    (a[1] + 0 > b[1] + 0 || (a[1] == b[1] && a[2] + 0 > b[2] + 0)))) {
					t = order[j]; order[j] = order[j - 1]; order[j - 1] = t
				} else break
			}
		for (i = 1; i <= n; i++) {
			row[order[i]] = i - 1
			printf "%s\"%s\" %d", (i > 1 ? ", " : ""), label[order[i]],
			       i - 1 >(out ".rows")
		}
		printf "\n" >(out ".rows")
		# The window: the busiest one, by the writes in it.
		for (i = 1; i <= nw; i++)
			if (++busy[bin = int((writes[i] - first) / window)] > most) {
				most = busy[bin]
				start = first + bin * window
			}
	}
	{
		ph = field("ph")
		if (ph != "X" && ph != "i") next
		key = field("pid") " " field("tid")
		if (!(key in row)) next
		x0 = field("ts") - start
		x1 = ph == "X" ? x0 + field("dur") : x0
		if (x1 < 0 || x0 > window) next
		name = field("name")
		if (ph == "X") {
			x0 = x0 < 0 ? 0 : x0; x1 = x1 > window ? window : x1
			if (x1 - x0 < window / 1000) x1 = x0 + window / 1000
			print x0, x1, row[key], colour(name, ph) >(out ".boxes")
		} else {	# reads in the upper half of the row, writes below
			print x0, row[key] + (name == "read" ? -0.4 : name == "write" ? 0 : -0.4),
			      name == "read" || name == "write" ? 0.4 : 0.8,
			      colour(name, ph) >(out ".ticks")
		}
	}
	END { print n }' "$1" "$1"
}

# timeline JSON PNG [TITLE]: draw it with gnuplot; returns 1 without it.
timeline() {
	command -v gnuplot >/dev/null 2>&1 || return 1
	t_data=$2.data
	rm -f "$t_data.boxes" "$t_data.ticks" "$t_data.rows"
	t_rows=$(timeline_data "$1" "$t_data")
	[ "${t_rows:-0}" -gt 0 ] || return 1
	touch "$t_data.boxes" "$t_data.ticks"
	t_height=$((t_rows * 16 + 170))
	[ "$t_height" -ge 320 ] || t_height=320
	gnuplot <<EOF
set terminal pngcairo size 1100,$t_height font "sans,9" noenhanced
set output "$2"
set title "${3:-$(basename "$1")}: $TRACE_WINDOW_US µs of pingpong, $TRACE_CONNECTIONS connections"
set xrange [0:$TRACE_WINDOW_US]
set yrange [$t_rows - 0.5:-0.5]
set xlabel "µs"
set ytics ($(cat "$t_data.rows")) font ",8"
set grid xtics
set style fill solid noborder
set key below horizontal
plot "$t_data.boxes" using ((\$1+\$2)/2):3:((\$2-\$1)/2):(0.35):4 with boxxyerror lc rgb variable notitle, \
     "$t_data.ticks" using 1:2:(0):3:4 with vectors nohead lc rgb variable notitle, \
     NaN with boxes lc rgb "#b0b0b0" title "waiting in the kernel", \
     NaN with boxes lc rgb "#7fa7d9" title "blocking read", \
     NaN with boxes lc rgb "#e6c229" title "lock, turn, sleep", \
     NaN with boxes lc rgb "#8fd18f" title "coroutine runs", \
     NaN with boxes lc rgb "#d62728" title "work computed", \
     NaN with boxes lc rgb "#9b59b6" title "hand-over", \
     NaN with boxes lc rgb "#333333" title "fork, thread", \
     NaN with lines lw 2 lc rgb "#2e8b57" title "read", \
     NaN with lines lw 2 lc rgb "#e4572e" title "write", \
     NaN with lines lw 2 lc rgb "#1f5fbf" title "accept", \
     NaN with lines lw 2 lc rgb "#000000" title "close", \
     NaN with lines lw 2 lc rgb "#c2185b" title "promote"
EOF
	t_status=$?
	rm -f "$t_data.boxes" "$t_data.ticks" "$t_data.rows"
	return $t_status
}

# ---- --traces ----

# One engine's trace, under bench.sh's server options for the load.
record_trace() {
	engine=$1 t_file=$2
	reason=$(skip_reason "$engine" pingpong "$TRACE_CONNECTIONS" upper)
	if [ -n "$reason" ]; then
		echo "| $engine | skipped: $reason |"
		return
	fi
	t_threads=""
	takes_threads "$engine" && t_threads="--threads $TRACE_THREADS"
	start_server "$MUXD" $(server_options "$engine" pingpong "$TRACE_CONNECTIONS") \
		$t_threads --trace="$t_file" --listen upper=127.0.0.1:0 || {
		echo "| $engine | muxd did not start |"
		return
	}
	$pin_client "$MUXBENCH" pingpong --port "$port" \
		--connections "$TRACE_CONNECTIONS" --duration "$TRACE_SECONDS" \
		--warmup "$TRACE_WARMUP" --json --no-progress >"$tmp/json" 2>"$tmp/bench.err"
	stop_server
	if [ ! -s "$t_file" ]; then
		echo "| $engine | no trace: $(tr '\n' ' ' <"$tmp/err" | head -c 200) |"
		return
	fi
	timeline "$t_file" "${t_file%.json}.png" "$engine" ||
		say "$engine: no timeline (gnuplot missing or an empty trace)"
	command -v gzip >/dev/null 2>&1 && gzip -f "$t_file" && t_file=$t_file.gz
	echo "| $engine | $(json messages_per_s | cut -d. -f1) msg/s | [$(basename "$t_file")]($(basename "$t_dir")/$(basename "$t_file")) | ![$engine]($(basename "$t_dir")/$engine.png) |"
}

# Every engine's trace and picture into BASE-traces/, and the report's
# section on standard output.
record_traces() {
	t_dir=$1-traces
	mkdir -p "$t_dir" || die "cannot make $t_dir"
	say "--traces: $TRACE_SECONDS s of pingpong with $TRACE_CONNECTIONS connections under --trace, each engine"
	cat <<EOF

## Each engine at work (--traces)

$TRACE_SECONDS s of pingpong with $TRACE_CONNECTIONS connections under
\`--trace\`, each engine with the options of the runs above (but
\`--threads $TRACE_THREADS\` where it applies). Each picture
shows the $TRACE_WINDOW_US µs with the most writes: each thread and process
a row, time across; a blank stretch is a thread running outside the calls
traced, or waiting for a CPU. Open a trace in https://ui.perfetto.dev (or
chrome://tracing) to see the whole of it; make bench keeps them beside
the report, gzipped (the repository keeps only the pictures).

| engine | rate while traced | trace | timeline |
|---|---|---|---|
EOF
	for engine in $engines; do
		record_trace "$engine" "$t_dir/$engine.json"
	done
}

# ---- --trace-cost ----

# One run of variant $2 (out, off, on) of engine $1: its CSV row.
cost_run() {
	engine=$1 t_variant=$2
	cost_binary "$t_variant"
	start_server "$t_binary" $(server_options "$engine" pingpong 100) $t_trace \
		--listen upper=127.0.0.1:0 || return
	$pin_client "$MUXBENCH" pingpong --port "$port" --connections 100 \
		--duration "$duration" --warmup "$warmup" --json --no-progress \
		--server-pid "$server_pid" >"$tmp/json" 2>"$tmp/bench.err"
	stop_server
	rm -f "$tmp/cost.json"
	awk -v r="$round" -v e="$engine" -v v="$t_variant" -v rate="$(json messages_per_s)" \
	    -v cpu="$(json cpu_s)" -v n="$(json messages)" 'BEGIN {
		if (rate != "" && n > 0) printf "%s,%s,%s,%.0f,%.3f,\n", r, e, v, rate, cpu * 1e6 / n
	}'
}

# Instructions the server executes per message of variant $2 of engine
# $1, under cachegrind: the difference between a short and a long run
# over the difference of their messages, so that start-up and exit (the
# trace's writing aside: it grows with the messages) cancel out. Unlike
# time, a count that other jobs on the machine do not disturb. Prints it,
# or nothing.
cost_instructions() {
	engine=$1 t_variant=$2 t_counts=""
	for d in 0.5 2; do
		cost_binary "$t_variant"
		start_server valgrind --tool=cachegrind --cache-sim=no \
			--cachegrind-out-file=/dev/null "$t_binary" \
			$(server_options "$engine" pingpong 100) $t_trace \
			--listen upper=127.0.0.1:0 || return
		$pin_client "$MUXBENCH" pingpong --port "$port" --connections 100 \
			--duration "$d" --warmup 0.5 --json --no-progress >"$tmp/json" 2>&1
		kill -TERM "$server_pid"
		wait "$server_pid"	# however long the trace takes to write
		server_pid=""
		t_counts="$t_counts $(json messages) $(sed -n 's/.*I *refs: *//p' "$tmp/err" | tr -d ,)"
	done
	rm -f "$tmp/cost.json"
	echo "$t_counts" | awk 'NF == 4 && $3 > $1 { printf "%.0f", ($4 - $2) / ($3 - $1) }'
}

# The binary and options of variant $1: $t_binary and $t_trace.
cost_binary() {
	t_binary=$MUXD t_trace=""
	[ "$1" = out ] && t_binary=$REF_DIR/muxd-notrace
	[ "$1" = on ] && t_trace="--trace=$tmp/cost.json --trace-limit=100000000"
}

# The interleaved rounds into BASE-trace-cost.csv, the report's section
# on standard output.
trace_cost() {
	t_csv=$1-trace-cost.csv t_variants="out off on"
	if [ ! -x "$REF_DIR/muxd-notrace" ]; then
		say "--trace-cost: no $REF_DIR/muxd-notrace (make bench builds it): without the compiled-out baseline"
		t_variants="off on"
	fi
	say "--trace-cost: $rounds round(s) of pingpong-100, $duration s each: $TRACE_COST_ENGINES x ($t_variants)"
	echo "round,engine,variant,msg_per_s,server_us_per_msg,instructions_per_msg" >"$t_csv"
	round=1
	while [ "$round" -le "$rounds" ]; do
		for engine in $TRACE_COST_ENGINES; do
			for t_v in $t_variants; do
				cost_run "$engine" "$t_v" >>"$t_csv"
			done
		done
		round=$((round + 1))
	done
	if command -v valgrind >/dev/null 2>&1; then
		say "--trace-cost: instructions per message under cachegrind"
		for engine in $TRACE_COST_ENGINES; do
			for t_v in $t_variants; do
				echo "0,$engine,$t_v,,,$(cost_instructions "$engine" "$t_v")" >>"$t_csv"
			done
		done
	fi
	trace_cost_report "$t_csv"
}

trace_cost_report() {
	awk -F, '
	function median(k,    n, i, j, t, v) {
		n = cnt[k]
		if (!n) return ""
		for (i = 1; i <= n; i++) v[i] = val[k, i]
		for (i = 2; i <= n; i++)
			for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) {
				t = v[j]; v[j] = v[j - 1]; v[j - 1] = t
			}
		return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
	}
	function cell(e, v,    r, c, i) {
		r = median(e SUBSEP v SUBSEP "rate"); c = median(e SUBSEP v SUBSEP "cpu")
		i = ins[e, v]
		return (r == "" ? "-" : sprintf("%.0f msg/s, %.2f µs", r, c)) \
		       (i == "" ? "" : sprintf(", %d instr.", i))
	}
	function pct(x, y) { return x == "" || y == "" || x == 0 ? "-" : sprintf("%+.1f %%", (y - x) * 100 / x) }
	function change(e, a, b) {
		return pct(median(e SUBSEP a SUBSEP "cpu"), median(e SUBSEP b SUBSEP "cpu")) \
		       (((e, a) in ins) && ((e, b) in ins) ? " (" pct(ins[e, a], ins[e, b]) " instr.)" : "")
	}
	NR > 1 {
		if (!($2 in seen)) { seen[$2] = 1; engines[++ne] = $2 }
		if ($6 != "") ins[$2, $3] = $6
		if ($4 == "") next
		k = $2 SUBSEP $3
		val[k SUBSEP "rate", ++cnt[k SUBSEP "rate"]] = $4
		val[k SUBSEP "cpu", ++cnt[k SUBSEP "cpu"]] = $5
		rounds = $1
	}
	END {
		print ""
		print "## What tracing costs (--trace-cost)"
		print ""
		printf "pingpong with 100 connections, %d interleaved round(s); medians of the\n", rounds
		print "rate and of the server CPU per message, and (with valgrind) the"
		print "instructions the server runs per message under cachegrind, which other"
		print "jobs on the machine do not disturb. *compiled out*: muxd built with every"
		print "trace call removed (bench/muxd-notrace); *off*: muxd as built, without"
		print "`--trace`, each call a branch on one flag; *on*: with `--trace`, recording"
		print "and writing the file at exit."
		print ""
		print "| engine | compiled out | off | on | off vs out | on vs off |"
		print "|---|---|---|---|---|---|"
		for (i = 1; i <= ne; i++)
			printf "| %s | %s | %s | %s | %s | %s |\n", engines[i], cell(engines[i], "out"),
			       cell(engines[i], "off"), cell(engines[i], "on"),
			       change(engines[i], "out", "off"), change(engines[i], "off", "on")
	}' "$1"
}

# Alone: draw one trace.
case ${0##*/} in
traces.sh)
	[ $# -ge 1 ] || { echo "usage: sh bench/traces.sh FILE.json [FILE.png]" >&2; exit 2; }
	timeline "$1" "${2:-${1%.json}.png}" || { echo "traces.sh: no picture (gnuplot? a muxd trace?)" >&2; exit 1; }
	;;
esac
