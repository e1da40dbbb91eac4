#!/usr/bin/env bash
# it_rls.sh - Row-Level Security is enforced by PostgreSQL itself, for the roles the bridge and dashboards
# use: as mqtt2pg_writer, a transaction with tenant A's context can neither read nor insert tenant B's
# rows (the writer has no privilege on measurements: write_readings() is its only way in, sql/015); without a
# context nothing is written; a context never outlives its transaction on a pooled
# session (a writer connection carries no tenant's context into the next batch); the writer cannot read
# reading values at all (even with a context it forged), nor update or delete readings, nor read rejected
# messages; the roles are not owner, superuser or BYPASSRLS. A reader role sees its granted tenant only,
# whatever context it sets (tenant grant-reader; it_security has the attacks).
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
. "$here/lib.sh"
. "$here/bridge.sh"

it_setup rls
pg_start
db_prepare

seed_two_tenants
psql_super "SELECT ensure_partitions(now() - interval '1 day', now() + interval '1 day')" >/dev/null
# The superuser (BYPASSRLS) seeds one row per tenant.
psql_super "INSERT INTO measurements VALUES (now(), $A, $DA, $PA, 1), (now(), $B, $DB, $PB, 2)"

# as_writer SQL...: one session, each -c its own transaction unless it says BEGIN.
as_writer() { psql_as "$WRITER_DB" "$@"; }
# expect_refused WHAT PATTERN SQL...: the statement must fail with an error matching PATTERN.
expect_refused()
{
	local what=$1 pattern=$2 err
	shift 2
	if err=$(psql_as "$WRITER_DB" "$@" 2>&1); then
		fail "$what: the database accepted it"
	fi
	grep -qi -- "$pattern" <<<"$err" || fail "$what: unexpected error: $err"
	echo "ok: $what (refused: $(grep -o -i -- "$pattern[^\"]*" <<<"$err" | head -1))"
}

assert_eq "f|f|f" "$(psql_super "SELECT rolsuper || '|' || rolbypassrls || '|' || rolcreaterole FROM pg_roles WHERE rolname = 'mqtt2pg_writer'" | sed 's/false/f/g')" \
	"writer is not superuser, not BYPASSRLS"
assert_eq "mqtt2pg_owner" "$(psql_super "SELECT tableowner FROM pg_tables WHERE tablename = 'measurements'")" \
	"writer does not own measurements"
# Storage: on plain PostgreSQL measurements keeps FORCE ROW LEVEL SECURITY as a second wall; on TimescaleDB the
# hypertable has none (compression needs that, sql/015) and the privileges below are the wall, on both.
if [[ "${IT_TIMESCALEDB:-0}" == 1 ]]; then
	assert_eq "f|t" "$(psql_super "SELECT relrowsecurity || '|' || measurements_is_hypertable() FROM pg_class
		WHERE oid = 'public.measurements'::regclass" | sed 's/false/f/g;s/true/t/g')" \
		"TimescaleDB: a hypertable without row security (compression can be on)"
else
	assert_eq "t|t" "$(psql_super "SELECT relrowsecurity || '|' || relforcerowsecurity FROM pg_class WHERE relname = 'measurements'" | sed 's/true/t/g')" \
		"RLS enabled and forced on measurements"
fi
assert_eq "" "$(psql_super "SELECT string_agg(DISTINCT grantee::regrole::text, ',') FROM pg_class c, aclexplode(c.relacl)
	WHERE c.oid = 'public.measurements'::regclass AND grantee <> c.relowner")" "no role but the owner holds a privilege on measurements"

# write SQL...: the writer's own path, write_readings() (what the bridge's statement calls, readings_sql.h).
# call TENANT DEVICE POINT VALUE: the statement, one row at now() + VALUE seconds.
call() { echo "SELECT count(*) FROM write_readings($1, ARRAY[(extract(epoch FROM now() + interval '$4 seconds') * 1000000)::bigint], ARRAY[$2], ARRAY[$3], ARRAY[$4]::float8[])"; }
expect_refused "the writer reading measurements at all, even under a tenant context it could forge" "permission denied" \
	"BEGIN" "SELECT set_config('app.tenant_id', '$B', true)" "SELECT count(*) FROM measurements"
expect_refused "the writer reading aggregates" "permission denied" \
	"BEGIN" "SELECT set_config('app.tenant_id', '$B', true)" "SELECT avg FROM measurements_5m"
expect_refused "the writer inserting into measurements directly, even with a context" "permission denied" \
	"BEGIN" "SELECT set_config('app.tenant_id', '$A', true)" "INSERT INTO measurements VALUES (now() + interval '1 second', $A, $DA, $PA, 3)"
expect_refused "write_readings for tenant B under tenant A's context" "not the transaction's tenant context" \
	"BEGIN" "SELECT set_config('app.tenant_id', '$A', true)" "$(call "$B" "$DB" "$PB" 3)"
expect_refused "write_readings without a tenant context" "not the transaction's tenant context" "$(call "$A" "$DA" "$PA" 4)"
expect_refused "write_readings of tenant B's device under tenant A's context" "aggregate_dirty_device_tenant_fkey" \
	"BEGIN" "SELECT set_config('app.tenant_id', '$A', true)" "$(call "$A" "$DB" "$PB" 5)"
assert_eq "1" "$(as_writer "BEGIN" "SELECT set_config('app.tenant_id', '$A', true)" "$(call "$A" "$DA" "$PA" 6)" "COMMIT" | sed -n 2p)" \
	"write_readings under its own tenant's context writes the row"
expect_refused "write_readings in the same session after COMMIT (the context ended with its transaction)" \
	"not the transaction's tenant context" \
	"BEGIN" "SELECT set_config('app.tenant_id', '$A', true)" "SELECT 1" "COMMIT" "$(call "$A" "$DA" "$PA" 7)"
expect_refused "update of a reading" "permission denied" \
	"BEGIN" "SELECT set_config('app.tenant_id', '$A', true)" "UPDATE measurements SET value = 9"
expect_refused "delete of a reading" "permission denied" \
	"BEGIN" "SELECT set_config('app.tenant_id', '$A', true)" "DELETE FROM measurements"
expect_refused "reading rejected messages" "permission denied" "SELECT detail, payload FROM rejected_messages"
expect_refused "registering a device" "permission denied" "INSERT INTO devices (tenant_id, serial) VALUES ($A, 'X')"
# Readers: a login role mapped to its tenant by `tenant grant-reader` (sql/009), not a context it could set.
m2p_admin tenant grant-reader globex --role globex_dash --create >/dev/null
psql_super "ALTER ROLE globex_dash PASSWORD 'globex-secret'"
GLOBEX_DB="host=127.0.0.1 port=$PGPORT dbname=mqtt2pg user=globex_dash password=globex-secret"
# Readers read the view `readings` (sql/015), on both storages; measurements itself is closed to them.
assert_eq 1 "$(psql_as "$GLOBEX_DB" "SELECT count(*) FROM readings WHERE tenant_id = $B")" "reader sees its tenant's row"
assert_eq "1|$B" "$(psql_as "$GLOBEX_DB" "SELECT count(*) || '|' || min(tenant_id) FROM readings")" "... and no other"
assert_eq 0 "$(psql_as "$GLOBEX_DB" "BEGIN" "SELECT set_config('app.tenant_id', '$A', true)" \
	"SELECT count(*) FROM readings WHERE tenant_id = $A" "COMMIT" | tail -1)" \
	"reader never sees another tenant's row, even under that tenant's context"
assert_eq 0 "$(psql_as "$READER_DB" "BEGIN" "SELECT set_config('app.tenant_id', '$B', true)" \
	"SELECT count(*) FROM readings" "COMMIT" | tail -1)" "mqtt2pg_reader itself (no tenant granted) sees nothing"
for who in "$GLOBEX_DB" "$READER_DB"; do
	if err=$(psql_as "$who" "SELECT count(*) FROM measurements" 2>&1); then fail "a reader read measurements directly: $err"; fi
	grep -q "permission denied" <<<"$err" || fail "a reader reading measurements: unexpected error: $err"
done
echo "ok: readers cannot read measurements directly (permission denied), only the view"
assert_eq 3 "$(psql_super "SELECT count(*) FROM measurements")" "nothing but the one accepted write_readings was written"
echo "PASS it_rls"
