// SPDX-License-Identifier: Apache-2.0
/*
 * admin: registry commands. Each parses its arguments, runs one parameterised statement (or one
 * transaction), and prints the result. The database's constraints stay the single source of truth for what
 * a slug, serial or point name may be; their refusals are translated into sentences an operator can act on
 * ("tenant slug 'Bad Slug' is not valid: ..." rather than a constraint's name).
 *
 * What no constraint can judge is checked here: free text (a tenant's name, a model, a unit) must not carry
 * control characters or bidirectional overrides, which would rewrite an operator's terminal when listed, and
 * limits must be finite numbers (PostgreSQL accepts 'NaN' and 'Infinity' for double precision). Everything
 * printed is escaped anyway (text_escape), for rows that were written by other means.
 */
#include "cli/admin.h"

#include <errno.h>
#include <libpq-fe.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aggregate.h"
#include "db.h"
#include "util/text.h"
#include "payload/timeparse.h"

#define MAX_POINTS_ON_ADD 256

/* What a statement writes, for turning the database's refusals into sentences. Any member may be NULL. */
struct subject {
	const char *slug, *serial, *point;
};

/* A sentence for a refusal of a registry constraint (sql/001_registry.sql), or NULL to show the database's. */
static const char *explain(const PGresult *res, const struct subject *what, char *buf, size_t cap)
{
	const char *constraint = res ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;
	const char *slug = what && what->slug ? what->slug : "",
		   *serial = what && what->serial ? what->serial : "";
	const char *point = what && what->point ? what->point : "";

	if (!constraint)
		return NULL;
	if (strcmp(constraint, "tenants_slug_check") == 0)
		snprintf(buf, cap,
			 "tenant slug '%s' is not valid: use 1 to 63 lower-case letters, digits, '_' or '-', "
			 "starting with a letter or digit",
			 slug);
	else if (strcmp(constraint, "tenants_slug_key") == 0)
		snprintf(buf, cap, "tenant '%s' already exists", slug);
	else if (strcmp(constraint, "devices_serial_check") == 0)
		snprintf(
			buf, cap,
			"device serial '%s' is not valid: use 1 to 64 letters, digits, '_', '.', ':' or '-', "
			"starting with a letter or digit; a device known by another name (spaces, non-ASCII, a "
			"site-local id) keeps a serial and gets that name as an alias: "
			"mqtt2pg device alias add NAME SERIAL --tenant SLUG",
			serial);
	else if (strcmp(constraint, "devices_tenant_serial_key") == 0)
		/* sql/013: unique per tenant; another tenant may have a device of the same serial. */
		snprintf(buf, cap, "device '%s' already exists in tenant '%s'", serial, slug);
	else if (strcmp(constraint, "points_name_check") == 0)
		snprintf(
			buf, cap,
			"point name '%s' is not valid: use 1 to 64 letters, digits, '_', '.', ':', '/' or '-'",
			point);
	else if (strcmp(constraint, "points_device_id_name_key") == 0)
		snprintf(buf, cap, "device '%s' already has a point '%s'", serial, point);
	else if (strcmp(constraint, "points_check") == 0)
		snprintf(buf, cap, "point '%s': the min limit must not be above the max limit", point);
	else if (strcmp(constraint, "points_kind_check") == 0)
		snprintf(buf, cap, "point '%s': kind must be gauge, counter or daily_counter", point);
	else if (strcmp(constraint, "device_aliases_pkey") == 0)
		snprintf(buf, cap, "this alias already names a device of the tenant (in this scope)");
	else if (strcmp(constraint, "device_aliases_alias_check") == 0)
		snprintf(buf, cap,
			 "an alias is 1-256 bytes of UTF-8 text without control characters, '/', '+' or '#' "
			 "(one topic level)");
	else if (strcmp(constraint, "device_aliases_scope_check") == 0)
		snprintf(buf, cap, "a scope is at most 64 characters");
	else
		return NULL;
	return buf;
}

/* db_check's report for the admin commands: the error on stderr, as a sentence about what when it is a
 * known constraint's (arg: the struct subject, may be NULL). */
static void print_refusal(void *arg, PGconn *conn, const PGresult *res, const char *statement)
{
	const struct subject *what = arg;
	char err[1024], sentence[512], safe[1100];
	const char *text = explain(res, what, sentence, sizeof(sentence));

	(void)statement;
	if (!text)
		text = db_error_line(conn, res, err, sizeof(err));
	fprintf(stderr, "mqtt2pg: %s\n", text_escape(safe, sizeof(safe), text, strlen(text)));
}

/* Runs a parameterised statement through db_exec_params (the check and the one report are there); the
 * result (owned by the caller) or NULL when it failed. */
static PGresult *run_about(PGconn *conn, const char *sql, int nparams, const char *const *params,
			   const struct subject *what)
{
	const struct db_report report = { .module = "admin", .report = print_refusal, .arg = (void *)what };
	PGresult *res = NULL;

	if (db_exec_params(conn, &report, "admin statement", sql, nparams, params, &res) != 0)
		return NULL;
	return res;
}

static PGresult *run(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	return run_about(conn, sql, nparams, params, NULL);
}

/*
 * Refuses text that would rewrite a terminal or a log line when shown: control characters (ESC sequences,
 * newlines), bidirectional overrides and isolates, line separators, invalid UTF-8. what names the option.
 */
static bool text_acceptable(const char *what, const char *text)
{
	char safe[512];

	if (!text || !text_is_unsafe(text, strlen(text)))
		return true;
	fprintf(stderr,
		"mqtt2pg: %s '%s' contains a control or bidirectional character (shown escaped); such characters "
		"would rewrite an operator's terminal when listed: refused\n",
		what, text_escape(safe, sizeof(safe), text, strlen(text)));
	return false;
}

/* A limit: NULL or empty for none, else a finite number (strtod's syntax, but not nan or inf). */
static bool limit_acceptable(const char *what, const char *text)
{
	char safe[128], *end;
	double v;

	if (!text || !*text)
		return true;
	errno = 0;
	v = strtod(text, &end);
	if (end != text && *end == '\0' && errno == 0 && isfinite(v))
		return true;
	fprintf(stderr, "mqtt2pg: %s must be a finite number, got '%s'\n", what,
		text_escape(safe, sizeof(safe), text, strlen(text)));
	return false;
}

/* The value of a cell, escaped: rows may have been written by anyone with the owner's rights. */
static const char *cell(const PGresult *res, int r, int c, char *buf, size_t cap)
{
	return text_escape(buf, cap, PQgetvalue(res, r, c), (size_t)PQgetlength(res, r, c));
}

/* Prints a result as an aligned table with a header. */
static void print_table(const PGresult *res)
{
	int rows = PQntuples(res), cols = PQnfields(res);
	int width[32] = { 0 };
	char buf[1024];

	for (int c = 0; c < cols && c < 32; c++) {
		width[c] = (int)strlen(PQfname(res, c));
		for (int r = 0; r < rows; r++)
			if ((int)strlen(cell(res, r, c, buf, sizeof(buf))) > width[c])
				width[c] = (int)strlen(buf);
	}
	for (int c = 0; c < cols && c < 32; c++)
		printf("%-*s%s", width[c], PQfname(res, c), c + 1 < cols ? "  " : "\n");
	for (int r = 0; r < rows; r++)
		for (int c = 0; c < cols && c < 32; c++)
			printf("%-*s%s", width[c], cell(res, r, c, buf, sizeof(buf)),
			       c + 1 < cols ? "  " : "\n");
}

static PGconn *connect_admin(const char *conninfo)
{
	if (!conninfo) {
		fprintf(stderr,
			"mqtt2pg: no admin database: pass --db CONNINFO, set $MQTT2PG_ADMIN_CONNINFO, "
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
		const char *params[2] = { slug, name ? name : "" };
		const struct subject what = { .slug = slug };
		if (!slug)
			return usage("tenant add SLUG [--name NAME]");
		if (!text_acceptable("tenant slug", slug) || !text_acceptable("tenant --name", name))
			return 2;
		if (!(conn = connect_admin(conninfo)))
			return 1;
		return finish(
			conn,
			run_about(conn,
				  "INSERT INTO tenants (slug, name) VALUES ($1, $2) RETURNING id, slug, name",
				  2, params, &what),
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

/* One point of `device add --point`: pointers into the (edited) argument; min/max NULL when absent. */
struct point_spec {
	const char *name, *unit, *min, *max, *kind;
};

/* The old form "name[:unit[:min:max[:kind]]]", kept for existing scripts; a name cannot hold ':' in it. */
static void split_colon_spec(char *spec, struct point_spec *p)
{
	char *fields[5] = { spec, NULL, NULL, NULL, NULL };

	for (int i = 1; i < 5 && fields[i - 1]; i++) {
		char *colon = strchr(fields[i - 1], ':');
		if (colon) {
			*colon = '\0';
			fields[i] = colon + 1;
		}
	}
	p->name = fields[0];
	p->unit = fields[1] ? fields[1] : "";
	p->min = fields[2] && *fields[2] ? fields[2] : NULL;
	p->max = fields[3] && *fields[3] ? fields[3] : NULL;
	p->kind = fields[4] && *fields[4] ? fields[4] : "gauge";
}

/* Cuts the next field of a key=value spec at the first ',' not escaped by '\', removing the escapes in
 * place; returns the start of the following field or NULL at the end. */
static char *next_field(char *field)
{
	char *in = field, *out = field;

	for (; *in && *in != ','; in++) {
		if (*in == '\\' && in[1])
			in++;
		*out++ = *in;
	}
	bool more = *in == ',';
	*out = '\0';
	return more ? in + 1 : NULL;
}

/*
 * "name=switch:0/apower,unit=W,min=0,max=3500,kind=gauge": keys in any order, name required, a ',' or '\'
 * inside a value written "\," or "\\". Unambiguous where the old form is not (point names may hold ':').
 * Prints why and returns false on an unknown, repeated or empty-named key.
 */
static bool split_keyed_spec(char *spec, struct point_spec *p)
{
	static const char *const keys[] = { "name", "unit", "min", "max", "kind" };
	const char **slots[] = { &p->name, &p->unit, &p->min, &p->max, &p->kind };
	bool seen[5] = { false };

	for (char *field = spec, *next; field; field = next) {
		next = next_field(field);
		char *eq = strchr(field, '=');
		size_t k = 0;
		if (!eq) {
			fprintf(stderr,
				"mqtt2pg: --point: '%s' is not key=value (keys: name, unit, min, max, kind)\n",
				field);
			return false;
		}
		*eq = '\0';
		while (k < 5 && strcmp(field, keys[k]) != 0)
			k++;
		if (k == 5 || seen[k]) {
			fprintf(stderr,
				"mqtt2pg: --point: %s key '%s' (keys: name, unit, min, max, kind, once each)\n",
				k == 5 ? "unknown" : "repeated", field);
			return false;
		}
		seen[k] = true;
		*slots[k] = eq + 1;
	}
	if (!p->name || !*p->name) {
		fprintf(stderr, "mqtt2pg: --point: name=... is required\n");
		return false;
	}
	return true;
}

/* Parses and checks one --point argument (edited in place) before anything is written. */
static bool parse_point_spec(char *spec, struct point_spec *p)
{
	*p = (struct point_spec){ .unit = "", .kind = "gauge" };
	if (strchr(spec, '=')) {
		if (!split_keyed_spec(spec, p))
			return false;
		if (p->min && !*p->min)
			p->min = NULL;
		if (p->max && !*p->max)
			p->max = NULL;
		if (!*p->kind)
			p->kind = "gauge";
	} else {
		split_colon_spec(spec, p);
	}
	return text_acceptable("point name", p->name) && text_acceptable("point unit", p->unit) &&
	       limit_acceptable("point min", p->min) && limit_acceptable("point max", p->max);
}

/* Inserts device_id's points, inside the caller's transaction. */
static bool insert_points(PGconn *conn, const char *device_id, const char *serial,
			  const struct point_spec *points, int count)
{
	for (int i = 0; i < count; i++) {
		const char *p[6] = { device_id,	    points[i].name, points[i].unit,
				     points[i].min, points[i].max,  points[i].kind };
		const struct subject what = { .serial = serial, .point = points[i].name };
		PGresult *res =
			run_about(conn,
				  "INSERT INTO points (device_id, name, unit, min_value, max_value, kind) "
				  "VALUES ($1, $2, $3, $4, $5, $6)",
				  6, p, &what);
		if (!res)
			return false;
		PQclear(res);
	}
	return true;
}

/*
 * The id of the device a command names (into id): SERIAL of --tenant SLUG, or SERIAL alone while only one
 * tenant has it. A serial is unique per tenant only (sql/013), so a serial in several tenants without
 * --tenant is refused with the tenants' names rather than guessed. Prints why and returns false.
 */
static bool find_device_id(PGconn *conn, const char *serial, const char *tenant, char *id, size_t cap)
{
	PGresult *res = run(conn,
			    "SELECT d.id, t.slug FROM devices d JOIN tenants t ON t.id = d.tenant_id "
			    "WHERE d.serial = $1 AND ($2::text IS NULL OR t.slug = $2) ORDER BY t.slug",
			    2, (const char *const[]){ serial, tenant });
	char tenants[256] = "", safe[128];
	int rows;

	if (!res)
		return false;
	rows = PQntuples(res);
	if (rows == 1)
		snprintf(id, cap, "%s", PQgetvalue(res, 0, 0));
	else if (rows == 0 && tenant)
		fprintf(stderr, "mqtt2pg: tenant '%s' has no device '%s'\n", tenant, serial);
	else if (rows == 0)
		fprintf(stderr, "mqtt2pg: no device '%s'\n", serial);
	else {
		for (int r = 0; r < rows; r++)
			snprintf(tenants + strlen(tenants), sizeof(tenants) - strlen(tenants), "%s%s",
				 r ? ", " : "", cell(res, r, 1, safe, sizeof(safe)));
		fprintf(stderr,
			"mqtt2pg: device '%s' is registered in %d tenants (%s): say which with --tenant SLUG\n",
			serial, rows, tenants);
	}
	PQclear(res);
	return rows == 1;
}

static int device_add(const char *conninfo, int argc, char **argv)
{
	const char *serial = positional(argc, argv, 0), *tenant = option(argc, argv, "--tenant");
	const char *model = option(argc, argv, "--model");
	const char *params[3] = { serial, tenant, model ? model : "" };
	const struct subject what = { .slug = tenant, .serial = serial };
	struct point_spec points[MAX_POINTS_ON_ADD];
	int count = 0;
	PGconn *conn;
	PGresult *res;

	if (!serial || !tenant)
		return usage(
			"device add SERIAL --tenant SLUG [--model MODEL] "
			"[--point name=N[,unit=U][,min=X][,max=Y][,kind=gauge|counter|daily_counter]]...");
	if (!text_acceptable("device serial", serial) || !text_acceptable("--tenant", tenant) ||
	    !text_acceptable("device --model", model))
		return 2;
	for (int i = 1; i + 1 < argc; i++) {
		if (strcmp(argv[i], "--point") != 0)
			continue;
		if (count == MAX_POINTS_ON_ADD) {
			fprintf(stderr,
				"mqtt2pg: at most %d --point per device add; add more with point add\n",
				MAX_POINTS_ON_ADD);
			return 2;
		}
		if (!parse_point_spec(argv[++i], &points[count++]))
			return 2;
	}
	if (!(conn = connect_admin(conninfo)))
		return 1;
	/* One transaction: a refused point leaves no half-made device (the connection closes without COMMIT). */
	if (!(res = run(conn, "BEGIN", 0, NULL)))
		return finish(conn, NULL, false);
	PQclear(res);
	res = run_about(
		conn,
		"INSERT INTO devices (tenant_id, serial, model) SELECT id, $1, $3 FROM tenants WHERE slug = $2 "
		"RETURNING id",
		3, params, &what);
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
	if (!insert_points(conn, device_id, serial, points, count))
		return finish(conn, NULL, false);
	if (!(res = run(conn, "COMMIT", 0, NULL)))
		return finish(conn, NULL, false);
	PQclear(res);
	res = run(conn,
		  "SELECT d.id, d.serial, t.slug AS tenant, d.model, count(p.id) AS points FROM devices d "
		  "JOIN tenants t ON t.id = d.tenant_id LEFT JOIN points p ON p.device_id = d.id "
		  "WHERE d.id = $1 GROUP BY d.id, t.slug",
		  1, (const char *const[]){ device_id });
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
		const char *params[1] = { tenant };
		if (!(conn = connect_admin(conninfo)))
			return 1;
		return finish(
			conn,
			run(conn,
			    "SELECT d.id, d.serial, t.slug AS tenant, d.model, d.enabled, count(p.id) AS points "
			    "FROM devices d JOIN tenants t ON t.id = d.tenant_id "
			    "LEFT JOIN points p ON p.device_id = d.id WHERE $1::text IS NULL OR t.slug = $1 "
			    "GROUP BY d.id, t.slug ORDER BY t.slug, d.serial",
			    1, params),
			true);
	}
	if (strcmp(verb, "disable") == 0 || strcmp(verb, "enable") == 0) {
		const char *serial = positional(argc, argv, 0), *tenant = option(argc, argv, "--tenant");
		char device_id[16];
		const char *params[2] = { device_id, verb[0] == 'e' ? "true" : "false" };
		if (!serial)
			return usage("device disable|enable SERIAL [--tenant SLUG]");
		if (!text_acceptable("device serial", serial) || !text_acceptable("--tenant", tenant))
			return 2;
		if (!(conn = connect_admin(conninfo)))
			return 1;
		if (!find_device_id(conn, serial, tenant, device_id, sizeof(device_id)))
			return finish(conn, NULL, false);
		return finish(
			conn,
			run(conn,
			    "UPDATE devices d SET enabled = $2::boolean FROM tenants t "
			    "WHERE d.id = $1 AND t.id = d.tenant_id RETURNING d.id, d.serial, t.slug AS tenant, d.enabled",
			    2, params),
			true);
	}
	return usage(
		"device add|list|disable|enable|alias ... (a serial is unique per tenant: --tenant SLUG names "
		"which)");
}

int admin_point(const char *conninfo, int argc, char **argv)
{
	const char *verb = argc > 0 ? argv[0] : "";
	PGconn *conn;

	if (strcmp(verb, "add") == 0) {
		const char *serial = positional(argc, argv, 0), *name = positional(argc, argv, 1);
		const char *unit = option(argc, argv, "--unit"), *kind = option(argc, argv, "--kind");
		const char *tenant = option(argc, argv, "--tenant");
		char device_id[16];
		const char *params[6] = { device_id,
					  name,
					  unit ? unit : "",
					  option(argc, argv, "--min"),
					  option(argc, argv, "--max"),
					  kind ? kind : "gauge" };
		const struct subject what = { .slug = tenant, .serial = serial, .point = name };
		if (!serial || !name)
			return usage(
				"point add SERIAL NAME [--tenant SLUG] [--unit UNIT] [--min X] [--max Y] "
				"[--kind gauge|counter|daily_counter]");
		if (!text_acceptable("device serial", serial) || !text_acceptable("point name", name) ||
		    !text_acceptable("--tenant", tenant) || !text_acceptable("point --unit", unit) ||
		    !limit_acceptable("--min", params[3]) || !limit_acceptable("--max", params[4]))
			return 2;
		if (!(conn = connect_admin(conninfo)))
			return 1;
		if (!find_device_id(conn, serial, tenant, device_id, sizeof(device_id)))
			return finish(conn, NULL, false);
		return finish(
			conn,
			run_about(conn,
				  "INSERT INTO points (device_id, name, unit, min_value, max_value, kind) "
				  "VALUES ($1, $2, $3, $4, $5, $6) "
				  "RETURNING id, name, unit, min_value, max_value, kind",
				  6, params, &what),
			true);
	}
	if (strcmp(verb, "list") == 0) {
		const char *serial = option(argc, argv, "--device"), *tenant = option(argc, argv, "--tenant");
		const char *params[2] = { serial, tenant };
		if (!(conn = connect_admin(conninfo)))
			return 1;
		/* A serial in several tenants lists each tenant's device, told apart by the tenant column. */
		return finish(
			conn,
			run(conn,
			    "SELECT p.id, t.slug AS tenant, d.serial, p.name, p.unit, p.kind, p.min_value, "
			    "p.max_value, p.auto_registered "
			    "FROM points p JOIN devices d ON d.id = p.device_id JOIN tenants t ON t.id = d.tenant_id "
			    "WHERE ($1::text IS NULL OR d.serial = $1) AND ($2::text IS NULL OR t.slug = $2) "
			    "ORDER BY t.slug, d.serial, p.name",
			    2, params),
			true);
	}
	return usage(
		"point add SERIAL NAME [--tenant SLUG] [--unit UNIT] [--min X] [--max Y] [--kind gauge|counter|daily_counter] | "
		"point list [--device SERIAL] [--tenant SLUG]");
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
	struct rebuild_progress progress = { .slug = slug, .tty = isatty(STDERR_FILENO) };
	int64_t done, rolled;

	progress.total = aggregate_mark_range(conn, tenant_id, from_us, to_us);
	if (progress.total < 0)
		return -1;
	done = aggregate_recompute_dirty(conn, tenant_id, 500, print_progress, &progress, NULL);
	if (done < 0)
		return -1;
	/* The rollups too (sql/014): also those of frozen buckets, and with the tenant's current time zone. */
	rolled = aggregate_rebuild_rollups(conn, tenant_id, from_us, to_us);
	if (rolled < 0)
		return -1;
	fprintf(stderr,
		"%s  %s: %lld bucket(s) marked, %lld recomputed, rollups rebuilt from %lld 5-minute row(s)\n",
		progress.tty ? "\r" : "", slug, (long long)progress.total, (long long)done,
		(long long)rolled);
	return 0;
}

int admin_aggregate(const char *conninfo, int argc, char **argv)
{
	const char *from = option(argc, argv, "--from"), *to = option(argc, argv, "--to");
	const char *tenant = option(argc, argv, "--tenant");
	const char *params[1] = { tenant };
	int64_t from_us, to_us;
	PGconn *conn;
	PGresult *tenants;
	int rc = 0;

	if (argc < 1 || strcmp(argv[0], "rebuild") != 0 || !from || !to)
		return usage("aggregate rebuild --from RFC3339 --to RFC3339 [--tenant SLUG]");
	if (!timeparse_rfc3339(from, strlen(from), &from_us) || !timeparse_rfc3339(to, strlen(to), &to_us) ||
	    from_us >= to_us) {
		fprintf(stderr,
			"mqtt2pg: --from and --to must be RFC 3339 times with a zone, --from before --to\n");
		return 2;
	}
	if (!(conn = connect_admin(conninfo)))
		return 1;
	tenants = run(conn, "SELECT id, slug FROM tenants WHERE $1::text IS NULL OR slug = $1 ORDER BY slug",
		      1, params);
	if (!tenants)
		return finish(conn, NULL, false);
	if (PQntuples(tenants) == 0) {
		fprintf(stderr, "mqtt2pg: no tenant '%s'\n", tenant ? tenant : "");
		rc = 1;
	}
	for (int i = 0; i < PQntuples(tenants) && rc == 0; i++)
		if (rebuild_tenant(conn, atoi(PQgetvalue(tenants, i, 0)), PQgetvalue(tenants, i, 1), from_us,
				   to_us) < 0)
			rc = 1;
	PQclear(tenants);
	PQfinish(conn);
	return rc;
}
