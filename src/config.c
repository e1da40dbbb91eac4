// SPDX-License-Identifier: Apache-2.0
/*
 * config: reads the libconfig file into a struct config, checking every key's type and range and
 * refusing keys it does not know (a typo must not silently fall back to a default). Errors accumulate so
 * that `mqtt2pg check-config` can list them all at once, each with its line.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "decode.h"
#include "preset.h"
#include "secret.h"
#include "tz.h"
#include "xalloc.h"

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

/* Reports every member of group that is not in known (NULL-terminated). */
static void check_known_keys(struct config_reader *rd, const config_setting_t *group, const char *const *known)
{
	int count = config_setting_length(group);

	for (int i = 0; i < count; i++) {
		const config_setting_t *member = config_setting_get_elem(group, (unsigned)i);
		const char *name = config_setting_name(member);
		bool ok = false;

		for (const char *const *k = known; *k && !ok; k++)
			ok = name && strcmp(name, *k) == 0;
		if (!ok)
			reader_error(rd, member, "unknown setting '%s%s%s'",
				     config_setting_name(group) ? config_setting_name(group) : "",
				     config_setting_name(group) ? "." : "", name ? name : "?");
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
static void read_int64(struct config_reader *rd, const config_setting_t *group, const char *name, long long *dst,
		       long long min, long long max)
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

static void read_int(struct config_reader *rd, const config_setting_t *group, const char *name, int *dst, int min,
		     int max)
{
	long long v = *dst;

	read_int64(rd, group, name, &v, min, max);
	*dst = (int)v;
}

static void read_double(struct config_reader *rd, const config_setting_t *group, const char *name, double *dst,
			double min, double max)
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

static void read_password(struct config_reader *rd, const config_setting_t *group, const char *env_name,
			  char **dst)
{
	char *file = NULL;
	const char *env = getenv(env_name);

	read_string(rd, group, "password_file", &file);
	if (file) {
		*dst = read_secret_file(rd, config_setting_get_member(group, "password_file"), file);
		free(file);
	}
	if (env && *env) {
		free(*dst);
		*dst = xstrdup(env);
	}
}

static void override_from_env(const char *env_name, char **dst)
{
	const char *env = getenv(env_name);

	if (env && *env) {
		free(*dst);
		*dst = xstrdup(env);
	}
}

static void set_defaults(struct config *cfg)
{
	cfg->mqtt.uri = xstrdup("tcp://127.0.0.1:1883");
	cfg->mqtt.client_id = xstrdup("mqtt2pg");
	cfg->mqtt.version = 5;
	cfg->mqtt.qos = 1;
	cfg->mqtt.clean_session = false;
	cfg->mqtt.session_expiry = 7 * 86400;
	cfg->mqtt.keepalive = 60;
	cfg->mqtt.connect_timeout = 10;
	cfg->mqtt.reconnect_min = 1;
	cfg->mqtt.reconnect_max = 30;
	cfg->mqtt.tls_verify = true;
	cfg->database.conninfo = xstrdup("host=127.0.0.1 dbname=mqtt2pg user=mqtt2pg_writer");
	cfg->database.writers = 2;
	cfg->database.batch_rows = 2000;
	cfg->database.flush_interval_ms = 100;
	cfg->database.linger_ms = 10;
	cfg->database.queue_messages = 50000;
	cfg->database.enqueue_timeout_ms = 20000;
	cfg->database.reconnect_max_ms = 10000;
	cfg->validation.max_payload_bytes = 65536;
	cfg->validation.max_future_skew = 300;
	cfg->validation.max_age = 7 * 86400;
	cfg->validation.unknown_points = UNKNOWN_POINT_REJECT;
	cfg->validation.max_points_per_device = 256;
	cfg->validation.reject_payload_bytes = 1024;
	cfg->validation.device_burst = 100;
	cfg->validation.tenant_burst = 10000;
	cfg->validation.rejected_retention_days = 30;
	cfg->aggregates.enabled = true;
	cfg->aggregates.interval = 30;
	cfg->aggregates.raw_retention_days = 0;
	cfg->aggregates.partitions_ahead_days = 3;
	/* Loopback unless told otherwise: /metrics tells whoever reaches it about every tenant's traffic. */
	cfg->http_listen = xstrdup("127.0.0.1");
	cfg->http_port = 9108;
	cfg->http_max_connections = 64;
	cfg->http_max_connections_per_client = 8;
	cfg->http_timeout = 10;
	cfg->spool.durable = true;
	cfg->spool.directory = xstrdup("/var/lib/mqtt2pg/spool");
	cfg->spool.max_bytes = 1024LL * 1024 * 1024;
	cfg->spool.segment_bytes = 16LL * 1024 * 1024;
	cfg->spool.fsync_interval_ms = 1000;
	cfg->registry_refresh_interval = 60;
	cfg->stats_interval = 10;
	cfg->shutdown_timeout = 50;
	cfg->log_level = LOG_LEVEL_INFO;
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
		reader_error(rd, g, "mqtt.client_id uses {hostname}, but the host name is unknown: %s", strerror(errno));
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
			reader_error(rd, g, "mqtt.client_id '%s': the only placeholder is {hostname}", *client_id);
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

static void read_mqtt(struct config_reader *rd, struct config *cfg, const config_setting_t *g)
{
	static const char *const known[] = {"uri", "client_id", "username", "password_file", "version", "qos",
					    "clean_session", "session_expiry", "keepalive", "connect_timeout",
					    "reconnect_min", "reconnect_max", "shared_group", "ca_file",
					    "cert_file", "key_file", "tls_verify", NULL};
	struct config_mqtt *m = &cfg->mqtt;

	if (g) {
		check_known_keys(rd, g, known);
		read_string(rd, g, "uri", &m->uri);
		read_string(rd, g, "client_id", &m->client_id);
		read_string(rd, g, "username", &m->username);
		read_int(rd, g, "version", &m->version, 4, 5);
		read_int(rd, g, "qos", &m->qos, 0, 2);
		read_bool(rd, g, "clean_session", &m->clean_session);
		read_int(rd, g, "session_expiry", &m->session_expiry, 0, 0x7fffffff);
		read_int(rd, g, "keepalive", &m->keepalive, 5, 65535);
		read_int(rd, g, "connect_timeout", &m->connect_timeout, 1, 600);
		read_int(rd, g, "reconnect_min", &m->reconnect_min, 1, 3600);
		read_int(rd, g, "reconnect_max", &m->reconnect_max, 1, 3600);
		read_string(rd, g, "shared_group", &m->shared_group);
		read_string(rd, g, "ca_file", &m->ca_file);
		read_string(rd, g, "cert_file", &m->cert_file);
		read_string(rd, g, "key_file", &m->key_file);
		if (m->key_file)
			check_key_file(rd, g, m->key_file);
		read_bool(rd, g, "tls_verify", &m->tls_verify);
		if (m->reconnect_max < m->reconnect_min)
			reader_error(rd, g, "mqtt.reconnect_max must be >= mqtt.reconnect_min");
		if (m->shared_group && strpbrk(m->shared_group, "/+#"))
			reader_error(rd, g, "mqtt.shared_group may not contain '/', '+' or '#'");
	}
	read_password(rd, g, "MQTT2PG_MQTT_PASSWORD", &m->password);
	override_from_env("MQTT2PG_MQTT_URI", &m->uri);
	override_from_env("MQTT2PG_CLIENT_ID", &m->client_id);
	if (!m->uri)
		reader_error(rd, g, "mqtt.uri is required");
	if (!m->client_id)
		reader_error(rd, g, "mqtt.client_id is required (each replica needs its own)");
	else
		expand_client_id(rd, g, &m->client_id);
}

static void read_database(struct config_reader *rd, struct config *cfg, const config_setting_t *g)
{
	static const char *const known[] = {"conninfo", "password_file", "admin_conninfo", "writers",
					    "batch_rows", "flush_interval_ms", "linger_ms", "queue_messages",
					    "enqueue_timeout_ms", "reconnect_max_ms", NULL};
	struct config_database *d = &cfg->database;

	if (g) {
		check_known_keys(rd, g, known);
		read_string(rd, g, "conninfo", &d->conninfo);
		read_string(rd, g, "admin_conninfo", &d->admin_conninfo);
		read_int(rd, g, "writers", &d->writers, 1, 64);
		read_int(rd, g, "batch_rows", &d->batch_rows, 1, 100000);
		read_int(rd, g, "flush_interval_ms", &d->flush_interval_ms, 1, 60000);
		read_int(rd, g, "linger_ms", &d->linger_ms, 0, 60000);
		read_int(rd, g, "queue_messages", &d->queue_messages, 16, 10000000);
		read_int(rd, g, "enqueue_timeout_ms", &d->enqueue_timeout_ms, 1, 60000);
		read_int(rd, g, "reconnect_max_ms", &d->reconnect_max_ms, 100, 600000);
	}
	read_password(rd, g, "MQTT2PG_DB_PASSWORD", &d->password);
	if (!(getenv("MQTT2PG_DB_PASSWORD") && *getenv("MQTT2PG_DB_PASSWORD")))
		read_string(rd, g, "password_file", &d->password_file);
	override_from_env("MQTT2PG_DB_CONNINFO", &d->conninfo);
	override_from_env("MQTT2PG_ADMIN_CONNINFO", &d->admin_conninfo);
	if (!d->conninfo)
		reader_error(rd, g, "database.conninfo is required");
}

static void read_validation(struct config_reader *rd, struct config *cfg, const config_setting_t *g)
{
	static const char *const known[] = {"max_payload_bytes", "max_future_skew", "max_age", "unknown_points",
					    "max_points_per_device", "reject_payload_bytes", "device_rate",
					    "device_burst", "tenant_rate", "tenant_burst", "rejected_retention_days",
					    NULL};
	struct config_validation *v = &cfg->validation;
	char *policy = NULL;

	if (!g)
		return;
	check_known_keys(rd, g, known);
	read_int(rd, g, "max_payload_bytes", &v->max_payload_bytes, 16, 64 * 1024 * 1024);
	read_int(rd, g, "max_future_skew", &v->max_future_skew, 0, 0x7fffffff);
	read_int(rd, g, "max_age", &v->max_age, 1, 0x7fffffff);
	read_int(rd, g, "max_points_per_device", &v->max_points_per_device, 1, 100000);
	read_int(rd, g, "reject_payload_bytes", &v->reject_payload_bytes, 0, 1024 * 1024);
	read_double(rd, g, "device_rate", &v->device_rate, 0, 1e9);
	read_double(rd, g, "device_burst", &v->device_burst, 1, 1e9);
	read_double(rd, g, "tenant_rate", &v->tenant_rate, 0, 1e9);
	read_double(rd, g, "tenant_burst", &v->tenant_burst, 1, 1e9);
	read_int(rd, g, "rejected_retention_days", &v->rejected_retention_days, 0, 36500);
	read_string(rd, g, "unknown_points", &policy);
	if (policy) {
		if (strcmp(policy, "reject") == 0)
			v->unknown_points = UNKNOWN_POINT_REJECT;
		else if (strcmp(policy, "drop") == 0)
			v->unknown_points = UNKNOWN_POINT_DROP;
		else if (strcmp(policy, "register") == 0)
			v->unknown_points = UNKNOWN_POINT_REGISTER;
		else
			reader_error(rd, config_setting_get_member(g, "unknown_points"),
				     "validation.unknown_points must be \"reject\", \"drop\" or \"register\"");
		free(policy);
	}
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
		reader_error(rd, config_setting_get_member(item, key), "routes[%d]: %s must be %s", index, key, expect);
	free(value);
	return found;
}

/* An MQTT filter from a template-like text: each "{...}" level becomes "+" ({point+} becomes "#"). */
static char *filter_from_template(const char *text)
{
	char *out = xmalloc(strlen(text) + 1), *o = out;

	while (*text) {
		const char *slash = strchr(text, '/');
		size_t len = slash ? (size_t)(slash - text) : strlen(text);

		if (len >= 2 && text[0] == '{' && text[len - 1] == '}')
			*o++ = strncmp(text, "{point+}", len) == 0 && len == 8 ? '#' : '+';
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

static bool filter_ok(const char *f)
{
	const char *hash = strchr(f, '#');

	if (!*f)
		return false;
	for (const char *p = f; *p; p++)
		if ((*p == '+' || *p == '#') && ((p > f && p[-1] != '/') || (p[1] && p[1] != '/')))
			return false;
	return !hash || hash[1] == '\0';
}

/* A dotted JSON path ("meta.ts") whose steps are 1..ROUTE_MAX_PATH_STEP bytes; NULL (not set) passes. */
static void check_json_path(struct config_reader *rd, const config_setting_t *item, int i, const char *key,
			    const char *path)
{
	for (const char *p = path; p && *p;) {
		size_t n = strcspn(p, ".");
		if (n == 0 || n > ROUTE_MAX_PATH_STEP || (p[n] == '.' && p[n + 1] == '\0')) {
			const config_setting_t *at = config_setting_get_member(item, key);
			reader_error(rd, at ? at : item,
				     "routes[%d]: %s '%.40s%s': each '.'-separated step must be 1 to %d bytes", i,
				     key, path, strlen(path) > 40 ? "..." : "", ROUTE_MAX_PATH_STEP);
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
	return filter_ok(f) && strlen(f) <= 256;
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
		r->points_map =
			xrealloc(r->points_map, (r->points_map_count + 1) * 2 * sizeof(*r->points_map));
		r->points_map[2 * r->points_map_count] = xstrdup(from);
		r->points_map[2 * r->points_map_count + 1] = xstrdup(to);
		r->points_map_count++;
	}
}

/* The route keys that decide which values become readings (README "Devices"). */
static void read_route_values(struct config_reader *rd, const config_setting_t *item, int i, struct route *r)
{
	read_bool(rd, item, "numeric_strings", &r->numeric_strings);
	read_bool(rd, item, "booleans", &r->booleans);
	read_points_map(rd, item, i, r);
	read_string_list(rd, item, i, "ignore_points", point_filter_ok, &r->ignore_points,
			 &r->ignore_points_count);
	read_string_list(rd, item, i, "points", point_filter_ok, &r->points, &r->points_count);
	read_string_list(rd, item, i, "measurements", NULL, &r->measurements, &r->measurements_count);
	read_string(rd, item, "alias_scope", &r->alias_scope);
}

/* The options of one route beyond topic and format, over the preset's defaults. prefix is where the preset's
 * ignore filters hang (preset_ignore_prefix), NULL when the route's topic does not tell. */
static void read_route_options(struct config_reader *rd, const config_setting_t *item, int i,
			       const struct preset *preset, const char *prefix, struct route *r)
{
	static const char *const retained_names[] = {"accept", "ignore", "timestamped", NULL};
	static const char *const units[] = {"s", "ms", "us", "ns", "rfc3339", NULL};
	static const char *const lp_keys[] = {"serial_tag", "point", "precision", "strings", NULL};
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
	read_string(rd, item, "json_root", &r->json_root);
	if (preset) {
		r->ignore_retained = preset->ignore_retained;
		r->retained_timestamped = !preset->ignore_retained;
		r->ignore_non_numeric = preset->ignore_non_numeric;
		if (!prefix && preset->ignore[0] && !ignore && !ignore_replace)
			reader_error(rd, config_setting_get_member(item, "topic"),
				     "routes[%d]: topic does not end like preset %s's (\"%s\"), so its ignore filters "
				     "cannot follow it: set prefix = \"...\" or the route's own ignore = [...]",
				     i, preset->name, preset->topic);
		for (const char *const *f = preset->ignore; prefix && !ignore_replace && *f; f++) {
			char *expanded = preset_expand(*f, prefix), *filter = filter_from_template(expanded);
			route_add_ignore(r, filter);
			free(filter);
			free(expanded);
		}
		for (const char *const *f = preset->ignore_points; f && !ignore_points_replace && *f; f++)
			route_list_add(&r->ignore_points, &r->ignore_points_count, *f);
		if (preset->serial_tag &&
		    lp_mapping_set(&r->influx, "serial_tag", preset->serial_tag, err, sizeof(err)) != 0)
			reader_error(rd, item, "routes[%d]: preset serial_tag: %s", i, err);
		if (preset->point && lp_mapping_set(&r->influx, "point", preset->point, err, sizeof(err)) != 0)
			reader_error(rd, item, "routes[%d]: preset point: %s", i, err);
		if (preset->precision && lp_mapping_set(&r->influx, "precision", preset->precision, err, sizeof(err)) != 0)
			reader_error(rd, item, "routes[%d]: preset precision: %s", i, err);
		if (preset->time_field) {
			r->time_field = xstrdup(preset->time_field);
			r->time_unit = preset->time_unit;
		}
	}
	if ((choice = read_choice(rd, item, i, "retained", retained_names,
				  "\"timestamped\", \"accept\" or \"ignore\"")) >= 0) {
		r->ignore_retained = choice == 1;
		r->retained_timestamped = choice == 2;
	}
	if ((choice = read_choice(rd, item, i, "non_numeric", (const char *const[]){"reject", "ignore", NULL},
				  "\"reject\" or \"ignore\"")) >= 0)
		r->ignore_non_numeric = choice == 1;
	for (const char *const *key = lp_keys; *key; key++) {
		char *value = NULL;
		read_string(rd, item, *key, &value);
		if (!value && config_setting_get_member(item, *key) &&
		    config_setting_type(config_setting_get_member(item, *key)) == CONFIG_TYPE_STRING)
			value = xstrdup(""); /* serial_tag = "" clears a preset's tag */
		if (value && lp_mapping_set(&r->influx, *key, value, err, sizeof(err)) != 0)
			reader_error(rd, config_setting_get_member(item, *key), "routes[%d]: %s", i, err);
		free(value);
	}
	if (config_setting_get_member(item, "time_field")) {
		free(r->time_field);
		r->time_field = NULL;
		read_string(rd, item, "time_field", &r->time_field); /* "" = the receive time */
	}
	if ((choice = read_choice(rd, item, i, "time_unit", units, "\"s\", \"ms\", \"us\", \"ns\" or \"rfc3339\"")) >= 0)
		r->time_unit = (enum route_time_unit)choice;
	else if (r->time_field && !(preset && preset->time_field && strcmp(preset->time_field, r->time_field) == 0) &&
		 !config_setting_get_member(item, "time_unit"))
		reader_error(rd, item, "routes[%d]: time_field needs time_unit (s, ms, us, ns or rfc3339): never guessed", i);
	read_string(rd, item, "timezone", &zone);
	if (zone && tz_load(zone, &r->timezone, err, sizeof(err)) < 0)
		reader_error(rd, config_setting_get_member(item, "timezone"), "routes[%d]: %s", i, err);
	free(zone);
	if (config_setting_get_member(item, "time_unit") && !r->time_field)
		reader_error(rd, config_setting_get_member(item, "time_unit"), "routes[%d]: time_unit needs time_field",
			     i);
	if (config_setting_get_member(item, "timezone") && (!r->time_field || r->time_unit != ROUTE_TIME_RFC3339))
		reader_error(rd, config_setting_get_member(item, "timezone"),
			     "routes[%d]: timezone applies to a time_field with time_unit = \"rfc3339\"", i);
	check_json_path(rd, item, i, "time_field", r->time_field);
	check_json_path(rd, item, i, "json_root", r->json_root);
	if (ignore) {
		if (!config_setting_is_array(ignore) && !config_setting_is_list(ignore)) {
			reader_error(rd, ignore, "routes[%d]: ignore must be a list of topic filters: [\"a/+/status\"]", i);
		} else {
			for (int k = 0; k < config_setting_length(ignore); k++) {
				const config_setting_t *f = config_setting_get_elem(ignore, (unsigned)k);
				const char *text = config_setting_type(f) == CONFIG_TYPE_STRING ? config_setting_get_string(f) : NULL;
				if (!text || !filter_ok(text))
					reader_error(rd, f, "routes[%d]: ignore[%d] is not an MQTT topic filter", i, k);
				else
					route_add_ignore(r, text);
			}
		}
	}
	read_route_values(rd, item, i, r);
	if (preset && preset->needs_serial && !r->serial)
		reader_error(rd, item, "routes[%d]: preset %s needs serial = \"...\" (the device is in neither topic nor payload)",
			     i, preset->name);
	if (preset && preset->needs_timezone && !r->timezone && r->time_field)
		reader_error(rd, item,
			     "routes[%d]: preset %s needs timezone = \"Area/City\" (its times carry no zone), or time_field = \"\" "
			     "for the receive time",
			     i, preset->name);
	if (r->tenant && strpbrk(r->tenant, "/+#"))
		reader_error(rd, item, "routes[%d]: tenant may not contain '/', '+' or '#'", i);
}

/* A key that means nothing for the route's format is a mistake, not something to ignore silently. */
static void check_keys_fit_format(struct config_reader *rd, const config_setting_t *item, int i, enum route_format fmt)
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
				     "routes[%d]: %s does not apply to format %s", i, fit[k].key, route_format_name(fmt));
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
	struct route r = {0};
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
		reader_error(rd, item, "routes[%d]: unknown preset '%s' (known: %s)", i, preset_name, preset_names());
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
			   preset ? preset_ignore_prefix(preset, prefix, topic_set ? topic : NULL, ignore_prefix,
							 sizeof(ignore_prefix)) :
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
		reader_error(rd, list, "'routes' must be a list: routes = ( { topic = \"...\"; format = \"json\"; } );");
		return;
	}
	count = config_setting_length(list);
	if (count == 0)
		reader_error(rd, list, "'routes' is empty: nothing would be subscribed");
	cfg->routes = xcalloc((size_t)count + 1, sizeof(*cfg->routes));
	for (int i = 0; i < count; i++) {
		const config_setting_t *item = config_setting_get_elem(list, (unsigned)i);

		if (!config_setting_is_group(item)) {
			reader_error(rd, item, "routes[%d] must be a group { topic = ...; format = ...; }", i);
			continue;
		}
		read_route(rd, item, i, cfg);
	}
}

static void read_http(struct config_reader *rd, struct config *cfg, const config_setting_t *http,
		      const char *const *known)
{
	char *token_file = NULL;

	check_known_keys(rd, http, known);
	read_string(rd, http, "listen", &cfg->http_listen);
	read_int(rd, http, "port", &cfg->http_port, 0, 65535);
	read_int(rd, http, "max_connections", &cfg->http_max_connections, 4, 10000);
	read_int(rd, http, "max_connections_per_client", &cfg->http_max_connections_per_client, 1, 10000);
	read_int(rd, http, "timeout", &cfg->http_timeout, 1, 3600);
	read_string(rd, http, "metrics_token_file", &token_file);
	if (!cfg->http_listen)
		cfg->http_listen = xstrdup("127.0.0.1");
	if (token_file) {
		cfg->http_metrics_token = read_secret_file(
			rd, config_setting_get_member(http, "metrics_token_file"), token_file);
		if (cfg->http_metrics_token && !*cfg->http_metrics_token)
			reader_error(rd, config_setting_get_member(http, "metrics_token_file"),
				     "http.metrics_token_file '%s' is empty", token_file);
		free(token_file);
	}
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
		reader_error(rd, aggregates ? config_setting_get_member(aggregates, "raw_retention_days") : NULL,
			     "aggregates.raw_retention_days (%d days) must be longer than validation.max_age (%d s)",
			     cfg->aggregates.raw_retention_days, cfg->validation.max_age);
}

static void read_root(struct config_reader *rd, struct config *cfg, const config_setting_t *root)
{
	static const char *const known[] = {"mqtt", "database", "validation", "routes", "registry", "log",
					    "stats_interval", "aggregates", "http", "spool", "shutdown_timeout", NULL};
	static const char *const spool_known[] = {"mode", "directory", "max_bytes", "segment_bytes",
						  "fsync_interval_ms", NULL};
	const config_setting_t *spool = config_setting_get_member(root, "spool");
	static const char *const http_known[] = { "listen",
						  "port",
						  "max_connections",
						  "max_connections_per_client",
						  "timeout",
						  "metrics_token_file",
						  NULL };
	const config_setting_t *http = config_setting_get_member(root, "http");
	static const char *const aggregates_known[] = {"enabled", "interval", "raw_retention_days",
						       "partitions_ahead_days", NULL};
	const config_setting_t *aggregates = config_setting_get_member(root, "aggregates");
	static const char *const groups[] = {"mqtt", "database", "validation", "registry", "log", "aggregates",
					     "http", "spool", NULL};
	static const char *const registry_known[] = {"refresh_interval", NULL};
	static const char *const log_known[] = {"level", "format", NULL};
	const config_setting_t *registry = config_setting_get_member(root, "registry");
	const config_setting_t *logg = config_setting_get_member(root, "log");
	char *level = NULL;

	check_known_keys(rd, root, known);
	for (const char *const *name = groups; *name; name++) {
		const config_setting_t *g = config_setting_get_member(root, *name);
		if (g && !config_setting_is_group(g))
			reader_error(rd, g, "'%s' must be a group: %s = { ... };", *name, *name);
	}
	if (rd->error_count > 0)
		return; /* reading members of a non-group would only add confusing errors */
	read_mqtt(rd, cfg, config_setting_get_member(root, "mqtt"));
	read_database(rd, cfg, config_setting_get_member(root, "database"));
	read_validation(rd, cfg, config_setting_get_member(root, "validation"));
	read_routes(rd, cfg, config_setting_get_member(root, "routes"));
	read_int(rd, root, "stats_interval", &cfg->stats_interval, 0, 86400);
	read_int(rd, root, "shutdown_timeout", &cfg->shutdown_timeout, 1, 86400);
	if (spool) {
		char *mode = NULL;
		check_known_keys(rd, spool, spool_known);
		read_string(rd, spool, "mode", &mode);
		if (mode && strcmp(mode, "disk") == 0)
			cfg->spool.durable = true;
		else if (mode && strcmp(mode, "memory") == 0)
			cfg->spool.durable = false;
		else if (mode)
			reader_error(rd, config_setting_get_member(spool, "mode"), "spool.mode must be \"disk\" or \"memory\"");
		free(mode);
		read_string(rd, spool, "directory", &cfg->spool.directory);
		read_int64(rd, spool, "max_bytes", &cfg->spool.max_bytes, 1024 * 1024, 1LL << 50);
		read_int64(rd, spool, "segment_bytes", &cfg->spool.segment_bytes, 64 * 1024, 1LL << 32);
		read_int(rd, spool, "fsync_interval_ms", &cfg->spool.fsync_interval_ms, 0, 600000);
		if (cfg->spool.durable && !cfg->spool.directory)
			reader_error(rd, spool, "spool.directory is required in disk mode");
		/*
		 * The segment being written is never deleted, and the next one starts only when it is full: with
		 * less than two segments of room, a full spool could never free a byte (measured: "spool full"
		 * forever, also after a restart).
		 */
		if (cfg->spool.max_bytes < 2 * cfg->spool.segment_bytes)
			reader_error(
				rd, spool,
				"spool.max_bytes (%lld) must be at least twice spool.segment_bytes (%lld): the segment "
				"being written is never deleted, so a smaller spool can fill up for good",
				(long long)cfg->spool.max_bytes, (long long)cfg->spool.segment_bytes);
	}
	if (http)
		read_http(rd, cfg, http, http_known);
	if (aggregates) {
		check_known_keys(rd, aggregates, aggregates_known);
		read_bool(rd, aggregates, "enabled", &cfg->aggregates.enabled);
		read_int(rd, aggregates, "interval", &cfg->aggregates.interval, 1, 86400);
		read_int(rd, aggregates, "raw_retention_days", &cfg->aggregates.raw_retention_days, 0, 36500);
		/* at most server_settings.partitions_ahead_max_days (31 by default, sql/009) */
		read_int(rd, aggregates, "partitions_ahead_days", &cfg->aggregates.partitions_ahead_days, 1,
			 31);
	}
	if (registry) {
		check_known_keys(rd, registry, registry_known);
		read_int(rd, registry, "refresh_interval", &cfg->registry_refresh_interval, 1, 86400);
	}
	if (logg) {
		check_known_keys(rd, logg, log_known);
		read_string(rd, logg, "level", &level);
		if (level && !log_level_parse(level, &cfg->log_level))
			reader_error(rd, config_setting_get_member(logg, "level"),
				     "log.level must be error, warn, info or debug");
		free(level);
		level = NULL;
		read_string(rd, logg, "format", &level);
		if (level && strcmp(level, "json") == 0)
			cfg->log_json = true;
		else if (level && strcmp(level, "text") != 0)
			reader_error(rd, config_setting_get_member(logg, "format"), "log.format must be \"text\" or \"json\"");
		free(level);
	}
	check_retention_covers_max_age(rd, cfg, aggregates);
}

struct config *config_load(const char *path, char *errors, size_t errlen)
{
	struct config_reader rd = {.file = path ? path : "(defaults)", .errors = errors, .errlen = errlen};
	struct config *cfg = xcalloc(1, sizeof(*cfg));
	config_t lc;

	errors[0] = '\0';
	set_defaults(cfg);
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

/* Frees a string that may hold a secret, wiping it first: a freed block may be handed out again. */
static void free_secret(char *secret)
{
	if (secret)
		explicit_bzero(secret, strlen(secret));
	free(secret);
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	free(cfg->path);
	free(cfg->http_listen);
	free_secret(cfg->http_metrics_token);
	free(cfg->spool.directory);
	free(cfg->mqtt.uri);
	free(cfg->mqtt.client_id);
	free(cfg->mqtt.username);
	free_secret(cfg->mqtt.password);
	free(cfg->mqtt.shared_group);
	free(cfg->mqtt.ca_file);
	free(cfg->mqtt.cert_file);
	free(cfg->mqtt.key_file);
	free(cfg->database.conninfo);
	free_secret(cfg->database.password);
	free(cfg->database.password_file);
	free_secret(cfg->database.admin_conninfo);
	for (size_t i = 0; i < cfg->route_count; i++)
		route_clear(&cfg->routes[i]);
	free(cfg->routes);
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
