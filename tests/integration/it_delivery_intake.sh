#!/usr/bin/env bash
# it_delivery_intake.sh - the intake half of "nothing acknowledged is lost" (issue 13): what happens between
# the broker and the spool when the spool cannot take a message. Paho 1.3 sends the QoS 1 PUBACK when our
# callback returns (and acknowledges ahead, from its own memory, once a callback has returned 0), so the
# callback must block until the message is durable. Each scenario counts: messages the publisher had
# acknowledged by the broker, PUBACKs the broker received from the bridge (its log), distinct messages in
# PostgreSQL (4 readings each, tests/bench/pub.c's shape), lost = published - distinct, duplicates = rows
# absorbed by the primary key (mqtt2pg_rows_duplicate_total) and doubled rows (must be 0).
#   1. spool on a 2 MiB tmpfs (ENOSPC), the table locked for 45 s, 40,000 messages, then SIGTERM + restart;
#      the log says "cannot append" once, not per message; keepalive 10 s, so the block costs a reconnect;
#   2. the spool directory deleted while records are pending, then SIGKILL and restart;
#   3. the spool's disk turns read-only (ext4, errors=remount-ro), SIGTERM while intake is blocked, restart;
#   4. restart with pending spool after restarts without traffic (an empty segment's name reused);
#   5. SIGKILL storm: STORM_KILLS (20) kills at random moments while publishing, spool small and the table
#      locked part of the time, restart each time;
#   6. spool.max_bytes < 2 x spool.segment_bytes is refused by check-config and by run;
#   7. spool full: spool_state / intake_blocked metrics, one log line per state change.
# IT_SCENARIOS="1 5" runs a subset. The long storm: STORM_KILLS=60 STORM_PER_DEVICE=10000 IT_SCENARIOS=5.
# Scenarios 1 and 3 mount a tmpfs or a loop device (root); where that is impossible they are skipped, saying so.
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
. "$here/lib.sh"
. "$here/bridge.sh"

SCENARIOS=${IT_SCENARIOS:-1 2 3 4 5 6 7}
STORM_KILLS=${STORM_KILLS:-20}
STORM_PER_DEVICE=${STORM_PER_DEVICE:-400}
TENANTS=2
DEVICES=50

it_setup delivery_intake
MOUNTS=()
# Unmount our tmpfs mounts before lib.sh's cleanup removes $IT_DIR.
# it_cleanup takes the test's status from $?: hand it on.
unmount_all() { local m; for m in "${MOUNTS[@]}"; do umount -l "$m" 2>/dev/null || true; done; }
trap 'rc=$?; set +e; unmount_all; (exit $rc); it_cleanup' EXIT  # set +e: (exit 1) must not end the trap

wants() { [[ " $SCENARIOS " == *" $1 "* ]]; }

# --- the publisher: tests/bench/pub.c on Paho MQTTAsync, built into the test directory -----------------
if [[ -n "${MQTT2PG_PUB:-}" ]]; then
	PUB=$MQTT2PG_PUB
else
	if ! { cmake -S "$here/../bench" -B "$IT_DIR/tools" -DCMAKE_BUILD_TYPE=Release &&
		cmake --build "$IT_DIR/tools" --target pub -j2; } >"$IT_DIR/tools-build.log" 2>&1; then
		tail -20 "$IT_DIR/tools-build.log" >&2
		fail "cannot build tests/bench/pub.c (set MQTT2PG_PUB to a built pub)"
	fi
	PUB=$IT_DIR/tools/pub
fi

pg_start
mosq_start
db_prepare
psql_super \
	"INSERT INTO tenants (slug, name) SELECT 't' || k, 'tenant ' || k FROM generate_series(1, $TENANTS) k" \
	"INSERT INTO devices (tenant_id, serial, model)
	 SELECT tn.id, 'B-' || (j % $TENANTS + 1) || '-' || lpad((j / $TENANTS)::text, 4, '0'), 'SUN-10K'
	   FROM generate_series(0, $DEVICES - 1) j JOIN tenants tn ON tn.slug = 't' || (j % $TENANTS + 1)" \
	"INSERT INTO points (device_id, name, unit, min_value, max_value, kind)
	 SELECT d.id, p.name, p.unit, p.lo, p.hi, p.kind FROM devices d CROSS JOIN (VALUES
	   ('total_output_power', 'W', 0, 12000, 'gauge'), ('grid_voltage', 'V', 180, 260, 'gauge'),
	   ('grid_frequency', 'Hz', 45, 55, 'gauge'), ('daily_energy', 'kWh', 0, 200, 'counter')) p(name, unit, lo, hi, kind)" \
	"SELECT ensure_partitions(now() - interval '1 day', now() + interval '2 days')" >/dev/null

CLIENT=mqtt2pg-$IT_NAME
SUMMARY=$IT_DIR/summary.txt
printf 'scenario\tpublished\tbroker_pubacks\tmessages_in_db\tlost\tduplicates_absorbed\tdoubled_rows\trecovery_s\tpeak_rss_kb\n' >"$SUMMARY"
conf=$IT_DIR/bridge.conf

http_port() { grep -o 'port = [0-9]*' "$conf" | tail -1 | cut -d' ' -f3; }
metric() { metric_at "$(http_port)" "$1"; }
metric_is() { test "$(metric "$1")" = "$2"; }
metric_ge() { local v; v=$(metric "$1"); test -n "$v" && test "${v%.*}" -ge "$2"; }
messages_in_db() { psql_super "SELECT count(DISTINCT (device_id, time)) FROM measurements"; }
messages_ge() { test "$(messages_in_db)" -ge "$1"; }
pubacks_since() { tail -n +"$(($1 + 1))" "$MOSQ_LOG" | grep -c "Received PUBACK from $CLIENT " || true; }
log_lines() { wc -l <"$MOSQ_LOG"; }
elapsed_since() { awk -v a="$1" -v b="$(now_s)" 'BEGIN { printf "%.1f", b - a }'; }
peak_rss() { awk '/VmHWM/ { print $2 }' "/proc/$BRIDGE_PID/status" 2>/dev/null || echo -; }

# The table lock that stands for "the database cannot take rows": held by a psql session until released.
LOCK_PID=
lock_table()
{
	PGAPPNAME=it_lock psql -X -q -d "$SUPER_DB" -c "BEGIN" -c "LOCK TABLE measurements IN ACCESS EXCLUSIVE MODE" \
		-c "SELECT pg_sleep(${1:-600})" -c "COMMIT" >/dev/null 2>&1 &
	LOCK_PID=$!
	it_track_pid "$LOCK_PID"
	wait_until 10 lock_held || fail "table lock not taken"
}
lock_held() { test "$(psql_super "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
	WHERE a.application_name = 'it_lock' AND l.mode = 'AccessExclusiveLock' AND l.granted")" -ge 1; }
unlock_table()
{
	[[ -n "$LOCK_PID" ]] || return 0
	psql_super "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'it_lock'" >/dev/null
	wait "$LOCK_PID" 2>/dev/null || true
	it_untrack_pid "$LOCK_PID"
	LOCK_PID=
}

# publish_bg N TAG [RATE]: N messages over the $DEVICES devices in the background ($PUB_PID); the line
# "pub: sent=... acked=..." lands in $IT_DIR/pub.TAG.out.
publish_bg()
{
	"$PUB" -u "$MQTT_URI" -n "$1" -m "$DEVICES" -t "$TENANTS" -q 1 -w 200 -r "${3:-0}" -c "it-pub-$2" --timeout 600 \
		>"$IT_DIR/pub.$2.out" 2>"$IT_DIR/pub.$2.err" &
	PUB_PID=$!
	it_track_pid "$PUB_PID"
}
publish_wait()
{
	wait "$PUB_PID" || { cat "$IT_DIR/pub.$1.err" >&2; fail "publisher $1 failed"; }
	it_untrack_pid "$PUB_PID"
	PUBLISHED=$(grep -o 'acked=[0-9]*' "$IT_DIR/pub.$1.out" | cut -d= -f2)
}

# fresh: an empty table and a new spool directory for the next scenario.
fresh()
{
	psql_super "TRUNCATE measurements" >/dev/null
	DUP0=0
}

# settle EXPECTED NAME LOG0 T0: waits (generously) for every published message, then records the line.
settle()
{
	local expected=$1 name=$2 log0=$3 t0=$4 found acks dup doubled
	wait_until 180 messages_ge "$expected" || true
	found=$(messages_in_db)
	acks=$(pubacks_since "$log0")
	dup=$(metric mqtt2pg_rows_duplicate_total)
	doubled=$(psql_super "SELECT count(*) - count(DISTINCT (device_id, point_id, time)) FROM measurements")
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$expected" "$acks" "$found" "$((expected - found))" \
		"${dup:-?}" "$doubled" "$(elapsed_since "$t0")" "$(peak_rss)" | tee -a "$SUMMARY"
	assert_eq "$expected|0" "$found|$doubled" "$name: every published message in the database once ($acks broker PUBACKs)"
}

mount_tmpfs()
{
	mkdir -p "$1"
	if ! mount -t tmpfs -o "size=$2" tmpfs "$1" 2>"$IT_DIR/mount.err"; then
		echo "SKIP: cannot mount a tmpfs here ($(cat "$IT_DIR/mount.err")): scenario needs root and CAP_SYS_ADMIN"
		return 1
	fi
	MOUNTS+=("$1")
}

# --- 1. ENOSPC on a 2 MiB tmpfs while the table is locked for 45 s ----------------------------------------
if wants 1 && mount_tmpfs "$IT_DIR/fs1" 2m; then
	fresh
	BRIDGE_SPOOL="spool = { directory = \"$IT_DIR/fs1/spool\"; segment_bytes = 262144; };" \
		BRIDGE_DB_EXTRA="enqueue_timeout_ms = 5000;" bridge_config "$conf"
	sed -i 's/keepalive = 30;/keepalive = 10;/' "$conf"   # the broker drops us after 15 s without a ping
	bridge_start "$conf"
	log0=$(log_lines)
	lock_table 45
	publish_bg 40000 s1
	wait_until 120 grep -q "cannot append" "$BRIDGE_LOG" || fail "scenario 1: the spool never ran out of space"
	it_log "scenario 1: $(grep -m1 -o 'cannot append.*' "$BRIDGE_LOG")"
	wait "$LOCK_PID" 2>/dev/null || true       # the 45 s lock ends by itself
	it_untrack_pid "$LOCK_PID"; LOCK_PID=
	publish_wait s1
	wait_until 180 metric_is mqtt2pg_spool_backlog 0 || true
	appends=$(grep -c "cannot append" "$BRIDGE_LOG" || true)
	# Paho sends PINGREQ from the thread our callback blocks: a block past 1.5 x keepalive costs a reconnect.
	it_log "scenario 1: intake blocked $(metric mqtt2pg_intake_blocked_seconds_total) s in $(metric mqtt2pg_intake_blocks_total) block(s); $(grep -c "connection to the broker lost" "$BRIDGE_LOG" || true) reconnect(s) (keepalive 10 s)"
	t0=$(now_s)
	bridge_stop TERM
	bridge_start "$conf"
	settle "$PUBLISHED" "1 ENOSPC 2MiB tmpfs, 45 s lock" "$log0" "$t0"
	test "$appends" -le 3 || fail "scenario 1: 'cannot append' logged $appends times (once per state change expected)"
	echo "ok: scenario 1: 'cannot append' logged $appends time(s)"
	bridge_stop
fi

# --- 2. the spool directory deleted while records are pending ----------------------------------------------
if wants 2; then
	fresh
	spool=$IT_DIR/spool.s2
	BRIDGE_SPOOL="spool = { directory = \"$spool\"; segment_bytes = 65536; };" bridge_config "$conf"
	bridge_start "$conf"
	log0=$(log_lines)
	lock_table
	publish_bg 2000 s2a
	publish_wait s2a
	total=$PUBLISHED
	wait_until 60 metric_ge mqtt2pg_spool_backlog 2000 || fail "scenario 2: backlog $(metric mqtt2pg_spool_backlog)"
	rm -rf "$spool"
	publish_bg 1000 s2b
	publish_wait s2b
	total=$((total + PUBLISHED))
	wait_until 30 metric_ge mqtt2pg_spool_backlog 3000 || true
	wait_until 30 grep -q "spool directory .* was removed" "$BRIDGE_LOG" || it_log "scenario 2: no recovery line"
	test -f "$spool/lock" && it_log "scenario 2: lock file is back" || it_log "scenario 2: no lock file"
	kill -KILL "$BRIDGE_PID"; wait "$BRIDGE_PID" 2>/dev/null || true; it_untrack_pid "$BRIDGE_PID"
	unlock_table
	t0=$(now_s)
	bridge_start "$conf"
	settle "$total" "2 spool directory deleted, SIGKILL" "$log0" "$t0"
	bridge_stop
fi

# --- 3. the spool's disk turns read-only: SIGTERM while intake is blocked ----------------------------------
# A remount read-only is refused while files are open for writing (the bridge holds its segments open), so
# the disk fails as a real one does: ext4 on a loop device with errors=remount-ro, and an error triggered
# through sysfs; every write then fails with EROFS. It comes back only by unmount, fsck and mount.
mount_ext4()
{
	mkdir -p "$1"
	truncate -s 32M "$IT_DIR/s3.img" && mkfs.ext4 -q -F "$IT_DIR/s3.img" ||
		{ echo "SKIP: scenario 3: cannot make an ext4 image"; return 1; }
	if ! mount -o loop,errors=remount-ro "$IT_DIR/s3.img" "$1" 2>"$IT_DIR/mount.err"; then
		echo "SKIP: scenario 3: cannot mount a loop device here ($(cat "$IT_DIR/mount.err"))"
		return 1
	fi
	MOUNTS+=("$1")
	EXT4_DEV=$(basename "$(findmnt -no SOURCE "$1")")
	[[ -w /sys/fs/ext4/$EXT4_DEV/trigger_fs_error ]] || { echo "SKIP: scenario 3: no ext4 trigger_fs_error"; return 1; }
}
if wants 3 && mount_ext4 "$IT_DIR/fs3"; then
	fresh
	BRIDGE_SPOOL="spool = { directory = \"$IT_DIR/fs3/spool\"; segment_bytes = 65536; };" \
		BRIDGE_DB_EXTRA="enqueue_timeout_ms = 500;" bridge_config "$conf" "shutdown_timeout = 20;"
	bridge_start "$conf"
	log0=$(log_lines)
	publish_bg 500 s3a
	publish_wait s3a
	total=$PUBLISHED
	echo 1 >"/sys/fs/ext4/$EXT4_DEV/trigger_fs_error"   # the disk turns read-only under the bridge
	publish_bg 1000 s3b
	publish_wait s3b
	total=$((total + PUBLISHED))
	wait_until 30 grep -q "cannot append" "$BRIDGE_LOG" || fail "scenario 3: no append failed on the read-only spool"
	sleep 2                                      # retries meanwhile: logged once, not per try
	appends=$(grep -c "cannot append" "$BRIDGE_LOG" || true)
	bridge_stop TERM
	it_log "scenario 3: SIGTERM while read-only: exit $BRIDGE_RC"
	umount "$IT_DIR/fs3"
	e2fsck -fy "$IT_DIR/s3.img" >"$IT_DIR/fsck.log" 2>&1 || true
	mount -o loop "$IT_DIR/s3.img" "$IT_DIR/fs3"
	t0=$(now_s)
	bridge_start "$conf"
	settle "$total" "3 spool disk read-only, SIGTERM" "$log0" "$t0"
	test "$appends" -le 3 || fail "scenario 3: 'cannot append' logged $appends times"
	echo "ok: scenario 3: 'cannot append' logged $appends time(s)"
	bridge_stop
fi

# --- 4. restart with pending spool, after restarts without traffic ----------------------------------------
if wants 4; then
	fresh
	# Default segments (16 MiB): everything stays in the segment the restarts left empty.
	BRIDGE_SPOOL="spool = { directory = \"$IT_DIR/spool.s4\"; };" bridge_config "$conf"
	bridge_start "$conf"; bridge_stop
	bridge_start "$conf"; bridge_stop          # the last segment is empty now: its name is the next sequence
	bridge_start "$conf"
	log0=$(log_lines)
	publish_bg 1000 s4a
	publish_wait s4a
	total=$PUBLISHED
	wait_until 60 messages_ge "$total" || fail "scenario 4: first batch not committed"
	sleep 1                                      # two ticks: the checkpoint moves and committed segments go
	lock_table
	publish_bg 1000 s4b
	publish_wait s4b
	total=$((total + PUBLISHED))
	wait_until 60 metric_ge mqtt2pg_spool_backlog 1000 || fail "scenario 4: backlog $(metric mqtt2pg_spool_backlog)"
	kill -KILL "$BRIDGE_PID"; wait "$BRIDGE_PID" 2>/dev/null || true; it_untrack_pid "$BRIDGE_PID"
	unlock_table
	t0=$(now_s)
	bridge_start "$conf"
	settle "$total" "4 restart with pending spool" "$log0" "$t0"
	bridge_stop
fi

# --- 5. SIGKILL storm -------------------------------------------------------------------------------------
# bridge_start waits for "subscribed to"; after a kill the broker sends the session's backlog before the
# SUBACK, and the receive thread takes it (or blocks on a full spool) first: wait for the connection.
storm_start() { bridge_start "$1" "mqtt: connected to" 60; }
if wants 5; then
	fresh
	BRIDGE_SPOOL="spool = { directory = \"$IT_DIR/spool.s5\"; max_bytes = 1048576; segment_bytes = 131072; };" \
		BRIDGE_DB_EXTRA="enqueue_timeout_ms = 100;" bridge_config "$conf"
	bridge_start "$conf"
	log0=$(log_lines)
	n=$((STORM_PER_DEVICE * DEVICES))
	publish_bg "$n" s5 $((n * 4 / (STORM_KILLS * 3)))  # spread over the storm: kills land mid-stream
	for ((k = 1; k <= STORM_KILLS; k++)); do
		if [[ -n "$LOCK_PID" ]] && ! _it_alive "$LOCK_PID"; then
			wait "$LOCK_PID" 2>/dev/null || true; it_untrack_pid "$LOCK_PID"; LOCK_PID=
		fi
		if ((k % 8 == 1)) && [[ -z "$LOCK_PID" ]]; then lock_table 10; fi  # the 1 MiB spool fills now and then
		sleep "0.$((RANDOM % 9 + 1))"
		kill -KILL "$BRIDGE_PID"; wait "$BRIDGE_PID" 2>/dev/null || true; it_untrack_pid "$BRIDGE_PID"
		bridge_check_sanitizers
		storm_start "$conf"
	done
	t0=$(now_s)
	unlock_table
	publish_wait s5
	it_log "scenario 5: $STORM_KILLS SIGKILLs while publishing; the spool was full in $(grep -l "spool full" "$IT_DIR"/bridge.*.log | wc -l) run(s), intake blocked in $(grep -l "intake blocked" "$IT_DIR"/bridge.*.log | wc -l)"
	settle "$PUBLISHED" "5 SIGKILL storm ($STORM_KILLS kills)" "$log0" "$t0"
	bridge_stop
fi

# --- 6. max_bytes < 2 x segment_bytes is refused -----------------------------------------------------------
if wants 6; then
	BRIDGE_SPOOL="spool = { directory = \"$IT_DIR/spool.s6\"; max_bytes = 1048576; segment_bytes = 1048576; };" \
		bridge_config "$conf"
	if "$MQTT2PG_BIN" -c "$conf" check-config >"$IT_DIR/s6.out" 2>&1; then
		fail "scenario 6: check-config accepts max_bytes = segment_bytes"
	fi
	grep -q "max_bytes" "$IT_DIR/s6.out" || fail "scenario 6: check-config does not name max_bytes: $(cat "$IT_DIR/s6.out")"
	echo "ok: scenario 6: check-config refuses it: $(grep -m1 max_bytes "$IT_DIR/s6.out")"
	rc=0
	timeout 20 env MQTT2PG_DB_PASSWORD=$WRITER_PASSWORD "$MQTT2PG_BIN" -c "$conf" run >"$IT_DIR/s6.run" 2>&1 || rc=$?
	test "$rc" -ne 0 -a "$rc" -ne 124 || fail "scenario 6: run starts with max_bytes = segment_bytes (exit $rc)"
	echo "ok: scenario 6: run refuses it (exit $rc)"
fi

# --- 7. spool full: metrics and one log line per state change ----------------------------------------------
if wants 7; then
	fresh
	BRIDGE_SPOOL="spool = { directory = \"$IT_DIR/spool.s7\"; max_bytes = 1048576; segment_bytes = 65536; };" \
		BRIDGE_DB_EXTRA="enqueue_timeout_ms = 100;" bridge_config "$conf"
	bridge_start "$conf"
	log0=$(log_lines)
	lock_table
	publish_bg 10000 s7
	wait_until 60 metric_is 'mqtt2pg_spool_state{state="full"}' 1 || fail "scenario 7: spool_state{state=\"full\"} is '$(metric 'mqtt2pg_spool_state{state="full"}')'"
	wait_until 30 metric_is mqtt2pg_intake_blocked 1 || fail "scenario 7: intake_blocked is '$(metric mqtt2pg_intake_blocked)'"
	sleep 3                                      # blocked for a while: many messages wait behind the one held
	full_lines=$(grep -c "spool full" "$BRIDGE_LOG" || true)
	blocked_lines=$(grep -c "intake blocked" "$BRIDGE_LOG" || true)
	unlock_table
	t0=$(now_s)
	publish_wait s7
	settle "$PUBLISHED" "7 spool full 1 MiB, table locked" "$log0" "$t0"
	wait_until 30 metric_is mqtt2pg_intake_blocked 0 || fail "scenario 7: still blocked"
	metric_is 'mqtt2pg_spool_state{state="ok"}' 1 || fail "scenario 7: spool_state ok is '$(metric 'mqtt2pg_spool_state{state="ok"}')'"
	metric_ge mqtt2pg_intake_blocks_total 1 || fail "scenario 7: intake_blocks_total '$(metric mqtt2pg_intake_blocks_total)'"
	secs=$(metric mqtt2pg_intake_blocked_seconds_total)
	awk -v s="$secs" 'BEGIN { exit !(s >= 3) }' || fail "scenario 7: intake_blocked_seconds_total $secs < 3"
	test "$full_lines" -le 2 -a "$blocked_lines" -le 2 ||
		fail "scenario 7: $full_lines 'spool full' and $blocked_lines 'intake blocked' lines while blocked (once per state change expected)"
	echo "ok: scenario 7: metrics follow the state; $full_lines 'spool full', $blocked_lines 'intake blocked' line(s); blocked ${secs}s"
	bridge_stop
fi

echo "--- summary"
column -t -s $'\t' "$SUMMARY" 2>/dev/null || cat "$SUMMARY"
echo "PASS it_delivery_intake"
