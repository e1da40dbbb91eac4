-- SPDX-License-Identifier: Apache-2.0
-- 003: 5-minute aggregates kept exact under late and replayed data.
--
-- The writer marks (device, bucket) in aggregate_dirty in the same transaction as the readings it inserts
-- (only for rows that were new: a replay marks nothing). The aggregate job (one leader among the replicas,
-- by advisory lock) claims dirty keys, deletes their aggregate rows and recomputes them from raw readings.
--
-- Bucket edges: each interval between two consecutive readings of a point belongs to the bucket of its later
-- reading, and counts only if it is at most one bucket width (5 minutes) long; a longer interval is a gap
-- (the device was silent) and is neither integrated nor counted in a counter's increase. So a reading
-- affects its own bucket and the next one, and the writer marks both.

ALTER TABLE points ADD COLUMN kind text NOT NULL DEFAULT 'gauge' CHECK (kind IN ('gauge', 'counter'));

CREATE TABLE measurements_5m (
    tenant_id    integer NOT NULL,
    device_id    integer NOT NULL,
    point_id     integer NOT NULL,
    bucket       timestamptz NOT NULL,
    count        integer NOT NULL,
    avg          double precision NOT NULL,
    min          double precision NOT NULL,
    max          double precision NOT NULL,
    first_value  double precision NOT NULL,
    first_time   timestamptz NOT NULL,
    last_value   double precision NOT NULL,
    last_time    timestamptz NOT NULL,
    sum          double precision NOT NULL,
    integral     double precision NOT NULL,   -- value x hours (W -> Wh), trapezoidal, see the edge rule above
    increase     double precision,            -- counters only: sum of rises, a drop counts as a reset from 0
    computed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, point_id, bucket)
);
CREATE INDEX measurements_5m_tenant_bucket_idx ON measurements_5m (tenant_id, bucket);
ALTER TABLE measurements_5m ENABLE ROW LEVEL SECURITY;
ALTER TABLE measurements_5m FORCE ROW LEVEL SECURITY;
CREATE POLICY measurements_5m_tenant ON measurements_5m
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::integer)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::integer);
GRANT SELECT ON measurements_5m TO mqtt2pg_reader;
GRANT SELECT, INSERT, DELETE ON measurements_5m TO mqtt2pg_writer;

CREATE TABLE aggregate_dirty (
    tenant_id  integer NOT NULL,
    device_id  integer NOT NULL,
    bucket     timestamptz NOT NULL,
    marked_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, bucket)
);
CREATE INDEX aggregate_dirty_tenant_idx ON aggregate_dirty (tenant_id, bucket);
GRANT SELECT, INSERT, UPDATE, DELETE ON aggregate_dirty TO mqtt2pg_writer;

-- Recomputes the aggregates of the given (device, bucket) keys from raw readings, under the caller's tenant
-- context (RLS applies: SECURITY INVOKER). The reference computation the tests compare against is the same
-- definition written independently in tests/integration/it_aggregates.sh.
CREATE FUNCTION recompute_buckets(p_devices integer[], p_buckets timestamptz[])
RETURNS integer LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
DECLARE
    written integer;
BEGIN
    DELETE FROM measurements_5m a
     USING unnest(p_devices, p_buckets) AS k(device_id, bucket)
     WHERE a.device_id = k.device_id AND a.bucket = k.bucket;
    INSERT INTO measurements_5m (tenant_id, device_id, point_id, bucket, count, avg, min, max,
                                 first_value, first_time, last_value, last_time, sum, integral, increase)
    SELECT s.tenant_id, s.device_id, s.point_id, s.bucket, count(*), avg(s.value), min(s.value), max(s.value),
           (array_agg(s.value ORDER BY s.time))[1], min(s.time),
           (array_agg(s.value ORDER BY s.time DESC))[1], max(s.time),
           sum(s.value),
           coalesce(sum((s.value + s.prev_value) / 2 * extract(epoch FROM s.time - s.prev_time) / 3600)
                    FILTER (WHERE s.prev_time >= s.time - interval '5 minutes'), 0),
           CASE WHEN p.kind = 'counter' THEN
               coalesce(sum(CASE WHEN s.value >= s.prev_value THEN s.value - s.prev_value ELSE s.value END)
                        FILTER (WHERE s.prev_time >= s.time - interval '5 minutes'), 0)
           END
      FROM (SELECT m.tenant_id, m.device_id, m.point_id, k.bucket, m.time, m.value,
                   lag(m.time) OVER w AS prev_time, lag(m.value) OVER w AS prev_value
              FROM unnest(p_devices, p_buckets) AS k(device_id, bucket)
              JOIN measurements m ON m.device_id = k.device_id
                                 AND m.time >= k.bucket - interval '5 minutes'
                                 AND m.time < k.bucket + interval '5 minutes'
            WINDOW w AS (PARTITION BY k.device_id, k.bucket, m.point_id ORDER BY m.time)) s
      JOIN points p ON p.id = s.point_id
     WHERE s.time >= s.bucket   -- the lookback rows only served as prev for the first reading
     GROUP BY s.tenant_id, s.device_id, s.point_id, s.bucket, p.kind;
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END
$$;
GRANT EXECUTE ON FUNCTION recompute_buckets(integer[], timestamptz[]) TO mqtt2pg_writer;

-- Retention of raw readings: drops whole daily partitions that end on or before cutoff (aggregates are
-- kept). Returns the names dropped. SECURITY DEFINER so the bridge's scheduler can apply it; on a
-- TimescaleDB hypertable it calls drop_chunks instead.
CREATE FUNCTION drop_raw_partitions_before(cutoff timestamptz)
RETURNS SETOF text LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    part record;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        RETURN QUERY EXECUTE 'SELECT drop_chunks(''measurements'', older_than => $1)::text' USING cutoff;
        RETURN;
    END IF;
    FOR part IN
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'public.measurements'::regclass AND c.relname ~ '^measurements_[0-9]{8}$'
           AND to_date(substr(c.relname, 14), 'YYYYMMDD') + 1 <= (cutoff AT TIME ZONE 'UTC')::date
         ORDER BY c.relname
    LOOP
        EXECUTE format('DROP TABLE public.%I', part.relname);
        RETURN NEXT part.relname;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION drop_raw_partitions_before(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION drop_raw_partitions_before(timestamptz) TO mqtt2pg_writer;
