# report.sh -- turn bench.sh's CSV into the Markdown tables and charts.
# Sourced by bench.sh; `sh bench/report.sh FILE.csv` remakes the report of
# an earlier run on standard output (and its charts beside the CSV), and
# `sh bench/report.sh --styles FILE.csv` shows each row's group, colour
# and marker in the charts.
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
	if ($col["errors"] + 0 > 0) {
		errs[e, s] += $col["errors"]
		kinds[e, s] = kinds[e, s] (kinds[e, s] == "" ? "" : "; ") $col["note"]
	}
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
		print "Stevens'"'"' column places each engine in the order of UNP (3rd ed.) figure 30.1, process-control CPU per connection, most first: 1 one fork per client; 2 preforked children handed each descriptor by the parent (serv05; muxd'"'"'s prefork default, --accept=handoff); 3 preforked children calling accept themselves, with or without a lock (serv02-04); 4 threads, one per client or prethreaded (serv06-08). His ranking is the yardstick, our rank column the measurement; the reactors are not in his table.\n"
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
# false, after saying so under the heading, when no row of s has a rate
function any_ran(s,    i) {
	for (i = 1; i <= ne; i++) if ((engines[i] SUBSEP s SUBSEP "rate") in cnt) return 1
	print "No row ran: see \"Skipped\" and \"Runs with errors\" for why.\n"
	return 0
}
function skipped_cell(e, s) { return ((e, s) in why) ? "skip" : ((e, s) in fails) ? "FAIL" : "-" }
function ms(x) { return x == "" ? "-" : num(x / 1000) }
function curve_table(    i, j, k, e, t, c, s, x, y, any) {
	if (!has("latency-curve-cap")) return
	print "## Latency against load (upper ping-pong, 100 connections, open loop)\n"
	if (!any_ran("latency-curve-cap")) return
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
	if (!any_ran("mixed")) return
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
	if (!any_ran("backend-10k")) return
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
				printf "- %s, %s: %d failed run(s), %d errors counted by muxbench%s\n", e, s, fails[e, s], errs[e, s], kinds[e, s] == "" ? "" : " (" kinds[e, s] ")"
		}
		print ""
	}
}' "$1" | sed 's/"//g'
}

# ---- charts, when gnuplot is here ----
#
# A chart is a column of panels, or a grid of them; each panel is a small
# gnuplot script that awk writes from the CSV (PANEL.gp, its data in
# PANEL.dat), and a panel with nothing to draw is not written, so that a
# chart shows only what was run. In bar panels the engines are the x axis;
# a bar missing because its run was skipped, failed or not made says so
# where it would stand, never as a zero. Line panels draw one line per
# engine, at most 8 to a panel, grouped by family from the tags of
# `muxd --list-engines=tsv`; every engine keeps its own colour and marker in
# every chart. Lower is better unless a title says otherwise.

# Ten colours told apart on screen and on paper.
CHART_PALETTE='#1f77b4 #d62728 #2ca02c #ff7f0e #9467bd #8c564b #e377c2 #17becf #7f7f7f #bcbd22'

# $1 the CSV, $2 the path without extension: $2.png and .svg (rates),
# $2-cost, $2-latency, $2-curve, $2-mixed and $2-backend, each when its
# scenarios gave something to draw.
charts() {
	command -v gnuplot >/dev/null 2>&1 || return 0
	cdir=$(mktemp -d "${TMPDIR:-/tmp}/muxd-charts.XXXXXX") || return 0
	chart_styles "$1" >"$cdir/styles"
	rates_chart "$1" "$2"
	cost_chart "$1" "$2-cost"
	latency_chart "$1" "$2-latency"
	curve_chart "$1" "$2-curve"
	mixed_chart "$1" "$2-mixed"
	backend_chart "$1" "$2-backend"
	rm -rf "$cdir"
}

# Each row of the CSV: "ENGINE GROUP COLOUR POINTTYPE TITLE", tab-
# separated. A group is a family cut into eights: processes and threads,
# single-threaded reactors, multi-threaded and completion engines (by
# their tags), reference servers, and rows muxd does not list. A colour
# per place in the group and a marker per group make each pair unique;
# places are taken in the order of `muxd --list-engines=tsv`, whatever rows
# the CSV has, so that an engine looks the same in every run's charts.
chart_styles() {
	awk -F, -v listing="$("${MUXD:-./src/muxd}" --list-engines=tsv 2>/dev/null)" \
	    -v palette="$CHART_PALETTE" '
	BEGIN {
		split("processes and threads|single-threaded reactors|multi-threaded and completion engines|reference servers|other servers", title, "|")
		split("7 5 9 13 11 15 4 6 8 10 12 14", pt, " ")
		split(palette, colour, " ")
		n = split(listing, line, "\n")
		for (i = 1; i <= n; i++) {
			split(line[i], w, "\t")
			tags[w[1]] = " " w[2] " "
			place(w[1])
		}
		place("libuv"); place("libevent"); place("nginx")
	}
	function family(e,    t) {
		if (e == "libuv" || e == "libevent" || e == "nginx") return 4
		if (!(e in tags)) return 5
		t = tags[e]
		if (index(t, " completion ") || (index(t, " readiness ") && index(t, " threads ")))
			return 3
		return index(t, " readiness ") ? 2 : 1
	}
	function place(e,    f) {
		if (e == "" || e in fam) return
		f = fam[e] = family(e)
		member[f, ++size[f]] = e
	}
	NR == 1 { for (i = 1; i <= NF; i++) if ($i == "engine") ec = i; next }
	{ place($ec); in_csv[$ec] = 1 }
	END {
		for (f = 1; f <= 5; f++)
			for (k = 1; k <= size[f]; k++) {
				if ((k - 1) % 8 == 0) {
					g++
					t = title[f] (size[f] > 8 ? " (" int((k - 1) / 8) + 1 ")" : "")
				}
				e = member[f, k]
				if (e in in_csv)
					printf "%s\t%d\t%s\t%s\t%s\n", e, g, colour[(k - 1) % 8 + 1], pt[g], t
			}
	}' "$1"
}

# bar_panel CSV PANEL TITLE YLABEL SCALE STYLE SPEC: a panel of bars,
# clustered or rowstacked (STYLE), linear or log (SCALE), one bar or
# segment per "SCENARIO|FIELD|LEGEND" of SPEC (";" between them) for each
# engine that has a row of any of those scenarios. FIELD perf_only is
# sys_perf for the reference rows only: all their system calls, which
# perf counts without telling kinds apart.
bar_panel() {
	awk -F, -v panel="$2" -v ptitle="$3" -v ylabel="$4" -v scale="$5" \
	    -v style="$6" -v spec="$7" -v palette="$CHART_PALETTE" "$REPORT_AWK_LIB"'
	function reference(e) { return e == "nginx" || e == "libuv" || e == "libevent" }
	function ran(e, s) { return ((e, s) in why) || ((e, s) in fails) || ((e SUBSEP s SUBSEP "rate") in cnt) }
	# FIELD/D: the field divided by D
	function value(e, s, f,    d, v) {
		if (f == "perf_only") return reference(e) ? median(e SUBSEP s SUBSEP "sys_perf") : ""
		d = 1
		if (split(f, p, "/") == 2) { f = p[1]; d = p[2] }
		v = median(e SUBSEP s SUBSEP f)
		return v == "" ? "" : v / d
	}
	function missing(e, s) {
		return ((e, s) in why) ? "skipped" : ((e, s) in fails) ? "failed" : ran(e, s) ? "no data" : "not run"
	}
	# The power of ten next to x, below it (dir -1) or above it (1).
	function decade(x, dir,    l, p) {
		l = log(x) / log(10); p = int(l)
		if (dir < 0 && p > l) p--
		if (dir > 0 && p < l) p++
		return 10 ^ p
	}
	# Text standing up from the axis where bar j of row x would be.
	function mark(x, j, text) {
		if (style == "clustered") x += (j - (nc + 1) / 2) / (nc + 1)
		labels = labels sprintf("set label \"%s\" at first %.3f, graph 0.03 rotate by 90 left front font \",9\" tc rgb \"#555555\"\n", text, x)
	}
	END {
		nc = split(spec, cs, ";"); split(palette, colour, " ")
		for (j = 1; j <= nc; j++) { split(cs[j], p, "|"); sc[j] = p[1]; fd[j] = p[2]; lg[j] = p[3] }
		rows = 0
		for (i = 1; i <= ne; i++) {
			e = engines[i]; r = 0
			for (j = 1; j <= nc; j++) r += ran(e, sc[j])
			if (!r) continue
			line = e; drawn = 0
			for (j = 1; j <= nc; j++) {
				v = value(e, sc[j], fd[j])
				if (v > 0) used[j] = 1
				if (v != "" && (scale != "log" || v > 0)) {
					line = line " " v; drawn++
					if (!bounds++ || v + 0 < ymin) ymin = v + 0
					if (v + 0 > ymax) ymax = v + 0
					continue
				}
				line = line " NaN"
				if (style == "clustered") mark(rows, j, v == "" ? missing(e, sc[j]) : "0")
			}
			if (style != "clustered" && !drawn) mark(rows, 1, missing(e, sc[1]))
			any += drawn
			print line >(panel ".dat")
			rows++
		}
		if (!any) exit
		gp = panel ".gp"
		printf "set title \"%s\"\nset ylabel \"%s\"\nunset xlabel\n", ptitle, ylabel >gp
		printf "set xtics rotate by -30\nunset logscale x\nset format y \"%%g\"\nset grid noxtics ytics\n" >gp
		printf "set style histogram %s\n", style == "clustered" ? "clustered gap 1" : "rowstacked" >gp
		# A log axis runs from the decade below the lowest bar, which
		# would not show if it stood at the bottom, to the decade above
		# the highest, with room for both (and so never one value, of
		# which gnuplot warns).
		if (scale == "log")
			printf "set logscale y\nset yrange [%g:%g]\n", decade(ymin / 1.5, -1), decade(ymax * 1.5, 1) >gp
		else printf "unset logscale y\nset yrange [0:%s]\n", (ymax > 0 ? "*" : "1") >gp
		printf "set xrange [-0.6:%.1f]\n%s", rows - 0.4, labels >gp
		# a segment no row has is left out of a stack, and of its key
		sep = "plot "
		for (j = 1; j <= nc; j++) {
			if (style != "clustered" && !used[j]) continue
			printf "%s\"%s\" using %d%s title \"%s\" lc rgb \"%s\"", sep,
			       panel ".dat", j + 1, sep == "plot " ? ":xtic(1)" : "", lg[j], colour[j] >gp
			sep = ", "
		}
		printf "\nunset label\n" >gp
	}' "$1"
}

# line_panel CSV PANEL TITLE XLABEL YLABEL GROUP XSPEC FIELD: latency
# FIELD (microseconds, drawn in milliseconds) against x, a line for each
# engine of style group GROUP, the points "SCENARIO|X" of XSPEC (";"
# between them). An engine of the group with no point is named in the key
# with the reason. Log scales, but for x when XLABEL says "%".
line_panel() {
	awk -F, -v panel="$2" -v ptitle="$3" -v xlabel="$4" -v ylabel="$5" \
	    -v group="$6" -v xspec="$7" -v fd="$8" -v styles="$cdir/styles" "$REPORT_AWK_LIB"'
	END {
		while ((getline l <styles) > 0) {
			split(l, sty, "\t")
			if (sty[2] == group) { member[++nm] = sty[1]; colour[sty[1]] = sty[3]; pt[sty[1]] = sty[4] }
		}
		nx = split(xspec, xs, ";")
		for (k = 1; k <= nx; k++) { split(xs[k], p, "|"); sx[k] = p[1]; xv[k] = p[2] }
		gp = panel ".gp"
		printf "set title \"%s\"\nset xlabel \"%s\"\nset ylabel \"%s\"\n", ptitle, xlabel, ylabel >gp
		printf "set xtics norotate\nset format y \"%%g\"\nset grid xtics ytics\nset logscale y\nset yrange [*:*]\n" >gp
		if (xlabel ~ /%/) printf "unset logscale x\nset xrange [0:100]\nset xtics 10, 20, 90\n" >gp
		else printf "set logscale x\nset xrange [*:*]\nset xtics autofreq\n" >gp
		plot = ""
		for (i = 1; i <= nm; i++) {
			e = member[i]; has_point = 0
			for (k = 1; k <= nx; k++) if (median(e SUBSEP sx[k] SUBSEP fd) > 0) has_point = 1
			if (!has_point) {
				reason = "not run"
				for (k = 1; k <= nx; k++) if ((e, sx[k]) in why) reason = "skipped"
				plot = plot sprintf(", NaN with lines lc rgb \"#ffffff\" title \"%s: %s\"", e, reason)
				continue
			}
			col[++nc] = e
			plot = plot sprintf(", \"%s\" using 1:($%d / 1000) with linespoints lw 2 pt %s ps 1.2 lc rgb \"%s\" title \"%s\"",
					    panel ".dat", nc + 1, pt[e], colour[e], e)
		}
		for (k = 1; k <= nx; k++) {
			line = xv[k]
			for (i = 1; i <= nc; i++) {
				v = median(col[i] SUBSEP sx[k] SUBSEP fd)
				line = line " " (v > 0 ? v : "NaN")
				if (v > 0 && (!bounds++ || v / 1000 < ymin)) ymin = v / 1000
				if (v / 1000 > ymax) ymax = v / 1000
			}
			print line >(panel ".dat")
		}
		if (nc && ymin == ymax) printf "set yrange [%s:%s]\n", ymin / 2, ymax * 2 >gp
		if (!nc) printf "unset logscale xy\nset xrange [0:1]\nset yrange [0:1]\nset label \"nothing measured\" at graph 0.5, graph 0.5 center\nplot NaN notitle%s\nunset label\n", plot >gp
		else printf "plot %s\n", substr(plot, 3) >gp
	}' "$1"
}

# The scenarios of the CSV that match $2, in order, one per line.
chart_scenarios() {
	awk -F, -v pat="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "scenario") sc = i; next }
		$sc ~ pat && !seen[$sc]++ { print $sc }' "$1"
}

# A SPEC of bar_panel: FIELD $2 for each scenario of $1 (lines), the
# legend $3 (for 1) or $4 with its "#" turned into the number that ends
# the scenario's name.
bar_spec() {
	for s in $1; do
		n=$(echo "${s##*-}" | tr -cd 0-9)
		legend=$4
		[ "$n" = 1 ] && legend=$3
		printf '%s|%s|%s;' "$s" "$2" "$(echo "$legend" | sed "s/#/$n/")"
	done | sed 's/;$//'
}

# draw_chart OUT TITLE COLUMNS PANEL...: the panels that were written, in
# a grid COLUMNS wide, as OUT.png and OUT.svg; nothing if none was. Every
# panel has the same size, whatever its key: the keys stand in the
# chart's right margin, beside the last panel of each row (in a grid the
# panels of a row share their lines, and so their key).
draw_chart() {
	out=$1 title=$2 columns=$3
	shift 3
	panels=""
	for p; do [ -f "$p.gp" ] && panels="$panels $p.gp"; done
	[ -n "$panels" ] || return 0
	n=$(echo $panels | wc -w)
	rows=$(((n + columns - 1) / columns))
	width=$((columns > 1 ? 480 * columns + 270 : 1100)) height=$((350 * rows + 90))
	layout=$(awk -v w="$width" -v h="$height" 'BEGIN {
		printf "margins screen %.3f, %.3f, %.3f, %.3f spacing screen %.3f, %.3f",
		       100 / w, 1 - 270 / w, 100 / h, 1 - 85 / h, 100 / w, 135 / h
	}')
	key_x=$(awk -v w="$width" 'BEGIN { printf "%.3f", 1 - 255 / w }')
	chart_terminals "$width" "$height" | while read -r term; do
		{
			cat <<EOF
set terminal ${term%|*}
set output '$out.${term#*|}'
set multiplot layout $rows,$columns $layout title "$title: $(basename "$out")"
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.9 relative
EOF
			i=0
			for p in $panels; do
				i=$((i + 1))
				if [ $((i % columns)) -eq 0 ] || [ $i -eq $n ]; then
					echo "set key at screen $key_x, graph 1 left top Left reverse"
				else
					echo "unset key"
				fi
				cat "$p"
			done
			echo "unset multiplot"
		} | gnuplot || echo "report.sh: gnuplot failed for $out.${term#*|}" >&2
	done
}

# gnuplot's terminals for a chart WIDTH x HEIGHT, one a line: "TERMINAL|EXT".
chart_terminals() {
	png=png
	gnuplot -e 'set terminal pngcairo' 2>/dev/null && png=pngcairo
	# noenhanced: an engine's name is text, and io_uring's _ no subscript.
	echo "$png noenhanced size $1,$2|png"
	echo "svg noenhanced size $1,$2 dynamic|svg"
}

# The rates, and the server CPU per connection beside them.
rates_chart() {
	bar_panel "$1" "$cdir/r1" "stamp: new connections per second (connect, read the time, close); higher is better" \
		"connections per second" linear clustered \
		"$(bar_spec "$(chart_scenarios "$1" '^stamp-c')" rate '1 client at a time' '# clients at once')"
	bar_panel "$1" "$cdir/r2" "upper ping-pong, 64-byte messages, each connection a closed loop; higher is better" \
		"messages per second" linear clustered \
		"$(bar_spec "$(chart_scenarios "$1" '^pingpong-')" rate '1 connection' '# connections')"
	bar_panel "$1" "$cdir/r3" "upper streams of 16 KiB writes; higher is better" \
		"MB per second" linear clustered \
		"$(bar_spec "$(chart_scenarios "$1" '^stream-')" rate '1 stream' '# streams at once')"
	bar_panel "$1" "$cdir/r4" "server CPU per connection (stamp, 32 clients at once); lower is better" \
		"microseconds (log scale)" log clustered \
		"stamp-c32|server_us_per_unit|per connection"
	draw_chart "$2" "muxd engines, medians" 1 "$cdir/r1" "$cdir/r2" "$cdir/r3" "$cdir/r4"
}

# What each engine costs the server: CPU per message and per connection,
# system calls per message by kind, memory per idle connection.
cost_chart() {
	pp=$(chart_scenarios "$1" '^pingpong-100$')
	[ -n "$pp" ] || pp=$(chart_scenarios "$1" '^pingpong-' | head -n 1)
	stamp=$(chart_scenarios "$1" '^stamp-c32$')
	spec="" what=""
	[ -n "$pp" ] && spec="$pp|server_us_per_unit|per message" what="per message ($pp)"
	[ -n "$stamp" ] && spec="${spec:+$spec;}$stamp|server_us_per_unit|per connection" &&
		what="${what:+$what and }per connection ($stamp)"
	[ -n "$spec" ] && bar_panel "$1" "$cdir/c1" "server CPU $what; lower is better" \
		"microseconds (log scale)" log clustered "$spec"
	spec=""
	for kind in accept read write wait ctl fork thread lock uring_enter; do
		spec="$spec$pp|sys_$kind|$kind;"
	done
	[ -n "$pp" ] && bar_panel "$1" "$cdir/c2" "system calls per message by kind ($pp), from muxd --stats; reference rows: all, from perf" \
		"system calls per message" linear rowstacked "${spec}$pp|perf_only|all kinds (perf)"
	bar_panel "$1" "$cdir/c3" "server memory per idle connection; lower is better" \
		"KiB (log scale)" log clustered \
		"$(bar_spec "$(chart_scenarios "$1" '^idle-')" kib_per_conn '1 idle connection' '# idle connections')"
	draw_chart "$2" "what each engine costs the server, medians" 1 "$cdir/c1" "$cdir/c2" "$cdir/c3"
}

# Has line panel $1 a line? A group none of whose engines has a point
# is left out of a grid, not drawn as a row of empty panels.
drawn() { grep -q 'using 1:' "$1.gp"; }

# The groups of the style file that have a row of the CSV, one a line.
chart_groups() { cut -f2 "$cdir/styles" | uniq; }
group_title() { awk -F'\t' -v g="$1" '$2 == g { print $5; exit }' "$cdir/styles"; }

# Ping-pong round trips against N: a grid of lines (a row per group, p50
# and p99) with two N or more, else bars at the one N.
latency_chart() {
	xspec=""
	for s in $(chart_scenarios "$1" '^pingpong-'); do xspec="$xspec$s|${s##*-};"; done
	if [ "$(echo "$xspec" | tr ';' '\n' | grep -c .)" -lt 2 ]; then
		s=${xspec%%|*}
		[ -n "$s" ] || return 0
		bar_panel "$1" "$cdir/l" "ping-pong round trip at N=${s##*-} connections, closed loops; lower is better" \
			"milliseconds (log scale)" log clustered "$s|p50_us/1000|p50;$s|p99_us/1000|p99"
		draw_chart "$2" "ping-pong round-trip latency, medians" 1 "$cdir/l"
		return
	fi
	panels=""
	for g in $(chart_groups); do
		t=$(group_title "$g")
		for q in p50 p99; do
			line_panel "$1" "$cdir/l$g$q" "$q: $t" "connections N (log scale)" \
				"milliseconds (log scale)" "$g" "$xspec" "${q}_us"
		done
		drawn "$cdir/l${g}p50" && panels="$panels $cdir/l${g}p50 $cdir/l${g}p99"
	done
	draw_chart "$2" "ping-pong round trip against connections, medians" 2 $panels
}

# latency-curve: p50, p99 and p99.9 against the load, a row per group.
curve_chart() {
	xspec=""
	for s in $(chart_scenarios "$1" '^latency-curve-[0-9]'); do xspec="$xspec$s|${s##*-};"; done
	[ -n "$xspec" ] || return 0
	panels=""
	for g in $(chart_groups); do
		t=$(group_title "$g")
		for q in p50 p99 p999; do
			label=$q
			[ $q = p999 ] && label=p99.9
			line_panel "$1" "$cdir/v$g$q" "$label: $t" "load, % of the engine's own closed-loop capacity" \
				"milliseconds (log scale)" "$g" "$xspec" "${q}_us"
		done
		drawn "$cdir/v${g}p50" && panels="$panels $cdir/v${g}p50 $cdir/v${g}p99 $cdir/v${g}p999"
	done
	draw_chart "$2" "latency against load: upper ping-pong, 100 connections, open loop" 3 $panels
}

# mixed: the p99 of light and of heavy requests.
mixed_chart() {
	bar_panel "$1" "$cdir/m" "mixed work, the same offered load for all: p99 latency; lower is better" \
		"milliseconds (log scale)" log clustered \
		"mixed|light_p99_us/1000|light requests (99 %);mixed|heavy_p99_us/1000|heavy requests (1 %)"
	draw_chart "$2" "light and heavy requests, medians" 1 "$cdir/m"
}

# backend-10k: rate, CPU per request, memory per connection.
backend_chart() {
	bar_panel "$1" "$cdir/b1" "10,000 connections waiting 100 ms a request: requests answered per second; higher is better" \
		"requests per second" linear clustered "backend-10k|rate|requests answered"
	bar_panel "$1" "$cdir/b2" "server CPU per request; lower is better" \
		"microseconds (log scale)" log clustered "backend-10k|server_us_per_unit|per request"
	bar_panel "$1" "$cdir/b3" "server memory per waiting connection (Pss); lower is better" \
		"KiB (log scale)" log clustered "backend-10k|kib_per_conn|per connection"
	draw_chart "$2" "10,000 clients waiting on a backend, medians" 1 "$cdir/b1" "$cdir/b2" "$cdir/b3"
}

# Run on its own: remake the report of a CSV, or with --styles print
# the group, colour and marker that the charts give each of its rows.
case $0 in
*report.sh)
	case $#:${1-} in
	2:--styles) chart_styles "$2" ;;
	1:*) report "$1"; charts "$1" "${1%.csv}" ;;
	*) echo "usage: sh report.sh [--styles] RESULTS.csv" >&2; exit 2 ;;
	esac
	;;
esac
