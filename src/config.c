// SPDX-License-Identifier: Apache-2.0
/*
 * config: reads the libconfig file into a struct config, checking every key's type and range and
 * refusing keys it does not know (a typo must not silently fall back to a default). Errors accumulate so
 * that `mqtt2pg check-config` can list them all at once, each with its line.
 *
 * Every scalar key is one row of the key table below (PgBouncer's CF_ABS table in its config loader): type,
 * range, default, where it lands in struct config, and whether a SIGHUP can apply it. Defaults, reading,
 * unknown-key detection and reload's diff (config_diff) all walk that table; routes, whose groups depend on
 * their format, and the rules that span keys stay code.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "payload/decode.h"
#include "payload/preset.h"
#include "util/secret.h"
#include "util/topic.h"
#include "util/tz.h"
#include "util/xalloc.h"

/* The reader's state while one file is loaded. */
struct config_reader {
	const char *file;
	char *errors;
	size_t errlen;
	int error_count;
};

static void reader_error(struct config_reader *rd, const config_setting_t *at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void reader_error(struct config_reader *rd, const config_setting_t *at, const char *fmt, ...)
{
	size_t used = strlen(rd->errors);
	va_list ap;
	int n;

	rd->error_count++;
	if (used + 1 >= rd->errlen)
		return;
	if (at && config_setting_source_line(at) > 0)
		n = snprintf(rd->errors + used, rd->errlen - used, "%s:%d: ", rd->file,
			     config_setting_source_line(at));
	else
		n = snprintf(rd->errors + used, rd->errlen - used, "%s: ", rd->file);
	if (n < 0 || (size_t)n >= rd->errlen - used)
		return;
	used += (size_t)n;
	va_start(ap, fmt);
	n = vsnprintf(rd->errors + used, rd->errlen - used, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= rd->errlen - used)
		return;
	used += (size_t)n;
	if (used + 1 < rd->errlen) {
		rd->errors[used] = '\n';
		rd->errors[used + 1] = '\0';
	}
}

static void read_string(struct config_reader *rd, const config_setting_t *group, const char *name, char **dst)
{
	const config_setting_t *s = group ? config_setting_get_member(group, name) : NULL;

	if (!s)
		return;
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		reader_error(rd, s, "'%s' must be a string", name);
		return;
	}
	free(*dst);
	/* An empty string means "not set", which is how a commented default reads in the example file. */
	*dst = *config_setting_get_string(s) ? xstrdup(config_setting_get_string(s)) : NULL;
}

/* Reads an integer setting within [min, max] into *dst; leaves *dst alone (and reports) otherwise. */
static void read_int64(struct config_reader *rd, const config_setting_t *group, const char *name,
		       long long *dst, long long min, long long max)
{
	const config_setting_t *s = group ? config_setting_get_member(group, name) : NULL;
	long long v;

	if (!s)
		return;
	if (config_setting_type(s) != CONFIG_TYPE_INT && config_setting_type(s) != CONFIG_TYPE_INT64) {
		reader_error(rd, s, "'%s' must be an integer", name);
		return;
	}
	v = config_setting_get_int64(s);
	if (v < min || v > max) {
		reader_error(rd, s, "'%s' = %lld is out of range [%lld, %lld]", name, v, min, max);
		return;
	}
	*dst = v;
}

static void read_double(struct config_reader *rd, const config_setting_t *group, const char *name,
			double *dst, double min, double max)
{
	const config_setting_t *s = group ? config_setting_get_member(group, name) : NULL;
	double v;

	if (!s)
		return;
	if (config_setting_type(s) == CONFIG_TYPE_FLOAT)
		v = config_setting_get_float(s);
	else if (config_setting_type(s) == CONFIG_TYPE_INT || config_setting_type(s) == CONFIG_TYPE_INT64)
		v = (double)config_setting_get_int64(s);
	else {
		reader_error(rd, s, "'%s' must be a number", name);
		return;
	}
	if (!(v >= min && v <= max)) {
		reader_error(rd, s, "'%s' = %g is out of range [%g, %g]", name, v, min, max);
		return;
	}
	*dst = v;
}

static void read_bool(struct config_reader *rd, const config_setting_t *group, const char *name, bool *dst)
{
	const config_setting_t *s = group ? config_setting_get_member(group, name) : NULL;

	if (!s)
		return;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
		reader_error(rd, s, "'%s' must be true or false", name);
		return;
	}
	*dst = config_setting_get_bool(s);
}

static void blank(char *from, const char *to)
{
	for (; from < to; from++)
		*from = '*';
}

/* "postgresql://user:password@host/db?password=...": the password of the user info and of the query. */
static bool hide_uri_password(char *uri)
{
	char *rest = strstr(uri, "://") + 3;
	char *end = rest + strcspn(rest, "/?");
	char *at = memchr(rest, '@', (size_t)(end - rest)), *colon;
	bool found = false;

	if (at && (colon = memchr(rest, ':', (size_t)(at - rest))) != NULL) {
		blank(colon + 1, at);
		found = true;
	}
	for (char *p = strchr(end, '?'); p; p = strchr(p, '&')) {
		p++;
		if (strncmp(p, "password=", 9) == 0) {
			blank(p + 9, p + 9 + strcspn(p + 9, "&"));
			found = true;
		}
	}
	return found;
}

/* The end of a key=value conninfo value at v: quoted ('...' with backslash escapes) or up to a space. */
static char *conninfo_value_end(char *v)
{
	if (*v == '\'') {
		for (v++; *v && *v != '\''; v++)
			if (*v == '\\' && v[1])
				v++;
		return *v ? v + 1 : v;
	}
	for (; *v && !isspace((unsigned char)*v); v++)
		if (*v == '\\' && v[1])
			v++;
	return v;
}

bool config_conninfo_hide_password(char *conninfo)
{
	char *p = conninfo;
	bool found = false;

	if (strncmp(conninfo, "postgresql://", 13) == 0 || strncmp(conninfo, "postgres://", 11) == 0)
		return hide_uri_password(conninfo);
	while (*p) {
		char *key, *value;
		size_t key_len;

		while (isspace((unsigned char)*p))
			p++;
		key = p;
		while (*p && *p != '=' && !isspace((unsigned char)*p))
			p++;
		key_len = (size_t)(p - key);
		while (isspace((unsigned char)*p))
			p++;
		if (*p != '=')
			break; /* not a conninfo libpq would accept either: leave it */
		p++;
		while (isspace((unsigned char)*p))
			p++;
		value = p;
		p = conninfo_value_end(value);
		if (key_len == 8 && strncmp(key, "password", 8) == 0) {
			bool quoted = *value == '\'';
			blank(value + quoted, p - (quoted && p > value + 1 && p[-1] == '\'' ? 1 : 0));
			found = true;
		}
	}
	return found;
}

/* Reads a secret file named by a setting into *dst, or reports why it cannot. */
static char *read_secret_file(struct config_reader *rd, const config_setting_t *at, const char *path)
{
	char err[512];
	char *secret = NULL;

	if (secret_read_file(path, &secret, err, sizeof(err)) != 0)
		reader_error(rd, at, "%s", err);
	return secret;
}

/* Frees a string that may hold a secret, wiping it first: a freed block may be handed out again. */
static void free_secret(char *secret)
{
	if (secret)
		explicit_bzero(secret, strlen(secret));
	free(secret);
}

static void override_from_env(const char *env_name, char **dst)
{
	const char *env = env_name ? getenv(env_name) : NULL;

	if (env && *env) {
		free(*dst);
		*dst = xstrdup(env);
	}
}

/*
 * The client id may be a template, so that one configuration serves every replica: "{hostname}" becomes the
 * host name (in Kubernetes the pod name, stable for a StatefulSet's pods, so each keeps its broker session).
 */
static void expand_client_id(struct config_reader *rd, const config_setting_t *g, char **client_id)
{
	static const char placeholder[] = "{hostname}";
	char host[256] = "";
	char expanded[512];
	size_t out = 0;

	if (!strchr(*client_id, '{'))
		return;
	if (gethostname(host, sizeof(host) - 1) < 0) {
		reader_error(rd, g, "mqtt.client_id uses {hostname}, but the host name is unknown: %s",
			     strerror(errno));
		return;
	}
	for (const char *p = *client_id; *p;) {
		const char *part = p;
		size_t len = 1;
		if (strncmp(p, placeholder, sizeof(placeholder) - 1) == 0) {
			part = host;
			len = strlen(host);
			p += sizeof(placeholder) - 1;
		} else if (*p == '{' || *p == '}') {
			reader_error(rd, g, "mqtt.client_id '%s': the only placeholder is {hostname}",
				     *client_id);
			return;
		} else {
			p++;
		}
		if (out + len >= sizeof(expanded)) {
			reader_error(rd, g, "mqtt.client_id is too long once expanded");
			return;
		}
		memcpy(expanded + out, part, len);
		out += len;
	}
	expanded[out] = '\0';
	free(*client_id);
	*client_id = xstrdup(expanded);
}

/* The TLS private key is read by Paho, not by us, and is held to the same rule as the secrets we read. A key
 * that cannot be opened is left to Paho, which says so at connect. */
static void check_key_file(struct config_reader *rd, const config_setting_t *group, const char *path)
{
	char err[512];
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0)
		return;
	if (secret_check_fd(fd, path, err, sizeof(err)) != 0)
		reader_error(rd, config_setting_get_member(group, "key_file"), "mqtt.key_file: %s", err);
	close(fd);
}

/* Reads a string key of a route that must be one of names[] (NULL-terminated); returns its index or -1. */
static int read_choice(struct config_reader *rd, const config_setting_t *item, int index, const char *key,
		       const char *const *names, const char *expect)
{
	char *value = NULL;
	int found = -1;

	read_string(rd, item, key, &value);
	if (!value)
		return -1;
	for (int i = 0; names[i]; i++)
		if (strcmp(value, names[i]) == 0)
			found = i;
	if (found < 0)
		reader_error(rd, config_setting_get_member(item, key), "routes[%d]: %s must be %s", index,
			     key, expect);
	free(value);
	return found;
}

/* A dotted JSON path ("meta.ts") whose steps are 1..PAYLOAD_MAX_PATH_STEP bytes; NULL (not set) passes. */
static void check_json_path(struct config_reader *rd, const config_setting_t *item, int i, const char *key,
			    const char *path)
{
	for (const char *p = path; p && *p;) {
		size_t n = strcspn(p, ".");
		if (n == 0 || n > PAYLOAD_MAX_PATH_STEP || (p[n] == '.' && p[n + 1] == '\0')) {
			const config_setting_t *at = config_setting_get_member(item, key);
			reader_error(
				rd, at ? at : item,
				"routes[%d]: %s '%.40s%s': each '.'-separated step must be 1 to %d bytes", i,
				key, path, strlen(path) > 40 ? "..." : "", PAYLOAD_MAX_PATH_STEP);
			return;
		}
		p += n + (p[n] == '.');
	}
}

/*
 * The prefix a preset's ignore filters hang under. An explicit prefix wins; else, when the route overrides
 * the topic, the part of it before the preset's own tail ("home/solar" for opendtu's topic
 * "home/solar/{serial}/{point+}"), so the status topics next to the readings stay ignored. NULL when the
 * overridden topic does not end in the preset's tail: then nothing tells where its status topics are.
 */
static const char *preset_ignore_prefix(const struct preset *preset, const char *prefix, const char *topic,
					char *buf, size_t buflen)
{
	const char *tail = preset->topic + strlen("{prefix}");
	size_t tlen = strlen(tail), len = topic ? strlen(topic) : 0;

	if (prefix)
		return prefix;
	if (!topic)
		return preset->prefix;
	if (len <= tlen || strcmp(topic + len - tlen, tail) != 0 || len - tlen >= buflen)
		return NULL;
	memcpy(buf, topic, len - tlen);
	buf[len - tlen] = '\0';
	return buf;
}

/* A list of strings (["a", "b"]) appended to *list; check (may be NULL) vets each element. */
static void read_string_list(struct config_reader *rd, const config_setting_t *item, int i, const char *key,
			     bool (*check)(const char *), char ***list, size_t *count)
{
	const config_setting_t *l = config_setting_get_member(item, key);

	if (!l)
		return;
	if (!config_setting_is_array(l) && !config_setting_is_list(l)) {
		reader_error(rd, l, "routes[%d]: %s must be a list of strings: [\"a\", \"b\"]", i, key);
		return;
	}
	for (int k = 0; k < config_setting_length(l); k++) {
		const config_setting_t *e = config_setting_get_elem(l, (unsigned)k);
		const char *text =
			config_setting_type(e) == CONFIG_TYPE_STRING ? config_setting_get_string(e) : NULL;
		if (!text || !*text || (check && !check(text)))
			reader_error(rd, e, "routes[%d]: %s[%d] is not valid here", i, key, k);
		else
			route_list_add(list, count, text);
	}
}

static bool point_filter_ok(const char *f)
{
	return topic_filter_valid(f) && strlen(f) <= 256;
}

/* points_map = ( ["source key", "point"], ... ): the source may be any text, the point must be a point name. */
static void read_points_map(struct config_reader *rd, const config_setting_t *item, int i, struct route *r)
{
	const config_setting_t *l = config_setting_get_member(item, "points_map");

	if (!l)
		return;
	if (!config_setting_is_list(l) && !config_setting_is_array(l)) {
		reader_error(rd, l,
			     "routes[%d]: points_map must be a list of pairs: ( [\"key\", \"point\"] )", i);
		return;
	}
	for (int k = 0; k < config_setting_length(l); k++) {
		const config_setting_t *pair = config_setting_get_elem(l, (unsigned)k);
		const char *from = config_setting_get_string_elem(pair, 0),
			   *to = config_setting_get_string_elem(pair, 1);
		if (!config_setting_is_array(pair) || config_setting_length(pair) != 2 || !from || !to ||
		    !*from || strlen(from) > 255) {
			reader_error(rd, pair, "routes[%d]: points_map[%d] must be [\"key\", \"point\"]", i,
				     k);
			continue;
		}
		if (!decode_point_name_ok(to)) {
			reader_error(
				rd, pair,
				"routes[%d]: points_map[%d]: '%s' is not a point name (1-64 of A-Z a-z 0-9 _ . : / -)",
				i, k, to);
			continue;
		}
		r->payload.points_map =
			xrealloc(r->payload.points_map,
				 (r->payload.points_map_count + 1) * 2 * sizeof(*r->payload.points_map));
		r->payload.points_map[2 * r->payload.points_map_count] = xstrdup(from);
		r->payload.points_map[2 * r->payload.points_map_count + 1] = xstrdup(to);
		r->payload.points_map_count++;
	}
}

/* The route keys that decide which values become readings (README "Devices"). */
static void read_route_values(struct config_reader *rd, const config_setting_t *item, int i, struct route *r)
{
	read_bool(rd, item, "numeric_strings", &r->payload.numeric_strings);
	read_bool(rd, item, "booleans", &r->payload.booleans);
	read_points_map(rd, item, i, r);
	read_string_list(rd, item, i, "ignore_points", point_filter_ok, &r->payload.ignore_points,
			 &r->payload.ignore_points_count);
	read_string_list(rd, item, i, "points", point_filter_ok, &r->payload.points,
			 &r->payload.points_count);
	read_string_list(rd, item, i, "measurements", NULL, &r->payload.measurements,
			 &r->payload.measurements_count);
	read_string(rd, item, "alias_scope", &r->alias_scope);
}

/* The options of one route beyond topic and format, over the preset's defaults. prefix is where the preset's
 * ignore filters hang (preset_ignore_prefix), NULL when the route's topic does not tell. */
static void read_route_options(struct config_reader *rd, const config_setting_t *item, int i,
			       const struct preset *preset, const char *prefix, struct route *r)
{
	static const char *const retained_names[] = { "accept", "ignore", "timestamped", NULL };
	static const char *const units[] = { "s", "ms", "us", "ns", "rfc3339", NULL };
	static const char *const lp_keys[] = { "serial_tag", "point", "precision", "strings", NULL };
	const config_setting_t *ignore = config_setting_get_member(item, "ignore");
	bool ignore_replace = false, ignore_points_replace = false;
	char *zone = NULL, err[256];
	int choice;

	read_bool(rd, item, "ignore_replace", &ignore_replace);
	read_bool(rd, item, "ignore_points_replace", &ignore_points_replace);
	if (ignore_replace && !ignore)
		reader_error(rd, item, "routes[%d]: ignore_replace needs the route's own ignore = [...]", i);

	read_string(rd, item, "tenant", &r->tenant);
	read_string(rd, item, "serial", &r->serial);
	read_string(rd, item, "json_root", &r->payload.json_root);
	if (preset) {
		r->ignore_retained = preset->ignore_retained;
		r->retained_timestamped = !preset->ignore_retained;
		r->payload.ignore_non_numeric = preset->ignore_non_numeric;
		if (!prefix && preset->ignore[0] && !ignore && !ignore_replace)
			reader_error(
				rd, config_setting_get_member(item, "topic"),
				"routes[%d]: topic does not end like preset %s's (\"%s\"), so its ignore filters "
				"cannot follow it: set prefix = \"...\" or the route's own ignore = [...]",
				i, preset->name, preset->topic);
		for (const char *const *f = preset->ignore; prefix && !ignore_replace && *f; f++) {
			char *expanded = preset_expand(*f, prefix),
			     *filter = topic_filter_from_template(expanded);
			route_add_ignore(r, filter);
			free(filter);
			free(expanded);
		}
		for (const char *const *f = preset->ignore_points; f && !ignore_points_replace && *f; f++)
			route_list_add(&r->payload.ignore_points, &r->payload.ignore_points_count, *f);
		if (preset->serial_tag && lp_mapping_set(&r->payload.influx, "serial_tag", preset->serial_tag,
							 err, sizeof(err)) != 0)
			reader_error(rd, item, "routes[%d]: preset serial_tag: %s", i, err);
		if (preset->point &&
		    lp_mapping_set(&r->payload.influx, "point", preset->point, err, sizeof(err)) != 0)
			reader_error(rd, item, "routes[%d]: preset point: %s", i, err);
		if (preset->precision &&
		    lp_mapping_set(&r->payload.influx, "precision", preset->precision, err, sizeof(err)) != 0)
			reader_error(rd, item, "routes[%d]: preset precision: %s", i, err);
		if (preset->time_field) {
			r->payload.time_field = xstrdup(preset->time_field);
			r->payload.time_unit = preset->time_unit;
		}
	}
	if ((choice = read_choice(rd, item, i, "retained", retained_names,
				  "\"timestamped\", \"accept\" or \"ignore\"")) >= 0) {
		r->ignore_retained = choice == 1;
		r->retained_timestamped = choice == 2;
	}
	if ((choice = read_choice(rd, item, i, "non_numeric",
				  (const char *const[]){ "reject", "ignore", NULL },
				  "\"reject\" or \"ignore\"")) >= 0)
		r->payload.ignore_non_numeric = choice == 1;
	for (const char *const *key = lp_keys; *key; key++) {
		char *value = NULL;
		read_string(rd, item, *key, &value);
		if (!value && config_setting_get_member(item, *key) &&
		    config_setting_type(config_setting_get_member(item, *key)) == CONFIG_TYPE_STRING)
			value = xstrdup(""); /* serial_tag = "" clears a preset's tag */
		if (value && lp_mapping_set(&r->payload.influx, *key, value, err, sizeof(err)) != 0)
			reader_error(rd, config_setting_get_member(item, *key), "routes[%d]: %s", i, err);
		free(value);
	}
	if (config_setting_get_member(item, "time_field")) {
		free(r->payload.time_field);
		r->payload.time_field = NULL;
		read_string(rd, item, "time_field", &r->payload.time_field); /* "" = the receive time */
	}
	if ((choice = read_choice(rd, item, i, "time_unit", units,
				  "\"s\", \"ms\", \"us\", \"ns\" or \"rfc3339\"")) >= 0)
		r->payload.time_unit = (enum route_time_unit)choice;
	else if (r->payload.time_field &&
		 !(preset && preset->time_field && strcmp(preset->time_field, r->payload.time_field) == 0) &&
		 !config_setting_get_member(item, "time_unit"))
		reader_error(
			rd, item,
			"routes[%d]: time_field needs time_unit (s, ms, us, ns or rfc3339): never guessed",
			i);
	read_string(rd, item, "timezone", &zone);
	if (zone && tz_load(zone, &r->payload.timezone, err, sizeof(err)) < 0)
		reader_error(rd, config_setting_get_member(item, "timezone"), "routes[%d]: %s", i, err);
	free(zone);
	if (config_setting_get_member(item, "time_unit") && !r->payload.time_field)
		reader_error(rd, config_setting_get_member(item, "time_unit"),
			     "routes[%d]: time_unit needs time_field", i);
	if (config_setting_get_member(item, "timezone") &&
	    (!r->payload.time_field || r->payload.time_unit != ROUTE_TIME_RFC3339))
		reader_error(rd, config_setting_get_member(item, "timezone"),
			     "routes[%d]: timezone applies to a time_field with time_unit = \"rfc3339\"", i);
	check_json_path(rd, item, i, "time_field", r->payload.time_field);
	check_json_path(rd, item, i, "json_root", r->payload.json_root);
	if (ignore) {
		if (!config_setting_is_array(ignore) && !config_setting_is_list(ignore)) {
			reader_error(rd, ignore,
				     "routes[%d]: ignore must be a list of topic filters: [\"a/+/status\"]",
				     i);
		} else {
			for (int k = 0; k < config_setting_length(ignore); k++) {
				const config_setting_t *f = config_setting_get_elem(ignore, (unsigned)k);
				const char *text = config_setting_type(f) == CONFIG_TYPE_STRING ?
							   config_setting_get_string(f) :
							   NULL;
				if (!text || !topic_filter_valid(text))
					reader_error(rd, f,
						     "routes[%d]: ignore[%d] is not an MQTT topic filter", i,
						     k);
				else
					route_add_ignore(r, text);
			}
		}
	}
	read_route_values(rd, item, i, r);
	if (preset && preset->needs_serial && !r->serial)
		reader_error(
			rd, item,
			"routes[%d]: preset %s needs serial = \"...\" (the device is in neither topic nor payload)",
			i, preset->name);
	if (preset && preset->needs_timezone && !r->payload.timezone && r->payload.time_field)
		reader_error(
			rd, item,
			"routes[%d]: preset %s needs timezone = \"Area/City\" (its times carry no zone), or time_field = \"\" "
			"for the receive time",
			i, preset->name);
	if (r->tenant && !topic_level_plain(r->tenant))
		reader_error(rd, item, "routes[%d]: tenant may not contain '/', '+' or '#'", i);
}

/* A key that means nothing for the route's format is a mistake, not something to ignore silently. */
static void check_keys_fit_format(struct config_reader *rd, const config_setting_t *item, int i,
				  enum route_format fmt)
{
#define F(x) (1u << ROUTE_FORMAT_##x)
	static const struct {
		const char *key;
		unsigned formats;
	} fit[] = {
		{ "serial_tag", F(INFLUX) | F(TELEGRAF_JSON) | F(AUTO) },
		{ "point", F(INFLUX) | F(TELEGRAF_JSON) | F(AUTO) },
		{ "precision", F(INFLUX) | F(TELEGRAF_JSON) | F(AUTO) },
		{ "strings", F(INFLUX) | F(TELEGRAF_JSON) | F(AUTO) },
		{ "time_field", F(FLAT_JSON) },
		{ "time_unit", F(FLAT_JSON) },
		{ "timezone", F(FLAT_JSON) },
		{ "json_root", F(FLAT_JSON) },
		{ "non_numeric", F(VALUE) | F(VALUE_JSON) | F(FLAT_JSON) },
		{ "measurements", F(INFLUX) | F(TELEGRAF_JSON) | F(AUTO) },
	};
#undef F
	for (size_t k = 0; k < sizeof(fit) / sizeof(fit[0]); k++)
		if (config_setting_get_member(item, fit[k].key) && !(fit[k].formats & (1u << fmt)))
			reader_error(rd, config_setting_get_member(item, fit[k].key),
				     "routes[%d]: %s does not apply to format %s", i, fit[k].key,
				     route_format_name(fmt));
}

static void read_route(struct config_reader *rd, const config_setting_t *item, int i, struct config *cfg)
{
	static const char *const known[] = { "topic",
					     "format",
					     "preset",
					     "prefix",
					     "tenant",
					     "serial",
					     "retained",
					     "non_numeric",
					     "ignore",
					     "serial_tag",
					     "point",
					     "precision",
					     "strings",
					     "time_field",
					     "time_unit",
					     "timezone",
					     "json_root",
					     "numeric_strings",
					     "booleans",
					     "points_map",
					     "points",
					     "ignore_points",
					     "ignore_points_replace",
					     "ignore_replace",
					     "measurements",
					     "alias_scope",
					     NULL };
	char *topic = NULL, *format = NULL, *preset_name = NULL, *prefix = NULL, err[256], ignore_prefix[256];
	bool topic_set;
	const struct preset *preset = NULL;
	enum route_format fmt = ROUTE_FORMAT_JSON;
	struct route r = { 0 };
	int errors = rd->error_count;

	for (int k = 0; k < config_setting_length(item); k++) {
		const config_setting_t *member = config_setting_get_elem(item, (unsigned)k);
		const char *name = config_setting_name(member);
		bool ok = false;

		for (const char *const *key = known; *key && !ok; key++)
			ok = name && strcmp(name, *key) == 0;
		if (!ok)
			reader_error(rd, member, "routes[%d]: unknown setting '%s'", i, name ? name : "?");
	}
	read_string(rd, item, "topic", &topic);
	topic_set = topic != NULL;
	read_string(rd, item, "format", &format);
	read_string(rd, item, "preset", &preset_name);
	read_string(rd, item, "prefix", &prefix);
	if (preset_name && !(preset = preset_find(preset_name))) {
		reader_error(rd, item, "routes[%d]: unknown preset '%s' (known: %s)", i, preset_name,
			     preset_names());
		goto out;
	}
	if (prefix && !preset)
		reader_error(rd, item, "routes[%d]: prefix is for presets", i);
	if (preset) {
		fmt = preset->format;
		if (!topic)
			topic = preset_expand(preset->topic, prefix ? prefix : preset->prefix);
	}
	if (format && !route_format_parse(format, &fmt)) {
		reader_error(
			rd, item,
			"routes[%d]: unknown format '%s' (known: json, value, value_json, influx, flat_json, shelly_rpc, "
			"telegraf_json, auto)",
			i, format);
		goto out;
	}
	if (!topic) {
		reader_error(rd, item, "routes[%d]: 'topic' is required", i);
		goto out;
	}
	if (!route_parse_template(topic, fmt, &r, err, sizeof(err))) {
		reader_error(rd, item, "routes[%d]: %s", i, err);
		goto out;
	}
	if (preset)
		r.preset = xstrdup(preset->name);
	check_keys_fit_format(rd, item, i, fmt);
	read_route_options(rd, item, i, preset,
			   preset ? preset_ignore_prefix(preset, prefix, topic_set ? topic : NULL,
							 ignore_prefix, sizeof(ignore_prefix)) :
				    "",
			   &r);
	if (rd->error_count == errors && !route_check(&r, err, sizeof(err)))
		reader_error(rd, item, "routes[%d]: %s", i, err);
	if (rd->error_count == errors) {
		cfg->routes[cfg->route_count++] = r;
		memset(&r, 0, sizeof(r));
	}
out:
	route_clear(&r);
	free(topic);
	free(format);
	free(preset_name);
	free(prefix);
}

static void read_routes(struct config_reader *rd, struct config *cfg, const config_setting_t *list)
{
	int count;

	if (!list) {
		cfg->routes = xcalloc(1, sizeof(*cfg->routes));
		char err[256];
		if (route_parse("solar/{tenant}/{serial}/telemetry", ROUTE_FORMAT_JSON, &cfg->routes[0], err,
				sizeof(err)))
			cfg->route_count = 1;
		return;
	}
	if (!config_setting_is_list(list)) {
		reader_error(
			rd, list,
			"'routes' must be a list: routes = ( { topic = \"...\"; format = \"json\"; } );");
		return;
	}
	count = config_setting_length(list);
	if (count == 0)
		reader_error(rd, list, "'routes' is empty: nothing would be subscribed");
	cfg->routes = xcalloc((size_t)count + 1, sizeof(*cfg->routes));
	for (int i = 0; i < count; i++) {
		const config_setting_t *item = config_setting_get_elem(list, (unsigned)i);

		if (!config_setting_is_group(item)) {
			reader_error(rd, item, "routes[%d] must be a group { topic = ...; format = ...; }",
				     i);
			continue;
		}
		read_route(rd, item, i, cfg);
	}
}

/*
 * The key table. One row per key: adding a key is adding a row (and its field in config.h, its line in
 * conf/mqtt2pg.conf). reloadable says whether a SIGHUP applies it (bridge.c's reload) or reports it
 * "restart required". ROW checks at compile time that the field has the type the row's kind stores.
 */
#define FIELD_IS(field, T)                                                                              \
	(offsetof(struct config, field) +                                                               \
	 0 * sizeof(char[__builtin_types_compatible_p(__typeof__(((struct config *)0)->field), T) ? 1 : \
												    -1]))
#define ENUM_FIELD(field)                 \
	(offsetof(struct config, field) + \
	 0 * sizeof(char[sizeof(((struct config *)0)->field) == sizeof(int) ? 1 : -1]))
#define APPLIES true
#define RESTART false
#define INT(sec, key, field, lo, hi, dflt, reload)                                                   \
	{                                                                                            \
		.section = sec, .name = key, .type = CONFIG_KEY_INT, .offset = FIELD_IS(field, int), \
		.reloadable = reload, .min = lo, .max = hi, .def = dflt                              \
	}
#define INT64(sec, key, field, lo, hi, dflt, reload)                                                         \
	{                                                                                                    \
		.section = sec, .name = key, .type = CONFIG_KEY_INT64, .offset = FIELD_IS(field, long long), \
		.reloadable = reload, .min = lo, .max = hi, .def = dflt                                      \
	}
#define DOUBLE(sec, key, field, lo, hi, dflt, reload)                                                      \
	{                                                                                                  \
		.section = sec, .name = key, .type = CONFIG_KEY_DOUBLE, .offset = FIELD_IS(field, double), \
		.reloadable = reload, .dmin = lo, .dmax = hi, .ddef = dflt                                 \
	}
#define BOOL(sec, key, field, dflt, reload)                                                            \
	{                                                                                              \
		.section = sec, .name = key, .type = CONFIG_KEY_BOOL, .offset = FIELD_IS(field, bool), \
		.reloadable = reload, .def = dflt                                                      \
	}
#define STRING(sec, key, field, dflt, environment, reload)                                                 \
	{                                                                                                  \
		.section = sec, .name = key, .type = CONFIG_KEY_STRING, .offset = FIELD_IS(field, char *), \
		.reloadable = reload, .sdef = dflt, .env = environment                                     \
	}
#define CHOICE(sec, key, field, choices, text, dflt, reload)                                         \
	{                                                                                            \
		.section = sec, .name = key, .type = CONFIG_KEY_CHOICE, .offset = ENUM_FIELD(field), \
		.reloadable = reload, .words = choices, .expect = text, .def = dflt                  \
	}
#define CHOICE_BOOL(sec, key, field, choices, text, dflt, reload)                                        \
	{                                                                                                \
		.section = sec, .name = key, .type = CONFIG_KEY_CHOICE_BOOL,                             \
		.offset = FIELD_IS(field, bool), .reloadable = reload, .words = choices, .expect = text, \
		.def = dflt                                                                              \
	}
#define SECRET_FILE(sec, key, path_field, secret_field, environment, rereads)        \
	{                                                                            \
		.section = sec, .name = key, .type = CONFIG_KEY_SECRET_FILE,         \
		.offset = FIELD_IS(path_field, char *), .reloadable = RESTART,       \
		.secret_offset = FIELD_IS(secret_field, char *), .env = environment, \
		.secret_rereads = rereads                                            \
	}

static const char *const unknown_point_words[] = { "reject", "drop", "register", NULL };
static const char *const log_level_words[] = { "error", "warn", "info", "debug", NULL };
static const char *const log_format_words[] = { "text", "json", NULL };
static const char *const spool_mode_words[] = { "memory", "disk", NULL };

/* clang-format off */
static const struct config_key keys[] = {
	/* The MQTT client is made once, with all of these. */
	STRING("mqtt", "uri", mqtt.uri, "tcp://127.0.0.1:1883", "MQTT2PG_MQTT_URI", RESTART),
	STRING("mqtt", "client_id", mqtt.client_id, "mqtt2pg", "MQTT2PG_CLIENT_ID", RESTART),
	STRING("mqtt", "username", mqtt.username, NULL, NULL, RESTART),
	SECRET_FILE("mqtt", "password_file", mqtt.password_file, mqtt.password, "MQTT2PG_MQTT_PASSWORD", false),
	INT("mqtt", "version", mqtt.version, 4, 5, 5, RESTART),
	INT("mqtt", "qos", mqtt.qos, 0, 2, 1, RESTART),
	BOOL("mqtt", "clean_session", mqtt.clean_session, false, RESTART),
	INT("mqtt", "session_expiry", mqtt.session_expiry, 0, 0x7fffffff, 7 * 86400, RESTART),
	INT("mqtt", "receive_maximum", mqtt.receive_maximum, 1, 65535, 1000, RESTART),
	INT("mqtt", "keepalive", mqtt.keepalive, 5, 65535, 60, RESTART),
	INT("mqtt", "connect_timeout", mqtt.connect_timeout, 1, 600, 10, RESTART),
	INT("mqtt", "reconnect_min", mqtt.reconnect_min, 1, 3600, 1, RESTART),
	INT("mqtt", "reconnect_max", mqtt.reconnect_max, 1, 3600, 30, RESTART),
	STRING("mqtt", "shared_group", mqtt.shared_group, NULL, NULL, RESTART),
	STRING("mqtt", "ca_file", mqtt.ca_file, NULL, NULL, RESTART),
	STRING("mqtt", "cert_file", mqtt.cert_file, NULL, NULL, RESTART),
	STRING("mqtt", "key_file", mqtt.key_file, NULL, NULL, RESTART),
	BOOL("mqtt", "tls_verify", mqtt.tls_verify, true, RESTART),
	/* The writers start with these. The password file's contents are re-read at SIGHUP (db_secret). */
	STRING("database", "conninfo", database.conninfo, "host=127.0.0.1 dbname=mqtt2pg user=mqtt2pg_writer",
	       "MQTT2PG_DB_CONNINFO", RESTART),
	SECRET_FILE("database", "password_file", database.password_file, database.password, "MQTT2PG_DB_PASSWORD",
		    true),
	/* Only the admin commands use it, and each reads the file: nothing of the running bridge has to change. */
	STRING("database", "admin_conninfo", database.admin_conninfo, NULL, "MQTT2PG_ADMIN_CONNINFO", APPLIES),
	INT("database", "writers", database.writers, 1, 64, 2, RESTART),
	INT("database", "batch_rows", database.batch_rows, 1, 100000, 2000, RESTART),
	INT("database", "flush_interval_ms", database.flush_interval_ms, 1, 60000, 100, RESTART),
	INT("database", "linger_ms", database.linger_ms, 0, 60000, 10, RESTART),
	INT("database", "queue_messages", database.queue_messages, 16, 10000000, 50000, RESTART),
	INT("database", "enqueue_timeout_ms", database.enqueue_timeout_ms, 1, 60000, 20000, RESTART),
	INT("database", "reconnect_max_ms", database.reconnect_max_ms, 100, 600000, 10000, RESTART),
	/* The policy handed to ingest at SIGHUP; the rate limiters, the writers' point cap and the scheduler's
	 * retention are made at start. */
	INT("validation", "max_payload_bytes", validation.max_payload_bytes, 16, 64 * 1024 * 1024, 65536, APPLIES),
	INT("validation", "max_future_skew", validation.max_future_skew, 0, 0x7fffffff, 300, APPLIES),
	INT("validation", "max_age", validation.max_age, 1, 0x7fffffff, 7 * 86400, APPLIES),
	CHOICE("validation", "unknown_points", validation.unknown_points, unknown_point_words,
	       "\"reject\", \"drop\" or \"register\"", UNKNOWN_POINT_REJECT, APPLIES),
	INT("validation", "max_points_per_device", validation.max_points_per_device, 1, 100000, 256, RESTART),
	INT("validation", "reject_payload_bytes", validation.reject_payload_bytes, 0, 1024 * 1024, 1024, APPLIES),
	DOUBLE("validation", "device_rate", validation.device_rate, 0, 1e9, 0, RESTART),
	DOUBLE("validation", "device_burst", validation.device_burst, 1, 1e9, 100, RESTART),
	DOUBLE("validation", "tenant_rate", validation.tenant_rate, 0, 1e9, 0, RESTART),
	DOUBLE("validation", "tenant_burst", validation.tenant_burst, 1, 1e9, 10000, RESTART),
	INT("validation", "rejected_retention_days", validation.rejected_retention_days, 0, 36500, 30, RESTART),
	{ .name = "routes", .type = CONFIG_KEY_ROUTES, .offset = FIELD_IS(routes, struct route *),
	  .reloadable = RESTART },
	INT(NULL, "stats_interval", stats_interval, 0, 86400, 10, APPLIES),
	INT(NULL, "shutdown_timeout", shutdown_timeout, 1, 86400, 50, APPLIES),
	CHOICE_BOOL("spool", "mode", spool.durable, spool_mode_words, "\"disk\" or \"memory\"", true, RESTART),
	STRING("spool", "directory", spool.directory, "/var/lib/mqtt2pg/spool", NULL, RESTART),
	INT64("spool", "max_bytes", spool.max_bytes, 1024 * 1024, 1LL << 50, 1024LL * 1024 * 1024, RESTART),
	INT64("spool", "segment_bytes", spool.segment_bytes, 64 * 1024, 1LL << 32, 16LL * 1024 * 1024, RESTART),
	INT("spool", "fsync_interval_ms", spool.fsync_interval_ms, 0, 600000, 1000, RESTART),
	/* Loopback unless told otherwise: /metrics tells whoever reaches it about every tenant's traffic. */
	STRING("http", "listen", http_listen, "127.0.0.1", NULL, RESTART),
	INT("http", "port", http_port, 0, 65535, 9108, RESTART),
	INT("http", "max_connections", http_max_connections, 4, 10000, 64, RESTART),
	INT("http", "max_connections_per_client", http_max_connections_per_client, 1, 10000, 8, RESTART),
	INT("http", "timeout", http_timeout, 1, 3600, 10, RESTART),
	SECRET_FILE("http", "metrics_token_file", http_metrics_token_file, http_metrics_token, NULL, false),
	BOOL("aggregates", "enabled", aggregates.enabled, true, RESTART),
	INT("aggregates", "interval", aggregates.interval, 1, 86400, 30, RESTART),
	INT("aggregates", "raw_retention_days", aggregates.raw_retention_days, 0, 36500, 0, RESTART),
	/* at most server_settings.partitions_ahead_max_days (31 by default, sql/009) */
	INT("aggregates", "partitions_ahead_days", aggregates.partitions_ahead_days, 1, 31, 3, RESTART),
	INT("aggregates", "connections", aggregates.connections, 1, 16, 2, RESTART),
	INT("registry", "refresh_interval", registry_refresh_interval, 1, 86400, 60, RESTART),
	CHOICE("log", "level", log_level, log_level_words, "error, warn, info or debug", LOG_LEVEL_INFO, APPLIES),
	CHOICE_BOOL("log", "format", log_json, log_format_words, "\"text\" or \"json\"", false, APPLIES),
};
/* clang-format on */

#define KEY_COUNT (sizeof(keys) / sizeof(keys[0]))

/* The groups, in the order they are read (and their problems reported). */
static const char *const sections[] = { "mqtt",	      "database", "validation", "registry", "log",
					"aggregates", "http",	  "spool",	NULL };

const struct config_key *config_keys(size_t *count)
{
	*count = KEY_COUNT;
	return keys;
}

const char *config_key_dotted(const struct config_key *key, char *buf, size_t buflen)
{
	snprintf(buf, buflen, "%s%s%s", key->section ? key->section : "", key->section ? "." : "", key->name);
	return buf;
}

const struct config_key *config_key_find(const char *dotted)
{
	char name[128];

	for (size_t i = 0; i < KEY_COUNT; i++)
		if (strcmp(config_key_dotted(&keys[i], name, sizeof(name)), dotted) == 0)
			return &keys[i];
	return NULL;
}

static bool same_section(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

static const struct config_key *find_key(const char *section, const char *name)
{
	for (size_t i = 0; name && i < KEY_COUNT; i++)
		if (same_section(keys[i].section, section) && strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static bool is_section(const char *name)
{
	for (const char *const *s = sections; *s; s++)
		if (name && strcmp(name, *s) == 0)
			return true;
	return false;
}

static void *field(struct config *cfg, size_t offset)
{
	return (char *)cfg + offset;
}

/* Reports every member of group (section; NULL: the top level) the table does not know. */
static void check_known_keys(struct config_reader *rd, const config_setting_t *group, const char *section)
{
	int count = config_setting_length(group);

	for (int i = 0; i < count; i++) {
		const config_setting_t *member = config_setting_get_elem(group, (unsigned)i);
		const char *name = config_setting_name(member);

		if (!find_key(section, name) && !(section == NULL && is_section(name)))
			reader_error(rd, member, "unknown setting '%s%s%s'", section ? section : "",
				     section ? "." : "", name ? name : "?");
	}
}

static void set_default(struct config *cfg, const struct config_key *key)
{
	void *dst = field(cfg, key->offset);

	switch (key->type) {
	case CONFIG_KEY_INT:
	case CONFIG_KEY_CHOICE:
		*(int *)dst = (int)key->def;
		break;
	case CONFIG_KEY_INT64:
		*(long long *)dst = key->def;
		break;
	case CONFIG_KEY_DOUBLE:
		*(double *)dst = key->ddef;
		break;
	case CONFIG_KEY_BOOL:
	case CONFIG_KEY_CHOICE_BOOL:
		*(bool *)dst = key->def != 0;
		break;
	case CONFIG_KEY_STRING:
		*(char **)dst = key->sdef ? xstrdup(key->sdef) : NULL;
		break;
	case CONFIG_KEY_SECRET_FILE:
	case CONFIG_KEY_ROUTES:
		break; /* no file, no secret; routes: read_routes' default route */
	}
}

/* Reads a word of key->words; returns its index, or -1 (reported) when it is none of them. */
static int read_word(struct config_reader *rd, const config_setting_t *group, const struct config_key *key)
{
	char *word = NULL;
	int found = -1;

	read_string(rd, group, key->name, &word);
	if (!word)
		return -1;
	for (int i = 0; key->words[i]; i++)
		if (strcmp(word, key->words[i]) == 0)
			found = i;
	if (found < 0)
		reader_error(rd, config_setting_get_member(group, key->name), "%s.%s must be %s",
			     key->section, key->name, key->expect);
	free(word);
	return found;
}

/* A secret file: its contents to secret_offset; the environment variable, when set, wins over the file. */
static void read_secret_key(struct config_reader *rd, const config_setting_t *group,
			    const struct config_key *key, struct config *cfg)
{
	char **path = field(cfg, key->offset), **secret = field(cfg, key->secret_offset);
	const char *env = key->env ? getenv(key->env) : NULL;

	read_string(rd, group, key->name, path);
	if (*path)
		*secret = read_secret_file(rd, config_setting_get_member(group, key->name), *path);
	if (env && *env) {
		free_secret(*secret);
		*secret = xstrdup(env);
		free(*path); /* nothing to re-read */
		*path = NULL;
	}
}

/* Reads one key of group (which may be NULL: only the environment then) into cfg. */
static void read_key(struct config_reader *rd, const config_setting_t *group, const struct config_key *key,
		     struct config *cfg)
{
	void *dst = field(cfg, key->offset);
	long long v;
	int word;

	switch (key->type) {
	case CONFIG_KEY_INT:
		v = *(int *)dst;
		read_int64(rd, group, key->name, &v, key->min, key->max);
		*(int *)dst = (int)v;
		break;
	case CONFIG_KEY_INT64:
		read_int64(rd, group, key->name, dst, key->min, key->max);
		break;
	case CONFIG_KEY_DOUBLE:
		read_double(rd, group, key->name, dst, key->dmin, key->dmax);
		break;
	case CONFIG_KEY_BOOL:
		read_bool(rd, group, key->name, dst);
		break;
	case CONFIG_KEY_STRING:
		read_string(rd, group, key->name, dst);
		override_from_env(key->env, dst);
		break;
	case CONFIG_KEY_CHOICE:
		if ((word = read_word(rd, group, key)) >= 0)
			*(int *)dst = word;
		break;
	case CONFIG_KEY_CHOICE_BOOL:
		if ((word = read_word(rd, group, key)) >= 0)
			*(bool *)dst = word == 1;
		break;
	case CONFIG_KEY_SECRET_FILE:
		read_secret_key(rd, group, key, cfg);
		break;
	case CONFIG_KEY_ROUTES:
		read_routes(rd, cfg, group ? config_setting_get_member(group, key->name) : NULL);
		break;
	}
}

/* Reads every key of one section (NULL: the top level) from group, which may be absent. */
static void read_section(struct config_reader *rd, struct config *cfg, const config_setting_t *group,
			 const char *section)
{
	if (group && section)
		check_known_keys(rd, group, section);
	for (size_t i = 0; i < KEY_COUNT; i++)
		if (same_section(keys[i].section, section))
			read_key(rd, group, &keys[i], cfg);
}

/* Reload's view of a key's running value: the validation section lives in the policy ingest reads. */
static const void *running_value(const struct config *cfg, const struct config_validation *policy,
				 const struct config_key *key)
{
	size_t section = offsetof(struct config, validation);

	if (policy && key->offset >= section && key->offset < section + sizeof(cfg->validation))
		return (const char *)policy + (key->offset - section);
	return (const char *)cfg + key->offset;
}

static bool strings_differ(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

static bool routes_differ(const struct config *a, const struct config *b)
{
	if (a->route_count != b->route_count)
		return true;
	for (size_t i = 0; i < a->route_count; i++)
		if (!route_equal(&a->routes[i], &b->routes[i]))
			return true;
	return false;
}

static bool key_differs(const struct config *cfg, const struct config_validation *policy,
			const struct config *fresh, const struct config_key *key)
{
	const void *a = running_value(cfg, policy, key), *b = (const char *)fresh + key->offset;

	switch (key->type) {
	case CONFIG_KEY_INT:
	case CONFIG_KEY_CHOICE:
		return *(const int *)a != *(const int *)b;
	case CONFIG_KEY_INT64:
		return *(const long long *)a != *(const long long *)b;
	case CONFIG_KEY_DOUBLE:
		return *(const double *)a != *(const double *)b;
	case CONFIG_KEY_BOOL:
	case CONFIG_KEY_CHOICE_BOOL:
		return *(const bool *)a != *(const bool *)b;
	case CONFIG_KEY_STRING:
		return strings_differ(*(char *const *)a, *(char *const *)b);
	case CONFIG_KEY_SECRET_FILE:
		return strings_differ(*(char *const *)a, *(char *const *)b) ||
		       (!key->secret_rereads &&
			strings_differ(*(char *const *)((const char *)cfg + key->secret_offset),
				       *(char *const *)((const char *)fresh + key->secret_offset)));
	case CONFIG_KEY_ROUTES:
		return routes_differ(cfg, fresh);
	}
	return false;
}

int config_diff(const struct config *cfg, const struct config_validation *policy, const struct config *fresh,
		void (*changed)(const struct config_key *key, void *ctx), void *ctx)
{
	int restart = 0;

	for (size_t i = 0; i < KEY_COUNT; i++) {
		if (!key_differs(cfg, policy, fresh, &keys[i]))
			continue;
		restart += !keys[i].reloadable;
		changed(&keys[i], ctx);
	}
	return restart;
}

static size_t value_size(const struct config_key *key)
{
	switch (key->type) {
	case CONFIG_KEY_INT:
	case CONFIG_KEY_CHOICE:
		return sizeof(int);
	case CONFIG_KEY_INT64:
		return sizeof(long long);
	case CONFIG_KEY_DOUBLE:
		return sizeof(double);
	case CONFIG_KEY_BOOL:
	case CONFIG_KEY_CHOICE_BOOL:
		return sizeof(bool);
	default:
		return 0;
	}
}

void config_apply_reloadable(struct config *cfg, struct config_validation *policy, const struct config *fresh)
{
	for (size_t i = 0; i < KEY_COUNT; i++) {
		const struct config_key *key = &keys[i];
		void *running = (void *)running_value(cfg, policy, key);
		const void *value = (const char *)fresh + key->offset;

		if (!key->reloadable || !key_differs(cfg, policy, fresh, key))
			continue;
		if (key->type == CONFIG_KEY_STRING) {
			/* Replacing a string frees the old one: only for keys no other thread reads (admin_conninfo). */
			free_secret(*(char **)running);
			*(char **)running = *(char *const *)value ? xstrdup(*(char *const *)value) : NULL;
		} else {
			memcpy(running, value, value_size(key));
		}
	}
}

/* What the mqtt section's rows cannot say: cross-key rules, the key file's mode, the client id template. */
static void check_mqtt(struct config_reader *rd, struct config *cfg, const config_setting_t *g)
{
	struct config_mqtt *m = &cfg->mqtt;

	if (g) {
		if (m->key_file)
			check_key_file(rd, g, m->key_file);
		if (m->reconnect_max < m->reconnect_min)
			reader_error(rd, g, "mqtt.reconnect_max must be >= mqtt.reconnect_min");
		if (m->shared_group && !topic_level_plain(m->shared_group))
			reader_error(rd, g, "mqtt.shared_group may not contain '/', '+' or '#'");
	}
	if (!m->uri)
		reader_error(rd, g, "mqtt.uri is required");
	if (!m->client_id)
		reader_error(rd, g, "mqtt.client_id is required (each replica needs its own)");
	else
		expand_client_id(rd, g, &m->client_id);
}

static void check_database(struct config_reader *rd, struct config *cfg, const config_setting_t *g)
{
	if (!cfg->database.conninfo)
		reader_error(rd, g, "database.conninfo is required");
}

static void check_spool(struct config_reader *rd, struct config *cfg, const config_setting_t *g)
{
	if (!g)
		return;
	if (cfg->spool.durable && !cfg->spool.directory)
		reader_error(rd, g, "spool.directory is required in disk mode");
	/*
	 * The segment being written is never deleted, and the next one starts only when it is full: with
	 * less than two segments of room, a full spool could never free a byte (measured: "spool full"
	 * forever, also after a restart).
	 */
	if (cfg->spool.max_bytes < 2 * cfg->spool.segment_bytes)
		reader_error(
			rd, g,
			"spool.max_bytes (%lld) must be at least twice spool.segment_bytes (%lld): the segment "
			"being written is never deleted, so a smaller spool can fill up for good",
			(long long)cfg->spool.max_bytes, (long long)cfg->spool.segment_bytes);
}

static void check_http(struct config_reader *rd, struct config *cfg, const config_setting_t *g)
{
	if (!g)
		return;
	if (!cfg->http_listen)
		cfg->http_listen = xstrdup("127.0.0.1");
	if (cfg->http_metrics_token && !*cfg->http_metrics_token)
		reader_error(rd, config_setting_get_member(g, "metrics_token_file"),
			     "http.metrics_token_file '%s' is empty", cfg->http_metrics_token_file);
}

static void check_section(struct config_reader *rd, struct config *cfg, const config_setting_t *g,
			  const char *section)
{
	if (strcmp(section, "mqtt") == 0)
		check_mqtt(rd, cfg, g);
	else if (strcmp(section, "database") == 0)
		check_database(rd, cfg, g);
	else if (strcmp(section, "spool") == 0)
		check_spool(rd, cfg, g);
	else if (strcmp(section, "http") == 0)
		check_http(rd, cfg, g);
}

/*
 * Cross-key rule (issue 14): raw readings must outlive the age a reading may still be accepted at, or a valid
 * late reading would land in a bucket whose raw data retention already took (and its replay would be refused
 * as beyond_retention). Kept in one function for the key-table rewrite of this file.
 */
static void check_retention_covers_max_age(struct config_reader *rd, const struct config *cfg,
					   const config_setting_t *aggregates)
{
	if (cfg->aggregates.raw_retention_days > 0 &&
	    (int64_t)cfg->aggregates.raw_retention_days * 86400 <= cfg->validation.max_age)
		reader_error(
			rd, aggregates ? config_setting_get_member(aggregates, "raw_retention_days") : NULL,
			"aggregates.raw_retention_days (%d days) must be longer than validation.max_age (%d s)",
			cfg->aggregates.raw_retention_days, cfg->validation.max_age);
}

static void read_root(struct config_reader *rd, struct config *cfg, const config_setting_t *root)
{
	check_known_keys(rd, root, NULL);
	for (const char *const *name = sections; *name; name++) {
		const config_setting_t *g = config_setting_get_member(root, *name);
		if (g && !config_setting_is_group(g))
			reader_error(rd, g, "'%s' must be a group: %s = { ... };", *name, *name);
	}
	if (rd->error_count > 0)
		return; /* reading members of a non-group would only add confusing errors */
	for (const char *const *name = sections; *name; name++) {
		const config_setting_t *g = config_setting_get_member(root, *name);

		read_section(rd, cfg, g, *name);
		check_section(rd, cfg, g, *name);
	}
	read_section(rd, cfg, root, NULL);
	check_retention_covers_max_age(rd, cfg, config_setting_get_member(root, "aggregates"));
}

struct config *config_load(const char *path, char *errors, size_t errlen)
{
	struct config_reader rd = { .file = path ? path : "(defaults)", .errors = errors, .errlen = errlen };
	struct config *cfg = xcalloc(1, sizeof(*cfg));
	config_t lc;

	errors[0] = '\0';
	for (size_t i = 0; i < KEY_COUNT; i++)
		set_default(cfg, &keys[i]);
	config_init(&lc);
	if (path) {
		cfg->path = xstrdup(path);
		if (config_read_file(&lc, path) != CONFIG_TRUE) {
			if (config_error_type(&lc) == CONFIG_ERR_FILE_IO)
				reader_error(&rd, NULL, "cannot read file: %s", strerror(errno));
			else
				snprintf(errors, errlen, "%s:%d: %s\n", path, config_error_line(&lc),
					 config_error_text(&lc));
			rd.error_count++;
			goto out;
		}
	}
	read_root(&rd, cfg, config_root_setting(&lc));
out:
	config_destroy(&lc);
	if (rd.error_count > 0) {
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < KEY_COUNT; i++) {
		if (keys[i].type == CONFIG_KEY_STRING || keys[i].type == CONFIG_KEY_SECRET_FILE)
			free_secret(*(char **)field(cfg,
						    keys[i].offset)); /* admin_conninfo may hold a password */
		if (keys[i].type == CONFIG_KEY_SECRET_FILE)
			free_secret(*(char **)field(cfg, keys[i].secret_offset));
	}
	for (size_t i = 0; i < cfg->route_count; i++)
		route_clear(&cfg->routes[i]);
	free(cfg->routes);
	free(cfg->path);
	free(cfg);
}

const char *config_unknown_point_policy_name(enum unknown_point_policy policy)
{
	switch (policy) {
	case UNKNOWN_POINT_REJECT:
		return "reject";
	case UNKNOWN_POINT_DROP:
		return "drop";
	case UNKNOWN_POINT_REGISTER:
		return "register";
	}
	return "unknown";
}
