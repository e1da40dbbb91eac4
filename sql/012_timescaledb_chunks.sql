-- SPDX-License-Identifier: Apache-2.0
-- 012: on TimescaleDB, keep the hypertable's chunks out of reach of every tenant-facing role.
--
-- A chunk is an ordinary table with no row-level security of its own that copies the hypertable's grants
-- when it is created: in TimescaleDB's default schema (_timescaledb_internal, USAGE for PUBLIC) the reader
-- read every tenant's raw values from a chunk, and the writer inserted into one without a tenant context,
-- past the policy and the dirty-bucket marking (measured on TimescaleDB 2.28.3, issue 14).
--
-- The shape, from 002 on (new databases) and from here on (databases made before):
--   * chunks live in _mqtt2pg_chunks; only the owner and the writer have USAGE on it (the writer needs it:
--     an insert through the hypertable into an existing chunk looks the chunk up in its schema), so no
--     reader role can name a chunk at all;
--   * secure_timescaledb_chunks() moves any chunk created elsewhere into it and takes away every grant a
--     chunk copied from the hypertable, so the writer cannot insert into a chunk directly (inserts through
--     the hypertable need no grant on the chunk: measured). A new chunk carries the copied grants until the
--     next call: the bridge's partition upkeep (ensure_partitions) makes that call, as does migrate.
--   * the default (time DESC) index goes: every insert paid for it, no query of ours uses it.
-- Where new chunks are created is in TimescaleDB's catalog, which only a superuser may change: run as a
-- superuser, this migration changes it; otherwise it says so, loudly (chunks are then moved at each upkeep).
--
-- On plain PostgreSQL this is a no-op.

CREATE OR REPLACE FUNCTION measurements_is_hypertable()
RETURNS boolean LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- What the table is, not whether the extension happens to be installed: an extension created after a
    -- plain migration leaves measurements partitioned.
    IF to_regclass('_timescaledb_catalog.hypertable') IS NULL THEN
        RETURN false;
    END IF;
    RETURN EXISTS (SELECT 1 FROM _timescaledb_catalog.hypertable
                    WHERE schema_name = 'public' AND table_name = 'measurements');
END
$$;
GRANT EXECUTE ON FUNCTION measurements_is_hypertable() TO mqtt2pg_writer;

-- Returns how many chunks it changed (moved, or grants taken away).
CREATE OR REPLACE FUNCTION secure_timescaledb_chunks()
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    chunk record;
    grantee text;
    changed integer := 0;
BEGIN
    IF NOT measurements_is_hypertable() THEN
        RETURN 0;
    END IF;
    FOR chunk IN
        SELECT chunk_schema, chunk_name
          FROM timescaledb_information.chunks
         WHERE hypertable_schema = 'public' AND hypertable_name = 'measurements'
         ORDER BY range_start
    LOOP
        IF chunk.chunk_schema <> '_mqtt2pg_chunks' THEN
            EXECUTE format('ALTER TABLE %I.%I SET SCHEMA _mqtt2pg_chunks', chunk.chunk_schema, chunk.chunk_name);
            changed := changed + 1;
        END IF;
        FOR grantee IN
            SELECT DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(a.grantee::regrole::text) END
              FROM pg_class c, aclexplode(c.relacl) a
             WHERE c.oid = format('_mqtt2pg_chunks.%I', chunk.chunk_name)::regclass AND a.grantee <> c.relowner
        LOOP
            EXECUTE format('REVOKE ALL ON _mqtt2pg_chunks.%I FROM %s', chunk.chunk_name, grantee);
            changed := changed + 1;
        END LOOP;
    END LOOP;
    RETURN changed;
END
$$;
REVOKE ALL ON FUNCTION secure_timescaledb_chunks() FROM PUBLIC;
-- Only ever takes rights away: the bridge's upkeep may call it.
GRANT EXECUTE ON FUNCTION secure_timescaledb_chunks() TO mqtt2pg_writer;

DO $$
DECLARE
    changed integer;
    where_new text;
BEGIN
    IF NOT measurements_is_hypertable() THEN
        RETURN;
    END IF;
    CREATE SCHEMA IF NOT EXISTS _mqtt2pg_chunks;
    REVOKE ALL ON SCHEMA _mqtt2pg_chunks FROM PUBLIC;
    GRANT USAGE ON SCHEMA _mqtt2pg_chunks TO mqtt2pg_writer;
    changed := secure_timescaledb_chunks();
    IF changed > 0 THEN
        RAISE NOTICE 'secured % TimescaleDB chunk(s) of measurements in _mqtt2pg_chunks', changed;
    END IF;
    DROP INDEX IF EXISTS public.measurements_time_idx;

    SELECT associated_schema_name INTO where_new FROM _timescaledb_catalog.hypertable
     WHERE schema_name = 'public' AND table_name = 'measurements';
    IF where_new <> '_mqtt2pg_chunks' THEN
        IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
            UPDATE _timescaledb_catalog.hypertable SET associated_schema_name = '_mqtt2pg_chunks'
             WHERE schema_name = 'public' AND table_name = 'measurements';
        ELSE
            RAISE WARNING 'new TimescaleDB chunks of measurements are still created in %, where roles with '
                'SELECT on measurements can read them past row-level security until the bridge''s next '
                'partition upkeep moves them; to close that window, run once as a superuser: '
                'UPDATE _timescaledb_catalog.hypertable SET associated_schema_name = ''_mqtt2pg_chunks'' '
                'WHERE schema_name = ''public'' AND table_name = ''measurements''', where_new;
        END IF;
    END IF;
END
$$;
