-- SPDX-License-Identifier: Apache-2.0
-- deploy/grafana/tenant-reader.sql: the login role of one tenant's Grafana datasource.
--
--   psql "$CONNINFO" -v slug=acme -v password="$(cat acme-grafana.secret)" -f deploy/grafana/tenant-reader.sql
--
-- Creates (or updates) the role mqtt2pg_reader_<slug>: LOGIN, a member of mqtt2pg_reader (so it has exactly
-- the reader's SELECT grants and is bound by the same row-level security), whose every session starts with
-- app.tenant_id = <the tenant's id>. A Grafana datasource that logs in as it sees that tenant's readings and
-- aggregates only, and the dashboard's queries need no SET. Without -v password, set one yourself
-- (\password mqtt2pg_reader_<slug>), which keeps it out of the server's statement log.
--
-- Run it as a superuser, or as the owner role after a superuser ran once
--   GRANT SET ON PARAMETER app.tenant_id TO mqtt2pg_owner;
-- (PostgreSQL 15 refuses ALTER ROLE ... SET of a custom parameter to other roles.) The owner needs CREATEROLE.
--
-- What this is and is not: the context is the role's default, not a lock. Someone who can send SQL as this
-- role (a Grafana Editor, Explore) can SET app.tenant_id to another tenant's id. Give tenants Viewer rights
-- on dashboards that use this datasource; see deploy/grafana/README.md.
\set ON_ERROR_STOP on
\if :{?slug}
\else
\echo 'usage: psql ... -v slug=TENANT_SLUG [-v password=SECRET] -f tenant-reader.sql'
\quit
\endif

SELECT count(*) = 1 AS tenant_found, min(id) AS tenant_id FROM tenants WHERE slug = :'slug' \gset
\if :tenant_found
\else
\echo 'no tenant ' :'slug'
SELECT 1 / 0 AS no_such_tenant;
\endif

SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS IN ROLE mqtt2pg_reader',
              'mqtt2pg_reader_' || :'slug')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mqtt2pg_reader_' || :'slug') \gexec
SELECT format('ALTER ROLE %I SET app.tenant_id = %L', 'mqtt2pg_reader_' || :'slug', :'tenant_id') \gexec
\if :{?password}
SELECT format('ALTER ROLE %I PASSWORD %L', 'mqtt2pg_reader_' || :'slug', :'password') \gexec
\endif
SELECT format('role %s: sessions start with app.tenant_id = %s (tenant %s)', 'mqtt2pg_reader_' || :'slug',
              :'tenant_id', :'slug') AS done;
