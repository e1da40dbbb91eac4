#!/usr/bin/env bash
# it_formats.sh - the payload formats and presets end to end (README "Payload formats", "Presets"), against
# real PostgreSQL 15 and Mosquitto on loopback:
#  1. one reading per topic (format value, the OpenDTU, AhoyDTU and deye presets, Victron's {"value": ...}),
#     Tasmota's SENSOR JSON with a local time read in Europe/Berlin, a Shelly NotifyStatus frame,
#     line protocol naming several devices (split per device: the unknown one is rejected on its own, the
#     others' rows land), each with its exact row (device, point, value, and the payload's time for lines);
#  2. status, LWT and command topics of those trees, "null" and empty payloads are ignored and counted by
#     reason (mqtt2pg_messages_ignored_total), never stored and never recorded as rejections;
#  3. a retained message is ignored on a preset route (retained = "ignore") and accepted on a route that
#     accepts retained messages (retained = "accept"; the default "timestamped" would ignore this one, which
#     has no timestamp: it_delivery_db);
#  4. malformed line protocol and "nan" are rejected with their reasons and recorded.
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
. "$here/lib.sh"
. "$here/bridge.sh"

it_setup formats
pg_start
mosq_start
db_prepare

m2p_admin tenant add acme >/dev/null
for serial in 114172220003 HM-600 DEYE-1 A1 B1 e0ff50a097c0 plug1 shellyplus1pm-a8032ab12345; do
	m2p_admin device add "$serial" --tenant acme >/dev/null
done

port=$(free_port)
conf=$IT_DIR/bridge.conf
bridge_config "$conf" "http = { listen = \"127.0.0.1\"; port = $port; };" \
	'validation = { unknown_points = "register"; };' \
	'routes = (
  { topic = "solar/{tenant}/{serial}/telemetry"; format = "json"; },
  { preset = "opendtu"; prefix = "opendtu"; tenant = "acme"; },
  { preset = "ahoydtu"; tenant = "acme"; },
  { preset = "deye"; tenant = "acme"; serial = "DEYE-1"; },
  { topic = "lp/{tenant}"; format = "influx"; serial_tag = "serial"; precision = "s"; },
  { preset = "victron"; tenant = "acme"; },
  { topic = "val/{tenant}/{serial}/{point+}"; format = "value"; retained = "accept"; },
  { preset = "tasmota"; tenant = "acme"; timezone = "Europe/Berlin"; },
  { preset = "shelly"; tenant = "acme"; }
);'
url=http://127.0.0.1:$port
metric() { curl -s "$url/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
metric_is() { test "$(metric "$1")" = "$2"; }

# --- 3. retained messages, there before the bridge subscribes -----------------------------------------------
mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -r -t opendtu/114172220003/0/power -m 999
mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -r -t val/acme/A1/temp -m 21.5
bridge_start "$conf"

# --- 1, 2, 4. live messages ---------------------------------------------------------------------------------
t=$(($(date -u +%s) - 120))
publish opendtu/114172220003/0/power 73.4
publish opendtu/114172220003/status/reachable 1
publish opendtu/dtu/status online
publish opendtu/114172220003/name Balkon
publish inverter/HM-600/ch0/P_AC 71.000
publish inverter/HM-600/available 2
publish inverter/uptime 73630
publish deye/ac/l1/voltage 230.1
publish deye/status online
printf 'grid,serial=A1 p=1i,q=2 %s\r\n# a comment\ngrid,serial=B1 p=3 %s\ngrid,serial=NOPE p=4 %s\n' "$t" "$t" "$t" >"$IT_DIR/lines"
publish_file lp/acme "$IT_DIR/lines"
publish lp/acme 'grid,serial=A1 p=oops'
publish N/e0ff50a097c0/system/0/Dc/Battery/Voltage '{"value": 52.1}'
publish N/e0ff50a097c0/system/0/Dc/Battery/TimeToGo '{"value": null}'
publish val/acme/A1/x nan
mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t val/acme/A1/y -n
publish val/acme/A1/z ' null '
publish tele/plug1/SENSOR "{\"Time\":\"$(TZ=Europe/Berlin date -d "@$t" +%Y-%m-%dT%H:%M:%S)\",\"ENERGY\":{\"TotalStartTime\":\"2024-01-01T00:00:00\",\"Total\":1.956,\"Power\":9}}"
publish shellyplus1pm-a8032ab12345/events/rpc "{\"src\":\"shellyplus1pm-a8032ab12345\",\"method\":\"NotifyStatus\",\"params\":{\"ts\":$t.25,\"switch:0\":{\"apower\":12.5}}}"
publish shellyplus1pm-a8032ab12345/events/rpc '{"src":"shellyplus1pm-a8032ab12345","method":"NotifyEvent","params":{"ts":1,"events":[{"component":"input:0","event":"single_push"}]}}'

wait_until 20 metric_is mqtt2pg_messages_received_total 21 ||
	fail "received $(metric mqtt2pg_messages_received_total) of 21 messages"
wait_until 20 rows_ge 11 || fail "only $(rows) rows"
wait_until 10 rejected_ge 3 || fail "only $(rejected) rejections recorded"
sleep 0.5 # nothing more may arrive

expected="114172220003:0/power=73.4|A1:p=1|A1:q=2|A1:temp=21.5|B1:p=3|DEYE-1:ac/l1/voltage=230.1|HM-600:ch0/P_AC=71|e0ff50a097c0:system/0/Dc/Battery/Voltage=52.1|plug1:ENERGY/Power=9|plug1:ENERGY/Total=1.956|shellyplus1pm-a8032ab12345:switch:0/apower=12.5"
assert_eq "$expected" "$(psql_super "SELECT string_agg(d.serial || ':' || p.name || '=' || m.value, '|' ORDER BY d.serial, p.name)
	FROM measurements m JOIN devices d ON d.id = m.device_id JOIN points p ON p.id = m.point_id")" \
	"exact rows: value, presets, Victron, Tasmota, Shelly, line protocol split per device, retained accepted on a plain route"
assert_eq "2" "$(psql_super "SELECT count(*) FROM measurements m JOIN devices d ON d.id = m.device_id
	WHERE d.serial = 'A1' AND m.time = to_timestamp($t)")" "line protocol rows carry the payload's time (precision s)"
assert_eq "2" "$(psql_super "SELECT count(*) FROM measurements m JOIN devices d ON d.id = m.device_id
	WHERE d.serial = 'plug1' AND m.time = to_timestamp($t)")" "Tasmota's local Time read in Europe/Berlin"
assert_eq "1" "$(psql_super "SELECT count(*) FROM measurements m JOIN devices d ON d.id = m.device_id
	WHERE d.serial LIKE 'shelly%' AND m.time = to_timestamp($t.25)")" "Shelly NotifyStatus stamped with params.ts"
assert_eq "7" "$(metric 'mqtt2pg_messages_ignored_total{reason="status"}')" \
	"status/LWT/uptime topics of the OpenDTU, AhoyDTU and deye trees and a Shelly NotifyEvent ignored as status"
assert_eq "1" "$(metric 'mqtt2pg_messages_ignored_total{reason="retained"}')" "retained message on a preset route ignored"
assert_eq "3" "$(metric 'mqtt2pg_messages_ignored_total{reason="no_value"}')" "null, {\"value\": null} and empty ignored as no_value"
assert_eq "9" "$(metric mqtt2pg_messages_accepted_total)" \
	"accepted: 5 one-value messages, retained on the value route, Tasmota, Shelly, and 2 devices of the lines"
assert_eq "1" "$(metric 'mqtt2pg_messages_rejected_total{reason="unknown_device"}')" "the unknown device of the lines rejected on its own"
assert_eq "1" "$(metric 'mqtt2pg_messages_rejected_total{reason="malformed_payload"}')" "malformed line protocol rejected"
assert_eq "1" "$(metric 'mqtt2pg_messages_rejected_total{reason="non_finite_value"}')" "nan rejected, never stored"
assert_eq "malformed_payload|lp/acme|;non_finite_value|val/acme/A1/x|A1;unknown_device|lp/acme|NOPE" \
	"$(psql_super "SELECT string_agg(reason || '|' || topic || '|' || coalesce(serial, ''), ';' ORDER BY reason) FROM rejected_messages")" \
	"rejections recorded with topic and the serial they claimed (none for a payload that did not parse)"
psql_super "SELECT detail FROM rejected_messages WHERE reason = 'malformed_payload'" | grep -q "line 1, column 18" ||
	fail "malformed_payload detail lacks the column: $(psql_super "SELECT detail FROM rejected_messages WHERE reason = 'malformed_payload'")"
echo "ok: line protocol error recorded with line and column"

bridge_stop
assert_eq 0 "$BRIDGE_RC" "clean exit"
