// SPDX-License-Identifier: Apache-2.0
/*
 * aggregate: the job thread (leadership, schedule) and the recomputation it shares with
 * `mqtt2pg aggregate rebuild`. See aggregate.h for the design; the SQL definition of a bucket is
 * recompute_buckets() in sql/003_aggregates.sql.
 */
#include "aggregate.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/clock.h"
#include "db.h"
#include "util/log.h"
#include "util/xalloc.h"

#define MODULE "aggregate"
#define BATCH_KEYS 500
/* The advisory lock key of the job's leader: hashtext('mqtt2pg.aggregate') computed by the server. */
#define TRY_LEAD_SQL "SELECT pg_try_advisory_lock(hashtext('mqtt2pg.aggregate'))"

struct aggregator {
	struct aggregator_options options;
	struct stats *stats;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	atomic_bool stopping;
	PGconn *conn;
	bool leader;
	int64_t last_retention_ms;
	int64_t last_reject_purge_ms;
};

/* --- recomputation (shared with the CLI) ------------------------------------------------------------ */

/*
 * Claims and recomputes up to batch_keys dirty keys of one tenant in one transaction; returns how many.
 * recompute_dirty() (sql/009) claims only the keys aggregate_dirty holds for the tenant in context and
 * recomputes them as the owner: the caller chooses the tenant, never the keys.
 */
static int64_t recompute_batch(PGconn *conn, const char *tenant, int batch_keys)
{
	char limit[16];
	const char *params[1] = { limit };
	PGresult *res = NULL;
	int64_t claimed = -1;

	snprintf(limit, sizeof(limit), "%d", batch_keys);
	if (db_begin_tenant(conn, DB_LOG(MODULE), (int32_t)atoi(tenant), DB_TENANT_READ_WRITE) != 0)
		return -1;
	if (db_exec_params(conn, DB_LOG(MODULE), "recompute dirty buckets", "SELECT recompute_dirty($1::integer)", 1,
			   params, &res) != 0)
		goto fail;
	claimed = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	res = NULL;
	if (db_exec(MODULE, conn, claimed > 0 ? "COMMIT" : "ROLLBACK", "end recompute") < 0)
		return -1;
	return claimed;
fail:
	PQclear(res);
	db_exec(MODULE, conn, "ROLLBACK", "ROLLBACK");
	return -1;
}

int64_t aggregate_recompute_dirty(PGconn *conn, int32_t tenant_id, int batch_keys, aggregate_progress_fn progress,
				  void *progress_arg, atomic_bool *stop)
{
	char filter[16];
	const char *params[1] = {filter};
	PGresult *tenants;
	int64_t total = 0;

	snprintf(filter, sizeof(filter), "%d", (int)tenant_id);
	if (db_exec_params(conn, DB_LOG(MODULE), "list dirty tenants",
			   "SELECT dirty_tenant FROM aggregate_dirty_tenants() WHERE $1::integer IN (0, dirty_tenant) "
			   "ORDER BY 1",
			   1, params, &tenants) != 0)
		return -1;
	for (int i = 0; i < PQntuples(tenants); i++) {
		const char *tenant = PQgetvalue(tenants, i, 0);
		uint64_t done = 0;
		int64_t n;

		while ((n = recompute_batch(conn, tenant, batch_keys)) > 0) {
			done += (uint64_t)n;
			if (progress)
				progress(progress_arg, (int32_t)atoi(tenant), done);
			if (stop && atomic_load(stop))
				break;
		}
		if (n < 0) {
			PQclear(tenants);
			return -1;
		}
		total += (int64_t)done;
		if (stop && atomic_load(stop))
			break;
	}
	PQclear(tenants);
	return total;
}

/*
 * One call of a tenant-range function (sql/014, sql/015) in its own transaction under the tenant's context:
 * SELECT fn(from, to), from and to in µs since the epoch. Returns the function's count, or -1 (logged).
 */
static int64_t call_tenant_range(PGconn *conn, int32_t tenant_id, int64_t from_us, int64_t to_us, const char *fn,
				 const char *what)
{
	char from[24], to[24], sql[192];
	const char *params[2] = {from, to};
	PGresult *res;
	int64_t n;

	snprintf(from, sizeof(from), "%" PRId64, from_us);
	snprintf(to, sizeof(to), "%" PRId64, to_us);
	snprintf(sql, sizeof(sql),
		 "SELECT %s(timestamptz 'epoch' + $1::bigint * interval '1 microsecond', "
		 "timestamptz 'epoch' + $2::bigint * interval '1 microsecond')",
		 fn);
	if (db_begin_tenant(conn, DB_LOG(MODULE), tenant_id, DB_TENANT_READ_WRITE) != 0)
		return -1;
	if (db_exec_params(conn, DB_LOG(MODULE), what, sql, 2, params, &res) != 0)
		goto fail;
	n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	if (db_exec(MODULE, conn, "COMMIT", "COMMIT") < 0)
		return -1;
	return n;
fail:
	db_exec(MODULE, conn, "ROLLBACK", "ROLLBACK");
	return -1;
}

int64_t aggregate_mark_range(PGconn *conn, int32_t tenant_id, int64_t from_us, int64_t to_us)
{
	/* sql/015: the writer has no privilege on measurements; the function marks the context tenant's buckets. */
	return call_tenant_range(conn, tenant_id, from_us, to_us, "mark_dirty_range", "mark buckets dirty");
}

int64_t aggregate_rebuild_rollups(PGconn *conn, int32_t tenant_id, int64_t from_us, int64_t to_us)
{
	return call_tenant_range(conn, tenant_id, from_us, to_us, "rebuild_rollups", "rebuild rollups");
}

/* --- the scheduled job ----------------------------------------------------------------------------- */

static bool ensure_connected(struct aggregator *a)
{
	if (a->conn && PQstatus(a->conn) == CONNECTION_OK)
		return true;
	if (a->conn) {
		PQfinish(a->conn);
		a->conn = NULL;
		if (a->leader)
			log_warn(MODULE, "lost the database connection: no longer the aggregate leader");
		a->leader = false;
		atomic_store(&a->stats->agg_leader, 0);
	}
	/* One attempt per pass: the job's interval is its back-off. */
	const struct db_target target = {.module = MODULE,
					 .conninfo = a->options.conninfo,
					 .password = a->options.password,
					 .secret = a->options.secret,
					 .application_name = "mqtt2pg-aggregate"};
	return db_connect_backoff(&target, NULL, 1, NULL, NULL, &a->conn, NULL) == 0;
}

static void try_to_lead(struct aggregator *a)
{
	PGresult *res = PQexec(a->conn, TRY_LEAD_SQL);

	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQgetvalue(res, 0, 0)[0] == 't') {
		a->leader = true;
		atomic_store(&a->stats->agg_leader, 1);
		log_info(MODULE, "this replica is now the aggregate leader");
	}
	PQclear(res);
}

static void create_partitions_ahead(struct aggregator *a)
{
	char sql[160];
	PGresult *res;

	snprintf(sql, sizeof(sql), "SELECT ensure_partitions(now() - interval '1 day', now() + interval '%d days')",
		 a->options.partitions_ahead_days);
	res = PQexec(a->conn, sql);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && atoi(PQgetvalue(res, 0, 0)) > 0)
		log_info(MODULE, "created %s partition(s) ahead of need", PQgetvalue(res, 0, 0));
	PQclear(res);
	/*
	 * On TimescaleDB a chunk is made on first insert and copies the hypertable's grants: take them away (and
	 * move chunks made outside _mqtt2pg_chunks) so that no role reaches a chunk past the tenant policy
	 * (sql/012). A no-op on plain PostgreSQL.
	 */
	if (db_exec_params(a->conn, DB_LOG(MODULE), "secure TimescaleDB chunks", "SELECT secure_timescaledb_chunks()",
			   0, NULL, &res) == 0 && atoi(PQgetvalue(res, 0, 0)) > 0)
		log_info(MODULE, "secured %s TimescaleDB chunk grant(s) or location(s)",
			 PQgetvalue(res, 0, 0));
	PQclear(res);
}

/*
 * Drops raw partitions past the retention, at most once an hour. The cutoff is the server's
 * (server_settings.raw_retention_days, set by `mqtt2pg migrate --raw-retention-days N`): the writer role
 * cannot pass one (sql/009).
 */
static void apply_retention(struct aggregator *a, int64_t now_ms)
{
	PGresult *res;

	if (a->last_retention_ms != 0 && now_ms - a->last_retention_ms < 3600 * 1000)
		return;
	a->last_retention_ms = now_ms;
	if (db_exec_params(a->conn, DB_LOG(MODULE), "apply retention", "SELECT apply_raw_retention()", 0, NULL,
			   &res) != 0)
		return;
	for (int i = 0; res && i < PQntuples(res); i++)
		log_info(MODULE, "retention: dropped %s (older than server_settings.raw_retention_days)",
			 PQgetvalue(res, i, 0));
	PQclear(res);
}

/*
 * Deletes rejected_messages past their retention, at the first run and then once an hour: a hostile device
 * costs a sampled row a second (ingest), and this bounds how long they stay. Batched in the function.
 */
static void purge_rejected(struct aggregator *a, int64_t now_ms)
{
	char days[16];
	const char *params[1] = {days};
	PGresult *res;

	if (a->options.rejected_retention_days <= 0 ||
	    (a->last_reject_purge_ms != 0 && now_ms - a->last_reject_purge_ms < 3600 * 1000))
		return;
	a->last_reject_purge_ms = now_ms;
	snprintf(days, sizeof(days), "%d", a->options.rejected_retention_days);
	if (db_exec_params(a->conn, DB_LOG(MODULE), "purge rejected_messages",
			   "SELECT purge_rejected_messages($1::integer)", 1, params, &res) == 0 &&
	    strtoll(PQgetvalue(res, 0, 0), NULL, 10) > 0)
		log_info(MODULE, "retention: deleted %s rejected_messages row(s) older than %d days",
			 PQgetvalue(res, 0, 0), a->options.rejected_retention_days);
	PQclear(res);
}

static void record_lag(struct aggregator *a)
{
	PGresult *res = PQexec(
		a->conn, "SELECT coalesce(extract(epoch FROM now() - min(oldest_mark)) * 1000, 0)::bigint "
			 "FROM aggregate_dirty_tenants()");

	if (PQresultStatus(res) == PGRES_TUPLES_OK)
		atomic_store(&a->stats->agg_lag_ms, strtoull(PQgetvalue(res, 0, 0), NULL, 10));
	PQclear(res);
}

/* Returns false when the pass failed (logged). */
static bool run_once(struct aggregator *a)
{
	int64_t started = clock_monotonic_ms(), n;

	create_partitions_ahead(a);
	apply_retention(a, started);
	purge_rejected(a, started);
	n = aggregate_recompute_dirty(a->conn, 0, BATCH_KEYS, NULL, NULL, &a->stopping);
	if (n < 0)
		return false; /* logged; the connection check at the next run decides what to do */
	STATS_ADD(a->stats, agg_runs, 1);
	STATS_ADD(a->stats, agg_buckets, (uint64_t)n);
	atomic_store(&a->stats->agg_last_pass_ms, (uint64_t)(clock_monotonic_ms() - started));
	atomic_store(&a->stats->agg_last_run_unix, (uint64_t)time(NULL));
	record_lag(a);
	if (n > 0)
		log_info(MODULE, "recomputed %" PRId64 " bucket(s) in %" PRId64 " ms", n, clock_monotonic_ms() - started);
	return true;
}

static void *aggregator_main(void *arg)
{
	struct aggregator *a = arg;

	while (!atomic_load(&a->stopping)) {
		struct timespec deadline;

		bool ok = ensure_connected(a);

		if (ok && !a->leader)
			try_to_lead(a);
		if (ok && a->leader)
			ok = run_once(a);
		/* /readyz's aggregates_ok: a job that keeps failing is a replica to look at (issue 13). */
		if (ok)
			atomic_store(&a->stats->agg_failing, 0);
		else
			STATS_ADD(a->stats, agg_failing, 1);
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		deadline.tv_sec += a->options.interval_s;
		pthread_mutex_lock(&a->lock);
		while (!atomic_load(&a->stopping) &&
		       pthread_cond_timedwait(&a->wake, &a->lock, &deadline) == 0) {
		}
		pthread_mutex_unlock(&a->lock);
	}
	if (a->conn)
		PQfinish(a->conn); /* ends the session: the leadership lock goes with it */
	return NULL;
}

struct aggregator *aggregator_start(const struct aggregator_options *options, struct stats *stats)
{
	struct aggregator *a = xcalloc(1, sizeof(*a));
	pthread_condattr_t attr;
	int rc;

	a->options = *options;
	a->stats = stats;
	if (options->raw_retention_days > 0)
		log_warn(
			MODULE,
			"aggregates.raw_retention_days = %d is not applied by the bridge any more: retention follows the "
			"database's server_settings.raw_retention_days (mqtt2pg migrate --raw-retention-days N)",
			options->raw_retention_days);
	atomic_init(&a->stopping, false);
	pthread_mutex_init(&a->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&a->wake, &attr);
	pthread_condattr_destroy(&attr);
	rc = pthread_create(&a->thread, NULL, aggregator_main, a);
	if (rc != 0) {
		log_error(MODULE, "cannot start the aggregate thread: %s", strerror(rc));
		pthread_cond_destroy(&a->wake);
		pthread_mutex_destroy(&a->lock);
		free(a);
		return NULL;
	}
	return a;
}

void aggregator_stop(struct aggregator *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	atomic_store(&a->stopping, true);
	pthread_cond_signal(&a->wake);
	pthread_mutex_unlock(&a->lock);
	pthread_join(a->thread, NULL);
	pthread_cond_destroy(&a->wake);
	pthread_mutex_destroy(&a->lock);
	free(a);
}
