// SPDX-License-Identifier: Apache-2.0
/*
 * route: topic templates, the derived subscription filters, and matching a received topic to a route.
 * Pure and allocation-free on the matching path: it runs once per message on Paho's thread.
 */
#include "route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/topic.h"
#include "util/xalloc.h"

static const char *const format_names[] = {
	[ROUTE_FORMAT_JSON] = "json",
	[ROUTE_FORMAT_VALUE] = "value",
	[ROUTE_FORMAT_VALUE_JSON] = "value_json",
	[ROUTE_FORMAT_INFLUX] = "influx",
	[ROUTE_FORMAT_FLAT_JSON] = "flat_json",
	[ROUTE_FORMAT_SHELLY_RPC] = "shelly_rpc",
	[ROUTE_FORMAT_TELEGRAF_JSON] = "telegraf_json",
	[ROUTE_FORMAT_AUTO] = "auto",
};

bool route_format_parse(const char *name, enum route_format *out)
{
	for (size_t i = 0; i < sizeof(format_names) / sizeof(format_names[0]); i++) {
		if (strcmp(name, format_names[i]) == 0) {
			*out = (enum route_format)i;
			return true;
		}
	}
	return false;
}

const char *route_format_name(enum route_format format)
{
	if ((size_t)format >= sizeof(format_names) / sizeof(format_names[0]))
		return "unknown";
	return format_names[format];
}

const char *route_time_unit_name(enum route_time_unit unit)
{
	static const char *const names[] = { "s", "ms", "us", "ns", "rfc3339" };

	return (size_t)unit < sizeof(names) / sizeof(names[0]) ? names[unit] : "unknown";
}

void route_clear(struct route *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->level_count; i++)
		free(r->levels[i].literal);
	free(r->levels);
	free(r->template_text);
	free(r->filter);
	free(r->preset);
	free(r->tenant);
	free(r->serial);
	for (size_t i = 0; i < r->ignore_count; i++)
		free(r->ignore[i]);
	free(r->ignore);
	payload_options_clear(&r->payload);
	free(r->alias_scope);
	memset(r, 0, sizeof(*r));
}

static bool parse_level(const char *text, size_t len, struct route_level *level, char *err, size_t errlen)
{
	if (len == 0) {
		snprintf(err, errlen, "empty topic level");
		return false;
	}
	if (len == 8 && memcmp(text, "{tenant}", 8) == 0) {
		level->kind = ROUTE_LEVEL_TENANT;
		return true;
	}
	if (len == 8 && memcmp(text, "{serial}", 8) == 0) {
		level->kind = ROUTE_LEVEL_SERIAL;
		return true;
	}
	if (len == 7 && memcmp(text, "{point}", 7) == 0) {
		level->kind = ROUTE_LEVEL_POINT;
		return true;
	}
	if (len == 8 && memcmp(text, "{point+}", 8) == 0) {
		level->kind = ROUTE_LEVEL_POINT_REST;
		return true;
	}
	if (len == 1 && text[0] == '+') {
		level->kind = ROUTE_LEVEL_ANY;
		return true;
	}
	if (memchr(text, '{', len) || memchr(text, '}', len)) {
		snprintf(err, errlen,
			 "unknown placeholder in level '%.*s' (known: {tenant}, {serial}, {point}, {point+})",
			 (int)len, text);
		return false;
	}
	if (memchr(text, '+', len) || memchr(text, '#', len)) {
		snprintf(err, errlen, "wildcard inside level '%.*s'", (int)len, text);
		return false;
	}
	level->kind = ROUTE_LEVEL_LITERAL;
	level->literal = xstrndup(text, len);
	return true;
}

bool route_parse(const char *template_text, enum route_format format, struct route *out, char *err,
		 size_t errlen)
{
	if (!route_parse_template(template_text, format, out, err, errlen))
		return false;
	if (!route_check(out, err, errlen)) {
		route_clear(out);
		return false;
	}
	return true;
}

static size_t count_levels(const struct route *r, enum route_level_kind kind)
{
	size_t n = 0;

	for (size_t i = 0; i < r->level_count; i++)
		n += r->levels[i].kind == kind;
	return n;
}

bool route_check(const struct route *r, char *err, size_t errlen)
{
	size_t tenants = count_levels(r, ROUTE_LEVEL_TENANT), serials = count_levels(r, ROUTE_LEVEL_SERIAL);
	size_t points = count_levels(r, ROUTE_LEVEL_POINT) + count_levels(r, ROUTE_LEVEL_POINT_REST);
	bool payload_serial = r->payload.influx.serial_tag[0] != '\0' &&
			      (r->format == ROUTE_FORMAT_INFLUX || r->format == ROUTE_FORMAT_TELEGRAF_JSON ||
			       r->format == ROUTE_FORMAT_AUTO);

	if (tenants + (r->tenant != NULL) != 1 || serials + (r->serial != NULL) + payload_serial > 1 ||
	    (serials + (r->serial != NULL) + payload_serial == 0)) {
		if (tenants + (r->tenant != NULL) == 0 || serials + (r->serial != NULL) + payload_serial == 0)
			snprintf(
				err, errlen,
				"template '%s' needs exactly one {tenant} and one {serial} (or tenant = \"...\", "
				"serial = \"...\" or, for influx and telegraf_json, serial_tag)",
				r->template_text);
		else
			snprintf(
				err, errlen,
				"template '%s': the tenant and the device must each come from exactly one place "
				"(a placeholder, a fixed tenant/serial, or serial_tag)",
				r->template_text);
		return false;
	}
	if (points == 0 && (r->format == ROUTE_FORMAT_VALUE || r->format == ROUTE_FORMAT_VALUE_JSON)) {
		snprintf(err, errlen, "template '%s': format %s needs {point} or {point+} in the topic",
			 r->template_text, route_format_name(r->format));
		return false;
	}
	if (points > 0 && (r->format == ROUTE_FORMAT_JSON || r->format == ROUTE_FORMAT_INFLUX ||
			   r->format == ROUTE_FORMAT_SHELLY_RPC || r->format == ROUTE_FORMAT_TELEGRAF_JSON ||
			   r->format == ROUTE_FORMAT_AUTO)) {
		snprintf(err, errlen,
			 "template '%s': format %s takes its points from the payload, not {point}",
			 r->template_text, route_format_name(r->format));
		return false;
	}
	return true;
}

bool route_parse_template(const char *template_text, enum route_format format, struct route *out, char *err,
			  size_t errlen)
{
	/* Retained messages: a retained reading without its own timestamp would become a new row at every
	 * reconnect (the broker sends it again, we stamp it with the new receive time); with a timestamp the
	 * redelivery is an idempotent duplicate. So by default only timestamped ones are accepted. */
	struct route r = { .retained_timestamped = true };
	const char *p = template_text;
	int tenants = 0, serials = 0, points = 0;

	if (*template_text == '\0') {
		snprintf(err, errlen, "empty topic template");
		return false;
	}
	r.template_text = xstrdup(template_text);
	r.format = format;
	lp_mapping_init(&r.payload.influx);
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		struct route_level level = { 0 };

		if (!parse_level(p, len, &level, err, errlen))
			goto fail;
		tenants += level.kind == ROUTE_LEVEL_TENANT;
		serials += level.kind == ROUTE_LEVEL_SERIAL;
		points += level.kind == ROUTE_LEVEL_POINT || level.kind == ROUTE_LEVEL_POINT_REST;
		r.levels = xrealloc(r.levels, (r.level_count + 1) * sizeof(*r.levels));
		r.levels[r.level_count++] = level;
		if (level.kind == ROUTE_LEVEL_POINT_REST && slash) {
			snprintf(err, errlen, "{point+} must be the last level of '%s'", template_text);
			goto fail;
		}
		if (!slash)
			break;
		p = slash + 1;
	}
	if (tenants > 1 || serials > 1 || points > 1) {
		snprintf(err, errlen,
			 "template '%s' needs exactly one {tenant} and one {serial} (and at most one point)",
			 template_text);
		goto fail;
	}
	r.filter = topic_filter_from_template(template_text); /* a {placeholder} is "+", {point+} "#" */
	*out = r;
	return true;
fail:
	route_clear(&r);
	return false;
}

bool route_match(const struct route *r, const char *topic, size_t topic_len, struct route_match *m)
{
	const char *p = topic, *end = topic + topic_len;
	struct route_match found = { { 0 }, { 0 }, { 0 }, "" };

	for (size_t i = 0; i < r->level_count; i++) {
		const char *slash;
		size_t len;

		if (p > end)
			return false; /* topic has fewer levels */
		slash = memchr(p, '/', (size_t)(end - p));
		len = slash ? (size_t)(slash - p) : (size_t)(end - p);
		switch (r->levels[i].kind) {
		case ROUTE_LEVEL_LITERAL:
			if (strlen(r->levels[i].literal) != len || memcmp(r->levels[i].literal, p, len) != 0)
				return false;
			break;
		case ROUTE_LEVEL_TENANT:
			if (len == 0)
				return false;
			found.tenant = (struct topic_slice){ p, len };
			break;
		case ROUTE_LEVEL_SERIAL:
			if (len == 0)
				return false;
			found.serial = (struct topic_slice){ p, len };
			break;
		case ROUTE_LEVEL_ANY:
			break;
		case ROUTE_LEVEL_POINT:
			if (len == 0)
				return false;
			found.point = (struct topic_slice){ p, len };
			break;
		case ROUTE_LEVEL_POINT_REST:
			/* The rest of the topic, one or more levels, none empty ("/b", "a//b" and "a/" are not
			 * points): such a topic does not match this route. */
			len = (size_t)(end - p);
			if (len == 0 || p[0] == '/' || p[len - 1] == '/' || memmem(p, len, "//", 2))
				return false;
			found.point = (struct topic_slice){ p, len };
			break;
		}
		/* Step past the separator; a topic that ends here leaves p == end + 1. */
		p += len + 1;
	}
	if (p <= end)
		return false; /* topic has more levels */
	if (r->tenant)
		found.tenant = (struct topic_slice){ r->tenant, strlen(r->tenant) };
	if (r->serial)
		found.serial = (struct topic_slice){ r->serial, strlen(r->serial) };
	found.alias_scope = r->alias_scope ? r->alias_scope : "";
	*m = found;
	return true;
}

bool route_ignores(const struct route *r, const char *topic, size_t len)
{
	for (size_t i = 0; i < r->ignore_count; i++)
		if (topic_matches(r->ignore[i], topic, len))
			return true;
	return false;
}

void route_add_ignore(struct route *r, const char *filter)
{
	r->ignore = xrealloc(r->ignore, (r->ignore_count + 1) * sizeof(*r->ignore));
	r->ignore[r->ignore_count++] = xstrdup(filter);
}

#define MAX_FILTER_LEVELS 64

/* Splits a filter into its levels (pointers and lengths into it); the count, or 0 when it has too many. */
static size_t split_levels(const char *f, const char *level[MAX_FILTER_LEVELS], size_t len[MAX_FILTER_LEVELS])
{
	size_t n = 0;

	for (;;) {
		size_t k = strcspn(f, "/");
		if (n == MAX_FILTER_LEVELS)
			return 0;
		level[n] = f;
		len[n++] = k;
		if (f[k] == '\0')
			return n;
		f += k + 1;
	}
}

static bool is_wild(const char *level, size_t len, char c)
{
	return len == 1 && level[0] == c;
}

/* Appends a level to the example topic (bounded; a too-long example is cut, never overflowed). */
static void append_example(char *example, size_t cap, size_t *used, const char *text, size_t n)
{
	if (*used + n + 2 > cap)
		return;
	if (*used > 0)
		example[(*used)++] = '/';
	memcpy(example + *used, text, n);
	*used += n;
	example[*used] = '\0';
}

/* The example's level for filter levels that both match: a literal if either has one, else "x". */
static void example_level(char *example, size_t cap, size_t *used, const char *level, size_t len)
{
	if (is_wild(level, len, '+') || is_wild(level, len, '#'))
		append_example(example, cap, used, "x", 1);
	else
		append_example(example, cap, used, level, len);
}

bool route_filters_overlap(const char *a, const char *b, char *example, size_t cap)
{
	const char *la[MAX_FILTER_LEVELS], *lb[MAX_FILTER_LEVELS];
	size_t na[MAX_FILTER_LEVELS], nb[MAX_FILTER_LEVELS];
	size_t ca = split_levels(a, la, na), cb = split_levels(b, lb, nb), used = 0, i;

	if (cap > 0)
		example[0] = '\0';
	if (ca == 0 || cb == 0)
		return false;
	for (i = 0; i < ca && i < cb; i++) {
		bool a_hash = is_wild(la[i], na[i], '#'), b_hash = is_wild(lb[i], nb[i], '#');
		if (a_hash || b_hash) {
			/* The other filter's remaining levels make the example ("x" for its own wildcards). */
			const char *const *rest = a_hash ? lb : la;
			const size_t *rest_len = a_hash ? nb : na;
			size_t rest_count = a_hash ? cb : ca;
			for (size_t k = i; k < rest_count; k++)
				if (!is_wild(rest[k], rest_len[k], '#'))
					example_level(example, cap, &used, rest[k], rest_len[k]);
			if (used == 0)
				append_example(example, cap, &used, "x", 1);
			return true;
		}
		if (is_wild(la[i], na[i], '+'))
			example_level(example, cap, &used, lb[i], nb[i]);
		else if (is_wild(lb[i], nb[i], '+') || (na[i] == nb[i] && memcmp(la[i], lb[i], na[i]) == 0))
			example_level(example, cap, &used, la[i], na[i]);
		else
			return false;
	}
	if (ca == cb)
		return true;
	/* One filter is longer: only its "#" right after the shorter one's end still matches ("a/#" takes "a"). */
	return (ca == cb + 1 && is_wild(la[cb], na[cb], '#')) ||
	       (cb == ca + 1 && is_wild(lb[ca], nb[ca], '#'));
}

int route_owner(const struct route *routes, size_t count, const char *topic, size_t len)
{
	for (size_t i = 0; i < count; i++)
		if (topic_matches(routes[i].filter, topic, len))
			return (int)i;
	return -1;
}

void route_list_add(char ***list, size_t *count, const char *text)
{
	*list = xrealloc(*list, (*count + 1) * sizeof(**list));
	(*list)[(*count)++] = xstrdup(text);
}

static bool same(const char *a, const char *b)
{
	return (a == NULL) == (b == NULL) && (!a || strcmp(a, b) == 0);
}

bool route_equal(const struct route *a, const struct route *b)
{
	if (strcmp(a->template_text, b->template_text) != 0 || a->format != b->format ||
	    !same(a->tenant, b->tenant) || !same(a->serial, b->serial) ||
	    a->ignore_retained != b->ignore_retained || a->retained_timestamped != b->retained_timestamped ||
	    a->ignore_count != b->ignore_count)
		return false;
	for (size_t i = 0; i < a->ignore_count; i++)
		if (strcmp(a->ignore[i], b->ignore[i]) != 0)
			return false;
	return payload_options_equal(&a->payload, &b->payload) && same(a->alias_scope, b->alias_scope);
}

const struct route *route_select(const struct route *routes, size_t count, const char *topic, size_t len,
				 struct route_match *m, bool *ignored)
{
	*ignored = false;
	for (size_t i = 0; i < count; i++) {
		const struct route *r = &routes[i];
		if (r->ignore_count > 0 && topic_matches(r->filter, topic, len) &&
		    route_ignores(r, topic, len)) {
			*ignored = true;
			return NULL;
		}
		if (route_match(r, topic, len, m))
			return r;
	}
	return NULL;
}
