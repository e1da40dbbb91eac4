// SPDX-License-Identifier: Apache-2.0
/*
 * regsync: registry snapshots from PostgreSQL (see regsync.h). A reload that fails keeps the previous
 * snapshot in service and says why; ingest never waits for a reload.
 */
#include "regsync.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "db.h"
#include "util/log.h"
#include "util/xalloc.h"

#define MODULE		   "registry"
#define RELOAD_DEBOUNCE_MS 200

struct regsync {
	const char *conninfo;
	const char *password;
	struct db_secret *secret; /* when set, its password instead (regsync_use_secret) */
	struct registry_store *store;
	struct stats *stats;
	int64_t refresh_interval_ms;
	PGconn *conn;
	bool reload_pending;
	bool have_snapshot;
	int64_t last_reload_ms;
	int64_t next_connect_ms;
	int backoff_ms;
};

struct regsync *regsync_new(const char *conninfo, const char *password, struct registry_store *store,
			    struct stats *stats, int refresh_interval_s)
{
	struct regsync *rs = xcalloc(1, sizeof(*rs));

	rs->conninfo = conninfo;
	rs->password = password;
	rs->store = store;
	rs->stats = stats;
	rs->refresh_interval_ms = (int64_t)refresh_interval_s * 1000;
	rs->backoff_ms = 500;
	return rs;
}

void regsync_use_secret(struct regsync *rs, struct db_secret *secret)
{
	rs->secret = secret;
}

void regsync_free(struct regsync *rs)
{
	if (!rs)
		return;
	if (rs->conn)
		PQfinish(rs->conn);
	free(rs);
}

typedef bool (*add_row_fn)(struct registry *r, const PGresult *res, int row);

static bool add_tenant_row(struct registry *r, const PGresult *res, int i)
{
	return registry_add_tenant(r, atoi(PQgetvalue(res, i, 0)), PQgetvalue(res, i, 1));
}

static bool add_device_row(struct registry *r, const PGresult *res, int i)
{
	return registry_add_device(r, atoi(PQgetvalue(res, i, 0)), atoi(PQgetvalue(res, i, 1)),
				   PQgetvalue(res, i, 2), PQgetvalue(res, i, 3)[0] == 't');
}

static bool add_alias_row(struct registry *r, const PGresult *res, int i)
{
	return registry_add_alias(r, atoi(PQgetvalue(res, i, 0)), PQgetvalue(res, i, 1),
				  PQgetvalue(res, i, 2), atoi(PQgetvalue(res, i, 3)));
}

static bool add_point_row(struct registry *r, const PGresult *res, int i)
{
	bool has_min = !PQgetisnull(res, i, 3), has_max = !PQgetisnull(res, i, 4);

	return registry_add_point(r, atoi(PQgetvalue(res, i, 0)), atoi(PQgetvalue(res, i, 1)),
				  PQgetvalue(res, i, 2), has_min,
				  has_min ? strtod(PQgetvalue(res, i, 3), NULL) : 0, has_max,
				  has_max ? strtod(PQgetvalue(res, i, 4), NULL) : 0);
}

/*
 * Reads one table through a cursor, FETCH_ROWS at a time, so that 400,000 points never sit in one query
 * result next to the snapshot being built (that doubled the bridge's peak memory). 2,000 rows (~250 KB of
 * PGresult) rather than 10,000: a reload's peak, old and new snapshot side by side, was 1.1 MB lower, for
 * ~200 round trips per 400,000 points. Returns 0, -1 on a database error (logged), -2 on an inconsistent row.
 */
#define FETCH_ROWS "2000"

static int load_table(PGconn *conn, struct registry *r, const char *name, const char *select, add_row_fn add)
{
	char sql[256];
	int rc = 0;

	snprintf(sql, sizeof(sql), "DECLARE %s CURSOR FOR %s", name, select);
	if (db_exec(MODULE, conn, sql, "declare registry cursor") < 0)
		return -1;
	snprintf(sql, sizeof(sql), "FETCH " FETCH_ROWS " FROM %s", name);
	for (;;) {
		PGresult *res = NULL;
		int rows;

		if (db_exec_params(conn, DB_LOG(MODULE), "registry query", sql, 0, NULL, &res) != 0)
			return -1;
		rows = PQntuples(res);
		for (int i = 0; i < rows && rc == 0; i++)
			if (!add(r, res, i))
				rc = -2;
		PQclear(res);
		if (rc < 0 || rows == 0)
			break;
	}
	snprintf(sql, sizeof(sql), "CLOSE %s", name);
	if (rc == 0 && db_exec(MODULE, conn, sql, "close registry cursor") < 0)
		rc = -1;
	return rc;
}

/* Reads the four tables in one snapshot and publishes the result. */
static int reload(struct regsync *rs)
{
	struct registry *r = NULL;
	PGresult *counts = NULL;
	int rc = -1;

	if (db_exec(MODULE, rs->conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
		    "begin registry read") < 0)
		return -1;
	r = registry_new();
	/* The counts first (same snapshot), so that the registry sizes its arrays and indexes exactly. */
	if (db_exec_params(rs->conn, DB_LOG(MODULE), "registry query",
			   "SELECT (SELECT count(*) FROM tenants), (SELECT count(*) FROM devices), "
			   "(SELECT count(*) FROM points)",
			   0, NULL, &counts) != 0)
		goto out;
	registry_reserve(r, strtoull(PQgetvalue(counts, 0, 0), NULL, 10),
			 strtoull(PQgetvalue(counts, 0, 1), NULL, 10),
			 strtoull(PQgetvalue(counts, 0, 2), NULL, 10));
	PQclear(counts);
	rc = load_table(rs->conn, r, "registry_tenants", "SELECT id, slug FROM tenants", add_tenant_row);
	if (rc == 0)
		rc = load_table(rs->conn, r, "registry_devices",
				"SELECT id, tenant_id, serial, enabled FROM devices", add_device_row);
	/* Grouped by device (the UNIQUE (device_id, name) index gives that order), as the registry stores them. */
	if (rc == 0)
		rc = load_table(
			rs->conn, r, "registry_points",
			"SELECT id, device_id, name, min_value, max_value FROM points ORDER BY device_id, name",
			add_point_row);
	if (rc == 0)
		rc = load_table(rs->conn, r, "registry_aliases",
				"SELECT tenant_id, scope, alias, device_id FROM device_aliases",
				add_alias_row);
	if (rc == -2)
		log_error(
			MODULE,
			"registry rows are inconsistent (duplicate or dangling key); keeping the old snapshot");
	if (rc < 0)
		goto out;
	log_info(MODULE, "loaded %zu tenants, %zu devices, %zu points, %zu aliases", registry_tenant_count(r),
		 registry_device_count(r), registry_point_count(r), registry_alias_count(r));
	registry_store_swap(rs->store, r);
	r = NULL;
	rs->have_snapshot = true;
	STATS_ADD(rs->stats, registry_reloads, 1);
out:
	registry_unref(r);
	/* The previous snapshot was freed by the swap (or will be by its last reader): give the pages back. */
	malloc_trim(0);
	if (db_exec(MODULE, rs->conn, rc == 0 ? "COMMIT" : "ROLLBACK", "end registry read") < 0)
		rc = -1;
	return rc;
}

/* db_connect_backoff's set-up of a new session. */
static int listen_for_changes(PGconn *conn, void *arg)
{
	(void)arg;
	return db_exec(MODULE, conn, "LISTEN mqtt2pg_registry", "LISTEN");
}

/* One attempt: regsync_tick keeps its own back-off, since the main thread must never sleep in it. */
static int connect_and_listen(struct regsync *rs)
{
	const struct db_target target = { .module = MODULE,
					  .conninfo = rs->conninfo,
					  .password = rs->password,
					  .secret = rs->secret,
					  .application_name = "mqtt2pg-registry" };

	if (rs->conn && PQstatus(rs->conn) == CONNECTION_OK)
		return 0;
	if (rs->conn)
		PQfinish(rs->conn);
	rs->conn = NULL;
	return db_connect_backoff(&target, NULL, 1, listen_for_changes, NULL, &rs->conn, NULL) == 0 ? 0 : -1;
}

int regsync_load_now(struct regsync *rs)
{
	if (connect_and_listen(rs) < 0)
		return -1;
	/* LISTEN first, then read: a change committed in between is either in the read or notified. */
	if (reload(rs) < 0)
		return -1;
	rs->reload_pending = false;
	rs->last_reload_ms = clock_monotonic_ms();
	return 0;
}

int regsync_socket(const struct regsync *rs)
{
	return rs->conn && PQstatus(rs->conn) == CONNECTION_OK ? PQsocket(rs->conn) : -1;
}

bool regsync_has_snapshot(const struct regsync *rs)
{
	return rs->have_snapshot;
}

static void drain_notifications(struct regsync *rs)
{
	PGnotify *n;

	if (!PQconsumeInput(rs->conn))
		return; /* the connection broke; PQstatus says so and the tick reconnects */
	while ((n = PQnotifies(rs->conn)) != NULL) {
		log_debug(MODULE, "change notified (%s)", n->extra);
		rs->reload_pending = true;
		PQfreemem(n);
	}
}

void regsync_tick(struct regsync *rs, int64_t now_ms)
{
	if (!rs->conn || PQstatus(rs->conn) != CONNECTION_OK) {
		if (now_ms < rs->next_connect_ms)
			return;
		if (connect_and_listen(rs) < 0) {
			rs->next_connect_ms = now_ms + rs->backoff_ms;
			rs->backoff_ms = rs->backoff_ms < 30000 ? rs->backoff_ms * 2 : 30000;
			return;
		}
		log_info(MODULE, "reconnected; reloading in case a change was missed");
		rs->backoff_ms = 500;
		rs->reload_pending = true;
	}
	drain_notifications(rs);
	if (now_ms - rs->last_reload_ms >= rs->refresh_interval_ms)
		rs->reload_pending = true;
	if (rs->reload_pending && now_ms - rs->last_reload_ms >= RELOAD_DEBOUNCE_MS) {
		rs->last_reload_ms = now_ms;
		if (reload(rs) == 0)
			rs->reload_pending = false;
	}
}
