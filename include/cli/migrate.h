/* SPDX-License-Identifier: Apache-2.0 */
/*
 * migrate: applies the SQL migrations compiled into the binary (sql/NNN_name.sql), in order, each once,
 * each in its own transaction, recording them in schema_migrations. Concurrent runs (several Helm hooks,
 * several replicas) serialise on an advisory lock, so running it twice is always safe.
 */
#ifndef MQTT2PG_MIGRATE_H
#define MQTT2PG_MIGRATE_H

#include <stdbool.h>

struct migration {
	const char *name; /* "001_registry" */
	const char *sql;
};

/* Generated from the files in sql/ at build time; ends with {NULL, NULL}. */
extern const struct migration migration_files[];

struct migrate_options {
	const char *chunk_interval; /* NULL: 1 day; passed to the migrations as mqtt2pg.chunk_interval */
	bool timescaledb;	    /* create the timescaledb extension first (--timescaledb) */
	int compress_after_days; /* -1: default (7); the compression policy made by sql/015 on a hypertable */
};

/*
 * Connects with conninfo (the owner role) and applies what is missing, as opts says. Returns 0, or -1 after
 * logging why.
 */
int migrate_run(const char *conninfo, const struct migrate_options *opts) __attribute__((warn_unused_result));

/*
 * Stores server_settings.raw_retention_days (sql/009; 0 keeps raw readings forever) as the owner, after
 * migrate_run, through set_raw_retention() (sql/015: on a hypertable also TimescaleDB's retention policy,
 * same horizon). The bridge's retention takes its cutoff from there: the writer role can neither pass one nor
 * change it. Returns 0, or -1 after logging why.
 */
int migrate_set_raw_retention(const char *conninfo, int days) __attribute__((warn_unused_result));

/*
 * Sets the compression policy's age in days (0: no policy) through set_compress_after() (sql/015), after
 * migrate_run; on plain partitions only the setting is stored. Returns 0, or -1 after logging why.
 */
int migrate_set_compress_after(const char *conninfo, int days) __attribute__((warn_unused_result));

#endif
