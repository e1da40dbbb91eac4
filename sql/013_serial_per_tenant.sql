-- SPDX-License-Identifier: Apache-2.0
-- 013 (issue 15): a device serial is unique within its tenant, not across all tenants.
--
-- Before, devices.serial was UNIQUE on its own: two sites could not both have an `inverter_1`, and one
-- physical device seen through two publishers (two tenants' topics) had to live in one tenant. A device is
-- now named by (tenant, serial), as a topic names it (<prefix>/<tenant>/<serial>/...): the bridge looks a
-- serial up in the topic's tenant, `mqtt2pg import --tenant` in the import's tenant, the CLI takes --tenant
-- where a serial alone is ambiguous, and `acl export` writes broker usernames that stay unique
-- (--username serial@tenant) when a serial is in several tenants.
--
-- Nothing else in the schema relied on the global uniqueness: every reference to a device is by its id
-- (points, device_aliases, measurements, aggregates, import_run_devices), and the tenant checks compare ids
-- (devices_id_tenant_key, 009; device_aliases_same_tenant, 011). The serial alphabet is unchanged
-- (devices_serial_check, 001).
--
-- Written to be re-run safely (migrate applies each file once, but an operator may replay it by hand): the
-- old constraint is looked up rather than named, the new one is added only when missing.

DO $$
DECLARE
    c record;
BEGIN
    -- The global UNIQUE (serial): devices_serial_key as 001 named it, whatever it is called here.
    FOR c IN SELECT con.conname FROM pg_catalog.pg_constraint con
              WHERE con.conrelid = 'public.devices'::regclass AND con.contype = 'u'
                AND con.conkey = ARRAY[(SELECT a.attnum FROM pg_catalog.pg_attribute a
                                         WHERE a.attrelid = 'public.devices'::regclass AND a.attname = 'serial')]
    LOOP
        EXECUTE format('ALTER TABLE public.devices DROP CONSTRAINT %I', c.conname);
    END LOOP;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint
                    WHERE conrelid = 'public.devices'::regclass AND conname = 'devices_tenant_serial_key') THEN
        ALTER TABLE public.devices ADD CONSTRAINT devices_tenant_serial_key UNIQUE (tenant_id, serial);
    END IF;
END
$$;

-- (tenant_id, serial) leads with tenant_id: the old index on tenant_id alone is redundant. The CLI still
-- finds a device by its serial alone (to say which tenants have it), so the serial keeps an index.
DROP INDEX IF EXISTS public.devices_tenant_idx;
CREATE INDEX IF NOT EXISTS devices_serial_idx ON public.devices (serial);
