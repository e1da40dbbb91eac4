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

# The writer, as the bridge does: a tenant's transaction-local context, rows through the hypertable. This
# creates the chunks (as the writer: it must not need the chunk schema for that).
write_as_writer() # TENANT DEVICE POINT TIME VALUE
{
	psql_as "$WRITER_DB" "BEGIN" "SELECT set_config('app.tenant_id', '$1', true)" \
		"INSERT INTO measurements VALUES ('$4', $1, $2, $3, $5)" "COMMIT" >/dev/null
}
write_as_writer "$A" "$DA" "$PA" "$(date -u +%F) 10:00:00+00" 1
write_as_writer "$B" "$DB" "$PB" "$(date -u +%F) 10:00:00+00" 2
write_as_writer "$B" "$DB" "$PB" "$(date -u -d '-3 days' +%F) 10:00:00+00" 3
assert_eq 3 "$(psql_super "SELECT count(*) FROM measurements")" "the writer wrote through the hypertable"

# expect_no_chunk ROLE_CONNINFO WHO: every chunk refuses every kind of access by that role.
expect_no_chunk()
{
	local conninfo=$1 who=$2 chunk sql err
	for chunk in $(psql_super "SELECT format('%I.%I', chunk_schema, chunk_name) FROM timescaledb_information.chunks
		WHERE hypertable_name = 'measurements'"); do
		for sql in "SELECT count(*) FROM $chunk" \
			"INSERT INTO $chunk VALUES (now(), $B, $DB, $PB, 99)" \
			"UPDATE $chunk SET value = 0" "DELETE FROM $chunk" "TRUNCATE $chunk"; do
			if err=$(psql_as "$conninfo" "$sql" 2>&1); then
				fail "$who: '$sql' was allowed on a chunk (got: $err)"
			fi
			grep -qi "permission denied" <<<"$err" || fail "$who: '$sql': unexpected error: $err"
		done
	done
	echo "ok: $who cannot read, insert, update, delete or truncate any chunk directly"
}
READER_DB="host=127.0.0.1 port=$PGPORT dbname=mqtt2pg user=mqtt2pg_reader password=reader-secret"
expect_no_chunk "$READER_DB" "the reader"
# A new chunk copies the hypertable's grants; the upkeep (which the bridge runs as the writer) takes them
# away, and inserts through the hypertable go on without them.
assert_eq 4 "$(psql_as "$WRITER_DB" "SELECT secure_timescaledb_chunks()")" \
	"the upkeep took the grants the 2 chunks copied (writer's and reader's)"
expect_no_chunk "$WRITER_DB" "the writer"
write_as_writer "$A" "$DA" "$PA" "$(date -u +%F) 11:00:00+00" 5
assert_eq 4 "$(psql_super "SELECT count(*) FROM measurements")" "inserts through the hypertable still work; no row changed by the attempts"

# --- a database from before: chunks created in TimescaleDB's default schema ---
psql_super "UPDATE _timescaledb_catalog.hypertable SET associated_schema_name = '_timescaledb_internal'
	WHERE schema_name = 'public' AND table_name = 'measurements'" >/dev/null
write_as_writer "$B" "$DB" "$PB" "$(date -u -d '-10 days' +%F) 10:00:00+00" 4
old_chunk=$(psql_super "SELECT format('%I.%I', chunk_schema, chunk_name) FROM timescaledb_information.chunks
	WHERE hypertable_name = 'measurements' AND chunk_schema = '_timescaledb_internal'")
[[ -n "$old_chunk" ]] || fail "no chunk in _timescaledb_internal to test the move with"
# This is the exposure 012 closes: the reader reads tenant B's raw value from the chunk, no context needed.
assert_eq 4 "$(psql_as "$READER_DB" "SELECT value FROM $old_chunk")" "a chunk in the default schema is readable by the reader"
psql_owner "SELECT secure_timescaledb_chunks()" >/dev/null
expect_no_chunk "$READER_DB" "the reader (after the move)"
expect_no_chunk "$WRITER_DB" "the writer (after the move)"
assert_eq 5 "$(psql_super "SELECT count(*) FROM measurements")" "every row still there after the move"

echo "PASS it_timescaledb"
