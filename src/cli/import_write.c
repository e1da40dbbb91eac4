// SPDX-License-Identifier: Apache-2.0
/*
 * import_write: the last stage of `mqtt2pg import` (import_write.h): the run record, one transaction per
 * batch through write_readings (sql/015, as the live writer), and the read-back check of the report.
 */
#include "cli/import_write.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "db.h"
#include "cli/import_check.h"
#include "readings_sql.h"
#include "util/xalloc.h"

/* db_check's report for the import's statements: one line on stderr naming the file. */
static void print_failure(void *arg, PGconn *conn, const PGresult *res, const char *what)
{
	const struct importer *im = arg;
	char err[512];

	fprintf(stderr, "mqtt2pg import: %s: %s: %s\n", im->name[0] ? im->name : "import", what,
		db_error_line(conn, res, err, sizeof(err)));
}

struct db_report import_write_report(struct importer *im)
{
	return (struct db_report){ .module = "import", .report = print_failure, .arg = im };
}

/*
 * Ends a failed batch's transaction. Best effort, deliberately unchecked: the failure that brought us here has
 * been printed, and the caller stops the import on it (import_write_flush returns false); closing the
 * connection then rolls back whatever this could not, and --resume starts after the last committed batch.
 */
static void rollback(struct importer *im)
{
	PQclear(PQexec(im->conn, "ROLLBACK"));
}

/*
 * The writer's statement (writer.c: insert the rows; mark the buckets of the new ones and the next ones
 * dirty, in the same transaction), returning the new rows per device for the report.
 */
static const char *const insert_readings_sql = READINGS_WRITE(
	READINGS_FROM_ARRAYS, "$5::integer") "SELECT device_id, count(*) FROM ins GROUP BY device_id";

/* The same, from a temporary table filled by COPY (--method copy; COPY into measurements is refused under RLS). */
static const char *const insert_staged_sql =
	READINGS_WRITE(READINGS_FROM_TABLE("import_stage"),
		       "$1::integer") "SELECT device_id, count(*) FROM ins GROUP BY device_id";

/* A batch's rejected lines in one statement: five arrays (text-format literals, see array_add). */
static const char *const insert_rejects_sql =
	"INSERT INTO rejected_messages (received_at, topic, tenant_slug, serial, tenant_id, reason, detail, payload, "
	"origin, origin_seq) "
	"SELECT now(), NULL, $1, r.serial, $2::integer, r.reason, r.detail, r.payload, $3, r.seq "
	"FROM unnest($4::text[], $5::text[], $6::text[], $7::bytea[], $8::bigint[]) AS r(serial, reason, detail, payload, seq) "
	"ON CONFLICT (origin, origin_seq) DO NOTHING";

static const char *const upsert_devices_sql =
	"INSERT INTO import_run_devices AS r (run_id, tenant_id, device_id, readings, rows_written, first_time, last_time) "
	"SELECT $1::bigint, $2::integer, d, n, w, timestamptz 'epoch' + f * interval '1 microsecond', "
	"       timestamptz 'epoch' + l * interval '1 microsecond' "
	"  FROM unnest($3::integer[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[]) AS u(d, n, f, l, w) "
	"ON CONFLICT (run_id, device_id) DO UPDATE SET readings = r.readings + EXCLUDED.readings, "
	"  rows_written = r.rows_written + EXCLUDED.rows_written, "
	"  first_time = least(r.first_time, EXCLUDED.first_time), last_time = greatest(r.last_time, EXCLUDED.last_time)";

static const char *const update_run_sql =
	"UPDATE import_runs SET byte_offset = $2, line_number = $3, lines_skipped = $4, lines_accepted = $5, "
	"lines_rejected = $6, readings = $7, rows_written = $8, rows_duplicate = $9, points_dropped = $10, "
	"rejected = $11::jsonb, min_time = timestamptz 'epoch' + $12::bigint * interval '1 microsecond', "
	"max_time = timestamptz 'epoch' + $13::bigint * interval '1 microsecond', updated_at = now(), "
	"finished_at = CASE WHEN $14::boolean THEN now() END WHERE id = $1";


/* --- one transaction per batch --------------------------------------------------------------------- */

struct text {
	char *s;
	size_t len, cap;
};

static void text_add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void text_add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->s ? t->s + t->len : NULL, t->s ? t->cap - t->len : 0, fmt, ap);
		va_end(ap);
		if (t->s && (size_t)n < t->cap - t->len)
			break;
		t->cap = (t->cap + (size_t)n + 1) * 2;
		t->s = xrealloc(t->s, t->cap);
	}
	t->len += (size_t)n;
}

static void rejected_json(const struct import_counts *c, struct text *t)
{
	bool first = true;

	text_add(t, "{");
	for (int i = 0; i < IMPORT_REASON_COUNT; i++)
		if (c->rejected[i]) {
			text_add(t, "%s\"%s\": %" PRId64, first ? "" : ", ", import_reason_name(i),
				 c->rejected[i]);
			first = false;
		}
	text_add(t, "}");
}

/* Daily partitions for the batch's range, in their own statement (ensure_partitions takes a lock). */
static bool ensure_partitions(struct importer *im)
{
	char from[24], to[24];
	const char *params[2] = { from, to };

	if (im->pending.min_us >= im->partitions_from_us && im->pending.max_us <= im->partitions_to_us)
		return true;
	snprintf(from, sizeof(from), "%" PRId64, im->pending.min_us);
	snprintf(to, sizeof(to), "%" PRId64, im->pending.max_us);
	if (db_exec_params(
		    im->conn, &im->report, "create partitions",
		    "SELECT ensure_partitions(timestamptz 'epoch' + $1::bigint * interval '1 microsecond', "
		    "timestamptz 'epoch' + $2::bigint * interval '1 microsecond')",
		    2, params, NULL) != 0)
		return false;
	if (im->pending.min_us < im->partitions_from_us)
		im->partitions_from_us = im->pending.min_us;
	if (im->pending.max_us > im->partitions_to_us)
		im->partitions_to_us = im->pending.max_us;
	return true;
}

/* New rows per device from the insert's result into the batch's deltas and counters. */
static void count_written(struct importer *im, PGresult *res, size_t rows)
{
	int64_t inserted = 0;

	for (int i = 0; i < PQntuples(res); i++) {
		int64_t n = strtoll(PQgetvalue(res, i, 1), NULL, 10);
		import_check_device(im, (int32_t)atoi(PQgetvalue(res, i, 0)))->written += n;
		inserted += n;
	}
	im->pending.rows_written = inserted;
	im->pending.rows_duplicate = (int64_t)rows - inserted;
}

static void put_be(unsigned char **p, uint64_t v, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--)
		*(*p)++ = (unsigned char)(v >> (8 * i));
}

/* --method copy (default): binary COPY into a temporary table, then the insert from it. */
static bool insert_readings_copy(struct importer *im)
{
	static const unsigned char signature[11] = {
		'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xFF, '\r', '\n', 0
	};
	size_t cap = 19 + im->row_count * 46 + 2;
	unsigned char *buf = xmalloc(cap), *p = buf;
	char tenant[16];
	const char *params[1] = { tenant };
	PGresult *res;
	bool ok = false;

	if (!im->stage_created) {
		if (db_exec_params(
			    im->conn, &im->report, "create the staging table",
			    "CREATE TEMP TABLE IF NOT EXISTS import_stage (t bigint, d integer, p integer, v double "
			    "precision) ON COMMIT DELETE ROWS",
			    0, NULL, NULL) != 0)
			goto out;
		im->stage_created = true;
	}
	memcpy(p, signature, sizeof(signature));
	p += sizeof(signature);
	put_be(&p, 0, 4); /* flags */
	put_be(&p, 0, 4); /* header extension */
	for (const struct message *m = im->head; m; m = m->next)
		for (uint32_t r = 0; r < m->reading_count; r++) {
			uint64_t bits;
			memcpy(&bits, &m->readings[r].value, sizeof(bits));
			put_be(&p, 4, 2);
			put_be(&p, 8, 4);
			put_be(&p, (uint64_t)m->readings[r].time_us, 8);
			put_be(&p, 4, 4);
			put_be(&p, (uint32_t)m->device_id, 4);
			put_be(&p, 4, 4);
			put_be(&p, (uint32_t)m->readings[r].point_id, 4);
			put_be(&p, 8, 4);
			put_be(&p, bits, 8);
		}
	put_be(&p, 0xFFFF, 2); /* trailer */
	res = PQexec(im->conn, "COPY import_stage FROM STDIN (FORMAT binary)");
	if (PQresultStatus(res) != PGRES_COPY_IN) {
		fprintf(stderr, "mqtt2pg import: COPY into the staging table: %s", PQresultErrorMessage(res));
		PQclear(res);
		goto out;
	}
	PQclear(res);
	if (PQputCopyData(im->conn, (const char *)buf, (int)(p - buf)) != 1 ||
	    PQputCopyEnd(im->conn, NULL) != 1) {
		fprintf(stderr, "mqtt2pg import: COPY: %s", PQerrorMessage(im->conn));
		goto out;
	}
	res = PQgetResult(im->conn);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		fprintf(stderr, "mqtt2pg import: COPY: %s", PQresultErrorMessage(res));
		PQclear(res);
		while ((res = PQgetResult(im->conn)))
			PQclear(res);
		goto out;
	}
	PQclear(res);
	while ((res = PQgetResult(im->conn)))
		PQclear(res);
	snprintf(tenant, sizeof(tenant), "%d", (int)im->tenant_id);
	if (db_exec_params(im->conn, &im->report, "insert readings from the staging table", insert_staged_sql,
			   1, params, &res) != 0)
		goto out;
	count_written(im, res, im->row_count);
	PQclear(res);
	ok = true;
out:
	free(buf);
	return ok;
}

static bool insert_readings(struct importer *im)
{
	char tenant[16];
	const char *params[5];
	PGresult *res;

	batch_arrays_build(&im->arrays, im->head, im->message_count);
	snprintf(tenant, sizeof(tenant), "%d", (int)im->tenant_id);
	const int lengths[5] = { (int)im->arrays.times.len, (int)im->arrays.devices.len,
				 (int)im->arrays.points.len, (int)im->arrays.values.len, 0 };
	const int formats[5] = { 1, 1, 1, 1, 0 };
	params[0] = (const char *)im->arrays.times.bytes;
	params[1] = (const char *)im->arrays.devices.bytes;
	params[2] = (const char *)im->arrays.points.bytes;
	params[3] = (const char *)im->arrays.values.bytes;
	params[4] = tenant;
	if (db_check(im->conn, &im->report, "insert readings",
		     PQexecParams(im->conn, insert_readings_sql, 5, NULL, params, lengths, formats, 0),
		     &res) != 0)
		return false;
	count_written(im, res, im->arrays.rows);
	PQclear(res);
	return true;
}

/* Appends one element to an array literal: NULL, a quoted text (quotes and backslashes escaped), or bytea. */
/* Appends n bytes to t. */
static void text_put(struct text *t, const char *bytes, size_t n)
{
	if (t->len + n + 1 > t->cap) {
		t->cap = (t->len + n + 1) * 2;
		t->s = xrealloc(t->s, t->cap);
	}
	memcpy(t->s + t->len, bytes, n);
	t->len += n;
	t->s[t->len] = '\0';
}

/*
 * Appends one element to an array literal (after "{" or a previous element): NULL, a quoted text with its
 * quotes and backslashes escaped, or bytes as bytea's hex form ("\\x..." in the literal is \x... in the element).
 */
static void array_add(struct text *t, const char *value, const unsigned char *bytes, size_t len)
{
	static const char hex[] = "0123456789abcdef";

	if (t->len > 1)
		text_put(t, ",", 1);
	if (!value && !bytes) {
		text_put(t, "NULL", 4);
		return;
	}
	text_put(t, "\"", 1);
	if (bytes) {
		text_put(t, "\\\\x", 3);
		for (size_t i = 0; i < len; i++) {
			char pair[2] = { hex[bytes[i] >> 4], hex[bytes[i] & 15] };
			text_put(t, pair, 2);
		}
	} else {
		for (const char *c = value; *c; c++) {
			if (*c == '"' || *c == '\\')
				text_put(t, "\\", 1);
			text_put(t, c, 1);
		}
	}
	text_put(t, "\"", 1);
}

static bool insert_rejects(struct importer *im)
{
	struct text serial = { 0 }, reason = { 0 }, detail = { 0 }, payload = { 0 }, seq = { 0 };
	char origin[40], tenant[16];
	bool ok;

	if (im->reject_count == 0)
		return true;
	snprintf(origin, sizeof(origin), "import:%" PRId64, im->run_id);
	snprintf(tenant, sizeof(tenant), "%d", (int)im->tenant_id);
	text_add(&serial, "{");
	text_add(&reason, "{");
	text_add(&detail, "{");
	text_add(&payload, "{");
	text_add(&seq, "{");
	for (size_t i = 0; i < im->reject_count; i++) {
		const struct import_reject *r = &im->rejects[i];
		array_add(&serial, r->serial, NULL, 0);
		array_add(&reason, import_reason_name(r->reason), NULL, 0);
		array_add(&detail, r->detail, NULL, 0);
		array_add(&payload, "", r->payload, r->payload_len);
		text_add(&seq, "%s%" PRId64, i ? "," : "", r->line);
	}
	text_add(&serial, "}");
	text_add(&reason, "}");
	text_add(&detail, "}");
	text_add(&payload, "}");
	text_add(&seq, "}");
	const char *params[8] = { im->o->tenant_slug, tenant,	origin,	   serial.s,
				  reason.s,	      detail.s, payload.s, seq.s };
	ok = db_exec_params(im->conn, &im->report, "record rejected lines", insert_rejects_sql, 8, params,
			    NULL) == 0;
	free(serial.s);
	free(reason.s);
	free(detail.s);
	free(payload.s);
	free(seq.s);
	return ok;
}

static bool upsert_devices(struct importer *im)
{
	struct text ids = { 0 }, n = { 0 }, first = { 0 }, last = { 0 }, written = { 0 };
	char run[24], tenant[16];
	bool ok = true, any = false;

	text_add(&ids, "{");
	text_add(&n, "{");
	text_add(&first, "{");
	text_add(&last, "{");
	text_add(&written, "{");
	for (size_t i = 0; i < im->device_cap; i++) {
		const struct import_device *d = &im->devices[i];
		if (!d->device_id || d->readings == 0)
			continue;
		const char *sep = any ? "," : "";
		text_add(&ids, "%s%d", sep, (int)d->device_id);
		text_add(&n, "%s%" PRId64, sep, d->readings);
		text_add(&first, "%s%" PRId64, sep, d->first_us);
		text_add(&last, "%s%" PRId64, sep, d->last_us);
		text_add(&written, "%s%" PRId64, sep, d->written);
		any = true;
	}
	text_add(&ids, "}");
	text_add(&n, "}");
	text_add(&first, "}");
	text_add(&last, "}");
	text_add(&written, "}");
	if (any) {
		const char *params[7] = { run, tenant, ids.s, n.s, first.s, last.s, written.s };
		snprintf(run, sizeof(run), "%" PRId64, im->run_id);
		snprintf(tenant, sizeof(tenant), "%d", (int)im->tenant_id);
		ok = db_exec_params(im->conn, &im->report, "record per-device counts", upsert_devices_sql, 7,
				    params, NULL) == 0;
	}
	free(ids.s);
	free(n.s);
	free(first.s);
	free(last.s);
	free(written.s);
	return ok;
}

static bool update_run(struct importer *im, const struct import_counts *total, int64_t offset, bool finished)
{
	char v[13][24];
	struct text json = { 0 };
	const char *params[14];
	bool ok;

	rejected_json(total, &json);
	snprintf(v[0], 24, "%" PRId64, im->run_id);
	snprintf(v[1], 24, "%" PRId64, offset);
	snprintf(v[2], 24, "%" PRId64, import_lines_done(total));
	snprintf(v[3], 24, "%" PRId64, total->lines_skipped);
	snprintf(v[4], 24, "%" PRId64, total->lines_accepted);
	snprintf(v[5], 24, "%" PRId64, total->lines_rejected);
	snprintf(v[6], 24, "%" PRId64, total->readings);
	snprintf(v[7], 24, "%" PRId64, total->rows_written);
	snprintf(v[8], 24, "%" PRId64, total->rows_duplicate);
	snprintf(v[9], 24, "%" PRId64, total->points_dropped);
	snprintf(v[10], 24, "%" PRId64, total->min_us);
	snprintf(v[11], 24, "%" PRId64, total->max_us);
	for (int i = 0; i < 10; i++)
		params[i] = v[i];
	params[10] = json.s;
	params[11] = total->readings ? v[10] : NULL;
	params[12] = total->readings ? v[11] : NULL;
	params[13] = finished ? "true" : "false";
	ok = db_exec_params(im->conn, &im->report, "record progress", update_run_sql, 14, params, NULL) == 0;
	free(json.s);
	return ok;
}

/*
 * Commits the batch: readings, rejected lines, per-device counts and the run's progress (offset is where the
 * next line starts) in one transaction. On failure nothing of it is committed and the caller stops: the
 * run resumes from the previous batch.
 */
bool import_write_flush(struct importer *im, int64_t offset, bool finished)
{
	struct import_counts total = im->committed;

	if (im->o->validate_only) {
		import_counts_add(&im->committed, &im->pending);
		import_counts_init(&im->pending);
		return true;
	}
	if (im->row_count > 0 && !ensure_partitions(im))
		return false;
	if (db_begin_tenant(im->conn, &im->report, im->tenant_id, DB_TENANT_READ_WRITE) != 0)
		return false; /* no transaction is open */
	if (im->row_count > 0 && !(im->o->copy ? insert_readings_copy(im) : insert_readings(im)))
		goto fail;
	if (!insert_rejects(im) || !upsert_devices(im))
		goto fail;
	import_counts_add(&total, &im->pending);
	if (!update_run(im, &total, offset, finished))
		goto fail;
	if (db_exec_params(im->conn, &im->report, "COMMIT", "COMMIT", 0, NULL, NULL) != 0)
		goto fail;
	im->committed = total;
	im->finished = finished;
	import_counts_init(&im->pending);
	import_check_clear(im);
	im->now_us = clock_realtime_us();
	return true;
fail:
	rollback(im);
	return false;
}

/* --- the run record -------------------------------------------------------------------------------- */

static int64_t value_i64(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/*
 * Finds or creates the run of this file. Returns 1 to go on from *offset, 0 if there is nothing to do (the
 * run finished earlier: the report still runs), -1 on failure or refusal (printed).
 */
int import_write_open_run(struct importer *im, int64_t *offset)
{
	char tenant[16], size[24];
	const char *params[4] = { tenant, im->name, size, im->fingerprint };
	const char *format = im->o->format == IMPORT_FORMAT_CSV ? "csv" : "influx";
	PGresult *res = NULL;
	int rc = -1;

	snprintf(tenant, sizeof(tenant), "%d", (int)im->tenant_id);
	snprintf(size, sizeof(size), "%" PRId64, im->size);
	*offset = 0;
	if (db_begin_tenant(im->conn, &im->report, im->tenant_id, DB_TENANT_READ_WRITE) != 0)
		return -1; /* no transaction is open */
	if (db_exec_params(
		    im->conn, &im->report, "find the import run",
		    "SELECT id, byte_offset, lines_skipped, lines_accepted, lines_rejected, readings, rows_written, "
		    "rows_duplicate, points_dropped, (extract(epoch FROM min_time) * 1000000)::bigint, "
		    "(extract(epoch FROM max_time) * 1000000)::bigint, finished_at IS NOT NULL, format "
		    "FROM import_runs WHERE tenant_id = $1 AND file_name = $2 AND file_size = $3 AND fingerprint = $4",
		    4, params, &res) != 0)
		goto out;
	if (PQntuples(res) == 1) {
		struct import_counts *c = &im->committed;
		bool finished = strcmp(PQgetvalue(res, 0, 11), "t") == 0;
		if (!im->o->resume) {
			fprintf(stderr,
				"mqtt2pg import: %s was %s imported into tenant '%s' (run %s): pass --resume to %s\n",
				im->name, finished ? "already" : "partly", im->o->tenant_slug,
				PQgetvalue(res, 0, 0), finished ? "see its report" : "continue it");
			goto out;
		}
		if (strcmp(PQgetvalue(res, 0, 12), format) != 0) {
			fprintf(stderr, "mqtt2pg import: %s: the run was started with --format %s\n",
				im->name, PQgetvalue(res, 0, 12));
			goto out;
		}
		im->run_id = value_i64(res, 0, 0);
		*offset = value_i64(res, 0, 1);
		c->lines_skipped = value_i64(res, 0, 2);
		c->lines_accepted = value_i64(res, 0, 3);
		c->lines_rejected = value_i64(res, 0, 4);
		c->readings = value_i64(res, 0, 5);
		c->rows_written = value_i64(res, 0, 6);
		c->rows_duplicate = value_i64(res, 0, 7);
		c->points_dropped = value_i64(res, 0, 8);
		if (!PQgetisnull(res, 0, 9)) {
			c->min_us = value_i64(res, 0, 9);
			c->max_us = value_i64(res, 0, 10);
		}
		im->finished = finished;
		PQclear(res);
		const char *run_param[1] = { tenant };
		snprintf(tenant, sizeof(tenant), "%" PRId64, im->run_id);
		if (db_exec_params(
			    im->conn, &im->report, "read the run's rejection counts",
			    "SELECT key, value::bigint FROM import_runs, jsonb_each_text(rejected) WHERE id = $1",
			    1, run_param, &res) != 0)
			goto out;
		for (int i = 0; i < PQntuples(res); i++)
			for (int r = 0; r < IMPORT_REASON_COUNT; r++)
				if (strcmp(PQgetvalue(res, i, 0), import_reason_name(r)) == 0)
					c->rejected[r] = value_i64(res, i, 1);
		fprintf(stderr, "%s: resuming run %" PRId64 " after line %" PRId64 " (byte %" PRId64 ")%s\n",
			im->name, im->run_id, import_lines_done(c), *offset,
			finished ? ": already complete" : "");
	} else {
		const char *insert_params[5] = { tenant, im->name, size, im->fingerprint, format };
		PQclear(res);
		res = NULL;
		if (db_exec_params(
			    im->conn, &im->report, "create the import run",
			    "INSERT INTO import_runs (tenant_id, file_name, file_size, fingerprint, format) "
			    "VALUES ($1, $2, $3, $4, $5) RETURNING id",
			    5, insert_params, &res) != 0)
			goto out;
		im->run_id = value_i64(res, 0, 0);
	}
	PQclear(res);
	res = NULL;
	if (db_exec_params(im->conn, &im->report, "COMMIT", "COMMIT", 0, NULL, NULL) != 0)
		goto out;
	/* One process per run: a session lock, so a SIGKILLed importer's lock goes with its connection. */
	snprintf(size, sizeof(size), "%" PRId64, im->run_id);
	const char *lock_params[1] = { size };
	if (db_exec_params(im->conn, &im->report, "lock the import run",
			   "SELECT pg_try_advisory_lock(hashtext('mqtt2pg.import'), $1::integer)", 1,
			   lock_params, &res) != 0)
		goto out;
	if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
		fprintf(stderr, "mqtt2pg import: %s: run %" PRId64 " is being imported by another process\n",
			im->name, im->run_id);
		goto out;
	}
	rc = im->finished ? 0 : 1;
out:
	PQclear(res);
	if (rc < 0)
		rollback(im);
	return rc;
}

/* Source vs database per device. Returns 0 when every row this run wrote is in the database, -1 otherwise. */
int import_write_check_devices(struct importer *im, int64_t *devices_out)
{
	char run[24];
	const char *params[1] = { run };
	PGresult *res = NULL;
	int64_t exact = 0, in_file_dups = 0, extra = 0, missing = 0, source_total = 0;
	int rows, rc;

	snprintf(run, sizeof(run), "%" PRId64, im->run_id);
	if (db_begin_tenant(im->conn, &im->report, im->tenant_id, DB_TENANT_READ_WRITE) != 0)
		return -1;
	rc = db_exec_params(
		im->conn, &im->report, "check the database against the source",
		"SELECT d.serial, r.readings, r.rows_written, "
		" to_char(r.first_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
		" to_char(r.last_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
		" count_readings(r.device_id, r.first_time, r.last_time) " /* sql/015: the writer reads no measurements */
		"FROM import_run_devices r JOIN devices d ON d.id = r.device_id WHERE r.run_id = $1 ORDER BY d.serial",
		1, params, &res);
	rollback(im); /* read only: end the transaction either way */
	if (rc != 0)
		return -1;
	rows = PQntuples(res);
	printf("  %-24s %12s %12s %12s  %-27s %-27s  %s\n", "device", "source_rows", "written", "db_rows",
	       "first", "last", "check");
	for (int i = 0; i < rows; i++) {
		int64_t source = value_i64(res, i, 1), written = value_i64(res, i, 2),
			db = value_i64(res, i, 5);
		char verdict[96];
		source_total += source;
		if (db < written) {
			snprintf(verdict, sizeof(verdict), "MISSING %" PRId64 " row(s) this import wrote",
				 written - db);
			missing++;
		} else if (db == source) {
			snprintf(verdict, sizeof(verdict), "ok");
			exact++;
		} else if (db < source) {
			snprintf(verdict, sizeof(verdict), "ok: %" PRId64 " duplicate(s) within the file",
				 source - db);
			in_file_dups++;
		} else {
			snprintf(verdict, sizeof(verdict),
				 "ok: %" PRId64 " more row(s) in the range than the file", db - source);
			extra++;
		}
		if (rows <= 50 || strcmp(verdict, "ok") != 0)
			printf("  %-24s %12" PRId64 " %12" PRId64 " %12" PRId64 "  %-27s %-27s  %s\n",
			       PQgetvalue(res, i, 0), source, written, db, PQgetvalue(res, i, 3),
			       PQgetvalue(res, i, 4), verdict);
	}
	if (rows > 50)
		printf("  (%d devices; those not exactly matching are listed)\n", rows);
	printf("  check: %d device(s): %" PRId64 " exact, %" PRId64
	       " with duplicates within the file, %" PRId64 " with other rows in their range, %" PRId64
	       " MISSING rows\n",
	       rows, exact, in_file_dups, extra, missing);
	PQclear(res);
	*devices_out = rows;
	if (source_total != im->committed.readings) {
		printf("  check: per-device source rows add up to %" PRId64 ", not %" PRId64 "\n",
		       source_total, im->committed.readings);
		return -1;
	}
	return missing ? -1 : 0;
}
