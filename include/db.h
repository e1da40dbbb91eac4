/* SPDX-License-Identifier: Apache-2.0 */
/*
 * db: what every libpq user in mqtt2pg shares: connecting without leaking the password into logs, running
 * a statement and checking it, and telling a transient failure (retry) from a permanent one (isolate).
 */
#ifndef MQTT2PG_DB_H
#define MQTT2PG_DB_H

#include <libpq-fe.h>
#include <stdbool.h>

/*
 * Connects with conninfo (a libpq conninfo string or URI); password, when not NULL, is passed separately so it
 * never appears in a conninfo that might be logged. application_name labels the session in pg_stat_activity.
 * Returns an owned connection, or NULL after logging why (module names the caller).
 */
PGconn *db_connect(const char *module, const char *conninfo, const char *password, const char *application_name);

/*
 * Runs sql (no parameters) and returns 0 if it succeeded (command or tuples), -1 otherwise after logging
 * the error with what (a short description of the statement).
 */
int db_exec(const char *module, PGconn *conn, const char *sql, const char *what);

/* True for failures worth retrying: connection loss, read-only database (class 25), serialization failure,
 * deadlock, admin shutdown, too many connections, out of resources, a missing GRANT (42501 that is not a
 * row-level security refusal). res may be NULL (then only the connection state is used). */
bool db_error_is_transient(PGconn *conn, const PGresult *res);

/* True when a transient failure should be retried on a new session rather than this one: the connection is
 * gone, the database is read-only (25006: a standby after failover), or it is shutting down (57P0x, 08xxx). */
bool db_error_needs_new_session(PGconn *conn, const PGresult *res);


/*
 * The database password, re-readable at run time: a Kubernetes Secret mounted as a file is rotated in place,
 * and SIGHUP makes new connections use the new one (open sessions stay authenticated; PostgreSQL does not
 * end them when a password changes). Shared by the writer threads and the main thread, hence the lock.
 */
struct db_secret;

/* A secret holding password (borrowed, copied; may be NULL), re-read from file (borrowed, copied; NULL:
 * never re-read, e.g. the password came from the environment). Returns an owned secret. */
struct db_secret *db_secret_new(const char *password, const char *file);

/* Re-reads the file (first line). Returns 1 if the password changed, 0 if not (or no file), -1 after
 * logging when the file cannot be read (the old password stays). */
int db_secret_reload(struct db_secret *secret);

/* A copy of the current password (owned by the caller, free()), or NULL if there is none. */
char *db_secret_get(struct db_secret *secret);

/* NULL is a no-op. */
void db_secret_free(struct db_secret *secret);

/* db_connect with the secret's current password (the copy is wiped after use). When that fails and the
 * secret's file holds a new password, connects once more with it. secret may be NULL. */
PGconn *db_connect_secret(const char *module, const char *conninfo, struct db_secret *secret,
			  const char *application_name);

/* The SQLSTATE of res, or "" if none. */
const char *db_sqlstate(const PGresult *res);

/* The primary error message of res (or of conn when res is NULL), one line, trailing newline removed,
 * into buf. */
const char *db_error_line(PGconn *conn, const PGresult *res, char *buf, size_t cap);

#endif
