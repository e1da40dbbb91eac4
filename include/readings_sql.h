/* SPDX-License-Identifier: Apache-2.0 */
/*
 * readings_sql: the one statement that writes readings, shared by the writers, `mqtt2pg import` and the
 * benchmark's database-only reference (so that the reference measures what the bridge runs).
 *
 * It calls write_readings() (sql/015_storage_contract.sql), the only way in: the writer has no privilege on
 * measurements. The function checks that the tenant is the transaction's tenant context, inserts the rows
 * ON CONFLICT DO NOTHING and, for the rows that were new (a replay marks nothing), marks their 5-minute
 * bucket and the next one dirty for the aggregate job, in the same transaction (sql/003_aggregates.sql says
 * why the next one). Rows older than the raw retention horizon are refused with SQLSTATE MQ005.
 *
 * READINGS_WRITE(source, tenant): source yields one row a(t, d, p, v) of four arrays (time in µs since the
 * epoch, device id, point id, value), tenant is the tenant id parameter; the caller appends the final SELECT
 * over `ins` (device_id, time of each new row).
 */
#ifndef MQTT2PG_READINGS_SQL_H
#define MQTT2PG_READINGS_SQL_H

/* The writer's binary arrays: $1 times, $2 devices, $3 points, $4 values. */
#define READINGS_FROM_ARRAYS \
	"(SELECT $1::bigint[], $2::integer[], $3::integer[], $4::float8[]) AS a(t, d, p, v)"

/* A table with columns (t, d, p, v), gathered into the four arrays (import's COPY staging table). */
#define READINGS_FROM_TABLE(table)                                                           \
	"(SELECT array_agg(r.t), array_agg(r.d), array_agg(r.p), array_agg(r.v) FROM " table \
	" AS r) AS a(t, d, p, v)"

#define READINGS_WRITE(source, tenant)                                          \
	"WITH ins AS ("                                                         \
	" SELECT w.new_device_id AS device_id, w.new_time AS time FROM " source \
	" CROSS JOIN LATERAL public.write_readings(" tenant ", a.t, a.d, a.p, a.v) AS w) "

#endif
