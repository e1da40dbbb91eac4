// SPDX-License-Identifier: Apache-2.0
/*
 * import: history files into PostgreSQL (see import.h for the pipeline and the resume guarantee).
 *
 * Reading it top-down: import_command (arguments) -> import_file (one file: identity, run record, the line
 * loop) -> take_line (parse, validate, queue) -> flush (one transaction) -> report; then the aggregate
 * rebuild of the whole imported range. Every line ends in exactly one counter: skipped (comment, DDL, blank,
 * header), accepted, or rejected with a reason; rejected lines are recorded in rejected_messages with
 * origin "import:<run id>" and origin_seq = their line number, in the transaction of their batch.
 */
#include "cli/import.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aggregate.h"
#include "batch.h"
#include "util/clock.h"
#include "cli/csvread.h"
#include "db.h"
#include "payload/decode.h"
#include "util/linereader.h"
#include "payload/lineproto.h"
#include "util/log.h"
#include "message.h"
#include "registry.h"
#include "regsync.h"
#include "stats.h"
#include "util/text.h"
#include "payload/timeparse.h"
#include "validate.h"
#include "util/xalloc.h"
#include "readings_sql.h"

#define MODULE		   "import"
#define FINGERPRINT_BYTES  65536
#define REJECTS_PER_BATCH  1000
#define DEFAULT_BATCH_ROWS 20000
#define DETAIL_MAX	   256

/* Rejection reasons: the live path's, plus one for a line that is not a record of its format at all, and one
 * for a reading outside the range the run may write (--allow-range, default DEFAULT_HISTORY_DAYS back). */
#define IMPORT_MALFORMED_LINE REJECT_REASON_COUNT
#define IMPORT_OUT_OF_RANGE   (REJECT_REASON_COUNT + 1)
#define IMPORT_REASON_COUNT   (REJECT_REASON_COUNT + 2)
/* Without --allow-range an import writes the daily-partition zone (sql/009: daily_partition_days) up to the
 * furthest partitions may be made ahead: a stray 1990 timestamp is rejected, not a partition. */
#define DEFAULT_HISTORY_DAYS  366
#define DEFAULT_AHEAD_DAYS    31
#define DAY_US		      (86400LL * 1000000LL)

enum import_format {
	IMPORT_FORMAT_INFLUX,
	IMPORT_FORMAT_CSV,
};

struct import_options {
	enum import_format format;
	const char *tenant_slug;
	bool validate_only, resume, aggregates;
	enum csvread_time_unit time_unit;
	struct lp_mapping mapping; /* line protocol: serial tag, point template, precision, strings */
	int batch_rows;
	bool copy; /* --method copy (default; measured faster for CSV, equal or faster for line protocol): COPY into
		    * a temporary table, then INSERT ... SELECT; --method array: the writer's binary-array statement */
	struct config_validation policy; /* the config's, with max_age off: this is history */
	const char *allow_range;	 /* --allow-range as given, for messages; NULL: the default window */
	int64_t allow_from_us, allow_to_us; /* readings must lie in [from, to) */
	const char *conninfo, *password;
};

/* Every counter a run keeps; committed totals live in import_runs. */
struct counts {
	int64_t lines_skipped, lines_accepted, lines_rejected;
	int64_t readings, rows_written, rows_duplicate, points_dropped;
	int64_t rejected[IMPORT_REASON_COUNT];
	int64_t min_us, max_us; /* of the accepted readings; INT64_MAX/INT64_MIN while none */
};

struct device_delta {
	int32_t device_id; /* 0: empty slot */
	int64_t readings, written, first_us, last_us;
};

struct pending_reject {
	int64_t line;
	int reason;
	char *detail;		/* owned, escaped */
	char *serial;		/* owned, escaped, may be NULL */
	unsigned char *payload; /* owned raw bytes of the line, truncated */
	size_t payload_len;
};

struct importer {
	const struct import_options *o;
	PGconn *conn;
	struct stats *stats;
	struct registry_store *store;
	struct regsync *regsync;
	struct registry *reg; /* our reference to the current snapshot */
	int32_t tenant_id;

	/* the file */
	const char *path;
	char name[256];
	int64_t size;
	char fingerprint[17];
	int64_t run_id;
	bool finished;
	struct linereader *reader; /* the file being read */
	struct csvread_columns columns;

	/* the batch being built */
	struct counts committed, pending;
	struct message *head, *tail;
	size_t message_count, row_count;
	struct pending_reject *rejects;
	size_t reject_count, reject_cap;
	struct device_delta *devices; /* open addressing on device_id */
	size_t device_cap, device_used;
	struct batch_arrays arrays;
	struct decoded_message decoded;
	struct lp_scratch lp_scratch;
	bool stage_created;
	int64_t now_us;
	int64_t partitions_from_us, partitions_to_us; /* range already ensured */

	/* progress */
	bool tty;
	int64_t started_ms, last_progress_ms;
	int64_t start_raw, start_readings;
};

static volatile sig_atomic_t stop_signal;
static atomic_bool stop_aggregates; /* aggregate_recompute_dirty's stop flag (lock-free, so signal-safe) */

static void on_signal(int sig)
{
	stop_signal = sig;
	atomic_store(&stop_aggregates, true);
}

static const char *reason_name(int reason)
{
	if (reason == IMPORT_MALFORMED_LINE)
		return "malformed_line";
	if (reason == IMPORT_OUT_OF_RANGE)
		return "timestamp_out_of_range";
	return reject_reason_name((enum reject_reason)reason);
}

static void counts_init(struct counts *c)
{
	memset(c, 0, sizeof(*c));
	c->min_us = INT64_MAX;
	c->max_us = INT64_MIN;
}

/* a += b */
static void counts_add(struct counts *a, const struct counts *b)
{
	a->lines_skipped += b->lines_skipped;
	a->lines_accepted += b->lines_accepted;
	a->lines_rejected += b->lines_rejected;
	a->readings += b->readings;
	a->rows_written += b->rows_written;
	a->rows_duplicate += b->rows_duplicate;
	a->points_dropped += b->points_dropped;
	for (int i = 0; i < IMPORT_REASON_COUNT; i++)
		a->rejected[i] += b->rejected[i];
	if (b->min_us < a->min_us)
		a->min_us = b->min_us;
	if (b->max_us > a->max_us)
		a->max_us = b->max_us;
}

static int64_t lines_done(const struct counts *c)
{
	return c->lines_skipped + c->lines_accepted + c->lines_rejected;
}

/* --- statements ----------------------------------------------------------------------------------- */

/*
 * The writer's statement (writer.c: insert the rows; mark the buckets of the new ones and the next ones
 * dirty, in the same transaction), returning the new rows per device for the report.
 */
static const char *const insert_readings_sql =
	READINGS_WRITE(READINGS_FROM_ARRAYS, "$5::integer") "SELECT device_id, count(*) FROM ins GROUP BY device_id";

/* The same, from a temporary table filled by COPY (--method copy; COPY into measurements is refused under RLS). */
static const char *const insert_staged_sql =
	READINGS_WRITE(READINGS_FROM_TABLE("import_stage"), "$1::integer") "SELECT device_id, count(*) FROM ins GROUP BY device_id";

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

/* Runs a statement; on failure prints the error (with what) and returns NULL. */
static PGresult *exec(struct importer *im, const char *sql, int n, const char *const *params,
		      const int *lengths, const int *formats, const char *what)
{
	PGresult *res = PQexecParams(im->conn, sql, n, NULL, params, lengths, formats, 0);
	ExecStatusType st = PQresultStatus(res);
	char err[512];

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		fprintf(stderr, "mqtt2pg import: %s: %s: %s\n", im->name[0] ? im->name : "import", what,
			db_error_line(im->conn, res, err, sizeof(err)));
		PQclear(res);
		return NULL;
	}
	return res;
}

static bool exec_ok(struct importer *im, const char *sql, int n, const char *const *params, const char *what)
{
	PGresult *res = exec(im, sql, n, params, NULL, NULL, what);

	PQclear(res);
	return res != NULL;
}

static bool begin_tenant(struct importer *im)
{
	char tenant[16];
	const char *params[1] = { tenant };

	snprintf(tenant, sizeof(tenant), "%d", (int)im->tenant_id);
	if (!exec_ok(im, "BEGIN", 0, NULL, "BEGIN"))
		return false;
	return exec_ok(im, "SELECT set_config('app.tenant_id', $1, true)", 1, params, "set tenant context");
}

static void rollback(struct importer *im)
{
	PQclear(PQexec(im->conn, "ROLLBACK"));
}

/* --- the file ------------------------------------------------------------------------------------- */

/* FNV-1a 64 of the file's first bytes (as stored, compressed or not): tells files of equal name and size apart. */
static int file_identity(struct importer *im)
{
	unsigned char *buf = xmalloc(FINGERPRINT_BYTES);
	uint64_t hash = UINT64_C(14695981039346656037);
	struct stat st;
	const char *slash = strrchr(im->path, '/');
	FILE *f = fopen(im->path, "rb");
	size_t n;
	int rc = -1;

	if (!f || fstat(fileno(f), &st) != 0) {
		fprintf(stderr, "mqtt2pg import: cannot open %s: %s\n", im->path, strerror(errno));
		goto out;
	}
	n = fread(buf, 1, FINGERPRINT_BYTES, f);
	for (size_t i = 0; i < n; i++) {
		hash ^= buf[i];
		hash *= UINT64_C(1099511628211);
	}
	snprintf(im->fingerprint, sizeof(im->fingerprint), "%016" PRIx64, hash);
	snprintf(im->name, sizeof(im->name), "%s", slash ? slash + 1 : im->path);
	im->size = (int64_t)st.st_size;
	rc = 0;
out:
	if (f)
		fclose(f);
	free(buf);
	return rc;
}

/* --- the batch ------------------------------------------------------------------------------------ */

static struct device_delta *device_slot(struct importer *im, int32_t device_id)
{
	if ((im->device_used + 1) * 2 > im->device_cap) {
		struct device_delta *old = im->devices;
		size_t old_cap = im->device_cap;
		im->device_cap = old_cap ? old_cap * 2 : 1024;
		im->devices = xcalloc(im->device_cap, sizeof(*im->devices));
		im->device_used = 0;
		for (size_t i = 0; i < old_cap; i++)
			if (old[i].device_id) {
				struct device_delta *d = device_slot(im, old[i].device_id);
				*d = old[i];
			}
		free(old);
	}
	size_t mask = im->device_cap - 1, i = ((uint32_t)device_id * 2654435761u) & mask;
	while (im->devices[i].device_id && im->devices[i].device_id != device_id)
		i = (i + 1) & mask;
	if (!im->devices[i].device_id) {
		im->devices[i] = (struct device_delta){ .device_id = device_id,
							.first_us = INT64_MAX,
							.last_us = INT64_MIN };
		im->device_used++;
	}
	return &im->devices[i];
}

static void devices_clear(struct importer *im)
{
	if (im->devices)
		memset(im->devices, 0, im->device_cap * sizeof(*im->devices));
	im->device_used = 0;
}

static void reject_line(struct importer *im, int64_t line_no, int reason, const char *detail,
			const char *serial, size_t serial_len, const char *line, size_t len)
{
	struct pending_reject *r;
	char escaped[DETAIL_MAX * 4 + 1];
	size_t keep = (size_t)im->o->policy.reject_payload_bytes;

	im->pending.lines_rejected++;
	im->pending.rejected[reason]++;
	if (im->o->validate_only)
		return;
	if (im->reject_count == im->reject_cap) {
		im->reject_cap = im->reject_cap ? im->reject_cap * 2 : 64;
		im->rejects = xrealloc(im->rejects, im->reject_cap * sizeof(*im->rejects));
	}
	r = &im->rejects[im->reject_count++];
	r->line = line_no;
	r->reason = reason;
	r->detail = xstrdup(text_escape(escaped, sizeof(escaped), detail, strlen(detail)));
	r->serial = serial ? xstrdup(text_escape(escaped, sizeof(escaped), serial, serial_len)) : NULL;
	r->payload_len = len < keep ? len : keep;
	r->payload = xmalloc(r->payload_len + 1);
	memcpy(r->payload, line, r->payload_len);
}

static void rejects_clear(struct importer *im)
{
	for (size_t i = 0; i < im->reject_count; i++) {
		free(im->rejects[i].detail);
		free(im->rejects[i].serial);
		free(im->rejects[i].payload);
	}
	im->reject_count = 0;
}

static void messages_clear(struct importer *im)
{
	while (im->head) {
		struct message *next = im->head->next;
		message_free(im->head);
		im->head = next;
	}
	im->tail = NULL;
	im->message_count = im->row_count = 0;
}

static void accept_message(struct importer *im, struct message *m)
{
	struct device_delta *d = device_slot(im, m->device_id);

	for (uint32_t i = 0; i < m->reading_count; i++) {
		int64_t t = m->readings[i].time_us;
		if (t < d->first_us)
			d->first_us = t;
		if (t > d->last_us)
			d->last_us = t;
		if (t < im->pending.min_us)
			im->pending.min_us = t;
		if (t > im->pending.max_us)
			im->pending.max_us = t;
	}
	d->readings += m->reading_count;
	im->pending.readings += m->reading_count;
	im->pending.lines_accepted++;
	if (im->o->validate_only) {
		message_free(m);
		return;
	}
	m->next = NULL;
	if (im->tail)
		im->tail->next = m;
	else
		im->head = m;
	im->tail = m;
	im->message_count++;
	im->row_count += m->reading_count;
}

/* Policy "register": the points new to the snapshot are registered now, and the snapshot reloaded. */
static int register_points(struct importer *im, struct message *m, char *detail, size_t cap)
{
	for (uint32_t i = 0; i < m->new_point_count; i++) {
		char device[16], limit[16];
		const char *params[3] = { device, m->new_points[i], limit };
		PGresult *res;
		snprintf(device, sizeof(device), "%d", (int)m->device_id);
		snprintf(limit, sizeof(limit), "%d", im->o->policy.max_points_per_device);
		res = PQexecParams(im->conn, "SELECT register_point($1::integer, $2::text, $3::integer)", 3,
				   NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			bool over = strcmp(db_sqlstate(res), "MQ001") == 0;
			db_error_line(im->conn, res, detail, cap);
			PQclear(res);
			return over ? REJECT_POINT_LIMIT : REJECT_DATABASE;
		}
		int32_t id = (int32_t)atoi(PQgetvalue(res, 0, 0));
		PQclear(res);
		for (uint32_t r = 0; r < m->reading_count; r++)
			if (m->readings[r].point_id == -(int32_t)(i + 1))
				m->readings[r].point_id = id;
	}
	if (regsync_load_now(im->regsync) == 0) {
		registry_unref(im->reg);
		im->reg = registry_store_acquire(im->store);
	}
	return REJECT_NONE;
}

static struct sample *append_sample(struct decoded_message *d);

/* Fills im->decoded from one CSV line; returns 0, or a rejection reason with detail. */
static int parse_csv(struct importer *im, const char *line, size_t len, char *serial, size_t *serial_len,
		     char *detail, size_t cap)
{
	struct csvread_row row;
	enum csvread_status st = csvread_row(line, len, &im->columns, im->o->time_unit, &row, detail, cap);
	struct sample *s;

	switch (st) {
	case CSVREAD_OK:
		break;
	case CSVREAD_MALFORMED:
		return IMPORT_MALFORMED_LINE;
	case CSVREAD_BAD_TIME:
		return REJECT_BAD_TIMESTAMP;
	case CSVREAD_BAD_VALUE:
		return REJECT_WRONG_TYPE;
	case CSVREAD_NON_FINITE:
		return REJECT_NON_FINITE_VALUE;
	case CSVREAD_BAD_POINT_NAME:
		return REJECT_INVALID_POINT_NAME;
	case CSVREAD_BAD_SERIAL:
		return REJECT_UNKNOWN_DEVICE;
	}
	*serial_len = strlen(row.serial);
	memcpy(serial, row.serial, *serial_len + 1);
	decode_reset(&im->decoded);
	s = append_sample(&im->decoded);
	memcpy(s->point, row.point, sizeof(s->point));
	s->value = row.value;
	s->time_us = row.time_us;
	return 0;
}

static struct sample *append_sample(struct decoded_message *d)
{
	if (d->count == d->capacity) {
		d->capacity = d->capacity ? d->capacity * 2 : 16;
		d->samples = xrealloc(d->samples, d->capacity * sizeof(*d->samples));
	}
	return &d->samples[d->count++];
}

/* Fills im->decoded from one line of line protocol (lineproto.c parses, o->mapping maps); 0 or a reason. */
static int parse_influx(struct importer *im, const char *line, size_t len, char *serial, size_t *serial_len,
			char *detail, size_t cap)
{
	struct lp_line lp;
	struct lp_error err;
	struct lp_span span;
	size_t pos = 0, line_no = 0;
	int64_t time_us;
	int rc;

	if (memchr(line, '\0', len)) {
		snprintf(detail, cap, "NUL byte in the line");
		return IMPORT_MALFORMED_LINE;
	}
	rc = lp_next(line, len, &pos, &line_no, &im->lp_scratch, &lp, &err);
	if (rc <= 0) {
		snprintf(detail, cap, "%s (column %zu)", rc < 0 ? err.message : "no record",
			 rc < 0 ? err.column : 0);
		/* lineproto refuses 1e999 as syntax; the live path's name for it is non_finite_value */
		return rc < 0 && strstr(err.message, "beyond the range of a double") ?
			       REJECT_NON_FINITE_VALUE :
			       IMPORT_MALFORMED_LINE;
	}
	if (lp_map_serial(&lp, &im->o->mapping, &span, &err) < 0 || span.len == 0) {
		snprintf(detail, cap, "no '%s' tag to name the device", im->o->mapping.serial_tag);
		return REJECT_UNKNOWN_DEVICE;
	}
	if (span.len > CSVREAD_MAX_SERIAL) {
		snprintf(detail, cap, "serial longer than %d bytes", CSVREAD_MAX_SERIAL);
		return REJECT_UNKNOWN_DEVICE;
	}
	memcpy(serial, span.ptr, span.len);
	serial[span.len] = '\0';
	*serial_len = span.len;
	if (!lp.has_time) {
		snprintf(detail, cap, "no timestamp (a history line must carry its time)");
		return REJECT_BAD_TIMESTAMP;
	}
	if (lp_map_time(&lp, &im->o->mapping, 0, &time_us, &err) < 0) {
		snprintf(detail, cap, "%s", err.message);
		return REJECT_BAD_TIMESTAMP;
	}
	decode_reset(&im->decoded);
	for (size_t i = 0; i < lp.field_count; i++) {
		char point[LP_MAX_POINT_NAME + 1];
		double value;
		rc = lp_map_field(&lp, i, &im->o->mapping, point, &value, &err);
		if (rc < 0) {
			snprintf(detail, cap, "%s", err.message);
			return err.kind == LP_ERR_STRING ? REJECT_WRONG_TYPE : REJECT_INVALID_POINT_NAME;
		}
		if (rc == 0)
			continue; /* a string field under --strings ignore */
		if (!isfinite(value)) {
			snprintf(detail, cap, "field %zu is not finite", i + 1);
			return REJECT_NON_FINITE_VALUE;
		}
		struct sample *s = append_sample(&im->decoded);
		memcpy(s->point, point, sizeof(s->point));
		s->value = value;
		s->time_us = time_us;
	}
	if (im->decoded.count == 0) {
		snprintf(detail, cap, "no numeric field");
		return REJECT_NO_MEASUREMENTS;
	}
	return 0;
}

/* Lines that carry no reading: blank, and for line protocol the export's comments and DDL. */
static bool is_skipped(const struct importer *im, const char *line, size_t len)
{
	size_t i = 0;

	while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
		i++;
	if (i == len)
		return true;
	if (im->o->format == IMPORT_FORMAT_INFLUX)
		return line[i] == '#' || (len - i >= 7 && memcmp(line + i, "CREATE ", 7) == 0);
	return false;
}

/*
 * Whether every reading of m lies in the run's allowed range. Each reading outside it would need a partition
 * (sql/009 bounds what one call may create); far-off history is asked for explicitly with --allow-range.
 */
static bool in_allowed_range(const struct importer *im, const struct message *m, char *detail, size_t cap)
{
	for (uint32_t i = 0; i < m->reading_count; i++) {
		int64_t t = m->readings[i].time_us;
		if (t < im->o->allow_from_us || t >= im->o->allow_to_us) {
			char when[40];
			timeparse_format(t, when, sizeof(when));
			snprintf(detail, cap, "reading at %s is outside %s%s", when,
				 im->o->allow_range ? "--allow-range " :
						      "the last 366 days (--allow-range FROM..TO for older)",
				 im->o->allow_range ? im->o->allow_range : "");
			return false;
		}
	}
	return true;
}

/* One line: skipped, accepted into the batch, or rejected with its reason. */
static void take_line(struct importer *im, int64_t line_no, const char *line, size_t len, bool too_long)
{
	char detail[DETAIL_MAX], serial[CSVREAD_MAX_SERIAL + 1] = "";
	size_t serial_len = 0;
	struct route_match match;
	struct validate_result result;
	struct decode_error err;
	int reason;

	if (too_long) {
		snprintf(detail, sizeof(detail), "line longer than %d bytes", LINEREADER_MAX_LINE);
		reject_line(im, line_no, IMPORT_MALFORMED_LINE, detail, NULL, 0, line, len);
		return;
	}
	if (is_skipped(im, line, len)) {
		im->pending.lines_skipped++;
		return;
	}
	reason = im->o->format == IMPORT_FORMAT_CSV ?
			 parse_csv(im, line, len, serial, &serial_len, detail, sizeof(detail)) :
			 parse_influx(im, line, len, serial, &serial_len, detail, sizeof(detail));
	if (reason != 0) {
		reject_line(im, line_no, reason, detail, serial_len ? serial : NULL, serial_len, line, len);
		return;
	}
	match.tenant = (struct topic_slice){ im->o->tenant_slug, strlen(im->o->tenant_slug) };
	match.serial = (struct topic_slice){ serial, serial_len };
	if (validate_message(im->reg, &im->o->policy, &match, &im->decoded, im->now_us, im->now_us, &result,
			     &err) < 0) {
		reject_line(im, line_no, err.reason, err.detail, serial, serial_len, line, len);
		return;
	}
	if (result.message && !in_allowed_range(im, result.message, detail, sizeof(detail))) {
		message_free(result.message);
		reject_line(im, line_no, IMPORT_OUT_OF_RANGE, detail, serial, serial_len, line, len);
		return;
	}
	im->pending.points_dropped += result.dropped_points;
	if (!result.message) {
		/* every reading was an unknown point dropped by policy: the line is accounted for as accepted */
		im->pending.lines_accepted++;
		return;
	}
	if (result.new_points > 0 && !im->o->validate_only) {
		reason = register_points(im, result.message, detail, sizeof(detail));
		if (reason != REJECT_NONE) {
			message_free(result.message);
			reject_line(im, line_no, reason, detail, serial, serial_len, line, len);
			return;
		}
	}
	accept_message(im, result.message);
}

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

static void rejected_json(const struct counts *c, struct text *t)
{
	bool first = true;

	text_add(t, "{");
	for (int i = 0; i < IMPORT_REASON_COUNT; i++)
		if (c->rejected[i]) {
			text_add(t, "%s\"%s\": %" PRId64, first ? "" : ", ", reason_name(i), c->rejected[i]);
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
	if (!exec_ok(im,
		     "SELECT ensure_partitions(timestamptz 'epoch' + $1::bigint * interval '1 microsecond', "
		     "timestamptz 'epoch' + $2::bigint * interval '1 microsecond')",
		     2, params, "create partitions"))
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
		device_slot(im, (int32_t)atoi(PQgetvalue(res, i, 0)))->written += n;
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
		if (!exec_ok(
			    im,
			    "CREATE TEMP TABLE IF NOT EXISTS import_stage (t bigint, d integer, p integer, v double precision) "
			    "ON COMMIT DELETE ROWS",
			    0, NULL, "create the staging table"))
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
	res = exec(im, insert_staged_sql, 1, params, NULL, NULL, "insert readings from the staging table");
	if (!res)
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
	res = exec(im, insert_readings_sql, 5, params, lengths, formats, "insert readings");
	if (!res)
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
		const struct pending_reject *r = &im->rejects[i];
		array_add(&serial, r->serial, NULL, 0);
		array_add(&reason, reason_name(r->reason), NULL, 0);
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
	ok = exec_ok(im, insert_rejects_sql, 8, params, "record rejected lines");
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
		const struct device_delta *d = &im->devices[i];
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
		ok = exec_ok(im, upsert_devices_sql, 7, params, "record per-device counts");
	}
	free(ids.s);
	free(n.s);
	free(first.s);
	free(last.s);
	free(written.s);
	return ok;
}

static bool update_run(struct importer *im, const struct counts *total, int64_t offset, bool finished)
{
	char v[13][24];
	struct text json = { 0 };
	const char *params[14];
	bool ok;

	rejected_json(total, &json);
	snprintf(v[0], 24, "%" PRId64, im->run_id);
	snprintf(v[1], 24, "%" PRId64, offset);
	snprintf(v[2], 24, "%" PRId64, lines_done(total));
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
	ok = exec_ok(im, update_run_sql, 14, params, "record progress");
	free(json.s);
	return ok;
}

/*
 * Commits the batch: readings, rejected lines, per-device counts and the run's progress (offset is where the
 * next line starts) in one transaction. On failure nothing of it is committed and the caller stops: the
 * run resumes from the previous batch.
 */
static bool flush(struct importer *im, int64_t offset, bool finished)
{
	struct counts total = im->committed;

	if (im->o->validate_only) {
		counts_add(&im->committed, &im->pending);
		counts_init(&im->pending);
		return true;
	}
	if (im->row_count > 0 && !ensure_partitions(im))
		return false;
	if (!begin_tenant(im))
		goto fail;
	if (im->row_count > 0 && !(im->o->copy ? insert_readings_copy(im) : insert_readings(im)))
		goto fail;
	if (!insert_rejects(im) || !upsert_devices(im))
		goto fail;
	counts_add(&total, &im->pending);
	if (!update_run(im, &total, offset, finished))
		goto fail;
	if (!exec_ok(im, "COMMIT", 0, NULL, "COMMIT"))
		goto fail;
	im->committed = total;
	im->finished = finished;
	counts_init(&im->pending);
	messages_clear(im);
	rejects_clear(im);
	devices_clear(im);
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
static int open_run(struct importer *im, int64_t *offset)
{
	char tenant[16], size[24];
	const char *params[4] = { tenant, im->name, size, im->fingerprint };
	const char *format = im->o->format == IMPORT_FORMAT_CSV ? "csv" : "influx";
	PGresult *res = NULL;
	int rc = -1;

	snprintf(tenant, sizeof(tenant), "%d", (int)im->tenant_id);
	snprintf(size, sizeof(size), "%" PRId64, im->size);
	*offset = 0;
	if (!begin_tenant(im))
		goto out;
	res = exec(
		im,
		"SELECT id, byte_offset, lines_skipped, lines_accepted, lines_rejected, readings, rows_written, "
		"rows_duplicate, points_dropped, (extract(epoch FROM min_time) * 1000000)::bigint, "
		"(extract(epoch FROM max_time) * 1000000)::bigint, finished_at IS NOT NULL, format "
		"FROM import_runs WHERE tenant_id = $1 AND file_name = $2 AND file_size = $3 AND fingerprint = $4",
		4, params, NULL, NULL, "find the import run");
	if (!res)
		goto out;
	if (PQntuples(res) == 1) {
		struct counts *c = &im->committed;
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
		res = exec(
			im,
			"SELECT key, value::bigint FROM import_runs, jsonb_each_text(rejected) WHERE id = $1",
			1, run_param, NULL, NULL, "read the run's rejection counts");
		if (!res)
			goto out;
		for (int i = 0; i < PQntuples(res); i++)
			for (int r = 0; r < IMPORT_REASON_COUNT; r++)
				if (strcmp(PQgetvalue(res, i, 0), reason_name(r)) == 0)
					c->rejected[r] = value_i64(res, i, 1);
		fprintf(stderr, "%s: resuming run %" PRId64 " after line %" PRId64 " (byte %" PRId64 ")%s\n",
			im->name, im->run_id, lines_done(c), *offset, finished ? ": already complete" : "");
	} else {
		const char *insert_params[5] = { tenant, im->name, size, im->fingerprint, format };
		PQclear(res);
		res = exec(im,
			   "INSERT INTO import_runs (tenant_id, file_name, file_size, fingerprint, format) "
			   "VALUES ($1, $2, $3, $4, $5) RETURNING id",
			   5, insert_params, NULL, NULL, "create the import run");
		if (!res)
			goto out;
		im->run_id = value_i64(res, 0, 0);
	}
	PQclear(res);
	res = NULL;
	if (!exec_ok(im, "COMMIT", 0, NULL, "COMMIT"))
		goto out;
	/* One process per run: a session lock, so a SIGKILLed importer's lock goes with its connection. */
	snprintf(size, sizeof(size), "%" PRId64, im->run_id);
	const char *lock_params[1] = { size };
	res = exec(im, "SELECT pg_try_advisory_lock(hashtext('mqtt2pg.import'), $1::integer)", 1, lock_params,
		   NULL, NULL, "lock the import run");
	if (!res)
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

/* --- progress and report --------------------------------------------------------------------------- */

static void show_progress(struct importer *im, bool last)
{
	int64_t now = clock_monotonic_ms();
	int64_t lines = lines_done(&im->committed) + lines_done(&im->pending);
	int64_t readings = im->committed.readings + im->pending.readings;
	double seconds = (double)(now - im->started_ms) / 1000.0;
	double rate = seconds > 0 ? (double)(readings - im->start_readings) / seconds : 0;
	int64_t raw = linereader_raw_position(im->reader);
	double fraction = im->size > 0 ? (double)raw / (double)im->size : 1.0;
	int64_t read_now = raw - im->start_raw; /* bytes read by this process (a resumed run started later) */
	double eta =
		read_now > 0 && raw < im->size ? seconds * (double)(im->size - raw) / (double)read_now : 0;

	if (!last && now - im->last_progress_ms < (im->tty ? 250 : 10000))
		return;
	im->last_progress_ms = now;
	if (fraction > 1)
		fraction = 1;
	if (im->tty) {
		fprintf(stderr,
			"\r%s: %5.1f%%  %" PRId64 " lines  %" PRId64 " rows  %.0f rows/s  ETA %d:%02d   %s",
			im->name, fraction * 100, lines, readings, rate, (int)eta / 60, (int)eta % 60,
			last ? "\n" : "");
		fflush(stderr);
	} else {
		log_info(MODULE,
			 "%s: %.1f%% read, %" PRId64 " lines, %" PRId64 " rows, %.0f rows/s, ETA %d s",
			 im->name, fraction * 100, lines, readings, rate, (int)eta);
	}
}

/* Source vs database per device. Returns 0 when every row this run wrote is in the database, -1 otherwise. */
static int check_devices(struct importer *im, int64_t *devices_out)
{
	char run[24];
	const char *params[1] = { run };
	PGresult *res;
	int64_t exact = 0, in_file_dups = 0, extra = 0, missing = 0, source_total = 0;
	int rows;

	snprintf(run, sizeof(run), "%" PRId64, im->run_id);
	if (!begin_tenant(im))
		return -1;
	res = exec(
		im,
		"SELECT d.serial, r.readings, r.rows_written, "
		" to_char(r.first_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
		" to_char(r.last_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
		" count_readings(r.device_id, r.first_time, r.last_time) " /* sql/015: the writer reads no measurements */
		"FROM import_run_devices r JOIN devices d ON d.id = r.device_id WHERE r.run_id = $1 ORDER BY d.serial",
		1, params, NULL, NULL, "check the database against the source");
	rollback(im); /* read only: end the transaction either way */
	if (!res)
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

static void print_time(const char *label, int64_t us)
{
	char when[40];

	timeparse_format(us, when, sizeof(when));
	printf("%s%s", label, when);
}

/* The validation report of one file. Returns 0 if its checks pass. */
static int report(struct importer *im)
{
	const struct counts *c = &im->committed;
	int64_t devices = (int64_t)im->device_used;
	int rc = 0;

	printf("import report: %s (tenant %s%s)\n", im->path, im->o->tenant_slug,
	       im->o->validate_only ? ", validate only: nothing written" : "");
	printf("  lines: %" PRId64 " = %" PRId64 " skipped (comments, DDL, header, blank) + %" PRId64
	       " accepted + %" PRId64 " rejected\n",
	       lines_done(c), c->lines_skipped, c->lines_accepted, c->lines_rejected);
	printf("  readings of accepted lines: %" PRId64 " = %" PRId64 " written + %" PRId64
	       " duplicate(s) skipped; %" PRId64 " reading(s) of unknown points dropped by policy\n",
	       c->readings, c->rows_written, c->rows_duplicate, c->points_dropped);
	printf("  rejected by reason:");
	for (int i = 0; i < IMPORT_REASON_COUNT; i++)
		if (c->rejected[i])
			printf(" %s=%" PRId64, reason_name(i), c->rejected[i]);
	printf(c->lines_rejected ? "\n" : " none\n");
	if (c->readings > 0) {
		print_time("  time range: ", c->min_us);
		print_time(" .. ", c->max_us);
		printf("\n");
	}
	if (!im->o->validate_only) {
		printf("  rejected lines are in rejected_messages with origin 'import:%" PRId64
		       "' and origin_seq = line number\n",
		       im->run_id);
		rc = check_devices(im, &devices);
	}
	printf("import result: file=%s lines=%" PRId64 " skipped=%" PRId64 " accepted=%" PRId64
	       " rejected=%" PRId64 " readings=%" PRId64 " written=%" PRId64 " duplicate=%" PRId64
	       " dropped=%" PRId64 " devices=%" PRId64 " check=%s\n",
	       im->name, lines_done(c), c->lines_skipped, c->lines_accepted, c->lines_rejected, c->readings,
	       c->rows_written, c->rows_duplicate, c->points_dropped, devices, rc == 0 ? "ok" : "FAILED");
	fflush(stdout);
	return rc;
}

/* --- one file ------------------------------------------------------------------------------------- */

static struct linereader *open_reader(const char *path)
{
	struct linereader *r = linereader_open(path);

	if (!r)
		fprintf(stderr, "mqtt2pg import: cannot open %s: %s\n", path, strerror(errno));
	return r;
}

/* Reads the CSV header (line 1). Returns its length + 1 (the offset of line 2), or -1 (printed). */
static int64_t read_header(struct importer *im)
{
	const char *line;
	size_t len;
	int64_t at;
	bool too_long;
	char err[256];

	if (linereader_next(im->reader, &line, &len, &at, &too_long) != 1 || too_long) {
		fprintf(stderr, "mqtt2pg import: %s: no CSV header line\n", im->path);
		return -1;
	}
	if (!csvread_header(line, len, &im->columns, err, sizeof(err))) {
		fprintf(stderr, "mqtt2pg import: %s: line 1: %s\n", im->path, err);
		return -1;
	}
	return linereader_offset(im->reader);
}

static void file_reset(struct importer *im)
{
	if (im->conn && im->run_id)
		PQclear(PQexec(im->conn, "SELECT pg_advisory_unlock_all()"));
	messages_clear(im);
	rejects_clear(im);
	devices_clear(im);
	linereader_close(im->reader);
	im->reader = NULL;
	counts_init(&im->committed);
	counts_init(&im->pending);
	im->run_id = 0;
	im->finished = false;
}

/* Imports one file. Returns 0, 1 (failure or check failed), or 128 + signal when interrupted. */
static int import_file(struct importer *im, const char *path, struct counts *all)
{
	int64_t offset = 0, line_no, header_end = 0;
	const char *line;
	size_t len;
	bool too_long;
	int rc = 0, got = 0;

	file_reset(im);
	im->path = path;
	if (file_identity(im) < 0 || (im->reader = open_reader(path)) == NULL)
		return 1;
	if (im->o->format == IMPORT_FORMAT_CSV && (header_end = read_header(im)) < 0)
		return 1;
	if (!im->o->validate_only) {
		int opened = open_run(im, &offset);
		if (opened < 0)
			return 1;
	}
	line_no = lines_done(&im->committed);
	if (im->o->format == IMPORT_FORMAT_CSV && offset == 0 && !im->finished) {
		im->pending.lines_skipped++; /* the header */
		line_no = 1;
		offset = header_end;
	} else if (!im->finished && linereader_seek(im->reader, offset) < 0) {
		fprintf(stderr, "mqtt2pg import: %s: cannot seek to byte %" PRId64 " to resume\n", path,
			offset);
		return 1;
	}
	im->started_ms = im->last_progress_ms = clock_monotonic_ms();
	im->start_readings = im->committed.readings;
	im->start_raw = linereader_raw_position(im->reader);
	im->now_us = clock_realtime_us();
	while (!im->finished && (got = linereader_next(im->reader, &line, &len, &offset, &too_long)) == 1) {
		line_no++;
		take_line(im, line_no, line, len, too_long);
		if (im->row_count >= (size_t)im->o->batch_rows || im->reject_count >= REJECTS_PER_BATCH ||
		    lines_done(&im->pending) >= (int64_t)im->o->batch_rows * 4) {
			if (!flush(im, linereader_offset(im->reader), false)) {
				rc = 1;
				break;
			}
		}
		if (stop_signal) {
			if (!flush(im, linereader_offset(im->reader), false))
				rc = 1;
			else
				rc = 128 + stop_signal;
			break;
		}
		show_progress(im, false);
	}
	if (!im->finished && rc == 0) {
		if (got < 0) {
			/* keep what was read before the damage; a resume stops at the same place */
			(void)flush(im, linereader_offset(im->reader), false);
			fprintf(stderr,
				"mqtt2pg import: %s: read error after line %" PRId64
				" (a truncated or corrupt gzip "
				"stream?)\n",
				path, line_no);
			rc = 1;
		} else if (!flush(im, linereader_offset(im->reader), true)) {
			rc = 1;
		}
	}
	show_progress(im, true);
	if (rc == 1) {
		fprintf(stderr,
			"mqtt2pg import: %s: stopped; what was committed stays, rerun with --resume\n", path);
		return 1;
	}
	if (rc > 128) {
		fprintf(stderr,
			"mqtt2pg import: %s: interrupted after line %" PRId64
			" (committed); rerun with --resume\n",
			path, lines_done(&im->committed));
		return rc;
	}
	rc = report(im) == 0 ? 0 : 1;
	counts_add(all, &im->committed);
	return rc;
}

/* Marks and recomputes the 5-minute buckets of everything imported, as `aggregate rebuild` does. */
static int rebuild_aggregates(struct importer *im, const struct counts *all)
{
	int64_t started = clock_monotonic_ms(), marked, done;

	if (all->readings == 0)
		return 0;
	marked = aggregate_mark_range(im->conn, im->tenant_id, all->min_us, all->max_us + 1);
	if (marked < 0)
		return 1;
	done = aggregate_recompute_dirty(im->conn, im->tenant_id, 500, NULL, NULL, &stop_aggregates);
	if (done < 0)
		return 1;
	if (stop_signal) {
		printf("aggregates: interrupted after %" PRId64 " of %" PRId64
		       " bucket(s); the rest stay marked dirty "
		       "for the bridge's aggregate job (or run `mqtt2pg aggregate rebuild`)\n",
		       done, marked);
		return 128 + stop_signal;
	}
	printf("aggregates: %" PRId64 " bucket(s) marked, %" PRId64 " recomputed in %.1f s\n", marked, done,
	       (double)(clock_monotonic_ms() - started) / 1000.0);
	return 0;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: mqtt2pg import --format influx|csv --tenant SLUG [--resume] [--validate-only] [--no-aggregates]\n"
		"                      [--time-unit s|ms|us|ns] [--batch-rows N] [--method copy|array]\n"
		"                      [--allow-range FROM..TO (RFC 3339; default: the last 366 days)] FILE...\n"
		"  line protocol: [--serial-tag TAG (serial)] [--point TEMPLATE ({field})] [--precision ns|us|ms|s (ns)]\n"
		"                 [--strings reject|ignore (reject)]\n");
	return 2;
}

/* --allow-range FROM..TO (RFC 3339 times with a zone, FROM before TO): readings in [FROM, TO). */
static int parse_allow_range(const char *arg, struct import_options *o)
{
	const char *dots = strstr(arg, "..");

	if (!dots || !timeparse_rfc3339(arg, (size_t)(dots - arg), &o->allow_from_us) ||
	    !timeparse_rfc3339(dots + 2, strlen(dots + 2), &o->allow_to_us) ||
	    o->allow_from_us >= o->allow_to_us) {
		fprintf(stderr,
			"mqtt2pg import: --allow-range is FROM..TO, RFC 3339 times with a zone, FROM before TO\n");
		return -1;
	}
	o->allow_range = arg;
	return 0;
}

static int parse_args(int argc, char **argv, struct import_options *o, char ***files, int *file_count)
{
	const char *format = NULL, *unit = "s";

	*files = xcalloc((size_t)argc + 1, sizeof(char *));
	lp_mapping_init(&o->mapping);
	snprintf(o->mapping.serial_tag, sizeof(o->mapping.serial_tag), "serial");
	*file_count = 0;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		bool has_value = i + 1 < argc;
		if (strcmp(a, "--format") == 0 && has_value)
			format = argv[++i];
		else if (strcmp(a, "--tenant") == 0 && has_value)
			o->tenant_slug = argv[++i];
		else if (strcmp(a, "--time-unit") == 0 && has_value)
			unit = argv[++i];
		else if (strcmp(a, "--batch-rows") == 0 && has_value)
			o->batch_rows = atoi(argv[++i]);
		else if ((strcmp(a, "--serial-tag") == 0 || strcmp(a, "--point") == 0 ||
			  strcmp(a, "--precision") == 0 || strcmp(a, "--strings") == 0) &&
			 has_value) {
			char err[160];
			const char *key = strcmp(a, "--serial-tag") == 0 ? "serial_tag" : a + 2;
			if (lp_mapping_set(&o->mapping, key, argv[++i], err, sizeof(err)) != 0) {
				fprintf(stderr, "mqtt2pg import: %s: %s\n", a, err);
				return -1;
			}
		} else if (strcmp(a, "--method") == 0 && has_value) {
			const char *m = argv[++i];
			if (strcmp(m, "copy") != 0 && strcmp(m, "array") != 0) {
				fprintf(stderr, "mqtt2pg import: --method is array or copy\n");
				return -1;
			}
			o->copy = strcmp(m, "copy") == 0;
		} else if (strcmp(a, "--allow-range") == 0 && has_value) {
			if (parse_allow_range(argv[++i], o) < 0)
				return -1;
		} else if (strcmp(a, "--resume") == 0)
			o->resume = true;
		else if (strcmp(a, "--validate-only") == 0)
			o->validate_only = true;
		else if (strcmp(a, "--no-aggregates") == 0)
			o->aggregates = false;
		else if (a[0] == '-' && a[1] != '\0') {
			fprintf(stderr, "mqtt2pg import: unknown option %s\n", a);
			return -1;
		} else
			(*files)[(*file_count)++] = argv[i];
	}
	if (!format || !o->tenant_slug || *file_count == 0)
		return -1;
	if (strcmp(format, "csv") == 0)
		o->format = IMPORT_FORMAT_CSV;
	else if (strcmp(format, "influx") == 0)
		o->format = IMPORT_FORMAT_INFLUX;
	else {
		fprintf(stderr, "mqtt2pg import: --format is influx or csv\n");
		return -1;
	}
	if (!csvread_time_unit_parse(unit, &o->time_unit)) {
		fprintf(stderr, "mqtt2pg import: --time-unit is s, ms, us or ns\n");
		return -1;
	}
	if (o->batch_rows < 1 || o->batch_rows > 1000000) {
		fprintf(stderr, "mqtt2pg import: --batch-rows is 1 to 1000000\n");
		return -1;
	}
	return 0;
}

int import_command(const struct config *cfg, int argc, char **argv)
{
	struct import_options o = { .aggregates = true, .batch_rows = DEFAULT_BATCH_ROWS, .copy = true };
	struct importer im = { .o = &o };
	struct counts all;
	struct sigaction sa;
	char **files = NULL;
	int file_count = 0, rc = 0;
	const struct registry_tenant *tenant;

	if (parse_args(argc, argv, &o, &files, &file_count) < 0) {
		free(files);
		return usage();
	}
	if (!o.allow_range) {
		int64_t now_us = (int64_t)time(NULL) * 1000000LL;
		o.allow_from_us = now_us - DEFAULT_HISTORY_DAYS * DAY_US;
		o.allow_to_us = now_us + DEFAULT_AHEAD_DAYS * DAY_US;
	}
	o.policy = cfg->validation;
	o.policy.max_age = INT32_MAX; /* history: no staleness limit (timestamps back to 1958 pass) */
	o.conninfo = cfg->database.conninfo;
	o.password = cfg->database.password;
	counts_init(&all);
	counts_init(&im.committed);
	counts_init(&im.pending);
	im.tty = isatty(STDERR_FILENO);
	im.partitions_from_us = INT64_MAX;
	im.partitions_to_us = INT64_MIN;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART; /* a signal must not turn a read into an error */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	im.stats = xcalloc(1, sizeof(*im.stats));
	im.store = registry_store_new();
	im.regsync = regsync_new(o.conninfo, o.password, im.store, im.stats, 0);
	if (regsync_load_now(im.regsync) < 0) {
		fprintf(stderr, "mqtt2pg import: cannot load the registry (database.conninfo)\n");
		rc = 1;
		goto out;
	}
	im.reg = registry_store_acquire(im.store);
	tenant = registry_find_tenant(im.reg, o.tenant_slug, strlen(o.tenant_slug));
	if (!tenant) {
		fprintf(stderr, "mqtt2pg import: no tenant '%s'\n", o.tenant_slug);
		rc = 1;
		goto out;
	}
	im.tenant_id = tenant->id;
	im.conn = db_connect(MODULE, o.conninfo, o.password, "mqtt2pg-import");
	if (!im.conn) {
		rc = 1;
		goto out;
	}
	for (int i = 0; i < file_count && rc < 128; i++) {
		int file_rc = import_file(&im, files[i], &all);
		if (file_rc > rc)
			rc = file_rc;
	}
	if (rc == 0 && !o.validate_only && o.aggregates)
		rc = rebuild_aggregates(&im, &all);
	else if (!o.validate_only && !o.aggregates && all.readings > 0)
		printf("aggregates: not rebuilt (--no-aggregates); the imported buckets are marked dirty for the bridge's "
		       "aggregate job\n");
out:
	file_reset(&im);
	batch_arrays_free(&im.arrays);
	decode_clear(&im.decoded);
	lp_scratch_free(&im.lp_scratch);
	free(im.rejects);
	free(im.devices);
	registry_unref(im.reg);
	regsync_free(im.regsync);
	registry_store_free(im.store);
	free(im.stats);
	if (im.conn)
		PQfinish(im.conn);
	free(files);
	return rc;
}
