#!/usr/bin/env bash
# it_delivery_db.sh - the database half of "nothing acknowledged is lost" (issue 13). Each scenario publishes
# a known set of QoS 1 messages (4 devices, one reading each with a distinct time and value = its index)
# while the database misbehaves, and asserts the exact row set and that nothing became a rejection:
#   1. the database turns read-only mid-stream (default_transaction_read_only + sessions cut, as a failover
#      to a standby or a managed service's "disk full, read-only" mode does): 0 lost, 0 rejected, /readyz
#      not ready (db_writers_writable) while it lasts, ready again after;
#   2. INSERT revoked from the writer mid-stream and granted again (42501 that is no RLS refusal): 0 lost;
#   3. PostgreSQL restarted mid-stream while the writer's password is rotated (new password file + SIGHUP):
#      0 lost, and the registry's connection comes back with the new password too;
#   4. a flood of invalid messages is sampled: at most one stored row per second per (reason, device) and
#      per topic for no_route, every one counted in mqtt2pg_messages_rejected_total;
#   5. rejected_messages older than validation.rejected_retention_days are purged by the scheduled job;
#   6. retained messages by default: one without its own timestamp is ignored at every reconnect (only its
#      live delivery is a row), one with a timestamp is one row however often it is redelivered;
#   7. MQTT 5 Maximum Packet Size: a payload past max_payload_bytes + 1 MiB (64 MiB) never reaches the bridge, one past
#      max_payload_bytes is rejected as oversized_payload.
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
. "$here/lib.sh"
. "$here/bridge.sh"

it_setup delivery_db
pg_start
mosq_start "autosave_interval 1"
db_prepare
m2p_admin tenant add acme >/dev/null
DEVICES=4
for ((d = 0; d < DEVICES; d++)); do m2p_admin device add "D-$d" --tenant acme --point p:W >/dev/null; done
base=$(($(date -u +%s) - 2 * 86400))
SUMMARY=$IT_DIR/summary.txt
: >"$SUMMARY"

# The writer's password comes from a file (rotated in scenario 3), not from the environment.
PWFILE=$IT_DIR/writer.password
echo "$WRITER_PASSWORD" >"$PWFILE"
chmod 600 "$PWFILE" # mqtt2pg refuses a secret file others may read
WRITER_PASSWORD=
HTTP_PORT=$(free_port)
conf=$IT_DIR/bridge.conf
make_conf()
{
	BRIDGE_DB_EXTRA="reconnect_max_ms = 500; password_file = \"$PWFILE\";" bridge_config "$conf" \
		"http = { listen = \"127.0.0.1\"; port = $HTTP_PORT; };" "$@"
}
url=http://127.0.0.1:$HTTP_PORT
metric() { metric_at "$HTTP_PORT" "$1"; }
readyz() { curl -s "$url/readyz" || true; }
not_ready_because() { [[ "$(readyz)" == *"$1"* ]]; }
is_ready() { [[ "$(readyz)" == ready ]]; }

gen()
{
	local s=$1 n=$2 d
	for ((d = 0; d < DEVICES; d++)); do
		awk -v n="$n" -v t0=$((base + s * 3600)) 'BEGIN {
			for (i = 0; i < n; i++) printf "{\"timestamp\":%d.%03d,\"measurements\":{\"p\":%d}}\n", t0 + int(i / 1000), i % 1000, i
		}' >"$IT_DIR/s$s.d$d.jsonl"
	done
}

# publish_scenario SCENARIO [FIRST_LINE LAST_LINE]: every device's file (or a slice of it), in sequence.
publish_scenario()
{
	local s=$1 from=${2:-1} to=${3:-999999} d
	for ((d = 0; d < DEVICES; d++)); do
		sed -n "${from},${to}p" "$IT_DIR/s$s.d$d.jsonl" >"$IT_DIR/slice.jsonl"
		publish_lines "solar/acme/D-$d/telemetry" "$IT_DIR/slice.jsonl"
	done
}

window() { echo "time >= to_timestamp($((base + $1 * 3600))) AND time < to_timestamp($((base + $1 * 3600 + 3000)))"; }
scenario_rows_ge() { rows_ge "$2" "$(window "$1")"; }
refused() { rejected "reason = 'database_refused'"; }

# check SCENARIO PER_DEVICE NAME: the exact row set, and no message of it turned into a rejection.
check()
{
	local s=$1 n=$2 name=$3 w found distinct bad
	w=$(window "$s")
	found=$(rows "$w")
	distinct=$(psql_super "SELECT count(DISTINCT (device_id, point_id, time)) FROM measurements WHERE $w")
	bad=$(psql_super "SELECT count(*) FROM (SELECT d.serial, count(m.value) AS c, coalesce(sum(m.value), 0) AS s
		FROM devices d LEFT JOIN measurements m ON m.device_id = d.id AND $w
		WHERE d.serial LIKE 'D-%' GROUP BY d.serial) x WHERE c <> $n OR s <> $((n * (n - 1) / 2))")
	echo "scenario $s ($name): published $((n * DEVICES)), rows $found, lost $((n * DEVICES - distinct))," \
		"duplicates $((found - distinct)), database_refused rejections $(refused)" | tee -a "$SUMMARY"
	assert_eq "$((n * DEVICES))|$((n * DEVICES))|0|0" "$found|$distinct|$bad|$(refused)" \
		"scenario $s: exact row set, nothing doubled, nothing rejected"
}

N=1000

# --- 1. read-only database mid-stream ------------------------------------------------------------------
scenario_1()
{
	gen 1 $N
	publish_scenario 1 1 $((N / 2))
	wait_until 60 scenario_rows_ge 1 $((N / 2 * DEVICES)) || fail "scenario 1: first half not written"
	psql_super "ALTER DATABASE mqtt2pg SET default_transaction_read_only = on" \
		"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = 'mqtt2pg_writer'" >/dev/null
	publish_scenario 1 $((N / 2 + 1)) $N
	wait_until 60 not_ready_because db_writers_writable || fail "scenario 1: /readyz said '$(readyz)' while read-only"
	echo "ok: scenario 1: /readyz not ready while the database is read-only: $(readyz)"
	sleep 2 # several retries meet the read-only database
	assert_eq 0 "$(refused)" "scenario 1: nothing rejected while read-only"
	psql_super "SET default_transaction_read_only = off" "ALTER DATABASE mqtt2pg RESET default_transaction_read_only"
	wait_until 120 scenario_rows_ge 1 $((N * DEVICES)) || fail "scenario 1: $(rows "$(window 1)") rows"
	wait_until 30 is_ready || fail "scenario 1: not ready after the database became writable: $(readyz)"
	check 1 $N "read-only database mid-stream"
}

# --- 2. INSERT revoked mid-stream ----------------------------------------------------------------------
scenario_2()
{
	local errors
	gen 2 $N
	publish_scenario 2 1 $((N / 2))
	wait_until 60 scenario_rows_ge 2 $((N / 2 * DEVICES)) || fail "scenario 2: first half not written"
	errors=$(($(metric 'mqtt2pg_db_errors_total{kind="transient"}') + $(metric 'mqtt2pg_db_errors_total{kind="permanent"}')))
	# The writer's one privilege for readings (sql/015): EXECUTE on write_readings().
	psql_owner "REVOKE EXECUTE ON FUNCTION write_readings(integer, bigint[], integer[], integer[], float8[]) FROM mqtt2pg_writer"
	publish_scenario 2 $((N / 2 + 1)) $N
	errors_grew() { (($(metric 'mqtt2pg_db_errors_total{kind="transient"}') + $(metric 'mqtt2pg_db_errors_total{kind="permanent"}') > errors)); }
	wait_until 60 errors_grew || fail "scenario 2: no database error while INSERT was revoked"
	sleep 2 # several retries meet the missing privilege
	psql_owner "GRANT EXECUTE ON FUNCTION write_readings(integer, bigint[], integer[], integer[], float8[]) TO mqtt2pg_writer"
	wait_until 120 scenario_rows_ge 2 $((N * DEVICES)) || fail "scenario 2: $(rows "$(window 2)") rows, $(refused) refused"
	check 2 $N "INSERT revoked and granted again mid-stream"
}

# --- 3. PostgreSQL restarted mid-stream, password rotated ---------------------------------------------------
scenario_3()
{
	gen 3 $N
	publish_scenario 3 1 $((N / 2))
	wait_until 60 scenario_rows_ge 3 $((N / 2 * DEVICES)) || fail "scenario 3: first half not written"
	psql_super "ALTER ROLE mqtt2pg_writer PASSWORD 'rotated-secret'"
	echo rotated-secret >"$PWFILE"
	kill -HUP "$BRIDGE_PID"
	wait_until 10 grep -q "re-read the database password" "$BRIDGE_LOG" || fail "scenario 3: SIGHUP did not re-read the password file"
	pg_stop fast
	publish_scenario 3 $((N / 2 + 1)) $N
	pg_start_again
	wait_until 120 scenario_rows_ge 3 $((N * DEVICES)) || fail "scenario 3: $(rows "$(window 3)") rows"
	check 3 $N "PostgreSQL restarted mid-stream, password rotated"
	# The registry's connection came back with the new password too: a device added now is known at once.
	m2p_admin device add X-NEW --tenant acme --point p:W >/dev/null
	new_device_row() {
		publish solar/acme/X-NEW/telemetry "{\"timestamp\":$((base + 3 * 3600 + 3500)),\"measurements\":{\"p\":5}}"
		rows_ge 1 "device_id = (SELECT id FROM devices WHERE serial = 'X-NEW')"
	}
	wait_until 60 new_device_row || fail "scenario 3: the registry did not see a device added after the rotation"
	echo "ok: scenario 3: the registry reconnected with the rotated password"
	# Rotated again in place, without a signal (a mounted Kubernetes Secret): the next connect re-reads the file.
	psql_super "ALTER ROLE mqtt2pg_writer PASSWORD 'rotated-again'"
	echo rotated-again >"$PWFILE"
	psql_super "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = 'mqtt2pg_writer'" >/dev/null
	publish solar/acme/X-NEW/telemetry "{\"timestamp\":$((base + 3 * 3600 + 3501)),\"measurements\":{\"p\":6}}"
	wait_until 60 rows_ge 1 "value = 6 AND device_id = (SELECT id FROM devices WHERE serial = 'X-NEW')" ||
		fail "scenario 3: no writer reconnected after the password file changed without SIGHUP"
	echo "ok: scenario 3: a password rotated in the file without SIGHUP is picked up at the next connect"
}

# --- 4. a flood of invalid messages is sampled ---------------------------------------------------------------
scenario_4()
{
	FLOOD=3000
	before=$(metric 'mqtt2pg_messages_rejected_total{reason="malformed_json"}')
	nr_before=$(metric 'mqtt2pg_messages_rejected_total{reason="no_route"}')
	t0=$(now_s)
	awk -v n=$FLOOD 'BEGIN { for (i = 0; i < n; i++) print "{\"measurements\":" }' >"$IT_DIR/flood.txt"
	# Two bursts more than a second apart: the first of the second burst is stored and tells how many of the
	# first were only counted.
	head -n $((FLOOD / 2)) "$IT_DIR/flood.txt" >"$IT_DIR/flood1.txt"
	publish_lines "solar/acme/D-0/telemetry" "$IT_DIR/flood1.txt"
	half_counted() { (($(metric 'mqtt2pg_messages_rejected_total{reason="malformed_json"}') - before >= FLOOD / 2)); }
	wait_until 60 half_counted || fail "scenario 4: the first burst was not counted"
	sleep 1.5
	publish_lines "solar/acme/D-0/telemetry" "$IT_DIR/flood1.txt"
	head -n 1000 "$IT_DIR/flood.txt" >"$IT_DIR/flood_nr.txt"
	publish_lines "solar//flood/telemetry" "$IT_DIR/flood_nr.txt"
	counted() { (($(metric 'mqtt2pg_messages_rejected_total{reason="malformed_json"}') - before == FLOOD &&
		$(metric 'mqtt2pg_messages_rejected_total{reason="no_route"}') - nr_before == 1000)); }
	wait_until 120 counted || fail "scenario 4: counted $(($(metric 'mqtt2pg_messages_rejected_total{reason="malformed_json"}') - before)) of $FLOOD"
	secs=$(awk -v a="$t0" -v b="$(now_s)" 'BEGIN { printf "%d", b - a + 1 }')
	sleep 1 # the last sampled rows commit
	stored=$(rejected "reason = 'malformed_json' AND serial = 'D-0'")
	stored_nr=$(rejected "reason = 'no_route' AND topic = 'solar//flood/telemetry'")
	per_second=$(psql_super "SELECT coalesce(max(c), 0) FROM (SELECT count(*) AS c FROM rejected_messages
		WHERE reason IN ('malformed_json', 'no_route') GROUP BY reason, serial, topic, date_trunc('second', received_at)) x")
	echo "scenario 4 (reject flood): published $FLOOD malformed + 1000 no_route in ${secs}s, all counted," \
		"stored $stored + $stored_nr rows, at most $per_second per second per key" | tee -a "$SUMMARY"
	((stored >= 1 && stored <= secs + 1 && stored_nr >= 1 && stored_nr <= secs + 1)) ||
		fail "scenario 4: $stored malformed_json / $stored_nr no_route rows stored for a ${secs}s flood"
	assert_eq 1 "$per_second" "scenario 4: at most one stored row per second per (reason, device / topic)"
	psql_super "SELECT detail FROM rejected_messages WHERE reason = 'malformed_json' AND serial = 'D-0'" |
		grep -q "more like it" || fail "scenario 4: the stored rows do not say how many were not stored"
}

# --- 5. rejected_messages retention ------------------------------------------------------------------------
scenario_5()
{
	bridge_stop
	psql_super "INSERT INTO rejected_messages (received_at, reason, detail) SELECT now() - interval '40 days', 'old_one', ''
		FROM generate_series(1, 5)" "INSERT INTO rejected_messages (received_at, reason, detail)
		VALUES (now() - interval '10 days', 'recent_one', '')"
	make_conf 'validation = { rejected_retention_days = 30; };'
	bridge_start "$conf"
	old_gone() { test "$(rejected "reason = 'old_one'")" = 0; }
	wait_until 60 old_gone || fail "scenario 5: $(rejected "reason = 'old_one'") rows older than 30 days still there"
	assert_eq 1 "$(rejected "reason = 'recent_one'")" "scenario 5: rows within the retention are kept"
	echo "scenario 5 (rejected retention 30 days): 5 rows of 40 days purged, 1 of 10 days kept" | tee -a "$SUMMARY"
}

# --- 6. retained messages, default policy ----------------------------------------------------------------------
scenario_6()
{
	mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -r -t solar/acme/D-2/telemetry -m '{"measurements":{"p":424242}}'
	mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -r -t solar/acme/D-3/telemetry \
		-m "{\"timestamp\":$((base + 6 * 3600)),\"measurements\":{\"p\":7777777}}"
	for ((k = 0; k < 3; k++)); do
		bridge_stop
		bridge_start "$conf"
		retained_seen() { test "$(metric 'mqtt2pg_messages_ignored_total{reason="retained"}')" -ge 1; }
		wait_until 30 rows_ge 1 "value = 7777777" || fail "scenario 6: the timestamped retained reading never arrived"
		wait_until 30 retained_seen || fail "scenario 6: reconnect $k: the untimestamped retained message was not ignored"
	done
	mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -r -t solar/acme/D-2/telemetry -n
	mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -r -t solar/acme/D-3/telemetry -n
	echo "scenario 6 (retained, default policy, 3 reconnects): untimestamped rows $(rows "value = 424242")," \
		"timestamped rows $(rows "value = 7777777")" | tee -a "$SUMMARY"
	# The live delivery (the bridge is subscribed when they are published: the broker clears the retain flag)
	# is one reading each; the three redeliveries flagged retained at the re-subscribes add none.
	assert_eq "1|1" "$(rows "value = 424242")|$(rows "value = 7777777")" \
		"scenario 6: retained redeliveries add no row (untimestamped ignored, timestamped idempotent)"
}

# --- 7. oversized packets -----------------------------------------------------------------------------------
scenario_7()
{
	bridge_stop
	make_conf 'validation = { max_payload_bytes = 1024; };'
	bridge_start "$conf"
	received=$(metric mqtt2pg_messages_received_total)
	head -c $((64 * 1048576)) /dev/zero | tr '\0' 'A' >"$IT_DIR/giant.bin"
	head -c 4096 /dev/zero | tr '\0' 'B' >"$IT_DIR/big.bin"
	publish_file solar/acme/D-1/telemetry "$IT_DIR/giant.bin"
	publish_file solar/acme/D-1/telemetry "$IT_DIR/big.bin"
	publish solar/acme/D-1/telemetry "{\"timestamp\":$((base + 7 * 3600)),\"measurements\":{\"p\":31337}}"
	wait_until 30 rows_ge 1 "value = 31337" || fail "scenario 7: the marker message never arrived"
	wait_until 10 rejected_ge 1 "reason = 'oversized_payload' AND serial = 'D-1'" || fail "scenario 7: the 4 KiB payload was not rejected"
	rss=$(awk '/VmHWM/ { print $2 }' "/proc/$BRIDGE_PID/status")
	got=$(($(metric mqtt2pg_messages_received_total) - received))
	echo "scenario 7 (max_payload_bytes 1024): 64 MiB payload, 4 KiB payload, marker: received $got," \
		"oversized rejections $(rejected "reason = 'oversized_payload'"), bridge peak RSS ${rss} kB" | tee -a "$SUMMARY"
	assert_eq 2 "$got" "scenario 7: the 64 MiB packet never reached the bridge (Maximum Packet Size)"
}

# $SCENARIOS picks scenarios (default all), e.g. SCENARIOS="1 4" to reproduce one failure quickly.
make_conf
bridge_start "$conf"
wait_until 30 is_ready || fail "bridge never ready: $(readyz)"
for s in ${SCENARIOS:-1 2 3 4 5 6 7}; do
	"scenario_$s"
done
bridge_stop
assert_eq 0 "$BRIDGE_RC" "clean exit"
echo "--- summary"
cat "$SUMMARY"
echo "PASS it_delivery_db"
