// SPDX-License-Identifier: Apache-2.0
/*
 * migrate: see migrate.h.
 */
#include "cli/migrate.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>

#include "db.h"
#include "util/log.h"

#define MODULE "migrate"

static int applied(PGconn *conn, const char *name, int *is_applied)
{
	const char *params[1] = { name };
	PGresult *res = PQexecParams(conn, "SELECT 1 FROM schema_migrations WHERE version = $1", 1, NULL,
				     params, NULL, NULL, 0);
	char err[512];

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		log_error(MODULE, "cannot read schema_migrations: %s",
			  db_error_line(conn, res, err, sizeof(err)));
		PQclear(res);
		return -1;
	}
	*is_applied = PQntuples(res) > 0;
	PQclear(res);
	return 0;
}

/*
 * Ends a failed migration's transaction. Its own failure changes nothing (db_exec has logged it): the caller
 * closes the connection on any error, and that rolls the transaction back anyway.
 */
static void rollback(PGconn *conn)
{
	if (db_exec(MODULE, conn, "ROLLBACK", "ROLLBACK") < 0) {
		/* see above: nothing left to undo here */
	}
}

static int apply(PGconn *conn, const struct migration *m, const struct migrate_options *opts)
{
	char compress_after[16] = "";
	const char *params[3] = { m->name, opts->chunk_interval ? opts->chunk_interval : "", compress_after };
	PGresult *res;
	char err[1024];

	if (db_exec(MODULE, conn, "BEGIN", "BEGIN") < 0)
		return -1;
	if (opts->compress_after_days >= 0)
		snprintf(compress_after, sizeof(compress_after), "%d", opts->compress_after_days);
	/* Read by the migrations that make the hypertable (002) and its compression policy (015). */
	res = PQexecParams(conn,
			   "SELECT set_config('mqtt2pg.chunk_interval', $2, true), "
			   "set_config('mqtt2pg.compress_after_days', $3, true), $1::text",
			   3, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		log_error(MODULE, "cannot set the settings of migration %s: %s", m->name,
			  db_error_line(conn, res, err, sizeof(err)));
		PQclear(res);
		rollback(conn);
		return -1;
	}
	PQclear(res);
	res = PQexec(conn, m->sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
		log_error(MODULE, "migration %s failed: %s", m->name,
			  db_error_line(conn, res, err, sizeof(err)));
		PQclear(res);
		rollback(conn);
		return -1;
	}
	PQclear(res);
	res = PQexecParams(conn, "INSERT INTO schema_migrations (version) VALUES ($1)", 1, NULL, params, NULL,
			   NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		log_error(MODULE, "cannot record migration %s: %s", m->name,
			  db_error_line(conn, res, err, sizeof(err)));
		PQclear(res);
		rollback(conn);
		return -1;
	}
	PQclear(res);
	if (db_exec(MODULE, conn, "COMMIT", "COMMIT") < 0)
		return -1;
	log_info(MODULE, "applied %s", m->name);
	return 0;
}

/*
 * Whether the server preloads TimescaleDB. shared_preload_libraries itself is readable only by superusers
 * and pg_read_all_settings; the loader's own setting is in pg_settings for everyone once it is loaded.
 */
#define TIMESCALEDB_LOADED "SELECT EXISTS (SELECT 1 FROM pg_settings WHERE name = 'timescaledb.disable_load')"

/* One text value of a one-row query, into out (empty when NULL or no row). Returns 0, or -1 after logging. */
static int query_text(PGconn *conn, const char *sql, const char *what, char *out, size_t size)
{
	PGresult *res = PQexec(conn, sql);
	char err[512];

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		log_error(MODULE, "cannot %s: %s", what, db_error_line(conn, res, err, sizeof(err)));
		PQclear(res);
		return -1;
	}
	snprintf(out, size, "%s", PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "");
	PQclear(res);
	return 0;
}

/*
 * --timescaledb: create the extension (its control file marks it trusted, so the database owner may), or
 * say exactly why it cannot be: not installed on the server, or not in shared_preload_libraries.
 */
static int create_timescaledb(PGconn *conn)
{
	char installed[64], available[64], loaded[8];

	if (query_text(conn, "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'",
		       "look for the timescaledb extension", installed, sizeof(installed)) < 0)
		return -1;
	if (installed[0]) {
		log_info(MODULE, "TimescaleDB %s is installed in this database", installed);
		return 0;
	}
	if (query_text(conn, "SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'",
		       "list the server's available extensions", available, sizeof(available)) < 0 ||
	    query_text(conn, TIMESCALEDB_LOADED, "check whether TimescaleDB is loaded", loaded,
		       sizeof(loaded)) < 0)
		return -1;
	if (!available[0]) {
		log_error(
			MODULE,
			"--timescaledb: TimescaleDB is not installed on this PostgreSQL server "
			"(no timescaledb in pg_available_extensions); install it, or migrate without --timescaledb");
		return -1;
	}
	if (strcmp(loaded, "t") != 0) {
		log_error(MODULE,
			  "--timescaledb: TimescaleDB %s is installed but not loaded: add timescaledb to "
			  "shared_preload_libraries in postgresql.conf and restart PostgreSQL",
			  available);
		return -1;
	}
	if (db_exec(MODULE, conn, "CREATE EXTENSION IF NOT EXISTS timescaledb",
		    "create the timescaledb extension") < 0)
		return -1;
	log_info(MODULE, "created the timescaledb extension (%s)", available);
	return 0;
}

/*
 * Without --timescaledb on a server that preloads TimescaleDB, a new database would silently get plain
 * partitions: say so before the table is made, when it is still a choice.
 */
static int warn_unused_timescaledb(PGconn *conn)
{
	char state[8];

	if (query_text(conn,
		       "SELECT to_regclass('public.measurements') IS NULL AND (" TIMESCALEDB_LOADED ") "
		       "AND NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')",
		       "check for TimescaleDB", state, sizeof(state)) < 0)
		return -1;
	if (strcmp(state, "t") == 0)
		log_warn(
			MODULE,
			"this server preloads TimescaleDB but the extension is not created in this database: "
			"measurements will be a plain partitioned table; run `mqtt2pg migrate --timescaledb` "
			"instead to make it a hypertable");
	return 0;
}

static void log_notice(void *arg, const char *message)
{
	(void)arg;
	log_info(MODULE, "%.*s", (int)strcspn(message, "\n"), message);
}

int migrate_run(const char *conninfo, const struct migrate_options *opts)
{
	PGconn *conn = db_connect(MODULE, conninfo, NULL, "mqtt2pg-migrate");
	int rc = -1, count = 0;

	if (!conn)
		return -1;
	PQsetNoticeProcessor(conn, log_notice, NULL);
	/* The notice "relation already exists, skipping" on every run would only be noise. */
	if (db_exec(MODULE, conn, "SELECT pg_advisory_lock(hashtext('mqtt2pg.migrate'))",
		    "take the migration lock") < 0 ||
	    db_exec(MODULE, conn, "SET client_min_messages = warning", "set client_min_messages") < 0 ||
	    db_exec(MODULE, conn,
		    "CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY, "
		    "applied_at timestamptz NOT NULL DEFAULT now())",
		    "create schema_migrations") < 0 ||
	    db_exec(MODULE, conn, "RESET client_min_messages", "reset client_min_messages") < 0)
		goto out;
	if (opts->timescaledb ? create_timescaledb(conn) < 0 : warn_unused_timescaledb(conn) < 0)
		goto out;
	for (const struct migration *m = migration_files; m->name; m++) {
		int is_applied;
		if (applied(conn, m->name, &is_applied) < 0)
			goto out;
		if (is_applied)
			continue;
		if (apply(conn, m, opts) < 0)
			goto out;
		count++;
	}
	log_info(MODULE, "database is up to date (%d migration(s) applied now)", count);
	rc = 0;
out:
	PQfinish(conn); /* ends the session, and with it the advisory lock */
	return rc;
}

/* Runs one owner-only setter of sql/015 (set_raw_retention, set_compress_after) and logs what it did. */
static int call_setter(const char *conninfo, const char *function, int days)
{
	PGconn *conn = db_connect(MODULE, conninfo, NULL, "mqtt2pg-migrate");
	char value[16], sql[64], err[512];
	const char *params[1] = { value };
	PGresult *res;
	int rc = -1;

	if (!conn)
		return -1;
	snprintf(value, sizeof(value), "%d", days);
	snprintf(sql, sizeof(sql), "SELECT %s($1::integer)", function);
	res = PQexecParams(conn, sql, 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		log_error(MODULE, "%s(%d) failed: %s", function, days,
			  db_error_line(conn, res, err, sizeof(err)));
	} else {
		log_info(MODULE, "%s", PQgetvalue(res, 0, 0));
		rc = 0;
	}
	PQclear(res);
	PQfinish(conn);
	return rc;
}

int migrate_set_raw_retention(const char *conninfo, int days)
{
	return call_setter(conninfo, "set_raw_retention", days);
}

int migrate_set_compress_after(const char *conninfo, int days)
{
	return call_setter(conninfo, "set_compress_after", days);
}
