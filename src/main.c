// SPDX-License-Identifier: Apache-2.0
/*
 * main: command-line dispatch. `mqtt2pg [-c FILE] [--db CONNINFO] COMMAND ...`; `run` is the bridge, the
 * rest are operator commands that do their job and exit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acl.h"
#include "admin.h"
#include "bridge.h"
#include "config.h"
#include "import.h"
#include "json_arena.h"
#include "log.h"
#include "migrate.h"
#include "route.h"
#include "tz.h"

#define DEFAULT_CONFIG "/etc/mqtt2pg/mqtt2pg.conf"

static void print_usage(FILE *out)
{
	fprintf(out,
		"usage: mqtt2pg [-c FILE] [--db CONNINFO] COMMAND [ARGS]\n"
		"\n"
		"  run                          run the bridge (MQTT -> PostgreSQL) until SIGTERM\n"
		"  leave                        retire this replica (its client id and spool) from the shared\n"
		"                               group without loss: take its session, unsubscribe, drain, end it\n"
		"  check-config                 check the configuration file and list every error with its line\n"
		"  migrate [--chunk-interval I] [--timescaledb]\n"
		"                               create or upgrade the database schema (owner role);\n"
		"                               --timescaledb creates the extension first (hypertable)\n"
		"  tenant add SLUG [--name N]   register a tenant\n"
		"  tenant list\n"
		"  device add SERIAL --tenant SLUG [--model M] [--point NAME[:UNIT[:MIN:MAX[:KIND]]]]...\n"
		"  device list [--tenant SLUG]\n"
		"  device disable SERIAL | device enable SERIAL\n"
		"  point add SERIAL NAME [--unit U] [--min X] [--max Y] [--kind gauge|counter]\n"
		"  point list [--device SERIAL]\n"
		"  aggregate rebuild --from T1 --to T2 [--tenant SLUG]\n"
		"                               recompute the 5-minute aggregates of a range (RFC 3339 times)\n"
		"  import --format influx|csv --tenant SLUG [--resume] [--validate-only] [--no-aggregates] FILE...\n"
		"                               import history (writer role, database.conninfo); see README\n"
		"  acl export|check ...         broker ACL from the registry / lint an acl_file (mqtt2pg acl for usage)\n"
		"  version\n"
		"\n"
		"  -c FILE        configuration (default $MQTT2PG_CONFIG or " DEFAULT_CONFIG ")\n"
		"  --db CONNINFO  owner/admin connection for migrate and the registry commands\n"
		"                 (default $MQTT2PG_ADMIN_CONNINFO or database.admin_conninfo)\n");
}

/* The config file to read: -c, $MQTT2PG_CONFIG, or the default path if it exists (else built-in defaults). */
static const char *config_path(const char *given, bool required)
{
	const char *env = getenv("MQTT2PG_CONFIG");

	if (given)
		return given;
	if (env && *env)
		return env;
	if (required || access(DEFAULT_CONFIG, R_OK) == 0)
		return DEFAULT_CONFIG;
	return NULL;
}

static struct config *load_config(const char *path)
{
	char errors[8192];
	struct config *cfg = config_load(path, errors, sizeof(errors));

	if (!cfg)
		fprintf(stderr, "%s", errors);
	return cfg;
}

/* The route's options beyond its template, when it has any (check-config). */
static void describe_route(const struct route *r)
{
	if (r->preset)
		printf("    preset %s\n", r->preset);
	if (r->tenant || r->serial)
		printf("    fixed%s%s%s%s\n", r->tenant ? " tenant " : "", r->tenant ? r->tenant : "",
		       r->serial ? " serial " : "", r->serial ? r->serial : "");
	if (r->influx.serial_tag[0])
		printf("    device from tag %s\n", r->influx.serial_tag);
	if (r->time_field)
		printf("    time from %s (%s)%s%s\n", r->time_field, route_time_unit_name(r->time_unit),
		       r->timezone ? ", zone " : "", r->timezone ? tz_name(r->timezone) : "");
	if (r->ignore_retained)
		printf("    retained messages ignored\n");
	for (size_t i = 0; i < r->ignore_count; i++)
		printf("    ignores %s\n", r->ignore[i]);
}

static int check_config(const char *path)
{
	struct config *cfg = load_config(path);

	if (!cfg)
		return 1;
	printf("%s: OK (%zu route(s), %d writer(s), unknown points: %s)\n", path ? path : "(defaults)",
	       cfg->route_count, cfg->database.writers,
	       config_unknown_point_policy_name(cfg->validation.unknown_points));
	for (size_t i = 0; i < cfg->route_count; i++) {
		printf("  route %s (%s) subscribes %s%s%s%s\n", cfg->routes[i].template_text,
		       route_format_name(cfg->routes[i].format), cfg->mqtt.shared_group ? "$share/" : "",
		       cfg->mqtt.shared_group ? cfg->mqtt.shared_group : "", cfg->mqtt.shared_group ? "/" : "",
		       cfg->routes[i].filter);
		describe_route(&cfg->routes[i]);
	}
	config_free(cfg);
	return 0;
}

int main(int argc, char **argv)
{
	const char *config_arg = NULL, *db_arg = NULL, *command;
	struct config *cfg;
	int i = 1, rc;

	json_arena_init(); /* before any thread: cJSON's allocation hooks are process-wide */
	/* -c and --db may stand anywhere (`mqtt2pg device list -c FILE`): take them out first. */
	int kept = 1;
	for (int j = 1; j < argc; j++) {
		if ((strcmp(argv[j], "-c") == 0 || strcmp(argv[j], "--config") == 0) && j + 1 < argc)
			config_arg = argv[++j];
		else if (strcmp(argv[j], "--db") == 0 && j + 1 < argc)
			db_arg = argv[++j];
		else
			argv[kept++] = argv[j];
	}
	argc = kept;
	if (i < argc && (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)) {
		print_usage(stdout);
		return 0;
	}
	if (i < argc && argv[i][0] == '-') {
		fprintf(stderr, "mqtt2pg: unknown option %s\n", argv[i]);
		print_usage(stderr);
		return 2;
	}
	command = i < argc ? argv[i++] : "run";
	if (strcmp(command, "version") == 0) {
		printf("mqtt2pg %s\n", MQTT2PG_VERSION);
		return 0;
	}
	if (strcmp(command, "help") == 0) {
		print_usage(stdout);
		return 0;
	}
	if (strcmp(command, "check-config") == 0)
		return check_config(config_path(config_arg, true));
	bool bridge = strcmp(command, "run") == 0 || strcmp(command, "leave") == 0;
	cfg = load_config(config_path(config_arg, bridge));
	if (!cfg)
		return 1;
	if (strcmp(command, "run") == 0)
		return bridge_run(cfg); /* takes cfg */
	if (strcmp(command, "leave") == 0)
		return bridge_leave(cfg); /* takes cfg */
	if (!db_arg)
		db_arg = cfg->database.admin_conninfo;
	if (strcmp(command, "migrate") == 0) {
		struct migrate_options opts = { 0 };
		for (int j = i; j < argc; j++) {
			if (strcmp(argv[j], "--chunk-interval") == 0 && j + 1 < argc)
				opts.chunk_interval = argv[j + 1];
			else if (strcmp(argv[j], "--timescaledb") == 0)
				opts.timescaledb = true;
		}
		if (!db_arg) {
			fprintf(stderr, "mqtt2pg: migrate needs the owner's connection: --db CONNINFO\n");
			rc = 2;
		} else {
			rc = migrate_run(db_arg, &opts) == 0 ? 0 : 1;
		}
	} else if (strcmp(command, "tenant") == 0) {
		rc = admin_tenant(db_arg, argc - i, argv + i);
	} else if (strcmp(command, "device") == 0) {
		rc = admin_device(db_arg, argc - i, argv + i);
	} else if (strcmp(command, "point") == 0) {
		rc = admin_point(db_arg, argc - i, argv + i);
	} else if (strcmp(command, "aggregate") == 0) {
		rc = admin_aggregate(db_arg, argc - i, argv + i);
	} else if (strcmp(command, "import") == 0) {
		rc = import_command(cfg, argc - i, argv + i);
	} else if (strcmp(command, "acl") == 0) {
		rc = acl_command(db_arg, argc - i, argv + i);
	} else {
		fprintf(stderr, "mqtt2pg: unknown command '%s'\n", command);
		print_usage(stderr);
		rc = 2;
	}
	config_free(cfg);
	return rc;
}
