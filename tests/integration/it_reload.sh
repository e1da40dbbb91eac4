#!/usr/bin/env bash
# it_reload.sh - SIGHUP against a running bridge, one key at a time (issue 18): every key of the file is
# changed in turn, the bridge reloads, and its log must name that key, and only that key, as "applied" or
# "restart required" (the table in src/config.c decides which; this list is written independently of it, so
# a key moved from one class to the other fails here until the list is changed too). The key is then set back
# and reloaded again. Waits on the reload's own log line, never on time.
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
. "$here/lib.sh"
. "$here/bridge.sh"

it_setup reload
pg_start
mosq_start
db_prepare

# Secret files must be 0600 (secret.c); two database password files with the same password, so that
# switching between them keeps the writers able to connect.
secret() { printf '%s\n' "$2" >"$1" && chmod 600 "$1"; }
secret "$IT_DIR/db-pw-1" "$WRITER_PASSWORD"
secret "$IT_DIR/db-pw-2" "$WRITER_PASSWORD"
secret "$IT_DIR/mqtt-pw" "broker-secret"
secret "$IT_DIR/token" "metrics-token"

# key -> "running value|changed value|expected class"
declare -A KEYS=(
	[mqtt.uri]="\"$MQTT_URI\"|\"tcp://127.0.0.1:1\"|restart"
	[mqtt.client_id]="\"mqtt2pg-reload\"|\"mqtt2pg-reload-2\"|restart"
	[mqtt.username]="\"\"|\"someone\"|restart"
	[mqtt.password_file]="\"\"|\"$IT_DIR/mqtt-pw\"|restart"
	[mqtt.version]="5|4|restart"
	[mqtt.qos]="1|0|restart"
	[mqtt.clean_session]="false|true|restart"
	[mqtt.session_expiry]="604800|3600|restart"
	[mqtt.receive_maximum]="1000|500|restart"
	[mqtt.keepalive]="30|31|restart"
	[mqtt.connect_timeout]="10|11|restart"
	[mqtt.reconnect_min]="1|2|restart"
	[mqtt.reconnect_max]="30|31|restart"
	[mqtt.shared_group]="\"\"|\"group\"|restart"
	[mqtt.ca_file]="\"\"|\"/nonexistent/ca.pem\"|restart"
	[mqtt.cert_file]="\"\"|\"/nonexistent/cert.pem\"|restart"
	[mqtt.key_file]="\"\"|\"/nonexistent/key.pem\"|restart"
	[mqtt.tls_verify]="true|false|restart"
	[database.conninfo]="\"host=127.0.0.1 port=$PGPORT dbname=mqtt2pg user=mqtt2pg_writer\"|\"host=127.0.0.1 port=$PGPORT dbname=mqtt2pg user=mqtt2pg_writer connect_timeout=5\"|restart"
	[database.password_file]="\"$IT_DIR/db-pw-1\"|\"$IT_DIR/db-pw-2\"|restart"
	[database.admin_conninfo]="\"\"|\"dbname=mqtt2pg\"|applied"
	[database.writers]="2|3|restart"
	[database.batch_rows]="2000|2001|restart"
	[database.flush_interval_ms]="50|51|restart"
	[database.linger_ms]="10|7|restart"
	[database.queue_messages]="50000|50001|restart"
	[database.enqueue_timeout_ms]="20000|20001|restart"
	[database.reconnect_max_ms]="10000|10001|restart"
	[validation.max_payload_bytes]="65536|40|applied"
	[validation.max_future_skew]="300|301|applied"
	[validation.max_age]="604800|604801|applied"
	[validation.unknown_points]="\"reject\"|\"drop\"|applied"
	[validation.max_points_per_device]="256|257|restart"
	[validation.reject_payload_bytes]="1024|1025|applied"
	[validation.device_rate]="0|5|restart"
	[validation.device_burst]="100|101|restart"
	[validation.tenant_rate]="0|5|restart"
	[validation.tenant_burst]="10000|10001|restart"
	[validation.rejected_retention_days]="30|31|restart"
	[routes]="( { topic = \"solar/{tenant}/{serial}/telemetry\"; } )|( { topic = \"solar2/{tenant}/{serial}/telemetry\"; } )|restart"
	[stats_interval]="1|2|applied"
	[shutdown_timeout]="50|51|applied"
	[spool.mode]="\"disk\"|\"memory\"|restart"
	[spool.directory]="\"$IT_DIR/spool\"|\"$IT_DIR/spool-2\"|restart"
	[spool.max_bytes]="1073741824|1073741825|restart"
	[spool.segment_bytes]="16777216|16777217|restart"
	[spool.fsync_interval_ms]="1000|1001|restart"
	[http.listen]="\"127.0.0.1\"|\"127.0.0.2\"|restart"
	[http.port]="$(free_port)|$(free_port)|restart"
	[http.max_connections]="64|65|restart"
	[http.max_connections_per_client]="8|9|restart"
	[http.timeout]="10|11|restart"
	[http.metrics_token_file]="\"\"|\"$IT_DIR/token\"|restart"
	[aggregates.enabled]="true|false|restart"
	[aggregates.interval]="30|31|restart"
	[aggregates.raw_retention_days]="0|30|restart" # 30: must outlive validation.max_age (7 days)
	[aggregates.partitions_ahead_days]="3|4|restart"
	[aggregates.connections]="2|3|restart"
	[registry.refresh_interval]="60|61|restart"
	[log.level]="\"info\"|\"debug\"|applied"
	[log.format]="\"text\"|\"json\"|applied"
)

# The list covers every key the example file documents (and the unit test holds the table to that file).
documented=$(awk '
	/^[a-z_]+ = \{/ { group = $1; next }
	/^\};/ { group = ""; next }
	/^routes = \(/ { print "routes"; skip = 1; next }
	skip && /^\);/ { skip = 0; next }
	skip { next }
	group != "" && /^  [a-z_]+ = / { print group "." $1; next }
	group == "" && /^[a-z_]+ = / { print $1 }
' "$MQTT2PG_SOURCE_DIR/conf/mqtt2pg.conf" | sort -u)
listed=$(printf '%s\n' "${!KEYS[@]}" | sort -u)
[ "$documented" = "$listed" ] || fail "keys in conf/mqtt2pg.conf and in this test differ: $(diff <(echo "$documented") <(echo "$listed") | grep '^[<>]' | tr '\n' ' ')"
echo "ok: the test changes all $(wc -l <<<"$listed") keys of conf/mqtt2pg.conf"

declare -A VALUE
for key in "${!KEYS[@]}"; do VALUE[$key]=${KEYS[$key]%%|*}; done

conf=$IT_DIR/bridge.conf
write_conf()
{
	local section key
	{
		for section in mqtt database validation spool http aggregates registry log; do
			echo "$section = {"
			for key in "${!VALUE[@]}"; do
				[[ $key == "$section".* ]] && echo "  ${key#*.} = ${VALUE[$key]};"
			done
			echo "};"
		done
		for key in routes stats_interval shutdown_timeout; do echo "$key = ${VALUE[$key]};"; done
	} >"$conf"
}

write_conf
m2p_admin tenant add acme >/dev/null
BRIDGE_LOG=$IT_DIR/bridge.log
# No $MQTT2PG_DB_PASSWORD: the password comes from database.password_file, so that key is read from the file.
"$MQTT2PG_BIN" -c "$conf" run >"$BRIDGE_LOG" 2>&1 &
BRIDGE_PID=$!
it_track_pid "$BRIDGE_PID"
it_track_log "$BRIDGE_LOG"
wait_until 20 grep -q "subscribed to" "$BRIDGE_LOG" || fail "bridge did not start (see $BRIDGE_LOG)"

reloads() { grep -c "configuration reloaded\|reload failed" "$BRIDGE_LOG" || true; }
reloads_gt() { test "$(reloads)" -gt "$1"; }
# SIGHUP, wait for the reload's line; prints the lines the reload logged about keys.
hup()
{
	local before lines
	before=$(reloads)
	lines=$(wc -l <"$BRIDGE_LOG")
	kill -HUP "$BRIDGE_PID"
	wait_until 10 reloads_gt "$before" || fail "no reload line after SIGHUP"
	tail -n +"$((lines + 1))" "$BRIDGE_LOG" | grep -o 'reload[^"]*' | grep -E "changed: (applied|restart required)|reload failed" || true
}

wrong=()
for key in $(printf '%s\n' "${!KEYS[@]}" | sort); do
	IFS='|' read -r running changed class <<<"${KEYS[$key]}"
	VALUE[$key]=$changed
	write_conf
	got=$(hup)
	case $class in
	applied) want="reload: $key changed: applied" ;;
	restart) want="changed: restart required ($key;" ;;
	esac
	if [ "$(grep -c . <<<"$got")" != 1 ] || ! grep -qF "$want" <<<"$got"; then
		wrong+=("$key (want $class; logged: ${got:-nothing})")
	fi
	VALUE[$key]=$running
	write_conf
	got=$(hup)
	if [ "$class" = restart ] && [ -n "$got" ]; then
		wrong+=("$key set back (want no line; logged: $got)")
	fi
done
if ((${#wrong[@]} > 0)); then
	printf '  %s\n' "${wrong[@]}" >&2
	fail "${#wrong[@]} key(s) not reported as expected after SIGHUP"
fi
echo "ok: each of the ${#KEYS[@]} keys, changed alone under SIGHUP, is reported applied or restart required, and only it"

bridge_stop
assert_eq 0 "$BRIDGE_RC" "clean exit after $((2 * ${#KEYS[@]})) reloads"
echo "PASS it_reload"
