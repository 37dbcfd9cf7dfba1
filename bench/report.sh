# report.sh -- turn bench.sh's CSV into the Markdown tables and charts.
# Sourced by bench.sh; `sh bench/report.sh FILE.csv` remakes the report of
# an earlier run on standard output (and its charts beside the CSV).
#
# Every figure is the median over the rounds of one engine and scenario,
# with the min-max range beside the headline rates, so that a reader sees
# how much the machine wandered.

# The awk functions both parts share: CSV fields by name, medians.
REPORT_AWK_LIB='
function median(key,    n, i, j, t, v) {
	if (!(key in cnt)) return ""
	n = cnt[key]
	for (i = 1; i <= n; i++) v[i] = val[key, i]
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) {
			t = v[j]; v[j] = v[j - 1]; v[j - 1] = t
		}
	lo[key] = v[1]; hi[key] = v[n]
	return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
function keep(key, x) { if (x != "") val[key, ++cnt[key]] = x }
function num(x) {
	if (x == "") return "-"
	if (x >= 100000) return sprintf("%.0fk", x / 1000)
	if (x >= 100) return sprintf("%.0f", x)
	if (x >= 10) return sprintf("%.1f", x)
	return sprintf("%.2f", x)
}
# A column by name; empty in a CSV of an older run that lacks it.
function field(name) { return (name in col) ? $col[name] : "" }
# The scenarios of the rates, costs and system-call tables.
function classic(s) { return s ~ /^(stamp|pingpong|stream)-/ }
NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
{
	e = $col["engine"]; s = $col["scenario"]; st = $col["status"]
	if (!(s in setting) && field("setting") != "") setting[s] = field("setting")
	if ($col["round"] + 0 > max_round) max_round = $col["round"] + 0
	if (!(e in seen_e)) { seen_e[e] = 1; engines[++ne] = e }
	if (!(s in seen_s)) { seen_s[s] = 1; scen[++ns] = s }
	if (st == "skip") { why[e, s] = $col["note"]; next }
	if (st == "fail") fails[e, s]++
	if ($col["errors"] + 0 > 0) errs[e, s] += $col["errors"]
	if (st != "ok") next
	# The separator is decided in a statement of its own: awk creates
	# balance[e, s] as the target of the assignment before it evaluates
	# the right-hand side, where the test would then always be true.
	if ("thread_accepted" in col && $col["thread_accepted"] != "") {
		sep = ((e, s) in balance) ? "; " : ""
		balance[e, s] = balance[e, s] sep $col["thread_accepted"]
	}
	split("rate p50_us p99_us server_us_per_unit client_us_per_unit kib_per_conn server_pss_kib rss_kib_per_conn server_rss_kib sys_accept sys_read sys_write sys_wait sys_ctl sys_fork sys_thread sys_lock sys_uring_enter sys_total sys_perf server_cpu_s units offered p90_us p999_us p9999_us max_us late late_max_us unanswered light_p99_us heavy_p99_us", f, " ")
	for (i in f) keep(e SUBSEP s SUBSEP f[i], field(f[i]))
}
'

report() {
	awk -F, -v date="$(date +%Y-%m-%d)" -v host="$(hostname 2>/dev/null)" \
	    -v kernel="$(uname -sr)" \
	    -v cpu="$(sed -n 's/^model name[^:]*: *//p' /proc/cpuinfo | head -n 1)" \
	    -v cores="$(getconf _NPROCESSORS_ONLN 2>/dev/null)" \
	    -v pinning="${pinning:-see bench.sh}" -v rounds="${rounds:-?}" \
	    -v duration="${duration:-?}" -v warmup="${warmup:-?}" \
	    -v version="$("${MUXD:-./src/muxd}" --version 2>/dev/null | head -n 1)" \
	    -v refs="${ref_versions:-}" \
	    "$REPORT_AWK_LIB"'
function m(e, s, what) { return median(e SUBSEP s SUBSEP what) }
function cell(e, s,    k, x) {
	if ((e, s) in why) return "skip"
	k = e SUBSEP s SUBSEP "rate"
	if (!(k in cnt)) return ((e, s) in fails) ? "FAIL" : "-"
	x = median(k)
	return num(x) (cnt[k] > 1 ? " (" num(lo[k]) "-" num(hi[k]) ")" : "") \
	       (((e, s) in errs) ? " !" : "")
}
function has(s,    i) { return s in seen_s }
function lat(e, s) {
	if (!((e SUBSEP s SUBSEP "p50_us") in cnt)) return "-"
	return num(m(e, s, "p50_us")) " / " num(m(e, s, "p99_us"))
}
function row(cells,    i) { printf "|"; for (i = 1; i <= cells[0]; i++) printf " %s |", cells[i]; print "" }
function header(text,    n, i, c) {
	n = split(text, c, "|"); printf "|"
	for (i = 1; i <= n; i++) printf " %s |", c[i]
	printf "\n|"; for (i = 1; i <= n; i++) printf "---|"; print ""
}
function reference(e) { return e == "nginx" || e == "libuv" || e == "libevent" }
function stevens(e) {
	if (e == "fork") return "1 (most CPU)"
	if (e ~ /^prefork/) return e == "prefork" || e == "prefork-dynamic" ? "2 (descriptor passing)" : "3"
	if (e ~ /^pthread/) return "4 (least CPU)"
	if (e == "iterative") return "baseline"
	return "not measured"
}
END {
	printf "# muxd engines compared: %s on %s\n\n", date, host
	printf "- %s; %s; %s, %s CPUs; %s\n", version, kernel, cpu, cores, pinning
	printf "- %s round(s), engines interleaved; each run %s s measured after %s s of warm-up\n", rounds == "?" ? max_round : rounds, duration, warmup
	if (refs != "") printf "- reference rows: %s (bench/ref_*.c: the same services written against each library), and nginx for stamp\n", refs
	printf "- every figure is the median over the rounds; (min-max) beside the rates; \"!\" marks a run that counted errors, \"skip\" a run that cannot be made (reasons at the end)\n\n"

	if (has("stamp-c1") || has("stamp-c32")) {
		print "## Connections per second (stamp: connect, read the time, close)\n"
		ref = has("stamp-c32") ? "stamp-c32" : "stamp-c1"
		t = "engine"
		if (has("stamp-c1")) t = t "|C=1 conn/s"
		if (has("stamp-c32")) t = t "|C=32 conn/s"
		sub(/stamp-c/, "C=", ref)
		header(t "|server CPU s per 1000 conn (" ref ")|muxbench CPU s per 1000 conn|rank by server CPU|Stevens (UNP ch. 30)")
		ref = has("stamp-c32") ? "stamp-c32" : "stamp-c1"
		for (i = 1; i <= ne; i++) {
			e = engines[i]; x = m(e, ref, "server_us_per_unit"); rank = "-"
			if (x != "") { rank = 1; for (j = 1; j <= ne; j++) { y = m(engines[j], ref, "server_us_per_unit"); if (y != "" && y + 0 < x + 0) rank++ } }
			k = 1; c[1] = e
			if (has("stamp-c1")) c[++k] = cell(e, "stamp-c1")
			if (has("stamp-c32")) c[++k] = cell(e, "stamp-c32")
			c[++k] = x == "" ? "-" : sprintf("%.3f", x / 1000)
			y = m(e, ref, "client_us_per_unit"); c[++k] = y == "" ? "-" : sprintf("%.3f", y / 1000)
			c[++k] = rank; c[++k] = reference(e) ? "reference" : stevens(e)
			c[0] = k; row(c)
		}
		print ""
		print "Stevens'"'"' column places each engine in the order of UNP (3rd ed.) figure 30.1, process-control CPU per connection, most first: 1 one fork per client; 2 preforked children handed each descriptor by the parent (serv05; muxd'"'"'s prefork default, --accept=pass); 3 preforked children calling accept themselves, with or without a lock (serv02-04); 4 threads, one per client or prethreaded (serv06-08). His ranking is the yardstick, our rank column the measurement; the reactors are not in his table.\n"
	}
	pp = 0
	for (i = 1; i <= ns; i++) if (scen[i] ~ /^pingpong-/) pp++
	if (pp) {
		print "## Ping-pong (upper, 64-byte messages, each connection a closed loop)\n"
		t = "engine"
		for (i = 1; i <= ns; i++) if (scen[i] ~ /^pingpong-/) { n = scen[i]; sub(/.*-/, "", n); t = t "|N=" n " msg/s|p50 / p99 us" }
		header(t)
		for (i = 1; i <= ne; i++) {
			e = engines[i]; if (e == "nginx") continue
			k = 1; c[1] = e
			for (j = 1; j <= ns; j++) if (scen[j] ~ /^pingpong-/) { c[++k] = cell(e, scen[j]); c[++k] = lat(e, scen[j]) }
			c[0] = k; row(c)
		}
		print ""
	}
	if (has("stream-1") || has("stream-16")) {
		print "## Stream (upper, 16 KiB writes as fast as the echo comes back)\n"
		if ("libevent" in seen_e) print "The libevent server sets TCP_NODELAY, as muxd'"'"'s io_uring engine does (the libuv server and muxd'"'"'s other engines do not): libevent 2.1 reads at most 4 KiB a call and echoes in pieces, which Nagle'"'"'s algorithm would hold back until the client'"'"'s delayed ACK.\n"
		header("engine" (has("stream-1") ? "|N=1 MB/s" : "") (has("stream-16") ? "|N=16 MB/s" : ""))
		for (i = 1; i <= ne; i++) {
			e = engines[i]; if (e == "nginx") continue
			k = 1; c[1] = e
			if (has("stream-1")) c[++k] = cell(e, "stream-1")
			if (has("stream-16")) c[++k] = cell(e, "stream-16")
			c[0] = k; row(c)
		}
		print ""
	}
	if (has("idle-1000") || has("idle-10000")) {
		print "## Memory per idle connection\n"
		print "Memory summed over muxd and its children: the growth from before the first connection to all N open, per connection, and the whole server with them open. Pss, the proportional set size of anonymous and shared memory (heaps, stacks, pages copied on write), splits each shared page among its sharers, so a thousand forked children are not charged a thousand times for their parent'"'"'s heap; Rss, in brackets, charges every process in full for everything it maps, libc included, as ps and top show it. A pool sized for N (--workers N) pays up front: its growth is small, its total is not.\n"
		t = "engine"
		if (has("idle-1000")) t = t "|N=1000: KiB per connection, Pss (Rss)|server MiB, Pss (Rss)"
		if (has("idle-10000")) t = t "|N=10000: KiB per connection, Pss (Rss)|server MiB, Pss (Rss)"
		header(t)
		for (i = 1; i <= ne; i++) {
			e = engines[i]; if (e == "nginx") continue
			k = 1; c[1] = e
			for (j = 1; j <= 2; j++) {
				s = j == 1 ? "idle-1000" : "idle-10000"
				if (!has(s)) continue
				x = m(e, s, "kib_per_conn"); y = m(e, s, "server_pss_kib")
				xr = m(e, s, "rss_kib_per_conn"); yr = m(e, s, "server_rss_kib")
				c[++k] = ((e, s) in why) ? "skip" : (x == "" ? "-" : sprintf("%.2f (%.2f)", x, xr))
				c[++k] = y == "" ? "-" : sprintf("%.1f (%.1f)", y / 1024, yr / 1024)
			}
			c[0] = k; row(c)
		}
		print ""
	}
	if (has("pingpong-100") || has("stamp-c32")) {
		print "## System calls, from muxd --stats\n"
		print "Counted between muxbench'"'"'s two SIGUSR1 snapshots (start and end of the measured interval), divided by the messages or connections muxbench verified.\n"
		header("engine|per message (pingpong N=100): read|write|wait|epoll_ctl|io_uring_enter|per connection (stamp C=32): accept|read|write|wait|epoll_ctl|fork|thread|lock|io_uring_enter")
		for (i = 1; i <= ne; i++) {
			e = engines[i]; if (reference(e)) continue
			k = 1; c[1] = e
			split("sys_read sys_write sys_wait sys_ctl sys_uring_enter", a, " ")
			for (j = 1; j <= 5; j++) { x = m(e, "pingpong-100", a[j]); c[++k] = x == "" ? "-" : sprintf("%.2f", x) }
			split("sys_accept sys_read sys_write sys_wait sys_ctl sys_fork sys_thread sys_lock sys_uring_enter", a, " ")
			for (j = 1; j <= 9; j++) { x = m(e, "stamp-c32", a[j]); c[++k] = x == "" ? "-" : sprintf("%.2f", x) }
			c[0] = k; row(c)
		}
		print ""
	}
	if (nclassic()) system_calls_table()
	curve_table(); mixed_table(); backend_table()
	notes()
}
function nclassic(    j, n) { for (j = 1; j <= ns; j++) n += classic(scen[j]); return n }
function system_calls_table(    i, j, k, t, e, x, y, c) {
	print "## System calls per unit, every server\n"
	print "System calls per message (ping-pong), per connection (stamp) or per MB (stream) in the measured interval. For muxd engines, the sum of the --stats counters above; for the reference rows, every system call perf counted (raw_syscalls:sys_enter) in the server'"'"'s processes. The --stats counters leave out close, setsockopt and the like (about one more per connection for stamp), so perf'"'"'s count for muxd is in brackets where perf saw all of muxd'"'"'s processes: not for engines whose processes or threads come and go. \"-\": not measured (no perf, or perf could not attach).\n"
	t = "engine"
	for (j = 1; j <= ns; j++) if (classic(scen[j])) t = t "|" scen[j]
	header(t)
	for (i = 1; i <= ne; i++) {
		e = engines[i]; k = 1; c[1] = e
		for (j = 1; j <= ns; j++) {
			if (!classic(scen[j])) continue
			x = m(e, scen[j], "sys_total"); y = m(e, scen[j], "sys_perf")
			c[++k] = x == "" ? (((e, scen[j]) in why) ? "skip" : "-") : num(x)
			if (x != "" && y != "" && !reference(e)) c[k] = c[k] " (" num(y) ")"
		}
		c[0] = k; row(c)
	}
	print ""
	print "## CPU per unit of work: server / muxbench\n"
	print "Microseconds of CPU per message (ping-pong), per connection (stamp) or per MB (stream), for the server (all its processes and threads) and for the load generator. Where muxbench spends as much as the server, or its CPU was near 100%, the run measured muxbench, not the engine.\n"
	t = "engine"
	for (j = 1; j <= ns; j++) if (classic(scen[j])) t = t "|" scen[j]
	header(t)
	for (i = 1; i <= ne; i++) {
		e = engines[i]; k = 1; c[1] = e
		for (j = 1; j <= ns; j++) {
			if (!classic(scen[j])) continue
			x = m(e, scen[j], "server_us_per_unit"); y = m(e, scen[j], "client_us_per_unit")
			c[++k] = x == "" ? (((e, scen[j]) in why) ? "skip" : "-") : num(x) " / " num(y)
		}
		c[0] = k; row(c)
	}
	print ""
}
# The rows of a table of the new scenarios: every engine with a row in
# scenario s, whatever its status.
function ran(e, s) { return ((e, s) in why) || ((e, s) in fails) || ((e SUBSEP s SUBSEP "rate") in cnt) }
function skipped_cell(e, s) { return ((e, s) in why) ? "skip" : ((e, s) in fails) ? "FAIL" : "-" }
function ms(x) { return x == "" ? "-" : num(x / 1000) }
function curve_table(    i, j, k, e, t, c, s, x, y, any) {
	if (!has("latency-curve-cap")) return
	print "## Latency against load (upper ping-pong, 100 connections, open loop)\n"
	print "Each engine'"'"'s capacity is its own closed-loop rate over 100 connections, measured in the same round just before; then muxbench sends requests on a fixed schedule at each percentage of it, and counts each latency from when the request was due, so that a server that falls behind shows it in the latency, not in a lower rate. Latencies in microseconds: p50 / p99 / p99.9. The last column is the p99 at 50 % over the p99 at 10 %: near 1, the engine has not yet begun to queue.\n"
	t = "engine|capacity msg/s"
	for (j = 1; j <= ns; j++) if (scen[j] ~ /^latency-curve-[0-9]/) { s = scen[j]; sub(/.*-/, "", s); t = t "|" s " %" }
	header(t "|p99 50 % / 10 %")
	for (i = 1; i <= ne; i++) {
		e = engines[i]
		if (!ran(e, "latency-curve-cap")) continue
		k = 1; c[1] = e; c[++k] = cell(e, "latency-curve-cap")
		for (j = 1; j <= ns; j++) {
			s = scen[j]
			if (s !~ /^latency-curve-[0-9]/) continue
			x = m(e, s, "p50_us")
			c[++k] = x == "" ? skipped_cell(e, s) : num(x) " / " num(m(e, s, "p99_us")) " / " num(m(e, s, "p999_us"))
		}
		x = m(e, "latency-curve-50", "p99_us"); y = m(e, "latency-curve-10", "p99_us")
		c[++k] = x != "" && y > 0 ? sprintf("%.2f", x / y) : "-"
		c[0] = k; row(c)
	}
	print ""
}
function mixed_table(    i, k, e, c, x) {
	if (!has("mixed")) return
	print "## Mixed work: light and heavy requests (work, 100 connections, open loop)\n"
	if ("mixed" in setting) print "Setting: " setting["mixed"] ". The heavy size costs about that much CPU on muxd'"'"'s default engine, and the rate keeps the server'"'"'s CPUs about half busy, the same for every engine. A reactor that computes on its loop makes every light request behind a heavy one wait for it.\n"
	header("engine|asked req/s|answered req/s|light p99 ms|heavy p99 ms|sent late")
	for (i = 1; i <= ne; i++) {
		e = engines[i]
		if (!ran(e, "mixed")) continue
		k = 1; c[1] = e
		x = m(e, "mixed", "offered"); c[++k] = x == "" ? skipped_cell(e, "mixed") : num(x)
		c[++k] = cell(e, "mixed")
		c[++k] = ms(m(e, "mixed", "light_p99_us")); c[++k] = ms(m(e, "mixed", "heavy_p99_us"))
		x = m(e, "mixed", "late"); c[++k] = x == "" ? "-" : num(x)
		c[0] = k; row(c)
	}
	print ""
}
function backend_table(    i, k, e, c, x, y) {
	if (!has("backend-10k")) return
	print "## 10,000 clients waiting on a backend (delay 100 ms, closed loops)\n"
	print "Each of 10,000 connections asks for a 100 ms wait and, once answered, the next: at most 100,000 requests a second. Server CPU per request, and memory per connection while they wait: the growth of the server'"'"'s Pss (Rss) from before the first connection, per connection.\n"
	header("engine|requests/s|server CPU us per request|KiB per connection, Pss (Rss)|server MiB, Pss (Rss)")
	for (i = 1; i <= ne; i++) {
		e = engines[i]
		if (!ran(e, "backend-10k")) continue
		k = 1; c[1] = e; c[++k] = cell(e, "backend-10k")
		x = m(e, "backend-10k", "server_us_per_unit"); c[++k] = x == "" ? "-" : num(x)
		x = m(e, "backend-10k", "kib_per_conn"); y = m(e, "backend-10k", "rss_kib_per_conn")
		c[++k] = x == "" ? "-" : sprintf("%.2f (%.2f)", x, y)
		x = m(e, "backend-10k", "server_pss_kib"); y = m(e, "backend-10k", "server_rss_kib")
		c[++k] = x == "" ? "-" : sprintf("%.1f (%.1f)", x / 1024, y / 1024)
		c[0] = k; row(c)
	}
	print ""
}
# One line per engine and reason; latency-curve'"'"'s loads are left out
# when its capacity run was skipped for the same reason.
function skipped_of(e,    j, s, r, sep, n, list, order) {
	for (j = 1; j <= ns; j++) {
		s = scen[j]
		if (!((e, s) in why)) continue
		r = why[e, s]
		if (s ~ /^latency-curve-[0-9]/ && ((e, "latency-curve-cap") in why) &&
		    why[e, "latency-curve-cap"] == r) continue
		if (s == "latency-curve-cap") s = "latency-curve"
		sep = (r in list) ? ", " : ""
		if (sep == "") order[++n] = r
		list[r] = list[r] sep s
	}
	for (j = 1; j <= n; j++) printf "- %s, %s: %s\n", e, list[order[j]], order[j]
}
function notes(    nb, k, i, j, e, s, nskip, nf) {
	nb = 0
	for (k in balance) nb++
	if (nb) {
		print "## Per-thread balance (connections each serving thread accepted, per round)\n"
		for (i = 1; i <= ne; i++) for (j = 1; j <= ns; j++)
			if ((engines[i], scen[j]) in balance) printf "- %s, %s: %s\n", engines[i], scen[j], balance[engines[i], scen[j]]
		print ""
	}
	nskip = 0
	for (k in why) nskip++
	if (nskip) {
		print "## Skipped\n"
		for (i = 1; i <= ne; i++) skipped_of(engines[i])
		print ""
	}
	nf = 0
	for (k in fails) nf++
	for (k in errs) nf++
	if (nf) {
		print "## Runs with errors\n"
		for (i = 1; i <= ne; i++) for (j = 1; j <= ns; j++) {
			e = engines[i]; s = scen[j]
			if (((e, s) in fails) || ((e, s) in errs))
				printf "- %s, %s: %d failed run(s), %d errors counted by muxbench\n", e, s, fails[e, s], errs[e, s]
		}
		print ""
	}
}' "$1" | sed 's/"//g'
}

# Charts of the headline figures, when gnuplot is here: $1 the CSV, $2
# the path without extension. Writes $2.png and $2.svg: connections per
# second, ping-pong messages per second, and the server's CPU per
# connection (Stevens' measure), each with the scenarios that were run;
# then the costs ($2-cost) and the latencies ($2-latency) beside them.
charts() {
	command -v gnuplot >/dev/null 2>&1 || return 0
	dat=${TMPDIR:-/tmp}/muxd-bench-$$.dat
	awk -F, "$REPORT_AWK_LIB"'
	function m(e, s, what) { x = median(e SUBSEP s SUBSEP what); return x == "" ? "NaN" : x }
	END {
		printf "engine"
		for (j = 1; j <= ns; j++) printf " %s", scen[j]
		print " cpu-per-conn"
		for (i = 1; i <= ne; i++) {
			printf "%s", engines[i]
			for (j = 1; j <= ns; j++) printf " %s", m(engines[i], scen[j], "rate")
			print " " m(engines[i], "stamp-c32", "server_us_per_unit")
		}
	}' "$1" >"$dat"
	stamp=$(chart_columns "$dat" '^stamp-')
	pingpong=$(chart_columns "$dat" '^pingpong-')
	cpu=$(chart_columns "$dat" '^cpu-per-conn$')
	panels=0
	for p in "$stamp" "$pingpong" "$cpu"; do [ -n "$p" ] && panels=$((panels + 1)); done
	[ $panels -gt 0 ] || { rm -f "$dat"; return 0; }
	chart_terminals $panels | while read -r out; do
		gnuplot <<EOF || echo "report.sh: gnuplot failed for $2.${out#*|}" >&2
set terminal ${out%|*}
set output '$2.${out#*|}'
set multiplot layout $panels,1 title 'muxd engines, medians: $(basename "$2")'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key outside right top
set grid ytics
set yrange [0:*]
set xtics rotate by -30
$( [ -n "$stamp" ] && echo "set title 'stamp: connections per second'; plot $stamp" )
$( [ -n "$pingpong" ] && echo "set title 'upper ping-pong, 64 B: messages per second'; plot $pingpong" )
$( [ -n "$cpu" ] && echo "set title 'server CPU microseconds per connection (stamp, C=32): lower is better'; plot $cpu" )
unset multiplot
EOF
	done
	rm -f "$dat"
	cost_charts "$1" "$2-cost"
	latency_chart "$1" "$2-latency"
}

# gnuplot's terminals for a chart of $1 panels, one per line: "TERMINAL|EXT".
chart_terminals() {
	png=png
	gnuplot -e 'set terminal pngcairo' 2>/dev/null && png=pngcairo
	# noenhanced: an engine's name is text, and io_uring's _ no subscript.
	echo "$png noenhanced size 1100,$((330 * $1 + 60))|png"
	echo "svg noenhanced size 1100,$((330 * $1 + 60)) dynamic|svg"
}

# What each engine costs the server: $1 the CSV, $2 the path without
# extension. Writes $2.png and $2.svg: CPU per message (ping-pong at
# N=100, else the smallest N run) and per connection (stamp, C=32), the
# system calls per message by kind, and the memory per idle connection
# on a log scale. Lower is better in every panel.
cost_charts() {
	dat=${TMPDIR:-/tmp}/muxd-bench-cost-$$.dat
	awk -F, "$REPORT_AWK_LIB"'
	function m(e, s, what) { x = median(e SUBSEP s SUBSEP what); return x == "" ? "NaN" : x }
	function n_of(s) { return substr(s, 10) + 0 }
	END {
		for (j = 1; j <= ns; j++)
			if (scen[j] ~ /^pingpong-/ && pp != "pingpong-100" &&
			    (pp == "" || scen[j] == "pingpong-100" || n_of(scen[j]) < n_of(pp)))
				pp = scen[j]
		split("accept read write wait ctl fork thread lock uring_enter", kind, " ")
		printf "engine cpu-per-message cpu-per-connection"
		for (k = 1; k <= 9; k++) printf " %s", kind[k]
		print " idle-1000 idle-10000 " (pp == "" ? "none" : pp)
		for (i = 1; i <= ne; i++) {
			e = engines[i]
			printf "%s %s %s", e, m(e, pp, "server_us_per_unit"),
			       m(e, "stamp-c32", "server_us_per_unit")
			for (k = 1; k <= 9; k++) printf " %s", m(e, pp, "sys_" kind[k])
			print " " m(e, "idle-1000", "kib_per_conn"), m(e, "idle-10000", "kib_per_conn"), "NaN"
		}
	}' "$1" >"$dat"
	pp=$(awk 'NR == 1 { print $NF }' "$dat")
	cpu=$(chart_columns "$dat" '^cpu-per-')
	calls=$(chart_columns "$dat" '^(accept|read|write|wait|ctl|fork|thread|lock|uring_enter)$')
	memory=$(chart_columns "$dat" '^idle-')
	panels=0
	for p in "$cpu" "$calls" "$memory"; do [ -n "$p" ] && panels=$((panels + 1)); done
	[ $panels -gt 0 ] || { rm -f "$dat"; return 0; }
	chart_terminals $panels | while read -r out; do
		gnuplot <<EOF || echo "report.sh: gnuplot failed for $2.${out#*|}" >&2
set terminal ${out%|*}
set output '$2.${out#*|}'
set multiplot layout $panels,1 title 'what each engine costs the server, medians, lower is better: $(basename "$2")'
set style data histograms
set style fill solid 0.8 border -1
set key outside right top
set grid ytics
set xtics rotate by -30
set style histogram clustered gap 1
set yrange [0:*]
$( [ -n "$cpu" ] && echo "set title 'server CPU microseconds per message ($pp) and per connection (stamp-c32)'; plot $cpu" )
set style histogram rowstacked
$( [ -n "$calls" ] && echo "set title 'system calls per message, by kind ($pp)'; plot $calls" )
set style histogram clustered gap 1
set logscale y
set yrange [*:*]
$( [ -n "$memory" ] && echo "set title 'server memory per idle connection, KiB (log scale)'; plot $memory" )
unset multiplot
EOF
	done
	rm -f "$dat"
}

# Latency percentiles at each N of the ping-pong scenarios: $1 the CSV,
# $2 the path without extension. Writes $2.png and $2.svg: p50 and p99
# of the message round trip against the connections N, one line per
# engine, both axes logarithmic.
latency_chart() {
	dat=${TMPDIR:-/tmp}/muxd-bench-latency-$$.dat
	awk -F, "$REPORT_AWK_LIB"'
	function m(e, s, what) { x = median(e SUBSEP s SUBSEP what); return x == "" ? "NaN" : x }
	END {
		for (q = 1; q <= 2; q++) {
			printf "N"
			for (i = 1; i <= ne; i++) printf " %s", engines[i]
			print ""
			for (j = 1; j <= ns; j++) {
				if (scen[j] !~ /^pingpong-/) continue
				printf "%s", substr(scen[j], 10)
				for (i = 1; i <= ne; i++)
					printf " %s", m(engines[i], scen[j], q == 1 ? "p50_us" : "p99_us")
				print ""
			}
			print "\n"	# two blank lines: gnuplot index 0, then 1
		}
	}' "$1" >"$dat"
	columns=$(awk 'NR == 1 { print NF; exit }' "$dat")
	grep -q '^[0-9]' "$dat" || { rm -f "$dat"; return 0; }
	chart_terminals 2 | while read -r out; do
		gnuplot <<EOF || echo "report.sh: gnuplot failed for $2.${out#*|}" >&2
set terminal ${out%|*}
set output '$2.${out#*|}'
set multiplot layout 2,1 title 'ping-pong round-trip latency at each N, medians: $(basename "$2")'
set logscale xy
set key outside right top
set grid xtics ytics
set xlabel 'connections N'
set ylabel 'microseconds'
set title 'p50'
plot for [i=2:$columns] '$dat' index 0 using 1:i with linespoints title columnheader(i)
set title 'p99'
plot for [i=2:$columns] '$dat' index 1 using 1:i with linespoints title columnheader(i)
unset multiplot
EOF
	done
	rm -f "$dat"
}

# The gnuplot plot list of the columns of $1 whose name matches $2 and
# that hold at least one number; empty when none does.
chart_columns() {
	awk -v pat="$2" -v dat="$1" '
	NR == 1 { for (i = 2; i <= NF; i++) name[i] = $i; n = NF; next }
	{ for (i = 2; i <= n; i++) if ($i != "NaN") has[i] = 1 }
	END {
		for (i = 2; i <= n; i++) {
			if (name[i] !~ pat || !has[i]) continue
			printf "%s\x27%s\x27 using %d%s title \x27%s\x27", sep, dat, i,
			       sep ? "" : ":xtic(1)", name[i]
			sep = ", "
		}
	}' "$1"
}

# Run on its own: remake the report of a CSV.
case $0 in
*report.sh)
	[ $# -eq 1 ] || { echo "usage: sh report.sh RESULTS.csv" >&2; exit 2; }
	report "$1"
	charts "$1" "${1%.csv}"
	;;
esac
