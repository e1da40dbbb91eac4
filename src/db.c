// SPDX-License-Identifier: Apache-2.0
/*
 * db: libpq helpers shared by the writers, the registry refresher, migrate and the admin commands.
 */
#include "db.h"

#include <stdio.h>
#include <string.h>

#include "log.h"

/* libpq prints notices (and a server's FATAL on a killed session) to stderr raw; route them to our log. */
static void notice_to_log(void *module, const char *message)
{
	log_warn((const char *)module, "database notice: %.*s", (int)strcspn(message, "\n"), message);
}

PGconn *db_connect(const char *module, const char *conninfo, const char *password, const char *application_name)
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
		log_error(module, "cannot connect to the database: %s", db_error_line(conn, NULL, err, sizeof(err)));
		PQfinish(conn);
		return NULL;
	}
	PQsetNoticeProcessor(conn, notice_to_log, (void *)module);
	return conn;
}

int db_exec(const char *module, PGconn *conn, const char *sql, const char *what)
{
	PGresult *res = PQexec(conn, sql);
	ExecStatusType st = PQresultStatus(res);
	char err[512];

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		log_error(module, "%s failed: %s", what, db_error_line(conn, res, err, sizeof(err)));
		PQclear(res);
		return -1;
	}
	PQclear(res);
	return 0;
}

const char *db_sqlstate(const PGresult *res)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	return state ? state : "";
}

bool db_error_is_transient(PGconn *conn, const PGresult *res)
{
	const char *state = db_sqlstate(res);

	if (PQstatus(conn) != CONNECTION_OK)
		return true;
	if (state[0] == '\0')
		return true; /* no SQLSTATE: the failure came from libpq or the link, not from a row */
	if (strncmp(state, "08", 2) == 0 ||  /* connection exception */
	    strncmp(state, "40", 2) == 0 ||  /* serialization failure, deadlock */
	    strncmp(state, "53", 2) == 0 ||  /* insufficient resources: disk full, too many connections */
	    strncmp(state, "57", 2) == 0 ||  /* operator intervention: admin/crash shutdown, cancel */
	    strncmp(state, "58", 2) == 0 ||  /* system error (I/O) */
	    strcmp(state, "55P03") == 0 ||   /* lock not available */
	    strcmp(state, "XX000") == 0)     /* internal error: not the row's fault */
		return true;
	return false;
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
