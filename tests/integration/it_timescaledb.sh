#!/usr/bin/env bash
# it_timescaledb.sh - the TimescaleDB path (issue 14): `migrate --timescaledb` creates the extension and makes
# measurements a hypertable with its chunks in _mqtt2pg_chunks and no default (time DESC) index; no role but
# the owner reaches a chunk directly (a chunk has no row-level security of its own and inherits the
# hypertable's grants: in TimescaleDB's default schema the reader read every tenant's rows from one and the
# writer inserted into one without a tenant context); a database migrated without --timescaledb on a server
# that preloads TimescaleDB is told so; chunks created in another schema (a database from before) are moved
# by secure_timescaledb_chunks(). Skips (exit 77) when TimescaleDB is not installed (.ci/run installs it).
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
. "$here/lib.sh"
. "$here/bridge.sh"

if [[ ! -e "$("$PG_BIN/pg_config" --pkglibdir)/timescaledb.so" ]]; then
	echo "SKIP it_timescaledb: TimescaleDB is not installed (tar -xzf ../shared/timescaledb/*.tar.gz -C /)"
	exit 77
fi
export IT_TIMESCALEDB=1
it_setup timescaledb
pg_start

# --- a second database, migrated without --timescaledb: plain partitions, and a warning that says so ---
psql_super "CREATE DATABASE plain OWNER mqtt2pg_owner"
"$MQTT2PG_BIN" migrate --db "host=127.0.0.1 port=$PGPORT dbname=plain user=mqtt2pg_owner password=owner-secret" \
	>"$IT_DIR/migrate-plain.log" 2>&1 || { cat "$IT_DIR/migrate-plain.log"; fail "migrate of the plain database failed"; }
grep -q "preloads TimescaleDB but the extension is not created" "$IT_DIR/migrate-plain.log" ||
	fail "migrate without --timescaledb on a TimescaleDB server did not say measurements will be plain"
assert_eq p "$(psql_as "host=$PG_SOCKDIR port=$PGPORT dbname=plain user=postgres" \
	"SELECT relkind FROM pg_class WHERE oid = 'public.measurements'::regclass")" "plain database: a partitioned table"
echo "ok: migrate without --timescaledb warns and keeps plain partitions"

# --- the real database: migrate --timescaledb ---
db_prepare
grep -q "created the timescaledb extension" "$IT_DIR/migrate.log" || fail "migrate --timescaledb did not create the extension"
assert_eq "_mqtt2pg_chunks" "$(psql_super "SELECT associated_schema_name FROM _timescaledb_catalog.hypertable
	WHERE schema_name = 'public' AND table_name = 'measurements'")" "measurements is a hypertable, chunks in _mqtt2pg_chunks"
assert_eq t "$(psql_super "SELECT measurements_is_hypertable()")" "detected by what the table is"
assert_eq "measurements_pkey" "$(psql_super "SELECT string_agg(indexname, ',') FROM pg_indexes WHERE tablename = 'measurements'")" \
	"no default (time DESC) index"
echo "ok: hypertable, private chunk schema, primary key only"

seed_two_tenants
m2p_admin tenant grant-reader acme --role acme_dash --create >/dev/null
psql_super "ALTER ROLE acme_dash PASSWORD 'acme-secret'"
ACME_DB="host=127.0.0.1 port=$PGPORT dbname=mqtt2pg user=acme_dash password=acme-secret"
READER_DB="host=127.0.0.1 port=$PGPORT dbname=mqtt2pg user=mqtt2pg_reader password=reader-secret"

# --- the storage contract (sql/015): no row security on the hypertable, compression on, no grants ---
assert_eq "f|device_id,point_id|time" "$(psql_super "SELECT c.relrowsecurity || '|' ||
	(SELECT string_agg(attname, ',' ORDER BY segmentby_column_index) FROM timescaledb_information.compression_settings
	  WHERE hypertable_name = 'measurements' AND segmentby_column_index IS NOT NULL) || '|' ||
	(SELECT string_agg(attname, ',') FROM timescaledb_information.compression_settings
	  WHERE hypertable_name = 'measurements' AND orderby_column_index IS NOT NULL)
	FROM pg_class c WHERE c.oid = 'public.measurements'::regclass" | sed 's/false/f/')" \
	"hypertable without row security, compressed by (device_id, point_id) ordered by time"
assert_eq "7 days" "$(psql_super "SELECT config->>'compress_after' FROM timescaledb_information.jobs
	WHERE hypertable_name = 'measurements' AND proc_name = 'policy_compression'")" "compression policy after 7 days (default)"
assert_eq "" "$(psql_super "SELECT string_agg(DISTINCT grantee::regrole::text, ',') FROM pg_class c, aclexplode(c.relacl)
	WHERE c.oid = 'public.measurements'::regclass AND grantee <> c.relowner")" "no role but the owner holds a privilege on measurements"
echo "ok: compression on, no row security, no grants"

# The writer, as the bridge does: a tenant's transaction-local context, rows through write_readings() (it has
# no privilege on measurements, nor USAGE on the chunk schema). This creates the chunks.
us() { echo "(extract(epoch FROM timestamptz '$1') * 1000000)::bigint"; }
write_as_writer() # TENANT DEVICE POINT TIME VALUE
{
	psql_as "$WRITER_DB" "BEGIN" "SELECT set_config('app.tenant_id', '$1', true)" \
		"SELECT count(*) FROM write_readings($1, ARRAY[$(us "$4")], ARRAY[$2], ARRAY[$3], ARRAY[$5]::float8[])" "COMMIT" | tail -1
}
TODAY=$(date -u +%F)
write_as_writer "$A" "$DA" "$PA" "$TODAY 10:00:00+00" 1 >/dev/null
write_as_writer "$B" "$DB" "$PB" "$TODAY 10:00:00+00" 2 >/dev/null
write_as_writer "$B" "$DB" "$PB" "$(date -u -d '-3 days' +%F) 10:00:00+00" 3 >/dev/null
assert_eq 3 "$(psql_super "SELECT count(*) FROM measurements")" "the writer wrote through write_readings"
if err=$(psql_as "$WRITER_DB" "BEGIN" "SELECT set_config('app.tenant_id', '$A', true)" \
	"INSERT INTO measurements VALUES (now(), $A, $DA, $PA, 9)" 2>&1); then fail "the writer inserted into the hypertable directly"; fi
grep -q "permission denied" <<<"$err" || fail "writer's direct insert: unexpected error: $err"
if err=$(psql_as "$WRITER_DB" "BEGIN" "SELECT set_config('app.tenant_id', '$A', true)" \
	"SELECT count(*) FROM write_readings($B, ARRAY[$(us "$TODAY 10:01:00+00")], ARRAY[$DB], ARRAY[$PB], ARRAY[9]::float8[])" 2>&1); then
	fail "write_readings wrote tenant B's row under tenant A's context"
fi
grep -q "not the transaction's tenant context" <<<"$err" || fail "cross-tenant write_readings: unexpected error: $err"
echo "ok: the writer writes only through write_readings, only its context tenant"

# Readers: the view, their tenants only; never the hypertable.
assert_eq "1|$A" "$(psql_as "$ACME_DB" "SELECT count(*) || '|' || min(tenant_id) FROM readings")" "a mapped reader reads its tenant through the view"
assert_eq 0 "$(psql_as "$ACME_DB" "SET app.tenant_id = '$B'" "SELECT count(*) FROM readings WHERE tenant_id = $B")" \
	"a reader's own tenant context grants nothing"
assert_eq 0 "$(psql_as "$READER_DB" "SELECT count(*) FROM readings")" "mqtt2pg_reader (no tenant mapped) sees nothing"
for who in "$ACME_DB" "$READER_DB" "$WRITER_DB"; do
	if err=$(psql_as "$who" "SELECT count(*) FROM measurements" 2>&1); then fail "a role read the hypertable directly: $err"; fi
	grep -q "permission denied" <<<"$err" || fail "direct read of the hypertable: unexpected error: $err"
done
echo "ok: no reader nor the writer reads the hypertable directly"

# all_chunks: every chunk of measurements and every compressed chunk behind them (schema-qualified).
all_chunks()
{
	psql_super "SELECT format('%I.%I', c.schema_name, c.table_name) FROM _timescaledb_catalog.chunk c
		JOIN _timescaledb_catalog.hypertable h ON h.id = c.hypertable_id
		WHERE to_regclass(format('%I.%I', c.schema_name, c.table_name)) IS NOT NULL AND (h.table_name = 'measurements' OR h.id = (SELECT compressed_hypertable_id
			FROM _timescaledb_catalog.hypertable WHERE table_name = 'measurements'))"
}
# expect_no_chunk ROLE_CONNINFO WHO: every chunk refuses every kind of access by that role.
expect_no_chunk()
{
	local conninfo=$1 who=$2 chunk sql err n=0
	for chunk in $(all_chunks); do
		for sql in "SELECT count(*) FROM $chunk" \
			"INSERT INTO $chunk SELECT * FROM $chunk LIMIT 0" \
			"UPDATE $chunk SET tenant_id = tenant_id" "DELETE FROM $chunk" "TRUNCATE $chunk"; do
			if err=$(psql_as "$conninfo" "$sql" 2>&1); then
				fail "$who: '$sql' was allowed on a chunk (got: $err)"
			fi
			grep -qi "permission denied" <<<"$err" || fail "$who: '$sql': unexpected error: $err"
		done
		n=$((n + 1))
	done
	echo "ok: $who cannot read, insert, update, delete or truncate any of the $n chunks directly"
}
expect_no_chunk "$READER_DB" "the reader"
expect_no_chunk "$ACME_DB" "a mapped reader"
expect_no_chunk "$WRITER_DB" "the writer"
assert_eq 0 "$(psql_as "$WRITER_DB" "SELECT secure_timescaledb_chunks()")" "new chunks copied no grant (there are none to copy)"

# --- compression with late and replayed data: exact and idempotent ---
# Tenant B's readings of three days ago: a 5-minute bucket of 5 rows, compressed, then replayed and extended.
OLD=$(date -u -d '-3 days' +%F)
recompute() { psql_as "$WRITER_DB" "BEGIN" "SELECT set_config('app.tenant_id', '$1', true)" "SELECT recompute_dirty(10000)" "COMMIT" >/dev/null; }
bucket_of() { psql_super "SELECT count || '|' || sum || '|' || min || '|' || max FROM measurements_5m
	WHERE device_id = $DB AND bucket = '$OLD 11:00:00+00'"; }
batch_b() # VALUES...: tenant B's rows at 11:00:00, 11:00:10, ... (one per value), one write_readings
{
	local times="" values="" i=0 v
	for v in "$@"; do
		times+="${times:+,}$(us "$OLD 11:00:$(printf %02d $((i * 10)))+00")"; values+="${values:+,}$v"; i=$((i + 1))
	done
	psql_as "$WRITER_DB" "BEGIN" "SELECT set_config('app.tenant_id', '$B', true)" \
		"SELECT count(*) FROM write_readings($B, ARRAY[$times], array_fill($DB, ARRAY[$i]), array_fill($PB, ARRAY[$i]),
			ARRAY[$values]::float8[])" "COMMIT" | tail -1
}
assert_eq 5 "$(batch_b 10 20 30 40 50)" "five new rows"
recompute "$B"
assert_eq "5|150|10|50" "$(bucket_of)" "the bucket before compression"
psql_super "SELECT compress_chunk(c) FROM show_chunks('measurements', older_than => now() - interval '2 days') c" >/dev/null
assert_eq 1 "$(psql_super "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'measurements' AND is_compressed")" \
	"the chunk of three days ago is compressed"
assert_eq 0 "$(batch_b 10 20 30 40 50)" "a replay into the compressed chunk writes nothing (ON CONFLICT DO NOTHING)"
assert_eq 0 "$(psql_super "SELECT count(*) FROM aggregate_dirty WHERE device_id = $DB")" "... and marks nothing"
assert_eq "5|150" "$(psql_super "SELECT count(*) || '|' || sum(value) FROM measurements WHERE device_id = $DB AND time::date = '$OLD'
	AND time >= '$OLD 11:00:00+00'")" "count and sum unchanged by the replay"
assert_eq 1 "$(batch_b 10 20 30 40 50 60)" "a late sixth row into the compressed chunk lands (the other five are duplicates)"
recompute "$B"
assert_eq "6|210|10|60" "$(bucket_of)" "its bucket is recomputed exactly from the compressed chunk"
expect_no_chunk "$READER_DB" "the reader (compressed chunks too)"
expect_no_chunk "$WRITER_DB" "the writer (compressed chunks too)"
echo "ok: late and replayed rows into a compressed chunk stay exact and idempotent"

# --- retention: a TimescaleDB policy and the same horizon for the writer ---
# Retention must outlive validation.max_age (7 days by default): refused by migrate and by check-config.
if "$MQTT2PG_BIN" migrate --db "$OWNER_DB" --raw-retention-days 2 >"$IT_DIR/migrate-short.log" 2>&1; then
	fail "migrate accepted a retention of 2 days with validation.max_age 7 days"
fi
grep -q "must be longer than validation.max_age" "$IT_DIR/migrate-short.log" || fail "migrate: unexpected refusal: $(cat "$IT_DIR/migrate-short.log")"
printf 'validation = { max_age = 864000; };\naggregates = { raw_retention_days = 10; };\n' >"$IT_DIR/short.conf"
if "$MQTT2PG_BIN" check-config --config "$IT_DIR/short.conf" >"$IT_DIR/check-short.log" 2>&1; then
	fail "check-config accepted raw_retention_days 10 with max_age 10 days"
fi
grep -q "raw_retention_days (10 days) must be longer than validation.max_age" "$IT_DIR/check-short.log" ||
	fail "check-config: unexpected output: $(cat "$IT_DIR/check-short.log")"
echo "ok: a retention not longer than validation.max_age is refused (migrate, check-config)"
printf 'validation = { max_age = 3600; };\n' >"$IT_DIR/maxage.conf"
"$MQTT2PG_BIN" migrate --config "$IT_DIR/maxage.conf" --db "$OWNER_DB" --raw-retention-days 2 --compress-after-days 1 >"$IT_DIR/migrate-ret.log" 2>&1 ||
	{ cat "$IT_DIR/migrate-ret.log"; fail "migrate --raw-retention-days failed"; }
assert_eq "2 days|1 day" "$(psql_super "SELECT (SELECT config->>'drop_after' FROM timescaledb_information.jobs
	WHERE hypertable_name = 'measurements' AND proc_name = 'policy_retention') || '|' ||
	(SELECT config->>'compress_after' FROM timescaledb_information.jobs
	WHERE hypertable_name = 'measurements' AND proc_name = 'policy_compression')")" "migrate made both policies"
psql_as "$WRITER_DB" "SELECT * FROM apply_raw_retention()" >/dev/null
chunks_before=$(psql_super "SELECT count(*) FROM show_chunks('measurements')")
if err=$(batch_b 70 2>&1); then fail "a replay older than the retention horizon was written: $err"; fi
grep -q "beyond_retention" <<<"$err" || fail "replay beyond retention: unexpected error: $err"
assert_eq "$chunks_before" "$(psql_super "SELECT count(*) FROM show_chunks('measurements')")" "no chunk re-created by the replay"
assert_eq 0 "$(psql_super "SELECT count(*) FROM measurements WHERE time < now() - interval '2 days'")" "the old chunk is gone"
assert_eq "6|210|10|60" "$(bucket_of)" "its aggregate outlives it, unchanged"
echo "ok: retention drops the old chunk; a replay beyond it is refused (beyond_retention) and re-creates nothing"
# The bridge's path: a reading validation still accepts (max_age 30 days here) but older than the database's
# horizon (2 days) is rejected with its own reason and counted; a current one of the same tenant goes in.
mosq_start
HTTP_PORT=$(free_port)
bridge_config "$IT_DIR/bridge.conf" 'validation = { max_age = 2592000; };' "http = { listen = \"127.0.0.1\"; port = $HTTP_PORT; };"
bridge_start "$IT_DIR/bridge.conf"
chunks_before=$(psql_super "SELECT count(*) FROM show_chunks('measurements')")
rows_before=$(rows)
publish solar/globex/INV-B/telemetry "{\"serial\":\"INV-B\",\"timestamp\":\"$(date -u -d '-10 days' +%FT%TZ)\",\"measurements\":{\"p\":7}}"
publish solar/globex/INV-B/telemetry "{\"serial\":\"INV-B\",\"timestamp\":\"$(date -u +%FT%TZ)\",\"measurements\":{\"p\":8}}"
wait_until 30 rejected_ge 1 "reason = 'beyond_retention'" || fail "the 10-day-old reading was not rejected as beyond_retention ($BRIDGE_LOG)"
wait_until 30 rows_ge $((rows_before + 1)) || fail "the current reading did not arrive"
assert_eq "$((rows_before + 1))|$chunks_before" "$(rows)|$(psql_super "SELECT count(*) FROM show_chunks('measurements')")" \
	"only the current reading was written; no chunk re-created"
assert_eq 1 "$(metric_at "$HTTP_PORT" 'mqtt2pg_messages_rejected_total{reason="beyond_retention"}')" "counted as beyond_retention"
bridge_stop
echo "ok: the bridge rejects a reading past the retention horizon as beyond_retention, counted"
"$MQTT2PG_BIN" migrate --db "$OWNER_DB" --raw-retention-days 0 >/dev/null 2>&1 || fail "migrate --raw-retention-days 0 failed"
assert_eq 0 "$(psql_super "SELECT count(*) FROM timescaledb_information.jobs WHERE hypertable_name = 'measurements' AND proc_name = 'policy_retention'")" \
	"retention 0: the policy is gone"

# --- a database from before: chunks created in TimescaleDB's default schema ---
psql_super "UPDATE _timescaledb_catalog.hypertable SET associated_schema_name = '_timescaledb_internal'
	WHERE schema_name = 'public' AND table_name = 'measurements'" >/dev/null
write_as_writer "$B" "$DB" "$PB" "$(date -u -d '-1 days' +%F) 10:00:00+00" 4 >/dev/null
old_chunk=$(psql_super "SELECT format('%I.%I', chunk_schema, chunk_name) FROM timescaledb_information.chunks
	WHERE hypertable_name = 'measurements' AND chunk_schema = '_timescaledb_internal'")
[[ -n "$old_chunk" ]] || fail "no chunk in _timescaledb_internal to test the move with"
# The exposure 012 closed by moving chunks: now also closed by there being no grants to copy (015).
if err=$(psql_as "$READER_DB" "SELECT value FROM $old_chunk" 2>&1); then fail "a chunk in the default schema is readable by the reader: $err"; fi
rows=$(psql_super "SELECT count(*) FROM measurements")
psql_owner "SELECT secure_timescaledb_chunks()" >/dev/null
expect_no_chunk "$READER_DB" "the reader (after the move)"
expect_no_chunk "$WRITER_DB" "the writer (after the move)"
assert_eq "$rows" "$(psql_super "SELECT count(*) FROM measurements")" "every row still there after the move"

# --- converting the plain database of the start: migrate --timescaledb, then convert_to_hypertable() ---
PLAIN_SUPER="host=$PG_SOCKDIR port=$PGPORT dbname=plain user=postgres"
PLAIN_OWNER="host=127.0.0.1 port=$PGPORT dbname=plain user=mqtt2pg_owner password=owner-secret"
psql_as "$PLAIN_SUPER" "INSERT INTO tenants (slug, name) VALUES ('acme', 'Acme'), ('globex', 'Globex')" \
	"INSERT INTO devices (tenant_id, serial) SELECT id, 'P-' || slug FROM tenants" \
	"INSERT INTO points (device_id, name) SELECT id, 'p' FROM devices" \
	"SELECT ensure_partitions(now() - interval '2 days', now())" \
	"INSERT INTO measurements SELECT now() - k * interval '1 minute', d.tenant_id, d.id, p.id, k
	   FROM generate_series(1, 2000) k, devices d JOIN points p ON p.device_id = d.id" \
	"INSERT INTO tenant_members (role, tenant_id) SELECT 'acme_dash'::regrole, id FROM tenants WHERE slug = 'acme'" >/dev/null
psql_as "$PLAIN_SUPER" "GRANT CONNECT ON DATABASE plain TO acme_dash" >/dev/null
"$MQTT2PG_BIN" migrate --db "$PLAIN_OWNER" --timescaledb >"$IT_DIR/migrate-convert.log" 2>&1 ||
	{ cat "$IT_DIR/migrate-convert.log"; fail "migrate --timescaledb of the plain database failed"; }
assert_eq f "$(psql_as "$PLAIN_SUPER" "SELECT measurements_is_hypertable()")" "the extension alone leaves the table plain"
psql_as "$PLAIN_OWNER" "SELECT convert_to_hypertable()" >"$IT_DIR/convert.log" 2>&1 || { cat "$IT_DIR/convert.log"; fail "convert_to_hypertable() failed"; }
assert_eq "t|4000|f|{security_barrier=true}|2" "$(psql_as "$PLAIN_SUPER" "SELECT measurements_is_hypertable() || '|' ||
	(SELECT count(*) FROM measurements) || '|' || (SELECT relrowsecurity FROM pg_class WHERE oid = 'measurements'::regclass) || '|' ||
	(SELECT reloptions::text FROM pg_class WHERE oid = 'public.readings'::regclass) || '|' ||
	(SELECT count(*) FROM timescaledb_information.compression_settings WHERE hypertable_name = 'measurements'
	  AND segmentby_column_index IS NOT NULL)" | sed 's/false/f/;s/true|/t|/')" \
	"converted: a hypertable with every row, no row security, the view still a security barrier, compression on"
assert_eq "2000|$(psql_as "$PLAIN_SUPER" "SELECT id FROM tenants WHERE slug = 'acme'")" \
	"$(psql_as "host=127.0.0.1 port=$PGPORT dbname=plain user=acme_dash password=acme-secret" "SELECT count(*) || '|' || min(tenant_id) FROM readings")" \
	"a reader reads its tenant's converted rows through the view"
assert_eq "_mqtt2pg_chunks" "$(psql_as "$PLAIN_SUPER" "SELECT string_agg(DISTINCT chunk_schema, ',') FROM timescaledb_information.chunks")" \
	"converted chunks in the private schema"
echo "ok: a plain partitioned database converts with migrate --timescaledb and convert_to_hypertable()"

echo "PASS it_timescaledb"
