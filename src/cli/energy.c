// SPDX-License-Identifier: Apache-2.0
/*
 * energy: the `mqtt2pg energy` command. It reads energy_daily (sql/014_energy.sql) under the tenant's context,
 * as the aggregate job writes it: the owner role is under the rollups' row-level security too (FORCE), so
 * the command names its tenant in a transaction-local setting, as the job does.
 */
#include "cli/energy.h"

#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "util/text.h"

#define MODULE	    "energy"
#define MAX_COLUMNS 8

/* Per device, counter point and local day; then the tenant's total per point and day, device "(all)". */
static const char ENERGY_SQL[] =
	"SELECT day::text AS day, device, point, round(energy::numeric, 3)::text AS energy, unit,"
	"       (extract(epoch FROM public.local_period_end(day_start, timezone, 'day') - day_start) / 3600)::int"
	"       || 'h' AS length "
	"FROM (SELECT e.day, e.serial AS device, e.point, e.energy, e.unit, e.day_start, e.timezone, 0 AS total"
	"        FROM public.energy_daily e"
	"       WHERE e.tenant = $1 AND e.day >= $2::date AND e.day < $3::date AND ($4::text IS NULL OR e.point = $4)"
	"      UNION ALL "
	"      SELECT t.day, '(all)', t.point, t.energy, t.unit, t.day_start, t.timezone, 1"
	"        FROM public.energy_daily_tenant t"
	"       WHERE t.tenant = $1 AND t.day >= $2::date AND t.day < $3::date AND ($4::text IS NULL OR t.point = $4)) r "
	"ORDER BY day, total, device, point";

static const char *option(int argc, char **argv, const char *name)
{
	for (int i = 0; i + 1 < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return argv[i + 1];
	return NULL;
}

/* db_check's report: a command's line on stderr. */
static void print_failure(void *arg, PGconn *conn, const PGresult *res, const char *what)
{
	char err[512];

	(void)arg;
	fprintf(stderr, "mqtt2pg: %s: %s\n", what, db_error_line(conn, res, err, sizeof(err)));
}

static const struct db_report report = { .module = MODULE, .report = print_failure };

/* An aligned table with a header; cells escaped (names were written by whoever registered the devices). */
static void print_table(const PGresult *res)
{
	int rows = PQntuples(res), cols = PQnfields(res);
	int width[MAX_COLUMNS] = { 0 };
	char buf[512];

	if (cols > MAX_COLUMNS)
		cols = MAX_COLUMNS;
	for (int c = 0; c < cols; c++) {
		width[c] = (int)strlen(PQfname(res, c));
		for (int r = 0; r < rows; r++) {
			int w = (int)strlen(text_escape(buf, sizeof(buf), PQgetvalue(res, r, c),
							(size_t)PQgetlength(res, r, c)));
			if (w > width[c])
				width[c] = w;
		}
	}
	for (int c = 0; c < cols; c++)
		printf("%-*s%s", width[c], PQfname(res, c), c + 1 < cols ? "  " : "\n");
	for (int r = 0; r < rows; r++)
		for (int c = 0; c < cols; c++)
			printf("%-*s%s", width[c],
			       text_escape(buf, sizeof(buf), PQgetvalue(res, r, c),
					   (size_t)PQgetlength(res, r, c)),
			       c + 1 < cols ? "  " : "\n");
}

int energy_command(const char *conninfo, int argc, char **argv)
{
	const char *tenant = option(argc, argv, "--tenant"), *from = option(argc, argv, "--from");
	const char *to = option(argc, argv, "--to"), *point = option(argc, argv, "--point");
	const char *params[4] = { tenant, from, to, point };
	PGconn *conn = NULL;
	PGresult *res = NULL;
	int32_t tenant_id;
	int rc = 1;

	if (!tenant || !from || !to) {
		fprintf(stderr,
			"usage: mqtt2pg energy --tenant SLUG --from YYYY-MM-DD --to YYYY-MM-DD [--point NAME]\n");
		return 2;
	}
	if (!conninfo) {
		fprintf(stderr,
			"mqtt2pg: no admin database: pass --db CONNINFO, set $MQTT2PG_ADMIN_CONNINFO, "
			"or database.admin_conninfo in the config\n");
		return 1;
	}
	if (!(conn = db_connect(MODULE, conninfo, NULL, "mqtt2pg-energy")))
		return 1;
	if (db_exec_params(conn, &report, "find the tenant", "SELECT id FROM public.tenants WHERE slug = $1",
			   1, params, &res) != 0)
		goto done;
	if (PQntuples(res) == 0) {
		char safe[128];
		fprintf(stderr, "mqtt2pg: no tenant '%s'\n",
			text_escape(safe, sizeof(safe), tenant, strlen(tenant)));
		goto done;
	}
	tenant_id = (int32_t)atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	res = NULL;
	if (db_begin_tenant(conn, DB_LOG(MODULE), tenant_id, DB_TENANT_READ_ONLY) != 0)
		goto done;
	if (db_exec_params(conn, &report, "read energy_daily (are --from/--to dates?)", ENERGY_SQL, 4, params,
			   &res) != 0)
		goto done;
	print_table(res);
	rc = 0;
done:
	PQclear(res);
	PQfinish(conn);
	return rc;
}
