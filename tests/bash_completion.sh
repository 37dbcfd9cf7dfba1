#!/bin/sh
# bash_completion.sh -- the bash completion (completion/muxd) against the muxd
# and muxbench just built: bash sources it, each case sets COMP_WORDS and
# COMP_CWORD as bash does when Tab is pressed, calls the completion
# function, and the words it offers (COMPREPLY) are compared with what
# the programs themselves list. Skipped without bash.

top=${top_srcdir:-${srcdir:-$(dirname "$0")/..}}
. "$top/tests/tap.sh"
: "${MUXD:?MUXD must be the absolute path of src/muxd}"
: "${MUXBENCH:?MUXBENCH must be the absolute path of src/muxbench}"

if ! command -v bash >/dev/null 2>&1; then
	echo "1..0 # SKIP bash is not installed"
	exit 0
fi

# offers WORD...: what the completion offers for the command line WORD...
# (the last word is the one being completed), sorted, on one line.
offers() {
	bash -c '
		. "$1/completion/muxd" || exit 1
		shift
		COMP_WORDS=("$@")
		COMP_CWORD=$(($# - 1))
		case $1 in *muxbench) _muxbench ;; *) _muxd ;; esac
		printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " "
	' completion "$top" "$@" 2>&1 | sed 's/ $//'
}

sorted() {
	printf '%s\n' "$@" | sort | tr '\n' ' ' | sed 's/ $//'
}

engines=$(sorted $("$MUXD" --list-engines=tsv | cut -f1))
is "$(offers "$MUXD" --engine '')" "$engines" \
	"--engine offers every engine of --list-engines"
is "$(offers "$MUXD" -e epoll-)" "epoll-et epoll-lt" "-e epoll- offers the epoll engines"
# bash splits --engine=NAME at the "=" into three words.
is "$(offers "$MUXD" --engine = po)" "poll" "--engine=po offers poll"
services=$(sorted $("$MUXD" --list-services | awk '{ print $1 }'))
is "$(offers "$MUXD" --inetd '')" "$services" \
	"--inetd offers every service of --list-services"
is "$(offers "$MUXD" --listen up)" "upper=" "--listen up offers upper="
is "$(offers "$MUXD" --engine prefork --accept '')" \
	"$(sorted $("$MUXD" --list-engines=tsv | awk -F '\t' '$1 == "prefork" { print $3 }'))" \
	"--accept after --engine prefork offers prefork's strategies"
is "$(offers "$MUXD" --engine pthread-pool --accept '')" "handoff mutex" \
	"--accept after --engine pthread-pool offers mutex and handoff"
is "$(offers "$MUXD" --eng)" "--engine=" "--eng offers --engine="
is "$(offers "$MUXD" --stats)" "--stats --stats-interval=" \
	"--stats offers --stats and --stats-interval="
is "$(offers "$MUXD" --workers '')" "" "--workers offers nothing: a number"
is "$(offers "$MUXD" --trace)" "$(sorted --trace= --trace-limit=)" \
	"--trace offers --trace= and --trace-limit="
is "$(offers "$MUXD" --trace-limit '')" "" "--trace-limit offers nothing: a number"
is "$(offers "$MUXBENCH" '')" "connrate delay idle pingpong stream work" \
	"muxbench offers its modes"
is "$(offers "$MUXBENCH" --expect '')" "echo upper" "muxbench --expect offers upper and echo"
is "$(offers "$MUXBENCH" --work-mix '')" "" "muxbench --work-mix offers nothing: a mix"
is "$(offers "$MUXBENCH" --progress)" "--progress --progress-interval=" \
	"muxbench --progress offers --progress and --progress-interval="
tap_done
