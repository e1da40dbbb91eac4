#!/usr/bin/env bash
# deploy/local/demo.sh - mqtt2pg on one Debian 12 machine, from nothing to rows in PostgreSQL.
#
# Installs the Debian packages, builds mqtt2pg, starts a throw-away PostgreSQL 15 and Mosquitto on
# 127.0.0.1 (free ports, a temporary directory), applies the migrations, registers a demo tenant with three
# inverters, runs the bridge, publishes an hour of sample telemetry (plus a few bad messages), and prints
# what arrived and what was rejected, and why. Everything it started is stopped at the end.
#
#   deploy/local/demo.sh          run the demo and clean up
#   deploy/local/demo.sh --keep   leave broker, database and bridge running until Ctrl-C
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
keep=false
[ "${1:-}" = "--keep" ] && keep=true

deploy/local/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
export MQTT2PG_BIN=$root/build/mqtt2pg

. tests/integration/lib.sh
. tests/integration/bridge.sh
it_setup demo
pg_start
mosq_start
db_prepare
it_log "schema applied; registering tenant 'demo' and three inverters"
m2p_admin tenant add demo --name "Demo Solar GmbH" >/dev/null
for serial in INV-0001 INV-0002 INV-0003; do
	m2p_admin device add "$serial" --tenant demo --model "SUN-10K" \
		--point total_output_power:W:0:12000 --point grid_voltage:V:180:260 \
		--point daily_energy:kWh:0:200 --point inverter_temperature:C:-40:120 >/dev/null
done
m2p_admin tenant add other >/dev/null
m2p_admin device add OTHER-1 --tenant other --point total_output_power:W >/dev/null
m2p_admin device list

conf=$IT_DIR/mqtt2pg.conf
bridge_config "$conf" 'aggregates = { interval = 2; };'
bridge_start "$conf"
it_log "bridge running (log: $BRIDGE_LOG); publishing one hour of telemetry, one message a minute per inverter"

now=$(date -u +%s)
for serial in INV-0001 INV-0002 INV-0003; do
	for ((m = 60; m > 0; m--)); do
		t=$((now - m * 60))
		power=$(((60 - m) * 150 + ${serial: -1} * 100))
		printf '{"serial":"%s","timestamp":"%s","measurements":{"total_output_power":%d,"grid_voltage":%d.%d,"daily_energy":%d.%02d,"inverter_temperature":%d}}\n' \
			"$serial" "$(date -u -d "@$t" +%Y-%m-%dT%H:%M:%SZ)" "$power" $((228 + m % 5)) $((m % 10)) \
			$(((60 - m) / 10)) $(((60 - m) * 7 % 100)) $((30 + (60 - m) / 4))
	done >"$IT_DIR/$serial.jsonl"
	publish_lines "solar/demo/$serial/telemetry" "$IT_DIR/$serial.jsonl"
done
it_log "publishing four bad messages: spoofed tenant, unknown point, out-of-range value, broken JSON"
publish solar/demo/OTHER-1/telemetry '{"measurements":{"total_output_power":1}}'
publish solar/demo/INV-0001/telemetry '{"measurements":{"frequency":50.0}}'
publish solar/demo/INV-0002/telemetry '{"measurements":{"grid_voltage":400}}'
publish solar/demo/INV-0003/telemetry '{"measurements":{"total_output_power":'

wait_until 30 rows_ge 720 || fail "only $(rows) of 720 rows arrived"
wait_until 10 rejected_ge 4 || fail "only $(rejected) of 4 rejections recorded"
aggregates_done() { test "$(psql_super "SELECT count(*) FROM aggregate_dirty")" -eq 0 && test "$(psql_super "SELECT count(*) FROM measurements_5m")" -gt 0; }
wait_until 20 aggregates_done || fail "aggregates not computed"

echo
echo "== rows per device, latest values, and energy from the 5-minute aggregates =="
echo "   (read as demo_dash, a dashboard role mapped to tenant 'demo' by tenant grant-reader: the view readings)"
m2p_admin tenant grant-reader demo --role demo_dash --create >/dev/null
psql_super "ALTER ROLE demo_dash PASSWORD 'demo-dash-secret'"
psql -X -v ON_ERROR_STOP=1 "host=127.0.0.1 port=$PGPORT dbname=mqtt2pg user=demo_dash password=demo-dash-secret" -q <<SQL
BEGIN;
SELECT d.serial, count(*) AS rows, min(m.time) AS first, max(m.time) AS last
  FROM readings m JOIN devices d ON d.id = m.device_id GROUP BY d.serial ORDER BY d.serial;
SELECT d.serial, p.name AS point, m.value, p.unit, m.time
  FROM readings m JOIN devices d ON d.id = m.device_id JOIN points p ON p.id = m.point_id
 WHERE m.time = (SELECT max(time) FROM readings) ORDER BY d.serial, p.name;
SELECT d.serial, count(*) AS buckets, round(avg(a.avg)::numeric, 1) AS avg_power_w,
       round(sum(a.integral)::numeric / 1000, 2) AS energy_kwh
  FROM measurements_5m a JOIN devices d ON d.id = a.device_id JOIN points p ON p.id = a.point_id
 WHERE p.name = 'total_output_power' GROUP BY d.serial ORDER BY d.serial;
COMMIT;
SQL
echo "== rejected messages, by reason =="
psql_super_table() { psql -X -v ON_ERROR_STOP=1 "$SUPER_DB" -q -c "$1"; }
psql_super_table "SELECT reason, count(*), min(topic) AS example_topic, min(detail) AS detail
                    FROM rejected_messages GROUP BY reason ORDER BY reason"
echo "== bridge log (last lines) =="
grep -E "stats:|refused|registry:" "$BRIDGE_LOG" | tail -4

if $keep; then
	it_log "still running: broker $MQTT_URI, database \"$SUPER_DB\", bridge log $BRIDGE_LOG. Ctrl-C stops all."
	while kill -0 "$BRIDGE_PID" 2>/dev/null; do sleep 1; done
else
	bridge_stop
	it_log "bridge drained and stopped (exit $BRIDGE_RC); cleaning up"
fi
