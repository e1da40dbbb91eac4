#!/usr/bin/env bash
# tests/bench/import.sh - rows/s of `mqtt2pg import` (README "Importing history"), per format and write method.
#
#   MQTT2PG_BIN=build-release/mqtt2pg bash tests/bench/import.sh [LINES] [RUNS]
#
# Generates LINES (default 1,000,000) lines of line protocol (3 readings each, 100 devices) and of CSV (one
# reading each) with tests/integration/import_gen.pl, then imports each RUNS (default 3) times per method
# (array: the writer's binary-array statement; copy: COPY into a temporary table + INSERT ... SELECT) into a
# private PostgreSQL (the test harness's: fsync off), emptying the tables between runs. Prints rows written
# per second of wall time (parse + validate + write; the aggregate rebuild is excluded: --no-aggregates),
# median and min-max, and the --validate-only rate (parse + validate, no database writes). Then one import
# with the aggregate rebuild, timed. RUNS=0 does only that.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../integration" && pwd)
. "$here/lib.sh"
. "$here/bridge.sh"
LINES=${1:-1000000}
RUNS=${2:-3}

it_setup bench_import
pg_start
db_prepare
m2p_admin tenant add t1 >/dev/null
m2p_admin tenant add t2 >/dev/null
psql_owner "
INSERT INTO devices (tenant_id, serial)
SELECT t.id, format('%s-INV-%s', upper(t.slug), lpad(g::text, 4, '0')) FROM tenants t, generate_series(0, 99) g;
INSERT INTO devices (tenant_id, serial, enabled) SELECT id, upper(slug) || '-DIS-0', false FROM tenants;
INSERT INTO points (device_id, name, min_value, max_value, kind)
SELECT d.id, p.name, p.lo, p.hi, p.kind FROM devices d,
  (VALUES ('power', 0, 20000, 'gauge'), ('voltage', 0, 500, 'gauge'), ('energy', NULL, NULL, 'counter')) AS p(name, lo, hi, kind);" >/dev/null
{
	echo "mqtt = { uri = \"tcp://127.0.0.1:1\"; client_id = \"import-bench\"; };"
	echo "database = { conninfo = \"host=127.0.0.1 port=$PGPORT dbname=mqtt2pg user=mqtt2pg_writer\"; };"
	echo "spool = { directory = \"$IT_DIR/spool\"; };"
	echo "log = { level = \"warn\"; };"
} >"$IT_DIR/import.conf"
export MQTT2PG_DB_PASSWORD=$WRITER_PASSWORD
perl "$here/import_gen.pl" influx "$LINES" T1 100 T2-INV-0000 "$IT_DIR/t1.lp" "$IT_DIR/t1.expect"
perl "$here/import_gen.pl" csv "$LINES" T1 100 T2-INV-0000 "$IT_DIR/t1.csv" "$IT_DIR/t1c.expect"

stats() # values... -> "median (min-max)"
{
	printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { printf "%.0f (%.0f-%.0f)", v[int((NR + 1) / 2)], v[1], v[NR] }'
}

run() # FORMAT FILE EXTRA... -> rows/s
{
	local format=$1 file=$2 t0 t1 written
	shift 2
	psql_super "TRUNCATE measurements, aggregate_dirty, import_run_devices, import_runs, rejected_messages" >/dev/null
	t0=$EPOCHREALTIME
	"$MQTT2PG_BIN" -c "$IT_DIR/import.conf" import --format "$format" --tenant t1 --no-aggregates "$@" "$file" \
		>"$IT_DIR/out" 2>"$IT_DIR/err" || { cat "$IT_DIR/err" >&2; fail "import failed"; }
	t1=$EPOCHREALTIME
	written=$(sed -n 's/^import result: .* readings=\([0-9]*\) .*/\1/p' "$IT_DIR/out")
	awk -v n="$written" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f\n", n / (b - a) }'
}

for format in influx csv; do
	((RUNS > 0)) || break
	file=$IT_DIR/t1.lp
	[[ $format == csv ]] && file=$IT_DIR/t1.csv
	for method in copy array; do
		rates=()
		for ((i = 0; i < RUNS; i++)); do
			rates+=("$(run "$format" "$file" --method "$method")")
		done
		echo "$format $method: $(stats "${rates[@]}") rows/s (${rates[*]})"
	done
	rates=()
	for ((i = 0; i < RUNS; i++)); do
		rates+=("$(run "$format" "$file" --validate-only)")
	done
	echo "$format validate-only: $(stats "${rates[@]}") rows/s (${rates[*]})"
done

# One line-protocol import with the aggregate rebuild, the default method, and its progress as a terminal
# shows it (script(1) gives it a tty).
psql_super "TRUNCATE measurements, measurements_5m, aggregate_dirty, import_run_devices, import_runs, rejected_messages" >/dev/null
t0=$EPOCHREALTIME
script -qec "$MQTT2PG_BIN -c $IT_DIR/import.conf import --format influx --tenant t1 $IT_DIR/t1.lp" /dev/null >"$IT_DIR/tty.out" ||
	{ cat "$IT_DIR/tty.out" >&2; fail "import with aggregates failed"; }
t1=$EPOCHREALTIME
echo "influx with aggregates: $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s in all;" \
	"$(grep -a '^aggregates:' "$IT_DIR/tty.out" | tr -d '\r')"
echo "the terminal's last progress line: $(grep -a 'ETA' "$IT_DIR/tty.out" | tr '\r' '\n' | grep -a ETA | tail -1)"
