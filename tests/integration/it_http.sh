#!/usr/bin/env bash
# it_http.sh - the operator's endpoints against a running bridge: /healthz and /readyz answer as
# documented (not ready while the broker is away, ready again after it returns), and /metrics counters move
# exactly as the messages published say they should.
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
. "$here/lib.sh"
. "$here/bridge.sh"

it_setup http
pg_start
mosq_start
db_prepare
m2p_admin tenant add acme >/dev/null
m2p_admin device add INV-1 --tenant acme --point p:W --point q:V >/dev/null
port=$(free_port)
conf=$IT_DIR/bridge.conf
bridge_config "$conf" "http = { listen = \"127.0.0.1\"; port = $port; };" 'aggregates = { interval = 1; };'
bridge_start "$conf"
url=http://127.0.0.1:$port

status() { curl -s -o /dev/null -w '%{http_code}' "$url$1"; }
metric() { curl -s "$url/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
metric_is() { test "$(metric "$1")" = "$2"; }
metric_ge() { test "$(metric "$1")" -ge "$2"; }
status_is() { test "$(status "$1")" = "$2"; }

assert_eq 200 "$(status /healthz)" "/healthz is 200 while the loop runs"
wait_until 10 status_is /readyz 200 || fail "/readyz never became ready: $(curl -s "$url/readyz")"
echo "ok: /readyz is 200 when connected to broker and database with a registry"
assert_eq 404 "$(status /nope)" "unknown path is 404"
assert_eq 0 "$(metric mqtt2pg_messages_received_total)" "nothing received yet"

for i in 1 2 3 4 5; do publish solar/acme/INV-1/telemetry "{\"measurements\":{\"p\":$i,\"q\":230}}"; done
publish solar/acme/INV-1/telemetry '{"measurements":{"zzz":1}}'
publish solar/acme/INV-1/telemetry '{"measurements":'
wait_until 10 metric_is mqtt2pg_rows_inserted_total 10 || fail "rows_inserted_total is $(metric mqtt2pg_rows_inserted_total)"
assert_eq 7 "$(metric mqtt2pg_messages_received_total)" "received counts every message"
assert_eq 5 "$(metric mqtt2pg_messages_accepted_total)" "accepted counts the valid ones"
assert_eq 1 "$(metric 'mqtt2pg_messages_rejected_total{reason="unknown_point"}')" "rejected by reason: unknown_point"
assert_eq 1 "$(metric 'mqtt2pg_messages_rejected_total{reason="malformed_json"}')" "rejected by reason: malformed_json"
wait_until 10 metric_is mqtt2pg_rejects_recorded_total 2 || fail "rejects not recorded"
assert_eq 1 "$(metric mqtt2pg_mqtt_connected)" "mqtt_connected gauge"
assert_eq 2 "$(metric mqtt2pg_db_writers_connected)" "both writers connected"
wait_until 10 metric_is mqtt2pg_aggregate_leader 1 || fail "not aggregate leader"
wait_until 10 metric_ge mqtt2pg_aggregate_buckets_total 1 || fail "no aggregate buckets counted"
[[ "$(metric mqtt2pg_aggregate_last_pass_seconds)" =~ ^[0-9.e+-]+$ ]] || fail "no aggregate_last_pass_seconds gauge"
echo "ok: aggregate leader and buckets exported"
grep -q '^mqtt2pg_build_info{version="' <<<"$(curl -s "$url/metrics")" || fail "no build_info"
assert_eq 5 "$(metric mqtt2pg_end_to_end_lag_seconds_count)" "end-to-end lag observed once per committed message"
assert_eq 5 "$(metric 'mqtt2pg_end_to_end_lag_seconds_bucket{le="+Inf"}')" "lag histogram's +Inf bucket counts them all"
test "$(metric mqtt2pg_batch_duration_seconds_count)" -ge 1 || fail "no batch duration observed"
echo "ok: batch duration and end-to-end lag histograms exported"

mosq_stop
wait_until 15 status_is /readyz 503 || fail "/readyz stayed ready without a broker"
grep -q "broker not connected" <(curl -s "$url/readyz") || fail "/readyz does not say why"
echo "ok: /readyz is 503 (broker not connected) while the broker is down"
assert_eq 200 "$(status /healthz)" "/healthz stays 200 (the process is alive)"
mosq_start_again
wait_until 40 status_is /readyz 200 || fail "/readyz did not recover after the broker returned"
echo "ok: /readyz recovers when the broker returns"
test "$(metric mqtt2pg_mqtt_connection_lost_total)" -ge 1 || fail "connection loss not counted"
bridge_stop
assert_eq 0 "$BRIDGE_RC" "clean exit"

# Rate limits: a device bursting past its limit is refused with its own reason, counted, never silently
# dropped, and another device of the same tenant is unaffected.
m2p_admin device add INV-2 --tenant acme --point p:W >/dev/null
port=$(free_port)
url=http://127.0.0.1:$port
bridge_config "$conf" "http = { listen = \"127.0.0.1\"; port = $port; };" \
	'validation = { device_rate = 1; device_burst = 5; };'
bridge_start "$conf"
rows_before=$(rows)
for ((i = 0; i < 30; i++)); do echo "{\"timestamp\":$(( $(date +%s) - 100 + i)),\"measurements\":{\"p\":$i}}"; done >"$IT_DIR/burst.jsonl"
publish_lines solar/acme/INV-1/telemetry "$IT_DIR/burst.jsonl"
for i in 1 2 3; do publish solar/acme/INV-2/telemetry "{\"measurements\":{\"p\":$i}}"; done
received_is() { metric_is mqtt2pg_messages_received_total 33; }
wait_until 10 received_is || fail "not all 33 messages received"
limited=$(metric 'mqtt2pg_messages_rejected_total{reason="rate_limited"}')
accepted=$(metric mqtt2pg_messages_accepted_total)
assert_eq 33 "$((limited + accepted))" "every message accepted or rate_limited: none silently dropped"
test "$limited" -ge 20 || fail "only $limited of 30 burst messages rate-limited"
echo "ok: $limited of the 30-message burst refused as rate_limited (limit 1/s, burst 5)"
wait_until 10 rows_ge $((rows_before + accepted)) || fail "accepted messages did not land"
assert_eq 3 "$(rows "device_id = (SELECT id FROM devices WHERE serial = 'INV-2')")" "the other device is unaffected"
recorded=$(rejected "reason = 'rate_limited'")
test "$recorded" -ge 1 && test "$recorded" -le 3 || fail "$recorded rate_limited records (want 1-3: one per second)"
echo "ok: refusals recorded $recorded time(s), with the count of the others: $(psql_super "SELECT detail FROM rejected_messages WHERE reason = 'rate_limited' LIMIT 1")"

# SIGHUP reload: a valid change applies at once (a smaller max_payload_bytes), a key that cannot change at
# run time is reported "restart required", and a broken file keeps the running configuration. The keys
# changed are two that a reload used to pass over in silence (issue 18): mqtt.reconnect_max and
# database.linger_ms.
sed -i 's/validation = { device_rate = 1; device_burst = 5; };/validation = { device_rate = 1; device_burst = 5; max_payload_bytes = 40; };/; s/keepalive = 30;/keepalive = 30; reconnect_max = 42;/; s/flush_interval_ms = 50;/flush_interval_ms = 50; linger_ms = 7;/' "$conf"
kill -HUP "$BRIDGE_PID"
wait_until 10 grep -q "configuration reloaded" "$BRIDGE_LOG" || fail "no reload line"
grep -q "reload: mqtt .* changed: restart required" "$BRIDGE_LOG" || fail "mqtt.reconnect_max change not reported as restart required"
grep -q "reload: database changed: restart required" "$BRIDGE_LOG" || fail "database.linger_ms change not reported as restart required"
echo "ok: SIGHUP applied the new validation policy and reported the mqtt and database changes as restart required"
publish solar/acme/INV-2/telemetry '{"measurements":{"p":1},"padding":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}'
wait_until 10 rejected_ge 1 "reason = 'oversized_payload'" || fail "reloaded max_payload_bytes not applied"
echo "ok: the reloaded max_payload_bytes took effect without a restart"
echo 'validation = { max_payload_bytes = "big"; };' >>"$conf"
kill -HUP "$BRIDGE_PID"
wait_until 10 grep -q "reload failed, keeping the running configuration" "$BRIDGE_LOG" || fail "broken reload not reported"
publish solar/acme/INV-2/telemetry '{"measurements":{"p":2}}'
wait_until 10 rows_ge 1 "value = 2 AND device_id = (SELECT id FROM devices WHERE serial = 'INV-2')" ||
	fail "bridge stopped serving after a failed reload"
echo "ok: a broken file is refused with its errors and the bridge keeps serving"
bridge_stop
assert_eq 0 "$BRIDGE_RC" "clean exit after reloads"
echo "PASS it_http"
