// SPDX-License-Identifier: Apache-2.0
/*
 * import_source: the source side of `mqtt2pg import` (import_source.h): which file this is, its lines, and
 * each line of CSV (csvread.c) or line protocol (lineproto.c) turned into the samples of one message, as the
 * live path's decoders fill a struct decoded_message (decode_append). No registry, no database.
 */
#include "cli/import_source.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/csvread.h"
#include "payload/decode.h"
#include "payload/lineproto.h"
#include "util/linereader.h"
#include "util/xalloc.h"

#define FINGERPRINT_BYTES 65536


/* --- the file ------------------------------------------------------------------------------------- */

/* FNV-1a 64 of the file's first bytes (as stored, compressed or not): tells files of equal name and size apart. */
int import_source_identify(struct importer *im)
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
	s = decode_append(&im->decoded);
	memcpy(s->point, row.point, sizeof(s->point));
	s->value = row.value;
	s->time_us = row.time_us;
	return 0;
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
		struct sample *s = decode_append(&im->decoded);
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
bool import_source_skipped(const struct importer *im, const char *line, size_t len)
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

struct linereader *import_source_open(const char *path)
{
	struct linereader *r = linereader_open(path);

	if (!r)
		fprintf(stderr, "mqtt2pg import: cannot open %s: %s\n", path, strerror(errno));
	return r;
}

int64_t import_source_read_header(struct importer *im)
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


int import_source_parse(struct importer *im, const char *line, size_t len, char *serial, size_t *serial_len,
			char *detail, size_t cap)
{
	return im->o->format == IMPORT_FORMAT_CSV ?
		       parse_csv(im, line, len, serial, serial_len, detail, cap) :
		       parse_influx(im, line, len, serial, serial_len, detail, cap);
}
