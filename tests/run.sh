#!/usr/bin/env bash
# tests/run.sh - the whole test suite: CUnit unit tests and the integration tests (real PostgreSQL 15 and
# Mosquitto on loopback), all built with AddressSanitizer + UndefinedBehaviorSanitizer. This is the
# command README.md gives and .ci/run calls. Installs what it needs (Debian packages) first.
#
#   tests/run.sh            everything
#   tests/run.sh -R unit_   only what ctest selects (arguments go to ctest)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

deploy/local/deps.sh
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DMQTT2PG_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$(nproc)"

# Any sanitizer report is a failure: UBSan stops at the first one, ASan reports leaks at exit.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd build-asan
ctest --output-on-failure "$@"
