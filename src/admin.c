// SPDX-License-Identifier: Apache-2.0
/*
 * admin: registry commands. Each parses its arguments, runs one parameterised statement (or one
 * transaction), and prints the result. Input is checked by the database's constraints, whose message is
 * shown as is: they are the single source of truth for what a slug, serial or point name may be.
 */
#include "admin.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aggregate.h"
#include "db.h"
#include "timeparse.h"

#define MAX_POINTS_ON_ADD 256

/* Runs a parameterised statement; prints the error and returns NULL if it fails. */
/*
 * The sentence for a constraint the CLI's input can break (issue 15: a raw "violates check constraint" is not
 * something an operator can act on); NULL for any other error, which is printed as PostgreSQL says it.
 */
static const char *constraint_sentence(const PGresult *res)
{
	static const struct {
		const char *constraint, *sentence;
	} known[] = {
		{ "devices_serial_check",
		  "a serial is 1-64 characters of A-Z a-z 0-9 _ . : - starting with a letter or digit; a device known by "
		  "another name (spaces, non-ASCII, a site-local id) keeps a serial and gets that name as an alias: "
		  "mqtt2pg device alias add NAME SERIAL --tenant SLUG" },
		{ "devices_serial_key", "a device with this serial is already registered" },
		{ "device_aliases_pkey", "this alias already names a device of the tenant (in this scope)" },
		{ "device_aliases_alias_check",
		  "an alias is 1-256 bytes of UTF-8 text without control characters, '/', '+' or '#' (one topic level)" },
		{ "device_aliases_scope_check", "a scope is at most 64 characters" },
		{ "points_name_check", "a point name is 1-64 characters of A-Z a-z 0-9 _ . : / -" },
		{ "tenants_slug_check",
		  "a tenant slug is 1-63 characters of a-z 0-9 _ - starting with a letter or digit" },
	};
	const char *name = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);

	for (size_t i = 0; name && i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(name, known[i].constraint) == 0)
			return known[i].sentence;
	return NULL;
}

static PGresult *run(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	char err[1024];

	if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK) {
		const char *sentence = constraint_sentence(res);
		if (sentence)
			fprintf(stderr, "mqtt2pg: %s\n", sentence);
		else
			fprintf(stderr, "mqtt2pg: %s\n", db_error_line(conn, res, err, sizeof(err)));
		PQclear(res);
		return NULL;
	}
	return res;
}

/* Prints a result as an aligned table with a header. */
static void print_table(const PGresult *res)
{
	int rows = PQntuples(res), cols = PQnfields(res);
	int width[32] = {0};

	for (int c = 0; c < cols && c < 32; c++) {
		width[c] = (int)strlen(PQfname(res, c));
		for (int r = 0; r < rows; r++)
			if (PQgetlength(res, r, c) > width[c])
				width[c] = PQgetlength(res, r, c);
	}
	for (int c = 0; c < cols && c < 32; c++)
		printf("%-*s%s", width[c], PQfname(res, c), c + 1 < cols ? "  " : "\n");
	for (int r = 0; r < rows; r++)
		for (int c = 0; c < cols && c < 32; c++)
			printf("%-*s%s", width[c], PQgetvalue(res, r, c), c + 1 < cols ? "  " : "\n");
}

static PGconn *connect_admin(const char *conninfo)
{
	if (!conninfo) {
		fprintf(stderr, "mqtt2pg: no admin database: pass --db CONNINFO, set $MQTT2PG_ADMIN_CONNINFO, "
				"or database.admin_conninfo in the config\n");
		return NULL;
	}
	return db_connect("admin", conninfo, NULL, "mqtt2pg-admin");
}

/* Finds "--name value" in argv; returns value or NULL. */
static const char *option(int argc, char **argv, const char *name)
{
	for (int i = 1; i + 1 < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return argv[i + 1];
	return NULL;
}

/* The first argument after the verb that is not an option or an option's value. */
static const char *positional(int argc, char **argv, int which)
{
	int seen = 0;

	for (int i = 1; i < argc; i++) {
		if (strncmp(argv[i], "--", 2) == 0) {
			i++;
			continue;
		}
		if (seen++ == which)
			return argv[i];
	}
	return NULL;
}

static int usage(const char *text)
{
	fprintf(stderr, "usage: mqtt2pg %s\n", text);
	return 2;
}

static int finish(PGconn *conn, PGresult *res, bool print)
{
	int rc = res ? 0 : 1;

	if (res && print)
		print_table(res);
	PQclear(res);
	PQfinish(conn);
	return rc;
}

/* Why role may not be mapped to a tenant's readers, or NULL when it may. */
static const char *reader_role_refusal(PGconn *conn, const char *role, bool *ok)
{
	static char why[256];
	const char *params[1] = { role };
	PGresult *res = run(
		conn,
		"SELECT CASE WHEN r.oid IS NULL THEN 'no such role (add --create to create it)' "
		" WHEN r.rolname IN ('mqtt2pg_writer', 'mqtt2pg_reader') OR r.rolname = current_user "
		"  THEN 'a service role (every dashboard role is a member of mqtt2pg_reader: mapping a "
		"shared role opens the tenant to all of them)' "
		" WHEN r.rolsuper OR r.rolbypassrls THEN 'superuser or BYPASSRLS: row-level security does "
		"not confine it' "
		" WHEN r.rolcreaterole THEN 'CREATEROLE: it could make itself a member of other reader "
		"roles' "
		" WHEN pg_has_role(r.oid, 'mqtt2pg_writer', 'MEMBER') OR pg_has_role(r.oid, current_user, "
		"'MEMBER') THEN 'a member of the writer or owner role' "
		" WHEN EXISTS (SELECT 1 FROM pg_auth_members m WHERE m.roleid = r.oid) THEN 'it has members "
		"(map login roles, not groups: every member would read the tenant)' END "
		"FROM (SELECT $1::text AS name) n LEFT JOIN pg_roles r ON r.rolname = n.name",
		1, params);

	*ok = res != NULL;
	if (!res)
		return NULL;
	if (PQgetisnull(res, 0, 0)) {
		PQclear(res);
		return NULL;
	}
	snprintf(why, sizeof(why), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return why;
}

/* Runs before + the role's name quoted as an identifier + after. */
static bool run_with_role(PGconn *conn, const char *before, const char *role, const char *after)
{
	char *ident = PQescapeIdentifier(conn, role, strlen(role));
	char sql[512];
	PGresult *res;

	if (!ident) {
		fprintf(stderr, "mqtt2pg: cannot quote role name: %s", PQerrorMessage(conn));
		return false;
	}
	snprintf(sql, sizeof(sql), "%s%s%s", before, ident, after);
	PQfreemem(ident);
	res = run(conn, sql, 0, NULL);
	PQclear(res);
	return res != NULL;
}

static PGresult *list_readers(PGconn *conn, const char *slug)
{
	const char *params[1] = { slug };

	return run(
		conn,
		"SELECT m.role::text AS role, t.slug AS tenant, m.granted_at FROM tenant_members m "
		"JOIN tenants t ON t.id = m.tenant_id WHERE $1::text IS NULL OR t.slug = $1 ORDER BY t.slug, 1",
		1, params);
}

/*
 * tenant grant-reader SLUG --role R [--create]: R (a login role) may read SLUG's readings, aggregates,
 * registry and import runs (sql/009: tenant_members, membership-based policies). One transaction. The
 * password is not ours to take on the command line (ps, shell history): set it with psql's \password.
 */
static int tenant_grant_reader(const char *conninfo, const char *slug, const char *role, bool create)
{
	const char *params[2] = { role, slug };
	const char *why;
	PGconn *conn;
	PGresult *res;
	bool ok;

	if (!(conn = connect_admin(conninfo)))
		return 1;
	if (!(res = run(conn, "BEGIN", 0, NULL)))
		return finish(conn, NULL, false);
	PQclear(res);
	if (!(res = run(conn, "SELECT 1 FROM tenants WHERE slug = $1", 1, params + 1)))
		return finish(conn, NULL, false);
	if (PQntuples(res) == 0) {
		fprintf(stderr, "mqtt2pg: no tenant '%s'\n", slug);
		PQclear(res);
		return finish(conn, NULL, false);
	}
	PQclear(res);
	if (create) {
		if (!(res = run(conn, "SELECT 1 FROM pg_roles WHERE rolname = $1", 1, params)))
			return finish(conn, NULL, false);
		bool exists = PQntuples(res) > 0;
		PQclear(res);
		if (!exists &&
		    !run_with_role(conn, "CREATE ROLE ", role,
				   " LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION"))
			return finish(conn, NULL, false);
	}
	why = reader_role_refusal(conn, role, &ok);
	if (!ok)
		return finish(conn, NULL, false);
	if (why) {
		fprintf(stderr, "mqtt2pg: role '%s' cannot read a tenant: %s\n", role, why);
		return finish(conn, NULL, false);
	}
	/* mqtt2pg_reader holds the table grants; the policies decide which rows. Granted only when missing: an
	 * owner without CREATEROLE (the compose stack's) cannot grant it, but may map a role a superuser made. */
	if (!(res = run(conn, "SELECT pg_has_role($1, 'mqtt2pg_reader', 'MEMBER')", 1, params)))
		return finish(conn, NULL, false);
	bool member = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	if (!member && !run_with_role(conn, "GRANT mqtt2pg_reader TO ", role, ""))
		return finish(conn, NULL, false);
	res = run(
		conn,
		"INSERT INTO tenant_members (role, tenant_id) SELECT r.oid::regrole, t.id FROM pg_roles r, tenants t "
		"WHERE r.rolname = $1 AND t.slug = $2 ON CONFLICT DO NOTHING",
		2, params);
	if (!res)
		return finish(conn, NULL, false);
	PQclear(res);
	if (!(res = run(conn, "COMMIT", 0, NULL)))
		return finish(conn, NULL, false);
	PQclear(res);
	return finish(conn, list_readers(conn, slug), true);
}

static int tenant_revoke_reader(const char *conninfo, const char *slug, const char *role)
{
	const char *params[2] = { slug, role };
	PGconn *conn;
	PGresult *res;

	if (!(conn = connect_admin(conninfo)))
		return 1;
	res = run(
		conn,
		"DELETE FROM tenant_members m USING tenants t, pg_roles r WHERE m.tenant_id = t.id AND t.slug = $1 "
		"AND m.role = r.oid AND r.rolname = $2 RETURNING r.rolname AS role, t.slug AS tenant",
		2, params);
	if (res && PQntuples(res) == 0) {
		fprintf(stderr, "mqtt2pg: role '%s' is not a reader of tenant '%s'\n", role, slug);
		PQclear(res);
		res = NULL;
	}
	return finish(conn, res, true);
}

/* grant-reader / revoke-reader: SLUG --role R [--create]; --create is a flag, so positional() cannot parse. */
static int tenant_readers_change(const char *conninfo, int argc, char **argv)
{
	const char *slug = NULL, *role = NULL;
	bool grant = strcmp(argv[0], "grant-reader") == 0, create = false;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--role") == 0 && i + 1 < argc)
			role = argv[++i];
		else if (grant && strcmp(argv[i], "--create") == 0)
			create = true;
		else if (!slug && argv[i][0] != '-')
			slug = argv[i];
		else
			slug = role = NULL, i = argc; /* unknown or extra argument: usage */
	}
	if (!slug || !role || !*role)
		return usage(grant ? "tenant grant-reader SLUG --role ROLE [--create]" :
				     "tenant revoke-reader SLUG --role ROLE");
	return grant ? tenant_grant_reader(conninfo, slug, role, create) :
		       tenant_revoke_reader(conninfo, slug, role);
}

int admin_tenant(const char *conninfo, int argc, char **argv)
{
	const char *verb = argc > 0 ? argv[0] : "";
	PGconn *conn;

	if (strcmp(verb, "add") == 0) {
		const char *slug = positional(argc, argv, 0), *name = option(argc, argv, "--name");
		const char *params[2] = {slug, name ? name : ""};
		if (!slug)
			return usage("tenant add SLUG [--name NAME]");
		if (!(conn = connect_admin(conninfo)))
			return 1;
		return finish(conn,
			      run(conn, "INSERT INTO tenants (slug, name) VALUES ($1, $2) RETURNING id, slug, name", 2,
				  params),
			      true);
	}
	if (strcmp(verb, "list") == 0) {
		if (!(conn = connect_admin(conninfo)))
			return 1;
		return finish(conn,
			      run(conn,
				  "SELECT t.id, t.slug, t.name, count(d.id) AS devices FROM tenants t "
				  "LEFT JOIN devices d ON d.tenant_id = t.id GROUP BY t.id ORDER BY t.slug",
				  0, NULL),
			      true);
	}
	if (strcmp(verb, "grant-reader") == 0 || strcmp(verb, "revoke-reader") == 0)
		return tenant_readers_change(conninfo, argc, argv);
	if (strcmp(verb, "readers") == 0) {
		if (!(conn = connect_admin(conninfo)))
			return 1;
		return finish(conn, list_readers(conn, positional(argc, argv, 0)), true);
	}
	return usage(
		"tenant add SLUG [--name NAME] | tenant list | tenant grant-reader SLUG --role ROLE [--create] | "
		"tenant revoke-reader SLUG --role ROLE | tenant readers [SLUG]");
}

/* Parses "name[:unit[:min:max[:kind]]]" into params (name, unit, min or NULL, max or NULL, kind); edits spec
 * in place. */
static void split_point_spec(char *spec, const char *params[5])
{
	char *fields[5] = {spec, NULL, NULL, NULL, NULL};

	for (int i = 1; i < 5 && fields[i - 1]; i++) {
		char *colon = strchr(fields[i - 1], ':');
		if (colon) {
			*colon = '\0';
			fields[i] = colon + 1;
		}
	}
	params[0] = fields[0];
	params[1] = fields[1] ? fields[1] : "";
	params[2] = fields[2] && *fields[2] ? fields[2] : NULL;
	params[3] = fields[3] && *fields[3] ? fields[3] : NULL;
	params[4] = fields[4] && *fields[4] ? fields[4] : "gauge";
}

static int device_add(const char *conninfo, int argc, char **argv)
{
	const char *serial = positional(argc, argv, 0), *tenant = option(argc, argv, "--tenant");
	const char *model = option(argc, argv, "--model");
	const char *params[3] = {serial, tenant, model ? model : ""};
	PGconn *conn;
	PGresult *res;

	if (!serial || !tenant)
		return usage("device add SERIAL --tenant SLUG [--model MODEL] [--point NAME[:UNIT[:MIN:MAX[:KIND]]]]...");
	if (!(conn = connect_admin(conninfo)))
		return 1;
	if (!(res = run(conn, "BEGIN", 0, NULL)))
		return finish(conn, NULL, false);
	PQclear(res);
	res = run(conn,
		  "INSERT INTO devices (tenant_id, serial, model) SELECT id, $1, $3 FROM tenants WHERE slug = $2 "
		  "RETURNING id",
		  3, params);
	if (res && PQntuples(res) == 0) {
		fprintf(stderr, "mqtt2pg: no tenant '%s'\n", tenant);
		PQclear(res);
		return finish(conn, NULL, false);
	}
	if (!res)
		return finish(conn, NULL, false);
	char device_id[16];
	snprintf(device_id, sizeof(device_id), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	for (int i = 1; i + 1 < argc; i++) {
		if (strcmp(argv[i], "--point") != 0)
			continue;
		const char *p[6] = {device_id};
		split_point_spec(argv[i + 1], p + 1);
		res = run(conn,
			  "INSERT INTO points (device_id, name, unit, min_value, max_value, kind) "
			  "VALUES ($1, $2, $3, $4, $5, $6)",
			  6, p);
		if (!res)
			return finish(conn, NULL, false);
		PQclear(res);
	}
	if (!(res = run(conn, "COMMIT", 0, NULL)))
		return finish(conn, NULL, false);
	PQclear(res);
	res = run(conn,
		  "SELECT d.id, d.serial, t.slug AS tenant, d.model, count(p.id) AS points FROM devices d "
		  "JOIN tenants t ON t.id = d.tenant_id LEFT JOIN points p ON p.device_id = d.id "
		  "WHERE d.id = $1 GROUP BY d.id, t.slug",
		  1, (const char *const[]){device_id});
	return finish(conn, res, true);
}

/*
 * mqtt2pg device alias add ALIAS SERIAL --tenant SLUG [--scope S] | remove ALIAS --tenant SLUG [--scope S] |
 * list [--tenant SLUG]: names (any UTF-8 text of one topic level) by which topics mean a registered device.
 */
static int device_alias(const char *conninfo, int argc, char **argv)
{
	const char *verb = argc > 1 ? argv[1] : "", *alias = positional(argc - 1, argv + 1, 0);
	const char *tenant = option(argc, argv, "--tenant"), *scope = option(argc, argv, "--scope");
	PGconn *conn;
	PGresult *res;

	if (strcmp(verb, "list") == 0) {
		if (!(conn = connect_admin(conninfo)))
			return 1;
		return finish(conn,
			      run(conn,
				  "SELECT t.slug AS tenant, a.scope, a.alias, d.serial FROM device_aliases a "
				  "JOIN tenants t ON t.id = a.tenant_id JOIN devices d ON d.id = a.device_id "
				  "WHERE $1::text IS NULL OR t.slug = $1 ORDER BY t.slug, a.scope, a.alias",
				  1, (const char *const[]){ tenant }),
			      true);
	}
	if (strcmp(verb, "add") == 0) {
		const char *serial = positional(argc - 1, argv + 1, 1);
		if (!alias || !serial || !tenant)
			return usage("device alias add ALIAS SERIAL --tenant SLUG [--scope SCOPE]");
		if (!(conn = connect_admin(conninfo)))
			return 1;
		res = run(conn,
			  "INSERT INTO device_aliases (tenant_id, scope, alias, device_id) "
			  "SELECT t.id, $4, $1, d.id FROM tenants t JOIN devices d ON d.tenant_id = t.id "
			  "WHERE t.slug = $3 AND d.serial = $2 RETURNING alias, device_id",
			  4, (const char *const[]){ alias, serial, tenant, scope ? scope : "" });
		if (res && PQntuples(res) == 0) {
			fprintf(stderr, "mqtt2pg: tenant '%s' has no device '%s'\n", tenant, serial);
			PQclear(res);
			res = NULL;
		}
		return finish(conn, res, true);
	}
	if (strcmp(verb, "remove") == 0) {
		if (!alias || !tenant)
			return usage("device alias remove ALIAS --tenant SLUG [--scope SCOPE]");
		if (!(conn = connect_admin(conninfo)))
			return 1;
		res = run(
			conn,
			"DELETE FROM device_aliases a USING tenants t WHERE t.id = a.tenant_id AND t.slug = $2 "
			"AND a.scope = $3 AND a.alias = $1 RETURNING a.alias, a.device_id",
			3, (const char *const[]){ alias, tenant, scope ? scope : "" });
		if (res && PQntuples(res) == 0) {
			fprintf(stderr, "mqtt2pg: tenant '%s' has no alias '%s'\n", tenant, alias);
			PQclear(res);
			res = NULL;
		}
		return finish(conn, res, true);
	}
	return usage("device alias add|remove|list ...");
}

int admin_device(const char *conninfo, int argc, char **argv)
{
	const char *verb = argc > 0 ? argv[0] : "";
	PGconn *conn;

	if (strcmp(verb, "alias") == 0)
		return device_alias(conninfo, argc, argv);
	if (strcmp(verb, "add") == 0)
		return device_add(conninfo, argc, argv);
	if (strcmp(verb, "list") == 0) {
		const char *tenant = option(argc, argv, "--tenant");
		const char *params[1] = {tenant};
		if (!(conn = connect_admin(conninfo)))
			return 1;
		return finish(conn,
			      run(conn,
				  "SELECT d.id, d.serial, t.slug AS tenant, d.model, d.enabled, count(p.id) AS points "
				  "FROM devices d JOIN tenants t ON t.id = d.tenant_id "
				  "LEFT JOIN points p ON p.device_id = d.id WHERE $1::text IS NULL OR t.slug = $1 "
				  "GROUP BY d.id, t.slug ORDER BY t.slug, d.serial",
				  1, params),
			      true);
	}
	if (strcmp(verb, "disable") == 0 || strcmp(verb, "enable") == 0) {
		const char *serial = positional(argc, argv, 0);
		const char *params[2] = {serial, verb[0] == 'e' ? "true" : "false"};
		PGresult *res;
		if (!serial)
			return usage("device disable|enable SERIAL");
		if (!(conn = connect_admin(conninfo)))
			return 1;
		res = run(conn, "UPDATE devices SET enabled = $2::boolean WHERE serial = $1 RETURNING id, serial, enabled",
			  2, params);
		if (res && PQntuples(res) == 0) {
			fprintf(stderr, "mqtt2pg: no device '%s'\n", serial);
			PQclear(res);
			res = NULL;
		}
		return finish(conn, res, true);
	}
	return usage("device add|list|disable|enable|alias ...");
}

int admin_point(const char *conninfo, int argc, char **argv)
{
	const char *verb = argc > 0 ? argv[0] : "";
	PGconn *conn;

	if (strcmp(verb, "add") == 0) {
		const char *serial = positional(argc, argv, 0), *name = positional(argc, argv, 1);
		const char *unit = option(argc, argv, "--unit"), *kind = option(argc, argv, "--kind");
		const char *params[6] = {serial, name, unit ? unit : "", option(argc, argv, "--min"),
					 option(argc, argv, "--max"), kind ? kind : "gauge"};
		PGresult *res;
		if (!serial || !name)
			return usage("point add SERIAL NAME [--unit UNIT] [--min X] [--max Y] [--kind gauge|counter]");
		if (!(conn = connect_admin(conninfo)))
			return 1;
		res = run(conn,
			  "INSERT INTO points (device_id, name, unit, min_value, max_value, kind) "
			  "SELECT id, $2, $3, $4, $5, $6 FROM devices WHERE serial = $1 "
			  "RETURNING id, name, unit, min_value, max_value, kind",
			  6, params);
		if (res && PQntuples(res) == 0) {
			fprintf(stderr, "mqtt2pg: no device '%s'\n", serial);
			PQclear(res);
			res = NULL;
		}
		return finish(conn, res, true);
	}
	if (strcmp(verb, "list") == 0) {
		const char *serial = option(argc, argv, "--device");
		const char *params[1] = {serial};
		if (!(conn = connect_admin(conninfo)))
			return 1;
		return finish(conn,
			      run(conn,
				  "SELECT p.id, d.serial, p.name, p.unit, p.kind, p.min_value, p.max_value, p.auto_registered "
				  "FROM points p JOIN devices d ON d.id = p.device_id "
				  "WHERE $1::text IS NULL OR d.serial = $1 ORDER BY d.serial, p.name",
				  1, params),
			      true);
	}
	return usage("point add SERIAL NAME [--unit UNIT] [--min X] [--max Y] [--kind gauge|counter] | "
		     "point list [--device SERIAL]");
}

struct rebuild_progress {
	const char *slug;
	int64_t total;
	bool tty;
};

static void print_progress(void *arg, int32_t tenant_id, uint64_t done)
{
	struct rebuild_progress *p = arg;

	(void)tenant_id;
	if (p->tty)
		fprintf(stderr, "\r  %s: %llu of %lld buckets recomputed", p->slug, (unsigned long long)done,
			(long long)p->total);
}

static int rebuild_tenant(PGconn *conn, int32_t tenant_id, const char *slug, int64_t from_us, int64_t to_us)
{
	struct rebuild_progress progress = {.slug = slug, .tty = isatty(STDERR_FILENO)};
	int64_t done;

	progress.total = aggregate_mark_range(conn, tenant_id, from_us, to_us);
	if (progress.total < 0)
		return -1;
	done = aggregate_recompute_dirty(conn, tenant_id, 500, print_progress, &progress, NULL);
	if (done < 0)
		return -1;
	fprintf(stderr, "%s  %s: %lld bucket(s) marked, %lld recomputed\n", progress.tty ? "\r" : "", slug,
		(long long)progress.total, (long long)done);
	return 0;
}

int admin_aggregate(const char *conninfo, int argc, char **argv)
{
	const char *from = option(argc, argv, "--from"), *to = option(argc, argv, "--to");
	const char *tenant = option(argc, argv, "--tenant");
	const char *params[1] = {tenant};
	int64_t from_us, to_us;
	PGconn *conn;
	PGresult *tenants;
	int rc = 0;

	if (argc < 1 || strcmp(argv[0], "rebuild") != 0 || !from || !to)
		return usage("aggregate rebuild --from RFC3339 --to RFC3339 [--tenant SLUG]");
	if (!timeparse_rfc3339(from, strlen(from), &from_us) || !timeparse_rfc3339(to, strlen(to), &to_us) ||
	    from_us >= to_us) {
		fprintf(stderr, "mqtt2pg: --from and --to must be RFC 3339 times with a zone, --from before --to\n");
		return 2;
	}
	if (!(conn = connect_admin(conninfo)))
		return 1;
	tenants = run(conn, "SELECT id, slug FROM tenants WHERE $1::text IS NULL OR slug = $1 ORDER BY slug", 1, params);
	if (!tenants)
		return finish(conn, NULL, false);
	if (PQntuples(tenants) == 0) {
		fprintf(stderr, "mqtt2pg: no tenant '%s'\n", tenant ? tenant : "");
		rc = 1;
	}
	for (int i = 0; i < PQntuples(tenants) && rc == 0; i++)
		if (rebuild_tenant(conn, atoi(PQgetvalue(tenants, i, 0)), PQgetvalue(tenants, i, 1), from_us, to_us) < 0)
			rc = 1;
	PQclear(tenants);
	PQfinish(conn);
	return rc;
}
