// SPDX-License-Identifier: Apache-2.0
/*
 * import_check: the middle of `mqtt2pg import` (import_check.h): a parsed line checked against the registry
 * snapshot with the live path's rules (validate.c), its new points registered (policy "register"), and the
 * result put in the batch: an accepted message, or a rejected line with its reason.
 */
#include "cli/import_check.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "cli/import_source.h"
#include "util/linereader.h"
#include "util/text.h"
#include "payload/timeparse.h"
#include "validate.h"
#include "util/xalloc.h"

struct import_device *import_check_device(struct importer *im, int32_t device_id)
{
	if ((im->device_used + 1) * 2 > im->device_cap) {
		struct import_device *old = im->devices;
		size_t old_cap = im->device_cap;
		im->device_cap = old_cap ? old_cap * 2 : 1024;
		im->devices = xcalloc(im->device_cap, sizeof(*im->devices));
		im->device_used = 0;
		for (size_t i = 0; i < old_cap; i++)
			if (old[i].device_id) {
				struct import_device *d = import_check_device(im, old[i].device_id);
				*d = old[i];
			}
		free(old);
	}
	size_t mask = im->device_cap - 1, i = ((uint32_t)device_id * 2654435761u) & mask;
	while (im->devices[i].device_id && im->devices[i].device_id != device_id)
		i = (i + 1) & mask;
	if (!im->devices[i].device_id) {
		im->devices[i] = (struct import_device){ .device_id = device_id,
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
	struct import_reject *r;
	char escaped[IMPORT_DETAIL_MAX * 4 + 1];
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
	struct import_device *d = import_check_device(im, m->device_id);

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


/* A refused register_point is the line's rejection, not an error of the run: its detail, nothing printed. */
struct point_refusal {
	char *detail;
	size_t cap;
	bool over_cap; /* MQ001: the device's point cap (sql/006_point_limit_code.sql) */
};

static void note_refusal(void *arg, PGconn *conn, const PGresult *res, const char *what)
{
	struct point_refusal *refusal = arg;

	(void)what;
	refusal->over_cap = strcmp(db_sqlstate(res), "MQ001") == 0;
	db_error_line(conn, res, refusal->detail, refusal->cap);
}

/* Policy "register": the points new to the snapshot are registered now, and the snapshot reloaded. */
static int register_points(struct importer *im, struct message *m, char *detail, size_t cap)
{
	for (uint32_t i = 0; i < m->new_point_count; i++) {
		char device[16], limit[16];
		const char *params[3] = { device, m->new_points[i], limit };
		struct point_refusal refusal = { .detail = detail, .cap = cap };
		const struct db_report report = { .module = "import",
						  .report = note_refusal,
						  .arg = &refusal };
		PGresult *res = NULL;
		snprintf(device, sizeof(device), "%d", (int)m->device_id);
		snprintf(limit, sizeof(limit), "%d", im->o->policy.max_points_per_device);
		if (db_exec_params(im->conn, &report, "register point",
				   "SELECT register_point($1::integer, $2::text, $3::integer)", 3, params,
				   &res) != 0)
			return refusal.over_cap ? REJECT_POINT_LIMIT : REJECT_DATABASE;
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
void import_check_line(struct importer *im, int64_t line_no, const char *line, size_t len, bool too_long)
{
	char detail[IMPORT_DETAIL_MAX], serial[CSVREAD_MAX_SERIAL + 1] = "";
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
	if (import_source_skipped(im, line, len)) {
		im->pending.lines_skipped++;
		return;
	}
	reason = import_source_parse(im, line, len, serial, &serial_len, detail, sizeof(detail));
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


void import_check_clear(struct importer *im)
{
	messages_clear(im);
	rejects_clear(im);
	devices_clear(im);
}
