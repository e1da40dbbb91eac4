-- SPDX-License-Identifier: Apache-2.0
-- 014: energy users can trust (issue 16): counter semantics, local-time rollups, frozen buckets.
--
-- 1. Point kinds gauge, counter (a lifetime total) and daily_counter (a total that resets once per local
--    day). A counter's 5-minute `increase` no longer treats every drop as a reset from 0:
--      - a reading below the recent maximum R (the largest reading of the point in the 5 minutes before it)
--        is SKIPPED for `increase` when it is within points.counter_tolerance of R (noise: a small dip) or
--        when a reading in the 5 minutes after it is >= R again (a glitch: a drop to 0 after a DTU restart,
--        say, that comes back to the old total);
--      - the other readings are kept; each interval between two consecutive kept readings belongs to the
--        bucket of its later reading and counts only if it is at most 5 minutes long (a longer one is a
--        gap, the night, and counts nothing). Its increase is the rise (later - earlier) when the value
--        rose, 0 when it fell by at most the tolerance, and the later value when it fell by more (a real
--        reset: counted from 0), never below 0, and never more than points.max_rate (the largest rise per
--        hour the point can make: an inverter's nominal W for a Wh counter; NULL: no cap) times the
--        interval's length in hours.
--    count, avg, min, max, first/last, sum and integral still describe every raw reading (skipped ones too).
--    README.md "Aggregates" has the rules as a table with examples. Because a reading's status depends on
--    the readings up to 5 minutes around it, a counter bucket depends on raw readings from 10 minutes before
--    it to 10 minutes after it: the job recomputes the neighbours of each dirty key of a device with a
--    counter (the writer's marks are unchanged: own bucket and next).
-- 2. tenants.timezone (an IANA name, default UTC) and rollups per device and point in that zone: hourly
--    (measurements_1h), daily (measurements_1d) and monthly (measurements_1mo), derived from the 5-minute
--    rows in the same transaction that recomputes those (so late data and replays reach them through the
--    same dirty marks), each keyed by the instant its local period starts: a local day is 23, 24 or 25 hours
--    of 5-minute buckets. Same tenant policies as measurements_5m (009). Views energy_daily and
--    energy_daily_tenant for dashboards and `mqtt2pg energy`.
-- 3. Frozen buckets: aggregate_bucket_frozen(bucket) is the one rule for "the raw readings of this bucket's
--    window may be incomplete" (before the retention horizon, or its partition is gone). A frozen 5-minute
--    bucket is never recomputed; the rollups are derived from 5-minute rows, which outlive the raw ones.

-- --- 1. point kinds ----------------------------------------------------------------------------------------
ALTER TABLE points DROP CONSTRAINT points_kind_check;
ALTER TABLE points ADD CONSTRAINT points_kind_check CHECK (kind IN ('gauge', 'counter', 'daily_counter'));
ALTER TABLE point_defaults DROP CONSTRAINT point_defaults_kind_check;
ALTER TABLE point_defaults ADD CONSTRAINT point_defaults_kind_check
    CHECK (kind IN ('gauge', 'counter', 'daily_counter'));
ALTER TABLE points
    ADD COLUMN max_rate double precision CHECK (max_rate > 0),
    ADD COLUMN counter_tolerance double precision NOT NULL DEFAULT 0 CHECK (counter_tolerance >= 0);
COMMENT ON COLUMN points.max_rate IS
    'counters: the largest rise per hour the point can physically make (e.g. the nominal W of a Wh counter); NULL: no cap';
COMMENT ON COLUMN points.counter_tolerance IS
    'counters: a fall of at most this much is noise, not a reset (README "Aggregates")';

-- --- 2. tenant time zone ------------------------------------------------------------------------------------
-- An IANA name PostgreSQL knows (pg_timezone_names), not a POSIX string such as 'UTC+3', whose sign is the
-- opposite of what most people expect.
CREATE FUNCTION is_iana_time_zone(tz text) RETURNS boolean LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_timezone_names WHERE name = tz)
$$;
ALTER TABLE tenants ADD COLUMN timezone text NOT NULL DEFAULT 'UTC' CHECK (public.is_iana_time_zone(timezone));

-- The instant a local period (hour, day, month) that contains t starts, in zone tz. An hour is the
-- 5-minute-aligned instant minus its minutes past the local hour (exact in zones with half-hour offsets; a
-- repeated local hour at the end of summer time is two hours with two start instants); a day or month
-- starts at local midnight.
-- No SET clause (names are qualified instead): a SQL function with one is never inlined, and the job calls
-- these for every key (a function call each cost ~0.8 ms per device-bucket in energy_bench.sh).
CREATE FUNCTION local_period_start(t timestamptz, tz text, unit text) RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT CASE unit
        WHEN 'hour' THEN t OPERATOR(pg_catalog.-) ((t AT TIME ZONE tz) OPERATOR(pg_catalog.-)
                                                 pg_catalog.date_trunc('hour', t AT TIME ZONE tz))
        ELSE pg_catalog.date_trunc(unit, t AT TIME ZONE tz) AT TIME ZONE tz END
$$;
-- The instant the next local period starts.
CREATE FUNCTION local_period_end(t timestamptz, tz text, unit text) RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT CASE unit
        WHEN 'hour' THEN public.local_period_start(t, tz, unit) OPERATOR(pg_catalog.+) interval '1 hour'
        ELSE (pg_catalog.date_trunc(unit, t AT TIME ZONE tz)
              OPERATOR(pg_catalog.+) (('1 ' OPERATOR(pg_catalog.||) unit)::interval)) AT TIME ZONE tz END
$$;

-- --- 3. rollup tables -----------------------------------------------------------------------------------------
DO $$
DECLARE
    owner_role text := current_user;
    member_of text := 'ARRAY(SELECT m.tenant_id FROM public.tenant_members m WHERE m.role IN (SELECT r.oid FROM '
                      'pg_catalog.pg_roles r WHERE pg_catalog.pg_has_role(current_user, r.oid, ''MEMBER'')))';
    tab text;
BEGIN
    FOREACH tab IN ARRAY ARRAY['measurements_1h', 'measurements_1d', 'measurements_1mo'] LOOP
        EXECUTE format($f$
            CREATE TABLE public.%1$I (
                tenant_id    integer NOT NULL,
                device_id    integer NOT NULL,
                point_id     integer NOT NULL,
                bucket       timestamptz NOT NULL,   -- the instant the local period starts
                local_start  timestamp NOT NULL,     -- the same instant on the tenant's wall clock
                buckets      integer NOT NULL,       -- 5-minute buckets with readings in the period
                count        bigint NOT NULL,
                avg          double precision NOT NULL,
                min          double precision NOT NULL,
                max          double precision NOT NULL,
                first_value  double precision NOT NULL,
                first_time   timestamptz NOT NULL,
                last_value   double precision NOT NULL,
                last_time    timestamptz NOT NULL,
                sum          double precision NOT NULL,
                integral     double precision NOT NULL,
                increase     double precision,       -- counters only
                computed_at  timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (device_id, point_id, bucket))$f$, tab);
        EXECUTE format('CREATE INDEX %I ON public.%I (tenant_id, bucket)', tab || '_tenant_bucket_idx', tab);
        EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY', tab);
        EXECUTE format('ALTER TABLE public.%I FORCE ROW LEVEL SECURITY', tab);
        -- 009's shape: the context policy for the writer and the owner, the membership policy for readers.
        EXECUTE format('CREATE POLICY %I ON public.%I TO mqtt2pg_writer, %I
                        USING (tenant_id = NULLIF(current_setting(''app.tenant_id'', true), '''')::integer)
                        WITH CHECK (tenant_id = NULLIF(current_setting(''app.tenant_id'', true), '''')::integer)',
                       tab || '_tenant', tab, owner_role);
        EXECUTE format('CREATE POLICY %I ON public.%I FOR SELECT USING (tenant_id = ANY (%s))',
                       tab || '_reader', tab, member_of);
        EXECUTE format('GRANT SELECT ON public.%I TO mqtt2pg_reader, mqtt2pg_writer', tab);
    END LOOP;
END
$$;

-- --- 4. frozen buckets -------------------------------------------------------------------------------------------
-- True when the raw readings a 5-minute bucket's recomputation reads (10 minutes either side, for counters)
-- may be incomplete: the window reaches before the retention horizon, or the bucket's partition is gone.
-- Such a bucket keeps the aggregate it has. The one rule, for this job and for retention code to call.
CREATE FUNCTION aggregate_bucket_frozen(p_bucket timestamptz) RETURNS boolean LANGUAGE sql STABLE
SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT coalesce(p_bucket - interval '10 minutes' < public.raw_retention_horizon(), false)
        OR NOT public.raw_partition_exists(p_bucket)
$$;
REVOKE ALL ON FUNCTION aggregate_bucket_frozen(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aggregate_bucket_frozen(timestamptz) TO mqtt2pg_writer;

-- One recomputation per device at a time, until the transaction ends: the job and `aggregate rebuild` or
-- `import` may run at once, and while keys are claimed exclusively, a counter key also recomputes its
-- neighbours, and a rollup row sums 5-minute rows another transaction may be rewriting. Locks in device
-- order: no deadlock. The caller's later statements take new snapshots and see what it waited for.
CREATE FUNCTION aggregate_lock_devices(p_devices integer[]) RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    dev integer;
BEGIN
    FOR dev IN SELECT DISTINCT u.d FROM unnest(p_devices) AS u(d) ORDER BY 1 LOOP
        PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('mqtt2pg.aggregate.device'), dev);
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION aggregate_lock_devices(integer[]) FROM PUBLIC;

-- --- 5. the 5-minute recomputation with the counter rules -----------------------------------------------------
-- As 008: the window bounds first (OFFSET 0), then each (device, point, window) read by the primary key. A
-- counter's window is 10 minutes either side of the bucket: the readings up to 5 minutes before a kept reading
-- decide which one is its predecessor, and each of those needs the 5 minutes around it to be classified. A
-- gauge's is its bucket and the 5 minutes before, as in 008.
CREATE OR REPLACE FUNCTION recompute_buckets(p_devices integer[], p_buckets timestamptz[])
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    written integer;
BEGIN
    PERFORM public.aggregate_lock_devices(p_devices);
    DELETE FROM public.measurements_5m a
     USING unnest(p_devices, p_buckets) AS k(device_id, bucket)
     WHERE a.device_id = k.device_id AND a.bucket = k.bucket;
    WITH raw AS (
        SELECT k.bucket, m.tenant_id, m.device_id, m.point_id, m.time, m.value, k.kind, k.max_rate, k.tol
          FROM (SELECT k0.device_id, k0.bucket, kp.id AS point_id, kp.kind, kp.max_rate, kp.counter_tolerance AS tol,
                       k0.bucket - w.reach AS lo, k0.bucket + w.reach AS hi
                  FROM (SELECT DISTINCT u.device_id, u.bucket
                          FROM unnest(p_devices, p_buckets) AS u(device_id, bucket)) k0
                  JOIN public.points kp ON kp.device_id = k0.device_id
                  CROSS JOIN LATERAL (SELECT CASE WHEN kp.kind = 'gauge' THEN interval '5 minutes'
                                                  ELSE interval '10 minutes' END AS reach) w
                OFFSET 0) k   -- a gauge needs its bucket and the 5 minutes before (its previous reading)
          CROSS JOIN LATERAL (
              SELECT r.tenant_id, r.device_id, r.point_id, r.time, r.value FROM public.measurements r
               WHERE r.device_id = k.device_id AND r.point_id = k.point_id AND r.time >= k.lo AND r.time < k.hi
              OFFSET 0) m),
    classified AS (
        SELECT raw.*, lag(raw.time) OVER w AS prev_time, lag(raw.value) OVER w AS prev_value
          FROM raw
        WINDOW w AS (PARTITION BY raw.device_id, raw.bucket, raw.point_id ORDER BY raw.time)),
    counter_max AS (   -- counters: the largest earlier reading of the window (O(n): the frame's head is fixed)
        SELECT raw.*, max(raw.value) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS max_before
          FROM raw
         WHERE raw.kind <> 'gauge'
        WINDOW w AS (PARTITION BY raw.device_id, raw.bucket, raw.point_id ORDER BY raw.time)),
    counter_suspect AS (   -- a window where some reading is below an earlier one: only there can one be skipped
        SELECT c.*, bool_or(c.value < c.max_before) OVER (PARTITION BY c.device_id, c.bucket, c.point_id) AS suspect
          FROM counter_max c),
    counter_readings AS (   -- the look-around only where needed: a max over a moving frame is O(rows x frame)
        SELECT c.device_id, c.bucket, c.point_id, c.time, c.value, c.tol, c.max_rate,
               max(c.value) OVER (w RANGE BETWEEN interval '5 minutes' PRECEDING
                                              AND interval '1 microsecond' PRECEDING) AS recent_max,
               max(c.value) OVER (w RANGE BETWEEN interval '1 microsecond' FOLLOWING
                                              AND interval '5 minutes' FOLLOWING) AS coming_max
          FROM counter_suspect c
         WHERE c.suspect
        WINDOW w AS (PARTITION BY c.device_id, c.bucket, c.point_id ORDER BY c.time)
        UNION ALL   -- elsewhere every reading is >= all before it, so >= its recent maximum: none is skipped
        SELECT c.device_id, c.bucket, c.point_id, c.time, c.value, c.tol, c.max_rate, NULL, NULL
          FROM counter_suspect c
         WHERE NOT c.suspect),
    kept AS (   -- counters: the readings increase is computed over, each with the kept one before it
        SELECT c.device_id, c.bucket, c.point_id, c.time, c.value, c.tol, c.max_rate,
               lag(c.time) OVER w AS kept_time, lag(c.value) OVER w AS kept_value
          FROM counter_readings c
         WHERE NOT coalesce(c.value < c.recent_max
                            AND (c.value >= c.recent_max - c.tol OR coalesce(c.coming_max >= c.recent_max, false)),
                            false)
        WINDOW w AS (PARTITION BY c.device_id, c.bucket, c.point_id ORDER BY c.time)),
    rises AS (
        SELECT k.device_id, k.bucket, k.point_id,
               sum(CASE WHEN k.kept_time IS NULL OR k.time - k.kept_time > interval '5 minutes' THEN 0
                        ELSE least(CASE WHEN k.value >= k.kept_value THEN k.value - k.kept_value
                                        WHEN k.value >= k.kept_value - k.tol THEN 0
                                        ELSE greatest(k.value, 0) END,
                                   coalesce(k.max_rate * extract(epoch FROM k.time - k.kept_time) / 3600,
                                            'Infinity'::double precision)) END) AS increase
          FROM kept k
         WHERE k.time >= k.bucket AND k.time < k.bucket + interval '5 minutes'
         GROUP BY k.device_id, k.bucket, k.point_id)
    INSERT INTO public.measurements_5m (tenant_id, device_id, point_id, bucket, count, avg, min, max,
                                        first_value, first_time, last_value, last_time, sum, integral, increase)
    SELECT s.tenant_id, s.device_id, s.point_id, s.bucket, count(*), avg(s.value), min(s.value), max(s.value),
           (array_agg(s.value ORDER BY s.time))[1], min(s.time),
           (array_agg(s.value ORDER BY s.time DESC))[1], max(s.time),
           sum(s.value),
           coalesce(sum((s.value + s.prev_value) / 2 * extract(epoch FROM s.time - s.prev_time) / 3600)
                    FILTER (WHERE s.prev_time >= s.time - interval '5 minutes'), 0),
           CASE WHEN s.kind <> 'gauge' THEN coalesce(min(r.increase), 0) END
      FROM classified s
      LEFT JOIN rises r ON r.device_id = s.device_id AND r.bucket = s.bucket AND r.point_id = s.point_id
     WHERE s.time >= s.bucket AND s.time < s.bucket + interval '5 minutes'   -- the rest was context
     GROUP BY s.tenant_id, s.device_id, s.point_id, s.bucket, s.kind;
    GET DIAGNOSTICS written = ROW_COUNT;
    PERFORM public.recompute_rollups(p_devices, p_buckets);
    RETURN written;
END
$$;
REVOKE ALL ON FUNCTION recompute_buckets(integer[], timestamptz[]) FROM PUBLIC, mqtt2pg_writer;

-- Recomputes the rollup rows of one level (unit: hour, day, month) for the given (device, period start)
-- keys from the level below (src: measurements_5m, _1h, _1d): the rows of the device whose bucket lies in
-- [start, end of the local period). A key with no rows below loses its rollup row.
CREATE FUNCTION recompute_rollup_level(p_unit text, p_src text, p_dst text, p_devices integer[],
                                       p_starts timestamptz[])
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    written integer;
    count_expr text := CASE WHEN p_src = 'measurements_5m' THEN '1' ELSE 's.buckets' END;
BEGIN
    EXECUTE format('DELETE FROM public.%I a USING unnest($1, $2) AS k(device_id, bucket)
                     WHERE a.device_id = k.device_id AND a.bucket = k.bucket', p_dst)
      USING p_devices, p_starts;
    EXECUTE format($q$
        INSERT INTO public.%1$I (tenant_id, device_id, point_id, bucket, local_start, buckets, count, avg, min, max,
                                 first_value, first_time, last_value, last_time, sum, integral, increase)
        SELECT s.tenant_id, s.device_id, s.point_id, k.bucket, k.bucket AT TIME ZONE k.tz, sum(%3$s),
               sum(s.count), sum(s.sum) / sum(s.count), min(s.min), max(s.max),
               (array_agg(s.first_value ORDER BY s.first_time))[1], min(s.first_time),
               (array_agg(s.last_value ORDER BY s.last_time DESC))[1], max(s.last_time),
               sum(s.sum), sum(s.integral), sum(s.increase)
          FROM (SELECT DISTINCT u.device_id, u.bucket, t.timezone AS tz,
                       public.local_period_end(u.bucket, t.timezone, $3) AS stop
                  FROM unnest($1, $2) AS u(device_id, bucket)
                  JOIN public.devices d ON d.id = u.device_id
                  JOIN public.tenants t ON t.id = d.tenant_id OFFSET 0) k
          JOIN public.points kp ON kp.device_id = k.device_id
          CROSS JOIN LATERAL (
              SELECT a.* FROM public.%2$I a
               WHERE a.device_id = k.device_id AND a.point_id = kp.id AND a.bucket >= k.bucket AND a.bucket < k.stop
              OFFSET 0) s
         GROUP BY s.tenant_id, s.device_id, s.point_id, k.bucket, k.tz$q$, p_dst, p_src, count_expr)
      USING p_devices, p_starts, p_unit;
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END
$$;
REVOKE ALL ON FUNCTION recompute_rollup_level(text, text, text, integer[], timestamptz[]) FROM PUBLIC;

-- Recomputes the hourly, daily and monthly rows that contain the given 5-minute (device, bucket) keys, in
-- that order (each level from the one below), in the device's tenant's time zone.
CREATE FUNCTION recompute_rollups(p_devices integer[], p_buckets timestamptz[])
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    level record;
    devs integer[];
    starts timestamptz[];
BEGIN
    FOR level IN SELECT * FROM (VALUES (1, 'hour', 'measurements_5m', 'measurements_1h'),
                                       (2, 'day', 'measurements_1h', 'measurements_1d'),
                                       (3, 'month', 'measurements_1d', 'measurements_1mo')) AS v(n, unit, src, dst)
                  ORDER BY n LOOP
        SELECT array_agg(k.device_id), array_agg(k.start) INTO devs, starts
          FROM (SELECT DISTINCT u.device_id, public.local_period_start(u.bucket, t.timezone, level.unit) AS start
                  FROM unnest(p_devices, p_buckets) AS u(device_id, bucket)
                  JOIN public.devices d ON d.id = u.device_id
                  JOIN public.tenants t ON t.id = d.tenant_id) k;
        IF devs IS NOT NULL THEN
            PERFORM public.recompute_rollup_level(level.unit, level.src, level.dst, devs, starts);
        END IF;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION recompute_rollups(integer[], timestamptz[]) FROM PUBLIC;

-- As 009, plus: each claimed key of a device with a counter also recomputes the bucket before and after it
-- (the writer marks a reading's bucket and the next; a counter bucket depends on readings 10 minutes either
-- side), and the frozen rule is aggregate_bucket_frozen().
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
    -- By device, then bucket (009: by bucket): a batch then holds runs of one device's buckets, whose
    -- neighbours mostly are in the run already. By bucket, 500 devices' same bucket tripled the work.
    WITH c AS (DELETE FROM public.aggregate_dirty WHERE (device_id, bucket) IN (
                   SELECT device_id, bucket FROM public.aggregate_dirty WHERE tenant_id = tenant
                    ORDER BY device_id, bucket LIMIT p_limit FOR UPDATE SKIP LOCKED)
               RETURNING device_id, bucket)
    SELECT count(*), array_agg(device_id), array_agg(bucket) INTO claimed, devs, buckets FROM c;
    IF claimed = 0 THEN
        RETURN 0;
    END IF;
    SELECT array_agg(k.d), array_agg(k.b) INTO devs, buckets
      FROM (SELECT DISTINCT c.d, c.b + s.o AS b
              FROM unnest(devs, buckets) AS c(d, b)
             CROSS JOIN (VALUES (interval '-5 minutes'), (interval '0'), (interval '5 minutes')) AS s(o)
             WHERE s.o = interval '0'
                OR EXISTS (SELECT 1 FROM public.points p WHERE p.device_id = c.d AND p.kind <> 'gauge')) k
     WHERE NOT public.aggregate_bucket_frozen(k.b);
    IF devs IS NOT NULL THEN
        PERFORM public.recompute_buckets(devs, buckets);
    END IF;
    RETURN claimed;
END
$$;
REVOKE ALL ON FUNCTION recompute_dirty(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION recompute_dirty(integer) TO mqtt2pg_writer;

-- `mqtt2pg aggregate rebuild`: after the 5-minute buckets of [p_from, p_to) were recomputed, rebuilds the
-- tenant-in-context's rollups over the range from its 5-minute rows (frozen ones included: they outlive
-- the raw readings). Rows of periods that start in the range are deleted first, so a changed
-- tenants.timezone leaves no rows keyed by the old zone's periods there. Returns the 5-minute keys read.
CREATE FUNCTION rebuild_rollups(p_from timestamptz, p_to timestamptz) RETURNS integer LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    tenant integer := NULLIF(current_setting('app.tenant_id', true), '')::integer;
    devs integer[];
    buckets timestamptz[];
BEGIN
    IF tenant IS NULL THEN
        RAISE EXCEPTION 'rebuild_rollups needs a tenant context (app.tenant_id)' USING ERRCODE = 'MQ004';
    END IF;
    PERFORM public.aggregate_lock_devices(ARRAY(SELECT id FROM public.devices WHERE tenant_id = tenant));
    DELETE FROM public.measurements_1h WHERE tenant_id = tenant AND bucket >= p_from AND bucket < p_to;
    DELETE FROM public.measurements_1d WHERE tenant_id = tenant AND bucket >= p_from AND bucket < p_to;
    DELETE FROM public.measurements_1mo WHERE tenant_id = tenant AND bucket >= p_from AND bucket < p_to;
    SELECT array_agg(a.device_id), array_agg(a.bucket) INTO devs, buckets
      FROM (SELECT DISTINCT device_id, bucket FROM public.measurements_5m
             WHERE tenant_id = tenant AND bucket >= p_from AND bucket < p_to) a;
    IF devs IS NULL THEN
        RETURN 0;
    END IF;
    PERFORM public.recompute_rollups(devs, buckets);
    RETURN cardinality(devs);
END
$$;
REVOKE ALL ON FUNCTION rebuild_rollups(timestamptz, timestamptz) FROM PUBLIC;

-- --- 6. energy views ------------------------------------------------------------------------------------------
-- Energy per device, counter point and local day (the daily rollup's increase), for dashboards and
-- `mqtt2pg energy`. security_invoker: the querying role's row-level security applies, not the view owner's.
CREATE VIEW energy_daily WITH (security_invoker = true) AS
SELECT r.tenant_id, t.slug AS tenant, t.timezone, r.device_id, d.serial, r.point_id, p.name AS point, p.unit,
       p.kind, r.local_start::date AS day, r.bucket AS day_start, r.increase AS energy, r.buckets, r.count
  FROM public.measurements_1d r
  JOIN public.points p ON p.id = r.point_id
  JOIN public.devices d ON d.id = r.device_id
  JOIN public.tenants t ON t.id = r.tenant_id
 WHERE p.kind IN ('counter', 'daily_counter');
-- The same summed over the tenant's devices, per counter point name and local day.
CREATE VIEW energy_daily_tenant WITH (security_invoker = true) AS
SELECT tenant_id, tenant, timezone, point, unit, day, min(day_start) AS day_start, sum(energy) AS energy,
       count(DISTINCT device_id) AS devices
  FROM public.energy_daily
 GROUP BY tenant_id, tenant, timezone, point, unit, day;
GRANT SELECT ON energy_daily, energy_daily_tenant TO mqtt2pg_reader, mqtt2pg_writer;
