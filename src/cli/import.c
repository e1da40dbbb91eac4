// SPDX-License-Identifier: Apache-2.0
/*
 * import: `mqtt2pg import`, history files into PostgreSQL (see import.h for the pipeline and the resume
 * guarantee). This file is the command: its arguments, the line loop of each file, progress, the report, and
 * the aggregate rebuild of the whole imported range. The stages it drives share one struct importer
 * (import_state.h):
 *
 *   import_source (file, lines, CSV / line protocol -> samples) -> import_check (registry, rules -> the batch)
 *     -> import_write (one transaction per batch through write_readings, the run record)
 *
 * Every line ends in exactly one counter: skipped (comment, DDL, blank, header), accepted, or rejected with a
 * reason; rejected lines are recorded in rejected_messages with origin "import:<run id>" and origin_seq =
 * their line number, in the transaction of their batch.
 */
#include "cli/import.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aggregate.h"
#include "util/clock.h"
#include "db.h"
#include "cli/import_check.h"
#include "cli/import_source.h"
#include "cli/import_state.h"
#include "cli/import_write.h"
#include "util/log.h"
#include "payload/timeparse.h"
#include "util/xalloc.h"

#define MODULE		     "import"
#define REJECTS_PER_BATCH    1000
#define DEFAULT_BATCH_ROWS   20000
/* Without --allow-range an import writes the daily-partition zone (sql/009: daily_partition_days) up to the
 * furthest partitions may be made ahead: a stray 1990 timestamp is rejected, not a partition. */
#define DEFAULT_HISTORY_DAYS 366
#define DEFAULT_AHEAD_DAYS   31
#define DAY_US		     (86400LL * 1000000LL)

static volatile sig_atomic_t stop_signal;
static atomic_bool stop_aggregates; /* aggregate_recompute_dirty's stop flag (lock-free, so signal-safe) */

static void on_signal(int sig)
{
	stop_signal = sig;
	atomic_store(&stop_aggregates, true);
}

/* --- progress and report --------------------------------------------------------------------------- */

static void show_progress(struct importer *im, bool last)
{
	int64_t now = clock_monotonic_ms();
	int64_t lines = import_lines_done(&im->committed) + import_lines_done(&im->pending);
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

static void print_time(const char *label, int64_t us)
{
	char when[40];

	timeparse_format(us, when, sizeof(when));
	printf("%s%s", label, when);
}

/* The validation report of one file. Returns 0 if its checks pass. */
static int report(struct importer *im)
{
	const struct import_counts *c = &im->committed;
	int64_t devices = (int64_t)im->device_used;
	int rc = 0;

	printf("import report: %s (tenant %s%s)\n", im->path, im->o->tenant_slug,
	       im->o->validate_only ? ", validate only: nothing written" : "");
	printf("  lines: %" PRId64 " = %" PRId64 " skipped (comments, DDL, header, blank) + %" PRId64
	       " accepted + %" PRId64 " rejected\n",
	       import_lines_done(c), c->lines_skipped, c->lines_accepted, c->lines_rejected);
	printf("  readings of accepted lines: %" PRId64 " = %" PRId64 " written + %" PRId64
	       " duplicate(s) skipped; %" PRId64 " reading(s) of unknown points dropped by policy\n",
	       c->readings, c->rows_written, c->rows_duplicate, c->points_dropped);
	printf("  rejected by reason:");
	for (int i = 0; i < IMPORT_REASON_COUNT; i++)
		if (c->rejected[i])
			printf(" %s=%" PRId64, import_reason_name(i), c->rejected[i]);
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
		rc = import_write_check_devices(im, &devices);
	}
	printf("import result: file=%s lines=%" PRId64 " skipped=%" PRId64 " accepted=%" PRId64
	       " rejected=%" PRId64 " readings=%" PRId64 " written=%" PRId64 " duplicate=%" PRId64
	       " dropped=%" PRId64 " devices=%" PRId64 " check=%s\n",
	       im->name, import_lines_done(c), c->lines_skipped, c->lines_accepted, c->lines_rejected,
	       c->readings, c->rows_written, c->rows_duplicate, c->points_dropped, devices,
	       rc == 0 ? "ok" : "FAILED");
	fflush(stdout);
	return rc;
}


static void file_reset(struct importer *im)
{
	/* Best effort, deliberately unchecked: the lock is the previous file's run and the next file takes its
	 * own; a lock this could not release goes with the session when the import ends, and a broken connection
	 * makes the next file's first statement fail and say so. */
	if (im->conn && im->run_id)
		PQclear(PQexec(im->conn, "SELECT pg_advisory_unlock_all()"));
	import_check_clear(im);
	linereader_close(im->reader);
	im->reader = NULL;
	import_counts_init(&im->committed);
	import_counts_init(&im->pending);
	im->run_id = 0;
	im->finished = false;
}

/* Imports one file. Returns 0, 1 (failure or check failed), or 128 + signal when interrupted. */
static int import_file(struct importer *im, const char *path, struct import_counts *all)
{
	int64_t offset = 0, line_no, header_end = 0;
	const char *line;
	size_t len;
	bool too_long;
	int rc = 0, got = 0;

	file_reset(im);
	im->path = path;
	if (import_source_identify(im) < 0 || (im->reader = import_source_open(path)) == NULL)
		return 1;
	if (im->o->format == IMPORT_FORMAT_CSV && (header_end = import_source_read_header(im)) < 0)
		return 1;
	if (!im->o->validate_only) {
		int opened = import_write_open_run(im, &offset);
		if (opened < 0)
			return 1;
	}
	line_no = import_lines_done(&im->committed);
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
		import_check_line(im, line_no, line, len, too_long);
		if (im->row_count >= (size_t)im->o->batch_rows || im->reject_count >= REJECTS_PER_BATCH ||
		    import_lines_done(&im->pending) >= (int64_t)im->o->batch_rows * 4) {
			if (!import_write_flush(im, linereader_offset(im->reader), false)) {
				rc = 1;
				break;
			}
		}
		if (stop_signal) {
			if (!import_write_flush(im, linereader_offset(im->reader), false))
				rc = 1;
			else
				rc = 128 + stop_signal;
			break;
		}
		show_progress(im, false);
	}
	if (!im->finished && rc == 0) {
		if (got < 0) {
			/* keep what was read before the damage; a resume stops at the same place (a failed commit
			 * printed why, and the run stops below either way) */
			bool kept = import_write_flush(im, linereader_offset(im->reader), false);
			(void)kept;
			fprintf(stderr,
				"mqtt2pg import: %s: read error after line %" PRId64
				" (a truncated or corrupt gzip "
				"stream?)\n",
				path, line_no);
			rc = 1;
		} else if (!import_write_flush(im, linereader_offset(im->reader), true)) {
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
			path, import_lines_done(&im->committed));
		return rc;
	}
	rc = report(im) == 0 ? 0 : 1;
	import_counts_add(all, &im->committed);
	return rc;
}

/* Marks and recomputes the 5-minute buckets of everything imported, as `aggregate rebuild` does. */
static int rebuild_aggregates(struct importer *im, const struct import_counts *all)
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
	struct import_counts all;
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
	import_counts_init(&all);
	import_counts_init(&im.committed);
	import_counts_init(&im.pending);
	im.report = import_write_report(&im);
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
