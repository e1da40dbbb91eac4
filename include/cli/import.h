/* SPDX-License-Identifier: Apache-2.0 */
/*
 * import: `mqtt2pg import`, history files into the readings table through the same rules and the same RLS
 * path as the live data.
 *
 *   file (plain or gzip) -> lines -> csvread / lineproto -> validate (registry snapshot, max_age off)
 *     -> batch -> one transaction per batch:
 *        BEGIN; set_config(tenant); COPY into a temporary table, INSERT ... SELECT readings (+ dirty
 *        buckets) as the writer does (or the writer's binary arrays, --method array); INSERT rejected lines;
 *        UPSERT per-device counts; UPDATE import_runs (offset, counters); COMMIT
 *     -> report (source vs database) -> aggregate rebuild of the imported range
 *
 * Because the progress of a file (byte offset, line number, counters) commits with the batch it describes,
 * an import killed at any moment resumes (--resume) exactly after the last committed batch: no line is
 * written twice and none is lost. It runs as the writer role (database.conninfo), never as the owner.
 *
 * The stages are modules of their own, sharing one struct importer (import_state.h): import_source (file,
 * lines, formats -> samples), import_check (registry and rules -> the batch), import_write (the batch and the
 * run record -> the database); import.c is the command, its line loop and its report.
 */
#ifndef MQTT2PG_IMPORT_H
#define MQTT2PG_IMPORT_H

#include "config.h"

/*
 * `mqtt2pg import --format influx|csv --tenant SLUG [options] FILE...` (argv[0] is the first argument after
 * "import"). Borrows cfg (database.conninfo and password, validation policy). Returns the process exit code:
 * 0 done and checked, 1 failure (or the database check found rows missing), 2 usage, 130/143 interrupted
 * by SIGINT/SIGTERM after committing the batch in progress.
 */
int import_command(const struct config *cfg, int argc, char **argv) __attribute__((warn_unused_result));

#endif
