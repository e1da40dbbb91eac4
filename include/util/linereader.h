/* SPDX-License-Identifier: Apache-2.0 */
/*
 * linereader: the lines of a history file for `mqtt2pg import`, plain or gzip-compressed (zlib reads both),
 * with the byte offset of each line in the uncompressed stream, so that an import can record how far it got
 * and continue there (linereader_seek) after an interruption. Lines are returned without their '\n' (a CR
 * before it stays: the format readers drop it); a last line without '\n' is a line. A line longer than
 * LINEREADER_MAX_LINE is returned as its first 256 bytes with *too_long set, and the rest of it is skipped,
 * so one huge line costs no memory and the lines after it are read as usual.
 */
#ifndef MQTT2PG_LINEREADER_H
#define MQTT2PG_LINEREADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LINEREADER_MAX_LINE (64 * 1024)

struct linereader;

/* Opens path for reading. Returns the owned reader, or NULL with errno set. */
struct linereader *linereader_open(const char *path) __attribute__((warn_unused_result));

/* Closes the file and frees r. NULL is a no-op. */
void linereader_close(struct linereader *r);

/*
 * The next line in *line and *len (borrowed from r until the next call), *at its offset in the uncompressed
 * stream, *too_long as above. Returns 1, 0 at the end, or -1 on a read error, which includes a gzip stream
 * that ends early (a truncated file).
 */
int linereader_next(struct linereader *r, const char **line, size_t *len, int64_t *at, bool *too_long)
	__attribute__((warn_unused_result));

/* The offset of the next line (the end of the one just returned). */
int64_t linereader_offset(const struct linereader *r);

/* Continues at offset, which must be a line start returned earlier (gzip: decompresses up to it). 0 or -1. */
int linereader_seek(struct linereader *r, int64_t offset) __attribute__((warn_unused_result));

/* How far into the file as stored (compressed bytes for gzip) reading got: for progress against its size. */
int64_t linereader_raw_position(struct linereader *r);

#endif
