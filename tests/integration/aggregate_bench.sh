#!/usr/bin/env bash
# aggregate_bench.sh - the aggregate job at fleet scale, while ingest runs (issue 16 "Scale"; a measurement, not
# a test: not in ctest). Usage: aggregate_bench.sh [DEVICES] [PASSES] [CONNECTIONS] [durable]
#
# One tenant, DEVICES devices x 4 points (p1, p2 gauges; e1, e2 counters), a reading every 10 s per point.
# Data is made with SQL (generate_series), not MQTT: 15 minutes of history (BENCH_HISTORY=1: their 5-minute rows
# computed first, timed), then an
# ingest session calls write_readings() (the writer's function: rows + dirty marks) once a second for a tenth of
# the devices (DEVICES x 4 / 10 rows a second) for the whole run. Every 30 s (aggregates.interval) CONNECTIONS
# sessions make one pass of the job as src/aggregate.c does (each takes free shards with a session advisory
# lock and drains them with recompute_dirty_shard(BENCH_BATCH, shard), 500 as the job, under the tenant's context):
# AFTER, sql/016.
# Then BEFORE: the old leader's path (one session, recompute_dirty(500), sql/014's recompute_buckets) over one
# interval's keys, stopped after 60 s (its rate is what matters; it would need minutes per pass).
# Reported per pass: dirty device-buckets (keys claimed), pass time, device-buckets/s, the job backends' CPU per
# device-bucket (from /proc/<pid>/stat), the ingest rows/s meanwhile, and the lag of the keys the pass started
# with (pass end - marked_at; marked_at is a key's latest mark, so a reading's own worst case is one interval
# plus the pass time). fsync is off (lib.sh) unless the 4th argument is "durable" (fsync, full_page_writes,
# synchronous_commit on).
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
. "$here/lib.sh"
. "$here/bridge.sh"
devices=${1:-100000}
passes=${2:-3}
connections=${3:-2}
durable=${4:-}
interval=30
hz=$(getconf CLK_TCK)

it_setup aggregate_bench
pg_start
cat >>"$PG_DATA/postgresql.conf" <<EOF
shared_buffers = 1GB
max_wal_size = 8GB
checkpoint_timeout = 30min
EOF
if [[ "$durable" == durable ]]; then
	echo "fsync = on" >>"$PG_DATA/postgresql.conf"
	echo "full_page_writes = on" >>"$PG_DATA/postgresql.conf"
	echo "synchronous_commit = on" >>"$PG_DATA/postgresql.conf"
fi
pg_stop
pg_start_again
db_prepare
m2p_admin tenant add bench >/dev/null
tenant=$(psql_super "SELECT id FROM tenants WHERE slug = 'bench'")
psql_super "INSERT INTO devices (tenant_id, serial) SELECT $tenant, 'D' || g FROM generate_series(1, $devices) g" \
	"INSERT INTO points (device_id, name, unit, kind) SELECT d.id, n, 'W', CASE WHEN n LIKE 'e%' THEN 'counter' ELSE 'gauge' END
		FROM devices d, unnest(ARRAY['p1', 'p2', 'e1', 'e2']) n" \
	"SELECT ensure_partitions(now() - interval '1 day', now() + interval '1 day')" >/dev/null
# counters rise 3.5 per 10 s from 1000 + device id at the epoch of the run
t0=$(psql_super "SELECT extract(epoch FROM now())::bigint")
it_log "history: $devices devices x 4 points, 15 minutes at 10 s"
psql_super "INSERT INTO measurements (time, tenant_id, device_id, point_id, value)
	SELECT t, $tenant, d.id, p.id,
	       CASE WHEN p.kind = 'counter' THEN 1000 + d.id + (extract(epoch FROM t) - $t0) * 0.35 ELSE random() * 5000 END
	  FROM devices d JOIN points p ON p.device_id = d.id,
	       LATERAL (SELECT to_timestamp($t0) - s * interval '10 seconds' + (d.id % 10) * interval '1 second' AS t
	                  FROM generate_series(1, 90) s) g" >/dev/null
psql_super "VACUUM ANALYZE measurements" "CHECKPOINT" >/dev/null
rows=$(psql_super "SELECT count(*) FROM measurements")
it_log "history: $rows rows; computing its 5-minute rows (sql/016, 2 sessions)"
psql_super "INSERT INTO aggregate_dirty (tenant_id, device_id, bucket)
	SELECT DISTINCT $tenant, device_id, date_bin('5 minutes', time, timestamptz 'epoch') FROM measurements
	ON CONFLICT DO NOTHING" >/dev/null

# The bench's slots: a tenth of the devices' points per second, as arrays for write_readings().
psql_super "CREATE TABLE bench_slot AS SELECT d.id % 10 AS slot, array_agg(p.device_id ORDER BY p.id) AS devs,
		array_agg(p.id ORDER BY p.id) AS pts, array_agg(p.kind = 'counter' ORDER BY p.id) AS ctr,
		array_agg(d.id ORDER BY p.id) AS dev_base
	  FROM devices d JOIN points p ON p.device_id = d.id GROUP BY 1" \
	"GRANT SELECT ON bench_slot TO mqtt2pg_owner" \
	"CREATE TABLE bench_lag (pass integer, lag_ms bigint)" \
	"CREATE TABLE bench_done (pass integer, keys bigint)" "GRANT INSERT ON bench_done TO mqtt2pg_owner" \
	"CREATE TABLE bench_ingest (at timestamptz, rows integer)" \
	"GRANT INSERT, SELECT ON bench_lag, bench_ingest TO mqtt2pg_owner" >/dev/null

# job_session NAME START: one job connection's pass (src/aggregate.c's recompute_shards): from shard START on,
# every shard with dirty keys that is free, locked for the session, drained in batches, unlocked.
job_session()
{
	psql "$OWNER_DB application_name=$1" -X -qAt -v ON_ERROR_STOP=1 -c "DO \$\$
	DECLARE s integer; n integer; k integer; shards integer[]; total bigint := 0;
	BEGIN
		SELECT array_agg(DISTINCT dirty_shard) INTO shards FROM aggregate_dirty_shards();
		FOR k IN 0..63 LOOP
			s := ($2 + k) % 64;
			CONTINUE WHEN shards IS NULL OR NOT s = ANY (shards);
			CONTINUE WHEN NOT pg_try_advisory_lock(hashtext('mqtt2pg.aggregate.shard'), s);
			LOOP
				PERFORM set_config('app.tenant_id', '$tenant', true);
				n := recompute_dirty_shard(${BENCH_BATCH:-500}, s);
				total := total + n;
				COMMIT;
				EXIT WHEN n = 0;
			END LOOP;
			PERFORM pg_advisory_unlock(hashtext('mqtt2pg.aggregate.shard'), s);
		END LOOP;
		INSERT INTO bench_done VALUES ($3, total);
		PERFORM pg_sleep(0.6);   -- the CPU sampler's last look
	END \$\$"
}

# before_session: the old leader's path for up to 60 s.
before_session()
{
	psql "$OWNER_DB application_name=$1" -X -qAt -v ON_ERROR_STOP=1 -c "DO \$\$
	DECLARE n integer; started timestamptz := clock_timestamp(); total bigint := 0;
	BEGIN
		LOOP
			PERFORM set_config('app.tenant_id', '$tenant', true);
			n := recompute_dirty(500);
			total := total + n;
			COMMIT;
			EXIT WHEN n = 0 OR clock_timestamp() - started > interval '60 seconds';
		END LOOP;
		INSERT INTO bench_done VALUES ($2, total);
		PERFORM pg_sleep(0.6);
	END \$\$"
}

# cpu_sampler NAME FILE: utime + stime of the backend with application_name NAME, sampled until it exits (last value).
cpu_sampler()
{
	local name=$1 out=$2 pid=
	for _ in $(seq 1 100); do
		pid=$(psql_super "SELECT pid FROM pg_stat_activity WHERE application_name = '$name'" 2>/dev/null || true)
		[[ -n "$pid" ]] && break
		sleep 0.05
	done
	echo 0 >"$out"
	[[ -n "$pid" ]] || return 0
	while [[ -r /proc/$pid/stat ]]; do
		awk '{ print $14 + $15 }' "/proc/$pid/stat" >"$out.tmp" 2>/dev/null && mv "$out.tmp" "$out"
		sleep 0.2
	done
}

# pass KIND N: N job sessions at once (KIND after) or the old path (KIND before); prints one line.
pass()
{
	local kind=$1 n=$2 p=$3 t0 t1 keys_after i pids=() samplers=() ticks=0 ing0 ing1
	psql_super "DROP TABLE IF EXISTS bench_marks" \
		"CREATE TABLE bench_marks AS SELECT marked_at FROM aggregate_dirty" >/dev/null
	ing0=$(psql_super "SELECT coalesce(sum(rows), 0) FROM bench_ingest")
	local wal0 wal1
	wal0=$(psql_super "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
	_it_now_ms t0
	for ((i = 0; i < n; i++)); do
		if [[ "$kind" == after ]]; then
			job_session "aggjob$p-$i" $((i * 64 / n + p * 7)) "$p" >/dev/null &
		else
			before_session "aggjob$p-$i" "$p" >/dev/null &
		fi
		pids+=($!)
		cpu_sampler "aggjob$p-$i" "$IT_DIR/cpu$p-$i" &
		samplers+=($!)
	done
	for i in "${pids[@]}"; do wait "$i"; done
	_it_now_ms t1
	for i in "${samplers[@]}"; do wait "$i" || true; done
	for ((i = 0; i < n; i++)); do ticks=$((ticks + $(cat "$IT_DIR/cpu$p-$i"))); done
	wal1=$(psql_super "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
	ing1=$(psql_super "SELECT coalesce(sum(rows), 0) FROM bench_ingest")
	keys_after=$(psql_super "SELECT count(*) FROM aggregate_dirty")
	local done_keys ms=$((t1 - t0 - 600))
	done_keys=$(psql_super "SELECT coalesce(sum(keys), 0) FROM bench_done WHERE pass = $p")
	psql_super "INSERT INTO bench_lag SELECT $p, (extract(epoch FROM to_timestamp($t1 / 1000.0) - marked_at) * 1000)::bigint
		FROM bench_marks" >/dev/null
	local lag
	lag=$(psql_super "SELECT round((percentile_cont(0.99) WITHIN GROUP (ORDER BY lag_ms) / 1000.0)::numeric, 1) || ' s'
		FROM bench_lag WHERE pass = $p")
	printf '%-6s pass %d, %d connection(s): %7d device-buckets (%d left) in %6d ms: %7.0f device-buckets/s, %5.0f us CPU each (job backends), WAL %d MB, ingest %.0f rows/s, lag p99 %s\n' \
		"$kind" "$p" "$n" "$done_keys" "$keys_after" "$ms" "$(echo "$done_keys * 1000 / $ms" | bc -l)" \
		"$(echo "$ticks * 1000000 / $hz / ($done_keys + 0.001)" | bc -l)" $(((wal1 - wal0) / 1048576)) \
		"$(echo "($ing1 - $ing0) * 1000 / ($t1 - $t0)" | bc -l)" "$lag"
}

if [[ -n "${BENCH_EXPLAIN:-}" ]]; then   # the plans of one batch, for whoever tunes it
	psql_super "LOAD 'auto_explain'" "SET auto_explain.log_min_duration = 0" "SET auto_explain.log_analyze = on" "SET auto_explain.log_timing = off" \
		"SET auto_explain.log_nested_statements = on" "BEGIN" "SELECT set_config('app.tenant_id', '$tenant', true)" \
		"SELECT recompute_dirty_shard(2000, 0)" "COMMIT" >/dev/null
	cat "$PG_LOG"
	exit 0
fi
if [[ -n "${BENCH_HOLD:-}" ]]; then   # keep the server for experiments
	echo "SUPER_DB='$SUPER_DB' tenant=$tenant"
	sleep "$BENCH_HOLD"
	exit 0
fi
if [[ -n "${BENCH_PROFILE:-}" ]]; then   # where a job backend spends its CPU (perf), over the history's keys
	job_session aggprof 0 0 >/dev/null &
	job=$!
	sleep 1
	pid=$(psql_super "SELECT pid FROM pg_stat_activity WHERE application_name = 'aggprof'")
	perf record -F 499 -g -o "$IT_DIR/perf.data" -p "$pid" 2>/dev/null &
	perf_pid=$!
	wait "$job"
	kill -INT "$perf_pid"; wait "$perf_pid" || true
	perf report -i "$IT_DIR/perf.data" --no-children --sort symbol -g none --percent-limit 1 --stdio 2>/dev/null >"$IT_DIR/perf.txt" || true; grep "%" "$IT_DIR/perf.txt" | head -40
	exit 0
fi
# The history's 5-minute rows (a catch-up: how fast the job rebuilds a backlog), with BENCH_HISTORY=1; without,
# the history has no 5-minute rows and its marks are dropped: the first pass then writes its neighbours' rows
# instead of finding them unchanged.
if [[ -n "${BENCH_HISTORY:-}" ]]; then
	pass after 2 0 | sed 's/^after  pass 0/history/'
else
	psql_super "TRUNCATE aggregate_dirty" >/dev/null
fi

# Ingest: once a second, a tenth of the devices (slot = second % 10) report every point at now().
psql "$OWNER_DB application_name=bench-ingest" -X -qAt -v ON_ERROR_STOP=1 -c "DO \$\$
DECLARE sl record; n integer; tick timestamptz;
BEGIN
	LOOP
		tick := date_trunc('second', clock_timestamp());
		SELECT * INTO sl FROM bench_slot WHERE slot = extract(epoch FROM tick)::bigint % 10;
		PERFORM set_config('app.tenant_id', '$tenant', true);
		SELECT count(*) INTO n FROM write_readings($tenant,
			array_fill((extract(epoch FROM tick) * 1000000)::bigint, ARRAY[cardinality(sl.devs)]), sl.devs, sl.pts,
			ARRAY(SELECT CASE WHEN c THEN 1000 + b + (extract(epoch FROM tick) - $t0) * 0.35 ELSE random() * 5000 END
			        FROM unnest(sl.ctr, sl.dev_base) AS u(c, b)));
		INSERT INTO bench_ingest VALUES (tick, n);
		COMMIT;
		PERFORM pg_sleep(greatest(0, extract(epoch FROM tick + interval '1 second' - clock_timestamp())));
	END LOOP;
END \$\$" >/dev/null 2>"$IT_DIR/ingest.err" &
ingest=$!
it_track_pid "$ingest"

echo "$devices devices x 4 points (2 gauges, 2 counters) every 10 s; $rows history rows; interval $interval s;" \
	"fsync $( [[ "$durable" == durable ]] && echo on || echo off); load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((p = 1; p <= passes; p++)); do
	sleep $interval
	pass after "$connections" "$p"
done
# BEFORE: the 014 recomputation on the same claim path, one session, one interval's keys, 60 s at most
psql_owner "$(sed -n '/^CREATE OR REPLACE FUNCTION recompute_buckets/,/^\$\$;/p' "$here/../../sql/014_energy.sql")" >/dev/null
sleep $interval
pass before 1 $((passes + 1))
kill "$ingest" 2>/dev/null || true
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
