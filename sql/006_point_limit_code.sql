-- SPDX-License-Identifier: Apache-2.0
-- 006: register_point() refuses a device over its point cap with its own SQLSTATE (MQ001), so the bridge can
-- record the message as point_limit (not database_refused) when another message registered the last free
-- point a moment before its registry snapshot caught up.
CREATE OR REPLACE FUNCTION register_point(p_device_id integer, p_name text, p_max_points integer)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    found_id integer;
BEGIN
    SELECT id INTO found_id FROM points WHERE device_id = p_device_id AND name = p_name;
    IF found_id IS NOT NULL THEN
        RETURN found_id;
    END IF;
    PERFORM 1 FROM devices WHERE id = p_device_id FOR UPDATE;
    IF (SELECT count(*) FROM points WHERE device_id = p_device_id) >= p_max_points THEN
        RAISE EXCEPTION 'device % already has % points (max_points_per_device)', p_device_id, p_max_points
            USING ERRCODE = 'MQ001';
    END IF;
    INSERT INTO points (device_id, name, auto_registered) VALUES (p_device_id, p_name, true)
        ON CONFLICT (device_id, name) DO NOTHING
        RETURNING id INTO found_id;
    IF found_id IS NULL THEN
        SELECT id INTO found_id FROM points WHERE device_id = p_device_id AND name = p_name;
    END IF;
    RETURN found_id;
END
$$;
