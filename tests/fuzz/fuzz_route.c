// SPDX-License-Identifier: Apache-2.0
/*
 * fuzz_route: topic templates and topic matching (route.c), against an independent reference.
 *
 * Input: TEMPLATE NUL TOPIC, or just TOPIC when there is no NUL.
 *  - route_match of TOPIC (an exact-size buffer, not NUL-terminated, as Paho hands it over) against the
 *    default template solar/{tenant}/{serial}/telemetry and, when TEMPLATE parses, against that one: the
 *    verdict equals the reference matcher's, and a match yields slices inside the topic, non-empty, without
 *    '/', that are exactly the reference's tenant and serial levels.
 *  - route_parse(TEMPLATE) succeeds exactly when the reference rules of route.h say it should; on success the
 *    filter is the template with placeholders turned into "+", and a topic built from the template (tenant
 *    "T", serial "S", "+" levels "x") matches with tenant "T" and serial "S"; on failure the route is left
 *    zeroed and err holds a message.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "route.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum ref_kind {
	REF_LITERAL,
	REF_TENANT,
	REF_SERIAL,
	REF_ANY
};

struct ref_level {
	enum ref_kind kind;
	const char *text; /* into the template */
	size_t len;
};

#define REF_MAX_LEVELS 65536

/* route.h's rules for a template, with levels[] filled on success. */
static bool ref_parse(const char *tpl, struct ref_level *levels, size_t *count)
{
	const char *p = tpl;
	int tenants = 0, serials = 0;

	*count = 0;
	if (*tpl == '\0')
		return false;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		struct ref_level l = { REF_LITERAL, p, len };

		if (len == 0)
			return false;
		if (len == 8 && memcmp(p, "{tenant}", 8) == 0)
			l.kind = REF_TENANT;
		else if (len == 8 && memcmp(p, "{serial}", 8) == 0)
			l.kind = REF_SERIAL;
		else if (len == 1 && p[0] == '+')
			l.kind = REF_ANY;
		else if (memchr(p, '{', len) || memchr(p, '}', len) || memchr(p, '+', len) ||
			 memchr(p, '#', len))
			return false;
		tenants += l.kind == REF_TENANT;
		serials += l.kind == REF_SERIAL;
		if (*count == REF_MAX_LEVELS)
			return false; /* not reached: inputs are shorter */
		levels[(*count)++] = l;
		if (!slash)
			break;
		p = slash + 1;
	}
	return tenants == 1 && serials == 1;
}

/* MQTT level matching of topic[0..len) against the reference levels. */
static bool ref_match(const struct ref_level *levels, size_t count, const char *topic, size_t len,
		      struct topic_slice *tenant, struct topic_slice *serial)
{
	size_t start = 0;

	for (size_t i = 0; i < count; i++) {
		const char *slash;
		size_t level_len;

		if (start > len)
			return false;
		slash = memchr(topic + start, '/', len - start);
		level_len = slash ? (size_t)(slash - (topic + start)) : len - start;
		switch (levels[i].kind) {
		case REF_LITERAL:
			if (level_len != levels[i].len ||
			    memcmp(topic + start, levels[i].text, level_len) != 0)
				return false;
			break;
		case REF_TENANT:
		case REF_SERIAL:
			if (level_len == 0)
				return false;
			*(levels[i].kind == REF_TENANT ? tenant : serial) =
				(struct topic_slice){ topic + start, level_len };
			break;
		case REF_ANY:
			break;
		}
		start += level_len + 1;
	}
	return start == len + 1; /* the last level ended exactly at the end of the topic */
}

static bool slice_eq(struct topic_slice a, struct topic_slice b)
{
	return a.len == b.len && a.ptr == b.ptr;
}

static void check_match(const struct route *r, const struct ref_level *levels, size_t count,
			const char *topic, size_t len)
{
	struct route_match m;
	struct topic_slice tenant = { NULL, 0 }, serial = { NULL, 0 };
	bool got = route_match(r, topic, len, &m);
	bool want = ref_match(levels, count, topic, len, &tenant, &serial);

	FUZZ_CHECK(got == want, "route_match(\"%s\", \"%.*s\") = %d, reference %d", r->template_text,
		   (int)len, topic, (int)got, (int)want);
	if (!got)
		return;
	FUZZ_CHECK(m.tenant.ptr >= topic && m.tenant.len > 0 && m.tenant.ptr + m.tenant.len <= topic + len &&
			   !memchr(m.tenant.ptr, '/', m.tenant.len),
		   "tenant slice outside the topic or not one level");
	FUZZ_CHECK(m.serial.ptr >= topic && m.serial.len > 0 && m.serial.ptr + m.serial.len <= topic + len &&
			   !memchr(m.serial.ptr, '/', m.serial.len),
		   "serial slice outside the topic or not one level");
	FUZZ_CHECK(slice_eq(m.tenant, tenant) && slice_eq(m.serial, serial),
		   "slices of \"%.*s\" differ from the reference's", (int)len, topic);
}

/* For a parsed template: filter shape and a topic that must match with known slices. */
static void check_parsed(const struct route *r, const struct ref_level *levels, size_t count)
{
	size_t tpl_len = strlen(r->template_text);
	char *filter = malloc(tpl_len + 1), *topic = malloc(tpl_len + 1);
	size_t f = 0, t = 0;
	struct route_match m;

	if (!filter || !topic)
		abort();
	FUZZ_CHECK(r->level_count == count, "%zu levels, reference %zu", r->level_count, count);
	for (size_t i = 0; i < count; i++) {
		if (i > 0) {
			filter[f++] = '/';
			topic[t++] = '/';
		}
		FUZZ_CHECK((int)r->levels[i].kind == (int)levels[i].kind, "level %zu kind %d, reference %d",
			   i, (int)r->levels[i].kind, (int)levels[i].kind);
		switch (levels[i].kind) {
		case REF_LITERAL:
			FUZZ_CHECK(r->levels[i].literal && strlen(r->levels[i].literal) == levels[i].len &&
					   memcmp(r->levels[i].literal, levels[i].text, levels[i].len) == 0,
				   "literal level %zu differs", i);
			memcpy(filter + f, levels[i].text, levels[i].len);
			memcpy(topic + t, levels[i].text, levels[i].len);
			f += levels[i].len;
			t += levels[i].len;
			break;
		case REF_TENANT:
			filter[f++] = '+';
			topic[t++] = 'T';
			break;
		case REF_SERIAL:
			filter[f++] = '+';
			topic[t++] = 'S';
			break;
		case REF_ANY:
			filter[f++] = '+';
			topic[t++] = 'x';
			break;
		}
	}
	filter[f] = '\0';
	FUZZ_CHECK(r->filter && strcmp(r->filter, filter) == 0, "filter \"%s\", want \"%s\"",
		   r->filter ? r->filter : "(null)", filter);
	{
		char *exact = fuzz_copy((const uint8_t *)topic, t);
		FUZZ_CHECK(route_match(r, exact, t, &m), "\"%.*s\" does not match its own template \"%s\"",
			   (int)t, exact, r->template_text);
		FUZZ_CHECK(m.tenant.len == 1 && m.tenant.ptr[0] == 'T' && m.serial.len == 1 &&
				   m.serial.ptr[0] == 'S',
			   "wrong slices for \"%.*s\"", (int)t, exact);
		free(exact);
	}
	free(filter);
	free(topic);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct route standard;
	static struct ref_level standard_levels[4];
	static size_t standard_count;
	static bool ready;
	static struct ref_level levels[REF_MAX_LEVELS];
	const uint8_t *nul = memchr(data, 0, size);
	const uint8_t *topic_bytes = nul ? nul + 1 : data;
	size_t topic_len = nul ? size - (size_t)(nul - data) - 1 : size;
	char *topic = fuzz_copy(topic_bytes, topic_len);

	if (!ready) {
		char err[128];
		if (!route_parse("solar/{tenant}/{serial}/telemetry", ROUTE_FORMAT_JSON, &standard, err,
				 sizeof(err)) ||
		    !ref_parse(standard.template_text, standard_levels, &standard_count))
			abort();
		ready = true;
	}
	check_match(&standard, standard_levels, standard_count, topic, topic_len);

	if (nul) {
		char *tpl = fuzz_cstr(data, (size_t)(nul - data));
		struct route r;
		char err[64];
		size_t errlen = 1 + (size ? data[size - 1] % sizeof(err) : 0);
		size_t count = 0;
		bool want = ref_parse(tpl, levels, &count);
		bool got;

		memset(&r, 0, sizeof(r));
		memset(err, 'E', sizeof(err));
		got = route_parse(tpl, ROUTE_FORMAT_JSON, &r, err, errlen);
		FUZZ_CHECK(got == want, "route_parse(\"%s\") = %d, reference %d", tpl, (int)got, (int)want);
		if (got) {
			FUZZ_CHECK(strcmp(r.template_text, tpl) == 0, "template_text differs");
			check_parsed(&r, levels, count);
			check_match(&r, levels, count, topic, topic_len);
		} else {
			FUZZ_CHECK(r.levels == NULL && r.filter == NULL && r.template_text == NULL &&
					   r.level_count == 0,
				   "a refused template left state in the route");
			FUZZ_CHECK(memchr(err, '\0', errlen) != NULL && (errlen == 1 || err[0] != '\0'),
				   "refusal without a NUL-terminated message in err[%zu]", errlen);
		}
		route_clear(&r);
		free(tpl);
	}
	free(topic);
	return 0;
}
