// SPDX-License-Identifier: Apache-2.0
/*
 * route: topic templates, the derived subscription filters, and matching a received topic to a route.
 * Pure and allocation-free on the matching path: it runs once per message on Paho's thread.
 */
#include "route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

bool route_format_parse(const char *name, enum route_format *out)
{
	if (strcmp(name, "json") == 0) {
		*out = ROUTE_FORMAT_JSON;
		return true;
	}
	return false;
}

const char *route_format_name(enum route_format format)
{
	switch (format) {
	case ROUTE_FORMAT_JSON:
		return "json";
	}
	return "unknown";
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
	if (len == 1 && text[0] == '+') {
		level->kind = ROUTE_LEVEL_ANY;
		return true;
	}
	if (memchr(text, '{', len) || memchr(text, '}', len)) {
		snprintf(err, errlen, "unknown placeholder in level '%.*s' (known: {tenant}, {serial})", (int)len,
			 text);
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

static char *derive_filter(const struct route *r)
{
	size_t cap = strlen(r->template_text) + 1, len = 0;
	char *filter = xmalloc(cap);

	for (size_t i = 0; i < r->level_count; i++) {
		const char *piece = r->levels[i].kind == ROUTE_LEVEL_LITERAL ? r->levels[i].literal : "+";
		size_t n = strlen(piece);
		if (i > 0)
			filter[len++] = '/';
		memcpy(filter + len, piece, n);
		len += n;
	}
	filter[len] = '\0';
	return filter;
}

bool route_parse(const char *template_text, enum route_format format, struct route *out, char *err,
		 size_t errlen)
{
	struct route r = {0};
	const char *p = template_text;
	int tenants = 0, serials = 0;

	if (*template_text == '\0') {
		snprintf(err, errlen, "empty topic template");
		return false;
	}
	r.template_text = xstrdup(template_text);
	r.format = format;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		struct route_level level = {0};

		if (!parse_level(p, len, &level, err, errlen))
			goto fail;
		tenants += level.kind == ROUTE_LEVEL_TENANT;
		serials += level.kind == ROUTE_LEVEL_SERIAL;
		r.levels = xrealloc(r.levels, (r.level_count + 1) * sizeof(*r.levels));
		r.levels[r.level_count++] = level;
		if (!slash)
			break;
		p = slash + 1;
	}
	if (tenants != 1 || serials != 1) {
		snprintf(err, errlen, "template '%s' needs exactly one {tenant} and one {serial}", template_text);
		goto fail;
	}
	r.filter = derive_filter(&r);
	*out = r;
	return true;
fail:
	route_clear(&r);
	return false;
}

bool route_match(const struct route *r, const char *topic, size_t topic_len, struct route_match *m)
{
	const char *p = topic, *end = topic + topic_len;
	struct route_match found = {{0}, {0}};

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
			found.tenant = (struct topic_slice){p, len};
			break;
		case ROUTE_LEVEL_SERIAL:
			if (len == 0)
				return false;
			found.serial = (struct topic_slice){p, len};
			break;
		case ROUTE_LEVEL_ANY:
			break;
		}
		/* Step past the separator; a topic that ends here leaves p == end + 1. */
		p += len + 1;
	}
	if (p <= end)
		return false; /* topic has more levels */
	*m = found;
	return true;
}
