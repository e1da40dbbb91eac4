#!/usr/bin/env bash
# format_check.sh - every C source and header of the tree (src/, include/, tests/) must be exactly as
# clang-format (the checked-in .clang-format, clang-format 14) lays it out. Fix: clang-format -i FILE.
# Exit 77 (skipped) without clang-format.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
command -v clang-format >/dev/null || { echo "clang-format not installed: skipped"; exit 77; }
cd "$root"
bad=0 count=0
while IFS= read -r -d '' file; do
	count=$((count + 1))
	if ! clang-format --style=file "$file" | diff -u "$file" - >/tmp/format_check.$$ 2>&1; then
		echo "FAIL: $file differs from clang-format (fix: clang-format -i $file):"
		head -40 /tmp/format_check.$$
		bad=$((bad + 1))
	fi
done < <(find src include tests -name node_modules -prune -o -type f \( -name '*.c' -o -name '*.h' \) -print0 | sort -z)
rm -f /tmp/format_check.$$
((bad == 0)) || { echo "$bad of $count file(s) not formatted"; exit 1; }
echo "ok: $count file(s) formatted as .clang-format says"
