#!/usr/bin/env bash
# it_rls.sh - Row-Level Security is enforced by PostgreSQL itself, for the roles the bridge and dashboards
# use: as mqtt2pg_writer, a transaction with tenant A's context can neither read nor insert tenant B's
# rows; without a context nothing is visible; a context never outlives its transaction on a pooled
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
assert_eq "t|t" "$(psql_super "SELECT relrowsecurity || '|' || relforcerowsecurity FROM pg_class WHERE relname = 'measurements'" | sed 's/true/t/g')" \
	"RLS enabled and forced on measurements"

assert_eq 0 "$(as_writer "SELECT count(*) FROM measurements")" "no tenant context: no rows visible"
assert_eq "1|$DA" "$(as_writer "BEGIN" "SELECT set_config('app.tenant_id', '$A', true)" \
	"SELECT count(*) || '|' || min(device_id) FROM measurements" "COMMIT" | tail -1)" \
	"tenant A's context sees only tenant A's row"
expect_refused "the writer reading values, even under a tenant context it could forge" "permission denied" \
	"BEGIN" "SELECT set_config('app.tenant_id', '$B', true)" "SELECT value FROM measurements"
expect_refused "the writer reading aggregates" "permission denied" \
	"BEGIN" "SELECT set_config('app.tenant_id', '$B', true)" "SELECT avg FROM measurements_5m"
expect_refused "insert of tenant B's row under tenant A's context" "row-level security" \
	"BEGIN" "SELECT set_config('app.tenant_id', '$A', true)" \
	"INSERT INTO measurements VALUES (now() + interval '1 second', $B, $DB, $PB, 3)"
expect_refused "insert without a tenant context" "row-level security" \
	"INSERT INTO measurements VALUES (now() + interval '2 seconds', $A, $DA, $PA, 4)"
assert_eq "1|0" "$(as_writer "BEGIN" "SELECT set_config('app.tenant_id', '$A', true)" \
	"SELECT count(*) FROM measurements" "COMMIT" "SELECT count(*) FROM measurements" | tail -2 | tr '\n' '|' | sed 's/|$//')" \
	"the context ends with its transaction (same session sees nothing after COMMIT)"
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
assert_eq 1 "$(psql_as "$GLOBEX_DB" "SELECT count(*) FROM measurements WHERE tenant_id = $B")" "reader sees its tenant's row"
assert_eq 0 "$(psql_as "$GLOBEX_DB" "BEGIN" "SELECT set_config('app.tenant_id', '$A', true)" \
	"SELECT count(*) FROM measurements WHERE tenant_id = $A" "COMMIT" | tail -1)" \
	"reader never sees another tenant's row, even under that tenant's context"
assert_eq 0 "$(psql_as "$READER_DB" "BEGIN" "SELECT set_config('app.tenant_id', '$B', true)" \
	"SELECT count(*) FROM measurements" "COMMIT" | tail -1)" "mqtt2pg_reader itself (no tenant granted) sees nothing"
assert_eq 2 "$(psql_super "SELECT count(*) FROM measurements")" "nothing was written by the refused statements"
echo "PASS it_rls"
