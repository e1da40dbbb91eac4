#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# shellcheck source-path=SCRIPTDIR
# tests/bench/run.sh - the mqtt2pg benchmark (issue 5). Starts a throw-away PostgreSQL 15 and Mosquitto on
# 127.0.0.1 (tests/integration/lib.sh), migrates, seeds the registry, builds the bridge in Release and the
# bench tools, then runs the scenarios R times each, interleaved (round 1: drain, live, paced, reference;
# round 2: ...), so machine noise falls on every scenario alike:
#
#   drain      N messages published into the bridge's persistent session while it is stopped, then the
#              bridge is started: time from its start to the commit of the last row.
#   live       the bridge running, the publisher at full speed: time from the first publish to the commit of
#              the last row.
#   paced      the publisher at --rate msgs/s for --duration s: publish-to-commit latency of every row
#              (pg_xact_commit_timestamp(xmin) - time, the publisher sets time = send time).
#   node-drain, node-live
#              drain and live for the Node.js baseline (tests/bench/node: mqtt.js + pg, the same SQL), on its
#              own topic tree and client id so neither bridge's session sees the other's messages. In the
#              default list when node and npm are installed (npm ci from the registry the first time).
#   reference  the database alone (tests/bench/dbref.c): the same rows inserted as mqtt2pg_writer under RLS,
#              per-tenant transactions, ~1000-row multi-row INSERT ... ON CONFLICT DO NOTHING, 1 and 2
#              connections: the limit the bridge is measured against (the "x ref" column).
#
# After every run the row set is checked against what was sent (exactly N*4 rows, no duplicates, every
# (device, point, time) present with its value and tenant, nothing rejected). Prints a markdown table and
# writes it with the raw per-run figures to the run directory. See tests/bench/README.md.
#
#   tests/bench/run.sh [options]     (as root, like the integration tests; everything on 127.0.0.1)
#   tests/bench/run.sh --quick       smoke run (< 90 s): exits 0 only if every row-set check passes
#
# The last line of the output is "P passed, F failed" (one check per run). $MQTT2PG_BIN, if set, is the
# bridge to measure (ctest passes its build); otherwise the bridge is built into build-bench/ in Release.
set -euo pipefail

ORIGINAL_ARGS=("$@")
BENCH_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_SRC/../.." && pwd)

usage()
{
	cat <<'EOF'
usage: tests/bench/run.sh [options]
  -n N                   messages per drain/live run (200000; 4 rows each)
  -m M                   publishing devices (1000)
  -t T                   tenants (10); device j is tenant j%T+1's device j/T, serial B-<tenant>-<dddd>
  -r R                   repeats of each scenario (3): median with min-max
  --rate R               paced scenario: messages/s (5000)
  --duration S           paced scenario: seconds (20)
  --scenarios LIST       comma-separated subset of drain,live,paced,reference,node-drain,node-live
                         (all; the node-* ones only when node and npm are installed; not with --quick)
  --reference LIST       reference variants MODE:CONNS, MODE values|copy|bridge-sql|direct-sql
                         (values:1,values:2,bridge-sql:2); the first values:2 (else the best) is "ref"
  --registry-devices D   register D devices (4 points each) instead of M, e.g. 100000 for the RSS target
  --writers W            database.writers (2)
  --batch-rows B         database.batch_rows (4000)
  --flush-ms F           database.flush_interval_ms (50)
  --spool MODE           spool.mode disk|memory (the bridge's default; directory in the run's temp dir)
  --aggregates           keep the aggregate job on (off by default: it is not ingest)
  --fast-db              PostgreSQL with fsync/synchronous_commit/full_page_writes off, as the integration
                         tests run it (default: durable, as users run it)
  --tuned-broker         Mosquitto with max_inflight_messages 0 (unlimited in-flight window); default:
                         Mosquitto's own default of 20 in-flight messages per client
  --durable              accepted for old command lines: durable is the default
  --qos Q                publisher QoS 0|1 (1)
  --publishers P         publisher processes (2), each its own client id and share of the devices
  --window W             max messages in flight per publisher (100)
  --pub-api API          client (Paho MQTTClient, default: cheaper per message) or async (MQTTAsync)
  --perf                 after the measured runs, one extra drain and live run under `perf record -a -g`;
                         reports in the run directory (not part of the table)
  --quick                smoke run: -n 5000 -m 100 -r 1 --rate 1000 --duration 3, reference values:1,values:2
  --out DIR              run directory (build-bench/runs/<date-time>)
  --keep                 keep the temporary PostgreSQL/Mosquitto directory (IT_KEEP=1)
EOF
}

# --- options -------------------------------------------------------------------------------------------

N=200000 M=1000 T=10 REPEATS=3 RATE=5000 DURATION=20
SCENARIOS=drain,live,paced,reference
command -v node >/dev/null && command -v npm >/dev/null && SCENARIOS+=,node-drain,node-live
REFERENCE=values:1,values:2,bridge-sql:2
REGISTRY_DEVICES=0 WRITERS=2 BATCH_ROWS=4000 FLUSH_MS=50 SPOOL_MODE='' AGGREGATES=0 DURABLE=1 TUNED_BROKER=0
NODE_BASELINE=0 QOS=1 PUBLISHERS=2 WINDOW=100 PUB_API=client PERF=0 OUT=
for arg in "$@"; do
	if [[ "$arg" == --quick ]]; then
		N=5000 M=100 REPEATS=1 RATE=1000 DURATION=3 REFERENCE=values:1,values:2 SCENARIOS=drain,live,paced,reference
	fi
done
while (($# > 0)); do
	case $1 in
	-n) N=$2; shift ;;
	-m) M=$2; shift ;;
	-t) T=$2; shift ;;
	-r) REPEATS=$2; shift ;;
	--rate) RATE=$2; shift ;;
	--duration) DURATION=$2; shift ;;
	--scenarios) SCENARIOS=$2; shift ;;
	--reference) REFERENCE=$2; shift ;;
	--registry-devices) REGISTRY_DEVICES=$2; shift ;;
	--writers) WRITERS=$2; shift ;;
	--batch-rows) BATCH_ROWS=$2; shift ;;
	--flush-ms) FLUSH_MS=$2; shift ;;
	--spool) SPOOL_MODE=$2; shift ;;
	--aggregates) AGGREGATES=1 ;;
	--durable) DURABLE=1 ;;
	--fast-db) DURABLE=0 ;;
	--tuned-broker) TUNED_BROKER=1 ;;
	--qos) QOS=$2; shift ;;
	--publishers) PUBLISHERS=$2; shift ;;
	--window) WINDOW=$2; shift ;;
	--pub-api) PUB_API=$2; shift ;;
	--perf) PERF=1 ;;
	--quick) ;;
	--out) OUT=$2; shift ;;
	--keep) export IT_KEEP=1 ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
	shift
done
for v in N M T REPEATS RATE DURATION REGISTRY_DEVICES WRITERS BATCH_ROWS FLUSH_MS QOS PUBLISHERS WINDOW; do
	[[ "${!v}" =~ ^[0-9]+$ ]] || { echo "run.sh: $v must be a non-negative integer, got '${!v}'" >&2; exit 2; }
done
((N > 0 && M > 0 && T > 0 && T <= M && REPEATS > 0 && RATE > 0 && DURATION > 0 && PUBLISHERS > 0)) ||
	{ echo "run.sh: -n, -m, -t, -r, --rate, --duration, --publishers must be > 0 and T <= M" >&2; exit 2; }
[[ "$PUB_API" == client || "$PUB_API" == async ]] || { echo "run.sh: --pub-api client|async" >&2; exit 2; }
[[ -z "$SPOOL_MODE" || "$SPOOL_MODE" == disk || "$SPOOL_MODE" == memory ]] ||
	{ echo "run.sh: --spool disk|memory" >&2; exit 2; }
IFS=, read -ra SCENARIO_LIST <<<"$SCENARIOS"
for s in "${SCENARIO_LIST[@]}"; do
	[[ "$s" =~ ^(drain|live|paced|reference|node-drain|node-live)$ ]] ||
		{ echo "run.sh: unknown scenario '$s'" >&2; exit 2; }
	[[ "$s" != node-* ]] || NODE_BASELINE=1
done
IFS=, read -ra REFERENCE_LIST <<<"$REFERENCE"
for s in "${REFERENCE_LIST[@]}"; do
	[[ "$s" =~ ^(values|copy|bridge-sql|direct-sql):[0-9]+$ ]] || { echo "run.sh: bad reference variant '$s'" >&2; exit 2; }
done
((REGISTRY_DEVICES >= M)) || REGISTRY_DEVICES=$M
PACED_N=$((RATE * DURATION))
ROWS_PER_MSG=4

OUT=${OUT:-$ROOT/build-bench/runs/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT/logs"
OUT=$(cd "$OUT" && pwd)
TSV=$OUT/runs.tsv
RESULTS=$OUT/results.md

say()
{
	printf '[%(%H:%M:%S)T bench] %s\n' -1 "$*" >&2
}

# --- build ---------------------------------------------------------------------------------------------

build()
{
	if [[ -n "${MQTT2PG_BIN:-}" ]]; then
		[[ -x "$MQTT2PG_BIN" ]] || { echo "run.sh: MQTT2PG_BIN=$MQTT2PG_BIN is not executable" >&2; exit 1; }
		say "bridge: $MQTT2PG_BIN (from \$MQTT2PG_BIN)"
	else
		say "building the bridge (Release) in build-bench/"
		if ! { cmake -S "$ROOT" -B "$ROOT/build-bench" -DCMAKE_BUILD_TYPE=Release -DMQTT2PG_TESTS=OFF &&
			cmake --build "$ROOT/build-bench" -j"$(nproc)"; } >"$OUT/logs/build-bridge.log" 2>&1; then
			tail -n 30 "$OUT/logs/build-bridge.log" >&2
			echo "run.sh: building the bridge failed" >&2
			exit 1
		fi
		MQTT2PG_BIN=$ROOT/build-bench/mqtt2pg
	fi
	export MQTT2PG_BIN
	say "building the bench tools in build-bench/tools"
	if ! { cmake -S "$BENCH_SRC" -B "$ROOT/build-bench/tools" -DCMAKE_BUILD_TYPE=Release &&
		cmake --build "$ROOT/build-bench/tools" -j"$(nproc)"; } >"$OUT/logs/build-tools.log" 2>&1; then
		tail -n 30 "$OUT/logs/build-tools.log" >&2
		echo "run.sh: building the bench tools failed" >&2
		exit 1
	fi
	TOOLS=$ROOT/build-bench/tools
	PUB=$TOOLS/pub
	[[ "$PUB_API" == client ]] && PUB=$TOOLS/pub-client
}

build

# shellcheck source=../integration/lib.sh
. "$BENCH_SRC/../integration/lib.sh"
# shellcheck source=../integration/bridge.sh
. "$BENCH_SRC/../integration/bridge.sh"

it_setup bench
# A benchmark runs for minutes on a machine other test runs share, and some of those clear
# /tmp/mqtt2pg-it.* before they start: keep this run's directory out of that pattern (lib.sh only ever
# uses $IT_DIR, so moving it right after it_setup is safe).
bench_tmp=$(mktemp -d /tmp/mqtt2pg-bench.XXXXXX)
chmod 755 "$bench_tmp"
mv "$IT_DIR/.it" "$bench_tmp/"
rmdir "$IT_DIR"
IT_DIR=$bench_tmp
export IT_DIR
it_log "test dir moved to $IT_DIR"
# Save the logs worth keeping into the run directory before lib.sh's cleanup removes $IT_DIR. If $IT_DIR
# vanished under us (someone cleaning /tmp), lib.sh cannot find what to stop: stop it here by pid.
BRIDGE_PID='' MOSQ_PID='' PG_POSTMASTER='' PERF_PID=
bench_exit()
{
	local rc=$?
	set +e
	cp -f "$IT_DIR"/bridge.*.log "$IT_DIR/mosquitto.log" "$IT_DIR/pg.log" "$OUT/logs/" 2>/dev/null
	if [[ ! -d "$IT_DIR/.it" ]]; then
		say "$IT_DIR vanished: stopping this run's processes by pid"
		[[ -z "$PERF_PID" ]] || kill -INT "$PERF_PID" 2>/dev/null
		[[ -z "$BRIDGE_PID" ]] || kill -TERM "$BRIDGE_PID" 2>/dev/null
		sleep 1
		[[ -z "$MOSQ_PID" ]] || kill -TERM "$MOSQ_PID" 2>/dev/null
		[[ -z "$PG_POSTMASTER" ]] || kill -INT "$PG_POSTMASTER" 2>/dev/null
	fi
	(exit "$rc")
	it_cleanup
}
trap bench_exit EXIT

CLK_TCK=$(getconf CLK_TCK)
NPROC=$(nproc)

# --- machine -------------------------------------------------------------------------------------------

machine_info()
{
	local cpu paho
	cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
	paho=$(dpkg-query -W -f '${Version}' libpaho-mqtt1.3 2>/dev/null || echo '?')
	printf -- '- machine: %s CPUs (nproc), %s, %s GiB RAM, kernel %s\n' "$NPROC" "${cpu:-unknown CPU}" \
		"$(awk '/^MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)" "$(uname -r)"
	printf -- '- %s; %s; Paho MQTT C %s (Debian libpaho-mqtt1.3 %s); libpq %s\n' \
		"$("$PG_BIN/postgres" --version)" "$(mosquitto -h 2>/dev/null | head -n 1 | sed 's/ is an MQTT.*//')" \
		"$("$PUB" -V)" "$paho" "$(pg_config --version 2>/dev/null | awk '{ print $2 }')"
	printf -- '- bridge: %s, writers %s, batch_rows %s, flush_interval_ms %s, spool %s, aggregates %s\n' \
		"$MQTT2PG_BIN" "$WRITERS" "$BATCH_ROWS" "$FLUSH_MS" "$SPOOL_DESC" \
		"$( ((AGGREGATES)) && echo on || echo off)"
	printf -- '- bridge RSS when idle, registry loaded and subscribed: %.1f MB\n' "$(awk -v k="$IDLE_RSS_KB" 'BEGIN { print k / 1024 }')"
	printf -- '- load: N %s msgs (x%s rows) from %s devices over %s tenants, %s registered devices (4 points each); ' \
		"$N" "$ROWS_PER_MSG" "$M" "$T" "$REGISTRY_DEVICES"
	printf 'paced %s msgs/s for %s s; QoS %s; %s publisher process(es) (Paho %s), window %s\n' \
		"$RATE" "$DURATION" "$QOS" "$PUBLISHERS" "$( [[ $PUB_API == client ]] && echo MQTTClient || echo MQTTAsync)" \
		"$WINDOW"
	printf -- '- PostgreSQL: %s, shared_buffers 256MB, track_commit_timestamp on\n' \
		"$( ((DURABLE)) && echo 'durable: fsync, synchronous_commit, full_page_writes on (as users run it)' ||
			echo 'fsync, synchronous_commit, full_page_writes off (--fast-db, as the integration tests)')"
	printf -- '- Mosquitto: %s; max_queued_messages 0 (a drain queues N messages for the offline bridge), persistence on\n' \
		"$( ((TUNED_BROKER)) && echo 'max_inflight_messages 0 (--tuned-broker: unlimited window)' ||
			echo 'max_inflight_messages at its default (20 per client)')"
}

# --- PostgreSQL, Mosquitto, registry -------------------------------------------------------------------

pg_start
{
	echo
	echo "# --- tests/bench/run.sh ---"
	echo "track_commit_timestamp = on"
	echo "shared_buffers = 256MB"
	echo "max_wal_size = 8GB"
	echo "min_wal_size = 1GB"
	echo "checkpoint_timeout = 30min"
	echo "jit = off" # the row-set check's big joins would otherwise compile with LLVM (seconds of CPU)
	if ((DURABLE)); then
		echo "fsync = on"
		echo "synchronous_commit = on"
		echo "full_page_writes = on"
	fi
} >>"$PG_DATA/postgresql.conf"
pg_stop
pg_start_again
PG_POSTMASTER=$(head -n 1 "$PG_DATA/postmaster.pid")

mosq_start
# lib.sh logs everything (log_type all), which for mosquitto means one debug line per PUBLISH in and out:
# that would be a large part of the broker's cost here. Keep errors, warnings, notices and information.
sed -i 's/^log_type all$/log_type error\nlog_type warning\nlog_type notice\nlog_type information/' "$MOSQ_CONF"
# lib.sh opens the in-flight window for the tests' speed; users run Mosquitto's default (20), so does the bench
# unless --tuned-broker says otherwise.
if ((!TUNED_BROKER)); then
	sed -i '/^max_inflight_messages 0$/d' "$MOSQ_CONF"
fi
mosq_stop
mosq_start_again

db_prepare

say "seeding the registry: $T tenants, $REGISTRY_DEVICES devices, $((REGISTRY_DEVICES * 4)) points"
seed_start=$EPOCHREALTIME
psql_super \
	"CREATE SCHEMA bench" \
	"CREATE UNLOGGED TABLE bench.expected (serial text NOT NULL, t bigint NOT NULL)" \
	"INSERT INTO tenants (slug, name) SELECT 't' || k, 'bench tenant ' || k FROM generate_series(1, $T) k" \
	"INSERT INTO devices (tenant_id, serial, model)
	 SELECT tn.id, 'B-' || (j % $T + 1) || '-' || CASE WHEN j / $T < 10000 THEN lpad((j / $T)::text, 4, '0')
	                                                ELSE (j / $T)::text END, 'BENCH-10K'
	   FROM generate_series(0, $REGISTRY_DEVICES - 1) j JOIN tenants tn ON tn.slug = 't' || (j % $T + 1)
	  ORDER BY j" \
	"INSERT INTO points (device_id, name, unit, min_value, max_value)
	 SELECT d.id, p.name, p.unit, p.lo, p.hi FROM devices d CROSS JOIN (VALUES
	   ('total_output_power', 'W', 0, 12000), ('grid_voltage', 'V', 180, 260),
	   ('grid_frequency', 'Hz', 45, 55), ('daily_energy', 'kWh', 0, 200)) p(name, unit, lo, hi)
	  ORDER BY d.id" \
	"SELECT ensure_partitions(now() - interval '1 day', now() + interval '2 days')" \
	"ANALYZE" >/dev/null
# The reference modes values, copy and direct-sql insert straight into measurements, as the writer could before
# sql/015 (it now has no privilege there: write_readings() is its way in). Granted in this throw-away database
# only, to measure what the function costs against the direct path. (Table-level SELECT: TimescaleDB passes a
# grant on to the compressed hypertable, where a column list of ours does not exist.)
psql_owner "GRANT INSERT, SELECT ON measurements TO mqtt2pg_writer" \
	"DO \$\$ BEGIN IF to_regnamespace('_mqtt2pg_chunks') IS NOT NULL THEN
	     GRANT USAGE ON SCHEMA _mqtt2pg_chunks TO mqtt2pg_writer; END IF; END \$\$" >/dev/null
say "seeded in $(awk -v a="$seed_start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"

# --- the bridge ----------------------------------------------------------------------------------------

HTTP_PORT=$(free_port)
BRIDGE_CONF=$IT_DIR/bridge.conf
BRIDGE_PID=

write_bridge_config()
{
	local with_spool=$1
	{
		echo "mqtt = { uri = \"$MQTT_URI\"; client_id = \"mqtt2pg-bench\"; keepalive = 30; };"
		echo "database = { conninfo = \"host=127.0.0.1 port=$PGPORT dbname=mqtt2pg user=mqtt2pg_writer\";"
		echo "  writers = $WRITERS; batch_rows = $BATCH_ROWS; flush_interval_ms = $FLUSH_MS; };"
		if ((with_spool)); then
			echo "spool = { directory = \"$IT_DIR/spool\"; ${SPOOL_MODE:+mode = \"$SPOOL_MODE\";} };"
		fi
		if ((AGGREGATES)); then
			echo "aggregates = { enabled = true; };"
		else
			echo "aggregates = { enabled = false; };"
		fi
		echo "http = { listen = \"127.0.0.1\"; port = $HTTP_PORT; };"
		echo "log = { level = \"info\"; };"
		echo "stats_interval = 1;"
	} >"$BRIDGE_CONF"
}

# A bridge without a spool (older builds) refuses the spool group: then run without it.
write_bridge_config 1
if "$MQTT2PG_BIN" -c "$BRIDGE_CONF" check-config >"$IT_DIR/check-config.log" 2>&1; then
	SPOOL_DESC=${SPOOL_MODE:-default mode}
else
	if grep -qi spool "$IT_DIR/check-config.log" && [[ -z "$SPOOL_MODE" ]]; then
		write_bridge_config 0
		SPOOL_DESC="none (this bridge has no spool)"
		"$MQTT2PG_BIN" -c "$BRIDGE_CONF" check-config >"$IT_DIR/check-config.log" 2>&1 ||
			{ cat "$IT_DIR/check-config.log" >&2; fail "bridge config refused"; }
	else
		cat "$IT_DIR/check-config.log" >&2
		fail "bridge config refused"
	fi
fi
mkdir -p "$IT_DIR/spool"

# Starts the bridge in the background; BRIDGE_START_US is the moment it was started.
bench_bridge_start()
{
	BRIDGE_RUNS=$((BRIDGE_RUNS + 1))
	BRIDGE_LOG=$IT_DIR/bridge.$BRIDGE_RUNS.log
	: >"$BRIDGE_LOG"
	BRIDGE_START_US=${EPOCHREALTIME/./}
	MQTT2PG_DB_PASSWORD=$WRITER_PASSWORD "$MQTT2PG_BIN" -c "$BRIDGE_CONF" run >"$BRIDGE_LOG" 2>&1 &
	BRIDGE_PID=$!
	it_track_pid "$BRIDGE_PID"
	it_track_log "$BRIDGE_LOG"
}

bench_bridge_wait_subscribed()
{
	wait_until 60 grep -q "subscribed to" "$BRIDGE_LOG" || fail "bridge did not subscribe (see $BRIDGE_LOG)"
}

# Stops the bridge with SIGTERM (it drains and exits 0), bounded: SIGKILL after 60 s.
bench_bridge_stop()
{
	BRIDGE_RC=0
	kill -TERM "$BRIDGE_PID" 2>/dev/null || true
	if ! wait_until 60 _it_none_alive "$BRIDGE_PID"; then
		say "bridge did not exit 60 s after SIGTERM: SIGKILL"
		kill -KILL "$BRIDGE_PID" 2>/dev/null || true
	fi
	wait "$BRIDGE_PID" || BRIDGE_RC=$?
	it_untrack_pid "$BRIDGE_PID"
	BRIDGE_PID=
	bridge_check_sanitizers
}

# metric NAME: the bridge's /metrics value, empty if unreachable.
metric() { metric_at "$HTTP_PORT" "$1"; }

bridge_rows()
{
	local rows
	rows=$(metric mqtt2pg_rows_inserted_total)
	rows=${rows:-0}
	echo "${rows%.*}"
}

# wait_rows TARGET [COUNTER]: until the bridge has committed TARGET new rows, as COUNTER (a function printing
# the committed rows; bridge_rows, from /metrics) says. Gives up when nothing moves for 30 s or after a deadline
# proportional to the load. Polls every 0.2 s.
wait_rows()
{
	local target=$1 counter=${2:-bridge_rows} rows last=-1 last_change=$SECONDS deadline
	deadline=$((SECONDS + 120 + target / 4000))
	while :; do
		rows=$("$counter")
		((rows >= target)) && return 0
		if ((rows != last)); then
			last=$rows
			last_change=$SECONDS
		fi
		if ((SECONDS - last_change > 30 || SECONDS > deadline)); then
			say "gave up waiting: $rows of $target rows committed"
			return 1
		fi
		sleep 0.2
	done
}

# --- measurement helpers -------------------------------------------------------------------------------

# snap: "now_us bridge_ticks mosquitto_ticks postgres_ticks machine_busy_ticks machine_total_ticks".
# PostgreSQL: the postmaster's own time plus cutime/cstime (the CPU of children it has reaped: backends
# and workers that exited), plus the current time of every live child. The difference of two snapshots is
# the whole cluster's CPU in between, including connections that came and went.
snap()
{
	local postmaster
	postmaster=$PG_POSTMASTER
	{
		cat /proc/stat
		cat /proc/[0-9]*/stat 2>/dev/null || true # processes come and go between the glob and the read
	} | awk -v now="${EPOCHREALTIME/./}" -v b="${BRIDGE_PID:-0}" -v m="${MOSQ_PID:-0}" -v pm="$postmaster" '
		$1 == "cpu" { busy = $2 + $3 + $4 + $7 + $8 + $9; total = busy + $5 + $6; next }
		$1 ~ /^[0-9]+$/ {
			pid = $1; line = $0; sub(/^.*\) /, "", line); split(line, f, " ")
			if (pid == b) bt = f[12] + f[13]
			if (pid == m) mt = f[12] + f[13]
			if (pid == pm) pg += f[12] + f[13] + f[14] + f[15]
			else if (f[2] == pm) pg += f[12] + f[13]
		}
		END { printf "%s %d %d %d %d %d\n", now, bt, mt, pg, busy, total }'
}

# Under --perf: remember which processes are ours (the bridge, the cluster's processes, the broker), so the
# report can leave out everything else the machine runs.
PERF_BRIDGE_PIDS='' PERF_PG_PIDS=
perf_note_pids()
{
	[[ -n "$PERF_PID" ]] || return 0
	PERF_BRIDGE_PIDS=$BRIDGE_PID
	PERF_PG_PIDS=$( (echo "$PG_POSTMASTER"; pgrep -P "$PG_POSTMASTER") | paste -sd,)
}

# rows_per_batch: the bridge's average rows per committed batch so far (from /metrics).
rows_per_batch()
{
	local rows batches
	rows=$(metric mqtt2pg_rows_inserted_total)
	batches=$(metric mqtt2pg_batches_committed_total)
	awk -v r="${rows:-0}" -v b="${batches:-0}" 'BEGIN { if (b > 0) printf "%.0f", r / b }'
}

vm_hwm_kb()
{
	awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0
}

reset_db()
{
	psql_super "TRUNCATE measurements, aggregate_dirty, measurements_5m, rejected_messages, bench.expected" \
		"CHECKPOINT" >/dev/null
}

load_expected()
{
	cat "$@" | psql -X -q -v ON_ERROR_STOP=1 -d "$SUPER_DB" -c '\copy bench.expected FROM STDIN'
}

# expected_from_dbref N BASE_US: the rows dbref wrote (message i: device i % M, time BASE + i).
expected_from_dbref()
{
	psql_super "INSERT INTO bench.expected (serial, t)
		SELECT 'B-' || (i % $M % $T + 1) || '-' || CASE WHEN i % $M / $T < 10000 THEN lpad((i % $M / $T)::text, 4, '0')
		                                         ELSE (i % $M / $T)::text END, $2 + i
		  FROM generate_series(0, $1 - 1) i" >/dev/null
}

# check_rows N: the row set is exactly what was sent. Sets CHECK ("pass" or what is wrong).
check_rows()
{
	local n=$1 rows out total distinct exp exp_distinct joined missing wrong rejected
	out=$(psql_super "
		WITH e AS (SELECT d.id AS device_id, d.tenant_id, x.t
		             FROM bench.expected x JOIN devices d ON d.serial = x.serial),
		     j AS (SELECT e.tenant_id, e.t, p.name, m.value, m.tenant_id AS m_tenant
		             FROM e JOIN points p ON p.device_id = e.device_id
		             LEFT JOIN measurements m ON m.device_id = e.device_id AND m.point_id = p.id
		                  AND m.time = timestamptz 'epoch' + e.t * interval '1 microsecond')
		SELECT (SELECT count(*) FROM measurements),
		       (SELECT count(DISTINCT (device_id, point_id, time)) FROM measurements),
		       (SELECT count(*) FROM bench.expected),
		       (SELECT count(DISTINCT (serial, t)) FROM bench.expected),
		       count(*),
		       count(*) FILTER (WHERE j.value IS NULL),
		       count(*) FILTER (WHERE j.value IS NOT NULL AND (j.m_tenant <> j.tenant_id OR j.value <> CASE j.name
		           WHEN 'total_output_power' THEN ((j.t % 1000000) / 100.0)::float8
		           WHEN 'grid_voltage' THEN ((20000 + j.t % 6000) / 100.0)::float8
		           WHEN 'grid_frequency' THEN ((49500 + j.t % 1000) / 1000.0)::float8
		           WHEN 'daily_energy' THEN ((j.t % 100000) / 1000.0)::float8 END)),
		       (SELECT count(*) FROM rejected_messages)
		  FROM j")
	rows=$((n * ROWS_PER_MSG))
	IFS='|' read -r total distinct exp exp_distinct joined missing wrong rejected <<<"$out"
	CHECK=pass
	if ((exp != n || exp_distinct != n)); then
		CHECK="expected set has $exp entries ($exp_distinct distinct), not $n"
	elif ((joined != rows)); then
		CHECK="expected set maps to $joined (device, point, time) keys, not $rows"
	elif ((total != rows)); then
		CHECK="$total rows, expected $rows"
	elif ((distinct != total)); then
		CHECK="$((total - distinct)) duplicate rows"
	elif ((missing != 0)); then
		CHECK="$missing expected rows missing"
	elif ((wrong != 0)); then
		CHECK="$wrong rows with a wrong value or tenant"
	elif ((rejected != 0)); then
		CHECK="$rejected messages rejected"
	fi
	if grep -q "dropped" "$MOSQ_LOG"; then
		CHECK="$CHECK; mosquitto dropped messages (see its log)"
	fi
	printf 'check: total=%s distinct=%s expected=%s/%s keys=%s missing=%s wrong=%s rejected=%s -> %s\n' \
		"$total" "$distinct" "$exp" "$exp_distinct" "$joined" "$missing" "$wrong" "$rejected" "$CHECK" >>"$RUN_LOG"
}

# commit_stats: "first_commit last_commit p50 p95 p99 max" (epoch seconds; latencies in ms) over all rows.
commit_stats()
{
	psql_super "
		SELECT to_char(extract(epoch FROM min(c)), 'FM9999999999.000000'),
		       to_char(extract(epoch FROM max(c)), 'FM9999999999.000000'),
		       round(percentile_disc(0.5) WITHIN GROUP (ORDER BY l), 2),
		       round(percentile_disc(0.95) WITHIN GROUP (ORDER BY l), 2),
		       round(percentile_disc(0.99) WITHIN GROUP (ORDER BY l), 2),
		       round(max(l), 2)
		  FROM (SELECT c, extract(epoch FROM c - time) * 1000 AS l
		          FROM (SELECT pg_xact_commit_timestamp(xmin) AS c, time FROM measurements) r) x" | tr '|' ' '
}

# field NAME LINE: the value of NAME=value in a "pub:"/"dbref:" result line.
field()
{
	local kv
	for kv in $2; do
		if [[ "$kv" == "$1="* ]]; then
			printf '%s' "${kv#*=}"
			return 0
		fi
	done
}

publish_n()
{
	local n=$1 rate=$2 tag=$3 prefix=${4:-solar}
	rm -f "$IT_DIR/expected.$tag".*
	"$PUB" -u "$MQTT_URI" -n "$n" -m "$M" -t "$T" -q "$QOS" -r "$rate" -w "$WINDOW" -P "$PUBLISHERS" \
		-o "$IT_DIR/expected.$tag" -c "bench-$tag" --prefix "$prefix" --timeout 600 2>>"$RUN_LOG"
}

TSV_HEADER="scenario	run	msgs	rows	seconds	msgs_s	rows_s	bridge_us_msg	pg_us_row	mosq_us_msg	pub_us_msg	rss_mb	p50_ms	p95_ms	p99_ms	max_ms	cpu_bridge	cpu_pg	cpu_mosq	cpu_pub	cpu_machine	pub_msgs_s	startup_ms	cpu_other	rows_per_batch	check"
printf '%s\n' "$TSV_HEADER" >"$TSV"

# record SCENARIO RUN MSGS SECONDS SNAP0 SNAP1 PUB_CPU_US_PER_MSG RSS_KB LAT PUB_RATE STARTUP_MS
#        PUB_IN_WINDOW ROWS_PER_BATCH: one TSV line. PUB_IN_WINDOW: the publisher ran between the snapshots
#        (not in drain, where it filled the session before the bridge started).
record()
{
	local scenario=$1 run=$2 msgs=$3 secs=$4 s0=$5 s1=$6 pub_us=$7 rss_kb=$8 lat=$9 pub_rate=${10} startup=${11}
	local pub_in_window=${12:-0} per_batch=${13:-}
	local rows check=${CHECK// /_}
	rows=$((msgs * ROWS_PER_MSG))
	awk -v OFS='\t' -v sc="$scenario" -v run="$run" -v msgs="$msgs" -v rows="$rows" -v secs="$secs" \
		-v s0="$s0" -v s1="$s1" -v pub_us="$pub_us" -v rss="$rss_kb" -v lat="$lat" -v hz="$CLK_TCK" \
		-v ncpu="$NPROC" -v pub_rate="$pub_rate" -v startup="$startup" -v check="$check" \
		-v pub_in="$pub_in_window" -v per_batch="$per_batch" '
		function us(ticks) { return ticks * 1e6 / hz }
		BEGIN {
			split(s0, a, " "); split(s1, b, " ")
			wall = (b[1] - a[1]) / 1e6
			bridge = us(b[2] - a[2]); mosq = us(b[3] - a[3]); pg = us(b[4] - a[4])
			busy = b[5] - a[5]; total = b[6] - a[6]
			split(lat, l, " ")
			nb = sc ~ /^reference/
			out_bridge = nb ? "-" : sprintf("%.2f", bridge / msgs)
			out_mosq = nb ? "-" : sprintf("%.2f", mosq / msgs)
			out_rss = nb ? "-" : sprintf("%.1f", rss / 1024)
			out_cpu_bridge = nb ? "-" : sprintf("%.0f", 100 * bridge / 1e6 / wall)
			out_cpu_mosq = nb ? "-" : sprintf("%.0f", 100 * mosq / 1e6 / wall)
			out_cpu_pub = (pub_us == "" || !pub_in) ? "-" : sprintf("%.0f", 100 * pub_us * msgs / 1e6 / wall)
			ours = (bridge + mosq + pg) / 1e6 / wall * 100 + ((pub_us == "" || !pub_in) ? 0 : pub_us * msgs / 1e6 / wall * 100)
			other = total > 0 ? 100 * busy / total * ncpu - ours : 0
			if (other < 0) other = 0
			for (i = 1; i <= 4; i++) out_lat[i] = (l[i] == "") ? "-" : l[i]
			printf "%s\t%s\t%d\t%d\t%.3f\t%.0f\t%.0f\t%s\t%.2f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.0f\t%s\t%s\t%.0f\t%s\t%s\t%.0f\t%s\t%s\n", \
				sc, run, msgs, rows, secs, msgs / secs, rows / secs, out_bridge, pg / rows, out_mosq, \
				(pub_us == "" ? "-" : pub_us), out_rss, out_lat[1], out_lat[2], out_lat[3], out_lat[4], \
				out_cpu_bridge, 100 * pg / 1e6 / wall, out_cpu_mosq, out_cpu_pub, \
				(total > 0 ? 100 * busy / total : 0), (pub_rate == "" ? "-" : pub_rate), \
				(startup == "" ? "-" : startup), other, (per_batch == "" ? "-" : per_batch), check
		}' >>"$TSV"
}

# --- scenarios -----------------------------------------------------------------------------------------

# use_bridge KIND: the bridge the next scenario runs, mqtt2pg or node (the baseline): its start function, the
# function printing its committed rows, its topic tree, and what it is called in messages.
use_bridge()
{
	case $1 in
	mqtt2pg) START=bench_bridge_start COUNTER=bridge_rows PREFIX=solar WHO=bridge ;;
	node) START=node_bridge_start COUNTER=node_rows PREFIX=$NODE_PREFIX WHO="Node bridge" ;;
	esac
	KIND=$1
}

# per_batch: the bridge's rows per committed batch (mqtt2pg's /metrics; the Node bridge has none).
per_batch() { [[ "$KIND" != mqtt2pg ]] || rows_per_batch; }

# drain_with KIND SCENARIO RUN: N messages into the stopped bridge's session, then the bridge started.
drain_with()
{
	local scenario=$2 run=$3 tag pubout='' s0 s1 rss stats first last secs startup ok=1 per_batch
	use_bridge "$1"
	tag=${scenario//-/}$run
	reset_db
	say "$scenario $run: publishing $N messages into the stopped $WHO's session"
	if ! pubout=$(publish_n "$N" 0 "$tag" "$PREFIX"); then
		CHECK="publisher failed: $pubout"
		ok=0
	fi
	echo "$scenario $run: $pubout" >>"$RUN_LOG"
	load_expected "$IT_DIR/expected.$tag".*
	s0=$(snap)
	"$START"
	say "$scenario $run: $WHO started, waiting for $((N * ROWS_PER_MSG)) rows"
	wait_rows $((N * ROWS_PER_MSG)) "$COUNTER" || ok=0
	s1=$(snap)
	perf_note_pids
	rss=$(vm_hwm_kb "$BRIDGE_PID")
	per_batch=$(per_batch)
	bench_bridge_stop
	stats=$(commit_stats)
	read -r first last _ <<<"$stats"
	secs=$(awk -v s="$BRIDGE_START_US" -v e="$last" 'BEGIN { printf "%.3f", e - s / 1e6 }')
	startup=$(awk -v s="$BRIDGE_START_US" -v e="$first" 'BEGIN { printf "%.0f", (e - s / 1e6) * 1000 }')
	check_rows "$N"
	((ok)) || [[ "$CHECK" != pass ]] || CHECK="$WHO did not commit every row in time"
	((BRIDGE_RC == 0)) || [[ "$CHECK" != pass ]] || CHECK="$WHO exited with status $BRIDGE_RC"
	record "$scenario" "$run" "$N" "$secs" "$s0" "$s1" "$(field cpu_us_per_msg "$pubout")" "$rss" "" \
		"$(field msgs_per_s "$pubout")" "$startup" 0 "$per_batch"
	say "$scenario $run: $(tail -n 1 "$TSV" | awk -F'\t' '{ print $6 " msgs/s, " $7 " rows/s" }'), check: $CHECK"
}

run_drain() { drain_with mqtt2pg drain "$1"; }

# run_publishing KIND SCENARIO RUN MSGS RATE: the bridge running, the publisher at RATE (0 = full speed).
run_publishing()
{
	local scenario=$2 run=$3 n=$4 rate=$5 tag pubout='' s0 s1 rss stats first last secs start ok=1 per_batch
	use_bridge "$1"
	tag=${scenario//-/}$run
	reset_db
	"$START"
	bench_bridge_wait_subscribed
	sleep 1
	s0=$(snap)
	say "$scenario $run: publishing $n messages at $( ((rate)) && echo "$rate msgs/s" || echo "full speed")"
	if ! pubout=$(publish_n "$n" "$rate" "$tag" "$PREFIX"); then
		CHECK="publisher failed"
		ok=0
	fi
	echo "$scenario $run: $pubout" >>"$RUN_LOG"
	wait_rows $((n * ROWS_PER_MSG)) "$COUNTER" || ok=0
	s1=$(snap)
	perf_note_pids
	rss=$(vm_hwm_kb "$BRIDGE_PID")
	per_batch=$(per_batch)
	bench_bridge_stop
	load_expected "$IT_DIR/expected.$tag".*
	stats=$(commit_stats)
	read -r first last _ <<<"$stats"
	start=$(field start "$pubout")
	secs=$(awk -v s="${start:-0}" -v e="$last" 'BEGIN { printf "%.3f", e - s }')
	check_rows "$n"
	((ok)) || [[ "$CHECK" != pass ]] || CHECK="$WHO did not commit every row in time"
	((BRIDGE_RC == 0)) || [[ "$CHECK" != pass ]] || CHECK="$WHO exited with status $BRIDGE_RC"
	record "$scenario" "$run" "$n" "$secs" "$s0" "$s1" "$(field cpu_us_per_msg "$pubout")" "$rss" \
		"$(cut -d' ' -f3- <<<"$stats")" "$(field msgs_per_s "$pubout")" "" 1 "$per_batch"
	say "$scenario $run: $(tail -n 1 "$TSV" | awk -F'\t' '{ print $6 " msgs/s, " $7 " rows/s, p99 " $15 " ms" }'), check: $CHECK"
}

run_live()
{
	run_publishing mqtt2pg live "$1" "$N" 0
}

run_paced()
{
	run_publishing mqtt2pg paced "$1" "$PACED_N" "$RATE"
}

run_reference()
{
	local run=$1 variant mode conns out s0 s1 base batch
	for variant in "${REFERENCE_LIST[@]}"; do
		mode=${variant%%:*}
		conns=${variant#*:}
		reset_db
		s0=$(snap)
		# values/copy: ~1000-row statements (the measured best under RLS); bridge-sql: the bridge's batch_rows.
		batch=1000
		[[ "$mode" != bridge-sql && "$mode" != direct-sql ]] || batch=$BATCH_ROWS
		if ! out=$("$TOOLS/dbref" -d "$WRITER_DB" -n "$N" -m "$M" -t "$T" -c "$conns" --mode "$mode" -b "$batch" \
			2>>"$RUN_LOG"); then
			say "reference $variant $run: dbref failed: $out"
		fi
		s1=$(snap)
		echo "reference $variant $run: $out" >>"$RUN_LOG"
		base=$(field base_us "$out")
		[[ -z "$base" ]] || expected_from_dbref "$N" "$base"
		check_rows "$N"
		record "reference $mode x$conns" "$run" "$N" "$(field elapsed_s "$out")" "$s0" "$s1" "" "" "" "" ""
		say "reference $variant $run: $(tail -n 1 "$TSV" | cut -f7) rows/s, check: $CHECK"
	done
}

# --- the Node.js baseline ------------------------------------------------------------------------------

# The baseline's own topic tree and client id: the bridge's persistent session never sees its messages.
NODE_PREFIX=nodebench
NODE_DIR=$BENCH_SRC/node

# node_bridge_start [PRIME]: the Node bridge in the background as BRIDGE_PID (so snap() measures it);
# NODE_STATUS holds "committed unknown" rows, rewritten every 200 ms. PRIME=1 only creates the session.
node_bridge_start()
{
	local prime=${1:-0}
	BRIDGE_RUNS=$((BRIDGE_RUNS + 1))
	BRIDGE_LOG=$IT_DIR/node.$BRIDGE_RUNS.log
	NODE_STATUS=$IT_DIR/node.status
	rm -f "$NODE_STATUS"
	BRIDGE_START_US=${EPOCHREALTIME/./}
	MQTT_URI=$MQTT_URI CLIENT_ID=node-bench TOPIC_FILTER="$NODE_PREFIX/+/+/telemetry" PRIME=$prime \
		WRITER_DB="$WRITER_DB" REGISTRY_DB="$SUPER_DB" \
		BATCH_ROWS=$BATCH_ROWS FLUSH_MS=$FLUSH_MS CONNECTIONS=$WRITERS STATUS_FILE=$NODE_STATUS \
		node "$NODE_DIR/bridge.js" >"$BRIDGE_LOG" 2>&1 &
	BRIDGE_PID=$!
	it_track_pid "$BRIDGE_PID"
	it_track_log "$BRIDGE_LOG"
}

node_rows() { local c; read -r c _ <"$NODE_STATUS" 2>/dev/null && echo "${c:-0}" || echo 0; }

run_node_drain() { drain_with node node-drain "$1"; }
run_node_live() { run_publishing node node-live "$1" "$N" 0; }

# --- the runs ------------------------------------------------------------------------------------------

RUN_LOG=$OUT/logs/runs.log
: >"$RUN_LOG"
BRIDGE_RUNS=0

say "creating the bridge's persistent session"
bench_bridge_start
bench_bridge_wait_subscribed
sleep 1
IDLE_RSS_KB=$(awk '/^VmRSS:/ { print $2 }' "/proc/$BRIDGE_PID/status")
bench_bridge_stop
if ((NODE_BASELINE)); then
	if [[ ! -d "$NODE_DIR/node_modules" ]]; then
		say "installing the Node baseline's packages (npm ci, tests/bench/node/package-lock.json)"
		(cd "$NODE_DIR" && npm ci --no-audit --no-fund >>"$RUN_LOG" 2>&1) || fail "npm ci failed (see $RUN_LOG)"
	fi
	say "creating the Node bridge's persistent session ($(node --version))"
	node_bridge_start 1
	wait "$BRIDGE_PID" || fail "the Node bridge could not create its session (see $BRIDGE_LOG)"
	it_untrack_pid "$BRIDGE_PID"
	BRIDGE_PID=
fi

bench_start=$SECONDS
for ((r = 1; r <= REPEATS; r++)); do
	for s in "${SCENARIO_LIST[@]}"; do
		"run_${s//-/_}" "$r"
	done
done
bench_secs=$((SECONDS - bench_start))

# perf_run SCENARIO: one extra run of SCENARIO under a system-wide perf record, reported by process and
# by symbol (not part of the table: perf costs CPU itself).
perf_run()
{
	local scenario=$1 data=$OUT/perf.$1.data
	command -v perf >/dev/null || { say "perf not installed: skipping --perf"; return 0; }
	perf record -a -g -F 997 -o "$data" >"$OUT/logs/perf.$scenario.log" 2>&1 &
	PERF_PID=$!
	it_track_pid "$PERF_PID"
	sleep 1
	"run_$scenario" perf
	kill -INT "$PERF_PID" 2>/dev/null || true
	wait "$PERF_PID" 2>/dev/null || true
	it_untrack_pid "$PERF_PID"
	PERF_PID=
	sed -i '/^'"$scenario"'	perf	/d' "$TSV"
	perf report -i "$data" --no-children --sort comm,dso --stdio -g none 2>/dev/null | grep -v '^$' | head -n 40 \
		>"$OUT/perf.$scenario.machine.txt" || true
	perf report -i "$data" --no-children --pid "$PERF_BRIDGE_PIDS,$PERF_PG_PIDS,$MOSQ_PID" --sort pid,dso \
		--stdio -g none 2>/dev/null | grep -v '^$' | head -n 40 >"$OUT/perf.$scenario.ours.txt" || true
	perf report -i "$data" --no-children --pid "$PERF_BRIDGE_PIDS" --percentage relative --sort dso,sym \
		--stdio -g none 2>/dev/null | grep -v '^$' | head -n 80 >"$OUT/perf.$scenario.bridge.txt" || true
	perf report -i "$data" --no-children --pid "$PERF_BRIDGE_PIDS" --percentage relative --sort dso,sym \
		--stdio -g caller,0.5,callee --max-stack 12 2>/dev/null | head -n 400 >"$OUT/perf.$scenario.bridge-callers.txt" || true
	perf report -i "$data" --no-children --pid "$PERF_PG_PIDS" --percentage relative --sort dso,sym \
		--stdio -g none 2>/dev/null | grep -v '^$' | head -n 60 >"$OUT/perf.$scenario.postgres.txt" || true
	perf report -i "$data" --no-children --pid "$MOSQ_PID" --percentage relative --sort dso,sym \
		--stdio -g none 2>/dev/null | grep -v '^$' | head -n 40 >"$OUT/perf.$scenario.mosquitto.txt" || true
	say "perf: $OUT/perf.$scenario.*.txt"
}
if ((PERF)); then
	perf_run drain
	perf_run live
fi

# --- report --------------------------------------------------------------------------------------------

# summarize: the markdown tables from runs.tsv (median and min-max over the runs of each scenario).
summarize()
{
	awk -F'\t' -v ref_pref="reference values x2" -v ncpu="$NPROC" '
		function commas(x,   s, neg) {
			neg = x < 0; x = neg ? -x : x; s = sprintf("%.0f", x)
			while (s ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]($|,)/, ",&", s)
			return (neg ? "-" : "") s
		}
		function num(x) { return x >= 1000 ? commas(x) : x >= 100 ? sprintf("%.0f", x) : x >= 10 ? sprintf("%.1f", x) : sprintf("%.2f", x) }
		function stats(sc, col,   n, i, j, t, v, med) {
			n = 0
			for (i = 1; i <= cnt[sc]; i++) { t = val[sc, i, col]; if (t != "-" && t != "") v[++n] = t + 0 }
			if (n == 0) { MED = ""; return "-" }
			for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
			med = n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
			MED = med
			return n == 1 ? num(med) : num(med) " (" num(v[1]) "–" num(v[n]) ")"
		}
		NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
		{
			sc = $1
			if (!(sc in cnt)) { order[++ns] = sc; cnt[sc] = 0 }
			cnt[sc]++
			for (i = 1; i <= NF; i++) val[sc, cnt[sc], i] = $i
			if ($c["check"] == "pass") pass[sc]++
			else { why = $c["check"]; gsub(/_/, " ", why); fails[sc] = fails[sc] "; run " $2 ": " why }
		}
		END {
			ref = ""; best = 0
			for (k = 1; k <= ns; k++) if (order[k] ~ /^reference/) {
				stats(order[k], c["rows_s"])
				if (order[k] == ref_pref) { ref = MED; refname = order[k] }
				if (MED > best) { best = MED; bestname = order[k] }
			}
			if (ref == "" && best > 0) { ref = best; refname = bestname }
			print "| scenario | msgs/s | rows/s | x ref | bridge CPU µs/msg | PostgreSQL CPU µs/row | Mosquitto CPU µs/msg | publisher CPU µs/msg | bridge peak RSS MB | row-set check |"
			print "|---|---|---|---|---|---|---|---|---|---|"
			for (k = 1; k <= ns; k++) {
				sc = order[k]
				rows = stats(sc, c["rows_s"]); rmed = MED
				ratio = (ref > 0 && rmed != "" && sc !~ /^paced/) ? sprintf("%.2f", rmed / ref) : "-"
				printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %d/%d pass |\n", sc,
					sc ~ /^reference/ ? "-" : stats(sc, c["msgs_s"]), rows, ratio,
					stats(sc, c["bridge_us_msg"]), stats(sc, c["pg_us_row"]), stats(sc, c["mosq_us_msg"]),
					stats(sc, c["pub_us_msg"]), stats(sc, c["rss_mb"]), pass[sc], cnt[sc]
			}
			print ""
			if (refname != "")
				print "x ref: rows/s divided by the median of \"" refname "\" (the database alone, same rows, same run)."
			else
				print "x ref: no reference scenario in this run."
			print ""
			print "Publish-to-commit latency, ms (pg_xact_commit_timestamp(xmin) - time, over every row):"
			print ""
			print "| scenario | p50 | p95 | p99 | max |"
			print "|---|---|---|---|---|"
			for (k = 1; k <= ns; k++) {
				sc = order[k]
				if (sc !~ /^(paced|live|node-live)/) continue
				printf "| %s | %s | %s | %s | %s |\n", sc, stats(sc, c["p50_ms"]), stats(sc, c["p95_ms"]),
					stats(sc, c["p99_ms"]), stats(sc, c["max_ms"])
			}
			print ""
			print "CPU during the run in % of one core (" ncpu " cores = " ncpu * 100 "%); machine busy in % of all cores; other: processes"
			print "not part of the benchmark (noise). Publisher msgs/s: what it achieved on its own (until its last PUBACK)."
			print ""
			print "| scenario | seconds | bridge | PostgreSQL | Mosquitto | publisher | other | machine busy | publisher msgs/s | bridge rows/batch | bridge start to first commit, ms |"
			print "|---|---|---|---|---|---|---|---|---|---|---|"
			for (k = 1; k <= ns; k++) {
				sc = order[k]
				printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", sc, stats(sc, c["seconds"]),
					stats(sc, c["cpu_bridge"]), stats(sc, c["cpu_pg"]), stats(sc, c["cpu_mosq"]),
					stats(sc, c["cpu_pub"]), stats(sc, c["cpu_other"]), stats(sc, c["cpu_machine"]), stats(sc, c["pub_msgs_s"]),
					stats(sc, c["rows_per_batch"]), stats(sc, c["startup_ms"])
			}
			for (k = 1; k <= ns; k++) if (fails[order[k]] != "") printf "\nFAILED %s%s\n", order[k], fails[order[k]]
		}' "$TSV"
}

passed=$(awk -F'\t' 'NR > 1 && $NF == "pass"' "$TSV" | wc -l)
failed=$(awk -F'\t' 'NR > 1 && $NF != "pass"' "$TSV" | wc -l)
{
	echo "## mqtt2pg benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo
	echo "Command: tests/bench/run.sh${ORIGINAL_ARGS[*]:+ ${ORIGINAL_ARGS[*]}}"
	echo
	machine_info
	echo "- $REPEATS run(s) of each scenario, interleaved; median (min–max). Measured runs took ${bench_secs} s."
	echo
	summarize
	echo
	echo "Raw per-run figures: $TSV; logs: $OUT/logs/"
} >"$RESULTS"
cat "$RESULTS"
echo
echo "$passed passed, $failed failed"
((failed == 0 && passed > 0))
