#!/usr/bin/env bash
# it_aggregates.sh - measurements_5m stays exactly what a query over the raw readings gives:
#  1. random readings for 3 tenants x 2 devices x 2 points (a gauge and a counter with resets), over three
#     hours with gaps, published out of order through the real bridge; after the job runs, every aggregate
#     row equals an independent reference computation over the raw table (all columns; floating-point
#     columns within a relative 1e-9), no bucket missing or extra;
#  2. late readings into buckets hours old, and replays of already-written messages: still exact;
#  3. single-reading buckets after a gap and counter resets behave as documented (sql/003_aggregates.sql);
#  4. two bridges on one database: exactly one leads the job; SIGKILL it and the other takes over within
#     an interval and keeps the aggregates exact;
#  5. `mqtt2pg aggregate rebuild` recomputes a range from scratch to the same result;
#  6. the sharded job (sql/016): two job connections taking shards (session advisory locks) and a CLI-style
#     recompute_dirty loop, all three at once over every key of the history, claim each key exactly once
#     (the claims add up to the keys marked, none left) and give exactly the reference.
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
. "$here/lib.sh"
. "$here/bridge.sh"

it_setup aggregates
pg_start
mosq_start
db_prepare
for t in 1 2 3; do
	m2p_admin tenant add "t$t" >/dev/null
	for d in 1 2; do
		m2p_admin device add "D$t$d" --tenant "t$t" --point power:W --point "energy:Wh:::counter" >/dev/null
	done
done
assert_eq 6 "$(psql_super "SELECT count(*) FROM points WHERE kind = 'counter'")" "six counter points registered"

# Buckets that differ from the reference (bridge.sh).
mismatches() { local r; r=$(aggregate_mismatches); echo "${r%|*}"; }
dirty_empty() { test "$(psql_super "SELECT count(*) FROM aggregate_dirty")" -eq 0; }
settle()
{
	wait_until 60 rows_ge "$1" || fail "only $(rows) of $1 rows"
	wait_until 30 dirty_empty || fail "dirty buckets left: $(psql_super "SELECT count(*) FROM aggregate_dirty")"
}

# Random readings: for each device, ~180 instants over 3 hours (irregular steps of 10 s to 9 min, so some
# buckets hold one reading after a gap), power random, energy a counter that resets once.
now=$(date -u +%s)
start=$(( (now - 5 * 3600) / 300 * 300 ))
awk -v start="$start" -v seed=42 'BEGIN {
	srand(seed)
	for (t = 1; t <= 3; t++) for (d = 1; d <= 2; d++) {
		dev = "D" t d; ts = start; energy = 1000 * t + d
		for (i = 0; i < 180; i++) {
			ts += (rand() < 0.08) ? 360 + int(rand() * 200) : 10 + int(rand() * 80)
			energy += int(rand() * 50)
			if (i == 90) energy = int(rand() * 10)          # counter reset
			frac = int(rand() * 1000)
			printf "%s\t%d.%03d\t%.3f\t%d\n", dev, ts, frac, rand() * 5000 - 50, energy
		}
	}
}' >"$IT_DIR/readings.tsv"
total_instants=$(wc -l <"$IT_DIR/readings.tsv")
# Late set: every 7th reading is held back and published after the first settle.
awk 'NR % 7 != 0' "$IT_DIR/readings.tsv" | shuf --random-source=<(yes) >"$IT_DIR/main.tsv"
awk 'NR % 7 == 0' "$IT_DIR/readings.tsv" >"$IT_DIR/late.tsv"

publish_tsv()
{
	local dev
	for dev in $(cut -f1 "$1" | sort -u); do
		local t=${dev:1:1}
		awk -F'\t' -v dev="$dev" '$1 == dev { printf "{\"timestamp\":%s,\"measurements\":{\"power\":%s,\"energy\":%s}}\n", $2, $3, $4 }' \
			"$1" >"$IT_DIR/pub.jsonl"
		publish_lines "solar/t$t/$dev/telemetry" "$IT_DIR/pub.jsonl"
	done
}

conf=$IT_DIR/bridge.conf
bridge_config "$conf" 'aggregates = { interval = 1; };' 'validation = { max_age = 86400; };'
bridge_start "$conf"

# --- 1. out of order ---------------------------------------------------------------------------------
publish_tsv "$IT_DIR/main.tsv"
expected=$(( $(wc -l <"$IT_DIR/main.tsv") * 2 ))
settle "$expected"
buckets=$(psql_super "SELECT count(*) FROM measurements_5m")
assert_eq 0 "$(mismatches)" "all $buckets aggregate rows equal the reference after out-of-order ingest"

# --- 2. late data and replays --------------------------------------------------------------------------
publish_tsv "$IT_DIR/late.tsv"
expected=$((total_instants * 2))
settle "$expected"
assert_eq 0 "$(mismatches)" "still exact after late readings into buckets hours old"
head -100 "$IT_DIR/readings.tsv" >"$IT_DIR/replay.tsv"
publish_tsv "$IT_DIR/replay.tsv"
sleep 2
settle "$expected"
assert_eq "$expected" "$(rows)" "replays added no row"
assert_eq 0 "$(mismatches)" "still exact after replays"

# --- 3. documented edge cases ---------------------------------------------------------------------------
single=$(psql_super "SELECT count(*) FROM measurements_5m a WHERE count = 1 AND integral = 0
	AND NOT EXISTS (SELECT 1 FROM measurements m WHERE m.device_id = a.device_id AND m.point_id = a.point_id
	                AND m.time < a.first_time AND m.time >= a.first_time - interval '5 minutes')")
test "$single" -gt 0 || fail "no single-reading bucket after a gap was produced"
echo "ok: $single single-reading buckets after a gap have integral 0"
assert_eq 0 "$(psql_super "SELECT count(*) FROM measurements_5m WHERE increase < 0")" "counter increase never negative (resets handled)"
reset_bucket=$(psql_super "SELECT count(*) FROM measurements_5m a JOIN points p ON p.id = a.point_id
	WHERE p.kind = 'counter' AND a.min < 10 AND a.max > 100")
test "$reset_bucket" -gt 0 || fail "no bucket contains a counter reset"
echo "ok: $reset_bucket bucket(s) with a counter reset match the reference"
assert_eq 0 "$(psql_super "SELECT count(*) FROM measurements_5m a JOIN points p ON p.id = a.point_id
	WHERE p.kind = 'gauge' AND a.increase IS NOT NULL")" "gauges carry no increase"

# --- 4. leadership ------------------------------------------------------------------------------------
grep -q "now the aggregate leader" "$BRIDGE_LOG" || fail "the only bridge did not lead"
first_pid=$BRIDGE_PID
first_log=$BRIDGE_LOG
conf2=$IT_DIR/bridge2.conf
BRIDGE_CLIENT_ID=mqtt2pg-aggregates-b bridge_config "$conf2" 'aggregates = { interval = 1; };' \
	'validation = { max_age = 86400; };'
bridge_start "$conf2"
second_pid=$BRIDGE_PID
second_log=$BRIDGE_LOG
sleep 3
assert_eq 0 "$(grep -c "now the aggregate leader" "$second_log" || true)" "a second bridge does not lead while the first lives"
assert_eq 1 "$(psql_super "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 AND granted")" \
	"exactly one advisory leadership lock held"
kill -KILL "$first_pid"
wait "$first_pid" 2>/dev/null || true
it_untrack_pid "$first_pid"
killed_at=$(now_s)
wait_until 10 grep -q "now the aggregate leader" "$second_log" || fail "no takeover after the leader died"
took=$(awk -v a="$killed_at" -v b="$(now_s)" 'BEGIN { printf "%.1f", b - a }')
echo "ok: the second bridge took over ${took}s after the leader was killed (interval 1 s)"
publish_tsv "$IT_DIR/readings.tsv"   # everything again: replays, nothing new
awk -F'\t' 'NR <= 20 { printf "%s\t%d.5\t%s\t%d\n", $1, $2 + 1, $3, $4 }' "$IT_DIR/readings.tsv" >"$IT_DIR/new.tsv"
publish_tsv "$IT_DIR/new.tsv"
expected=$((expected + 40))
settle "$expected"
assert_eq 0 "$(mismatches)" "exact after takeover"
grep -q "recomputed" "$second_log" || fail "the new leader did not recompute"

# --- 5. rebuild ---------------------------------------------------------------------------------------
psql_super "TRUNCATE measurements_5m"
from=$(date -u -d "@$((start - 600))" +%Y-%m-%dT%H:%M:%SZ)
to=$(date -u -d "@$now" +%Y-%m-%dT%H:%M:%SZ)
m2p_admin aggregate rebuild --from "$from" --to "$to" 2>"$IT_DIR/rebuild.log" || { cat "$IT_DIR/rebuild.log"; fail "rebuild failed"; }
grep -q "t3: .* recomputed" "$IT_DIR/rebuild.log" || fail "no progress output: $(cat "$IT_DIR/rebuild.log")"
assert_eq 0 "$(mismatches)" "rebuild from scratch reproduces every bucket"
bridge_stop
assert_eq 0 "$BRIDGE_RC" "clean exit"

# --- 6. concurrent job connections ----------------------------------------------------------------------
psql_super "TRUNCATE measurements_5m, measurements_1h, measurements_1d, measurements_1mo" \
	"CREATE TABLE it_claims (session text, keys bigint)" "GRANT INSERT ON it_claims TO mqtt2pg_writer" >/dev/null
for t in 1 2 3; do
	tid=$(psql_super "SELECT id FROM tenants WHERE slug = 't$t'")
	psql_as "$WRITER_DB" "BEGIN" "SELECT set_config('app.tenant_id', '$tid', true)" \
		"SELECT mark_dirty_range('$from', '$to')" "COMMIT" >/dev/null
done
keys=$(psql_super "SELECT count(*) FROM aggregate_dirty")
# shard_job NAME FIRST: src/aggregate.c's pass as the writer: from shard FIRST on, each free shard locked for the
# session, drained tenant by tenant in batches of 3 keys (so that the sessions interleave), unlocked.
shard_job()
{
	psql_as "$WRITER_DB" "DO \$\$
	DECLARE s integer; k integer; n integer; t record; total bigint := 0;
	BEGIN
		FOR k IN 0..63 LOOP
			s := ($2 + k) % 64;
			CONTINUE WHEN NOT pg_try_advisory_lock(hashtext('mqtt2pg.aggregate.shard'), s);
			FOR t IN SELECT DISTINCT dirty_tenant FROM aggregate_dirty_shards() WHERE dirty_shard = s LOOP
				LOOP
					PERFORM set_config('app.tenant_id', t.dirty_tenant::text, true);
					n := recompute_dirty_shard(3, s);
					total := total + n;
					COMMIT;
					EXIT WHEN n = 0;
				END LOOP;
			END LOOP;
			PERFORM pg_advisory_unlock(hashtext('mqtt2pg.aggregate.shard'), s);
		END LOOP;
		INSERT INTO it_claims VALUES ('$1', total);
	END \$\$" >/dev/null
}
# cli_job: `aggregate rebuild`'s loop (recompute_dirty, any shard) over every tenant at the same time.
cli_job()
{
	psql_as "$WRITER_DB" "DO \$\$
	DECLARE n integer; t integer; total bigint := 0;
	BEGIN
		FOR t IN SELECT id FROM tenants ORDER BY id LOOP
			LOOP
				PERFORM set_config('app.tenant_id', t::text, true);
				n := recompute_dirty(3);
				total := total + n;
				COMMIT;
				EXIT WHEN n = 0;
			END LOOP;
		END LOOP;
		INSERT INTO it_claims VALUES ('cli', total);
	END \$\$" >/dev/null
}
shard_job a 0 &
job_a=$!
shard_job b 32 &
job_b=$!
cli_job &
job_c=$!
wait "$job_a" || fail "job connection a failed"
wait "$job_b" || fail "job connection b failed"
wait "$job_c" || fail "the rebuild loop failed"
claims=$(psql_super "SELECT string_agg(session || '=' || keys, ' ' ORDER BY session) FROM it_claims")
assert_eq "$keys" "$(psql_super "SELECT sum(keys) FROM it_claims")" "the $keys marked keys claimed exactly once ($claims)"
assert_eq 0 "$(psql_super "SELECT count(*) FROM aggregate_dirty")" "no dirty key left"
assert_eq 0 "$(mismatches)" "two job connections and a rebuild at once give exactly the reference"
echo "PASS it_aggregates"
