-- SPDX-License-Identifier: Apache-2.0
-- 016: the aggregate job, set-based and sharded (issue 16, "Scale"). Same definitions as 014: every
-- column of every 5-minute row and rollup is what 014 computed (it_energy and it_aggregates compare both
-- with an independent reference).
--
-- 1. recompute_buckets() reads runs, not keys. 014 read each (device, point, dirty bucket) window with its
--    own primary-key descent and ran the window functions per window: a device whose bucket, the bucket
--    after and (counters) the neighbours are dirty read the same rows three or four times. Now a device's
--    dirty buckets at most 20 minutes apart form a run, and each (device, point, run) is ONE primary-key
--    range scan [first - reach, last + reach) (reach: 5 minutes for a gauge, 10 for a counter, as 014),
--    pruned to the partitions of the range at run time (the bounds are plain columns behind OFFSET 0, as
--    008 explains: under RLS no whole-device scan). The window functions are 014's, partitioned by (device,
--    point, run) instead of (device, point, bucket): the same rows come out, because every reading whose
--    status or predecessor a key bucket depends on lies at most 10 minutes before or after it, inside the
--    run's range either way, and a predecessor further back than 5 minutes counts nothing (a gap).
-- 2. Written with INSERT ... ON CONFLICT DO UPDATE ... WHERE (the row) IS DISTINCT FROM (the new row): a
--    bucket whose aggregate did not change (a counter's neighbour, a replay) is neither rewritten nor
--    WAL-logged; a key bucket with no readings left loses its row. Only the periods of 5-minute rows that
--    changed are rolled up (014's recompute_rollups).
-- 3. Shards for the job: aggregate_shard(tenant, device) in 0..63; aggregate_dirty is indexed by it, and
--    recompute_dirty_shard(limit, shard) claims only that shard's keys of the context tenant. The bridge's
--    job connections (every replica's) each take free shards with a session advisory lock, drain them and
--    let them go (src/aggregate.c); the per-device transaction locks (014) still make a recomputation of one
--    device by the job and `aggregate rebuild` at once safe.

-- --- shards ------------------------------------------------------------------------------------------------
CREATE FUNCTION aggregate_shard_count() RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT 64
$$;
-- hashtext of 'tenant:device', non-negative, modulo 64. IMMUTABLE (for the index) and without a SET clause
-- (so that it is inlined, and the index expression matches the claim's).
CREATE FUNCTION aggregate_shard(p_tenant integer, p_device integer) RETURNS integer LANGUAGE sql IMMUTABLE
PARALLEL SAFE AS $$
    SELECT (pg_catalog.hashtext(p_tenant::text OPERATOR(pg_catalog.||) ':' OPERATOR(pg_catalog.||) p_device::text)
            OPERATOR(pg_catalog.&) 2147483647) OPERATOR(pg_catalog.%) 64
$$;
GRANT EXECUTE ON FUNCTION aggregate_shard_count(), aggregate_shard(integer, integer) TO mqtt2pg_writer;
CREATE INDEX aggregate_dirty_shard_idx ON aggregate_dirty
    (public.aggregate_shard(tenant_id, device_id), tenant_id, device_id, bucket);

-- The (tenant, shard) pairs with dirty keys, how many and the oldest mark: the job's work list. Under each
-- tenant's context in turn, as aggregate_dirty_tenants() (009), the caller's context put back.
CREATE FUNCTION aggregate_dirty_shards()
RETURNS TABLE (dirty_tenant integer, dirty_shard integer, dirty_keys bigint, oldest_mark timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    caller_context text := coalesce(current_setting('app.tenant_id', true), '');
    t integer;
BEGIN
    FOR t IN SELECT id FROM public.tenants ORDER BY id LOOP
        PERFORM set_config('app.tenant_id', t::text, true);
        RETURN QUERY SELECT t, public.aggregate_shard(a.tenant_id, a.device_id), count(*), min(a.marked_at)
                       FROM public.aggregate_dirty a WHERE a.tenant_id = t GROUP BY 2;
    END LOOP;
    PERFORM set_config('app.tenant_id', caller_context, true);
END
$$;
REVOKE ALL ON FUNCTION aggregate_dirty_shards() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aggregate_dirty_shards() TO mqtt2pg_writer;

-- --- the 5-minute recomputation, by runs ------------------------------------------------------------------
CREATE OR REPLACE FUNCTION recompute_buckets(p_devices integer[], p_buckets timestamptz[])
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    changed integer;
    devs integer[];
    buckets timestamptz[];
BEGIN
    PERFORM public.aggregate_lock_devices(p_devices);
    WITH keys AS (
        SELECT DISTINCT u.device_id, u.bucket FROM unnest(p_devices, p_buckets) AS u(device_id, bucket)),
    runs AS (   -- a device's key buckets at most 20 minutes apart: their ranges overlap or touch
        SELECT g.device_id, min(g.bucket) AS first, max(g.bucket) AS last
          FROM (SELECT s.device_id, s.bucket, sum(s.starts) OVER (PARTITION BY s.device_id ORDER BY s.bucket) AS run
                  FROM (SELECT k.device_id, k.bucket,
                               CASE WHEN k.bucket - lag(k.bucket) OVER (PARTITION BY k.device_id ORDER BY k.bucket)
                                         <= interval '20 minutes' THEN 0 ELSE 1 END AS starts
                          FROM keys k) s) g
         GROUP BY g.device_id, g.run),
    spans AS (   -- each (device, point, run) with its range, computed first (008: plain bounds, OFFSET 0)
        SELECT r.device_id, kp.id AS point_id, kp.kind, kp.max_rate, kp.counter_tolerance AS tol,
               CASE WHEN kp.kind = 'gauge' THEN r.first ELSE r.first - interval '10 minutes' END AS lo,
               r.first - interval '5 minutes' AS prev_lo, r.first,
               r.last + CASE WHEN kp.kind = 'gauge' THEN interval '5 minutes' ELSE interval '10 minutes' END AS hi
          FROM runs r
          JOIN public.points kp ON kp.device_id = r.device_id
        OFFSET 0),
    raw AS (   -- one primary-key range scan per span (and for a gauge one descent for the reading before it)
        SELECT m.tenant_id, m.device_id, m.point_id, m.time, m.value, sp.first AS run, sp.kind, sp.max_rate, sp.tol,
               pg_catalog.date_bin('5 minutes', m.time, timestamptz 'epoch') AS bucket
          FROM spans sp
          CROSS JOIN LATERAL (
              SELECT r.tenant_id, r.device_id, r.point_id, r.time, r.value FROM public.measurements r
               WHERE r.device_id = sp.device_id AND r.point_id = sp.point_id AND r.time >= sp.lo AND r.time < sp.hi
              UNION ALL
              -- a gauge's first reading needs only its predecessor, if that is at most 5 minutes older (014
              -- read all 5 minutes before the bucket for it: 30 rows at 10 s instead of 1)
              (SELECT r.tenant_id, r.device_id, r.point_id, r.time, r.value FROM public.measurements r
                WHERE sp.kind = 'gauge' AND r.device_id = sp.device_id AND r.point_id = sp.point_id
                  AND r.time >= sp.prev_lo AND r.time < sp.first
                ORDER BY r.time DESC LIMIT 1)
              OFFSET 0) m),
    classified AS (
        SELECT raw.*, lag(raw.time) OVER w AS prev_time, lag(raw.value) OVER w AS prev_value
          FROM raw
        WINDOW w AS (PARTITION BY raw.device_id, raw.point_id, raw.run ORDER BY raw.time)),
    counter_max AS (   -- 014's counter rules, unchanged but for the partition (a run, not one bucket's window)
        SELECT raw.*, max(raw.value) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS max_before
          FROM raw
         WHERE raw.kind <> 'gauge'
        WINDOW w AS (PARTITION BY raw.device_id, raw.point_id, raw.run ORDER BY raw.time)),
    counter_suspect AS (
        SELECT c.*, bool_or(c.value < c.max_before) OVER (PARTITION BY c.device_id, c.point_id, c.run) AS suspect
          FROM counter_max c),
    counter_readings AS (
        SELECT c.device_id, c.point_id, c.run, c.bucket, c.time, c.value, c.tol, c.max_rate,
               max(c.value) OVER (w RANGE BETWEEN interval '5 minutes' PRECEDING
                                              AND interval '1 microsecond' PRECEDING) AS recent_max,
               max(c.value) OVER (w RANGE BETWEEN interval '1 microsecond' FOLLOWING
                                              AND interval '5 minutes' FOLLOWING) AS coming_max
          FROM counter_suspect c
         WHERE c.suspect
        WINDOW w AS (PARTITION BY c.device_id, c.point_id, c.run ORDER BY c.time)
        UNION ALL
        SELECT c.device_id, c.point_id, c.run, c.bucket, c.time, c.value, c.tol, c.max_rate, NULL, NULL
          FROM counter_suspect c
         WHERE NOT c.suspect),
    kept AS (
        SELECT c.device_id, c.point_id, c.bucket, c.time, c.value, c.tol, c.max_rate,
               lag(c.time) OVER w AS kept_time, lag(c.value) OVER w AS kept_value
          FROM counter_readings c
         WHERE NOT coalesce(c.value < c.recent_max
                            AND (c.value >= c.recent_max - c.tol OR coalesce(c.coming_max >= c.recent_max, false)),
                            false)
        WINDOW w AS (PARTITION BY c.device_id, c.point_id, c.run ORDER BY c.time)),
    rises AS (
        SELECT k.device_id, k.point_id, k.bucket,
               sum(CASE WHEN k.kept_time IS NULL OR k.time - k.kept_time > interval '5 minutes' THEN 0
                        ELSE least(CASE WHEN k.value >= k.kept_value THEN k.value - k.kept_value
                                        WHEN k.value >= k.kept_value - k.tol THEN 0
                                        ELSE greatest(k.value, 0) END,
                                   coalesce(k.max_rate * extract(epoch FROM k.time - k.kept_time) / 3600,
                                            'Infinity'::double precision)) END) AS increase
          FROM kept k
         GROUP BY k.device_id, k.point_id, k.bucket),
    computed AS (   -- only the key buckets: the rest of a run was context
        SELECT s.tenant_id, s.device_id, s.point_id, s.bucket, count(*)::integer AS count, avg(s.value) AS avg,
               min(s.value) AS min, max(s.value) AS max,
               (array_agg(s.value ORDER BY s.time))[1] AS first_value, min(s.time) AS first_time,
               (array_agg(s.value ORDER BY s.time DESC))[1] AS last_value, max(s.time) AS last_time,
               sum(s.value) AS sum,
               coalesce(sum((s.value + s.prev_value) / 2 * extract(epoch FROM s.time - s.prev_time) / 3600)
                        FILTER (WHERE s.prev_time >= s.time - interval '5 minutes'), 0) AS integral,
               CASE WHEN s.kind <> 'gauge' THEN coalesce(min(r.increase), 0) END AS increase
          FROM classified s
          JOIN keys k ON k.device_id = s.device_id AND k.bucket = s.bucket
          LEFT JOIN rises r ON r.device_id = s.device_id AND r.point_id = s.point_id AND r.bucket = s.bucket
         GROUP BY s.tenant_id, s.device_id, s.point_id, s.bucket, s.kind),
    upserted AS (
        INSERT INTO public.measurements_5m AS a (tenant_id, device_id, point_id, bucket, count, avg, min, max,
                                                 first_value, first_time, last_value, last_time, sum, integral,
                                                 increase)
        SELECT c.tenant_id, c.device_id, c.point_id, c.bucket, c.count, c.avg, c.min, c.max, c.first_value,
               c.first_time, c.last_value, c.last_time, c.sum, c.integral, c.increase
          FROM computed c
        ON CONFLICT (device_id, point_id, bucket) DO UPDATE
           SET tenant_id = excluded.tenant_id, count = excluded.count, avg = excluded.avg, min = excluded.min,
               max = excluded.max, first_value = excluded.first_value, first_time = excluded.first_time,
               last_value = excluded.last_value, last_time = excluded.last_time, sum = excluded.sum,
               integral = excluded.integral, increase = excluded.increase, computed_at = excluded.computed_at
         WHERE (a.tenant_id, a.count, a.avg, a.min, a.max, a.first_value, a.first_time, a.last_value, a.last_time,
                a.sum, a.integral, a.increase)
               IS DISTINCT FROM
               (excluded.tenant_id, excluded.count, excluded.avg, excluded.min, excluded.max, excluded.first_value,
                excluded.first_time, excluded.last_value, excluded.last_time, excluded.sum, excluded.integral,
                excluded.increase)
        RETURNING a.device_id, a.bucket),
    emptied AS (   -- by (device, point, bucket): the primary key, not every 5-minute row of the device.
                   -- NOT IN, a hashed subplan: NOT EXISTS became a nested loop over the CTE (its row estimate
                   -- is tiny), quadratic in the batch (3.1 s instead of 0.8 s for 1,200 unchanged keys).
        DELETE FROM public.measurements_5m a
         USING keys k JOIN public.points p ON p.device_id = k.device_id
         WHERE a.device_id = k.device_id AND a.point_id = p.id AND a.bucket = k.bucket
           AND (a.device_id, a.point_id, a.bucket) NOT IN (SELECT c.device_id, c.point_id, c.bucket FROM computed c)
        RETURNING a.device_id, a.bucket),
    changes AS (
        SELECT u.device_id, u.bucket FROM upserted u UNION ALL SELECT e.device_id, e.bucket FROM emptied e)
    SELECT count(*), array_agg(c.device_id), array_agg(c.bucket) INTO changed, devs, buckets FROM changes c;
    IF changed > 0 THEN
        PERFORM public.recompute_rollups(devs, buckets);
    END IF;
    RETURN changed;
END
$$;
REVOKE ALL ON FUNCTION recompute_buckets(integer[], timestamptz[]) FROM PUBLIC, mqtt2pg_writer;
COMMENT ON FUNCTION recompute_buckets(integer[], timestamptz[]) IS
    'Recomputes the 5-minute rows of the given (device, bucket) keys and the rollups of those that changed; returns the 5-minute rows written or deleted';

-- --- claims ------------------------------------------------------------------------------------------------
-- What 014's recompute_dirty did after its claim: each key of a device with a counter also brings the
-- bucket before and after it; frozen buckets (aggregate_bucket_frozen) are left as they are.
CREATE FUNCTION recompute_claimed(p_devices integer[], p_buckets timestamptz[]) RETURNS void LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    devs integer[];
    buckets timestamptz[];
BEGIN
    -- The frozen rule once per distinct bucket (a batch has few; it looks up the partition), the counter
    -- test once per device, by its index.
    WITH keys AS (
        SELECT DISTINCT c.d, c.b + s.o AS b
          FROM unnest(p_devices, p_buckets) AS c(d, b)
          LEFT JOIN LATERAL (SELECT true AS has_counter FROM public.points p
                              WHERE p.device_id = c.d AND p.kind <> 'gauge' LIMIT 1) ctr ON true
         CROSS JOIN (VALUES (interval '-5 minutes'), (interval '0'), (interval '5 minutes')) AS s(o)
         WHERE s.o = interval '0' OR ctr.has_counter),
    live AS (
        SELECT u.b FROM (SELECT DISTINCT keys.b FROM keys) u WHERE NOT public.aggregate_bucket_frozen(u.b) OFFSET 0)
    SELECT array_agg(k.d), array_agg(k.b) INTO devs, buckets
      FROM keys k JOIN live l ON l.b = k.b;
    IF devs IS NOT NULL THEN
        PERFORM public.recompute_buckets(devs, buckets);
    END IF;
END
$$;
REVOKE ALL ON FUNCTION recompute_claimed(integer[], timestamptz[]) FROM PUBLIC;

-- As 014 (the CLI's rebuild and import: every shard of the context tenant), now through recompute_claimed.
CREATE OR REPLACE FUNCTION recompute_dirty(p_limit integer) RETURNS integer LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    tenant integer := NULLIF(current_setting('app.tenant_id', true), '')::integer;
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
                    ORDER BY device_id, bucket LIMIT p_limit FOR UPDATE SKIP LOCKED)
               RETURNING device_id, bucket)
    SELECT count(*), array_agg(device_id), array_agg(bucket) INTO claimed, devs, buckets FROM c;
    IF claimed > 0 THEN
        PERFORM public.recompute_claimed(devs, buckets);
    END IF;
    RETURN claimed;
END
$$;
REVOKE ALL ON FUNCTION recompute_dirty(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION recompute_dirty(integer) TO mqtt2pg_writer;

-- The job's claim: up to p_limit dirty keys of the context tenant in shard p_shard, by device and bucket
-- (runs), recomputed; returns how many were claimed. The caller chooses the tenant and the shard, never
-- the keys. SKIP LOCKED: a key a writer is re-marking, or another claim holds, is left for the next round.
CREATE FUNCTION recompute_dirty_shard(p_limit integer, p_shard integer) RETURNS integer LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    tenant integer := NULLIF(current_setting('app.tenant_id', true), '')::integer;
    claimed integer;
    devs integer[];
    buckets timestamptz[];
BEGIN
    IF tenant IS NULL THEN
        RAISE EXCEPTION 'recompute_dirty_shard needs a tenant context (app.tenant_id)' USING ERRCODE = 'MQ004';
    END IF;
    IF p_limit IS NULL OR p_limit < 1 OR p_limit > 10000 THEN
        RAISE EXCEPTION 'recompute_dirty_shard: limit % is not in 1..10000', p_limit USING ERRCODE = 'MQ004';
    END IF;
    IF p_shard IS NULL OR p_shard < 0 OR p_shard >= public.aggregate_shard_count() THEN
        RAISE EXCEPTION 'recompute_dirty_shard: shard % is not in 0..%', p_shard, public.aggregate_shard_count() - 1
            USING ERRCODE = 'MQ004';
    END IF;
    WITH c AS (DELETE FROM public.aggregate_dirty WHERE (device_id, bucket) IN (
                   SELECT a.device_id, a.bucket FROM public.aggregate_dirty a
                    WHERE public.aggregate_shard(a.tenant_id, a.device_id) = p_shard AND a.tenant_id = tenant
                    ORDER BY a.device_id, a.bucket LIMIT p_limit FOR UPDATE SKIP LOCKED)
               RETURNING device_id, bucket)
    SELECT count(*), array_agg(device_id), array_agg(bucket) INTO claimed, devs, buckets FROM c;
    IF claimed > 0 THEN
        PERFORM public.recompute_claimed(devs, buckets);
    END IF;
    RETURN claimed;
END
$$;
REVOKE ALL ON FUNCTION recompute_dirty_shard(integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION recompute_dirty_shard(integer, integer) TO mqtt2pg_writer;
