-- SPDX-License-Identifier: Apache-2.0
-- 011 (issue 15): device identity beyond the serial, and what an auto-registered point is.
--
-- device_aliases: a name by which a topic (or a line protocol tag) may mean a registered device: a user-chosen
-- name in any script (AhoyDTU's "Balkon_Süd"), a site-local id ("inverter_1"), a host name. Per tenant, and per
-- scope (a route's alias_scope; '' for the whole tenant), so two sites may both say "inverter_1". The bridge
-- reads the table into its registry snapshot (the same LISTEN/NOTIFY refresh) and looks an alias up when the
-- name is no registered serial, in the tenant the topic or route names. Under the same access as the registry
-- tables it resolves to (devices): the roles read it, only the owner writes it (mqtt2pg device alias ...).
--
-- point_defaults: the unit and kind (gauge, counter) a point gets when the bridge registers it (policy
-- register), so a preset's documented units and cumulative counters are right from the first reading.
-- tenant_id NULL: every tenant; a tenant's own row wins.
CREATE TABLE device_aliases (
    tenant_id   integer NOT NULL REFERENCES tenants(id),
    scope       text NOT NULL DEFAULT '' CHECK (length(scope) <= 64),
    alias       text NOT NULL CHECK (octet_length(alias) BETWEEN 1 AND 256 AND alias !~ '[[:cntrl:]/+#]'),
    device_id   integer NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, scope, alias)
);
CREATE INDEX device_aliases_device_idx ON device_aliases (device_id);

-- An alias names a device of its own tenant, never another tenant's (that would be spoofing by configuration).
CREATE FUNCTION device_aliases_same_tenant() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM devices WHERE id = NEW.device_id AND tenant_id = NEW.tenant_id) THEN
        RAISE EXCEPTION 'device % does not belong to tenant %', NEW.device_id, NEW.tenant_id
            USING ERRCODE = 'MQ002';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER device_aliases_tenant BEFORE INSERT OR UPDATE ON device_aliases
    FOR EACH ROW EXECUTE FUNCTION device_aliases_same_tenant();
CREATE TRIGGER device_aliases_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON device_aliases
    FOR EACH STATEMENT EXECUTE FUNCTION notify_registry_change();
GRANT SELECT ON device_aliases TO mqtt2pg_writer, mqtt2pg_reader;

CREATE TABLE point_defaults (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   integer REFERENCES tenants(id),
    name        text NOT NULL CHECK (name ~ '^[A-Za-z0-9_.:/-]{1,64}$'),
    unit        text NOT NULL DEFAULT '',
    kind        text NOT NULL DEFAULT 'gauge' CHECK (kind IN ('gauge', 'counter')),
    UNIQUE NULLS NOT DISTINCT (tenant_id, name)
);
GRANT SELECT ON point_defaults TO mqtt2pg_writer, mqtt2pg_reader;

-- Row-level security as for the registry (009): the writer reads every tenant's aliases and defaults (it
-- validates every tenant's messages); a reader role those of the tenants tenant_members maps it to (and the
-- global defaults). Not FORCEd: the owner's admin commands and register_point() see everything.
DO $$
DECLARE
    member_of text := 'ARRAY(SELECT m.tenant_id FROM public.tenant_members m WHERE m.role IN (SELECT r.oid FROM '
                      'pg_catalog.pg_roles r WHERE pg_catalog.pg_has_role(current_user, r.oid, ''MEMBER'')))';
BEGIN
    ALTER TABLE device_aliases ENABLE ROW LEVEL SECURITY;
    ALTER TABLE point_defaults ENABLE ROW LEVEL SECURITY;
    CREATE POLICY device_aliases_writer ON device_aliases FOR SELECT TO mqtt2pg_writer USING (true);
    CREATE POLICY point_defaults_writer ON point_defaults FOR SELECT TO mqtt2pg_writer USING (true);
    EXECUTE format('CREATE POLICY device_aliases_reader ON public.device_aliases FOR SELECT '
                   'USING (tenant_id = ANY (%s))', member_of);
    EXECUTE format('CREATE POLICY point_defaults_reader ON public.point_defaults FOR SELECT '
                   'USING (tenant_id IS NULL OR tenant_id = ANY (%s))', member_of);
END
$$;

-- The presets' documented points (README "Presets", "Devices"): unit as the firmware publishes it; energy
-- totals are counters.
INSERT INTO point_defaults (name, unit, kind) VALUES
    ('0/power', 'W', 'gauge'), ('0/voltage', 'V', 'gauge'), ('0/current', 'A', 'gauge'),
    ('0/frequency', 'Hz', 'gauge'), ('0/yieldday', 'Wh', 'counter'), ('0/yieldtotal', 'kWh', 'counter'),
    ('0/temperature', '°C', 'gauge'), ('0/powerdc', 'W', 'gauge'),
    ('1/power', 'W', 'gauge'), ('1/voltage', 'V', 'gauge'), ('1/current', 'A', 'gauge'),
    ('1/yieldday', 'Wh', 'counter'), ('1/yieldtotal', 'kWh', 'counter'),
    ('ch0/P_AC', 'W', 'gauge'), ('ch0/U_AC', 'V', 'gauge'), ('ch0/I_AC', 'A', 'gauge'), ('ch0/F_AC', 'Hz', 'gauge'),
    ('ch0/YieldDay', 'Wh', 'counter'), ('ch0/YieldTotal', 'kWh', 'counter'), ('ch0/Temp', '°C', 'gauge'),
    ('ch1/U_DC', 'V', 'gauge'), ('ch1/I_DC', 'A', 'gauge'), ('ch1/P_DC', 'W', 'gauge'),
    ('ch1/YieldDay', 'Wh', 'counter'), ('ch1/YieldTotal', 'kWh', 'counter'),
    ('ENERGY/Total', 'kWh', 'counter'), ('ENERGY/Power', 'W', 'gauge'), ('ENERGY/Voltage', 'V', 'gauge'),
    ('ENERGY/Current', 'A', 'gauge'),
    ('switch:0/apower', 'W', 'gauge'), ('switch:0/voltage', 'V', 'gauge'), ('switch:0/current', 'A', 'gauge'),
    ('switch:0/aenergy/total', 'Wh', 'counter'), ('switch:0/temperature/tC', '°C', 'gauge'),
    ('emdata:0/total_act', 'Wh', 'counter'), ('emdata:0/total_act_ret', 'Wh', 'counter'),
    ('day_energy', 'kWh', 'counter'), ('total_energy', 'kWh', 'counter'), ('ac/l1/voltage', 'V', 'gauge'),
    ('dc/pv1/power', 'W', 'gauge'),
    ('system/0/Dc/Battery/Voltage', 'V', 'gauge'), ('system/0/Dc/Pv/Power', 'W', 'gauge');

-- register_point as in 006, plus the defaults above. search_path ends with pg_temp: a SECURITY DEFINER
-- function must never find the caller's temporary objects first (FACTS.md).
CREATE OR REPLACE FUNCTION register_point(p_device_id integer, p_name text, p_max_points integer)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    found_id integer;
    d_unit text := '';
    d_kind text := 'gauge';
BEGIN
    SELECT id INTO found_id FROM public.points WHERE device_id = p_device_id AND name = p_name;
    IF found_id IS NOT NULL THEN
        RETURN found_id;
    END IF;
    PERFORM 1 FROM public.devices WHERE id = p_device_id FOR UPDATE;
    IF (SELECT count(*) FROM public.points WHERE device_id = p_device_id) >= p_max_points THEN
        RAISE EXCEPTION 'device % already has % points (max_points_per_device)', p_device_id, p_max_points
            USING ERRCODE = 'MQ001';
    END IF;
    SELECT pd.unit, pd.kind INTO d_unit, d_kind
      FROM public.point_defaults pd JOIN public.devices d ON d.id = p_device_id
     WHERE pd.name = p_name AND (pd.tenant_id = d.tenant_id OR pd.tenant_id IS NULL)
     ORDER BY pd.tenant_id NULLS LAST LIMIT 1;
    INSERT INTO public.points (device_id, name, auto_registered, unit, kind)
        VALUES (p_device_id, p_name, true, coalesce(d_unit, ''), coalesce(d_kind, 'gauge'))
        ON CONFLICT (device_id, name) DO NOTHING
        RETURNING id INTO found_id;
    IF found_id IS NULL THEN
        SELECT id INTO found_id FROM public.points WHERE device_id = p_device_id AND name = p_name;
    END IF;
    RETURN found_id;
END
$$;
REVOKE ALL ON FUNCTION register_point(integer, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION register_point(integer, text, integer) TO mqtt2pg_writer;
