/* SPDX-License-Identifier: Apache-2.0 */
/*
 * import_write: the third stage of `mqtt2pg import` (import_state.h): the batch import_check built, written in
 * one tenant transaction (db_begin_tenant), with the run's progress.
 *
 * DESIGN: one transaction per batch holds everything that describes it: the readings (COPY into a temporary
 * table then INSERT ... SELECT through write_readings, sql/015, or the live writer's binary arrays with
 * --method array; COPY straight into measurements is refused under RLS), the rejected lines
 * (rejected_messages, origin "import:<run id>", origin_seq = line number), the per-device counts and the
 * run's byte offset and counters (import_runs). So an import killed at any moment resumes exactly after the
 * last committed batch: no line written twice, none lost. The run itself is found or created, and locked (a
 * session advisory lock: one process per run), by import_write_open_run. A failed statement prints one line
 * naming the file (import_write_report).
 */
#ifndef MQTT2PG_IMPORT_WRITE_H
#define MQTT2PG_IMPORT_WRITE_H

#include <stdbool.h>
#include <stdint.h>

#include "db.h"
#include "cli/import_state.h"

/* How the import's failed statements are told: "mqtt2pg import: FILE: what: error" on stderr. im is borrowed
 * for as long as the report is used. */
struct db_report import_write_report(struct importer *im);

/*
 * Finds or creates the run of this file (tenant, name, size, fingerprint) and locks it. Returns 1 to go on
 * from *offset (0, or where the run stopped; im->committed then holds its counters), 0 if the run finished
 * earlier (the report still runs), -1 on failure or refusal (printed: a run found without --resume, another
 * --format, or locked by another process).
 */
int import_write_open_run(struct importer *im, int64_t *offset) __attribute__((warn_unused_result));

/*
 * Commits the batch and the run's progress (offset: where the next line starts; finished: the file is done)
 * in one transaction, then empties the batch and adds im->pending to im->committed. With --validate-only only
 * the counters move. Returns false (printed) when nothing of it was committed: the caller stops and the run
 * resumes from the previous batch.
 */
bool import_write_flush(struct importer *im, int64_t offset, bool finished)
	__attribute__((warn_unused_result));

/* Prints the database against the source, per device, for the report; *devices_out: how many devices. Returns
 * 0 when every row this run wrote is in the database, -1 otherwise (or on failure, printed). */
int import_write_check_devices(struct importer *im, int64_t *devices_out) __attribute__((warn_unused_result));

#endif
