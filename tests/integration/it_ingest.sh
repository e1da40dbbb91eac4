#!/usr/bin/env bash
# it_ingest.sh - the spine end to end, against real PostgreSQL 15 and Mosquitto on loopback:
#  1. valid telemetry from several devices and tenants arrives exactly (every (device, point, time) once);
#  2. replaying the same messages adds no row;
#  3. every rejection reason is produced by a crafted message and recorded in rejected_messages,
#     including a device of tenant globex publishing in tenant acme's tree (spoofing);
#  4. a row PostgreSQL refuses costs only its own message (bisected out, recorded as database_refused);
#  5. registry changes reach the running bridge without a restart (NOTIFY);
#  6. policy "register": a new point is registered and its rows land, up to the per-device cap
#     (this bridge speaks MQTT 3.1.1; the others MQTT 5);
#  7. SIGTERM under load drains: exit code 0, and every message is either committed or still held by the
#     broker's persistent session (a restart delivers the rest: the exact total arrives, nothing twice).
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
. "$here/lib.sh"
. "$here/bridge.sh"

it_setup ingest
pg_start
mosq_start
db_prepare

m2p_admin tenant add acme --name "Acme Solar" >/dev/null
m2p_admin tenant add globex >/dev/null
for i in 1 2 3; do
	m2p_admin device add "INV-A$i" --tenant acme --point total_output_power:W:0:20000 \
		--point grid_voltage:V:0:400 --point daily_energy:kWh >/dev/null
done
m2p_admin device add INV-B1 --tenant globex --point total_output_power:W:0:20000 >/dev/null
m2p_admin device add INV-OFF --tenant acme --point total_output_power:W >/dev/null
m2p_admin device disable INV-OFF >/dev/null

conf=$IT_DIR/bridge.conf
bridge_config "$conf" 'validation = { max_payload_bytes = 2048; max_future_skew = 60; max_age = 86400; };'
bridge_start "$conf"

# --- 1. valid telemetry ---------------------------------------------------------------------------
# 200 messages per acme device and 200 for globex, 3 points each (1 for globex), one second apart,
# timestamps in RFC 3339 and epoch seconds alternately, some as a JSON array of two objects.
now=$(date -u +%s)
base=$((now - 3600))
gen_device()
{
	local serial=$1 points=$2 n=$3 i t
	for ((i = 0; i < n; i++)); do
		t=$((base + i))
		if ((i % 2 == 0)); then
			ts="\"$(date -u -d "@$t" +%Y-%m-%dT%H:%M:%SZ)\""
		else
			ts="$t.25"
		fi
		if [ "$points" = 3 ]; then
			echo "{\"serial\":\"$serial\",\"timestamp\":$ts,\"measurements\":{\"total_output_power\":$((i * 10)),\"grid_voltage\":230.$((i % 10)),\"daily_energy\":$i.5}}"
		else
			echo "{\"timestamp\":$ts,\"measurements\":{\"total_output_power\":$i}}"
		fi
	done
}
started=$(now_s)
for i in 1 2 3; do
	gen_device "INV-A$i" 3 200 >"$IT_DIR/A$i.jsonl"
	publish_lines "solar/acme/INV-A$i/telemetry" "$IT_DIR/A$i.jsonl"
done
gen_device INV-B1 1 200 >"$IT_DIR/B1.jsonl"
publish_lines solar/globex/INV-B1/telemetry "$IT_DIR/B1.jsonl"
# An array payload: two readings of one point in one message.
publish solar/acme/INV-A1/telemetry \
	"[{\"timestamp\":$((base + 500)),\"measurements\":{\"total_output_power\":1}},{\"timestamp\":$((base + 501)),\"measurements\":{\"total_output_power\":2}}]"
expected=$((3 * 200 * 3 + 200 + 2))
wait_until 60 rows_ge "$expected" || fail "only $(rows) of $expected rows arrived"
elapsed=$(awk -v a="$started" -v b="$(now_s)" 'BEGIN { printf "%.2f", b - a }')
assert_eq "$expected" "$(rows)" "all $expected rows arrived (in ${elapsed}s)"
assert_eq "$expected" "$(psql_super "SELECT count(DISTINCT (device_id, point_id, time)) FROM measurements")" \
	"every (device, point, time) exactly once"
assert_eq 600 "$(rows "device_id = (SELECT id FROM devices WHERE serial = 'INV-A2')")" "INV-A2 has 600 rows"
assert_eq "$(psql_super "SELECT id FROM tenants WHERE slug = 'globex'")" \
	"$(psql_super "SELECT DISTINCT m.tenant_id FROM measurements m JOIN devices d ON d.id = m.device_id WHERE d.serial = 'INV-B1'")" \
	"globex rows carry globex's tenant_id"
# Values and times are exact: the 7th message of INV-A3 (odd: epoch seconds with .25).
assert_eq "70|230.7|7.5" "$(psql_super "SELECT string_agg(value::text, '|' ORDER BY p.name DESC) FROM measurements m
	JOIN points p ON p.id = m.point_id JOIN devices d ON d.id = m.device_id
	WHERE d.serial = 'INV-A3' AND m.time = to_timestamp($((base + 7)).25)")" "values and fractional epoch time exact"
assert_eq 0 "$(rejected)" "no valid message was rejected"

# --- 2. replay ------------------------------------------------------------------------------------
publish_lines solar/acme/INV-A1/telemetry "$IT_DIR/A1.jsonl"
wait_until 30 grep -q "rows_duplicate=600" "$BRIDGE_LOG" || fail "replay not processed"
assert_eq "$expected" "$(rows)" "replaying 200 messages added no row"

# --- 3. every rejection reason ----------------------------------------------------------------------
iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }
declare -A cases=(
	[empty_payload]="solar/acme/INV-A1/telemetry|"
	[malformed_json]='solar/acme/INV-A1/telemetry|{"measurements":{"total_output_power":1}'
	[wrong_type]='solar/acme/INV-A1/telemetry|{"measurements":{"total_output_power":"5420"}}'
	[bad_timestamp]='solar/acme/INV-A1/telemetry|{"timestamp":"2026-02-30T10:00:00Z","measurements":{"total_output_power":1}}'
	[serial_mismatch]='solar/acme/INV-A1/telemetry|{"serial":"INV-A2","measurements":{"total_output_power":1}}'
	[non_finite_value]='solar/acme/INV-A1/telemetry|{"measurements":{"total_output_power":1e999}}'
	[unknown_tenant]='solar/initech/INV-A1/telemetry|{"measurements":{"total_output_power":1}}'
	[unknown_device]='solar/acme/INV-ZZ9/telemetry|{"measurements":{"total_output_power":1}}'
	[device_disabled]='solar/acme/INV-OFF/telemetry|{"measurements":{"total_output_power":1}}'
	[tenant_mismatch]='solar/acme/INV-B1/telemetry|{"measurements":{"total_output_power":1}}'
	[unknown_point]='solar/acme/INV-A1/telemetry|{"measurements":{"frequency":50}}'
	[value_out_of_range]='solar/acme/INV-A1/telemetry|{"measurements":{"grid_voltage":9999}}'
	[timestamp_future]="solar/acme/INV-A1/telemetry|{\"timestamp\":\"$(iso $((now + 86400)))\",\"measurements\":{\"total_output_power\":1}}"
	[timestamp_stale]='solar/acme/INV-A1/telemetry|{"timestamp":"2020-01-01T00:00:00Z","measurements":{"total_output_power":1}}'
	[no_measurements]='solar/acme/INV-A1/telemetry|{"measurements":{}}'
	[invalid_point_name]="solar/acme/INV-A1/telemetry|{\"measurements\":{\"x'; DROP TABLE measurements; --\":1}}"
	[no_route]='solar//INV-A1/telemetry|{"measurements":{"total_output_power":1}}'
)
for reason in "${!cases[@]}"; do
	spec=${cases[$reason]}
	topic=${spec%%|*}
	payload=${spec#*|}
	if [ -z "$payload" ]; then
		mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t "$topic" -n
	else
		publish "$topic" "$payload"
	fi
done
printf '{"measurements":{"total_output_power":\xff}}' >"$IT_DIR/latin1.bin"
publish_file solar/acme/INV-A1/telemetry "$IT_DIR/latin1.bin"
head -c 3000 /dev/zero | tr '\0' ' ' >"$IT_DIR/big.bin"
publish_file solar/acme/INV-A1/telemetry "$IT_DIR/big.bin"
want=$(( ${#cases[@]} + 2 ))
wait_until 20 rejected_ge "$want" || fail "only $(rejected) of $want rejections recorded"
expected_reasons=$(printf '%s\n' "${!cases[@]}" invalid_utf8 oversized_payload | sort | tr '\n' ' ')
actual_reasons=$(psql_super "SELECT reason FROM rejected_messages ORDER BY reason" | tr '\n' ' ')
assert_eq "$expected_reasons" "$actual_reasons" "each crafted message rejected with its own reason, exactly once"
assert_eq "acme|INV-B1" "$(psql_super "SELECT tenant_slug || '|' || serial FROM rejected_messages WHERE reason = 'tenant_mismatch'")" \
	"spoofing recorded with the claimed tenant and serial"
assert_eq "$expected" "$(rows)" "no rejected message wrote a row"
assert_eq 1 "$(psql_super "SELECT count(*) FROM pg_tables WHERE tablename = 'measurements'" )" "measurements still there"
assert_eq '\x7b226d' "$(psql_super "SELECT substr(payload, 1, 3) FROM rejected_messages WHERE reason = 'invalid_utf8'")" \
	"payload kept as raw bytes"

# --- 4. a row PostgreSQL refuses is isolated --------------------------------------------------------
psql_super "ALTER TABLE measurements ADD CONSTRAINT test_refuse_666 CHECK (value <> 666)"
{
	for i in 1 2 3 4 5; do echo "{\"timestamp\":$((base + 1000 + i)),\"measurements\":{\"total_output_power\":$i}}"; done
	echo "{\"timestamp\":$((base + 1006)),\"measurements\":{\"total_output_power\":666}}"
	for i in 7 8 9 10; do echo "{\"timestamp\":$((base + 1000 + i)),\"measurements\":{\"total_output_power\":$i}}"; done
} >"$IT_DIR/refuse.jsonl"
publish_lines solar/acme/INV-A2/telemetry "$IT_DIR/refuse.jsonl"
wait_until 20 rejected_ge 1 "reason = 'database_refused'" || fail "refused row not recorded"
wait_until 10 rows_ge "$((expected + 9))" || fail "neighbours of the refused row missing"
expected=$((expected + 9))
assert_eq "$expected" "$(rows)" "the 9 neighbours of the refused message committed"
assert_eq 1 "$(rejected "reason = 'database_refused' AND detail LIKE '%test_refuse_666%'")" \
	"refused message recorded with the database's reason"
psql_super "ALTER TABLE measurements DROP CONSTRAINT test_refuse_666"

# --- 5. registry change without restart ------------------------------------------------------------
m2p_admin device add INV-A9 --tenant acme --point total_output_power:W >/dev/null
wait_until 10 grep -q "loaded 2 tenants, 6 devices" "$BRIDGE_LOG" || fail "registry change not seen"
publish solar/acme/INV-A9/telemetry '{"measurements":{"total_output_power":42}}'
wait_until 10 rows_ge 1 "value = 42 AND device_id = (SELECT id FROM devices WHERE serial = 'INV-A9')" ||
	fail "new device's row did not arrive"
expected=$((expected + 1))
reloads_ge() { test "$(grep -c "registry: loaded" "$BRIDGE_LOG")" -ge "$1"; }
reloads=$(grep -c "registry: loaded" "$BRIDGE_LOG")
m2p_admin device disable INV-A9 >/dev/null
wait_until 10 reloads_ge $((reloads + 1)) || fail "disable not seen"
publish solar/acme/INV-A9/telemetry '{"measurements":{"total_output_power":43}}'
wait_until 10 rejected_ge 1 "reason = 'device_disabled' AND serial = 'INV-A9'" ||
	fail "disabling a device did not take effect"
assert_eq "$expected" "$(rows)" "disabled device wrote nothing"

# --- 6. policy register ---------------------------------------------------------------------------
bridge_stop
assert_eq 0 "$BRIDGE_RC" "bridge exits 0 on SIGTERM"
BRIDGE_MQTT_EXTRA="version = 4;" bridge_config "$conf" 'validation = { unknown_points = "register"; max_points_per_device = 4; };'
bridge_start "$conf"
# Mosquitto logs MQTT 3.1.1 as protocol "p2" (its enum), MQTT 5 as "p5"; c0 = persistent session.
grep -q "as mqtt2pg-ingest (p2, c0" "$MOSQ_LOG" || fail "bridge did not connect with MQTT 3.1.1 and a persistent session"
publish solar/acme/INV-A3/telemetry '{"measurements":{"frequency":50.01,"total_output_power":7}}'
frequency_registered()
{
	test "$(psql_super "SELECT count(*) FROM points p JOIN devices d ON d.id = p.device_id
		WHERE d.serial = 'INV-A3' AND p.name = 'frequency' AND p.auto_registered")" -eq 1
}
wait_until 10 frequency_registered ||
	fail "point not registered"
wait_until 10 rows_ge 1 "value = 50.01" || fail "registered point's row missing"
expected=$((expected + 2))
publish solar/acme/INV-A3/telemetry '{"measurements":{"temperature":30}}'
# Refused by the bridge's own check (topic serial recorded) or, when the registry snapshot had not yet seen
# the point registered just before, by the database (device id recorded): point_limit either way.
wait_until 10 rejected_ge 1 "reason = 'point_limit' AND (serial = 'INV-A3' OR device_id = (SELECT id FROM devices WHERE serial = 'INV-A3'))" ||
	fail "point cap not enforced"
assert_eq "$expected" "$(rows)" "rows after registration"

# --- 7. SIGTERM under load drains -----------------------------------------------------------------
burst=20000
for ((i = 0; i < burst; i++)); do
	echo "{\"timestamp\":$((base - 7200 + i / 4)).$((i % 4 * 2))5,\"measurements\":{\"daily_energy\":$i}}"
done >"$IT_DIR/burst.jsonl"
publish_lines solar/acme/INV-A1/telemetry "$IT_DIR/burst.jsonl" &
pub_pid=$!
it_track_pid "$pub_pid"
wait_until 30 rows_ge 1000 "time < to_timestamp($((base - 1000)))" ||
	fail "burst did not start arriving"
bridge_stop TERM
assert_eq 0 "$BRIDGE_RC" "bridge drained and exited 0 under load"
grep -q "drained; exiting" "$BRIDGE_LOG" || fail "no drain line in the log"
it_log "at SIGTERM $(rows "time < to_timestamp($((base - 1000)))") of $burst burst messages were committed"
wait "$pub_pid" || true
it_untrack_pid "$pub_pid"
bridge_start "$conf"
expected=$((expected + burst))
wait_until 60 rows_ge "$expected" || fail "after restart only $(rows) of $expected rows"
sleep 1
assert_eq "$expected" "$(rows)" "every burst message committed exactly once across the SIGTERM and restart"
bridge_stop
assert_eq 0 "$BRIDGE_RC" "clean exit"
# Secrets never reach logs or rejected_messages.
for log in "$IT_DIR"/bridge.*.log; do
	if grep -q "$WRITER_PASSWORD" "$log"; then fail "writer password in $log"; fi
done
assert_eq 0 "$(rejected "detail LIKE '%$WRITER_PASSWORD%' OR position(convert_to('$WRITER_PASSWORD', 'UTF8') in payload) > 0")" 	"no secret in rejected_messages"
echo "PASS it_ingest"
