-- SPDX-License-Identifier: Apache-2.0
-- 009: tenant isolation that holds against the project's own credentials (issue 12; tests/integration/it_security.sh).
--
-- 1. SECURITY DEFINER functions search pg_temp last. Before, `search_path = pg_catalog, public` let the
--    caller's temporary objects come first: the writer shadowed `points` with a TEMP VIEW calling its own
--    function, called register_point(), and the view ran as the owner (GRANT mqtt2pg_owner TO mqtt2pg_writer).
--    Only the writer keeps TEMPORARY on the database (`mqtt2pg import` stages rows in a temp table).
-- 2. Retention and recomputation take their parameters from the server, not from the ingest role. The writer
--    can no longer call drop_raw_partitions_before(cutoff) (it dropped every tenant's partitions with
--    'infinity') nor recompute_buckets(keys) (over empty windows it deleted another tenant's aggregates); it
--    calls apply_raw_retention() (cutoff from server_settings.raw_retention_days, set by `mqtt2pg migrate
--    --raw-retention-days N`) and recompute_dirty(limit) (only the keys aggregate_dirty holds for the tenant
--    in context, and never a bucket whose raw readings are gone). aggregate_dirty is under the tenant policy;
--    the writer cannot delete from it, and a key must name a device of its own tenant.
-- 3. Readers are confined by who they are, not by a setting they can change. tenant_members maps a role to
--    the tenants it may read (`mqtt2pg tenant grant-reader SLUG --role R`); every reader policy asks whether
--    current_user is a member of a mapped role. The app.tenant_id context policies now apply only to the
--    writer and the owner (the owner's SECURITY DEFINER functions run under the caller's context), so a
--    reader's SET app.tenant_id, options='-c app.tenant_id=N' or set_config() grants nothing. The registry
--    (tenants, devices, points) gets the same reader policy; the writer still reads all of it (validation).
-- 4. ensure_partitions() is bounded: nothing before server_settings.partition_floor (2000-01-01) nor more
--    than partitions_ahead_max_days (31) ahead, daily partitions only within daily_partition_days (366) of
--    now and monthly ones before, at most partitions_per_call_max (120) per call. A two-line CSV dated 1990
--    and 1999 made 3,652 empty daily partitions, after which readers ran out of lock table space.

-- --- server-side settings (owner writes; functions read) ---------------------------------------------------
CREATE TABLE server_settings (
    singleton                  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    raw_retention_days         integer NOT NULL DEFAULT 0 CHECK (raw_retention_days >= 0),  -- 0: keep raw readings
    partition_floor            date NOT NULL DEFAULT '2000-01-01',
    daily_partition_days       integer NOT NULL DEFAULT 366 CHECK (daily_partition_days BETWEEN 1 AND 3660),
    partitions_ahead_max_days  integer NOT NULL DEFAULT 31 CHECK (partitions_ahead_max_days BETWEEN 1 AND 366),
    partitions_per_call_max    integer NOT NULL DEFAULT 120 CHECK (partitions_per_call_max BETWEEN 1 AND 10000)
);
INSERT INTO server_settings DEFAULT VALUES;
REVOKE ALL ON server_settings FROM PUBLIC;
GRANT SELECT ON server_settings TO mqtt2pg_writer;

-- Raw readings older than this are dropped by retention; NULL when raw_retention_days is 0 (kept forever).
CREATE FUNCTION raw_retention_horizon() RETURNS timestamptz LANGUAGE sql STABLE
SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT CASE WHEN raw_retention_days > 0 THEN now() - raw_retention_days * interval '1 day' END
      FROM public.server_settings
$$;
REVOKE ALL ON FUNCTION raw_retention_horizon() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION raw_retention_horizon() TO mqtt2pg_writer;

-- True when the raw partition holding t exists (daily or monthly), or when measurements is not plainly
-- partitioned (TimescaleDB: retention is the only way raw data goes, and the horizon covers it).
CREATE FUNCTION raw_partition_exists(t timestamptz) RETURNS boolean LANGUAGE sql STABLE
SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT NOT EXISTS (SELECT 1 FROM pg_catalog.pg_partitioned_table WHERE partrelid = 'public.measurements'::regclass)
        OR to_regclass('public.measurements_' || to_char(t AT TIME ZONE 'UTC', 'YYYYMMDD')) IS NOT NULL
        OR to_regclass('public.measurements_' || to_char(t AT TIME ZONE 'UTC', 'YYYYMM')) IS NOT NULL
$$;
REVOKE ALL ON FUNCTION raw_partition_exists(timestamptz) FROM PUBLIC;

-- --- 4. bounded partitions -------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION ensure_partitions(from_time timestamptz, to_time timestamptz)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    s public.server_settings;
    today date := (now() AT TIME ZONE 'UTC')::date;
    daily_from date;   -- first day of the daily zone; whole months before it get one partition each
    lo date;
    hi date;
    d date;
    month_start date;
    names text[] := '{}';
    starts date[] := '{}';
    ends date[] := '{}';
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = 'public.measurements'::regclass) THEN
        RETURN 0;
    END IF;
    IF from_time IS NULL OR to_time IS NULL OR from_time > to_time OR NOT isfinite(from_time) OR NOT isfinite(to_time) THEN
        RAISE EXCEPTION 'ensure_partitions: no valid range (% .. %)', from_time, to_time USING ERRCODE = 'MQ002';
    END IF;
    SELECT * INTO STRICT s FROM public.server_settings;
    lo := (from_time AT TIME ZONE 'UTC')::date;
    hi := (to_time AT TIME ZONE 'UTC')::date;
    IF lo < s.partition_floor THEN
        RAISE EXCEPTION 'refusing partitions before % (server_settings.partition_floor): readings from % are out of range',
            s.partition_floor, lo USING ERRCODE = 'MQ002';
    END IF;
    IF hi > today + s.partitions_ahead_max_days THEN
        RAISE EXCEPTION 'refusing partitions more than % days ahead (server_settings.partitions_ahead_max_days): % requested',
            s.partitions_ahead_max_days, hi USING ERRCODE = 'MQ002';
    END IF;
    daily_from := date_trunc('month', today - s.daily_partition_days)::date;
    -- One creator at a time; others wait and then find the partitions there.
    PERFORM pg_advisory_xact_lock(hashtext('mqtt2pg.ensure_partitions'));
    d := lo;
    WHILE d <= hi LOOP
        month_start := date_trunc('month', d)::date;
        IF to_regclass('public.measurements_' || to_char(month_start, 'YYYYMM')) IS NOT NULL THEN
            d := (month_start + interval '1 month')::date;   -- a monthly partition covers the month
        ELSIF d >= daily_from
              -- a month that had daily partitions while it was recent keeps daily ones
              OR EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                          WHERE i.inhparent = 'public.measurements'::regclass
                            AND c.relname ~ ('^measurements_' || to_char(month_start, 'YYYYMM') || '[0-9]{2}$')) THEN
            IF to_regclass('public.measurements_' || to_char(d, 'YYYYMMDD')) IS NULL THEN
                names := names || ('measurements_' || to_char(d, 'YYYYMMDD'));
                starts := starts || d;
                ends := ends || (d + 1);
            END IF;
            d := d + 1;
        ELSE
            names := names || ('measurements_' || to_char(month_start, 'YYYYMM'));
            starts := starts || month_start;
            ends := ends || (month_start + interval '1 month')::date;
            d := (month_start + interval '1 month')::date;
        END IF;
    END LOOP;
    IF cardinality(names) > s.partitions_per_call_max THEN
        RAISE EXCEPTION 'refusing to create % partitions in one call (server_settings.partitions_per_call_max = %)',
            cardinality(names), s.partitions_per_call_max USING ERRCODE = 'MQ002';
    END IF;
    FOR i IN 1 .. cardinality(names) LOOP
        EXECUTE format('CREATE TABLE public.%I PARTITION OF public.measurements FOR VALUES FROM (%L) TO (%L)',
                       names[i], (starts[i]::timestamp AT TIME ZONE 'UTC'), (ends[i]::timestamp AT TIME ZONE 'UTC'));
    END LOOP;
    RETURN cardinality(names);
END
$$;
REVOKE ALL ON FUNCTION ensure_partitions(timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ensure_partitions(timestamptz, timestamptz) TO mqtt2pg_writer;

-- --- 2. retention: owner only, never closer than the server's setting --------------------------------------
CREATE OR REPLACE FUNCTION drop_raw_partitions_before(cutoff timestamptz)
RETURNS SETOF text LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    horizon timestamptz := public.raw_retention_horizon();
    part record;
BEGIN
    IF horizon IS NULL THEN
        RAISE EXCEPTION 'raw_retention_days is 0 (raw readings are kept): refusing to drop partitions before %', cutoff
            USING ERRCODE = 'MQ003', HINT = 'mqtt2pg migrate --raw-retention-days N';
    END IF;
    IF cutoff IS NULL OR cutoff > horizon THEN
        RAISE EXCEPTION 'cutoff % is closer to now than raw_retention_days allows (%)', cutoff, horizon
            USING ERRCODE = 'MQ003';
    END IF;
    -- Decided by what the table is (plainly partitioned or not), as ensure_partitions() does: an extension
    -- created after a plain migration leaves measurements partitioned.
    IF NOT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = 'public.measurements'::regclass) THEN
        RETURN QUERY EXECUTE 'SELECT drop_chunks(''measurements'', older_than => $1)::text' USING cutoff;
        RETURN;
    END IF;
    FOR part IN
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'public.measurements'::regclass
           AND ((c.relname ~ '^measurements_[0-9]{8}$'
                 AND to_date(substr(c.relname, 14), 'YYYYMMDD') + 1 <= (cutoff AT TIME ZONE 'UTC')::date)
             OR (c.relname ~ '^measurements_[0-9]{6}$'
                 AND (to_date(substr(c.relname, 14) || '01', 'YYYYMMDD') + interval '1 month')::date
                     <= (cutoff AT TIME ZONE 'UTC')::date))
         ORDER BY c.relname
    LOOP
        EXECUTE format('DROP TABLE public.%I', part.relname);
        RETURN NEXT part.relname;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION drop_raw_partitions_before(timestamptz) FROM PUBLIC, mqtt2pg_writer;

-- What the bridge's scheduler calls: the server's cutoff, no argument to forge. Nothing when retention is off.
CREATE FUNCTION apply_raw_retention() RETURNS SETOF text LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    horizon timestamptz := public.raw_retention_horizon();
BEGIN
    IF horizon IS NOT NULL THEN
        RETURN QUERY SELECT * FROM public.drop_raw_partitions_before(horizon);
    END IF;
END
$$;
REVOKE ALL ON FUNCTION apply_raw_retention() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION apply_raw_retention() TO mqtt2pg_writer;

-- --- 2. aggregate_dirty under the tenant policy; recomputation only of what it holds -----------------------
ALTER FUNCTION recompute_buckets(integer[], timestamptz[]) SET search_path = pg_catalog, public, pg_temp;
REVOKE ALL ON FUNCTION recompute_buckets(integer[], timestamptz[]) FROM PUBLIC, mqtt2pg_writer;

ALTER TABLE aggregate_dirty ENABLE ROW LEVEL SECURITY;
ALTER TABLE aggregate_dirty FORCE ROW LEVEL SECURITY;
REVOKE DELETE ON aggregate_dirty FROM mqtt2pg_writer;
-- A key names a device of its own tenant: a key under tenant A for tenant B's device would make B's next
-- mark of that (device, bucket) conflict with a row B's policy cannot see, and B's batch fail.
ALTER TABLE devices ADD CONSTRAINT devices_id_tenant_key UNIQUE (id, tenant_id);
ALTER TABLE aggregate_dirty ADD CONSTRAINT aggregate_dirty_device_tenant_fkey
    FOREIGN KEY (device_id, tenant_id) REFERENCES devices (id, tenant_id) NOT VALID;

-- Claims up to p_limit dirty keys of the tenant in context (app.tenant_id, set by the caller in its
-- transaction) and recomputes them; returns how many were claimed. A key whose bucket has no raw partition
-- (dropped: rows are only ever removed with their partition), or whose window reaches before the retention
-- horizon, is claimed but not recomputed: its raw readings are incomplete, and its aggregate is what outlives
-- them. (A missing partition for the 5-minute lookback alone is normal: the day before the first data.)
-- SKIP LOCKED: a key a writer is re-marking right now is left for the next round. Each statement takes a new
-- snapshot (VOLATILE), so the recomputation sees every row committed by the writers the claim waited for.
CREATE FUNCTION recompute_dirty(p_limit integer) RETURNS integer LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    tenant integer := NULLIF(current_setting('app.tenant_id', true), '')::integer;
    horizon timestamptz := public.raw_retention_horizon();
    claimed integer;
    devs integer[];
    buckets timestamptz[];
BEGIN
    IF tenant IS NULL THEN
        RAISE EXCEPTION 'recompute_dirty needs a tenant context (app.tenant_id)' USING ERRCODE = 'MQ004';
    END IF;
    IF p_limit IS NULL OR p_limit < 1 OR p_limit > 10000 THEN
        RAISE EXCEPTION 'recompute_dirty: limit % is not in 1..10000', p_limit USING ERRCODE = 'MQ004';
    END IF;
    WITH c AS (DELETE FROM public.aggregate_dirty WHERE (device_id, bucket) IN (
                   SELECT device_id, bucket FROM public.aggregate_dirty WHERE tenant_id = tenant
                    ORDER BY bucket LIMIT p_limit FOR UPDATE SKIP LOCKED)
               RETURNING device_id, bucket)
    SELECT count(*), array_agg(device_id), array_agg(bucket) INTO claimed, devs, buckets FROM c;
    IF claimed = 0 THEN
        RETURN 0;
    END IF;
    SELECT array_agg(k.d), array_agg(k.b) INTO devs, buckets
      FROM unnest(devs, buckets) AS k(d, b)
     WHERE (horizon IS NULL OR k.b - interval '5 minutes' >= horizon)
       AND public.raw_partition_exists(k.b);
    IF devs IS NOT NULL THEN
        PERFORM public.recompute_buckets(devs, buckets);
    END IF;
    RETURN claimed;
END
$$;
REVOKE ALL ON FUNCTION recompute_dirty(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION recompute_dirty(integer) TO mqtt2pg_writer;

-- The tenants with dirty keys, how many and since when (the job's work list and its lag metric). The
-- owner is under the tenant policy too (FORCE), so it looks at each tenant under that tenant's context, and
-- puts the caller's context back (a function's own SET clause would be neater, but a custom setting there
-- needs a superuser).
CREATE FUNCTION aggregate_dirty_tenants() RETURNS TABLE (dirty_tenant integer, dirty_keys bigint, oldest_mark timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    caller_context text := coalesce(current_setting('app.tenant_id', true), '');
    t integer;
BEGIN
    FOR t IN SELECT id FROM public.tenants ORDER BY id LOOP
        PERFORM set_config('app.tenant_id', t::text, true);
        RETURN QUERY SELECT t, count(*), min(a.marked_at) FROM public.aggregate_dirty a
                      WHERE a.tenant_id = t HAVING count(*) > 0;
    END LOOP;
    PERFORM set_config('app.tenant_id', caller_context, true);
END
$$;
REVOKE ALL ON FUNCTION aggregate_dirty_tenants() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aggregate_dirty_tenants() TO mqtt2pg_writer;

-- --- 3. readers by membership ----------------------------------------------------------------------------
CREATE TABLE tenant_members (
    role        regrole NOT NULL,
    tenant_id   integer NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    granted_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (role, tenant_id)
);
-- Each role sees its own mappings (the reader policies below read this table as the querying role). The
-- membership test goes through pg_roles so that a mapping left behind by a dropped role is skipped instead
-- of making pg_has_role() fail every reader query.
ALTER TABLE tenant_members ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_members_self ON tenant_members FOR SELECT
    USING (role IN (SELECT oid FROM pg_catalog.pg_roles WHERE pg_catalog.pg_has_role(current_user, oid, 'MEMBER')));
REVOKE ALL ON tenant_members FROM PUBLIC;
GRANT SELECT ON tenant_members TO PUBLIC;

DO $$
DECLARE
    owner_role text := current_user;
    -- The tenants current_user may read: an InitPlan, evaluated once per query. Explicit membership (not
    -- just tenant_members' own policy, which the table's owner bypasses): the owner reads no tenant this way.
    member_of text := 'ARRAY(SELECT m.tenant_id FROM public.tenant_members m WHERE m.role IN (SELECT r.oid FROM '
                      'pg_catalog.pg_roles r WHERE pg_catalog.pg_has_role(current_user, r.oid, ''MEMBER'')))';
    t record;
BEGIN
    -- The context policies: the writer (trusted to choose a tenant) and the owner (whose SECURITY DEFINER
    -- functions run under the caller's context). Readers no longer match them.
    FOR t IN SELECT * FROM (VALUES ('measurements_tenant', 'measurements'), ('measurements_5m_tenant', 'measurements_5m'),
                                   ('import_runs_tenant', 'import_runs'), ('import_run_devices_tenant', 'import_run_devices'))
                           AS v(policy, tab) LOOP
        EXECUTE format('ALTER POLICY %I ON public.%I TO mqtt2pg_writer, %I', t.policy, t.tab, owner_role);
        EXECUTE format('CREATE POLICY %I ON public.%I FOR SELECT USING (tenant_id = ANY (%s))',
                       t.tab || '_reader', t.tab, member_of);
    END LOOP;
    EXECUTE format('CREATE POLICY aggregate_dirty_tenant ON public.aggregate_dirty TO mqtt2pg_writer, %I
                    USING (tenant_id = NULLIF(current_setting(''app.tenant_id'', true), '''')::integer)
                    WITH CHECK (tenant_id = NULLIF(current_setting(''app.tenant_id'', true), '''')::integer)',
                   owner_role);

    -- The registry: the writer reads all of it (it validates every tenant's messages); a reader its tenants'.
    -- Not FORCEd: the owner's admin commands and register_point() see everything.
    ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
    ALTER TABLE devices ENABLE ROW LEVEL SECURITY;
    ALTER TABLE points ENABLE ROW LEVEL SECURITY;
    CREATE POLICY tenants_writer ON tenants FOR SELECT TO mqtt2pg_writer USING (true);
    CREATE POLICY devices_writer ON devices FOR SELECT TO mqtt2pg_writer USING (true);
    CREATE POLICY points_writer ON points FOR SELECT TO mqtt2pg_writer USING (true);
    EXECUTE format('CREATE POLICY tenants_reader ON public.tenants FOR SELECT USING (id = ANY (%s))', member_of);
    EXECUTE format('CREATE POLICY devices_reader ON public.devices FOR SELECT USING (tenant_id = ANY (%s))', member_of);
    -- points of the devices the role may see (the devices policy applies inside the subquery)
    CREATE POLICY points_reader ON points FOR SELECT USING (device_id IN (SELECT d.id FROM public.devices d));

    -- 1. TEMPORARY only for the writer (import's staging table). Needs the database's owner or grant option.
    BEGIN
        EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
        EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO mqtt2pg_writer', current_database());
    EXCEPTION WHEN insufficient_privilege THEN
        RAISE WARNING 'cannot revoke TEMPORARY on database % from PUBLIC as %: run as its owner: REVOKE TEMPORARY ON DATABASE % FROM PUBLIC; GRANT TEMPORARY ON DATABASE % TO mqtt2pg_writer',
            current_database(), owner_role, current_database(), current_database();
    END;

    -- 1. Every SECURITY DEFINER function in the schema, including any not rewritten above, searches pg_temp last.
    FOR t IN SELECT p.oid::regprocedure AS fn FROM pg_proc p
              WHERE p.prosecdef AND p.pronamespace = 'public'::regnamespace LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, public, pg_temp', t.fn);
    END LOOP;
END
$$;
