#!/usr/bin/env bash
# it_harness_selftest.sh - check the integration harness (lib.sh) itself:
# private PostgreSQL + mosquitto come up, are reachable the way the tests use
# them, and survive restarts with their data (tables, persistent MQTT
# sessions).  No mqtt2pg binary needed.
#
# Run from the repo root: bash tests/integration/it_harness_selftest.sh
set -euo pipefail

# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

it_setup harness_selftest
pg_start
mosq_start

# mosquitto_sub/_pub against the private broker, QoS 1, fixed client id so the
# subscriber has a persistent session (-c) that queues messages while it is
# offline: no race between subscribing and publishing.
TOPIC=it/selftest/t1
SUB_ID=it-selftest-sub

# Create (or refresh) the persistent subscription, then disconnect.
sub_register()
{
	mosquitto_sub -p "$MQTT_PORT" -h 127.0.0.1 -q 1 -c -i "$SUB_ID" -t "$TOPIC" -E
}

# Publish one QoS 1 message.
pub()
{
	mosquitto_pub -p "$MQTT_PORT" -h 127.0.0.1 -q 1 -t "$TOPIC" -m "$1"
}

# Reconnect the persistent session and print the first message (max 5 s).
sub_receive_one()
{
	mosquitto_sub -p "$MQTT_PORT" -h 127.0.0.1 -q 1 -c -i "$SUB_ID" -t "$TOPIC" -C 1 -W 5 || true
}

# --- PostgreSQL: owner over TCP with password, superuser over the socket ---
assert_eq 1 "$(psql_owner 'select 1')" "owner connects over TCP (scram)"
assert_eq postgres "$(psql_super 'select current_user')" "superuser connects over the socket"
assert_eq mqtt2pg_owner "$(psql_super "select pg_get_userbyid(datdba) from pg_database where datname = 'mqtt2pg'")" \
	"database mqtt2pg is owned by mqtt2pg_owner"
psql_owner 'create table selftest(v int)' 'insert into selftest values (42)'

# --- MQTT: QoS 1 publish is received ---
sub_register
pub hello-1
assert_eq hello-1 "$(sub_receive_one)" "QoS 1 message received"

# --- mosquitto restart: queued message survives via persistence ---
pub queued-across-restart
mosq_stop
mosq_start_again
assert_eq queued-across-restart "$(sub_receive_one)" "queued message survives broker restart"
pub hello-2
assert_eq hello-2 "$(sub_receive_one)" "QoS 1 message received after broker restart"

# --- PostgreSQL restart: down while stopped, data kept after restart ---
pg_stop
if psql_owner 'select 1' >/dev/null 2>&1; then
	fail "psql still works after pg_stop"
fi
echo "ok: postgres unreachable while stopped"
pg_start_again
assert_eq 1 "$(psql_owner 'select 1')" "owner connects after postgres restart"
assert_eq 42 "$(psql_owner 'select v from selftest')" "table data survives postgres restart"

# --- free_port never hands out the same port twice ---
p1=$(free_port)
p2=$(free_port)
[[ "$p1" != "$p2" && "$p1" != "$PGPORT" && "$p1" != "$MQTT_PORT" ]] ||
	fail "free_port repeated a port ($p1 $p2 $PGPORT $MQTT_PORT)"
echo "ok: free_port gives distinct ports"

it_log "harness selftest passed"
