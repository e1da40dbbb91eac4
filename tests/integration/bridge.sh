# shellcheck shell=bash
# tests/integration/bridge.sh - helpers to run mqtt2pg itself inside the harness (source after lib.sh).
#
#	db_prepare                 # migrate as the owner, give the writer a password
#	bridge_config FILE [LINES] # a config for the private broker/database (+ extra libconfig lines)
#	bridge_start FILE          # run the bridge in the background ($BRIDGE_PID, log $IT_DIR/bridge.N.log)
#	bridge_stop [SIGNAL]       # SIGTERM by default; waits, exit code in $BRIDGE_RC (call it directly,
#	                           # not in $(...): only the shell that started the bridge can wait for it)
#	publish TOPIC PAYLOAD      # one QoS 1 message
#
# $MQTT2PG_BIN is the binary under test (ctest sets it); default: build/mqtt2pg.

MQTT2PG_BIN=${MQTT2PG_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/mqtt2pg}
WRITER_PASSWORD=writer-secret
BRIDGE_RUNS=0

# mqtt2pg as the owner (admin commands, migrate). The conninfo holds a password, so it goes through the
# environment, not argv (--db would show it to other users until mqtt2pg scrubs it, and warns).
m2p_admin()
{
	MQTT2PG_ADMIN_CONNINFO=$OWNER_DB "$MQTT2PG_BIN" "$@"
}

db_prepare()
{
	# shellcheck disable=SC2046 # no argument, or exactly one
	m2p_admin migrate $( [[ "${IT_TIMESCALEDB:-0}" == 1 ]] && echo --timescaledb) >"$IT_DIR/migrate.log" 2>&1 || { cat "$IT_DIR/migrate.log" >&2; fail "migrate failed"; }
	psql_super "ALTER ROLE mqtt2pg_writer PASSWORD '$WRITER_PASSWORD'" \
		"ALTER ROLE mqtt2pg_reader PASSWORD 'reader-secret'"
	WRITER_DB="host=127.0.0.1 port=$PGPORT dbname=mqtt2pg user=mqtt2pg_writer password=$WRITER_PASSWORD"
	READER_DB="host=127.0.0.1 port=$PGPORT dbname=mqtt2pg user=mqtt2pg_reader password=reader-secret"
	export WRITER_DB READER_DB
}

# seed_two_tenants: the isolation tests' two tenants, acme and globex, each with one device (INV-A, INV-B) of
# one point p. Sets A and B (tenant ids), DA and DB (device ids), PA and PB (point ids).
seed_two_tenants()
{
	m2p_admin tenant add acme >/dev/null
	m2p_admin tenant add globex >/dev/null
	m2p_admin device add INV-A --tenant acme --point p >/dev/null
	m2p_admin device add INV-B --tenant globex --point p >/dev/null
	A=$(psql_super "SELECT id FROM tenants WHERE slug = 'acme'")
	B=$(psql_super "SELECT id FROM tenants WHERE slug = 'globex'")
	DA=$(psql_super "SELECT id FROM devices WHERE serial = 'INV-A'")
	DB=$(psql_super "SELECT id FROM devices WHERE serial = 'INV-B'")
	PA=$(psql_super "SELECT id FROM points WHERE device_id = $DA")
	PB=$(psql_super "SELECT id FROM points WHERE device_id = $DB")
	export A B DA DB PA PB
}

# bridge_config FILE [EXTRA LINES...]: extra lines are appended at top level (libconfig allows a group
# only once, so tests that change a group pass the whole group). $BRIDGE_MQTT_EXTRA is added inside mqtt,
# $BRIDGE_DB_EXTRA inside database;
# $BRIDGE_CLIENT_ID replaces the client id (mqtt2pg-$IT_NAME) for a second bridge. The spool lives in
# $IT_DIR/spool.<client id> unless $BRIDGE_SPOOL replaces the whole spool group.
bridge_config()
{
	local file=$1
	shift
	{
		echo "mqtt = { uri = \"$MQTT_URI\"; client_id = \"${BRIDGE_CLIENT_ID:-mqtt2pg-$IT_NAME}\"; keepalive = 30; ${BRIDGE_MQTT_EXTRA:-} };"
		echo "database = { conninfo = \"host=127.0.0.1 port=$PGPORT dbname=mqtt2pg user=mqtt2pg_writer\";"
		echo "  writers = 2; flush_interval_ms = 50; ${BRIDGE_DB_EXTRA:-} };"
		echo "log = { level = \"info\"; };"
		if [ -n "${BRIDGE_SPOOL:-}" ]; then
			echo "$BRIDGE_SPOOL"
		else
			echo "spool = { directory = \"$IT_DIR/spool.${BRIDGE_CLIENT_ID:-mqtt2pg-$IT_NAME}\"; };"
		fi
		echo "stats_interval = 1;"
		# Each bridge its own HTTP port, unless the test configures http itself.
		case " $* " in
		*"http = "*) ;;
		*) echo "http = { listen = \"127.0.0.1\"; port = $(free_port); };" ;;
		esac
		printf '%s\n' "$@"
	} >"$file"
}

# bridge_start CONF [READY_PATTERN [SECONDS]]: start the bridge on CONF and wait (20 s) until its log says
# "subscribed to", or READY_PATTERN within SECONDS.
bridge_start()
{
	local ready=${2:-subscribed to} seconds=${3:-20}
	BRIDGE_RUNS=$((BRIDGE_RUNS + 1))
	BRIDGE_LOG=$IT_DIR/bridge.$BRIDGE_RUNS.log
	MQTT2PG_DB_PASSWORD=$WRITER_PASSWORD "$MQTT2PG_BIN" -c "$1" run >"$BRIDGE_LOG" 2>&1 &
	BRIDGE_PID=$!
	it_track_pid "$BRIDGE_PID"
	it_track_log "$BRIDGE_LOG"
	wait_until "$seconds" grep -q "$ready" "$BRIDGE_LOG" || fail "bridge log never said '$ready' (see $BRIDGE_LOG)"
}

# Stops the bridge with SIGNAL (TERM); its exit code lands in BRIDGE_RC.
bridge_stop()
{
	local sig=${1:-TERM}
	BRIDGE_RC=0
	kill "-$sig" "$BRIDGE_PID"
	wait "$BRIDGE_PID" || BRIDGE_RC=$?
	it_untrack_pid "$BRIDGE_PID"
	bridge_check_sanitizers
}

# Fails the test if the bridge's log holds an AddressSanitizer/LeakSanitizer/UBSan report.
bridge_check_sanitizers()
{
	if grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$BRIDGE_LOG"; then
		grep -E -A30 "ERROR: (Address|Leak)Sanitizer|runtime error:" "$BRIDGE_LOG" | head -60 >&2
		fail "sanitizer report in $BRIDGE_LOG"
	fi
}

publish()
{
	mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t "$1" -m "$2"
}

# publish_file TOPIC FILE: the file's bytes as one message (for payloads the shell cannot quote).
publish_file()
{
	mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t "$1" -f "$2"
}

# publish_lines TOPIC FILE: one message per line (at most 60000 lines: mosquitto_pub -l stops at 65535).
publish_lines()
{
	mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 --nodelay -M 200 -t "$1" -l <"$2"
}

# rows WHERE: measurement rows visible to the superuser (no RLS) matching WHERE.
rows()
{
	psql_super "SELECT count(*) FROM measurements WHERE ${1:-true}"
}

rejected()
{
	psql_super "SELECT count(*) FROM rejected_messages WHERE ${1:-true}"
}

# rows_ge N [WHERE] / rejected_ge N [WHERE]: for wait_until, which re-runs its command each poll.
rows_ge()
{
	test "$(rows "${2:-true}")" -ge "$1"
}

rejected_ge()
{
	test "$(rejected "${2:-true}")" -ge "$1"
}

# seconds since the epoch with microseconds, for measuring without external tools
now_s()
{
	echo "$EPOCHREALTIME"
}

# aggregate_mismatches: every measurements_5m row checked against a reference computed from the raw rows, the
# bucket definition written independently of recompute_buckets() (correlated subqueries instead of window
# functions), with the counter rules of sql/014 (README "Aggregates"): a counter reading below the largest of
# the 5 minutes before it is skipped when within the point's tolerance of it or when a reading of the 5
# minutes after it is >= it again; increase over consecutive kept readings at most 5 minutes apart, a fall
# beyond the tolerance a reset counted from 0, capped by max_rate. Prints "DIFFERING|ROWS": buckets that
# disagree, are missing or are extra, and the aggregate rows.
aggregate_mismatches()
{
	psql_super "SET jit = off" "
	CREATE TEMP TABLE ref_counter AS
	SELECT c.*, c.rmax IS NOT NULL AND c.value < c.rmax
	            AND (c.value >= c.rmax - c.tol OR coalesce(c.amax >= c.rmax, false)) AS skipped
	  FROM (SELECT m.device_id, m.point_id, m.time, m.value, p.counter_tolerance AS tol, p.max_rate,
	               (SELECT max(x.value) FROM measurements x WHERE x.device_id = m.device_id AND x.point_id = m.point_id
	                   AND x.time >= m.time - interval '5 minutes' AND x.time < m.time) AS rmax,
	               (SELECT max(x.value) FROM measurements x WHERE x.device_id = m.device_id AND x.point_id = m.point_id
	                   AND x.time > m.time AND x.time <= m.time + interval '5 minutes') AS amax
	          FROM measurements m JOIN points p ON p.id = m.point_id WHERE p.kind <> 'gauge') c" \
	"CREATE INDEX ON ref_counter (device_id, point_id, time) WHERE NOT skipped" \
	"CREATE TEMP TABLE ref_increase AS
	SELECT k.device_id, k.point_id, date_bin('5 minutes', k.time, timestamptz 'epoch') AS bucket,
	       sum(CASE WHEN k.pt IS NULL OR k.time - k.pt > interval '5 minutes' THEN 0
	                ELSE least(CASE WHEN k.value >= k.pv THEN k.value - k.pv WHEN k.value >= k.pv - k.tol THEN 0
	                                ELSE greatest(k.value, 0) END,
	                           coalesce(k.max_rate * extract(epoch FROM k.time - k.pt) / 3600, 'Infinity')) END) AS increase
	  FROM (SELECT c.*, (SELECT y.value FROM ref_counter y WHERE NOT y.skipped AND y.device_id = c.device_id
	                        AND y.point_id = c.point_id AND y.time = c.pt) AS pv
	          FROM (SELECT r.*, (SELECT max(y.time) FROM ref_counter y WHERE NOT y.skipped AND y.device_id = r.device_id
	                                AND y.point_id = r.point_id AND y.time < r.time) AS pt
	                  FROM ref_counter r WHERE NOT r.skipped) c) k
	 GROUP BY 1, 2, 3" "
	WITH r AS (
	  SELECT m.device_id, m.point_id, m.time, m.value, p.kind,
	         date_bin('5 minutes', m.time, timestamptz 'epoch') AS bucket,
	         (SELECT max(m2.time) FROM measurements m2 WHERE m2.device_id = m.device_id
	             AND m2.point_id = m.point_id AND m2.time < m.time) AS pt
	    FROM measurements m JOIN points p ON p.id = m.point_id),
	r2 AS (
	  SELECT r.*, (SELECT m3.value FROM measurements m3 WHERE m3.device_id = r.device_id
	                  AND m3.point_id = r.point_id AND m3.time = r.pt) AS pv,
	         r.pt IS NOT NULL AND r.time - r.pt <= interval '5 minutes' AS paired
	    FROM r),
	ref AS (
	  SELECT device_id, point_id, bucket, kind <> 'gauge' AS counting, count(*) AS count, avg(value) AS avg,
	         min(value) AS min, max(value) AS max, min(time) AS first_time, max(time) AS last_time, sum(value) AS sum,
	         sum(CASE WHEN paired THEN (value + pv) / 2 * extract(epoch FROM time - pt) / 3600 ELSE 0 END) AS integral,
	         CASE WHEN kind <> 'gauge' THEN coalesce((SELECT i.increase FROM ref_increase i WHERE i.device_id = r2.device_id
	              AND i.point_id = r2.point_id AND i.bucket = r2.bucket), 0) END AS increase
	    FROM r2 GROUP BY device_id, point_id, bucket, kind)
	SELECT count(*) || '|' || (SELECT count(*) FROM measurements_5m)
	  FROM ref FULL JOIN measurements_5m a USING (device_id, point_id, bucket)
	 WHERE ref.device_id IS NULL OR a.device_id IS NULL
	    OR ref.count <> a.count OR ref.first_time <> a.first_time OR ref.last_time <> a.last_time
	    OR a.first_value <> (SELECT value FROM measurements x WHERE x.device_id = a.device_id
	                            AND x.point_id = a.point_id AND x.time = ref.first_time)
	    OR a.last_value <> (SELECT value FROM measurements x WHERE x.device_id = a.device_id
	                           AND x.point_id = a.point_id AND x.time = ref.last_time)
	    OR abs(ref.avg - a.avg) > 1e-9 * greatest(1, abs(ref.avg))
	    OR ref.min <> a.min OR ref.max <> a.max
	    OR abs(ref.sum - a.sum) > 1e-9 * greatest(1, abs(ref.sum))
	    OR abs(ref.integral - a.integral) > 1e-9 * greatest(1, abs(ref.integral))
	    OR ref.counting <> (a.increase IS NOT NULL)
	    OR (ref.counting AND abs(ref.increase - a.increase) > 1e-9 * greatest(1, abs(ref.increase)))
	    OR a.tenant_id <> (SELECT tenant_id FROM devices WHERE id = a.device_id)"
}
