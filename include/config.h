/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Configuration: a libconfig file (conf/mqtt2pg.conf documents every key and its default) plus environment
 * overrides for secrets. A struct config is an immutable snapshot once loaded; reload builds a new one.
 */
#ifndef MQTT2PG_CONFIG_H
#define MQTT2PG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "log.h"
#include "route.h"

enum unknown_point_policy {
	UNKNOWN_POINT_REJECT = 0, /* reject the whole message */
	UNKNOWN_POINT_DROP,       /* keep the known points, drop the unknown ones (counted) */
	UNKNOWN_POINT_REGISTER,   /* register the point for the device, up to max_points_per_device */
};

struct config_mqtt {
	char *uri;           /* "tcp://127.0.0.1:1883", "ssl://..." */
	char *client_id;     /* each replica needs its own */
	char *username;      /* NULL: anonymous */
	char *password;      /* from password_file or $MQTT2PG_MQTT_PASSWORD; never logged */
	int version;         /* 4 (= MQTT 3.1.1) or 5 */
	int qos;             /* 0 or 1 (2 accepted, treated as at-least-once) */
	bool clean_session;  /* false: persistent session, the broker keeps what arrives while we are away */
	int session_expiry;  /* MQTT 5 session expiry interval, seconds */
	int keepalive;       /* seconds; above the longest stall of the message callback */
	int connect_timeout; /* seconds */
	int reconnect_min;   /* seconds, automatic reconnect back-off */
	int reconnect_max;
	char *shared_group;  /* non-NULL: subscribe as $share/<group>/<filter> */
	char *ca_file;       /* TLS */
	char *cert_file;
	char *key_file;
	bool tls_verify;
};

struct config_database {
	char *conninfo;       /* libpq conninfo for the writer role */
	char *password;       /* from password_file or $MQTT2PG_DB_PASSWORD; never logged */
	char *password_file;  /* where password came from, re-read at SIGHUP; NULL when from the environment */
	char *admin_conninfo; /* for migrate and the admin commands (owner role); may be NULL */
	int writers;          /* connections == writer threads */
	int batch_rows;       /* flush a tenant's batch at this many rows */
	int flush_interval_ms; /* ... or when its oldest row waited this long */
	int linger_ms;         /* ... or, once nothing more is queued, this long */
	int queue_messages;   /* capacity of each writer's queue, in messages */
	int enqueue_timeout_ms; /* how long the MQTT callback may block on a full queue before handing back */
	int reconnect_max_ms; /* cap of the reconnect back-off */
};

struct config_validation {
	int max_payload_bytes;
	int max_future_skew;  /* seconds a timestamp may be ahead of our clock */
	int max_age;          /* seconds a timestamp may be behind our clock */
	enum unknown_point_policy unknown_points;
	int max_points_per_device;
	int reject_payload_bytes; /* payload bytes kept in rejected_messages */
	double device_rate;       /* messages/s per device; 0 = unlimited */
	double device_burst;
	double tenant_rate;       /* messages/s per tenant; 0 = unlimited */
	double tenant_burst;
	int rejected_retention_days; /* rejected_messages older than this are purged by the scheduler; 0 = never */
};

struct config_spool {
	bool durable;            /* "disk" (default): durable spool; "memory": in-memory queues only */
	char *directory;
	long long max_bytes;
	long long segment_bytes;
	int fsync_interval_ms;   /* 0 = fdatasync every append */
};

struct config_aggregates {
	bool enabled;              /* run the job (the leader among replicas does the work) */
	int interval;              /* seconds between runs; also how soon a replica takes over a dead leader */
	int raw_retention_days;	   /* deprecated: only warned about; the database's server_settings decides */
	int partitions_ahead_days; /* daily partitions created ahead of need */
};

struct config {
	char *path; /* owned copy of the file name, NULL for defaults */
	struct config_mqtt mqtt;
	struct config_database database;
	struct config_validation validation;
	struct config_aggregates aggregates;
	struct config_spool spool;
	char *http_listen; /* address of /healthz, /readyz, /metrics; default 127.0.0.1 */
	int http_port;     /* 0 = no HTTP listener */
	int http_max_connections; /* open connections in all; beyond, the oldest unfinished one goes */
	int http_max_connections_per_client; /* ... and per client address */
	int http_timeout;		     /* seconds a request may take to arrive, headers and all */
	char *http_metrics_token; /* from http.metrics_token_file; NULL: /metrics is open. Never logged */
	struct route *routes; /* owned array */
	size_t route_count;
	int registry_refresh_interval; /* seconds; the fallback poll behind LISTEN/NOTIFY */
	int stats_interval;            /* seconds between throughput log lines; 0 = off */
	int shutdown_timeout;          /* seconds SIGTERM may take to drain before we exit anyway */
	enum log_level log_level;
	bool log_json; /* log.format = "json" */
};

/*
 * Loads path (or defaults only when path is NULL) and applies environment overrides. Every problem found is
 * appended to errors (one per line, "file:line: message"); returns NULL if there was any. The caller owns
 * the result (config_free).
 */
struct config *config_load(const char *path, char *errors, size_t errlen);

void config_free(struct config *cfg);


/*
 * Overwrites, in place, the password held by a libpq connection string (key=value "password=..." or a
 * postgresql:// URI's "user:password@" or "?password=") with '*'s, keeping everything else; for argv, whose
 * bytes other users read in /proc/PID/cmdline. Returns true when there was a password.
 */
bool config_conninfo_hide_password(char *conninfo);

const char *config_unknown_point_policy_name(enum unknown_point_policy policy);

#endif
