/* SPDX-License-Identifier: Apache-2.0 */
/*
 * validate: decoded samples checked against the registry snapshot and the policy, producing either an
 * owned message of readings ready for the writers or a reason to reject. A message is accepted whole or
 * rejected whole. Pure: no I/O, no shared state; runs on Paho's receive thread for every message.
 */
#ifndef MQTT2PG_VALIDATE_H
#define MQTT2PG_VALIDATE_H

#include <stdint.h>

#include "payload/decode.h"
#include "message.h"
#include "registry.h"

struct config_validation; /* config.h: the validation section of the configuration */

struct validate_result {
	struct message *message; /* owned by the caller on success; NULL if every sample was dropped */
	uint32_t dropped_points; /* samples of unknown points dropped under policy "drop" */
	uint32_t new_points;	 /* points the writer will register under policy "register" */
};

/*
 * Checks in this order: tenant known, device known in that tenant by serial (unique per tenant) or alias
 * (a serial only other tenants have: tenant_mismatch, else unknown_device), device enabled,
 * then per sample: timestamp within [now - max_age, now + max_future_skew], point known (or the policy's
 * answer), value within the point's min/max. Returns 0 and fills *result, or -1 with *err filled.
 * Borrows everything; the message in *result is new and owned by the caller.
 */
int validate_message(const struct registry *reg, const struct config_validation *policy,
		     const struct route_match *m, const struct decoded_message *decoded, int64_t now_us,
		     int64_t received_us, struct validate_result *result, struct decode_error *err)
	__attribute__((warn_unused_result));

#endif
