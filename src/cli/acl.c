// SPDX-License-Identifier: Apache-2.0
/*
 * acl: the `mqtt2pg acl export|check` command (see acl.h): its arguments, the registry read from the
 * database, the files read and written. The work is done by the pure parts: acl_export.c, acl_file.c and
 * acl_lint.c.
 */
#include "cli/acl.h"

#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db.h"
#include "util/text.h"
#include "util/xalloc.h"

#define ACL_USAGE                                                                              \
	"acl export [--format mosquitto|dynsec] [--bridge-user NAME] [--topic-prefix PREFIX] " \
	"[--username serial|serial@tenant] [-o FILE]\n"                                        \
	"       mqtt2pg acl check FILE [--bridge-user NAME] [--topic-prefix PREFIX] "          \
	"[--username serial|serial@tenant]"

/* The registry as read from the database; strings borrow res. */
struct loaded_registry {
	PGresult *res;
	struct acl_device *devices;
	const char **tenants;
	struct acl_registry reg;
};

static void loaded_registry_clear(struct loaded_registry *lr)
{
	PQclear(lr->res);
	free(lr->devices);
	free(lr->tenants);
	memset(lr, 0, sizeof(*lr));
}

/*
 * Reads every tenant and device in one statement (one snapshot); qualified: each device's broker username
 * is <serial>@<tenant>. Returns 0, or -1 after printing why.
 */
static int load_registry(const char *conninfo, bool qualified, struct loaded_registry *lr)
{
	PGconn *conn;
	char err[1024];
	int rows;

	memset(lr, 0, sizeof(*lr));
	if (!conninfo) {
		fprintf(stderr,
			"mqtt2pg: no admin database: pass --db CONNINFO, set $MQTT2PG_ADMIN_CONNINFO, "
			"or database.admin_conninfo in the config\n");
		return -1;
	}
	if (!(conn = db_connect("acl", conninfo, NULL, "mqtt2pg-acl")))
		return -1;
	lr->res = PQexec(conn, "SELECT t.slug, d.serial, d.enabled, d.serial || '@' || t.slug FROM tenants t "
			       "LEFT JOIN devices d ON d.tenant_id = t.id ORDER BY t.slug, d.serial");
	if (PQresultStatus(lr->res) != PGRES_TUPLES_OK) {
		fprintf(stderr, "mqtt2pg: reading the registry: %s\n",
			db_error_line(conn, lr->res, err, sizeof(err)));
		PQfinish(conn);
		loaded_registry_clear(lr);
		return -1;
	}
	PQfinish(conn);
	rows = PQntuples(lr->res);
	lr->devices = xcalloc((size_t)rows + 1, sizeof(*lr->devices));
	lr->tenants = xcalloc((size_t)rows + 1, sizeof(*lr->tenants));
	for (int r = 0; r < rows; r++) {
		const char *slug = PQgetvalue(lr->res, r, 0);
		if (lr->reg.tenant_count == 0 || strcmp(lr->tenants[lr->reg.tenant_count - 1], slug) != 0)
			lr->tenants[lr->reg.tenant_count++] = slug;
		if (PQgetisnull(lr->res, r, 1))
			continue; /* a tenant without devices */
		lr->devices[lr->reg.device_count++] = (struct acl_device){
			.serial = PQgetvalue(lr->res, r, 1),
			.tenant = slug,
			.enabled = PQgetvalue(lr->res, r, 2)[0] == 't',
			.username = qualified ? PQgetvalue(lr->res, r, 3) : NULL,
		};
	}
	lr->reg.devices = lr->devices;
	lr->reg.tenants = lr->tenants;
	return 0;
}

/* Writes text to path through a temporary file and rename, so a broker reloading never reads half a file. */
static int write_file_atomically(const char *path, const char *text)
{
	char *tmp = xasprintf("%s.XXXXXX", path);
	size_t len = strlen(text), done = 0;
	int fd = mkstemp(tmp), rc = -1;

	if (fd < 0) {
		fprintf(stderr, "mqtt2pg: cannot create %s: %s\n", tmp, strerror(errno));
		free(tmp);
		return -1;
	}
	while (done < len) {
		ssize_t n = write(fd, text + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "mqtt2pg: cannot write %s: %s\n", tmp, strerror(errno));
			goto out;
		}
		done += (size_t)n;
	}
	/* No secrets in it, and the broker (another user) must read it. */
	if (fchmod(fd, 0644) < 0 || fsync(fd) < 0) {
		fprintf(stderr, "mqtt2pg: cannot finish %s: %s\n", tmp, strerror(errno));
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		fprintf(stderr, "mqtt2pg: cannot close %s: %s\n", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		fprintf(stderr, "mqtt2pg: cannot rename %s to %s: %s\n", tmp, path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (rc < 0)
		unlink(tmp);
	free(tmp);
	return rc;
}

/* Reads a whole file; returns an owned buffer (NUL-terminated, length in *len) or NULL after printing why. */
static char *read_file(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n;

	*len = 0;
	if (!fp) {
		fprintf(stderr, "mqtt2pg: cannot open %s: %s\n", path, strerror(errno));
		return NULL;
	}
	do {
		if (*len + 4096 + 1 > cap) {
			cap = (*len + 4096 + 1) * 2;
			buf = xrealloc(buf, cap);
		}
		n = fread(buf + *len, 1, cap - *len - 1, fp);
		*len += n;
	} while (n > 0);
	if (ferror(fp)) {
		fprintf(stderr, "mqtt2pg: cannot read %s: %s\n", path, strerror(errno));
		fclose(fp);
		free(buf);
		return NULL;
	}
	fclose(fp);
	buf[*len] = '\0';
	return buf;
}

struct acl_args {
	const char *format, *bridge_user, *topic_prefix, *output, *file, *username;
	bool qualified; /* --username serial@tenant */
};

/* Parses `VERB [FILE] [--opt value]...`; returns false (after printing usage) on anything unexpected. */
static bool parse_args(int argc, char **argv, struct acl_args *a)
{
	*a = (struct acl_args){
		.format = "mosquitto", .bridge_user = "mqtt2pg", .topic_prefix = "solar", .username = "serial"
	};
	for (int i = 1; i < argc; i++) {
		const char **slot = NULL;
		if (strcmp(argv[i], "--format") == 0)
			slot = &a->format;
		else if (strcmp(argv[i], "--bridge-user") == 0)
			slot = &a->bridge_user;
		else if (strcmp(argv[i], "--topic-prefix") == 0)
			slot = &a->topic_prefix;
		else if (strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--output") == 0)
			slot = &a->output;
		else if (strcmp(argv[i], "--username") == 0)
			slot = &a->username;
		if (slot && i + 1 < argc) {
			*slot = argv[++i];
		} else if (!slot && argv[i][0] != '-' && !a->file) {
			a->file = argv[i];
		} else {
			fprintf(stderr, "mqtt2pg: acl: unexpected '%s'\nusage: mqtt2pg " ACL_USAGE "\n",
				argv[i]);
			return false;
		}
	}
	a->qualified = strcmp(a->username, "serial@tenant") == 0;
	if (!a->qualified && strcmp(a->username, "serial") != 0) {
		fprintf(stderr, "mqtt2pg: acl: --username is serial or serial@tenant, not '%s'\n",
			a->username);
		return false;
	}
	return true;
}

static int acl_export_command(const char *conninfo, const struct acl_args *a)
{
	struct acl_policy pol = { .topic_prefix = a->topic_prefix, .bridge_user = a->bridge_user };
	struct loaded_registry lr;
	enum acl_format fmt;
	char err[512], *text = NULL;
	int rc = 1;

	if (strcmp(a->format, "mosquitto") == 0) {
		fmt = ACL_FORMAT_MOSQUITTO;
	} else if (strcmp(a->format, "dynsec") == 0) {
		fmt = ACL_FORMAT_DYNSEC;
	} else {
		fprintf(stderr, "mqtt2pg: acl export: unknown format '%s' (mosquitto or dynsec)\n",
			a->format);
		return 2;
	}
	if (a->file) {
		fprintf(stderr, "mqtt2pg: acl export: unexpected '%s' (write to a file with -o FILE)\n",
			a->file);
		return 2;
	}
	if (load_registry(conninfo, a->qualified, &lr) < 0)
		return 1;
	if (acl_export(&lr.reg, &pol, fmt, &text, err, sizeof(err)) < 0) {
		fprintf(stderr, "mqtt2pg: acl export: %s\n", err);
		goto out;
	}
	if (a->output) {
		if (write_file_atomically(a->output, text) < 0)
			goto out;
	} else if (fputs(text, stdout) == EOF || fflush(stdout) == EOF) {
		fprintf(stderr, "mqtt2pg: acl export: cannot write to standard output: %s\n",
			strerror(errno));
		goto out;
	}
	rc = 0;
out:
	free(text);
	loaded_registry_clear(&lr);
	return rc;
}

static int acl_check_command(const char *conninfo, const struct acl_args *a)
{
	struct acl_policy pol = { .topic_prefix = a->topic_prefix, .bridge_user = a->bridge_user };
	struct loaded_registry lr;
	struct acl_finding *findings = NULL;
	struct acl_file *f = NULL;
	size_t len, count, enabled = 0;
	char *text, *path;

	if (!a->file) {
		fprintf(stderr, "usage: mqtt2pg " ACL_USAGE "\n");
		return 2;
	}
	if (!acl_prefix_usable(pol.topic_prefix) || !pol.bridge_user[0]) {
		fprintf(stderr, "mqtt2pg: acl check: unusable --topic-prefix or --bridge-user\n");
		return 2;
	}
	if (!(text = read_file(a->file, &len)))
		return 2;
	if (load_registry(conninfo, a->qualified, &lr) < 0) {
		free(text);
		return 2;
	}
	f = acl_file_parse(text, len);
	free(text);
	count = acl_lint(f, &lr.reg, &pol, &findings);
	path = text_escape_dup(a->file);
	for (size_t i = 0; i < count; i++) {
		if (findings[i].line)
			printf("%s:%u: %s: %s\n", path, findings[i].line,
			       acl_finding_kind_name(findings[i].kind), findings[i].message);
		else
			printf("%s: %s: %s\n", path, acl_finding_kind_name(findings[i].kind),
			       findings[i].message);
	}
	for (size_t i = 0; i < lr.reg.device_count; i++)
		enabled += lr.reg.devices[i].enabled;
	fflush(stdout);
	fprintf(stderr,
		"mqtt2pg: acl check %s: %zu finding(s) in %zu rule(s), against %zu enabled device(s) of %zu "
		"tenant(s)\n",
		path, count, f->rule_count, enabled, lr.reg.tenant_count);
	free(path);
	acl_findings_free(findings, count);
	acl_file_free(f);
	loaded_registry_clear(&lr);
	return count ? 1 : 0;
}

int acl_command(const char *conninfo, int argc, char **argv)
{
	const char *verb = argc > 0 ? argv[0] : "";
	struct acl_args a;

	if (strcmp(verb, "export") != 0 && strcmp(verb, "check") != 0) {
		fprintf(stderr, "usage: mqtt2pg " ACL_USAGE "\n");
		return 2;
	}
	if (!parse_args(argc, argv, &a))
		return 2;
	return verb[0] == 'e' ? acl_export_command(conninfo, &a) : acl_check_command(conninfo, &a);
}
