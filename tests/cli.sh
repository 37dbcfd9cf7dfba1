#!/bin/sh
# cli.sh -- muxd's command line: --help, --version, the listings, and the
# exit codes muxd.1 gives (EXIT STATUS): 0 for information, 2 for a usage error
# (naming the bad value), 1 for a start-up failure (naming the address).
#
# Every muxd run here is bounded by timeout(1), so an option that is wrongly
# accepted shows up as a server that kept running (exit 124), not a hang.
# With MUXD_TEST_KEEP set, the scratch directory is kept and named.

top=${top_srcdir:-${srcdir:-$(dirname "$0")/..}}
. "$top/tests/tap.sh"
: "${MUXD:?MUXD must be the absolute path of src/muxd}"

limit=$(awk -v m="${MUXD_TEST_TIMEOUT_MULT:-1}" 'BEGIN { printf "%d", 30 * m + 0.5 }')
engines="iterative fork pthread select poll epoll-lt epoll-et"
services="stamp upper echo discard chargen daytime time"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/muxd-cli.XXXXXX") || bail_out "mktemp failed"
first_pid=
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	[ -n "$first_pid" ] && kill "$first_pid" 2>/dev/null
	if [ -n "$MUXD_TEST_KEEP" ]; then
		diag "scratch files kept in $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

# run ARG...: muxd's output in $tmp/out and $tmp/err, its exit code in $status.
run() {
	timeout -k "$limit" "$limit" "$MUXD" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
	status=$?
}

diag_output() {
	[ -s "$tmp/out" ] && diag "stdout:" "$(cat "$tmp/out")"
	[ -s "$tmp/err" ] && diag "stderr:" "$(cat "$tmp/err")"
	return 0
}

# Every log line carries the program's name, never argv[0]'s full path.
stderr_prefixed() {
	[ -s "$tmp/err" ] && ! grep -qv '^muxd: ' "$tmp/err"
}

# first_words FILE: the first word of each non-empty line.
first_words() {
	awk 'NF { print $1 }' "$1"
}

# error_case CODE WORD NAME ARG...: muxd ARG... exits CODE, names WORD on
# stderr in "muxd: " lines, and prints nothing on stdout.
error_case() {
	want=$1 word=$2 name=$3
	shift 3
	run "$@"
	why=
	[ "$status" -eq "$want" ] || why="exit $status, expected $want;"
	[ -s "$tmp/out" ] && why="$why stdout is not empty;"
	grep -qF -- "$word" "$tmp/err" || why="$why stderr does not name '$word';"
	stderr_prefixed || why="$why stderr is empty or a line lacks 'muxd: ';"
	if [ -z "$why" ]; then
		ok 0 "$name"
	else
		ok 1 "$name"
		diag "muxd $*" "$why"
		diag_output
	fi
}

# ---- information: exit 0 ----

run --help
cp "$tmp/out" "$tmp/help"
missing=
for word in --engine --trace --trace-limit $engines; do
	grep -qF -- "$word" "$tmp/help" || missing="$missing $word"
done
ok $status "--help exits 0" || diag_output
is "$missing" "" "--help mentions --engine, --trace and every engine"
wide=$(awk 'length > 79 { n++ } END { print n + 0 }' "$tmp/out")
is "$wide" 0 "--help fits 80 columns: no line over 79"
"${MUXBENCH:-$(dirname "$MUXD")/muxbench}" --help >"$tmp/bench-help" 2>&1
wide=$(awk 'length > 79 { n++ } END { print n + 0 }' "$tmp/bench-help")
is "$wide" 0 "muxbench --help fits 80 columns too"
run -h
cmp -s "$tmp/out" "$tmp/help"
ok $(( status != 0 || $? != 0 )) "-h exits 0 and prints the same as --help"

run --version
ok $status "--version exits 0" || diag_output
grep -q 'muxd' "$tmp/out" && grep -qE '[0-9]+\.[0-9]+' "$tmp/out"
ok $? "--version prints muxd and a version number" || diag_output
cp "$tmp/out" "$tmp/version"
run -V
cmp -s "$tmp/out" "$tmp/version"
ok $(( status != 0 || $? != 0 )) "-V exits 0 and prints the same as --version"

run --list-engines
ok $status "--list-engines exits 0" || diag_output
lines=$(awk 'END { print NR }' "$tmp/out")
[ "$lines" -ge 7 ]
ok $? "--list-engines prints at least 7 lines" || diag "$lines lines"
bad=$(grep -cvE '^[A-Za-z0-9_-]+[[:space:]]+[^[:space:]]' "$tmp/out")
is "$bad" 0 "--list-engines: each line is a one-word name, then a description"
missing=
for name in $engines; do
	first_words "$tmp/out" | grep -qxF -- "$name" || missing="$missing $name"
done
is "$missing" "" "--list-engines lists $engines"
error_case 2 xml "--list-engines=xml exits 2 naming the format" --list-engines=xml

run --list-services
ok $status "--list-services exits 0" || diag_output
bad=$(grep -cvE '^[A-Za-z0-9_-]+[[:space:]]+[^[:space:]]' "$tmp/out")
is "$bad" 0 "--list-services: each line is a one-word name, then a description"
missing=
for name in $services; do
	first_words "$tmp/out" | grep -qxF -- "$name" || missing="$missing $name"
done
is "$missing" "" "--list-services lists the seven services"

# ---- usage errors: exit 2, naming the bad value ----

# "pass", handoff's older name, is taken for it.
error_case 2 handoff "--accept=pass is taken as handoff" \
	--engine epoll-lt --accept=pass
error_case 2 nosuchengine "unknown engine (--engine=) exits 2 naming it" \
	--engine=nosuchengine --listen upper=127.0.0.1:0
error_case 2 nosuchengine "unknown engine (-e) exits 2 naming it" \
	-e nosuchengine --listen upper=127.0.0.1:0
error_case 2 nosuchsvc "unknown service in --listen exits 2 naming it" \
	--listen nosuchsvc=127.0.0.1:0
error_case 2 99999 "--listen port 99999 exits 2 naming it" \
	--listen upper=127.0.0.1:99999
error_case 2 abc "--listen port abc exits 2 naming it" \
	--listen upper=127.0.0.1:abc
error_case 2 --no-such-option "unknown option exits 2 naming it" \
	--no-such-option --listen upper=127.0.0.1:0
error_case 2 --engine "--engine without its value exits 2" \
	--listen upper=127.0.0.1:0 --engine
for option in --workers --max-conns --idle-timeout; do
	for value in abc 5x -1 99999999999999999999; do
		error_case 2 "$value" "$option=$value exits 2 naming the value" \
			"$option=$value" --listen upper=127.0.0.1:0
	done
done
error_case 2 abc "--workers abc (separate argument) exits 2" \
	--workers abc --listen upper=127.0.0.1:0
error_case 2 abc "--grace=abc exits 2 naming the value" \
	--grace=abc --listen upper=127.0.0.1:0
error_case 2 abc "--backlog=abc exits 2 naming the value" \
	--backlog=abc --listen upper=127.0.0.1:0
# Below the 0.001 minimum, too: 0.0005 printed 2,000 lines a second and
# 1e-10 made the reporter spin.
for value in 0 0.0005 0.0000000001 abc 1.5x -1 100000; do
	error_case 2 "'$value'" "--stats-interval=$value exits 2 naming the value" \
		"--stats-interval=$value" --listen upper=127.0.0.1:0
done
run --stats-interval=0.0009 --listen upper=127.0.0.1:0
lines=$(wc -l <"$tmp/err")
is "$lines" 1 "--stats-interval=0.0009: one line on stderr"
grep -q "from 0.001 .*see 'muxd --help'" "$tmp/err"
ok $? "--stats-interval=0.0009: the line gives the minimum and a hint" || diag_output
error_case 2 nosuchsvc "unknown service in --inetd exits 2 naming it" \
	--inetd=nosuchsvc
# --trace-limit: 1 to 100,000,000 events a thread, and only with --trace.
for value in 0 100000001 abc -1 5x; do
	error_case 2 "'$value'" "--trace-limit=$value exits 2 naming the value" \
		--trace="$tmp/never.json" "--trace-limit=$value" --listen upper=127.0.0.1:0
done
error_case 2 "--trace-limit=10 without --trace" \
	"--trace-limit without --trace exits 2 saying so" \
	--trace-limit=10 --listen upper=127.0.0.1:0
error_case 2 "--trace" "--trace with an empty name exits 2" \
	--trace= --listen upper=127.0.0.1:0
test ! -e "$tmp/never.json"
ok $? "a usage error leaves no trace file behind"

# ---- start-up failure: exit 1, naming the path and the reason ----

error_case 1 "$tmp/no/such/dir/t.json: No such file or directory" \
	"--trace FILE that cannot be created: exit 1 naming it and why" \
	--trace="$tmp/no/such/dir/t.json" --listen upper=127.0.0.1:0

# --threads: 1..1024, and only for the engines that take it; the
# message is one line naming the value.
"$MUXD" --list-engines=tsv >"$tmp/engines" 2>/dev/null
threaded=$(awk -F '\t' '$4 == "threads" { print $1; exit }' "$tmp/engines")
unthreaded=$(awk -F '\t' '$4 != "threads" { print $1; exit }' "$tmp/engines")
if [ -n "$threaded" ]; then
	for value in 0 1025 x 4x -2; do
		error_case 2 "$value" "--threads=$value exits 2 naming the value" \
			--engine "$threaded" "--threads=$value" --listen upper=127.0.0.1:0
		lines=$(awk 'END { print NR }' "$tmp/err")
		is "$lines" 1 "--threads=$value: one line on stderr"
	done
else
	skip 10 "no engine takes --threads"
fi
if [ -n "$unthreaded" ]; then
	error_case 2 "threads=4" "--threads given to $unthreaded (no (--threads)) exits 2 naming it" \
		--engine "$unthreaded" --threads=4 --listen upper=127.0.0.1:0
	lines=$(awk 'END { print NR }' "$tmp/err")
	is "$lines" 1 "--threads given to $unthreaded: one line on stderr"
else
	skip 2 "every engine takes --threads"
fi

# ---- start-up failure: exit 1, naming the address ----

# A first muxd takes a port; a second asking for it must fail cleanly.
# SIGTERM goes to muxd itself, by the pid it logs, as a user sends it.
# Sent to timeout, it reaches muxd twice (timeout passes it on to muxd and
# to its process group), and an ASan muxd stopped that way hung in its
# leak check once in 19 runs beside another ASan suite. timeout exits
# with muxd's status.
timeout -k "$limit" "$limit" "$MUXD" --listen upper=127.0.0.1:0 \
	>"$tmp/first.out" 2>"$tmp/first.err" </dev/null &
first_pid=$!
port= muxd_pid=
tries=0
while [ -z "$muxd_pid" ] && [ "$tries" -lt $((limit * 10)) ]; do
	sleep 0.1
	port=$(awk '$1 == "listening" && $2 == "upper" { print $4; exit }' "$tmp/first.out")
	[ -n "$port" ] &&
		muxd_pid=$(awk '/ serving .*, pid [0-9]+$/ { print $NF; exit }' "$tmp/first.err")
	tries=$((tries + 1))
done
if [ -z "$muxd_pid" ]; then
	ok 1 "a first muxd on port 0 prints its port and pid"
	diag "stdout: $(cat "$tmp/first.out")" "stderr: $(cat "$tmp/first.err")"
	skip 5 "no first server"
else
	ok 0 "a first muxd on port 0 prints its port and pid"
	error_case 1 "127.0.0.1" "port in use: exit 1 naming the address" \
		--listen "upper=127.0.0.1:$port"
	grep -qF -- "$port" "$tmp/err"
	ok $? "port in use: stderr names the port $port" || diag_output
	error_case 1 "127.0.0.1" "port in use with --trace: exit 1" \
		--trace="$tmp/unstarted.json" --listen "upper=127.0.0.1:$port"
	test ! -e "$tmp/unstarted.json"
	ok $? "port in use: the trace file made for it is removed" || diag_output
	kill -TERM "$muxd_pid"
	wait "$first_pid"
	first_status=$?
	ok $first_status "the first muxd exits 0 on SIGTERM" ||
		diag "exit status $first_status" "stderr: $(cat "$tmp/first.err")"
fi
first_pid=

tap_done
