-- 010: retention of rejected_messages (issue 13). The bridge samples rejections (at most one stored row a
-- second per reason and claimed device), and this bounds how long the stored ones stay: the scheduled job
-- (src/aggregate.c) calls purge_rejected_messages(validation.rejected_retention_days) once an hour.
-- SECURITY DEFINER: the writer may insert rejections but not delete them; this deletes only by age.
-- Deletes in batches of 10,000 so a first purge of a large table does not hold one long transaction's locks
-- on every row; returns how many rows went.
CREATE FUNCTION purge_rejected_messages(p_days integer)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    cutoff timestamptz := now() - make_interval(days => p_days);
    total bigint := 0;
    n bigint;
BEGIN
    IF p_days IS NULL OR p_days <= 0 THEN
        RETURN 0;
    END IF;
    LOOP
        DELETE FROM public.rejected_messages
         WHERE id IN (SELECT id FROM public.rejected_messages WHERE received_at < cutoff LIMIT 10000);
        GET DIAGNOSTICS n = ROW_COUNT;
        total := total + n;
        EXIT WHEN n < 10000;
    END LOOP;
    RETURN total;
END
$$;
REVOKE ALL ON FUNCTION purge_rejected_messages(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION purge_rejected_messages(integer) TO mqtt2pg_writer;
