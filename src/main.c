// SPDX-License-Identifier: Apache-2.0
/*
 * main: command-line dispatch. `mqtt2pg [-c FILE] [--db CONNINFO] COMMAND ...`; `run` is the bridge, the
 * rest are operator commands that do their job and exit.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli/acl.h"
#include "cli/admin.h"
#include "bridge.h"
#include "config.h"
#include "cli/energy.h"
#include "util/secret.h"
#include "cli/import.h"
#include "payload/json_arena.h"
#include "util/log.h"
#include "cli/migrate.h"
#include "route.h"
#include "util/tz.h"
#include "util/xalloc.h"

#define DEFAULT_CONFIG "/etc/mqtt2pg/mqtt2pg.conf"

static void print_usage(FILE *out)
{
	fprintf(out,
		"usage: mqtt2pg [-c FILE] [--db CONNINFO | --db-file FILE] COMMAND [ARGS]\n"
		"\n"
		"  run                          run the bridge (MQTT -> PostgreSQL) until SIGTERM\n"
		"  leave                        retire this replica (its client id and spool) from the shared\n"
		"                               group without loss: take its session, unsubscribe, drain, end it\n"
		"  check-config                 check the configuration file and list every error with its line\n"
		"  migrate [--chunk-interval I] [--timescaledb] [--raw-retention-days N] [--compress-after-days N]\n"
		"                               create or upgrade the database schema (owner role);\n"
		"                               --timescaledb creates the extension first (hypertable); N: drop\n"
		"                               raw readings older than N days (0 keeps them; stored in the database;\n"
		"                               must exceed validation.max_age); --compress-after-days N: TimescaleDB\n"
		"                               compresses chunks older than N days (default 7, 0 = no policy)\n"
		"  tenant add SLUG [--name N]   register a tenant\n"
		"  tenant list\n"
		"  tenant grant-reader SLUG --role R [--create] | tenant revoke-reader SLUG --role R\n"
		"  tenant readers [SLUG]        the login roles that may read a tenant (dashboards)\n"
		"  device add SERIAL --tenant SLUG [--model M]\n"
		"             [--point name=N[,unit=U][,min=X][,max=Y][,kind=gauge|counter|daily_counter]]...\n"
		"                               (\\, for a comma in a value; the old NAME[:UNIT[:MIN:MAX[:KIND]]]\n"
		"                               form still works for names without ':')\n"
		"  device list [--tenant SLUG]\n"
		"  device disable SERIAL [--tenant SLUG] | device enable SERIAL [--tenant SLUG]\n"
		"  point add SERIAL NAME [--tenant SLUG] [--unit U] [--min X] [--max Y] [--kind gauge|counter|daily_counter]\n"
		"  point list [--device SERIAL] [--tenant SLUG]\n"
		"  aggregate rebuild --from T1 --to T2 [--tenant SLUG]\n"
		"                               recompute the 5-minute aggregates and rollups of a range (RFC 3339)\n"
		"  energy --tenant SLUG --from DATE --to DATE [--point NAME]\n"
		"                               daily energy per device and local day (--to exclusive)\n"
		"  import --format influx|csv --tenant SLUG [--resume] [--validate-only] [--no-aggregates]\n"
		"         [--allow-range FROM..TO] FILE...\n"
		"                               import history (writer role, database.conninfo); see README\n"
		"  acl export|check ...         broker ACL from the registry / lint an acl_file (mqtt2pg acl for usage)\n"
		"  version\n"
		"\n"
		"  -c FILE        configuration (default $MQTT2PG_CONFIG or " DEFAULT_CONFIG ")\n"
		"  --db CONNINFO  owner/admin connection for migrate and the registry commands\n"
		"                 (default $MQTT2PG_ADMIN_CONNINFO or database.admin_conninfo); a password here\n"
		"                 is visible to other users until mqtt2pg starts: prefer --db-file or ~/.pgpass\n"
		"  --db-file FILE the same, read from FILE (mode 0600, or 0640 owned by root)\n");
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
	if (r->payload.influx.serial_tag[0])
		printf("    device from tag %s\n", r->payload.influx.serial_tag);
	if (r->payload.time_field)
		printf("    time from %s (%s)%s%s\n", r->payload.time_field,
		       route_time_unit_name(r->payload.time_unit), r->payload.timezone ? ", zone " : "",
		       r->payload.timezone ? tz_name(r->payload.timezone) : "");
	if (r->ignore_retained)
		printf("    retained messages ignored\n");
	else if (r->retained_timestamped)
		printf("    retained messages taken only with their own timestamp\n");
	for (size_t i = 0; i < r->ignore_count; i++)
		printf("    ignores %s\n", r->ignore[i]);
	if (r->payload.numeric_strings || r->payload.booleans)
		printf("    values:%s%s\n", r->payload.numeric_strings ? " numeric strings" : "",
		       r->payload.booleans ? " booleans" : "");
	for (size_t i = 0; i < r->payload.points_map_count; i++)
		printf("    maps %s -> %s\n", r->payload.points_map[2 * i], r->payload.points_map[2 * i + 1]);
	for (size_t i = 0; i < r->payload.ignore_points_count; i++)
		printf("    skips points %s\n", r->payload.ignore_points[i]);
	for (size_t i = 0; i < r->payload.points_count; i++)
		printf("    keeps only points %s\n", r->payload.points[i]);
	for (size_t i = 0; i < r->payload.measurements_count; i++)
		printf("    keeps measurement %s\n", r->payload.measurements[i]);
	if (r->alias_scope && *r->alias_scope)
		printf("    device aliases of scope %s\n", r->alias_scope);
}

/*
 * Routes whose filters overlap: a broker delivers such a message once per subscription (issue 15: stored
 * twice, with two receive times). A warning, not an error: overlapping on purpose (a route ahead of a preset)
 * is fine with MQTT 5, where each message is processed once, under the first matching route's subscription.
 */
static void warn_overlaps(const struct config *cfg)
{
	char example[256];

	for (size_t i = 0; i < cfg->route_count; i++)
		for (size_t j = i + 1; j < cfg->route_count; j++)
			if (route_filters_overlap(cfg->routes[i].filter, cfg->routes[j].filter, example,
						  sizeof(example)))
				printf("  warning: routes[%zu] (%s) and routes[%zu] (%s) overlap: e.g. %s is delivered under "
				       "both subscriptions; %s\n",
				       i, cfg->routes[i].filter, j, cfg->routes[j].filter, example,
				       cfg->mqtt.version == 5 ?
					       "each message is processed once, under the first route's subscription "
					       "(MQTT 5 subscription identifiers), the other copy ignored as overlap_copy" :
					       "with mqtt.version = 4 both copies are processed (stored twice when the "
					       "payload has no time): use MQTT 5 or make the filters disjoint");
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
		       cfg->mqtt.shared_group ? cfg->mqtt.shared_group : "",
		       cfg->mqtt.shared_group ? "/" : "", cfg->routes[i].filter);
		describe_route(&cfg->routes[i]);
	}
	warn_overlaps(cfg);
	config_free(cfg);
	return 0;
}

/*
 * Before anything reads a secret: no core dump (it would hold every password and token in memory), and not
 * dumpable, so that another process of the same user cannot ptrace us or read /proc/PID/mem and environ.
 */
static void protect_process(void)
{
	const struct rlimit none = { 0, 0 };

	if (setrlimit(RLIMIT_CORE, &none) != 0)
		fprintf(stderr, "mqtt2pg: warning: cannot disable core dumps: %s\n", strerror(errno));
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		fprintf(stderr, "mqtt2pg: warning: cannot make the process non-dumpable: %s\n",
			strerror(errno));
}

/*
 * --db's value is copied, then its password overwritten in argv itself: /proc/PID/cmdline (what ps shows
 * every user) reads those bytes. The copy is owned by the caller.
 */
static char *take_db_argument(char *arg)
{
	char *copy = xstrdup(arg);

	if (config_conninfo_hide_password(arg))
		fprintf(stderr,
			"mqtt2pg: warning: the password given with --db was visible to other users (ps, "
			"/proc/PID/cmdline) until mqtt2pg scrubbed it; use --db-file FILE (mode 0600), "
			"$MQTT2PG_ADMIN_CONNINFO or a ~/.pgpass file\n");
	return copy;
}

static char *read_db_file(const char *path)
{
	char err[512];
	char *conninfo = NULL;

	if (secret_read_file(path, &conninfo, err, sizeof(err)) != 0) {
		fprintf(stderr, "mqtt2pg: --db-file: %s\n", err);
		return NULL;
	}
	return conninfo;
}

/* Runs COMMAND (argv[1], "run" when absent) once -c/--db/--db-file are taken out; returns the exit code. */
static int run_command(int argc, char **argv, const char *config_arg, const char *db_arg)
{
	const char *command;
	struct config *cfg;
	int i = 1, rc;

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
		struct migrate_options opts = { .compress_after_days = -1 };
		const char *retention = NULL, *compress = NULL;
		int days = -1; /* -1: leave server_settings.raw_retention_days as it is */
		for (int j = i; j < argc; j++) {
			if (strcmp(argv[j], "--chunk-interval") == 0 && j + 1 < argc)
				opts.chunk_interval = argv[j + 1];
			else if (strcmp(argv[j], "--timescaledb") == 0)
				opts.timescaledb = true;
			else if (strcmp(argv[j], "--raw-retention-days") == 0 && j + 1 < argc)
				retention = argv[j + 1];
			else if (strcmp(argv[j], "--compress-after-days") == 0 && j + 1 < argc)
				compress = argv[j + 1];
		}
		if (retention) {
			char *end;
			long v = strtol(retention, &end, 10);
			days = *retention && !*end && v >= 0 && v <= 36500 ? (int)v : -2;
		}
		if (compress) {
			char *end;
			long v = strtol(compress, &end, 10);
			opts.compress_after_days = *compress && !*end && v >= 0 && v <= 36500 ? (int)v : -2;
		}
		if (!db_arg) {
			fprintf(stderr, "mqtt2pg: migrate needs the owner's connection: --db CONNINFO\n");
			rc = 2;
		} else if (days > 0 && (int64_t)days * 86400 <= cfg->validation.max_age) {
			/* the same rule as config.c's check of aggregates.raw_retention_days */
			fprintf(stderr,
				"mqtt2pg: --raw-retention-days %d must be longer than validation.max_age (%d s): a reading "
				"still accepted as late would find its raw data gone\n",
				days, cfg->validation.max_age);
			rc = 2;
		} else if (days == -2 || opts.compress_after_days == -2) {
			fprintf(stderr,
				"mqtt2pg: --raw-retention-days and --compress-after-days are whole numbers of "
				"days, 0 (off) to 36500\n");
			rc = 2;
		} else {
			rc = migrate_run(db_arg, &opts) == 0 ? 0 : 1;
			if (rc == 0 && days >= 0 && migrate_set_raw_retention(db_arg, days) < 0)
				rc = 1;
			if (rc == 0 && opts.compress_after_days >= 0 &&
			    migrate_set_compress_after(db_arg, opts.compress_after_days) < 0)
				rc = 1;
		}
	} else if (strcmp(command, "tenant") == 0) {
		rc = admin_tenant(db_arg, argc - i, argv + i);
	} else if (strcmp(command, "device") == 0) {
		rc = admin_device(db_arg, argc - i, argv + i);
	} else if (strcmp(command, "point") == 0) {
		rc = admin_point(db_arg, argc - i, argv + i);
	} else if (strcmp(command, "aggregate") == 0) {
		rc = admin_aggregate(db_arg, argc - i, argv + i);
	} else if (strcmp(command, "energy") == 0) {
		rc = energy_command(db_arg, argc - i, argv + i);
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

int main(int argc, char **argv)
{
	const char *config_arg = NULL, *db_file = NULL;
	char *db_given = NULL; /* owned copy of --db's or --db-file's conninfo */
	int kept = 1, rc;

	protect_process();
	json_arena_init(); /* before any thread: cJSON's allocation hooks are process-wide */
	/* -c, --db and --db-file may stand anywhere (`mqtt2pg device list -c FILE`): take them out first. */
	for (int j = 1; j < argc; j++) {
		if ((strcmp(argv[j], "-c") == 0 || strcmp(argv[j], "--config") == 0) && j + 1 < argc) {
			config_arg = argv[++j];
		} else if (strcmp(argv[j], "--db") == 0 && j + 1 < argc) {
			free(db_given);
			db_given = take_db_argument(argv[++j]);
		} else if (strcmp(argv[j], "--db-file") == 0 && j + 1 < argc) {
			db_file = argv[++j];
		} else {
			argv[kept++] = argv[j];
		}
	}
	if (db_file && db_given) {
		fprintf(stderr, "mqtt2pg: give --db or --db-file, not both\n");
		rc = 2;
	} else if (db_file && !(db_given = read_db_file(db_file))) {
		rc = 1;
	} else {
		rc = run_command(kept, argv, config_arg, db_given);
	}
	if (db_given)
		explicit_bzero(db_given, strlen(db_given));
	free(db_given);
	return rc;
}
