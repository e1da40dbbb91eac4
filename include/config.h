/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Configuration: a libconfig file (conf/mqtt2pg.conf documents every key and its default) plus environment
 * overrides for secrets. A struct config is an immutable snapshot once loaded; reload builds a new one.
 */
#ifndef MQTT2PG_CONFIG_H
#define MQTT2PG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "util/log.h"
#include "route.h"

enum unknown_point_policy {
	UNKNOWN_POINT_REJECT = 0, /* reject the whole message */
	UNKNOWN_POINT_DROP,	  /* keep the known points, drop the unknown ones (counted) */
	UNKNOWN_POINT_REGISTER,	  /* register the point for the device, up to max_points_per_device */
};

struct config_mqtt {
	char *uri;	     /* "tcp://127.0.0.1:1883", "ssl://..." */
	char *client_id;     /* each replica needs its own */
	char *username;	     /* NULL: anonymous */
	char *password;	     /* from password_file or $MQTT2PG_MQTT_PASSWORD; never logged */
	char *password_file; /* where password came from; NULL when from the environment */
	int version;	     /* 4 (= MQTT 3.1.1) or 5 */
	int qos;	     /* 0 or 1 (2 accepted, treated as at-least-once) */
	bool clean_session;  /* false: persistent session, the broker keeps what arrives while we are away */
	int session_expiry;  /* MQTT 5 session expiry interval, seconds */
	int receive_maximum; /* MQTT 5: QoS 1 messages the broker may send us unacknowledged (its window) */
	int keepalive;	     /* seconds; above the longest stall of the message callback */
	int connect_timeout; /* seconds */
	int reconnect_min;   /* seconds, automatic reconnect back-off */
	int reconnect_max;
	char *shared_group; /* non-NULL: subscribe as $share/<group>/<filter> */
	char *ca_file;	    /* TLS */
	char *cert_file;
	char *key_file;
	bool tls_verify;
};

struct config_database {
	char *conninfo;	     /* libpq conninfo for the writer role */
	char *password;	     /* from password_file or $MQTT2PG_DB_PASSWORD; never logged */
	char *password_file; /* where password came from, re-read at SIGHUP; NULL when from the environment */
	char *admin_conninfo;	/* for migrate and the admin commands (owner role); may be NULL */
	int writers;		/* connections == writer threads */
	int batch_rows;		/* flush a tenant's batch at this many rows */
	int flush_interval_ms;	/* ... or when its oldest row waited this long */
	int linger_ms;		/* ... or, once nothing more is queued, this long */
	int queue_messages;	/* capacity of each writer's queue, in messages */
	int enqueue_timeout_ms; /* how long the MQTT callback may block on a full queue before handing back */
	int reconnect_max_ms;	/* cap of the reconnect back-off */
};

struct config_validation {
	int max_payload_bytes;
	int max_future_skew; /* seconds a timestamp may be ahead of our clock */
	int max_age;	     /* seconds a timestamp may be behind our clock */
	enum unknown_point_policy unknown_points;
	int max_points_per_device;
	int reject_payload_bytes; /* payload bytes kept in rejected_messages */
	double device_rate;	  /* messages/s per device; 0 = unlimited */
	double device_burst;
	double tenant_rate; /* messages/s per tenant; 0 = unlimited */
	double tenant_burst;
	int rejected_retention_days; /* rejected_messages older than this are purged by the scheduler; 0 = never */
};

struct config_spool {
	bool durable; /* "disk" (default): durable spool; "memory": in-memory queues only */
	char *directory;
	long long max_bytes;
	long long segment_bytes;
	int fsync_interval_ms; /* 0 = fdatasync every append */
};

struct config_aggregates {
	bool enabled;		/* run the job (the leader among replicas does the work) */
	int interval;		/* seconds between runs; also how soon a replica takes over a dead leader */
	int raw_retention_days; /* deprecated: only warned about; the database's server_settings decides */
	int partitions_ahead_days; /* daily partitions created ahead of need */
	int connections;	   /* the job's database connections, each draining free shards */
};

struct config {
	char *path; /* owned copy of the file name, NULL for defaults */
	struct config_mqtt mqtt;
	struct config_database database;
	struct config_validation validation;
	struct config_aggregates aggregates;
	struct config_spool spool;
	char *http_listen;	  /* address of /healthz, /readyz, /metrics; default 127.0.0.1 */
	int http_port;		  /* 0 = no HTTP listener */
	int http_max_connections; /* open connections in all; beyond, the oldest unfinished one goes */
	int http_max_connections_per_client; /* ... and per client address */
	int http_timeout;		     /* seconds a request may take to arrive, headers and all */
	char *http_metrics_token; /* from http.metrics_token_file; NULL: /metrics is open. Never logged */
	char *http_metrics_token_file;
	struct route *routes; /* owned array */
	size_t route_count;
	int registry_refresh_interval; /* seconds; the fallback poll behind LISTEN/NOTIFY */
	int stats_interval;	       /* seconds between throughput log lines; 0 = off */
	int shutdown_timeout;	       /* seconds SIGTERM may take to drain before we exit anyway */
	enum log_level log_level;
	bool log_json; /* log.format = "json" */
};

/*
 * The key table (src/config.c, PgBouncer's CF_ABS table): every key of the file has one row giving its type,
 * range, default, where it lands in struct config and whether a SIGHUP can apply it. Reading, unknown-key
 * detection, defaults and reload's diff all come from it; what a table cannot say (routes, cross-key checks,
 * the {hostname} template) is code next to it.
 */
enum config_key_type {
	CONFIG_KEY_INT,		/* int within [min, max] */
	CONFIG_KEY_INT64,	/* long long within [min, max] */
	CONFIG_KEY_DOUBLE,	/* double within [dmin, dmax]; an integer is taken too */
	CONFIG_KEY_BOOL,	/* true / false */
	CONFIG_KEY_STRING,	/* char * (owned); "" means not set (NULL) */
	CONFIG_KEY_CHOICE,	/* one of words[], stored as its index (an int-sized enum) */
	CONFIG_KEY_CHOICE_BOOL, /* one of two words[], stored as false / true */
	CONFIG_KEY_SECRET_FILE, /* a file name (kept at offset) whose contents go to secret_offset; never logged */
	CONFIG_KEY_ROUTES,	/* the routes list: read by code (groups of per-format options) */
};

struct config_key {
	const char *section; /* "mqtt", "database", ...; NULL at the top level */
	const char *name;
	enum config_key_type type;
	size_t offset;		  /* of the value in struct config */
	bool reloadable;	  /* a SIGHUP applies it; otherwise a change is reported "restart required" */
	long long min, max;	  /* INT, INT64 */
	double dmin, dmax;	  /* DOUBLE */
	long long def;		  /* default of INT, INT64, BOOL, CHOICE, CHOICE_BOOL */
	double ddef;		  /* default of DOUBLE */
	const char *sdef;	  /* default of STRING (NULL: not set) */
	const char *const *words; /* CHOICE, CHOICE_BOOL */
	const char *expect;	  /* CHOICE, CHOICE_BOOL: "must be ..." text */
	const char *env;	  /* environment variable that overrides the file (STRING, SECRET_FILE) */
	size_t secret_offset;	  /* SECRET_FILE: where the secret goes */
	bool secret_rereads; /* SECRET_FILE: SIGHUP re-reads the file itself, so new contents are no change */
};

/* The table: *count rows, in file order. Borrowed, static. */
const struct config_key *config_keys(size_t *count);

/* The key named "section.name" (or "name" at the top level); NULL if there is none. */
const struct config_key *config_key_find(const char *dotted);

/* "section.name" of key into buf; returns buf. */
const char *config_key_dotted(const struct config_key *key, char *buf, size_t buflen);

/*
 * Reload's diff. The running values are cfg's, except the validation section, whose running values are
 * policy's (the snapshot ingest reads; NULL: cfg->validation). Calls changed(key, ctx) for every key whose
 * value in fresh differs, in table order, and returns how many of them are not reloadable.
 */
int config_diff(const struct config *cfg, const struct config_validation *policy, const struct config *fresh,
		void (*changed)(const struct config_key *key, void *ctx), void *ctx);

/*
 * Copies every reloadable key's value from fresh: validation keys into policy (a copy the caller then hands
 * to ingest; another thread may be reading the old one), every other key into cfg. Reloadable keys are
 * scalars, but for database.admin_conninfo, which the running bridge never reads (its string is replaced).
 */
void config_apply_reloadable(struct config *cfg, struct config_validation *policy,
			     const struct config *fresh);

/*
 * Loads path (or defaults only when path is NULL) and applies environment overrides. Every problem found is
 * appended to errors (one per line, "file:line: message"); returns NULL if there was any. The caller owns
 * the result (config_free).
 */
struct config *config_load(const char *path, char *errors, size_t errlen) __attribute__((warn_unused_result));

void config_free(struct config *cfg);


/*
 * Overwrites, in place, the password held by a libpq connection string (key=value "password=..." or a
 * postgresql:// URI's "user:password@" or "?password=") with '*'s, keeping everything else; for argv, whose
 * bytes other users read in /proc/PID/cmdline. Returns true when there was a password.
 */
bool config_conninfo_hide_password(char *conninfo);

const char *config_unknown_point_policy_name(enum unknown_point_policy policy);

#endif
