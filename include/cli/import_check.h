/* SPDX-License-Identifier: Apache-2.0 */
/*
 * import_check: the second stage of `mqtt2pg import` (import_state.h). Every line of the file ends here in
 * exactly one counter of im->pending: skipped, accepted (its message joins the batch, im->head..im->tail,
 * with per-device deltas for the run's report) or rejected with a reason (im->rejects, recorded in
 * rejected_messages with the batch).
 *
 * DESIGN: the rules are the live path's (validate_message on the registry snapshot, with max_age off: this
 * is history), plus one of the import's own: a reading outside the run's allowed range (--allow-range) is
 * rejected rather than allowed to make a partition far away. New points (policy "register") are registered
 * at once through register_point (sql/006) and the snapshot reloaded, so the next line of the same device
 * finds them. The batch is written and emptied by import_write.
 */
#ifndef MQTT2PG_IMPORT_CHECK_H
#define MQTT2PG_IMPORT_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli/import_state.h"

/* One line (borrowed; too_long: the reader cut it at LINEREADER_MAX_LINE) numbered line_no: skipped, accepted
 * into the batch, or rejected with its reason. */
void import_check_line(struct importer *im, int64_t line_no, const char *line, size_t len, bool too_long);

/* The batch's delta of device_id (created empty on first use; owned by im). */
struct import_device *import_check_device(struct importer *im, int32_t device_id);

/* Empties the batch: messages, rejected lines and per-device deltas (after a commit, or for the next file). */
void import_check_clear(struct importer *im);

#endif
