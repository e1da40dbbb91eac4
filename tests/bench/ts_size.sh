#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# tests/bench/ts_size.sh - on-disk size of raw readings on TimescaleDB, compressed vs not (issue 14). A figure,
# not a test: starts a throw-away PostgreSQL 15 with TimescaleDB (tests/integration/lib.sh), migrates with
# --timescaledb (sql/015: compression segmented by device_id, point_id, ordered by time), writes ROWS readings
# as the solar fleet sends them (DEVICES devices x 4 points, one reading a minute: power following the sun with
# noise at 1 W, grid voltage around 230 V at 0.1 V, frequency around 50 Hz at 0.01 Hz, a daily energy counter
# at 0.01 kWh), measures the hypertable (heap + primary key + TOAST), compresses every chunk and measures again.
#
#   tests/bench/ts_size.sh [ROWS] [DEVICES]      (as root, like the integration tests) [10000000] [1000]
#
# Prints one markdown row: rows, chunks, size before, size after, ratio, bytes per row both ways.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$here/../.." && pwd)
ROWS=${1:-10000000}
DEVICES=${2:-1000}
export MQTT2PG_BIN=${MQTT2PG_BIN:-$ROOT/build-asan/mqtt2pg}
export IT_TIMESCALEDB=1
. "$ROOT/tests/integration/lib.sh"
. "$ROOT/tests/integration/bridge.sh"

it_setup ts_size
pg_start
db_prepare
m2p_admin tenant add fleet >/dev/null
psql_super \
	"INSERT INTO devices (tenant_id, serial) SELECT (SELECT id FROM tenants WHERE slug = 'fleet'), 'S-' || j
	   FROM generate_series(1, $DEVICES) j" \
	"INSERT INTO points (device_id, name) SELECT d.id, p FROM devices d,
	   unnest(ARRAY['total_output_power', 'grid_voltage', 'grid_frequency', 'daily_energy']) p" >/dev/null

minutes=$((ROWS / DEVICES / 4))
say() { echo "[$(date -u +%T) ts_size] $*"; }
say "writing $ROWS rows: $DEVICES devices x 4 points x $minutes minutes"
t0=$EPOCHREALTIME
# As the superuser, straight into the hypertable (the figure is about storage, not the write path).
psql_super "INSERT INTO measurements (time, tenant_id, device_id, point_id, value)
	SELECT ts, d.tenant_id, d.id, p.id,
	       CASE p.name
	         WHEN 'total_output_power' THEN round(greatest(0, 8000 * sin(pi() * (extract(hour FROM ts) * 60 + extract(minute FROM ts) - 360) / 720))
	                                            * (0.9 + 0.1 * random()))
	         WHEN 'grid_voltage' THEN round((230 + 4 * random() - 2)::numeric, 1)
	         WHEN 'grid_frequency' THEN round((50 + 0.04 * random() - 0.02)::numeric, 2)
	         ELSE round((extract(hour FROM ts) * 60 + extract(minute FROM ts))::numeric * 0.05 + d.id % 7, 2)
	       END
	  FROM generate_series(date_trunc('day', now()) - interval '1 minute' * $minutes, date_trunc('day', now()) - interval '1 minute',
	                       interval '1 minute') ts
	  CROSS JOIN devices d JOIN points p ON p.device_id = d.id" >/dev/null
say "written in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }') s"
psql_super "VACUUM ANALYZE measurements" >/dev/null
size() { psql_super "SELECT hypertable_size('measurements')"; }
rows=$(psql_super "SELECT count(*) FROM measurements")
chunks=$(psql_super "SELECT count(*) FROM show_chunks('measurements')")
before=$(size)
t0=$EPOCHREALTIME
psql_super "SELECT count(compress_chunk(c)) FROM show_chunks('measurements') c" >/dev/null
say "compressed in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }') s"
after=$(size)
assert_eq "$rows" "$(psql_super "SELECT count(*) FROM measurements")" "every row still readable after compression"
echo "| rows | chunks | uncompressed | compressed | ratio | bytes/row uncompressed | bytes/row compressed |"
echo "|---|---|---|---|---|---|---|"
awk -v r="$rows" -v c="$chunks" -v b="$before" -v a="$after" 'BEGIN {
	printf "| %d | %d | %.1f MB | %.1f MB | %.1fx | %.1f | %.2f |\n", r, c, b / 1048576, a / 1048576, b / a, b / r, a / r }'
