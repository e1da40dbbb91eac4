// SPDX-License-Identifier: Apache-2.0
/*
 * linereader: lines and their offsets from a plain or gzip file (see linereader.h). One buffer of a read
 * chunk plus the longest line, reused for the whole file: reading costs one memchr per line and no copy.
 */
#include "util/linereader.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "util/xalloc.h"

#define READ_CHUNK (1024 * 1024)
#define KEEP_BYTES 256 /* of a line too long, returned for the rejection record */

struct linereader {
	gzFile gz;
	char *buf;
	size_t start, end; /* unread bytes are buf[start..end) */
	int64_t offset;	   /* stream offset of buf[start] */
	bool eof;
};

struct linereader *linereader_open(const char *path)
{
	struct linereader *r;
	gzFile gz = gzopen(path, "rb"); /* plain files as they are, and gzip (influx_inspect -compress) */

	if (!gz) {
		if (errno == 0)
			errno = ENOMEM;
		return NULL;
	}
	gzbuffer(gz, 256 * 1024);
	r = xcalloc(1, sizeof(*r));
	r->gz = gz;
	r->buf = xmalloc(READ_CHUNK + LINEREADER_MAX_LINE);
	return r;
}

void linereader_close(struct linereader *r)
{
	if (!r)
		return;
	gzclose(r->gz);
	free(r->buf);
	free(r);
}

int64_t linereader_offset(const struct linereader *r)
{
	return r->offset;
}

int linereader_seek(struct linereader *r, int64_t offset)
{
	if (gzseek(r->gz, (z_off_t)offset, SEEK_SET) != (z_off_t)offset)
		return -1;
	r->start = r->end = 0;
	r->offset = offset;
	r->eof = false;
	return 0;
}

int64_t linereader_raw_position(struct linereader *r)
{
	return (int64_t)gzoffset(r->gz);
}

/* At the end of the data: true if the stream ended properly (a truncated gzip member reports Z_BUF_ERROR). */
static bool clean_end(struct linereader *r)
{
	int errnum = Z_OK;

	gzerror(r->gz, &errnum);
	return errnum == Z_OK;
}

/*
 * Lines are found in buf[start..end) with memchr; a partial line moves to the front before the next chunk is
 * read behind it. A line that reaches LINEREADER_MAX_LINE without a '\n' keeps its first bytes at the front
 * while the rest is read and dropped chunk by chunk.
 */
int linereader_next(struct linereader *r, const char **line, size_t *len, int64_t *at, bool *too_long)
{
	size_t scanned = 0;

	*too_long = false;
	for (;;) {
		char *nl = memchr(r->buf + r->start + scanned, '\n', r->end - r->start - scanned);
		if (nl) {
			*line = r->buf + r->start;
			*len = (size_t)(nl - *line);
			*at = r->offset;
			r->offset += (int64_t)(*len + 1);
			r->start += *len + 1;
			if (*len > LINEREADER_MAX_LINE) {
				*len = KEEP_BYTES;
				*too_long = true;
			}
			return 1;
		}
		scanned = r->end - r->start;
		if (r->eof) {
			if (scanned == 0)
				return 0;
			*line = r->buf + r->start; /* last line without a newline */
			*len = scanned;
			*at = r->offset;
			r->offset += (int64_t)scanned;
			r->start = r->end;
			if (*len > LINEREADER_MAX_LINE) {
				*len = KEEP_BYTES;
				*too_long = true;
			}
			return 1;
		}
		if (scanned >= LINEREADER_MAX_LINE) {
			/* Keep the first bytes for the rejection record; skip to the end of the line. */
			int64_t begin = r->offset;
			size_t keep = KEEP_BYTES;
			memmove(r->buf, r->buf + r->start, keep);
			r->offset += (int64_t)scanned;
			r->start = keep;
			r->end = keep;
			for (;;) {
				int n = gzread(r->gz, r->buf + keep, READ_CHUNK);
				if (n < 0 || (n == 0 && !clean_end(r)))
					return -1;
				if (n == 0) {
					r->eof = true;
					break;
				}
				char *end_nl = memchr(r->buf + keep, '\n', (size_t)n);
				if (end_nl) {
					size_t rest = (size_t)(end_nl - (r->buf + keep));
					r->offset += (int64_t)rest + 1;
					r->start = keep + rest + 1;
					r->end = keep + (size_t)n;
					break;
				}
				r->offset += n;
			}
			*line = r->buf;
			*len = keep;
			*at = begin;
			*too_long = true;
			if (r->eof)
				r->start = r->end = keep; /* nothing left after it */
			return 1;
		}
		/* Move the partial line to the front and read more. */
		if (r->start > 0) {
			memmove(r->buf, r->buf + r->start, scanned);
			r->start = 0;
			r->end = scanned;
		}
		/* Here end < LINEREADER_MAX_LINE, so a whole chunk fits. */
		int n = gzread(r->gz, r->buf + r->end, READ_CHUNK);
		if (n < 0 || (n == 0 && !clean_end(r)))
			return -1;
		if (n == 0)
			r->eof = true;
		r->end += (size_t)n;
	}
}
