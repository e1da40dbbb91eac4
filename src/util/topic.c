// SPDX-License-Identifier: Apache-2.0
/*
 * topic: MQTT topic filter validation, matching and the template-to-filter rule (see topic.h). Before this
 * file the same rules lived three times: route.c matched subscriptions and ignore filters, config.c checked
 * ignore and point filters, acl.c checked and matched ACL topics.
 */
#include "util/topic.h"

#include <string.h>

#include "util/xalloc.h"

bool topic_filter_valid(const char *filter)
{
	size_t len = 0;
	char prev = '\0';

	if (!filter || !filter[0])
		return false;
	for (const char *s = filter; *s; s++, len++) {
		bool level_start = prev == '\0' || prev == '/', level_end = s[1] == '\0' || s[1] == '/';

		if (*s == '+' && !(level_start && level_end))
			return false;
		if (*s == '#' && !(level_start && s[1] == '\0'))
			return false;
		prev = *s;
	}
	return len <= TOPIC_MAX_LEN;
}

bool topic_level_plain(const char *text)
{
	return !strpbrk(text, "/+#");
}

bool topic_matches(const char *filter, const char *topic, size_t len)
{
	const char *t = topic, *end = topic + len;

	/* '#' also matches the parent level; wildcards never match a leading '$'. */
	if (len > 0 && topic[0] == '$' && (filter[0] == '+' || filter[0] == '#'))
		return false;
	for (;;) {
		const char *slash = strchr(filter, '/');
		size_t flen = slash ? (size_t)(slash - filter) : strlen(filter);
		const char *tslash = t <= end ? memchr(t, '/', (size_t)(end - t)) : NULL;
		size_t tlen;

		if (flen == 1 && filter[0] == '#')
			return true;
		if (t > end)
			return false; /* topic has fewer levels */
		tlen = tslash ? (size_t)(tslash - t) : (size_t)(end - t);
		if (!(flen == 1 && filter[0] == '+') && (flen != tlen || memcmp(filter, t, tlen) != 0))
			return false;
		t += tlen + 1;
		if (!slash)
			return t > end;
		filter = slash + 1;
		if (t > end && strcmp(filter, "#") == 0)
			return true; /* "a/#" matches "a" */
	}
}

char *topic_filter_from_template(const char *text)
{
	char *out = xmalloc(strlen(text) + 1), *o = out;

	while (*text) {
		const char *slash = strchr(text, '/');
		size_t len = slash ? (size_t)(slash - text) : strlen(text);

		if (len >= 2 && text[0] == '{' && text[len - 1] == '}')
			*o++ = len == 8 && strncmp(text, "{point+}", 8) == 0 ? '#' : '+';
		else {
			memcpy(o, text, len);
			o += len;
		}
		if (!slash)
			break;
		*o++ = '/';
		text = slash + 1;
	}
	*o = '\0';
	return out;
}
