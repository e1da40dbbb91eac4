/* SPDX-License-Identifier: Apache-2.0 */
/*
 * formats: the payload decoders besides our JSON envelope (decode.h), chosen by the route's format. Each turns a
 * payload (pointer + length, as MQTT gives it) and what the topic said into samples, or a reason to reject, or
 * the verdict that the payload holds no reading (ignored and counted, not an error):
 *
 *   value          the payload is one number: "230.4", " 12 \n"; "true"/"false" (1/0) with the route's
 *                  booleans, else skipped (ignored, all_skipped). Empty, whitespace
 *                  and "null" are no reading (ignored, no_value); "nan"/"inf" are rejected
 *                  (non_finite_value); other text is rejected (malformed_payload), or ignored
 *                  (non_numeric = "ignore"). The point is the topic's {point}/{point+}; the time, receive time.
 *   value_json     {"value": number|bool|null|...} (Victron Venus OS dbus-mqtt): as value, for the member.
 *   influx         InfluxDB line protocol (lineproto.h), one or more lines; the route's lp_mapping says which
 *                  tag is the device, how points are named and the timestamp precision.
 *   flat_json      a JSON object; each number leaf (nested objects joined with '/', array elements named by
 *                  index: "Power/0") is a point, prefixed by the topic's {point} if any. Nulls, booleans
 *                  (without booleans) and strings (without numeric_strings) are skipped and counted. The
 *                  time is the route's time_field in time_unit, else the receive time.
 *   auto           telegraf_json when the payload starts with '{', else influx (JSON times in seconds).
 *
 * Every format then passes each value's name through the route's points_map, ignore_points and points
 * (payload_options_point): skipped values are counted in out->skipped; a payload whose values were all skipped on
 * purpose (not just text) is "ignored" (IGNORE_SKIPPED), never a rejection.
 *   shelly_rpc     a Shelly Gen2 RPC frame: NotifyStatus/NotifyFullStatus flatten "params" (minus "ts", the
 *                  time in epoch seconds) as flat_json; other methods (NotifyEvent) are ignored (status).
 *   telegraf_json  Telegraf's JSON serializer, one metric or {"metrics": [...]}: "name" is the measurement,
 *                  "tags" and "fields" as in line protocol, "timestamp" in the route's precision.
 *
 * A payload naming several devices (influx, telegraf_json with serial_tag) fills out->devices, each device's
 * samples contiguous; the caller validates each device as its own message.
 */
#ifndef MQTT2PG_FORMATS_H
#define MQTT2PG_FORMATS_H

#include <stddef.h>
#include <stdint.h>

#include "payload/decode.h"
#include "payload/options.h"

/*
 * Decodes payload[0..len) in format under a route's payload options o (json is decode_json with the options'
 * value rules). Returns 0 with out filled (the caller frees it with decode_clear; it may be reused), 1 when the
 * payload holds no reading (out->ignored says why), or -1 with err filled. Borrows everything else. The daemon
 * calls it with a route's format and &route->payload.
 */
int formats_decode(enum route_format format, const struct payload_options *o, const char *payload, size_t len,
		   const struct route_match *m, int64_t received_us, size_t max_bytes,
		   struct decoded_message *out, struct decode_error *err) __attribute__((warn_unused_result));

/*
 * Converts a payload time to µs: a JSON number in unit (s may have a fraction) or, for ROUTE_TIME_RFC3339, a
 * string; a date-time without a zone is read in tz (NULL: rejected). False when malformed or outside years
 * 1..9999. For the decoders and the tests.
 */
bool formats_time_number(double value, enum route_time_unit unit, int64_t *out_us)
	__attribute__((warn_unused_result));
bool formats_time_text(const char *text, size_t len, const struct tz *tz, int64_t *out_us)
	__attribute__((warn_unused_result));

#endif
