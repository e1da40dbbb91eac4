#!/usr/bin/env bash
# it_faults.sh - nothing acknowledged is ever lost. Each scenario publishes a known set of QoS 1 messages
# (10 devices; each message one reading with a distinct time and value = its index) while something
# fails, and then asserts the exact row set in PostgreSQL: per device the count, the sum of values and the
# time range (so nothing missing, nothing extra) and count = count(DISTINCT (device, point, time)):
#   1. PostgreSQL stopped (fast shutdown) mid-stream, started again;
#   2. PostgreSQL backends killed (pg_terminate_backend) repeatedly during a run;
#   3. Mosquitto restarted mid-stream (persistent session, QoS 1 publishers);
#   4. the bridge SIGKILLed mid-stream and restarted on the same spool directory;
#   5. the spool filling up while the database is down: back-pressure, a clear log line, no loss;
#   6. a torn last spool record (the file truncated) is detected at start-up, reported, the rest recovered;
#   7. SIGTERM under load drains cleanly within the configured shutdown_timeout.
# Prints one summary line per scenario: messages sent, rows expected, found, duplicates, recovery time.
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
. "$here/lib.sh"
. "$here/bridge.sh"

it_setup faults
pg_start
mosq_start "autosave_interval 1"
db_prepare
m2p_admin tenant add acme >/dev/null
DEVICES=10
for ((d = 0; d < DEVICES; d++)); do m2p_admin device add "F-$d" --tenant acme --point p:W >/dev/null; done
base=$(($(date -u +%s) - 2 * 86400))
SUMMARY=$IT_DIR/summary.txt
: >"$SUMMARY"

conf=$IT_DIR/bridge.conf
make_conf()
{
	BRIDGE_DB_EXTRA="reconnect_max_ms = 1000;" bridge_config "$conf" "$@"
}

# gen SCENARIO PER_DEVICE: one file of messages per device; scenario s uses its own hour of time.
gen()
{
	local s=$1 n=$2 d
	for ((d = 0; d < DEVICES; d++)); do
		awk -v n="$n" -v t0=$((base + s * 3600)) -v s="$s" 'BEGIN {
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
		publish_lines "solar/acme/F-$d/telemetry" "$IT_DIR/slice.jsonl"
	done
}

window() { echo "time >= to_timestamp($((base + $1 * 3600))) AND time < to_timestamp($((base + $1 * 3600 + 3000)))"; }

# check SCENARIO PER_DEVICE NAME RECOVERY_S: the exact row set of the scenario.
check()
{
	local s=$1 n=$2 name=$3 recovery=$4 w found distinct bad
	w=$(window "$s")
	found=$(rows "$w")
	distinct=$(psql_super "SELECT count(DISTINCT (device_id, point_id, time)) FROM measurements WHERE $w")
	bad=$(psql_super "SELECT count(*) FROM (SELECT d.serial, count(m.value) AS c, coalesce(sum(m.value), 0) AS s,
		min(m.value) AS lo, max(m.value) AS hi FROM devices d LEFT JOIN measurements m ON m.device_id = d.id AND $w
		WHERE d.serial LIKE 'F-%' GROUP BY d.serial) x
		WHERE c <> $n OR s <> $((n * (n - 1) / 2)) OR lo <> 0 OR hi <> $((n - 1))")
	echo "scenario $s ($name): sent $((n * DEVICES)) messages, expected $((n * DEVICES)) rows, found $found," \
		"duplicates $((found - distinct)), recovery ${recovery}s" | tee -a "$SUMMARY"
	assert_eq "$((n * DEVICES))|$((n * DEVICES))|0" "$found|$distinct|$bad" "scenario $s: exact row set, nothing doubled"
}

scenario_rows_ge() { rows_ge "$2" "$(window "$1")"; }
elapsed_since() { awk -v a="$1" -v b="$(now_s)" 'BEGIN { printf "%.1f", b - a }'; }

# --- 1. PostgreSQL stopped mid-stream ------------------------------------------------------------------
N=2000
make_conf
bridge_start "$conf"
gen 1 $N
publish_scenario 1 &
pub=$!; it_track_pid $pub
wait_until 30 scenario_rows_ge 1 1000 || fail "scenario 1 did not start"
pg_stop fast
sleep 3
wait $pub; it_untrack_pid $pub          # the whole stream went into the spool meanwhile
pg_start_again
t0=$(now_s)
wait_until 120 scenario_rows_ge 1 $((N * DEVICES)) || fail "scenario 1: $(rows "$(window 1)") rows"
check 1 $N "PostgreSQL stopped mid-stream" "$(elapsed_since "$t0")"

# --- 2. backends killed repeatedly ------------------------------------------------------------------
gen 2 $N
publish_scenario 2 &
pub=$!; it_track_pid $pub
t0=$(now_s)
kills=0
for ((k = 0; k < 15; k++)); do
	sleep 0.4
	kills=$((kills + $(psql_super "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = 'mqtt2pg_writer'")))
done
wait $pub; it_untrack_pid $pub
wait_until 120 scenario_rows_ge 2 $((N * DEVICES)) || fail "scenario 2: $(rows "$(window 2)") rows"
it_log "scenario 2: $kills backends terminated"
check 2 $N "$kills backends terminated during the run" "$(elapsed_since "$t0")"

# --- 3. Mosquitto restarted mid-stream ----------------------------------------------------------------
gen 3 $N
publish_scenario 3 1 $((N / 2))
mosq_stop
mosq_start_again
t0=$(now_s)
publish_scenario 3 $((N / 2 + 1)) $N
wait_until 120 scenario_rows_ge 3 $((N * DEVICES)) || fail "scenario 3: $(rows "$(window 3)") rows"
check 3 $N "Mosquitto restarted mid-stream" "$(elapsed_since "$t0")"

# --- 4. the bridge SIGKILLed mid-stream ---------------------------------------------------------------
gen 4 $N
publish_scenario 4 &
pub=$!; it_track_pid $pub
wait_until 30 scenario_rows_ge 4 2000 || fail "scenario 4 did not start"
kill -KILL "$BRIDGE_PID"; wait "$BRIDGE_PID" 2>/dev/null || true; it_untrack_pid "$BRIDGE_PID"
wait $pub; it_untrack_pid $pub          # the rest waits in the broker's persistent session
bridge_start "$conf"
t0=$(now_s)
grep -q "record(s) to replay" "$BRIDGE_LOG" || fail "no recovery line"
it_log "scenario 4: $(grep -o '[0-9]* record(s) to replay' "$BRIDGE_LOG")"
wait_until 120 scenario_rows_ge 4 $((N * DEVICES)) || fail "scenario 4: $(rows "$(window 4)") rows"
check 4 $N "bridge SIGKILLed mid-stream, restarted on its spool" "$(elapsed_since "$t0")"
bridge_stop
assert_eq 0 "$BRIDGE_RC" "scenario 4: clean exit"

# --- 5. the spool fills up while the database is down -----------------------------------------------
BRIDGE_SPOOL='spool = { directory = "'"$IT_DIR"'/spool.small"; max_bytes = 1048576; segment_bytes = 65536; };' make_conf
bridge_start "$conf"
pg_stop fast
gen 5 $N                                   # 20,000 messages x ~80 bytes: about twice the spool
publish_scenario 5 &
pub=$!; it_track_pid $pub
wait_until 60 grep -q "spool full" "$BRIDGE_LOG" || fail "no 'spool full' line"
it_log "scenario 5: $(grep -m1 -o 'spool full.*' "$BRIDGE_LOG")"
sleep 2
pg_start_again
t0=$(now_s)
wait $pub; it_untrack_pid $pub
wait_until 180 scenario_rows_ge 5 $((N * DEVICES)) || fail "scenario 5: $(rows "$(window 5)") rows"
check 5 $N "spool full (1 MiB) while PostgreSQL was down" "$(elapsed_since "$t0")"
du_kb=$(du -sk "$IT_DIR/spool.small" | cut -f1)
test "$du_kb" -le 1200 || fail "spool grew past its limit: ${du_kb} KiB"
echo "ok: the spool stayed within its limit (${du_kb} KiB on disk)"
bridge_stop

# --- 6. a torn last record ---------------------------------------------------------------------------
make_conf
bridge_start "$conf"
pg_stop fast
gen 6 100
publish_scenario 6
spool_dir=$IT_DIR/spool.mqtt2pg-faults
metric_backlog() { curl -s "http://127.0.0.1:$(grep -o 'port = [0-9]*' "$conf" | tail -1 | cut -d' ' -f3)/metrics" | awk '$1 == "mqtt2pg_spool_backlog" { print $2 }'; }
backlog_is() { test "$(metric_backlog)" = "$1"; }
wait_until 30 backlog_is 1000 || fail "spool backlog $(metric_backlog), expected 1000"
kill -KILL "$BRIDGE_PID"; wait "$BRIDGE_PID" 2>/dev/null || true; it_untrack_pid "$BRIDGE_PID"
last=$(ls "$spool_dir"/*.seg | sort | tail -1)
size=$(stat -c %s "$last")
truncate -s $((size - 7)) "$last"     # the last record loses its tail, as a crash mid-write would leave it
pg_start_again
bridge_start "$conf"
t0=$(now_s)
grep -q "torn or corrupt record" "$BRIDGE_LOG" || fail "torn record not reported"
it_log "scenario 6: $(grep -o 'segment .*torn or corrupt record at offset [0-9]*' "$BRIDGE_LOG")"
wait_until 60 rows_ge 999 "$(window 6)" || fail "scenario 6: $(rows "$(window 6)") rows"
sleep 1
found=$(rows "$(window 6)")
# The torn record is the last one appended: device F-9's message 99. Everything else is there.
assert_eq "999|0" "$found|$(psql_super "SELECT count(*) FROM measurements m JOIN devices d ON d.id = m.device_id
	WHERE $(window 6) AND d.serial = 'F-9' AND m.value = 99")" "scenario 6: 999 of 1000 recovered, only the torn record missing"
echo "scenario 6 (torn last spool record): sent 1000 messages, expected 999 rows (one record torn on disk), found $found, duplicates 0, recovery $(elapsed_since "$t0")s" | tee -a "$SUMMARY"

# --- 7. SIGTERM under load drains within shutdown_timeout ------------------------------------------
make_conf 'shutdown_timeout = 30;'
bridge_stop
bridge_start "$conf"
gen 7 $N
publish_scenario 7 &
pub=$!; it_track_pid $pub
wait_until 30 scenario_rows_ge 7 3000 || fail "scenario 7 did not start"
t0=$(now_s)
bridge_stop TERM
drain_s=$(elapsed_since "$t0")
assert_eq 0 "$BRIDGE_RC" "scenario 7: SIGTERM under load exits 0 (drained in ${drain_s}s, limit 30s)"
grep -q "drained; exiting" "$BRIDGE_LOG" || fail "no drain line"
wait $pub; it_untrack_pid $pub
bridge_start "$conf"
wait_until 120 scenario_rows_ge 7 $((N * DEVICES)) || fail "scenario 7: $(rows "$(window 7)") rows"
check 7 $N "SIGTERM under load (drained in ${drain_s}s), restarted" "$(elapsed_since "$t0")"
bridge_stop
assert_eq 0 "$BRIDGE_RC" "clean exit"
echo "--- summary"
cat "$SUMMARY"
echo "PASS it_faults"
