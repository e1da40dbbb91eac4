#!/usr/bin/env bash
# it_security.sh - tenant isolation holds against the project's own credentials (issue 12, findings 1-4).
# Each phase is an attack run as the role an attacker would hold; the test asserts the database refuses it
# and that nothing of another tenant changed. Phases run independently (one failing does not hide the others)
# and the test fails if any failed.
#
#  p1 writer -> owner: the writer shadows `points` with a TEMP VIEW calling pg_temp.evil(), which GRANTs the
#     owner role to the writer, then calls register_point() (SECURITY DEFINER). Then every SECURITY DEFINER
#     function must end its search_path with pg_temp, and no role but the writer may create temp tables.
#  p2 writer deletes history: drop_raw_partitions_before('infinity'), recompute_buckets() over empty windows,
#     DELETE/SELECT on aggregate_dirty, marking an old bucket dirty so the job deletes its aggregate; the
#     owner's retention cutoff cannot be closer than server_settings.raw_retention_days.
#  p3 reader switches tenant: a per-tenant reader role (tenant grant-reader) and mqtt2pg_reader try SET
#     app.tenant_id, options='-c app.tenant_id=N', set_config() inside the query; the registry, import runs
#     and aggregates are confined the same way; no SECURITY DEFINER function is executable by a reader.
#  p4 partition explosion: a 2-line CSV dated 1990 and 1999 imported as the writer, ensure_partitions()
#     over decades or far ahead; then an --allow-range import of old history makes a monthly partition,
#     which retention can drop.
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
. "$here/lib.sh"
. "$here/bridge.sh"

it_setup security
pg_start
db_prepare

seed_two_tenants
psql_super "SELECT ensure_partitions(now() - interval '1 day', now() + interval '1 day')" >/dev/null
# Seeded by the superuser (BYPASSRLS): one reading per tenant, today's aggregates of both tenants, and one
# aggregate of globex from 400 days ago whose raw partition is long gone (aggregates outlive raw data).
psql_super "INSERT INTO measurements VALUES (date_trunc('minute', now()) - interval '10 minutes', $A, $DA, $PA, 1),
                                             (date_trunc('minute', now()) - interval '10 minutes', $B, $DB, $PB, 2)"
psql_super "INSERT INTO measurements_5m (tenant_id, device_id, point_id, bucket, count, avg, min, max, first_value,
              first_time, last_value, last_time, sum, integral)
            SELECT t, d, p, b, 1, v, v, v, v, b, v, b, v, 0
              FROM (VALUES ($A, $DA, $PA, 1), ($B, $DB, $PB, 2)) k(t, d, p, v),
                   (VALUES (date_bin('5 minutes', now() - interval '10 minutes', timestamptz 'epoch')),
                           (date_bin('5 minutes', now() - interval '400 days', timestamptz 'epoch'))) w(b)"
OLD_BUCKET=$(psql_super "SELECT date_bin('5 minutes', now() - interval '400 days', timestamptz 'epoch')")
snapshot() { psql_super "SELECT (SELECT count(*) FROM measurements) || '/' || (SELECT count(*) FROM measurements_5m) || '/' ||
	(SELECT count(*) FROM pg_inherits WHERE inhparent = 'measurements'::regclass)"; }
SEEDED=$(snapshot)
it_log "seeded: readings/aggregates/partitions = $SEEDED"

as_writer() { psql_as "$WRITER_DB" "$@"; }
# refused WHAT PATTERN CONNINFO SQL...: the session must fail with an error matching PATTERN.
refused()
{
	local what=$1 pattern=$2 db=$3 err
	shift 3
	if err=$(psql_as "$db" "$@" 2>&1); then
		fail "$what: the database accepted it (output: $err)"
	fi
	grep -qi -- "$pattern" <<<"$err" || fail "$what: unexpected error: $err"
	echo "ok: $what (refused: $(grep -o -i -- "$pattern[^\"]*" <<<"$err" | head -1))"
}

# --- p1: the writer becomes the owner ------------------------------------------------------------------
p1_writer_to_owner()
{
	# Exactly the issue's probe: if register_point resolves `points` to the temp view, evil() runs as the owner.
	as_writer "CREATE FUNCTION pg_temp.evil() RETURNS integer LANGUAGE plpgsql AS
	             \$\$ BEGIN EXECUTE 'GRANT mqtt2pg_owner TO mqtt2pg_writer'; RETURN 1; END \$\$" \
		"CREATE TEMP VIEW points AS SELECT pg_temp.evil() AS id, $DA AS device_id, 'x'::text AS name" \
		"GRANT SELECT ON pg_temp.points TO PUBLIC" "SELECT register_point($DA, 'x', 10)" >"$IT_DIR/p1.out" 2>&1 || true
	if [ "$(psql_super "SELECT pg_has_role('mqtt2pg_writer', 'mqtt2pg_owner', 'MEMBER')")" = t ]; then
		# What the escalation gives: the owner's rights, FORCE off, every tenant's values.
		as_writer "SET ROLE mqtt2pg_owner" "ALTER TABLE measurements NO FORCE ROW LEVEL SECURITY" >/dev/null 2>&1 || true
		it_log "p1: the writer became the owner; it now reads $(as_writer "SET ROLE mqtt2pg_owner" \
			"SELECT count(DISTINCT tenant_id) FROM measurements" 2>&1 | tail -1) tenants' readings"
	fi
	assert_eq f "$(psql_super "SELECT pg_has_role('mqtt2pg_writer', 'mqtt2pg_owner', 'MEMBER')")" \
		"p1: register_point() with a temp view 'points' did not make the writer a member of the owner"
	refused "p1: SET ROLE mqtt2pg_owner as the writer" "permission denied" "$WRITER_DB" "SET ROLE mqtt2pg_owner"
	assert_eq t "$(psql_super "SELECT relforcerowsecurity FROM pg_class WHERE relname = 'measurements'")" \
		"p1: measurements still FORCE ROW LEVEL SECURITY"
	# The same shadowing against every other SECURITY DEFINER function: the catalog says where they look.
	assert_eq "" "$(psql_super "SELECT string_agg(p.oid::regprocedure::text, ', ') FROM pg_proc p
		WHERE p.prosecdef AND p.pronamespace = 'public'::regnamespace
		  AND NOT coalesce(EXISTS (SELECT 1 FROM unnest(p.proconfig) c
		                            WHERE c ~ '^search_path=' AND c ~ 'pg_temp\$'), false)")" \
		"p1: every SECURITY DEFINER function ends its search_path with pg_temp"
	refused "p1: the reader creates a temp table" "permission denied" "$READER_DB" "CREATE TEMP TABLE t (x int)"
	assert_eq "$SEEDED" "$(snapshot)" "p1: nothing changed"
}

# --- p2: the writer deletes everyone's history -----------------------------------------------------------
p2_writer_deletes_history()
{
	refused "p2: the writer calls drop_raw_partitions_before('infinity')" "permission denied" "$WRITER_DB" \
		"SELECT drop_raw_partitions_before('infinity')"
	refused "p2: the writer calls recompute_buckets() over globex's keys" "permission denied" "$WRITER_DB" \
		"SELECT recompute_buckets(ARRAY[$DB, $DB], ARRAY[date_bin('5 minutes', now() - interval '10 minutes',
		 timestamptz 'epoch'), timestamptz '$OLD_BUCKET'])"
	psql_super "INSERT INTO aggregate_dirty (tenant_id, device_id, bucket) VALUES ($B, $DB, now())"
	refused "p2: the writer deletes aggregate_dirty rows" "permission denied" "$WRITER_DB" "DELETE FROM aggregate_dirty"
	assert_eq 0 "$(as_writer "SELECT count(*) FROM aggregate_dirty")" "p2: without a context the writer sees no dirty key"
	assert_eq 0 "$(as_writer "BEGIN" "SELECT set_config('app.tenant_id', '$A', true)" \
		"SELECT count(*) FROM aggregate_dirty" "COMMIT" | tail -1)" "p2: under acme's context it sees none of globex's"
	psql_super "DELETE FROM aggregate_dirty"
	# Under globex's own context (the writer may choose a tenant) it marks globex's 400-day-old bucket
	# dirty, whose raw readings are gone, and runs the job's function: the aggregate must survive.
	as_writer "BEGIN" "SELECT set_config('app.tenant_id', '$B', true)" \
		"INSERT INTO aggregate_dirty (tenant_id, device_id, bucket) VALUES ($B, $DB, '$OLD_BUCKET')" \
		"SELECT recompute_dirty(100)" "COMMIT" >/dev/null 2>"$IT_DIR/p2.err" || true
	assert_eq 1 "$(psql_super "SELECT count(*) FROM measurements_5m WHERE device_id = $DB AND bucket = '$OLD_BUCKET'")" \
		"p2: an aggregate older than the raw data survives a forged dirty mark"
	# Retention: the owner's cutoff comes from server_settings; closer than raw_retention_days is refused.
	m2p_admin migrate --raw-retention-days 30 >"$IT_DIR/p2-migrate.log" 2>&1 || fail "migrate --raw-retention-days failed"
	assert_eq 30 "$(psql_super "SELECT raw_retention_days FROM server_settings")" "p2: migrate stored raw_retention_days"
	refused "p2: the owner drops raw partitions closer than raw_retention_days" "raw_retention_days" "$OWNER_DB" \
		"SELECT drop_raw_partitions_before(now())"
	refused "p2: the writer changes server_settings" "permission denied" "$WRITER_DB" \
		"UPDATE server_settings SET raw_retention_days = 0"
	assert_eq 0 "$(as_writer "SELECT count(*) FROM apply_raw_retention()")" \
		"p2: the writer's retention call drops nothing within the server's horizon"
	# A partition from before the retention was set (ensure_partitions itself refuses one past the horizon, 015).
	refused "p2: the writer re-creates a partition past the retention horizon" "beyond_retention" "$WRITER_DB" \
		"SELECT ensure_partitions(now() - interval '40 days', now() - interval '40 days')"
	psql_super "SELECT ensure_partitions_unchecked(now() - interval '40 days', now() - interval '40 days')" >/dev/null
	assert_eq "measurements_$(date -u -d '40 days ago' +%Y%m%d)" "$(as_writer "SELECT * FROM apply_raw_retention()")" \
		"p2: and drops a partition past it (40 days old, raw_retention_days = 30)"
	assert_eq "$SEEDED" "$(snapshot)" "p2: every reading, aggregate and partition is still there"
}

# --- p3: a reader switches tenant ----------------------------------------------------------------------
p3_reader_switches_tenant()
{
	local acme globex
	# The shared reader role first (on main it read any tenant this way: the issue's finding 3).
	local rows="SELECT (SELECT count(*) FROM readings) + (SELECT count(*) FROM measurements_5m)"
	# Readers read the view readings (sql/015); measurements itself is closed to them, on both storages.
	refused "p3: mqtt2pg_reader reads measurements directly" "permission denied" "$READER_DB" "SELECT count(*) FROM measurements"
	assert_eq 0 "$(psql_as "$READER_DB" "SET app.tenant_id = '$A'" "$rows")" \
		"p3: mqtt2pg_reader (no tenant granted) sees no reading or aggregate with SET app.tenant_id"
	assert_eq 0 "$(psql_as "$READER_DB options='-c app.tenant_id=$A'" "$rows")" \
		"p3: nor with options=-c app.tenant_id"
	m2p_admin tenant grant-reader acme --role acme_dash --create >"$IT_DIR/p3.out" 2>&1 ||
		{ cat "$IT_DIR/p3.out" >&2; fail "tenant grant-reader failed"; }
	psql_super "ALTER ROLE acme_dash PASSWORD 'acme-secret'"
	acme="host=127.0.0.1 port=$PGPORT dbname=mqtt2pg user=acme_dash password=acme-secret"
	assert_eq "acme_dash|acme" "$(m2p_admin tenant readers acme | awk 'NR == 2 { print $1 "|" $2 }')" \
		"p3: tenant readers lists the role"
	assert_eq "1|$A" "$(psql_as "$acme" "SELECT count(*) || '|' || min(tenant_id) FROM readings")" \
		"p3: acme_dash sees acme's reading without any context"
	refused "p3: acme_dash reads measurements directly" "permission denied" "$acme" "SELECT count(*) FROM measurements"
	assert_eq 0 "$(psql_as "$acme" "SET app.tenant_id = '$B'" "SELECT count(*) FROM readings WHERE tenant_id = $B")" \
		"p3: SET app.tenant_id does not show globex to acme_dash"
	assert_eq 0 "$(psql_as "$acme options='-c app.tenant_id=$B'" "SELECT count(*) FROM readings WHERE tenant_id = $B")" \
		"p3: options=-c app.tenant_id does not show globex to acme_dash"
	assert_eq 0 "$(psql_as "$acme" "SELECT count(*) FROM (SELECT set_config('app.tenant_id', '$B', false)) s,
		LATERAL (SELECT * FROM readings WHERE tenant_id = $B) m")" \
		"p3: set_config() inside the query does not show globex to acme_dash"
	# security_barrier: a leaky function of the reader's in the WHERE clause sees only rows the view let through.
	psql_super "GRANT CREATE ON SCHEMA public TO acme_dash" >/dev/null
	psql_as "$acme" "CREATE FUNCTION public.acme_leak(v double precision) RETURNS boolean LANGUAGE plpgsql
		COST 0.0000001 AS \$\$ BEGIN RAISE NOTICE 'leaked %', v; RETURN true; END \$\$" >/dev/null
	assert_eq 0 "$(psql_as "$acme" "SELECT count(*) FROM readings WHERE acme_leak(value) AND tenant_id = $B" 2>"$IT_DIR/p3-leak.err")" \
		"p3: a leaky function in the reader's query"
	if grep -q "leaked 2" "$IT_DIR/p3-leak.err"; then fail "p3: the reader's function saw globex's value through the view"; fi
	echo "ok: p3: ... saw no row of globex's (security_barrier)"
	psql_super "DROP FUNCTION public.acme_leak(double precision)" "REVOKE CREATE ON SCHEMA public FROM acme_dash" >/dev/null
	assert_eq 0 "$(psql_as "$acme" "SET app.tenant_id = '$B'" "SELECT count(*) FROM measurements_5m WHERE tenant_id = $B")" \
		"p3: nor globex's aggregates"
	assert_eq "INV-A" "$(psql_as "$acme" "SET app.tenant_id = '$B'" "SELECT string_agg(serial, ',') FROM devices")" \
		"p3: the registry shows acme_dash only acme's devices"
	assert_eq "acme" "$(psql_as "$acme" "SELECT string_agg(slug, ',') FROM tenants")" "p3: and only its tenant"
	m2p_admin device alias add "Globex Dach" INV-B --tenant globex >/dev/null
	m2p_admin device alias add "Acme Dach" INV-A --tenant acme >/dev/null
	assert_eq "Acme Dach" "$(psql_as "$acme" "SET app.tenant_id = '$B'" "SELECT string_agg(alias, ',') FROM device_aliases")" \
		"p3: and only its tenant's device aliases"
	assert_eq "" "$(psql_super "SELECT string_agg(oid::regprocedure::text, ', ') FROM pg_proc
		WHERE prosecdef AND has_function_privilege('acme_dash', oid, 'EXECUTE')")" \
		"p3: no SECURITY DEFINER function is executable by a reader"
	refused "p3: a reader reads rejected messages" "permission denied" "$acme" "SELECT payload FROM rejected_messages"
	refused "p3: a reader maps itself to another tenant" "permission denied" "$acme" \
		"INSERT INTO tenant_members (role, tenant_id) VALUES ('acme_dash', $B)"
}

p3_service_roles()
{
	local rc=0
	m2p_admin tenant grant-reader globex --role mqtt2pg_reader >"$IT_DIR/p3b.out" 2>&1 || rc=$?
	test "$rc" -ne 0 || fail "p3: grant-reader accepted mqtt2pg_reader (every tenant's dashboard role is a member)"
	grep -q "service role" "$IT_DIR/p3b.out" || fail "p3: unexpected refusal: $(cat "$IT_DIR/p3b.out")"
	echo "ok: p3: grant-reader refuses the shared roles ($(head -1 "$IT_DIR/p3b.out"))"
	m2p_admin tenant grant-reader globex --role globex_dash --create >/dev/null
	m2p_admin tenant revoke-reader globex --role globex_dash >/dev/null
	psql_super "ALTER ROLE globex_dash PASSWORD 'globex-secret'"
	assert_eq 0 "$(psql_as "host=127.0.0.1 port=$PGPORT dbname=mqtt2pg user=globex_dash password=globex-secret" \
		"SELECT count(*) FROM readings")" "p3: a revoked reader sees nothing"
}

# --- p4: partition explosion ---------------------------------------------------------------------------
p4_partition_bomb()
{
	local before after
	# p2 left a 30-day retention; this phase is about the partition bounds, which apply with retention off.
	m2p_admin migrate --raw-retention-days 0 >"$IT_DIR/p4-migrate0.log" 2>&1 || fail "migrate --raw-retention-days 0 failed"
	{
		echo "mqtt = { uri = \"tcp://127.0.0.1:1\"; client_id = \"security-import\"; };"
		echo "database = { conninfo = \"host=127.0.0.1 port=$PGPORT dbname=mqtt2pg user=mqtt2pg_writer\"; };"
		echo "spool = { directory = \"$IT_DIR/spool\"; };"
	} >"$IT_DIR/import.conf"
	printf 'time,serial,point,value\n1990-01-01T00:00:00Z,INV-A,p,1\n1999-12-31T00:00:00Z,INV-A,p,2\n' >"$IT_DIR/bomb.csv"
	before=$(psql_super "SELECT count(*) FROM pg_inherits WHERE inhparent = 'measurements'::regclass")
	MQTT2PG_DB_PASSWORD=$WRITER_PASSWORD "$MQTT2PG_BIN" -c "$IT_DIR/import.conf" import --format csv --tenant acme \
		"$IT_DIR/bomb.csv" >"$IT_DIR/p4.out" 2>&1 || true
	after=$(psql_super "SELECT count(*) FROM pg_inherits WHERE inhparent = 'measurements'::regclass")
	assert_eq "$before" "$after" "p4: a CSV dated 1990 and 1999 creates no partition"
	assert_eq 2 "$(psql_super "SELECT count(*) FROM rejected_messages WHERE reason = 'timestamp_out_of_range'")" \
		"p4: its two lines are rejected as timestamp_out_of_range"
	refused "p4: the writer asks for partitions over the 1990s" "partition" "$WRITER_DB" \
		"SELECT ensure_partitions('1990-01-01', '1999-12-31')"
	refused "p4: the writer asks for 25 years of partitions at once" "partition" "$WRITER_DB" \
		"SELECT ensure_partitions('2000-01-01', now())"
	refused "p4: the writer asks for partitions a year ahead" "partition" "$WRITER_DB" \
		"SELECT ensure_partitions(now(), now() + interval '400 days')"
	assert_eq "$before" "$(psql_super "SELECT count(*) FROM pg_inherits WHERE inhparent = 'measurements'::regclass")" \
		"p4: no partition was created by the refused calls"
	# Old history with an explicit range: one monthly partition for 2003-06, readable by the tenant.
	printf 'time,serial,point,value\n2003-06-10T00:00:00Z,INV-A,p,3\n2003-06-20T00:00:00Z,INV-A,p,4\n' >"$IT_DIR/old.csv"
	MQTT2PG_DB_PASSWORD=$WRITER_PASSWORD "$MQTT2PG_BIN" -c "$IT_DIR/import.conf" import --format csv --tenant acme \
		--allow-range 2003-01-01T00:00:00Z..2004-01-01T00:00:00Z "$IT_DIR/old.csv" >"$IT_DIR/p4b.out" 2>&1 ||
		{ cat "$IT_DIR/p4b.out" >&2; fail "p4: import --allow-range failed"; }
	assert_eq "measurements_200306" "$(psql_super "SELECT string_agg(c.relname, ',') FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'measurements'::regclass AND c.relname LIKE '%2003%'")" \
		"p4: history far from now goes to one monthly partition"
	assert_eq 2 "$(psql_super "SELECT count(*) FROM measurements WHERE time < '2004-01-01'")" "p4: both old rows are in"
	# Retention can drop monthly partitions too (the 3,652 daily ones of 1990-1999 could not be dropped).
	m2p_admin migrate --raw-retention-days 30 >"$IT_DIR/p4-migrate.log" 2>&1 || fail "migrate --raw-retention-days failed"
	assert_eq measurements_200306 "$(psql_owner "SELECT * FROM drop_raw_partitions_before(now() - interval '31 days')")" \
		"p4: the owner's retention drops the monthly partition"
	# A replay of those rows after retention: refused (beyond_retention), the partition is not re-created.
	refused "p4: the writer replays the dropped 2003 rows" "beyond_retention" "$WRITER_DB" "BEGIN" \
		"SELECT set_config('app.tenant_id', '$A', true)" \
		"SELECT count(*) FROM write_readings($A, ARRAY[(extract(epoch FROM timestamptz '2003-06-10') * 1000000)::bigint],
			ARRAY[$DA], ARRAY[$PA], ARRAY[3]::float8[])"
	assert_eq "" "$(psql_super "SELECT string_agg(c.relname, ',') FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'measurements'::regclass AND c.relname LIKE '%2003%'")" "p4: no 2003 partition re-created by the replay"
}

failed=()
phase()
{
	local rc=0
	it_log "--- $1"
	( set -euo pipefail; "$1" ) &
	wait $! || rc=$?
	if [ "$rc" -ne 0 ]; then
		failed+=("$1")
	fi
}
phase p1_writer_to_owner
phase p2_writer_deletes_history
phase p3_reader_switches_tenant
phase p3_service_roles
phase p4_partition_bomb
if [ ${#failed[@]} -gt 0 ]; then
	fail "phases failed: ${failed[*]}"
fi
echo "PASS it_security"
