#!/usr/bin/env bash
# tests/fuzz/run.sh [SECONDS_PER_TARGET] - build the libFuzzer targets with clang (ASan + UBSan) into
# build-fuzz/ and run each for SECONDS_PER_TARGET seconds (default 30) on a copy of its seed corpus
# (tests/fuzz/corpus/<target>/ is never grown by a run).
#
# Any crash, leak, sanitizer report, timeout or failed property fails the run (exit 1); the input that did it
# is kept in build-fuzz/artifacts/ and the fuzzer's log in build-fuzz/logs/. Prints one line per target and
# ends with "N passed, M failed". Works offline, as root or not, from any directory:
#
#   bash tests/fuzz/run.sh 20
#   build-fuzz/fuzz_decode build-fuzz/artifacts/fuzz_decode-crash-...     # replay one input
set -euo pipefail

seconds=${1:-30}
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
	echo "usage: $0 [SECONDS_PER_TARGET]   (a positive integer, default 30)" >&2
	exit 2
fi

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$(pwd)
build=$root/build-fuzz
targets=(fuzz_decode fuzz_route fuzz_timeparse fuzz_text fuzz_lineproto fuzz_formats)
# Longest input per target: room for oversized payloads (decode's limit is 4096) and deep nesting.
declare -A max_len=([fuzz_decode]=8192 [fuzz_route]=2048 [fuzz_timeparse]=128 [fuzz_text]=2048 [fuzz_lineproto]=4096 [fuzz_formats]=4608)

if ! command -v clang >/dev/null 2>&1; then
	echo "run.sh: clang not found (deploy/local/deps.sh installs clang and libclang-rt-14-dev)" >&2
	exit 1
fi
mkdir -p "$build/logs" "$build/artifacts"
if ! cmake -S tests/fuzz -B "$build" -DCMAKE_C_COMPILER=clang >"$build/logs/configure.log" 2>&1 ||
	! cmake --build "$build" -j"$(nproc)" >"$build/logs/build.log" 2>&1; then
	cat "$build/logs/configure.log" "$build/logs/build.log" >&2 2>/dev/null || true
	echo "run.sh: building the fuzz targets failed" >&2
	exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/mqtt2pg-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Leaks are failures; UBSan already aborts on the first report (-fno-sanitize-recover=all). A 64 MB
# use-after-free quarantine (default 256 MB, which grows RSS to ~700 MB in a minute) keeps far from the
# 1024 MB RSS limit.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:allocator_may_return_null=0:quarantine_size_mb=64}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

passed=0
failed=0
for target in "${targets[@]}"; do
	corpus=$work/$target
	log=$build/logs/$target.log
	cp -r "tests/fuzz/corpus/$target" "$corpus"
	seeds=$(find "$corpus" -type f | wc -l)
	args=(-max_total_time="$seconds" -rss_limit_mb=1024 -timeout=10 -max_len="${max_len[$target]}"
		-print_final_stats=1 -artifact_prefix="$build/artifacts/$target-")
	if [[ -f "tests/fuzz/$target.dict" ]]; then
		args+=(-dict="tests/fuzz/$target.dict")
	fi
	rc=0
	"$build/$target" "${args[@]}" "$corpus" >"$log" 2>&1 || rc=$?
	execs=$(awk '/stat::number_of_executed_units:/ { print $2 }' "$log" | tail -n 1)
	grown=$(find "$corpus" -type f | wc -l)
	if ((rc == 0)) && ! grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|PROPERTY FAILED' "$log"; then
		passed=$((passed + 1))
		printf 'PASS %-15s %10s executions in %ss (corpus %d -> %d inputs)\n' "$target" "${execs:-?}" "$seconds" \
			"$seeds" "$grown"
	else
		failed=$((failed + 1))
		printf 'FAIL %-15s %10s executions, exit %d (log %s)\n' "$target" "${execs:-?}" "$rc" "$log"
		grep -E -A12 'PROPERTY FAILED|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:' "$log" |
			head -n 30 | sed 's/^/    /'
		grep -E '^(artifact_prefix|Test unit written to)' "$log" | sed 's/^/    /' || true
	fi
done
echo "$passed passed, $failed failed"
((failed == 0))
