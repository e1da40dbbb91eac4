/* SPDX-License-Identifier: Apache-2.0 */
/*
 * readings_sql: the one statement that writes readings, shared by the writers, `mqtt2pg import` and the
 * benchmark's database-only reference (so that the reference measures what the bridge runs).
 *
 * It inserts the rows and, for the rows that were new (a replay marks nothing), marks their 5-minute bucket and
 * the next one dirty for the aggregate job, in the same transaction (sql/003_aggregates.sql says why the next
 * one). DO UPDATE, not DO NOTHING: it locks a dirty row the job may be claiming at this moment, so the job's
 * recomputation waits for these rows instead of missing them.
 *
 * READINGS_WRITE(source, tenant): source yields r(t, d, p, v) (time in µs since the epoch, device id, point id,
 * value), tenant is the tenant id parameter; the caller appends the final SELECT over `ins` (device_id, time
 * of each new row).
 */
#ifndef MQTT2PG_READINGS_SQL_H
#define MQTT2PG_READINGS_SQL_H

/* The writer's binary arrays: $1 times, $2 devices, $3 points, $4 values. */
#define READINGS_FROM_ARRAYS "unnest($1::bigint[], $2::integer[], $3::integer[], $4::float8[]) AS r(t, d, p, v)"

#define READINGS_WRITE(source, tenant)                                                                         \
	"WITH ins AS ("                                                                                        \
	" INSERT INTO measurements (time, tenant_id, device_id, point_id, value)"                              \
	" SELECT timestamptz 'epoch' + r.t * interval '1 microsecond', " tenant ", r.d, r.p, r.v"                \
	" FROM " source " ON CONFLICT DO NOTHING RETURNING device_id, time), "                                   \
	"marks AS ("                                                                                           \
	" INSERT INTO aggregate_dirty (tenant_id, device_id, bucket)"                                          \
	" SELECT DISTINCT " tenant ", k.device_id, k.bucket FROM ("                                            \
	"  SELECT device_id, date_bin('5 minutes', time, timestamptz 'epoch') AS bucket FROM ins"              \
	"  UNION SELECT device_id, date_bin('5 minutes', time, timestamptz 'epoch') + interval '5 minutes' FROM ins" \
	" ) k ORDER BY 2, 3"                                                                                   \
	" ON CONFLICT (device_id, bucket) DO UPDATE SET marked_at = EXCLUDED.marked_at) "

#endif
