# tap.sh -- Test Anything Protocol helpers for POSIX sh tests.
#
# Source it ("$srcdir/tests/tap.sh"), then:
#   plan N                   announce N tests (or let tap_done print the plan)
#   ok STATUS NAME           one result: STATUS 0 passes, anything else fails
#   check NAME CMD [ARG...]  run CMD; its exit status decides the result
#   is GOT WANT NAME         pass when the two strings are equal
#   diag TEXT...             "# " lines: one per argument and per line in it
#   skip N REASON            count N tests as skipped
#   bail_out REASON          "Bail out!" and exit 1
#   tap_done                 print the plan if none was given; exit 1 if any
#                            test failed or the plan was not kept, else 0
# ("done" would be the natural name, but it is a reserved word in sh.)
# Results go to standard output; nothing here needs bash.

tap_count=0
tap_failed=0
tap_planned=

plan() {
	tap_planned=$1
	echo "1..$1"
}

diag() {
	for tap_diag_text in "$@"; do
		printf '%s\n' "$tap_diag_text"
	done | sed 's/^/# /'
}

ok() {
	tap_count=$((tap_count + 1))
	if [ "$1" -eq 0 ] 2>/dev/null; then
		echo "ok $tap_count - $2"
		return 0
	fi
	tap_failed=$((tap_failed + 1))
	echo "not ok $tap_count - $2"
	return 1
}

check() {
	tap_check_name=$1
	shift
	"$@"
	ok $? "$tap_check_name"
}

is() {
	if [ "$1" = "$2" ]; then
		ok 0 "$3"
		return 0
	fi
	ok 1 "$3"
	diag "     got: '$1'"
	diag "expected: '$2'"
	return 1
}

skip() {
	tap_skip_n=$1
	while [ "$tap_skip_n" -gt 0 ]; do
		tap_count=$((tap_count + 1))
		echo "ok $tap_count # SKIP $2"
		tap_skip_n=$((tap_skip_n - 1))
	done
}

bail_out() {
	echo "Bail out! $*"
	exit 1
}

tap_done() {
	if [ -z "$tap_planned" ]; then
		echo "1..$tap_count"
	elif [ "$tap_planned" -ne "$tap_count" ]; then
		diag "planned $tap_planned tests but ran $tap_count"
		exit 1
	fi
	if [ "$tap_failed" -ne 0 ]; then
		diag "failed $tap_failed of $tap_count tests"
		exit 1
	fi
	exit 0
}
