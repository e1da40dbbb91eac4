#!/usr/bin/env bash
# tests/tsan.sh - the threaded parts under ThreadSanitizer: builds mqtt2pg with -fsanitize=thread into
# build-tsan/ and runs the unit tests with threads (queue, registry snapshots) and the fault scenarios
# (ingest thread, spool, dispatcher, writers, aggregate job, HTTP thread, main loop) against the TSan binary.
# Any ThreadSanitizer report fails. Part of the suite (ctest test tsan_threads); also runnable alone.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DMQTT2PG_TSAN=ON >/dev/null
cmake --build build-tsan -j"$(nproc)" >/dev/null
export TSAN_OPTIONS="halt_on_error=0 exitcode=0 second_deadlock_stack=1"
passed=0 failed=0
run()
{
	local name=$1 log=$root/build-tsan/tsan-$1.log
	shift
	if "$@" >"$log" 2>&1 && ! grep -q "WARNING: ThreadSanitizer" "$log"; then
		echo "ok: $name (no ThreadSanitizer report)"
		passed=$((passed + 1))
	else
		echo "FAIL: $name"
		grep -A30 "WARNING: ThreadSanitizer" "$log" | head -60 || tail -30 "$log"
		failed=$((failed + 1))
	fi
}
run unit_queue build-tsan/tests/test_queue
run unit_registry build-tsan/tests/test_registry
# The bridge logs go to files the harness keeps when asked; scan them for reports too.
export IT_KEEP=1
run it_faults env MQTT2PG_BIN="$root/build-tsan/mqtt2pg" bash tests/integration/it_faults.sh
dir=$(ls -td /tmp/mqtt2pg-it.faults.* 2>/dev/null | head -1)
if [ -n "$dir" ]; then
	if grep -l "WARNING: ThreadSanitizer" "$dir"/bridge.*.log >/dev/null 2>&1; then
		echo "FAIL: ThreadSanitizer reports in the bridge logs:"
		grep -h -A30 "WARNING: ThreadSanitizer" "$dir"/bridge.*.log | head -80
		failed=$((failed + 1))
	else
		echo "ok: bridge logs of it_faults (no ThreadSanitizer report)"
		passed=$((passed + 1))
	fi
	rm -rf "$dir"
fi
echo "$passed passed, $failed failed"
test "$failed" -eq 0
