-- SPDX-License-Identifier: Apache-2.0
-- 001: roles, the device registry, and the change notification the bridges listen for.
--
-- Applied by `mqtt2pg migrate` as the owner role (which needs CREATEROLE, or the two roles below must exist
-- already). mqtt2pg_writer is the bridge's login role: not the owner, not superuser, not BYPASSRLS.
-- mqtt2pg_reader is for dashboards. Both are confined to one tenant's rows by Row-Level Security.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mqtt2pg_writer') THEN
        CREATE ROLE mqtt2pg_writer LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mqtt2pg_reader') THEN
        CREATE ROLE mqtt2pg_reader LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END
$$;

CREATE TABLE tenants (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    name        text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE devices (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   integer NOT NULL REFERENCES tenants(id),
    serial      text NOT NULL UNIQUE CHECK (serial ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$'),
    model       text NOT NULL DEFAULT '',
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX devices_tenant_idx ON devices (tenant_id);

CREATE TABLE points (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id   integer NOT NULL REFERENCES devices(id),
    name        text NOT NULL CHECK (name ~ '^[A-Za-z0-9_.:/-]{1,64}$'),
    unit        text NOT NULL DEFAULT '',
    min_value   double precision,
    max_value   double precision,
    auto_registered boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (device_id, name),
    CHECK (min_value IS NULL OR max_value IS NULL OR min_value <= max_value)
);

-- Every change to the registry wakes the bridges (LISTEN mqtt2pg_registry), which reload their snapshot.
CREATE FUNCTION notify_registry_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('mqtt2pg_registry', TG_TABLE_NAME);
    RETURN NULL;
END
$$;
CREATE TRIGGER tenants_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenants
    FOR EACH STATEMENT EXECUTE FUNCTION notify_registry_change();
CREATE TRIGGER devices_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON devices
    FOR EACH STATEMENT EXECUTE FUNCTION notify_registry_change();
CREATE TRIGGER points_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON points
    FOR EACH STATEMENT EXECUTE FUNCTION notify_registry_change();

-- Policy "register": the writer may add a point to a device, up to a cap, and nothing else in the registry.
-- SECURITY DEFINER so the writer needs no INSERT on points; the cap is enforced here too (the bridge checks
-- it first against its snapshot, but several replicas may race).
CREATE FUNCTION register_point(p_device_id integer, p_name text, p_max_points integer)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    found_id integer;
BEGIN
    SELECT id INTO found_id FROM points WHERE device_id = p_device_id AND name = p_name;
    IF found_id IS NOT NULL THEN
        RETURN found_id;
    END IF;
    -- Serialise registrations per device so the count below cannot be raced.
    PERFORM 1 FROM devices WHERE id = p_device_id FOR UPDATE;
    IF (SELECT count(*) FROM points WHERE device_id = p_device_id) >= p_max_points THEN
        RAISE EXCEPTION 'device % already has % points (max_points_per_device)', p_device_id, p_max_points
            USING ERRCODE = 'check_violation';
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
REVOKE ALL ON FUNCTION register_point(integer, text, integer) FROM PUBLIC;

GRANT USAGE ON SCHEMA public TO mqtt2pg_writer, mqtt2pg_reader;
GRANT SELECT ON tenants, devices, points TO mqtt2pg_writer, mqtt2pg_reader;
GRANT EXECUTE ON FUNCTION register_point(integer, text, integer) TO mqtt2pg_writer;
