-- SPDX-License-Identifier: Apache-2.0
-- 005: the writer role cannot read readings, under any tenant context.
--
-- The bridge only inserts readings. RLS confines every statement to the tenant in app.tenant_id, but the
-- writer sets that context itself; a stolen writer credential could forge another tenant's context. So the
-- writer keeps no SELECT on the values: only on the key columns that INSERT ... RETURNING needs to mark
-- dirty buckets. The aggregate job reads raw readings through recompute_buckets(), which now runs as its
-- owner (SECURITY DEFINER; the owner is subject to the same policy, FORCE ROW LEVEL SECURITY) and returns
-- only a count. Dashboards read as mqtt2pg_reader.
REVOKE SELECT ON measurements FROM mqtt2pg_writer;
GRANT SELECT (device_id, point_id, time) ON measurements TO mqtt2pg_writer;
REVOKE SELECT, INSERT, DELETE ON measurements_5m FROM mqtt2pg_writer;
ALTER FUNCTION recompute_buckets(integer[], timestamptz[]) SECURITY DEFINER;
REVOKE ALL ON FUNCTION recompute_buckets(integer[], timestamptz[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION recompute_buckets(integer[], timestamptz[]) TO mqtt2pg_writer;
