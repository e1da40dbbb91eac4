#!/usr/bin/env bash
# layout_check.sh - the include graph of src/ and include/ points one way only (README "Layout"):
#
#   util (src/util, include/util)  <  payload (src/payload, include/payload)  <  the daemon path (src, include)
#   <  cli (src/cli, include/cli)
#
# A file may include headers of its own room and of the rooms below it, never above. src/main.c, the
# program's entry that hands a command line to the daemon or to one of the commands, is the one file above
# every room. Also fails on a quoted #include that names no header under include/ (a stale path after a
# move) and on a cycle among the headers (tsort). Pure text: runs in well under a second, no build needed.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

find src include -name '*.[ch]' | sort >"$tmp/files"
[ -s "$tmp/files" ] || { echo "FAIL: no source files found under src/ and include/"; exit 1; }
find include -name '*.h' | sed 's|^include/||' >"$tmp/headers"

# One pass over every file: the rooms are 0 util (src/util, include/util), 1 payload, 2 the daemon path (the
# rest of src and include), 3 cli. Quoted includes only: system and library headers (<...>) are outside the
# layout. Header-to-header edges go to $tmp/graph for the cycle check.
mapfile -t sources <"$tmp/files"
awk -v headers="$tmp/headers" -v graph="$tmp/graph" '
function room(path)
{
	if (path ~ /^(src\/|include\/)?util\//) return 0
	if (path ~ /^(src\/|include\/)?payload\//) return 1
	if (path ~ /^(src\/|include\/)?cli\//) return 3
	return 2
}
BEGIN {
	split("util payload daemon cli", name, " ")
	while ((getline h < headers) > 0) known[h] = 1
}
FNR == 1 { files++ }
/^[ \t]*#[ \t]*include[ \t]*"/ {
	inc = $0
	sub(/^[^"]*"/, "", inc)
	sub(/".*/, "", inc)
	edges++
	if (!(inc in known)) {
		printf "FAIL: %s includes \"%s\", which is not a header under include/\n", FILENAME, inc
		bad++
		next
	}
	from = room(FILENAME); to = room(inc)
	if (to > from && FILENAME != "src/main.c") {
		printf "FAIL: %s (%s) includes \"%s\" (%s): an upward include\n", FILENAME, name[from + 1], inc,
		       name[to + 1]
		bad++
	}
	if (FILENAME ~ /^include\//) print substr(FILENAME, 9), inc > graph
}
END {
	close(graph)
	printf "%d %d %d\n", files, edges, bad > "/dev/stderr"
	exit bad > 0
}' "${sources[@]}" 2>"$tmp/counts" || true
read -r files edges bad <"$tmp/counts"

touch "$tmp/graph"
if ! tsort "$tmp/graph" >/dev/null 2>"$tmp/cycle"; then
	echo "FAIL: the headers include each other in a cycle:"
	cat "$tmp/cycle"
	bad=$((bad + 1))
fi

((bad == 0)) || { echo "$bad layout violation(s) in $files file(s)"; exit 1; }
echo "ok: $files files, $edges quoted includes, every one downward or within its room, no header cycle"
