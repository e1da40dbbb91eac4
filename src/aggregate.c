// SPDX-License-Identifier: Apache-2.0
/*
 * aggregate: the job's threads (one per job connection: shards, schedule) and the recomputation they share
 * with `mqtt2pg aggregate rebuild`. See aggregate.h and the DESIGN comment below; the SQL definition of a
 * bucket is recompute_buckets() (sql/014_energy.sql, set-based since sql/016_aggregate_set_based.sql).
 */
#include "aggregate.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/xalloc.h"

#define MODULE		     "aggregate"
/*
 * Dirty keys per job transaction, as before sql/016. A claim holds its keys' aggregate_dirty rows locked until
 * it commits, and a writer re-marking one of them waits for that commit: a batch is as long as a writer may
 * wait (aggregate_bench.sh stalled ingest with 500- and 2,000-key batches alike: claims need to commit apart,
 * README "Aggregates"). Each device of a batch also holds one transaction advisory lock; the shared lock
 * table holds max_locks_per_transaction x max_connections (6,400 by default).
 */
#define AGGREGATE_BATCH_KEYS 500
/* aggregate_shard_count() of sql/016: the shards aggregate_dirty is indexed by. */
#define AGGREGATE_SHARDS     64
/* The advisory lock key of the housekeeping leader: hashtext('mqtt2pg.aggregate') computed by the server. */
#define TRY_LEAD_SQL	     "SELECT pg_try_advisory_lock(hashtext('mqtt2pg.aggregate'))"

/* --- recomputation (shared with the CLI) ------------------------------------------------------------ */

/*
 * Ends a failed transaction. A failed ROLLBACK needs nothing more: db_exec logged it; the job's next pass
 * replaces a session that is not idle (ensure_connected), and a command exits, which ends the session.
 */
static void rollback(PGconn *conn)
{
	if (db_exec(MODULE, conn, "ROLLBACK", "ROLLBACK") < 0) {
		/* logged; see above */
	}
}

/*
 * Claims and recomputes up to batch_keys dirty keys of one tenant in one transaction; returns how many.
 * recompute_dirty() (sql/009) claims only the keys aggregate_dirty holds for the tenant in context and
 * recomputes them as the owner: the caller chooses the tenant, never the keys. shard >= 0: only that
 * shard's keys (recompute_dirty_shard, sql/016), for the job; -1: any (the CLI's rebuild and import).
 */
static int64_t recompute_batch(PGconn *conn, const char *tenant, int batch_keys, int shard)
{
	char limit[16], shard_text[16];
	const char *params[2] = { limit, shard_text };
	PGresult *res = NULL;
	int64_t claimed = -1;
	int rc;

	snprintf(limit, sizeof(limit), "%d", batch_keys);
	snprintf(shard_text, sizeof(shard_text), "%d", shard);
	if (db_begin_tenant(conn, DB_LOG(MODULE), (int32_t)atoi(tenant), DB_TENANT_READ_WRITE) != 0)
		return -1;
	if (shard < 0)
		rc = db_exec_params(conn, DB_LOG(MODULE), "recompute dirty buckets",
				    "SELECT recompute_dirty($1::integer)", 1, params, &res);
	else
		rc = db_exec_params(conn, DB_LOG(MODULE), "recompute a shard's dirty buckets",
				    "SELECT recompute_dirty_shard($1::integer, $2::integer)", 2, params,
				    &res);
	if (rc != 0) {
		rollback(conn);
		return -1;
	}
	claimed = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	if (db_exec(MODULE, conn, claimed > 0 ? "COMMIT" : "ROLLBACK", "end recompute") < 0)
		return -1;
	return claimed;
}

int64_t aggregate_recompute_dirty(PGconn *conn, int32_t tenant_id, int batch_keys,
				  aggregate_progress_fn progress, void *progress_arg, atomic_bool *stop)
{
	char filter[16];
	const char *params[1] = { filter };
	PGresult *tenants;
	int64_t total = 0;

	snprintf(filter, sizeof(filter), "%d", (int)tenant_id);
	if (db_exec_params(
		    conn, DB_LOG(MODULE), "list dirty tenants",
		    "SELECT dirty_tenant FROM aggregate_dirty_tenants() WHERE $1::integer IN (0, dirty_tenant) "
		    "ORDER BY 1",
		    1, params, &tenants) != 0)
		return -1;
	for (int i = 0; i < PQntuples(tenants); i++) {
		const char *tenant = PQgetvalue(tenants, i, 0);
		uint64_t done = 0;
		int64_t n;

		while ((n = recompute_batch(conn, tenant, batch_keys, -1)) > 0) {
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
static int64_t call_tenant_range(PGconn *conn, int32_t tenant_id, int64_t from_us, int64_t to_us,
				 const char *fn, const char *what)
{
	char from[24], to[24], sql[192];
	const char *params[2] = { from, to };
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
	rollback(conn);
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

/*
 * DESIGN. The recomputation is split into AGGREGATE_SHARDS shards by aggregate_shard(tenant, device)
 * (sql/016). Every job connection of every replica walks the shards that have dirty keys, starting at its
 * own offset, and takes each one that is free with pg_try_advisory_lock(SHARD_LOCK_CLASS, shard): a session
 * lock, because draining a shard is many batch transactions (each commits its claim, so a crash loses no
 * more than one batch of work), and a transaction lock would let another connection take the shard between
 * two of them and interleave claims. It lets the shard go (pg_advisory_unlock) once its keys are done, so
 * a connection that finished early takes the shards nobody is draining yet: work spreads over connections
 * and replicas without a leader, and a dead connection's session (and lock) ends with it. Two connections
 * never hold one shard; a device is in one shard, and the per-device transaction locks of sql/014 keep a
 * recomputation by the job and one by `aggregate rebuild` or `import` (which ignore shards) apart.
 *
 * The housekeeping (partitions ahead, raw retention, rejected_messages purge) still runs on one replica at
 * a time: the first connection of each replica tries the old leader lock (bigint key), and the replica that
 * holds it is the one that reports aggregate_leader 1.
 */
#define SHARD_LOCK_SQL	 "SELECT pg_try_advisory_lock(hashtext('mqtt2pg.aggregate.shard'), $1::integer)"
#define SHARD_UNLOCK_SQL "SELECT pg_advisory_unlock(hashtext('mqtt2pg.aggregate.shard'), $1::integer)"

struct aggregate_worker {
	struct aggregator *a;
	int index; /* 0..connections-1; 0 also does the housekeeping when it holds the leader lock */
	pthread_t thread;
	bool started;
	PGconn *conn;
	bool leader;
	int shards_done; /* shards this connection drained in its last pass */
};

struct aggregator {
	struct aggregator_options options;
	struct stats *stats;
	struct aggregate_worker *workers;
	int connections;
	int shard_offset; /* this replica's first shard: replicas start apart */
	pthread_mutex_t lock;
	pthread_cond_t wake;
	atomic_bool stopping;
	atomic_int shards_done; /* sum over the connections' last passes (stats: aggregate_shards) */
	int64_t last_retention_ms;
	int64_t last_reject_purge_ms;
};

static bool ensure_connected(struct aggregate_worker *w)
{
	struct aggregator *a = w->a;
	char name[48];

	/* A session left inside a transaction (a ROLLBACK that failed on a live connection) would refuse every
	 * statement from now on: it is replaced, as a lost one is. */
	if (w->conn && PQstatus(w->conn) == CONNECTION_OK && PQtransactionStatus(w->conn) == PQTRANS_IDLE)
		return true;
	if (w->conn) {
		PQfinish(w->conn); /* its session's shard locks go with it */
		w->conn = NULL;
		if (w->leader)
			log_warn(MODULE, "replacing the database connection: no longer the aggregate leader");
		if (w->leader)
			atomic_store(&a->stats->agg_leader, 0);
		w->leader = false;
	}
	snprintf(name, sizeof(name), "mqtt2pg-aggregate-%d", w->index);
	/* One attempt per pass: the job's interval is its back-off. */
	const struct db_target target = { .module = MODULE,
					  .conninfo = a->options.conninfo,
					  .password = a->options.password,
					  .secret = a->options.secret,
					  .application_name = name };
	return db_connect_backoff(&target, NULL, 1, NULL, NULL, &w->conn, NULL) == 0;
}

static void try_to_lead(struct aggregate_worker *w)
{
	PGresult *res = PQexec(w->conn, TRY_LEAD_SQL);

	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQgetvalue(res, 0, 0)[0] == 't') {
		w->leader = true;
		atomic_store(&w->a->stats->agg_leader, 1);
		log_info(MODULE,
			 "this replica is now the aggregate leader (housekeeping; recomputation is sharded)");
	}
	PQclear(res);
}

static void create_partitions_ahead(struct aggregator *a, PGconn *conn)
{
	char sql[160];
	PGresult *res;

	snprintf(sql, sizeof(sql),
		 "SELECT ensure_partitions(now() - interval '1 day', now() + interval '%d days')",
		 a->options.partitions_ahead_days);
	res = PQexec(conn, sql);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && atoi(PQgetvalue(res, 0, 0)) > 0)
		log_info(MODULE, "created %s partition(s) ahead of need", PQgetvalue(res, 0, 0));
	PQclear(res);
	/*
	 * On TimescaleDB a chunk is made on first insert and copies the hypertable's grants: take them away (and
	 * move chunks made outside _mqtt2pg_chunks) so that no role reaches a chunk past the tenant policy
	 * (sql/012). A no-op on plain PostgreSQL.
	 */
	if (db_exec_params(conn, DB_LOG(MODULE), "secure TimescaleDB chunks",
			   "SELECT secure_timescaledb_chunks()", 0, NULL, &res) != 0)
		return;
	if (atoi(PQgetvalue(res, 0, 0)) > 0)
		log_info(MODULE, "secured %s TimescaleDB chunk grant(s) or location(s)",
			 PQgetvalue(res, 0, 0));
	PQclear(res);
}

/*
 * Drops raw partitions past the retention, at most once an hour. The cutoff is the server's
 * (server_settings.raw_retention_days, set by `mqtt2pg migrate --raw-retention-days N`): the writer role
 * cannot pass one (sql/009).
 */
static void apply_retention(struct aggregator *a, PGconn *conn, int64_t now_ms)
{
	PGresult *res;

	if (a->last_retention_ms != 0 && now_ms - a->last_retention_ms < 3600 * 1000)
		return;
	a->last_retention_ms = now_ms;
	if (db_exec_params(conn, DB_LOG(MODULE), "apply retention", "SELECT apply_raw_retention()", 0, NULL,
			   &res) != 0)
		return;
	for (int i = 0; i < PQntuples(res); i++)
		log_info(MODULE, "retention: dropped %s (older than server_settings.raw_retention_days)",
			 PQgetvalue(res, i, 0));
	PQclear(res);
}

/*
 * Deletes rejected_messages past their retention, at the first run and then once an hour: a hostile device
 * costs a sampled row a second (ingest), and this bounds how long they stay. Batched in the function.
 */
static void purge_rejected(struct aggregator *a, PGconn *conn, int64_t now_ms)
{
	char days[16];
	const char *params[1] = { days };
	PGresult *res;

	if (a->options.rejected_retention_days <= 0 ||
	    (a->last_reject_purge_ms != 0 && now_ms - a->last_reject_purge_ms < 3600 * 1000))
		return;
	a->last_reject_purge_ms = now_ms;
	snprintf(days, sizeof(days), "%d", a->options.rejected_retention_days);
	if (db_exec_params(conn, DB_LOG(MODULE), "purge rejected_messages",
			   "SELECT purge_rejected_messages($1::integer)", 1, params, &res) != 0)
		return;
	if (strtoll(PQgetvalue(res, 0, 0), NULL, 10) > 0)
		log_info(MODULE, "retention: deleted %s rejected_messages row(s) older than %d days",
			 PQgetvalue(res, 0, 0), a->options.rejected_retention_days);
	PQclear(res);
}

static void record_lag(struct aggregator *a, PGconn *conn)
{
	PGresult *res = PQexec(
		conn, "SELECT coalesce(extract(epoch FROM now() - min(oldest_mark)) * 1000, 0)::bigint "
		      "FROM aggregate_dirty_tenants()");

	if (PQresultStatus(res) == PGRES_TUPLES_OK)
		atomic_store(&a->stats->agg_lag_ms, strtoull(PQgetvalue(res, 0, 0), NULL, 10));
	PQclear(res);
}

/* pg_try_advisory_lock / pg_advisory_unlock of one shard on the connection's session. */
static bool shard_lock(PGconn *conn, const char *sql, int shard)
{
	char text[16];
	const char *params[1] = { text };
	PGresult *res;
	bool ok;

	snprintf(text, sizeof(text), "%d", shard);
	if (db_exec_params(conn, DB_LOG(MODULE), "shard lock", sql, 1, params, &res) != 0)
		return false;
	ok = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	return ok;
}

/*
 * Drains one shard this connection holds: every listed tenant with keys in it, batch after batch. Returns
 * the keys claimed, or -1 (logged).
 */
static int64_t drain_shard(struct aggregate_worker *w, const PGresult *work, int shard)
{
	int64_t total = 0;

	for (int i = 0; i < PQntuples(work); i++) {
		const char *tenant = PQgetvalue(work, i, 0);
		int64_t n;

		if (atoi(PQgetvalue(work, i, 1)) != shard)
			continue;
		while ((n = recompute_batch(w->conn, tenant, AGGREGATE_BATCH_KEYS, shard)) > 0) {
			total += n;
			if (atomic_load(&w->a->stopping))
				return total;
		}
		if (n < 0)
			return -1;
	}
	return total;
}

/* One pass of one connection over the shards with dirty keys. Returns the keys claimed, or -1 (logged). */
static int64_t recompute_shards(struct aggregate_worker *w)
{
	struct aggregator *a = w->a;
	int start = (a->shard_offset + w->index * AGGREGATE_SHARDS / a->connections) % AGGREGATE_SHARDS;
	bool dirty[AGGREGATE_SHARDS] = { false };
	PGresult *work;
	int64_t total = 0;

	w->shards_done = 0;
	if (db_exec_params(w->conn, DB_LOG(MODULE), "list dirty shards",
			   "SELECT dirty_tenant, dirty_shard FROM aggregate_dirty_shards() ORDER BY 2, 1", 0,
			   NULL, &work) != 0)
		return -1;
	for (int i = 0; i < PQntuples(work); i++) {
		int shard = atoi(PQgetvalue(work, i, 1));

		if (shard >= 0 && shard < AGGREGATE_SHARDS)
			dirty[shard] = true;
	}
	for (int k = 0; k < AGGREGATE_SHARDS && !atomic_load(&a->stopping); k++) {
		int shard = (start + k) % AGGREGATE_SHARDS;
		int64_t n;

		if (!dirty[shard] || !shard_lock(w->conn, SHARD_LOCK_SQL, shard))
			continue; /* clean, or another connection (of any replica) is draining it */
		n = drain_shard(w, work, shard);
		if (!shard_lock(w->conn, SHARD_UNLOCK_SQL, shard) && PQstatus(w->conn) == CONNECTION_OK)
			log_warn(MODULE, "shard %d was not locked by this session at its unlock", shard);
		if (n < 0) {
			total = -1;
			break;
		}
		total += n;
		w->shards_done++;
	}
	PQclear(work);
	return total;
}

/* Returns false when the pass failed (logged). */
static bool run_once(struct aggregate_worker *w)
{
	struct aggregator *a = w->a;
	int64_t started = clock_monotonic_ms(), n;
	int before = w->shards_done;

	if (w->leader) {
		create_partitions_ahead(a, w->conn);
		apply_retention(a, w->conn, started);
		purge_rejected(a, w->conn, started);
	}
	n = recompute_shards(w);
	atomic_fetch_add(&a->shards_done, w->shards_done - before);
	atomic_store(&a->stats->agg_shards, (uint64_t)atomic_load(&a->shards_done));
	if (n < 0)
		return false; /* logged; the connection check at the next run decides what to do */
	STATS_ADD(a->stats, agg_runs, 1);
	STATS_ADD(a->stats, agg_buckets, (uint64_t)n);
	atomic_store(&a->stats->agg_last_pass_ms, (uint64_t)(clock_monotonic_ms() - started));
	atomic_store(&a->stats->agg_last_run_unix, (uint64_t)time(NULL));
	if (w->index == 0)
		record_lag(a, w->conn);
	if (n > 0)
		log_info(MODULE,
			 "connection %d: recomputed %" PRId64 " dirty key(s) of %d shard(s) in %" PRId64
			 " ms",
			 w->index, n, w->shards_done, clock_monotonic_ms() - started);
	return true;
}

static void *aggregate_worker_main(void *arg)
{
	struct aggregate_worker *w = arg;
	struct aggregator *a = w->a;

	while (!atomic_load(&a->stopping)) {
		struct timespec deadline;
		bool ok = ensure_connected(w);

		if (ok && w->index == 0 && !w->leader)
			try_to_lead(w);
		if (ok)
			ok = run_once(w);
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
	if (w->conn)
		PQfinish(w->conn); /* ends the session: its locks go with it */
	w->conn = NULL;
	return NULL;
}

static void aggregator_free(struct aggregator *a)
{
	pthread_cond_destroy(&a->wake);
	pthread_mutex_destroy(&a->lock);
	free(a->workers);
	free(a);
}

struct aggregator *aggregator_start(const struct aggregator_options *options, struct stats *stats)
{
	struct aggregator *a = xcalloc(1, sizeof(*a));
	pthread_condattr_t attr;
	struct timespec now;

	a->options = *options;
	a->stats = stats;
	a->connections = options->connections > 0 ? options->connections : 1;
	a->workers = xcalloc((size_t)a->connections, sizeof(*a->workers));
	/* Replicas started together begin at different shards, so that they rarely try the same one first. */
	clock_gettime(CLOCK_REALTIME, &now);
	a->shard_offset = (int)(((uint64_t)now.tv_nsec ^ (uint64_t)getpid()) % AGGREGATE_SHARDS);
	if (options->raw_retention_days > 0)
		log_warn(
			MODULE,
			"aggregates.raw_retention_days = %d is not applied by the bridge any more: retention follows the "
			"database's server_settings.raw_retention_days (mqtt2pg migrate --raw-retention-days N)",
			options->raw_retention_days);
	atomic_init(&a->stopping, false);
	atomic_init(&a->shards_done, 0);
	pthread_mutex_init(&a->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&a->wake, &attr);
	pthread_condattr_destroy(&attr);
	for (int i = 0; i < a->connections; i++) {
		struct aggregate_worker *w = &a->workers[i];
		int rc;

		w->a = a;
		w->index = i;
		rc = pthread_create(&w->thread, NULL, aggregate_worker_main, w);
		if (rc != 0) {
			log_error(MODULE, "cannot start aggregate connection %d's thread: %s", i,
				  strerror(rc));
			aggregator_stop(a);
			return NULL;
		}
		w->started = true;
	}
	return a;
}

void aggregator_stop(struct aggregator *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	atomic_store(&a->stopping, true);
	pthread_cond_broadcast(&a->wake);
	pthread_mutex_unlock(&a->lock);
	for (int i = 0; i < a->connections; i++)
		if (a->workers[i].started)
			pthread_join(a->workers[i].thread, NULL);
	aggregator_free(a);
}
