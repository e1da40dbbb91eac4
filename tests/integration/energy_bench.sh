#!/usr/bin/env bash
# energy_bench.sh - what the counter rules and rollups of sql/014 cost the aggregate job (a measurement, not a
# test: not in ctest). Usage: energy_bench.sh [DEVICES] [MINUTES]
#
# One tenant, DEVICES devices x 4 points, a reading every 10 s for MINUTES minutes, dirty marks as the writer
# makes them (each reading's bucket and the next); then the job's own calls, recompute_dirty(500) under the
# tenant's context until nothing is left, timed, in three set-ups on the same rows:
#   before   - 008's recompute_buckets (no counter rules, no rollups), every point a gauge: the old job
#   gauges   - sql/014, every point a gauge (rollups; the wider read)
#   counters - sql/014, 2 of the 4 points counters (also each dirty key's neighbours)
#   set-based - sql/016 (runs, upserts), the same counters; then `again`: every key marked once more with
#              nothing changed (the upsert writes no row: WAL per device-bucket is printed)
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
. "$here/lib.sh"
. "$here/bridge.sh"
devices=${1:-1000}
minutes=${2:-30}

it_setup energy_bench
pg_start
db_prepare
m2p_admin tenant add bench >/dev/null
tenant=$(psql_super "SELECT id FROM tenants WHERE slug = 'bench'")
psql_super "INSERT INTO devices (tenant_id, serial) SELECT $tenant, 'D' || g FROM generate_series(1, $devices) g" \
	"INSERT INTO points (device_id, name, unit) SELECT d.id, n, 'W' FROM devices d,
		unnest(ARRAY['p1', 'p2', 'e1', 'e2']) n" \
	"SELECT ensure_partitions(now() - interval '2 days', now() + interval '1 day')" >/dev/null
start=$(psql_super "SELECT date_bin('5 minutes', now() - interval '$minutes minutes' - interval '10 minutes', timestamptz 'epoch')")
psql_super "INSERT INTO measurements (time, tenant_id, device_id, point_id, value)
	SELECT '$start'::timestamptz + s * interval '10 seconds' + (d.id % 10) * interval '1 second', $tenant, d.id, p.id,
	       CASE WHEN p.name LIKE 'e%' THEN 1000 + s * 3.5 ELSE random() * 5000 END
	  FROM devices d JOIN points p ON p.device_id = d.id, generate_series(0, $minutes * 6 - 1) s" >/dev/null
psql_super "VACUUM ANALYZE measurements" >/dev/null
rows=$(psql_super "SELECT count(*) FROM measurements")

mark()
{
	psql_super "INSERT INTO aggregate_dirty (tenant_id, device_id, bucket)
		SELECT DISTINCT $tenant, device_id, b FROM (
		  SELECT device_id, date_bin('5 minutes', time, timestamptz 'epoch') AS b FROM measurements
		  UNION SELECT device_id, date_bin('5 minutes', time, timestamptz 'epoch') + interval '5 minutes' FROM measurements) k
		ON CONFLICT DO NOTHING" >/dev/null
}

# run NAME: the job's loop, timed; prints keys, ms, keys/s and the database backend's CPU (from /proc).
run()
{
	mark
	local keys t0 t1 wal0 wal1
	keys=$(psql_super "SELECT count(*) FROM aggregate_dirty")
	wal0=$(psql_super "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
	_it_now_ms t0
	psql_owner "DO \$\$ BEGIN
		PERFORM set_config('app.tenant_id', '$tenant', false);
		LOOP
			EXIT WHEN recompute_dirty(500) = 0;
			COMMIT;
		END LOOP;
	END \$\$" >/dev/null
	_it_now_ms t1
	local rollups
	rollups=$(psql_super "SELECT (SELECT count(*) FROM measurements_5m) || ' 5m, ' || (SELECT count(*) FROM measurements_1h) || ' 1h, '
		|| (SELECT count(*) FROM measurements_1d) || ' 1d rows'")
	wal1=$(psql_super "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
	printf '%-9s %6d device-buckets in %6d ms: %7.0f device-buckets/s, %.3f ms each, WAL %.0f bytes each (%s)\n' "$1" "$keys" \
		$((t1 - t0)) "$(echo "$keys * 1000 / ($t1 - $t0)" | bc -l)" "$(echo "($t1 - $t0) / $keys" | bc -l)" \
		"$(echo "($wal1 - $wal0) / $keys" | bc -l)" "$rollups"
}

echo "$devices devices x 4 points, $minutes minutes at 10 s: $rows rows"
# before: 008's body (as migrated before 014) under 014's recompute_dirty; every point a gauge (no neighbours)
psql_owner "$(sed -n '/^CREATE OR REPLACE FUNCTION recompute_buckets/,/^\$\$;/p' "$here/../../sql/008_recompute_by_point.sql")" \
	"ALTER FUNCTION recompute_buckets(integer[], timestamptz[]) SET search_path = pg_catalog, public, pg_temp" >/dev/null
run before
psql_super "TRUNCATE measurements_5m, measurements_1h, measurements_1d, measurements_1mo"
psql_owner "$(sed -n '/^CREATE OR REPLACE FUNCTION recompute_buckets/,/^\$\$;/p' "$here/../../sql/014_energy.sql")" >/dev/null
run gauges
psql_super "TRUNCATE measurements_5m, measurements_1h, measurements_1d, measurements_1mo"
psql_super "UPDATE points SET kind = 'counter' WHERE name LIKE 'e%'" >/dev/null
run counters
psql_super "TRUNCATE measurements_5m, measurements_1h, measurements_1d, measurements_1mo"
psql_owner "$(sed -n '/^CREATE OR REPLACE FUNCTION recompute_buckets/,/^\$\$;/p' "$here/../../sql/016_aggregate_set_based.sql")" >/dev/null
run set-based
run again
