/* SPDX-License-Identifier: Apache-2.0 */
/*
 * import_state: the state one `mqtt2pg import` run shares between its stages (import.h has the pipeline):
 *
 *   import_source (a line of a file -> samples) -> import_check (samples -> a validated message, or a rejected
 *   line, into the batch) -> import_write (the batch -> one transaction through write_readings, sql/015)
 *
 * DESIGN: the stages are one pipeline run by one thread (import.c's line loop), so they share one struct
 * importer rather than hand items over: the batch being built (messages, rejected lines, per-device deltas)
 * is the hand-off. Each stage owns its part of the struct, named in the comments below, and touches the rest
 * only through the other stages' functions. Internal to the import command: nothing outside import*.c
 * includes this header.
 */
#ifndef MQTT2PG_IMPORT_STATE_H
#define MQTT2PG_IMPORT_STATE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "batch.h"
#include "config.h"
#include "cli/csvread.h"
#include "db.h"
#include "payload/decode.h"
#include "payload/lineproto.h"
#include "util/linereader.h"
#include "message.h"
#include "registry.h"
#include "regsync.h"
#include "stats.h"

#define IMPORT_DETAIL_MAX 256

/* Rejection reasons: the live path's, plus one for a line that is not a record of its format at all, and one
 * for a reading outside the range the run may write (--allow-range, default the last 366 days). */
#define IMPORT_MALFORMED_LINE REJECT_REASON_COUNT
#define IMPORT_OUT_OF_RANGE   (REJECT_REASON_COUNT + 1)
#define IMPORT_REASON_COUNT   (REJECT_REASON_COUNT + 2)

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
struct import_counts {
	int64_t lines_skipped, lines_accepted, lines_rejected;
	int64_t readings, rows_written, rows_duplicate, points_dropped;
	int64_t rejected[IMPORT_REASON_COUNT];
	int64_t min_us, max_us; /* of the accepted readings; INT64_MAX/INT64_MIN while none */
};

struct import_device {
	int32_t device_id; /* 0: empty slot */
	int64_t readings, written, first_us, last_us;
};

struct import_reject {
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
	struct db_report report; /* import_write_report: failures print "mqtt2pg import: FILE: what: error" */
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
	struct import_counts committed, pending;
	struct message *head, *tail;
	size_t message_count, row_count;
	struct import_reject *rejects;
	size_t reject_count, reject_cap;
	struct import_device *devices; /* open addressing on device_id */
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

/* The name of a rejection reason (the live path's, malformed_line, timestamp_out_of_range). */
static inline const char *import_reason_name(int reason)
{
	if (reason == IMPORT_MALFORMED_LINE)
		return "malformed_line";
	if (reason == IMPORT_OUT_OF_RANGE)
		return "timestamp_out_of_range";
	return reject_reason_name((enum reject_reason)reason);
}

static inline void import_counts_init(struct import_counts *c)
{
	memset(c, 0, sizeof(*c));
	c->min_us = INT64_MAX;
	c->max_us = INT64_MIN;
}

/* a += b */
static inline void import_counts_add(struct import_counts *a, const struct import_counts *b)
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

static inline int64_t import_lines_done(const struct import_counts *c)
{
	return c->lines_skipped + c->lines_accepted + c->lines_rejected;
}

#endif
