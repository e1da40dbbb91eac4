#!/usr/bin/env bash
# it_energy.sh - counter semantics and local-time rollups against an independent reference (issue 16):
#  1. random readings (energy_ref.pl gen SEED) of two tenants, Europe/Berlin and Australia/Sydney, each with a
#     device around a spring-forward and one around a fall-back transition (23- and 25-hour local days): a
#     gauge, a lifetime counter and a daily counter with glitches (runs of 0 that come back), noise dips,
#     dips beyond the tolerance, real resets, upward spikes beyond max_rate, gaps (whole nights, and steps of
#     exactly 5 minutes), published out of order through the real bridge; after the job runs, every column
#     of every 5-minute, hourly, daily and monthly row equals the reference (energy_ref.pl check: Perl, the
#     README's rules, the C library's time zones) within 1e-9, no row missing or extra;
#  2. late readings (every 7th held back) and replays: still exact;
#  3. the local days of the four transitions are 23 and 25 hours of 5-minute buckets; energy_daily and
#     energy_daily_tenant agree with the daily rows; `mqtt2pg energy` prints them; a reader role sees only
#     its tenant's rollups;
#  4. `mqtt2pg aggregate rebuild` rebuilds 5-minute rows and rollups from scratch to the same result;
#  5. frozen buckets: with a retention horizon after March, a late reading into March is rejected
#     (beyond_retention) and changes no aggregate,
#     and dropping the raw partitions leaves every rollup in place.
# Knobs: IT_ENERGY_SEED (default 16), IT_ENERGY_ITERATIONS (default 1: each further iteration repeats 1-2
# with the next seed on emptied tables).
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
. "$here/lib.sh"
. "$here/bridge.sh"
ref="perl $here/energy_ref.pl"
seed=${IT_ENERGY_SEED:-16}
iterations=${IT_ENERGY_ITERATIONS:-1}

it_setup energy
pg_start
mosq_start
db_prepare
for tenant in berlin sydney; do
	m2p_admin tenant add "$tenant" >/dev/null
done
for serial in B1 B2 S1 S2; do
	tenant=$([[ $serial == B* ]] && echo berlin || echo sydney)
	m2p_admin device add "$serial" --tenant "$tenant" --point power:W --point "energy:Wh:::counter" \
		--point "daily:kWh:::counter" >/dev/null
done
$ref sql | psql -X -qAt -v ON_ERROR_STOP=1 -d "$OWNER_DB" >/dev/null
assert_eq "2 2 2" "$(psql_super "SELECT string_agg(n::text, ' ' ORDER BY kind) FROM (SELECT kind, count(*)
	FROM points WHERE device_id IN (SELECT id FROM devices WHERE serial IN ('B1', 'S1')) GROUP BY kind) k(kind, n)")" \
	"points of kinds counter, daily_counter and gauge"
# Partitions for the readings' days (2026, months before now: the bridge makes them only near now).
psql_owner "SELECT ensure_partitions('2026-03-26', '2026-04-07')" "SELECT ensure_partitions('2026-10-01', '2026-10-27')" >/dev/null

dirty_empty() { test "$(psql_super "SELECT count(*) FROM aggregate_dirty")" -eq 0; }
settle()
{
	wait_until 120 rows_ge "$1" || fail "only $(rows) of $1 rows"
	wait_until 120 dirty_empty || fail "dirty buckets left: $(psql_super "SELECT count(*) FROM aggregate_dirty")"
}

# The four tables as energy_ref.pl check reads them: serial, point, bucket (ms), local start, 5-minute buckets,
# then the columns (times in ms; increase empty when NULL).
dump_tables()
{
	local dir=$1 level table
	mkdir -p "$dir"
	for level in 5m 1h 1d 1mo; do
		table=measurements_$level
		local extra="to_char(a.local_start, 'YYYY-MM-DD HH24:MI:SS'), a.buckets"
		[[ $level == 5m ]] && extra="'', 1"
		psql_super "SELECT d.serial, p.name, round(extract(epoch FROM a.bucket) * 1000)::bigint, $extra,
			a.count, a.avg, a.min, a.max, a.first_value, round(extract(epoch FROM a.first_time) * 1000)::bigint,
			a.last_value, round(extract(epoch FROM a.last_time) * 1000)::bigint, a.sum, a.integral,
			coalesce(a.increase::text, '')
			FROM $table a JOIN devices d ON d.id = a.device_id JOIN points p ON p.id = a.point_id" |
			tr '|' '\t' >"$dir/$level.tsv"
	done
}

# check WHAT: every row of the four tables equals the reference over all readings generated so far.
check()
{
	local dir=$IT_DIR/dump.$RANDOM
	dump_tables "$dir"
	if ! $ref check "$IT_DIR/readings.tsv" "$dir" >"$dir/result" 2>&1; then
		cat "$dir/result" >&2
		fail "$1"
	fi
	echo "ok: $1 ($(tail -1 "$dir/result"))"
}

publish_tsv()
{
	local serial tenant
	for serial in $(cut -f1 "$1" | sort -u); do
		tenant=$([[ $serial == B* ]] && echo berlin || echo sydney)
		awk -F'\t' -v s="$serial" '$1 == s {
			ms = $2 % 1000; sec = ($2 - ms) / 1000
			printf "{\"timestamp\":\"%s.%03dZ\",\"measurements\":{\"power\":%s,\"energy\":%s,\"daily\":%s}}\n",
				strftime("%Y-%m-%dT%H:%M:%S", sec, 1), ms, $3, $4, $5 }' "$1" >"$IT_DIR/pub.jsonl"
		publish_lines "solar/$tenant/$serial/telemetry" "$IT_DIR/pub.jsonl"
	done
}

conf=$IT_DIR/bridge.conf
http_port=$(free_port)
bridge_config "$conf" 'aggregates = { interval = 1; };' 'validation = { max_age = 40000000; };' \
	"http = { listen = \"127.0.0.1\"; port = $http_port; };"
duplicates() { local n; n=$(metric_at "$http_port" mqtt2pg_rows_duplicate_total); echo "${n:-0}"; }
duplicates_ge() { test "$(duplicates)" -ge "$1"; }
bridge_start "$conf"

for ((iteration = 0; iteration < iterations; iteration++)); do
	s=$((seed + iteration))
	if ((iteration > 0)); then
		psql_super "TRUNCATE measurements, measurements_5m, measurements_1h, measurements_1d, measurements_1mo,
			aggregate_dirty"
	fi
	$ref gen "$s" >"$IT_DIR/readings.tsv"
	total=$(wc -l <"$IT_DIR/readings.tsv")
	awk 'NR % 7 != 0' "$IT_DIR/readings.tsv" | shuf --random-source=<(yes "$s") >"$IT_DIR/main.tsv"
	awk 'NR % 7 == 0' "$IT_DIR/readings.tsv" | shuf --random-source=<(yes "$s") >"$IT_DIR/late.tsv"
	it_log "seed $s: $total instants"

	# --- 1. out of order ----------------------------------------------------------------------------------
	publish_tsv "$IT_DIR/main.tsv"
	settle $(($(wc -l <"$IT_DIR/main.tsv") * 3))
	# The reference over what has arrived so far.
	cp "$IT_DIR/readings.tsv" "$IT_DIR/all.tsv"
	cp "$IT_DIR/main.tsv" "$IT_DIR/readings.tsv"
	check "seed $s: every 5-minute, hourly, daily and monthly row equals the reference after out-of-order ingest"

	# --- 2. late data and replays -------------------------------------------------------------------------
	cp "$IT_DIR/all.tsv" "$IT_DIR/readings.tsv"
	publish_tsv "$IT_DIR/late.tsv"
	settle $((total * 3))
	check "seed $s: still exact after late readings"
	head -300 "$IT_DIR/main.tsv" >"$IT_DIR/replay.tsv"
	want_duplicates=$(($(duplicates) + 900))
	publish_tsv "$IT_DIR/replay.tsv"
	wait_until 60 duplicates_ge "$want_duplicates" || fail "the replays never arrived ($(duplicates) duplicates)"
	settle $((total * 3))
	assert_eq $((total * 3)) "$(rows)" "seed $s: replays added no row"
	check "seed $s: still exact after replays"
	# bridge.sh's SQL reference of the 5-minute rows (it_aggregates, it_replicas) follows the same rules.
	r=$(aggregate_mismatches)
	assert_eq 0 "${r%|*}" "seed $s: bridge.sh's SQL reference agrees on all ${r#*|} 5-minute rows"
done

# --- 3. DST days, views, the energy command, readers ----------------------------------------------------------
day_hours()
{
	psql_super "SELECT (extract(epoch FROM local_period_end(bucket, t.timezone, 'day') - bucket) / 3600)::int
		FROM measurements_1d a JOIN devices d ON d.id = a.device_id JOIN tenants t ON t.id = d.tenant_id
		JOIN points p ON p.id = a.point_id WHERE d.serial = '$1' AND p.name = 'power' AND a.local_start = '$2'"
}
assert_eq 23 "$(day_hours B1 2026-03-29)" "Berlin 2026-03-29 is a 23-hour local day"
assert_eq 25 "$(day_hours B2 2026-10-25)" "Berlin 2026-10-25 is a 25-hour local day"
assert_eq 23 "$(day_hours S1 2026-10-04)" "Sydney 2026-10-04 is a 23-hour local day"
assert_eq 25 "$(day_hours S2 2026-04-05)" "Sydney 2026-04-05 is a 25-hour local day"
span=$(psql_super "SELECT round(extract(epoch FROM a.last_time - a.first_time) / 3600, 2) FROM measurements_1d a
	JOIN devices d ON d.id = a.device_id JOIN points p ON p.id = a.point_id
	WHERE d.serial = 'B2' AND p.name = 'power' AND a.local_start = '2026-10-25'")
awk -v s="$span" 'BEGIN { exit !(s > 24) }' || fail "B2's daily row of 2026-10-25 spans only $span hours of readings"
echo "ok: B2's daily row of the 25-hour 2026-10-25 spans $span hours of readings"
assert_eq 0 "$(psql_super "SELECT count(*) FROM energy_daily e FULL JOIN (SELECT a.device_id, a.point_id, a.increase
	FROM measurements_1d a JOIN points p ON p.id = a.point_id WHERE p.kind <> 'gauge') r USING (device_id, point_id)
	WHERE e.device_id IS NULL OR r.device_id IS NULL OR e.energy IS DISTINCT FROM (SELECT a.increase FROM measurements_1d a
	WHERE a.device_id = e.device_id AND a.point_id = e.point_id AND a.bucket = e.day_start)")" \
	"energy_daily holds exactly the counters' daily increases"
assert_eq 0 "$(psql_super "SELECT count(*) FROM energy_daily_tenant t WHERE abs(t.energy - (SELECT sum(e.energy)
	FROM energy_daily e WHERE e.tenant = t.tenant AND e.point = t.point AND e.day = t.day)) > 1e-9")" \
	"energy_daily_tenant sums its tenant's devices"
m2p_admin energy --tenant berlin --from 2026-10-24 --to 2026-10-26 >"$IT_DIR/energy.out" 2>&1 ||
	{ cat "$IT_DIR/energy.out"; fail "mqtt2pg energy failed"; }
cat "$IT_DIR/energy.out"
want=$(psql_super "SELECT round(energy::numeric, 3) FROM energy_daily WHERE serial = 'B2' AND point = 'energy' AND day = '2026-10-25'")
grep -qE "^2026-10-25 +B2 +energy +$want +Wh +25h" "$IT_DIR/energy.out" ||
	fail "mqtt2pg energy does not print B2's 25-hour day with $want Wh"
echo "ok: mqtt2pg energy prints the local days (B2 2026-10-25: $want Wh over 25 hours)"
rc=0
m2p_admin energy --tenant nope --from 2026-10-24 --to 2026-10-26 >/dev/null 2>"$IT_DIR/energy.err" || rc=$?
test "$rc" -ne 0 && grep -q "no tenant 'nope'" "$IT_DIR/energy.err" || fail "energy for an unknown tenant: rc $rc, $(cat "$IT_DIR/energy.err")"
rc=0
m2p_admin energy --tenant berlin --from yesterday-ish --to 2026-10-26 >/dev/null 2>"$IT_DIR/energy.err" || rc=$?
test "$rc" -ne 0 && grep -q "dates" "$IT_DIR/energy.err" || fail "energy with a bad date: rc $rc, $(cat "$IT_DIR/energy.err")"
echo "ok: mqtt2pg energy refuses an unknown tenant and a bad date"
psql_super "CREATE ROLE berlin_view LOGIN PASSWORD 'view-secret' IN ROLE mqtt2pg_reader"
m2p_admin tenant grant-reader berlin --role berlin_view >/dev/null
VIEW_DB="host=127.0.0.1 port=$PGPORT dbname=mqtt2pg user=berlin_view password=view-secret"
seen=$(psql -X -At "$VIEW_DB" -c "SELECT string_agg(DISTINCT d.serial, ',') FROM (SELECT device_id FROM measurements_1h
	UNION ALL SELECT device_id FROM measurements_1d UNION ALL SELECT device_id FROM measurements_1mo) a
	JOIN devices d ON d.id = a.device_id")
assert_eq "B1,B2" "$seen" "a reader of berlin sees berlin's rollups only"
assert_eq "berlin" "$(psql -X -At "$VIEW_DB" -c "SELECT string_agg(DISTINCT tenant, ',') FROM energy_daily")" \
	"energy_daily shows a reader its own tenant only"

# --- 4. rebuild -------------------------------------------------------------------------------------------------
psql_super "TRUNCATE measurements_5m, measurements_1h, measurements_1d, measurements_1mo"
m2p_admin aggregate rebuild --from 2026-03-01T00:00:00Z --to 2026-11-01T00:00:00Z 2>"$IT_DIR/rebuild.log" ||
	{ cat "$IT_DIR/rebuild.log"; fail "rebuild failed"; }
grep -q "berlin: .* recomputed" "$IT_DIR/rebuild.log" || fail "no progress output: $(cat "$IT_DIR/rebuild.log")"
check "rebuild from scratch reproduces every 5-minute row and rollup"

# --- 5. frozen buckets -------------------------------------------------------------------------------------------
# The horizon between the March/April and the October readings.
days=$(( ($(date -u +%s) - $(date -u -d 2026-05-01 +%s)) / 86400 ))
psql_owner "UPDATE server_settings SET raw_retention_days = $days" >/dev/null
snapshot() { psql_super "SELECT md5(string_agg(a::text, ',' ORDER BY a.device_id, a.point_id, a.bucket)) FROM (
	SELECT device_id, point_id, bucket, count, sum, increase FROM measurements_5m UNION ALL
	SELECT device_id, point_id, bucket, count, sum, increase FROM measurements_1d) a"; }
before=$(snapshot)
late_ts=$(awk -F'\t' '$1 == "B1" { t = $2 } END { print t - 61000 }' "$IT_DIR/readings.tsv")
printf 'B1\t%s\t1.000\t0.000\t0.000\n' "$late_ts" >"$IT_DIR/frozen.tsv"
publish_tsv "$IT_DIR/frozen.tsv"
# The database refuses it (write_readings, sql/015: beyond_retention), never re-creating what retention took.
beyond() { test "$(psql_super "SELECT count(*) FROM rejected_messages WHERE reason = 'beyond_retention'")" -ge 1; }
wait_until 60 beyond || fail "the late reading before the retention horizon was not rejected as beyond_retention"
settle $((total * 3))
assert_eq "$before" "$(snapshot)" "a late reading before the retention horizon changes no aggregate (frozen)"
rollups=$(psql_super "SELECT count(*) FROM measurements_1h") 
psql_owner "SELECT count(*) FROM apply_raw_retention()" >/dev/null
test "$(rows "time < '2026-05-01'")" -eq 0 || fail "retention dropped no raw partition"
assert_eq "$rollups" "$(psql_super "SELECT count(*) FROM measurements_1h")" "rollups outlive the raw readings"
assert_eq "$before" "$(snapshot)" "5-minute rows and daily rollups unchanged by retention"

bridge_stop
assert_eq 0 "$BRIDGE_RC" "clean exit"
echo "PASS it_energy"
