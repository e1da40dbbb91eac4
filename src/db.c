// SPDX-License-Identifier: Apache-2.0
/*
 * db: libpq helpers shared by the writers, the registry refresher, migrate and the admin commands.
 */
#include "db.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "util/log.h"
#include "util/secret.h"
#include "util/xalloc.h"

#define MODULE "db"

struct db_secret {
	pthread_mutex_t lock;
	char *password; /* guarded by lock */
	char *file;	/* NULL: nothing to re-read */
};

/* libpq prints notices (and a server's FATAL on a killed session) to stderr raw; route them to our log. */
static void notice_to_log(void *module, const char *message)
{
	log_warn((const char *)module, "database notice: %.*s", (int)strcspn(message, "\n"), message);
}

PGconn *db_connect(const char *module, const char *conninfo, const char *password,
		   const char *application_name)
{
	const char *keys[5], *values[5];
	PGconn *conn;
	char err[512];
	int n = 0;

	/* expand_dbname=1: "dbname" carries the whole conninfo/URI; keys after it override what it set. */
	keys[n] = "dbname", values[n++] = conninfo;
	if (password)
		keys[n] = "password", values[n++] = password;
	keys[n] = "application_name", values[n++] = application_name;
	keys[n] = "connect_timeout", values[n++] = "10";
	keys[n] = NULL, values[n] = NULL;
	conn = PQconnectdbParams(keys, values, 1);
	if (!conn) {
		log_error(module, "cannot allocate a database connection");
		return NULL;
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		log_error(module, "cannot connect to the database: %s",
			  db_error_line(conn, NULL, err, sizeof(err)));
		PQfinish(conn);
		return NULL;
	}
	PQsetNoticeProcessor(conn, notice_to_log, (void *)module);
	return conn;
}

int db_exec(const char *module, PGconn *conn, const char *sql, const char *what)
{
	return db_check(conn, DB_LOG(module), what, PQexec(conn, sql), NULL) == 0 ? 0 : -1;
}

int db_check(PGconn *conn, const struct db_report *report, const char *what, PGresult *res, PGresult **result)
{
	ExecStatusType st = PQresultStatus(res);
	char err[512];
	int rc;

	if (result)
		*result = NULL;
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		if (result)
			*result = res;
		else
			PQclear(res);
		return 0;
	}
	rc = db_error_is_transient(conn, res) ? -EAGAIN : -EIO;
	if (report->report)
		report->report(report->arg, conn, res, what);
	else
		log_error(report->module, "%s failed: %s", what, db_error_line(conn, res, err, sizeof(err)));
	PQclear(res);
	return rc;
}

int db_exec_params(PGconn *conn, const struct db_report *report, const char *what, const char *sql,
		   int nparams, const char *const *params, PGresult **result)
{
	return db_check(conn, report, what, PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0),
			result);
}

int db_begin_tenant(PGconn *conn, const struct db_report *report, int32_t tenant_id,
		    enum db_tenant_flags flags)
{
	char tenant[16];
	const char *params[1] = { tenant };
	int rc;

	if (tenant_id <= 0) {
		log_error(report->module, "no tenant for a tenant transaction (tenant id %d)",
			  (int)tenant_id);
		return -EINVAL;
	}
	rc = db_exec_params(conn, report, "BEGIN", flags & DB_TENANT_READ_ONLY ? "BEGIN READ ONLY" : "BEGIN",
			    0, NULL, NULL);
	if (rc != 0)
		return rc;
	snprintf(tenant, sizeof(tenant), "%d", (int)tenant_id);
	rc = db_exec_params(conn, report, "set tenant context",
			    "SELECT set_config('app.tenant_id', $1, true)", 1, params, NULL);
	/* Never leave the caller in a transaction without its tenant: the failure was told, the ROLLBACK is quiet. */
	if (rc != 0 && PQstatus(conn) == CONNECTION_OK)
		PQclear(PQexec(conn, "ROLLBACK"));
	return rc;
}

void db_backoff_wait(struct db_backoff *backoff)
{
	clock_sleep_ms(backoff->delay_ms);
	backoff->delay_ms = backoff->delay_ms * 2 > backoff->max_ms ? backoff->max_ms : backoff->delay_ms * 2;
}

void db_backoff_reset(struct db_backoff *backoff)
{
	backoff->delay_ms = backoff->first_ms;
}

static PGconn *connect_target(const struct db_target *target)
{
	if (target->secret)
		return db_connect_secret(target->module, target->conninfo, target->secret,
					 target->application_name);
	return db_connect(target->module, target->conninfo, target->password, target->application_name);
}

int db_connect_backoff(const struct db_target *target, struct db_backoff *backoff, int attempts,
		       int (*setup)(PGconn *conn, void *arg), void *arg, PGconn **conn, int *failures)
{
	int failed = 0;

	*conn = NULL;
	for (;;) {
		PGconn *c = connect_target(target);

		if (c && (!setup || setup(c, arg) == 0)) {
			*conn = c;
			break;
		}
		if (c)
			PQfinish(c);
		failed++;
		if (attempts > 0 && failed >= attempts)
			break;
		db_backoff_wait(backoff);
	}
	if (failures)
		*failures = failed;
	return *conn ? 0 : -EAGAIN;
}

const char *db_sqlstate(const PGresult *res)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	return state ? state : "";
}

/*
 * 42501 (insufficient privilege) is the code of two different things: a row-level security policy that
 * refuses a row (the row's fault: permanent, only that row is rejected) and a missing GRANT on our own tables
 * (an operator's migration or REVOKE in progress: every row fails the same way, so it is the database's state,
 * and rejecting the batch would lose it). PostgreSQL words the first "new row violates row-level security
 * policy"; the message is the only difference.
 */
static bool is_rls_violation(const PGresult *res)
{
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

	return msg && strstr(msg, "row-level security") != NULL;
}

bool db_error_is_transient(PGconn *conn, const PGresult *res)
{
	const char *state = db_sqlstate(res);

	if (PQstatus(conn) != CONNECTION_OK)
		return true;
	if (state[0] == '\0')
		return true; /* no SQLSTATE: the failure came from libpq or the link, not from a row */
	if (strncmp(state, "08", 2) == 0 || /* connection exception */
	    strncmp(state, "25", 2) ==
		    0 || /* invalid transaction state: 25006 read-only (standby, failover) */
	    strncmp(state, "40", 2) == 0 || /* serialization failure, deadlock */
	    strncmp(state, "53", 2) == 0 || /* insufficient resources: disk full, too many connections */
	    strncmp(state, "57", 2) == 0 || /* operator intervention: admin/crash shutdown, cancel */
	    strncmp(state, "58", 2) == 0 || /* system error (I/O) */
	    strcmp(state, "55P03") == 0 ||  /* lock not available */
	    strcmp(state, "XX000") == 0)    /* internal error: not the row's fault */
		return true;
	if (strcmp(state, "42501") == 0 && !is_rls_violation(res))
		return true; /* a missing GRANT: the database's state, not the row's */
	return false;
}

bool db_error_needs_new_session(PGconn *conn, const PGresult *res)
{
	const char *state = db_sqlstate(res);

	if (PQstatus(conn) != CONNECTION_OK)
		return true;
	/* A session that saw "read-only" may sit on a standby (failover moved the primary elsewhere; a new
	 * connection through the same service name finds it) or keep a read-only default set at connect. */
	return strcmp(state, "25006") == 0 || strncmp(state, "57P0", 4) == 0 || strncmp(state, "08", 2) == 0;
}

const char *db_error_line(PGconn *conn, const PGresult *res, char *buf, size_t cap)
{
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *state = db_sqlstate(res);

	if (!msg || !*msg)
		msg = res && *PQresultErrorMessage(res) ? PQresultErrorMessage(res) : PQerrorMessage(conn);
	if (state[0])
		snprintf(buf, cap, "%s (SQLSTATE %s)", msg, state);
	else
		snprintf(buf, cap, "%s", msg);
	for (char *p = buf; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = (p[1] ? ' ' : '\0');
	return buf;
}

struct db_secret *db_secret_new(const char *password, const char *file)
{
	struct db_secret *secret = xcalloc(1, sizeof(*secret));

	pthread_mutex_init(&secret->lock, NULL);
	secret->password = password ? xstrdup(password) : NULL;
	secret->file = file ? xstrdup(file) : NULL;
	return secret;
}

int db_secret_reload(struct db_secret *secret)
{
	char *password = NULL, err[512];
	int changed;

	if (!secret || !secret->file)
		return 0;
	/* The same rule as at start-up (mode 0600, our file or root's): a rotated file is no exception. */
	if (secret_read_file(secret->file, &password, err, sizeof(err)) != 0) {
		log_error(MODULE, "cannot re-read the database password: %s; keeping the old password", err);
		return -1;
	}
	pthread_mutex_lock(&secret->lock);
	changed = !secret->password || strcmp(secret->password, password) != 0;
	if (changed) {
		if (secret->password)
			explicit_bzero(secret->password, strlen(secret->password));
		free(secret->password);
		secret->password = password;
		password = NULL;
	}
	pthread_mutex_unlock(&secret->lock);
	if (password) {
		explicit_bzero(password, strlen(password));
		free(password);
	}
	return changed;
}

char *db_secret_get(struct db_secret *secret)
{
	char *copy;

	if (!secret)
		return NULL;
	pthread_mutex_lock(&secret->lock);
	copy = secret->password ? xstrdup(secret->password) : NULL;
	pthread_mutex_unlock(&secret->lock);
	return copy;
}

void db_secret_free(struct db_secret *secret)
{
	if (!secret)
		return;
	pthread_mutex_destroy(&secret->lock);
	if (secret->password)
		explicit_bzero(secret->password, strlen(secret->password));
	free(secret->password);
	free(secret->file);
	free(secret);
}

PGconn *db_connect_secret(const char *module, const char *conninfo, struct db_secret *secret,
			  const char *application_name)
{
	char *password = db_secret_get(secret);
	PGconn *conn = db_connect(module, conninfo, password, application_name);

	if (password) {
		explicit_bzero(password, strlen(password));
		free(password);
	}
	/* A Secret mounted as a file is rotated in place and nobody sends SIGHUP: a failed connect looks at the
	 * file again, and tries once more when the password in it changed. */
	if (!conn && db_secret_reload(secret) > 0) {
		log_info(module, "the database password file changed: connecting with the new password");
		return db_connect_secret(module, conninfo, secret, application_name);
	}
	return conn;
}
