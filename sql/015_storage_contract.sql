-- SPDX-License-Identifier: Apache-2.0
-- 015: one storage contract on plain PostgreSQL and on TimescaleDB, with compression possible (issue 14).
--
-- TimescaleDB refuses compression ("columnstore cannot be used on table with row security") and continuous
-- aggregates on a table with row-level security, and a chunk has no policy of its own. So tenant isolation
-- of raw readings no longer rests on the table's policy, on either storage:
--   * writes: the writer has no privilege on measurements at all. It calls write_readings(tenant, arrays)
--     (SECURITY DEFINER, search_path pinned with pg_temp last), which refuses unless the tenant argument is
--     the transaction's tenant context (app.tenant_id, set by the writer in the same transaction), stamps
--     every row with it, inserts ON CONFLICT DO NOTHING and marks the dirty buckets of the new rows, exactly
--     as the writer's statement did before (include/readings_sql.h). A device of another tenant cannot get
--     rows in: its dirty mark fails the (device_id, tenant_id) foreign key of aggregate_dirty (009).
--     Rows older than the raw retention horizon are refused with SQLSTATE MQ005 (the writer records them as
--     beyond_retention): a replay never re-creates a dropped chunk or partition.
--   * reads: tenant-facing roles have no privilege on measurements either. They read the view `readings`
--     (security_barrier), owned by the owner, which returns the rows of the tenants the caller (current_user)
--     is mapped to in tenant_members: the same membership rule as 009's reader policies. A reader's SET
--     app.tenant_id grants nothing (the view does not look at it).
--   * on plain PostgreSQL measurements keeps its FORCE ROW LEVEL SECURITY as a second wall (the function runs
--     under the writer's tenant context, the view's rows pass the reader policy); on TimescaleDB the
--     hypertable's row security is turned off, so compression can be on, and the two functions/views are the
--     wall. Chunks and partitions copy the table's grants, and there are none left to copy.
--   * the writer loses even 005's SELECT on the key columns (without row security it would count every
--     tenant's rows; count_readings() and mark_dirty_range() do what it was for, for the context tenant) and
--     USAGE on _mqtt2pg_chunks (012): it never inserts into measurements, so it never looks a chunk up.
--
-- Compression (TimescaleDB): segment by (device_id, point_id), order by time, a policy after
-- server_settings.compress_after_days (default 7; `mqtt2pg migrate --compress-after-days N`, 0 = off).
-- Retention: server_settings.raw_retention_days (`migrate --raw-retention-days N`), applied by the bridge's
-- scheduler on both storages and, on TimescaleDB, also by a retention policy job with the same horizon.

ALTER TABLE server_settings ADD COLUMN compress_after_days integer NOT NULL DEFAULT 7
    CHECK (compress_after_days BETWEEN 0 AND 36500);

-- --- writes ------------------------------------------------------------------------------------------------
-- Returns (device_id, time) of each row that was new (a replayed row returns nothing), as the writer's
-- RETURNING did. p_times are microseconds since the epoch.
CREATE FUNCTION write_readings(p_tenant integer, p_times bigint[], p_devices integer[], p_points integer[],
                               p_values double precision[])
RETURNS TABLE (new_device_id integer, new_time timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    tenant integer := NULLIF(current_setting('app.tenant_id', true), '')::integer;
    horizon timestamptz := public.raw_retention_horizon();
    oldest timestamptz;
BEGIN
    IF tenant IS NULL OR p_tenant IS DISTINCT FROM tenant THEN
        RAISE EXCEPTION 'write_readings: tenant % is not the transaction''s tenant context (%)', p_tenant, tenant
            USING ERRCODE = '42501';
    END IF;
    IF horizon IS NOT NULL THEN
        SELECT timestamptz 'epoch' + min(t) * interval '1 microsecond' INTO oldest FROM unnest(p_times) AS t;
        IF oldest < horizon THEN
            RAISE EXCEPTION 'beyond_retention: a reading of % is older than the raw retention horizon %', oldest, horizon
                USING ERRCODE = 'MQ005';
        END IF;
    END IF;
    RETURN QUERY
    WITH ins AS (
        INSERT INTO public.measurements AS m (time, tenant_id, device_id, point_id, value)
        SELECT timestamptz 'epoch' + r.t * interval '1 microsecond', tenant, r.d, r.p, r.v
          FROM unnest(p_times, p_devices, p_points, p_values) AS r(t, d, p, v)
        ON CONFLICT DO NOTHING RETURNING m.device_id, m.time),
    marks AS (
        INSERT INTO public.aggregate_dirty AS a (tenant_id, device_id, bucket)
        SELECT DISTINCT tenant, k.device_id, k.bucket FROM (
            SELECT i.device_id, date_bin('5 minutes', i.time, timestamptz 'epoch') AS bucket FROM ins i
            UNION SELECT i.device_id, date_bin('5 minutes', i.time, timestamptz 'epoch') + interval '5 minutes' FROM ins i
        ) k ORDER BY 2, 3
        ON CONFLICT (device_id, bucket) DO UPDATE SET marked_at = EXCLUDED.marked_at)
    SELECT ins.device_id, ins.time FROM ins;
END
$$;
REVOKE ALL ON FUNCTION write_readings(integer, bigint[], integer[], integer[], double precision[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION write_readings(integer, bigint[], integer[], integer[], double precision[]) TO mqtt2pg_writer;

-- Marks dirty every bucket (and the next one) of the context tenant's readings in [p_from, p_to): what
-- `mqtt2pg import` and `aggregate rebuild` need, without the writer reading measurements.
CREATE FUNCTION mark_dirty_range(p_from timestamptz, p_to timestamptz) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    tenant integer := NULLIF(current_setting('app.tenant_id', true), '')::integer;
    marked bigint;
BEGIN
    IF tenant IS NULL THEN
        RAISE EXCEPTION 'mark_dirty_range needs a tenant context (app.tenant_id)' USING ERRCODE = '42501';
    END IF;
    INSERT INTO public.aggregate_dirty (tenant_id, device_id, bucket)
    SELECT DISTINCT tenant, k.device_id, k.b FROM (
        SELECT m.device_id, date_bin('5 minutes', m.time, timestamptz 'epoch') AS b FROM public.measurements m
         WHERE m.tenant_id = tenant AND m.time >= p_from AND m.time < p_to
        UNION SELECT m.device_id, date_bin('5 minutes', m.time, timestamptz 'epoch') + interval '5 minutes'
          FROM public.measurements m WHERE m.tenant_id = tenant AND m.time >= p_from AND m.time < p_to) k
    ON CONFLICT (device_id, bucket) DO UPDATE SET marked_at = EXCLUDED.marked_at;
    GET DIAGNOSTICS marked = ROW_COUNT;
    RETURN marked;
END
$$;
REVOKE ALL ON FUNCTION mark_dirty_range(timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mark_dirty_range(timestamptz, timestamptz) TO mqtt2pg_writer;

-- ensure_partitions never makes a partition the retention has dropped (or would drop): the 009 function,
-- behind a horizon check. Only the owner may call the unchecked one.
ALTER FUNCTION ensure_partitions(timestamptz, timestamptz) RENAME TO ensure_partitions_unchecked;
REVOKE ALL ON FUNCTION ensure_partitions_unchecked(timestamptz, timestamptz) FROM PUBLIC, mqtt2pg_writer;
CREATE FUNCTION ensure_partitions(from_time timestamptz, to_time timestamptz)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    horizon timestamptz := public.raw_retention_horizon();
BEGIN
    IF horizon IS NOT NULL AND from_time < horizon THEN
        RAISE EXCEPTION 'beyond_retention: refusing partitions from % (older than the raw retention horizon %)',
            from_time, horizon USING ERRCODE = 'MQ005';
    END IF;
    RETURN public.ensure_partitions_unchecked(from_time, to_time);
END
$$;
REVOKE ALL ON FUNCTION ensure_partitions(timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ensure_partitions(timestamptz, timestamptz) TO mqtt2pg_writer;

REVOKE ALL ON measurements FROM mqtt2pg_writer, mqtt2pg_reader, PUBLIC;

-- How many readings the context tenant's device has in [p_from, p_to] (`mqtt2pg import`'s check of the
-- database against its source; it counted rows of measurements through 005's key-column grant before).
CREATE FUNCTION count_readings(p_device integer, p_from timestamptz, p_to timestamptz) RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT count(*) FROM public.measurements m
     WHERE m.tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::integer
       AND m.device_id = p_device AND m.time >= p_from AND m.time <= p_to
$$;
REVOKE ALL ON FUNCTION count_readings(integer, timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION count_readings(integer, timestamptz, timestamptz) TO mqtt2pg_writer;
DO $$
BEGIN
    IF to_regnamespace('_mqtt2pg_chunks') IS NOT NULL THEN
        REVOKE USAGE ON SCHEMA _mqtt2pg_chunks FROM mqtt2pg_writer;
    END IF;
END
$$;

-- --- reads -------------------------------------------------------------------------------------------------
-- security_barrier: a caller's leaky function in a WHERE clause runs only on rows the filter let through.
CREATE VIEW readings WITH (security_barrier) AS
SELECT m.time, m.tenant_id, m.device_id, m.point_id, m.value
  FROM public.measurements m
 WHERE m.tenant_id = ANY (ARRAY(SELECT tm.tenant_id FROM public.tenant_members tm WHERE tm.role IN (
           SELECT r.oid FROM pg_catalog.pg_roles r WHERE pg_catalog.pg_has_role(current_user, r.oid, 'MEMBER'))));
COMMENT ON VIEW readings IS 'Raw readings of the tenants the current role is mapped to (mqtt2pg tenant grant-reader)';
REVOKE ALL ON readings FROM PUBLIC;
GRANT SELECT ON readings TO mqtt2pg_reader;

-- --- TimescaleDB: compression and retention policies ----------------------------------------------------------
CREATE FUNCTION timescaledb_schema() RETURNS name LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT n.nspname FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
     WHERE e.extname = 'timescaledb'
$$;
REVOKE ALL ON FUNCTION timescaledb_schema() FROM PUBLIC;

-- Compression after `days` days (0: none); owner only (`mqtt2pg migrate --compress-after-days N`).
-- Returns what it did, for the log. On plain PostgreSQL it only records the setting.
CREATE FUNCTION set_compress_after(days integer) RETURNS text LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    ts name := public.timescaledb_schema();
BEGIN
    UPDATE public.server_settings SET compress_after_days = days;
    IF NOT public.measurements_is_hypertable() THEN
        RETURN 'compression: measurements is not a hypertable (plain partitions are not compressed)';
    END IF;
    EXECUTE format('SELECT %I.remove_compression_policy(%L::regclass, if_exists => true)', ts, 'public.measurements');
    IF days = 0 THEN
        RETURN 'compression: no policy (existing compressed chunks stay compressed)';
    END IF;
    EXECUTE format('SELECT %I.add_compression_policy(%L::regclass, compress_after => %L::interval)',
                   ts, 'public.measurements', days || ' days');
    RETURN format('compression: chunks older than %s days are compressed (segment by device_id, point_id; order by time)', days);
END
$$;
REVOKE ALL ON FUNCTION set_compress_after(integer) FROM PUBLIC;

-- Raw retention in days (0: keep), the one horizon of raw_retention_horizon(); on TimescaleDB also a
-- retention policy with the same horizon, so chunks go even while no bridge runs.
CREATE FUNCTION set_raw_retention(days integer) RETURNS text LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    ts name := public.timescaledb_schema();
BEGIN
    UPDATE public.server_settings SET raw_retention_days = days;
    IF NOT public.measurements_is_hypertable() THEN
        RETURN CASE WHEN days > 0 THEN format('retention: raw partitions older than %s days are dropped', days)
                    ELSE 'retention: raw readings are kept' END;
    END IF;
    EXECUTE format('SELECT %I.remove_retention_policy(%L::regclass, if_exists => true)', ts, 'public.measurements');
    IF days = 0 THEN
        RETURN 'retention: raw readings are kept (no retention policy)';
    END IF;
    EXECUTE format('SELECT %I.add_retention_policy(%L::regclass, drop_after => %L::interval)',
                   ts, 'public.measurements', days || ' days');
    RETURN format('retention: chunks older than %s days are dropped (retention policy and the bridge''s scheduler)', days);
END
$$;
REVOKE ALL ON FUNCTION set_raw_retention(integer) FROM PUBLIC;

DO $$
DECLARE
    compress_after integer := coalesce(nullif(current_setting('mqtt2pg.compress_after_days', true), '')::integer, 7);
BEGIN
    IF NOT public.measurements_is_hypertable() THEN
        UPDATE public.server_settings SET compress_after_days = compress_after;
        RETURN;
    END IF;
    -- Row security off on the hypertable: the functions and the view above are the wall now.
    ALTER TABLE public.measurements NO FORCE ROW LEVEL SECURITY;
    ALTER TABLE public.measurements DISABLE ROW LEVEL SECURITY;
    ALTER TABLE public.measurements SET (timescaledb.compress, timescaledb.compress_segmentby = 'device_id, point_id',
                                         timescaledb.compress_orderby = 'time');
    RAISE NOTICE '%', public.set_compress_after(compress_after);
END
$$;

-- --- converting a plain partitioned measurements into a hypertable ---------------------------------------------
-- `mqtt2pg migrate --timescaledb` (creates the extension), then, as the owner, with the bridges stopped (they
-- spool meanwhile): SELECT convert_to_hypertable();  One transaction: the rows are copied into a new hypertable
-- (chunks in _mqtt2pg_chunks, no (time DESC) index), views over the old table (readings, and any other) are
-- re-pointed with their options (security_barrier), the old table and its partitions are dropped, and the
-- compression and retention policies of server_settings are created. It takes as long as copying the rows
-- (and twice their disk until it commits); readers wait on its lock meanwhile.
CREATE FUNCTION convert_to_hypertable(chunk interval DEFAULT '1 day') RETURNS text LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    ts name := public.timescaledb_schema();
    s public.server_settings;
    v record;
    copied bigint;
BEGIN
    IF public.measurements_is_hypertable() THEN
        RETURN 'measurements is already a hypertable';
    END IF;
    IF ts IS NULL THEN
        RAISE EXCEPTION 'the timescaledb extension is not created in this database'
            USING HINT = 'run mqtt2pg migrate --timescaledb first';
    END IF;
    LOCK TABLE public.measurements IN ACCESS EXCLUSIVE MODE;
    ALTER TABLE public.measurements RENAME TO measurements_plain;
    ALTER TABLE public.measurements_plain RENAME CONSTRAINT measurements_pkey TO measurements_plain_pkey;
    CREATE SCHEMA IF NOT EXISTS _mqtt2pg_chunks;
    REVOKE ALL ON SCHEMA _mqtt2pg_chunks FROM PUBLIC;
    CREATE TABLE public.measurements (
        time        timestamptz NOT NULL,
        tenant_id   integer NOT NULL,
        device_id   integer NOT NULL,
        point_id    integer NOT NULL,
        value       double precision NOT NULL,
        PRIMARY KEY (device_id, point_id, time)
    );
    EXECUTE format('SELECT %I.create_hypertable(%L::regclass, %L, chunk_time_interval => %L::interval, '
                   'create_default_indexes => false, associated_schema_name => %L)',
                   ts, 'public.measurements', 'time', chunk, '_mqtt2pg_chunks');
    -- The owner is under the old table's FORCEd policy (no tenant context here: no rows); it copies them all.
    ALTER TABLE public.measurements_plain NO FORCE ROW LEVEL SECURITY;
    INSERT INTO public.measurements SELECT time, tenant_id, device_id, point_id, value
      FROM public.measurements_plain ORDER BY time;
    GET DIAGNOSTICS copied = ROW_COUNT;
    -- Schema-qualified: with pg_catalog first in search_path an unqualified CREATE VIEW would go there.
    FOR v IN SELECT DISTINCT format('%I.%I', n.nspname, c.relname) AS view, c.oid AS view_oid, c.reloptions
               FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid JOIN pg_class c ON c.oid = r.ev_class
               JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE d.refobjid = 'public.measurements_plain'::regclass AND d.classid = 'pg_rewrite'::regclass
                AND r.ev_class <> 'public.measurements_plain'::regclass LOOP
        EXECUTE format('CREATE OR REPLACE VIEW %s %s AS %s', v.view,
                       CASE WHEN v.reloptions IS NULL THEN '' ELSE 'WITH (' || array_to_string(v.reloptions, ', ') || ')' END,
                       replace(pg_get_viewdef(v.view_oid, false), 'measurements_plain', 'measurements'));
    END LOOP;
    DROP TABLE public.measurements_plain;
    ALTER TABLE public.measurements SET (timescaledb.compress, timescaledb.compress_segmentby = 'device_id, point_id',
                                         timescaledb.compress_orderby = 'time');
    SELECT * INTO STRICT s FROM public.server_settings;
    PERFORM public.set_compress_after(s.compress_after_days);
    PERFORM public.set_raw_retention(s.raw_retention_days);
    RETURN format('measurements is a hypertable now (%s rows copied, chunk interval %s, compression after %s days)',
                  copied, chunk, s.compress_after_days);
END
$$;
REVOKE ALL ON FUNCTION convert_to_hypertable(interval) FROM PUBLIC;
