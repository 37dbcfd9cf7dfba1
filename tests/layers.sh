#!/bin/sh
# layers.sh -- every #include in src/ points down the layers that HACKING's
# "Source layout" gives:
#
#   main/      the program: options, run modes, the interval reporter
#   engines/   one file per engine, and the table
#   core/      what engines serve with: reactor, serve loops, pools
#   base/      primitives: sockets, signals, logs, counters, buffers, rings
#   services/  the protocol handlers, using nothing of muxd
#   common/    what muxd and muxbench share, using nothing of either
#   loadgen/   muxbench, a program of its own: itself and common/ only
#
# A folder may include itself and any folder below it. The check is run
# once on src/, and once on a copy with one include made to point up, so
# that it is seen to fail when it must.

top=${top_srcdir:-${srcdir:-$(dirname "$0")/..}}
. "$top/tests/tap.sh"

# rank FOLDER: its place from the top; loadgen is apart.
rank() {
	case $1 in
	main) echo 0 ;; engines) echo 1 ;; core) echo 2 ;; base) echo 3 ;;
	services | common) echo 4 ;; loadgen) echo 9 ;; *) echo - ;;
	esac
}

# allowed FROM TO: may a file in FROM include TO?
allowed() {
	[ "$1" = "$2" ] && return 0
	if [ "$1" = loadgen ]; then
		[ "$2" = common ]
		return
	fi
	from=$(rank "$1") to=$(rank "$2")
	[ "$from" != - ] && [ "$to" != - ] && [ "$to" -gt "$from" ] &&
		[ "$to" -ne 9 ]
}

# upward DIR: every include under DIR/src that breaks the order, one
# "file -> header" per line.
upward() {
	(cd "$1/src" && grep -H '^#include "[a-z_]*/' */*.c */*.h) |
	while IFS= read -r line; do
		file=${line%%:*}
		header=$(printf '%s\n' "$line" | sed 's/.*#include "\([^"]*\)".*/\1/')
		allowed "${file%%/*}" "${header%%/*}" || echo "$file -> $header"
	done
}

plan 4
bad=$(upward "$top")
is "$bad" "" "every include in src/ points down the layers"
unknown=$(cd "$top/src" && for d in */; do d=${d%/}; [ "$(rank "$d")" = - ] && echo "$d"; done)
is "$unknown" "" "every folder of src/ has its place in the layers"

scratch=$(mktemp -d) || bail_out "mktemp failed"
trap 'rm -rf "$scratch"' EXIT
cp -R "$top/src" "$scratch/src"
printf '#include "engines/engine.h"\n' >>"$scratch/src/core/reactor.c"
bad=$(upward "$scratch")
is "$bad" "core/reactor.c -> engines/engine.h" \
	"a core file including an engine's header is caught"
printf '#include "main/inetd.h"\n' >>"$scratch/src/loadgen/hist.c"
bad=$(upward "$scratch" | grep loadgen)
is "$bad" "loadgen/hist.c -> main/inetd.h" "muxbench including muxd's code is caught"
tap_done
