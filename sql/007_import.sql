-- SPDX-License-Identifier: Apache-2.0
-- 007: progress of `mqtt2pg import`, committed in the same transaction as each batch of readings.
--
-- A run is one file imported into one tenant, named by the file's identity: its base name, its size and a
-- fingerprint of its first bytes (FNV-1a 64 of the first 64 KiB, in hex; it tells a different file of the
-- same name and size apart, it is not a cryptographic hash). byte_offset and line_number say how far the
-- last committed batch reached, so `import --resume` continues from there after SIGINT, SIGTERM or SIGKILL
-- without duplicates; the counters are absolute totals over the whole run (every run of the command that
-- resumed it), so the final report covers the whole file. import_run_devices keeps, per device, the source
-- rows accepted and their first and last time: the report compares them with the rows in the database.
--
-- Same Row-Level Security as the readings: the importer runs as mqtt2pg_writer under the tenant's context.

CREATE TABLE import_runs (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       integer NOT NULL REFERENCES tenants(id),
    file_name       text NOT NULL,
    file_size       bigint NOT NULL,
    fingerprint     text NOT NULL,
    format          text NOT NULL CHECK (format IN ('influx', 'csv')),
    started_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    byte_offset     bigint NOT NULL DEFAULT 0,   -- in the uncompressed stream
    line_number     bigint NOT NULL DEFAULT 0,   -- lines done (the next line to read is line_number + 1)
    lines_skipped   bigint NOT NULL DEFAULT 0,   -- comments, blank lines, DDL, the CSV header
    lines_accepted  bigint NOT NULL DEFAULT 0,
    lines_rejected  bigint NOT NULL DEFAULT 0,
    readings        bigint NOT NULL DEFAULT 0,   -- readings of accepted lines, sent to the database
    rows_written    bigint NOT NULL DEFAULT 0,   -- of which new
    rows_duplicate  bigint NOT NULL DEFAULT 0,   -- of which already there (ON CONFLICT DO NOTHING)
    points_dropped  bigint NOT NULL DEFAULT 0,   -- readings of unknown points under unknown_points = "drop"
    rejected        jsonb NOT NULL DEFAULT '{}', -- lines rejected, by reason
    min_time        timestamptz,
    max_time        timestamptz,
    UNIQUE (tenant_id, file_name, file_size, fingerprint)
);

CREATE TABLE import_run_devices (
    run_id      bigint NOT NULL REFERENCES import_runs(id) ON DELETE CASCADE,
    tenant_id   integer NOT NULL,
    device_id   integer NOT NULL,
    readings    bigint NOT NULL,             -- accepted readings in the source
    rows_written bigint NOT NULL DEFAULT 0,  -- of which new in the database
    first_time  timestamptz NOT NULL,
    last_time   timestamptz NOT NULL,
    PRIMARY KEY (run_id, device_id)
);

ALTER TABLE import_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE import_runs FORCE ROW LEVEL SECURITY;
CREATE POLICY import_runs_tenant ON import_runs
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::integer)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::integer);
ALTER TABLE import_run_devices ENABLE ROW LEVEL SECURITY;
ALTER TABLE import_run_devices FORCE ROW LEVEL SECURITY;
CREATE POLICY import_run_devices_tenant ON import_run_devices
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::integer)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::integer);

-- The importer reads and advances its own runs; it never deletes one (the owner may, to start over).
GRANT SELECT, INSERT, UPDATE ON import_runs, import_run_devices TO mqtt2pg_writer;
GRANT SELECT ON import_runs, import_run_devices TO mqtt2pg_reader;
