#!/usr/bin/env bash
# it_receive_window.sh - the broker's in-flight window towards the bridge (issue 17). Mosquitto runs at its
# default max_inflight_messages (20), as users run it. With MQTT 5 the bridge sends Receive Maximum
# (mqtt.receive_maximum) in CONNECT and Mosquitto 2.0 takes it instead of its own limit
# (property__process_connect): the broker keeps that many QoS 1 messages unacknowledged in flight to us, so the
# drain is not bound by one PUBACK round trip per 20 messages. Nothing is acknowledged sooner: the bridge still
# sends each PUBACK only after the message is in the spool.
#
# How the window is observed, without timing: a bridge that acknowledges nothing at all (it starts on a full
# spool with the table locked, so the callback of its first message blocks). The broker sends its window of the
# messages published and stops. Its log (log_type all) has one "Sending PUBLISH to <client>" per message sent
# and one "Received PUBACK from <client>" per acknowledgement: sent - acknowledged is the window, exactly.
#   1. MQTT 3.1.1 (no Receive Maximum): Mosquitto's 20.
#   2. MQTT 5 with receive_maximum = 200: 200 (on a build without the property: 20).
# Measured on Debian 12's Mosquitto 2.0.11 while the bridge acknowledges (not asserted here): each PUBACK lets up
# to 20 more out (db__message_delete_outgoing counts its window from the acknowledged message's place, fixed in
# 2.0.13, eclipse/mosquitto#2306), so there a running bridge's window grows past 20 anyway; on 2.0.13 and later
# it is 20 without Receive Maximum. After the lock is released every message is stored (nothing lost).
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
. "$here/lib.sh"
. "$here/bridge.sh"

it_setup receive_window
pg_start
mosq_start
# lib.sh opens the window (max_inflight_messages 0) for the other tests' speed; this test needs the default.
mosq_stop
sed -i '/^max_inflight_messages 0$/d' "$MOSQ_CONF"
grep -q '^log_type all$' "$MOSQ_CONF" || fail "the broker must log every PUBLISH (log_type all)"
mosq_start_again
db_prepare
m2p_admin tenant add acme >/dev/null
m2p_admin device add WIN-1 --tenant acme --point p:W >/dev/null

N=1000     # published to the bridge under test, which acknowledges none until the lock goes
FILL=30000 # published to the bridge that fills the spool
base=$(($(date -u +%s) - 3600))

# in_flight CLIENT: PUBLISHes the broker sent to CLIENT minus the PUBACKs it received from it.
in_flight()
{
	local sent acked
	sent=$(grep -c "Sending PUBLISH to $1 " "$MOSQ_LOG" || true)
	acked=$(grep -c "Received PUBACK from $1 " "$MOSQ_LOG" || true)
	echo $((sent - acked))
}

# steady CLIENT: the in-flight count is the same over 1 s (the broker has sent its window and stopped).
steady()
{
	local a b
	a=$(in_flight "$1")
	sleep 1
	b=$(in_flight "$1")
	((a == b && a > 0))
}

# run_phase NAME VERSION [RECEIVE_MAXIMUM]: the window a bridge of that MQTT version gets, observed while it
# acknowledges nothing at all. A first bridge (client NAME-fill) fills the spool directory while the table is
# locked and is killed; the bridge under test starts on that full spool, the lock still held, so the callback of
# its very first message blocks. The broker then sends exactly its window (of the 1,000 messages published)
# and waits: sent - acknowledged = the window, with no race. Then the lock is released and the phase's 1,000
# messages are all stored.
run_phase()
{
	local name=$1 version=$2 rxmax=${3:-} client=mqtt2pg-win-$1 port conf lock_pid rows t0
	port=$(free_port)
	conf=$IT_DIR/$name.conf
	t0=$((base - version * 20000))
	# The table locked: the writers cannot commit, the spool fills, the callback blocks.
	PGAPPNAME=it_lock psql -X -q -d "$SUPER_DB" -c "BEGIN" -c "LOCK TABLE measurements IN ACCESS EXCLUSIVE MODE" \
		-c "SELECT pg_sleep(600)" >/dev/null 2>&1 &
	lock_pid=$!
	it_track_pid "$lock_pid"
	wait_until 10 lock_held || fail "$name: the lock was not taken"

	BRIDGE_CLIENT_ID=$client-fill BRIDGE_MQTT_EXTRA="version = $version;" \
		BRIDGE_SPOOL="spool = { directory = \"$IT_DIR/spool.$name\"; max_bytes = 1048576; segment_bytes = 65536; };" \
		bridge_config "$conf.fill" "http = { listen = \"127.0.0.1\"; port = $port; };" 'aggregates = { enabled = false; };'
	bridge_start "$conf.fill"
	# ~61 bytes in the spool per message: 1 MiB is full after ~17,000 of these 30,000.
	lines "$((t0 - FILL))" "$FILL" >"$IT_DIR/$name.fill"
	publish_lines solar/acme/WIN-1/telemetry "$IT_DIR/$name.fill"
	wait_until 60 metric_is_at "$port" mqtt2pg_intake_blocked 1 || fail "$name: the filling bridge never blocked"
	kill -KILL "$BRIDGE_PID"
	wait "$BRIDGE_PID" 2>/dev/null || true
	it_untrack_pid "$BRIDGE_PID"

	BRIDGE_CLIENT_ID=$client BRIDGE_MQTT_EXTRA="version = $version; ${rxmax:+receive_maximum = $rxmax;}" \
		BRIDGE_SPOOL="spool = { directory = \"$IT_DIR/spool.$name\"; max_bytes = 1048576; segment_bytes = 65536; };" \
		bridge_config "$conf" "http = { listen = \"127.0.0.1\"; port = $port; };" 'aggregates = { enabled = false; };'
	bridge_start "$conf"
	lines "$t0" "$N" >"$IT_DIR/$name.lines"
	publish_lines solar/acme/WIN-1/telemetry "$IT_DIR/$name.lines"
	wait_until 30 steady "$client" || fail "$name: the broker's in-flight count did not settle: $(in_flight "$client")"
	WINDOW=$(in_flight "$client")
	assert_eq 0 "$(grep -c "Received PUBACK from $client " "$MOSQ_LOG" || true)" "$name: nothing acknowledged while blocked"

	kill "$lock_pid" 2>/dev/null || true
	wait "$lock_pid" 2>/dev/null || true
	it_untrack_pid "$lock_pid"
	psql_super "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'it_lock'" >/dev/null
	wait_until 120 phase_rows_at_least "$t0" "$N" || fail "$name: $(phase_rows "$t0") of $N rows after the lock was released"
	rows=$(phase_rows "$t0")
	bridge_stop
	assert_eq 0 "$BRIDGE_RC" "$name: clean exit"
	assert_eq "$N" "$rows" "$name: every message published to the blocked bridge stored once"
}

# lines T0 COUNT: COUNT envelope messages, one per second from T0.
lines() { awk -v n="$2" -v b="$1" 'BEGIN { for (i = 0; i < n; i++) printf "{\"timestamp\":%d,\"measurements\":{\"p\":%d}}\n", b + i, i }'; }
phase_rows() { psql_super "SELECT count(*) FROM measurements WHERE time >= to_timestamp($1) AND time < to_timestamp($1 + $N)"; }
phase_rows_at_least() { test "$(phase_rows "$1")" -ge "$2"; }
lock_held()
{
	test "$(psql_super "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
		WHERE a.application_name = 'it_lock' AND l.granted AND l.mode = 'AccessExclusiveLock'")" -ge 1
}
rows_at_least() { test "$(psql_super "SELECT count(*) FROM measurements")" -ge "$1"; }
metric_is_at() { test "$(metric_at "$1" "$2")" = "$3"; }

run_phase v4 4
assert_eq 20 "$WINDOW" "MQTT 3.1.1: the broker's own window (max_inflight_messages, default 20)"
run_phase v5 5 200
assert_eq 200 "$WINDOW" "MQTT 5: the window is the bridge's receive_maximum (200), not the broker's 20"

echo "PASS it_receive_window"
