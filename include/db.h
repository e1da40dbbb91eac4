/* SPDX-License-Identifier: Apache-2.0 */
/*
 * db: what every libpq user in mqtt2pg shares: connecting without leaking the password into logs, running
 * a statement and checking it, and telling a transient failure (retry) from a permanent one (isolate).
 */
#ifndef MQTT2PG_DB_H
#define MQTT2PG_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * Connects with conninfo (a libpq conninfo string or URI); password, when not NULL, is passed separately so it
 * never appears in a conninfo that might be logged. application_name labels the session in pg_stat_activity.
 * Returns an owned connection, or NULL after logging why (module names the caller).
 */
PGconn *db_connect(const char *module, const char *conninfo, const char *password,
		   const char *application_name) __attribute__((warn_unused_result));

/*
 * Runs sql (no parameters) and returns 0 if it succeeded (command or tuples), -1 otherwise after logging
 * the error with what (a short description of the statement).
 */
int db_exec(const char *module, PGconn *conn, const char *sql, const char *what)
	__attribute__((warn_unused_result));

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
int db_secret_reload(struct db_secret *secret) __attribute__((warn_unused_result));

/* A copy of the current password (owned by the caller, free()), or NULL if there is none. */
char *db_secret_get(struct db_secret *secret);

/* NULL is a no-op. */
void db_secret_free(struct db_secret *secret);

/* db_connect with the secret's current password (the copy is wiped after use). When that fails and the
 * secret's file holds a new password, connects once more with it. secret may be NULL. */
PGconn *db_connect_secret(const char *module, const char *conninfo, struct db_secret *secret,
			  const char *application_name) __attribute__((warn_unused_result));

/* The SQLSTATE of res, or "" if none. */
const char *db_sqlstate(const PGresult *res);

/* The primary error message of res (or of conn when res is NULL), one line, trailing newline removed,
 * into buf. */
const char *db_error_line(PGconn *conn, const PGresult *res, char *buf, size_t cap);

/*
 * --- statements and tenant transactions -------------------------------------------------------------------
 *
 * DESIGN: every statement mqtt2pg runs is checked in one place (db_check) with one error convention:
 *   0        the statement succeeded (command or tuples);
 *   -EAGAIN  it failed for a reason worth retrying: the connection is gone or the database's state, not the
 *            statement, is at fault (db_error_is_transient: 08 connection, 40 serialization/deadlock, 25006
 *            read-only, 53/57/58, 55P03, a missing GRANT);
 *   -EIO     the statement's own error (a constraint, a row-level security refusal, a bad value);
 *   -EINVAL  a caller's mistake caught before anything was sent (db_begin_tenant with no tenant).
 * The failure is told once, where the context is, by a struct db_report: the daemon logs it under its module
 * ("<what> failed: <error> (SQLSTATE ...)"), a command-line tool prints its own line, and the writer turns the
 * result into its outcome (retry, isolate, reject). The result itself never outlives the check on failure.
 */

/* How a failed statement is told. report NULL: log_error(module, "%s failed: %s", what, error line). Otherwise
 * report(arg, conn, res, what) is called instead (res borrowed for the call; never NULL for a failed
 * statement unless libpq could not allocate one). */
struct db_report {
	const char *module;
	void (*report)(void *arg, PGconn *conn, const PGresult *res, const char *what);
	void *arg;
};

/* The default report: log_error under module. */
#define DB_LOG(module_name) (&(const struct db_report){ .module = (module_name) })

/*
 * The check: takes ownership of res (the result of any PQexec* call on conn). Returns 0 and hands res to
 * *result (owned by the caller, PQclear; result NULL: cleared here), or -EAGAIN / -EIO after telling the
 * failure once through report (*result set to NULL).
 */
int db_check(PGconn *conn, const struct db_report *report, const char *what, PGresult *res, PGresult **result)
	__attribute__((warn_unused_result));

/*
 * Runs sql with nparams text parameters (params borrowed; NULL entries are SQL NULL) and checks it with
 * db_check: 0 with *result owned by the caller (result may be NULL), -EAGAIN or -EIO after one report.
 */
int db_exec_params(PGconn *conn, const struct db_report *report, const char *what, const char *sql,
		   int nparams, const char *const *params, PGresult **result)
	__attribute__((warn_unused_result));

enum db_tenant_flags {
	DB_TENANT_READ_WRITE = 0,
	DB_TENANT_READ_ONLY = 1, /* BEGIN READ ONLY: a report that must not write */
};

/*
 * The one place a tenant transaction opens (a security invariant: tests/tenant_context_check.sh fails the
 * build's tests when any other .c sets app.tenant_id). BEGIN, then SELECT set_config('app.tenant_id', id,
 * true): the context is transaction-local, so a pooled or reused connection never carries one tenant's
 * context into the next transaction, and "no context" means "no rows" in every policy (sql/001).
 * tenant_id must be > 0 (-EINVAL, nothing sent). Returns 0 inside the transaction, or -EAGAIN / -EIO after
 * one report with no transaction left open (a failed set_config is rolled back here).
 */
int db_begin_tenant(PGconn *conn, const struct db_report *report, int32_t tenant_id,
		    enum db_tenant_flags flags) __attribute__((warn_unused_result));

/* --- connecting with back-off ---------------------------------------------------------------------------- */

/* A doubling wait between connection attempts or retries: delay_ms, then twice that, up to max_ms. */
struct db_backoff {
	int delay_ms, first_ms, max_ms;
};

/* Sleeps delay_ms, then doubles it (at most max_ms). */
void db_backoff_wait(struct db_backoff *backoff);

/* The next wait is first_ms again (after a success). */
void db_backoff_reset(struct db_backoff *backoff);

/* Where and as whom to connect (all borrowed). secret set: its current password (db_connect_secret);
 * otherwise password (may be NULL). */
struct db_target {
	const char *module, *conninfo, *password, *application_name;
	struct db_secret *secret;
};

/*
 * Connects to target and runs setup(conn, arg) on the new connection (NULL: none; a non-zero return counts
 * as a failed attempt, the connection is closed). A failed attempt is followed by db_backoff_wait(backoff)
 * and another, until attempts have failed (0: no limit, it waits as long as it takes; with 1 backoff may be
 * NULL: nothing waits). On success *conn is the owned connection and 0 is returned; otherwise -EAGAIN and
 * *conn is NULL. *failures (may be NULL) counts the failed attempts, for the reconnect counter. Each failure
 * is logged by db_connect under target->module.
 */
int db_connect_backoff(const struct db_target *target, struct db_backoff *backoff, int attempts,
		       int (*setup)(PGconn *conn, void *arg), void *arg, PGconn **conn, int *failures)
	__attribute__((warn_unused_result));

#endif
