-- SPDX-License-Identifier: Apache-2.0
-- 002: the narrow readings table, its Row-Level Security, and rejected messages.
--
-- measurements is range-partitioned by time (one partition per day, created ahead of need by
-- ensure_partitions(), which the bridge calls). When the timescaledb extension is installed in this
-- database, the same migration makes it a hypertable instead; chunk interval from the setting
-- mqtt2pg.chunk_interval (`mqtt2pg migrate --chunk-interval '1 day'`), default 1 day.

DO $$
DECLARE
    chunk interval := coalesce(nullif(current_setting('mqtt2pg.chunk_interval', true), ''), '1 day')::interval;
    ts_schema name;
BEGIN
    SELECT n.nspname INTO ts_schema FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
     WHERE e.extname = 'timescaledb';
    IF ts_schema IS NOT NULL THEN
        -- Chunks live in a schema that readers may not use: a chunk has no row-level security of its own
        -- and inherits the hypertable's grants, so in TimescaleDB's default schema a reader read every
        -- tenant's rows from one directly, past the tenant policy (issue 14). The writer needs USAGE: an
        -- insert through the hypertable into an existing chunk looks the chunk up in its schema (measured
        -- on TimescaleDB 2.28.3); its own grants on each chunk are taken away by
        -- secure_timescaledb_chunks() (012).
        CREATE SCHEMA IF NOT EXISTS _mqtt2pg_chunks;
        REVOKE ALL ON SCHEMA _mqtt2pg_chunks FROM PUBLIC;
        GRANT USAGE ON SCHEMA _mqtt2pg_chunks TO mqtt2pg_writer;
        CREATE TABLE measurements (
            time        timestamptz NOT NULL,
            tenant_id   integer NOT NULL,
            device_id   integer NOT NULL,
            point_id    integer NOT NULL,
            value       double precision NOT NULL,
            PRIMARY KEY (device_id, point_id, time)
        );
        -- No default (time DESC) index: every insert would pay for it and no query of ours needs it; the
        -- primary key (device_id, point_id, time) serves the aggregate job and the dashboards.
        EXECUTE format('SELECT %I.create_hypertable(%L::regclass, %L, chunk_time_interval => %L::interval, '
                       'create_default_indexes => false, associated_schema_name => %L)',
                       ts_schema, 'public.measurements', 'time', chunk, '_mqtt2pg_chunks');
        RAISE NOTICE 'measurements is a TimescaleDB hypertable (chunk interval %)', chunk;
    ELSE
        CREATE TABLE measurements (
            time        timestamptz NOT NULL,
            tenant_id   integer NOT NULL,
            device_id   integer NOT NULL,
            point_id    integer NOT NULL,
            value       double precision NOT NULL,
            PRIMARY KEY (device_id, point_id, time)
        ) PARTITION BY RANGE (time);
    END IF;
END
$$;

-- RLS: no tenant context, no rows. NULLIF because after a transaction-local set_config ends, the setting
-- reads as '' (not NULL) for the rest of the session, and ''::int would raise instead of matching nothing.
ALTER TABLE measurements ENABLE ROW LEVEL SECURITY;
ALTER TABLE measurements FORCE ROW LEVEL SECURITY;
CREATE POLICY measurements_tenant ON measurements
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::integer)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::integer);

GRANT SELECT, INSERT ON measurements TO mqtt2pg_writer;
GRANT SELECT ON measurements TO mqtt2pg_reader;

-- Creates the missing daily partitions covering [from_time, to_time] (plain partitioning only; a no-op on
-- a hypertable). SECURITY DEFINER: the writer may create partitions but owns nothing.
CREATE FUNCTION ensure_partitions(from_time timestamptz, to_time timestamptz)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    day date;
    part text;
    created integer := 0;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_partitioned_table pt JOIN pg_class c ON c.oid = pt.partrelid
                   WHERE c.relname = 'measurements' AND c.relnamespace = 'public'::regnamespace) THEN
        RETURN 0;
    END IF;
    IF to_time - from_time > interval '3700 days' THEN
        RAISE EXCEPTION 'refusing to create more than 3700 daily partitions at once';
    END IF;
    -- One creator at a time; others wait and then find the partitions there.
    PERFORM pg_advisory_xact_lock(hashtext('mqtt2pg.ensure_partitions'));
    FOR day IN SELECT generate_series((from_time AT TIME ZONE 'UTC')::date, (to_time AT TIME ZONE 'UTC')::date,
                                      interval '1 day')::date LOOP
        part := 'measurements_' || to_char(day, 'YYYYMMDD');
        IF to_regclass('public.' || part) IS NULL THEN
            EXECUTE format('CREATE TABLE public.%I PARTITION OF public.measurements FOR VALUES FROM (%L) TO (%L)',
                           part, (day::timestamp AT TIME ZONE 'UTC'), ((day + 1)::timestamp AT TIME ZONE 'UTC'));
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END
$$;
REVOKE ALL ON FUNCTION ensure_partitions(timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ensure_partitions(timestamptz, timestamptz) TO mqtt2pg_writer;

-- Messages that failed validation (or that PostgreSQL refused). Written by the bridge outside any tenant
-- context; read by operators (the owner). Device-supplied text is escaped by the bridge before it lands
-- here; the payload is kept as raw bytes, truncated to validation.reject_payload_bytes.
CREATE TABLE rejected_messages (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at  timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    topic        text,
    tenant_slug  text,
    serial       text,
    tenant_id    integer,
    device_id    integer,
    reason       text NOT NULL,
    detail       text NOT NULL DEFAULT '',
    payload      bytea
);
CREATE INDEX rejected_messages_received_idx ON rejected_messages (received_at);
CREATE INDEX rejected_messages_reason_idx ON rejected_messages (reason, received_at);
GRANT INSERT ON rejected_messages TO mqtt2pg_writer;
