/* SPDX-License-Identifier: Apache-2.0 */
/*
 * topic: MQTT topic names and filters, the one place that knows their rules (MQTT 3.1.1 section 4.7, as
 * Mosquitto applies them to subscriptions and ACLs alike): a filter's levels are split by '/', '+' stands for
 * exactly one level, '#' for any number of levels including none and only as the last level, and a topic
 * starting with '$' is matched only by a filter whose first level is literal. Routes (subscriptions and
 * ignore filters), the configuration's checks and the ACL tools use it. Pure; nothing allocates but
 * topic_filter_from_template.
 */
#ifndef MQTT2PG_TOPIC_H
#define MQTT2PG_TOPIC_H

#include <stdbool.h>
#include <stddef.h>

/* The longest topic or filter MQTT can carry (a UTF-8 string's 16-bit length). */
#define TOPIC_MAX_LEN 65535

/* A slice of a topic (not NUL-terminated); borrows the topic's bytes. */
struct topic_slice {
	const char *ptr;
	size_t len;
};

/*
 * True if filter is a valid subscription filter: 1..TOPIC_MAX_LEN bytes, '+' and '#' only as a whole level,
 * '#' only as the last one. NULL is not valid.
 */
bool topic_filter_valid(const char *filter);

/* True if text can stand as one level of a topic: none of '/', '+', '#' (a tenant slug, a shared group). */
bool topic_level_plain(const char *text);

/*
 * True when the filter (valid, with '+' and '#') matches the topic name topic[0..len) (no NUL needed).
 * Allocation-free: it runs once per message per route on Paho's thread.
 */
bool topic_matches(const char *filter, const char *topic, size_t len);

/*
 * The subscription filter of a template-like text: each level written "{...}" becomes '+', except "{point+}",
 * which becomes '#'; other levels are kept as they are. The caller owns the result.
 */
char *topic_filter_from_template(const char *text);

#endif
