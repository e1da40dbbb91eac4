/* SPDX-License-Identifier: Apache-2.0 */
/*
 * import_source: the first stage of `mqtt2pg import` (import_state.h): a history file, plain or gzip, read
 * line by line (linereader.c), and each line of CSV or InfluxDB line protocol turned into samples.
 *
 * DESIGN: a line becomes the same struct decoded_message the live decoders fill (decode_append), so that
 * import_check validates it with the live path's validate_message: one set of rules for history and live
 * data. What is not a record (blank, comments and DDL of an export) is skipped here and counted by the caller.
 * Errors are rejection reasons with a detail, never a stop: one bad line costs that line.
 */
#ifndef MQTT2PG_IMPORT_SOURCE_H
#define MQTT2PG_IMPORT_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli/import_state.h"

/* Fills im->name (the path's last part), im->size and im->fingerprint (FNV-1a 64 of the first 64 KiB as
 * stored, compressed or not): a run is found again by name, size and fingerprint. Returns 0, or -1 after
 * printing why the file cannot be opened. */
int import_source_identify(struct importer *im) __attribute__((warn_unused_result));

/* Opens path (plain or gzip) for reading lines; an owned reader, or NULL after printing why. */
struct linereader *import_source_open(const char *path) __attribute__((warn_unused_result));

/* Reads the CSV header (line 1) of im->reader into im->columns. Returns the offset of line 2, or -1 after
 * printing why. */
int64_t import_source_read_header(struct importer *im) __attribute__((warn_unused_result));

/* True for a line that carries no reading: blank, and for line protocol the export's comments and DDL. */
bool import_source_skipped(const struct importer *im, const char *line, size_t len);

/*
 * Parses one line (borrowed, len bytes, not NUL-terminated) of im->o->format into im->decoded (reset first).
 * serial receives the device's serial (NUL-terminated, CSVREAD_MAX_SERIAL + 1 bytes) and *serial_len its
 * length, as far as the line got. Returns 0, or a rejection reason (enum reject_reason or IMPORT_*) with
 * detail (cap bytes).
 */
int import_source_parse(struct importer *im, const char *line, size_t len, char *serial, size_t *serial_len,
			char *detail, size_t cap) __attribute__((warn_unused_result));

#endif
