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

/* True for failures worth retrying: connection loss, serialization failure, deadlock, admin shutdown,
 * too many connections, out of resources. res may be NULL (then only the connection state is used). */
bool db_error_is_transient(PGconn *conn, const PGresult *res);

/* The SQLSTATE of res, or "" if none. */
const char *db_sqlstate(const PGresult *res);

/* The primary error message of res (or of conn when res is NULL), one line, trailing newline removed,
 * into buf. */
const char *db_error_line(PGconn *conn, const PGresult *res, char *buf, size_t cap);

#endif
