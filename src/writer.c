// SPDX-License-Identifier: Apache-2.0
/*
 * writer: the last stage of the data path (see writer.h for the contract). Reading it top-down:
 * writer_main (the loop) -> route_message (per-tenant batches) -> flush_batch -> write_isolating
 * (retry / bisect) -> insert_readings or insert_rejections (one transaction each).
 */
#include "writer.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "util/clock.h"
#include "db.h"
#include "util/log.h"
#include "payload/timeparse.h"
#include "util/xalloc.h"
#include "readings_sql.h"

#define MODULE		 "writer"
#define POP_MAX		 4096
#define REJECT_BATCH_MAX 500

/*
 * One statement per batch: the rows, and the dirty marks of the new ones, through write_readings() (readings_sql.h,
 * sql/015: the writer has no privilege on measurements itself). Refused rows come back as SQLSTATE MQ005 when
 * older than the raw retention horizon (rejected as beyond_retention), otherwise as the database's error.
 */
static const char *const insert_readings_sql =
	READINGS_WRITE(READINGS_FROM_ARRAYS, "$5::integer") "SELECT count(*) FROM ins";

/* Idempotent through (origin, origin_seq): a replayed spool record is not recorded twice. */
static const char *const insert_rejection_sql =
	"INSERT INTO rejected_messages (received_at, topic, tenant_slug, serial, tenant_id, device_id, reason, "
	"detail, payload, origin, origin_seq) VALUES (timestamptz 'epoch' + $1::bigint * interval '1 microsecond', "
	"$2, $3, $4, $5::integer, $6::integer, $7, $8, $9::bytea, $10, $11::bigint) "
	"ON CONFLICT (origin, origin_seq) DO NOTHING";

enum write_outcome {
	WRITE_OK,
	WRITE_TRANSIENT, /* retry the same rows later */
	WRITE_PERMANENT, /* some row in the range is refused */
	WRITE_NO_PARTITION,
	WRITE_BEYOND_RETENTION, /* a reading older than the raw retention horizon (sql/015: MQ005) */
};

struct writer {
	int index;
	char name[32];
	struct writer_options options;
	struct queue *queue; /* borrowed */
	struct stats *stats; /* borrowed */
	pthread_t thread;
	atomic_bool connected;
	atomic_bool writable; /* false while the database answers "read-only" (25006) */
	atomic_bool finished;
	PGconn *conn;
	struct batch *batches; /* one per tenant seen, reused */
	size_t batch_count;
	struct batch rejections; /* rejected messages waiting to be recorded (tenant_id 0) */
	struct batch_arrays arrays;
	char error[512]; /* the last database error, for rejection records */
	bool beyond_retention; /* the last permanent refusal was MQ005: its message is rejected as beyond_retention */
	bool new_session;	    /* the last transient failure wants a new session (classify) */
	bool read_only;		    /* ... and it was the database being read-only */
	enum write_outcome failure; /* what the last failed statement means (classify, through report) */
	bool over_cap;		    /* ... and it was register_point's MQ001 (sql/006_point_limit_code.sql) */
	struct db_report report;    /* failed statements go to classify */
	struct db_backoff backoff;  /* reconnects and transient failures */
	int64_t probed_ms;	    /* monotonic, the last check of a read-only database while idle */
	bool probing;		    /* ensure_connected called by probe_writable: log only a change */
};

typedef enum write_outcome (*write_fn)(struct writer *w, int32_t tenant_id, struct message *first,
				       size_t count);
typedef void (*refused_fn)(struct writer *w, struct message *m);

/* --- connection ------------------------------------------------------------------------------------- */

/* db_connect_backoff's set-up of each new session. */
static int prepare_statements(PGconn *conn, void *arg)
{
	struct writer *w = arg;
	static const struct {
		const char *name, *sql;
	} statements[] = {
		{ "insert_readings", NULL },
		{ "insert_rejection", NULL },
		{ "register_point", "SELECT register_point($1::integer, $2::text, $3::integer)" },
		{ "ensure_partitions",
		  "SELECT ensure_partitions(timestamptz 'epoch' + $1::bigint * interval '1 microsecond', "
		  "timestamptz 'epoch' + $2::bigint * interval '1 microsecond')" },
	};

	for (size_t i = 0; i < sizeof(statements) / sizeof(statements[0]); i++) {
		const char *sql = statements[i].sql ? statements[i].sql :
				  i == 0	    ? insert_readings_sql :
						      insert_rejection_sql;
		PGresult *res = PQprepare(conn, statements[i].name, sql, 0, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			log_error(w->name, "cannot prepare %s: %s", statements[i].name,
				  db_error_line(conn, res, w->error, sizeof(w->error)));
			PQclear(res);
			return -1;
		}
		PQclear(res);
	}
	return 0;
}

/*
 * Whether the new session may write: default_transaction_read_only (set on the database during a managed
 * service's "disk full" mode) or a standby behind the service address after a failover. Unknown counts as
 * writable: the first write tells.
 */
static bool session_is_read_only(struct writer *w)
{
	PGresult *res = PQexec(
		w->conn, "SELECT current_setting('transaction_read_only') = 'on' OR pg_is_in_recovery()");
	bool read_only = false;

	if (PQresultStatus(res) == PGRES_TUPLES_OK) {
		read_only = PQgetvalue(res, 0, 0)[0] == 't';
	} else {
		/* Deliberately not logged: "unknown" is "writable", and the next statement on this session
		 * (create_partitions_ahead, then the batch) fails the same way and is told with its context. */
	}
	PQclear(res);
	return read_only;
}

static void disconnect(struct writer *w)
{
	if (w->conn) {
		PQfinish(w->conn);
		w->conn = NULL;
		atomic_store(&w->connected, false);
	}
}

/*
 * Partitions for yesterday to three days ahead, so the first rows of a day do not wait for a failed insert.
 * Best effort: a failure here is logged and the lazy path in write_isolating covers it (a missing partition
 * makes ensure_partitions run for the batch's own range). It runs outside a transaction, so a failure leaves
 * nothing open on the session.
 */
static void create_partitions_ahead(struct writer *w)
{
	PGresult *res = PQexec(
		w->conn, "SELECT ensure_partitions(now() - interval '1 day', now() + interval '3 days')");

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		log_warn(w->name, "cannot create partitions ahead: %s",
			 db_error_line(w->conn, res, w->error, sizeof(w->error)));
	PQclear(res);
}

/*
 * Returns with a working, prepared connection, waiting as long as it takes. A session is kept only while it is
 * idle outside any transaction: every caller is between transactions, so anything else means a ROLLBACK that
 * did not go through (rollback), and such a session is replaced rather than reused.
 */
static void ensure_connected(struct writer *w)
{
	/* Each attempt with the current password (re-read at SIGHUP), prepared. */
	const struct db_target target = { .module = w->name,
					  .conninfo = w->options.conninfo,
					  .secret = w->options.secret,
					  .application_name = "mqtt2pg-writer" };
	int failures = 0;
	bool read_only;

	if (w->conn && PQstatus(w->conn) == CONNECTION_OK && PQtransactionStatus(w->conn) == PQTRANS_IDLE)
		return;
	disconnect(w);
	if (db_connect_backoff(&target, &w->backoff, 0, prepare_statements, w, &w->conn, &failures) != 0)
		return; /* not reached: without a limit of attempts it waits until it connects */
	if (failures > 0)
		STATS_ADD(w->stats, db_reconnects, 1);
	read_only = session_is_read_only(w);
	/* While the database stays read-only, each new session says so again: only the change is news. */
	if (read_only != !atomic_load(&w->writable) || (!w->probing && !read_only))
		log_info(w->name, "connected to the database%s",
			 read_only ? " (read-only: writes wait)" : "");
	if (!read_only)
		create_partitions_ahead(w);
	atomic_store(&w->writable, !read_only);
	atomic_store(&w->connected, true);
	if (!read_only) /* a read-only database keeps the back-off growing: no reconnect storm */
		db_backoff_reset(&w->backoff);
}

/* --- one transaction ------------------------------------------------------------------------------- */

/* db_check's report for the writer's statements: what the failure means for the rows, logged at its level. */
static void classify(void *arg, PGconn *conn, const PGresult *res, const char *what)
{
	struct writer *w = arg;
	const char *state = db_sqlstate(res);
	enum write_outcome outcome;

	db_error_line(conn, res, w->error, sizeof(w->error));
	w->new_session = false;
	w->read_only = false;
	w->over_cap = strcmp(state, "MQ001") == 0;
	if (db_error_is_transient(conn, res)) {
		outcome = WRITE_TRANSIENT;
		w->new_session = db_error_needs_new_session(conn, res);
		w->read_only = strcmp(state, "25006") == 0;
		STATS_ADD(w->stats, db_errors_transient, 1);
		if (w->read_only && !atomic_load(&w->writable)) /* said once, by wait_transient */
			log_debug(w->name, "%s failed, will retry: %s", what, w->error);
		else
			log_warn(w->name, "%s failed, will retry: %s", what, w->error);
	} else if (strcmp(state, "23514") == 0 && strstr(w->error, "no partition")) {
		outcome = WRITE_NO_PARTITION;
	} else if (strcmp(state, "MQ005") == 0) {
		outcome =
			WRITE_BEYOND_RETENTION; /* permanent for these rows: isolated, then rejected with its reason */
		log_debug(w->name, "%s refused: %s", what, w->error);
	} else {
		outcome = WRITE_PERMANENT;
		STATS_ADD(w->stats, db_errors_permanent, 1);
		log_debug(w->name, "%s refused: %s", what, w->error);
	}
	w->failure = outcome;
}

/*
 * Ends a failed transaction so the connection can be reused. Best effort, deliberately unchecked: the failure
 * that brought us here has been told (classify), and the outcome the caller returns is that failure's. A
 * ROLLBACK that does not go through leaves the session broken or inside a transaction, and ensure_connected
 * replaces such a session before the next attempt; an aborted transaction runs nothing, so no tenant's
 * context can be used meanwhile.
 */
static void rollback(struct writer *w)
{
	if (PQstatus(w->conn) == CONNECTION_OK) {
		PGresult *res = PQexec(w->conn, "ROLLBACK");
		PQclear(res);
	}
}

/* The outcome of a db_check/db_exec_params return: classify said what a failure means. */
static enum write_outcome outcome_of(const struct writer *w, int rc)
{
	if (rc == 0)
		return WRITE_OK;
	return rc == -EAGAIN || rc == -EIO ? w->failure : WRITE_PERMANENT; /* -EINVAL: nothing was sent */
}

static enum write_outcome begin_tenant(struct writer *w, int32_t tenant_id)
{
	if (tenant_id == 0) /* rejections are recorded without tenant context */
		return outcome_of(w, db_exec_params(w->conn, &w->report, "BEGIN", "BEGIN", 0, NULL, NULL));
	return outcome_of(w, db_begin_tenant(w->conn, &w->report, tenant_id, DB_TENANT_READ_WRITE));
}

static enum write_outcome commit(struct writer *w)
{
	return outcome_of(w, db_exec_params(w->conn, &w->report, "COMMIT", "COMMIT", 0, NULL, NULL));
}

/* The batch's duration and, per message, how long it took from the broker to the database. */
static void record_latency(struct writer *w, const struct message *first, size_t count, int64_t started_us)
{
	int64_t now = clock_realtime_us();

	stats_observe(&w->stats->batch_seconds, now - started_us);
	for (const struct message *m = first; m && count > 0; m = m->next, count--)
		stats_observe(&w->stats->lag_seconds, now - m->received_us);
}

static enum write_outcome insert_readings(struct writer *w, int32_t tenant_id, struct message *first,
					  size_t count)
{
	char tenant[16];
	const char *params[5];
	enum write_outcome outcome;
	PGresult *res;
	uint64_t inserted;

	int64_t started_us = clock_realtime_us();

	batch_arrays_build(&w->arrays, first, count);
	snprintf(tenant, sizeof(tenant), "%d", (int)tenant_id);
	const int lengths[5] = { (int)w->arrays.times.len, (int)w->arrays.devices.len,
				 (int)w->arrays.points.len, (int)w->arrays.values.len, 0 };
	const int formats[5] = { 1, 1, 1, 1, 0 };
	params[0] = (const char *)w->arrays.times.bytes;
	params[1] = (const char *)w->arrays.devices.bytes;
	params[2] = (const char *)w->arrays.points.bytes;
	params[3] = (const char *)w->arrays.values.bytes;
	params[4] = tenant;
	outcome = begin_tenant(w, tenant_id);
	if (outcome != WRITE_OK)
		return outcome; /* no transaction is open */
	outcome = outcome_of(
		w,
		db_check(w->conn, &w->report, "insert readings",
			 PQexecPrepared(w->conn, "insert_readings", 5, params, lengths, formats, 0), &res));
	if (outcome != WRITE_OK)
		goto fail;
	inserted = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	outcome = commit(w);
	if (outcome != WRITE_OK)
		goto fail;
	STATS_ADD(w->stats, rows_inserted, inserted);
	STATS_ADD(w->stats, rows_duplicate, w->arrays.rows - inserted);
	STATS_ADD(w->stats, batches_committed, 1);
	record_latency(w, first, count, started_us);
	return WRITE_OK;
fail:
	rollback(w);
	return outcome;
}

static enum write_outcome insert_rejections(struct writer *w, int32_t tenant_id, struct message *first,
					    size_t count)
{
	enum write_outcome outcome = begin_tenant(w, tenant_id);
	struct message *m = first;

	if (outcome != WRITE_OK)
		return outcome; /* no transaction is open */
	for (size_t i = 0; i < count; i++, m = m->next) {
		const struct rejection *r = m->rejection;
		char received[24], tenant_id_text[16], device_id_text[16], seq_text[24];
		const char *params[11] = { received,
					   r->topic,
					   r->tenant_slug,
					   r->serial,
					   m->tenant_id ? tenant_id_text : NULL,
					   m->device_id ? device_id_text : NULL,
					   reject_reason_name(r->reason),
					   r->detail,
					   (const char *)r->payload,
					   w->options.origin,
					   m->spool_seq ? seq_text : NULL };
		const int lengths[11] = { 0, 0, 0, 0, 0, 0, 0, 0, (int)r->payload_len, 0, 0 };
		const int formats[11] = { 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0 };

		snprintf(received, sizeof(received), "%" PRId64, m->received_us);
		snprintf(tenant_id_text, sizeof(tenant_id_text), "%d", (int)m->tenant_id);
		snprintf(device_id_text, sizeof(device_id_text), "%d", (int)m->device_id);
		snprintf(seq_text, sizeof(seq_text), "%" PRIu64, m->spool_seq);
		if (!r->payload)
			params[8] = NULL;
		outcome = outcome_of(w, db_check(w->conn, &w->report, "record rejected message",
						 PQexecPrepared(w->conn, "insert_rejection", 11, params,
								lengths, formats, 0),
						 NULL));
		if (outcome != WRITE_OK)
			goto fail;
	}
	outcome = commit(w);
	if (outcome != WRITE_OK)
		goto fail;
	STATS_ADD(w->stats, rejects_recorded, count);
	return WRITE_OK;
fail:
	rollback(w);
	return outcome;
}

/* --- retry and isolation ---------------------------------------------------------------------------- */

static void time_range(const struct message *first, size_t count, int64_t *min_us, int64_t *max_us)
{
	*min_us = INT64_MAX;
	*max_us = INT64_MIN;
	for (const struct message *m = first; m && count > 0; m = m->next, count--)
		for (uint32_t i = 0; i < m->reading_count; i++) {
			if (m->readings[i].time_us < *min_us)
				*min_us = m->readings[i].time_us;
			if (m->readings[i].time_us > *max_us)
				*max_us = m->readings[i].time_us;
		}
}

static enum write_outcome create_partitions(struct writer *w, const struct message *first, size_t count)
{
	char from[24], to[24];
	const char *params[2] = { from, to };
	int64_t min_us, max_us;
	char when[40];

	time_range(first, count, &min_us, &max_us);
	snprintf(from, sizeof(from), "%" PRId64, min_us);
	snprintf(to, sizeof(to), "%" PRId64, max_us);
	timeparse_format(min_us, when, sizeof(when));
	log_info(w->name, "creating partitions for readings from %s (%s)", when, w->error);
	return outcome_of(w, db_check(w->conn, &w->report, "create partitions",
				      PQexecPrepared(w->conn, "ensure_partitions", 2, params, NULL, NULL, 0),
				      NULL));
}

/* Tells the spool these messages are in the database, so its checkpoint can move past them. */
static void commit_spooled(struct writer *w, const struct message *first, size_t count)
{
	if (!w->options.spool)
		return;
	for (const struct message *m = first; m && count > 0; m = m->next, count--)
		if (m->spool_seq)
			spool_commit(w->options.spool, m->spool_seq);
}

/*
 * After a transient failure: wait, on a new session when the failure asks for one. A read-only database
 * (failover to a standby, or the read-only mode a managed service enters when its disk fills) is waited out
 * the same way: the rows are not the problem, so none of them is rejected; readiness says so meanwhile.
 */
static void wait_transient(struct writer *w)
{
	if (w->read_only && atomic_exchange(&w->writable, false))
		log_warn(w->name, "the database is read-only: writes wait and are retried (%s)", w->error);
	if (w->new_session)
		disconnect(w);
	db_backoff_wait(&w->backoff);
}

static void mark_writable(struct writer *w)
{
	if (!atomic_exchange(&w->writable, true))
		log_info(w->name, "the database accepts writes again");
}

/*
 * Writes count messages from first with fn, retrying transient failures forever and isolating permanent
 * ones by bisection: a refused single message goes to refused(). The messages stay owned by the caller.
 */
static void write_isolating(struct writer *w, write_fn fn, refused_fn refused, int32_t tenant_id,
			    struct message *first, size_t count)
{
	bool partitions_tried = false;

	for (;;) {
		enum write_outcome outcome;

		ensure_connected(w);
		outcome = fn(w, tenant_id, first, count);
		if (outcome == WRITE_OK) {
			mark_writable(w);
			db_backoff_reset(&w->backoff);
			commit_spooled(w, first, count);
			return;
		}
		if (outcome == WRITE_TRANSIENT) {
			wait_transient(w);
			continue;
		}
		if (outcome == WRITE_NO_PARTITION && !partitions_tried) {
			partitions_tried = true;
			if (create_partitions(w, first, count) != WRITE_TRANSIENT)
				continue;
			wait_transient(w);
			continue;
		}
		w->beyond_retention = outcome == WRITE_BEYOND_RETENTION;
		break; /* permanent */
	}
	if (count == 1) {
		refused(w, first);
		return;
	}
	size_t half = count / 2;
	struct message *second = first;
	for (size_t i = 0; i < half; i++)
		second = second->next;
	write_isolating(w, fn, refused, tenant_id, first, half);
	write_isolating(w, fn, refused, tenant_id, second, count - half);
}

/* A message of readings that PostgreSQL refused becomes a rejection record carrying the database's reason. */
static void refuse_readings(struct writer *w, struct message *m, enum reject_reason reason)
{
	char detail[640];
	struct message *rejection;

	snprintf(detail, sizeof(detail), "%s", w->error);
	log_warn(w->name, "database refused a message of device id %d (tenant id %d): %s", (int)m->device_id,
		 (int)m->tenant_id, w->error);
	rejection = message_new_reject(reason, detail, NULL, 0, m->received_us);
	rejection->tenant_id = m->tenant_id;
	rejection->device_id = m->device_id;
	/* The spool record is done when its rejection is recorded. */
	rejection->spool_seq = m->spool_seq;
	m->spool_seq = 0;
	batch_add(&w->rejections, rejection, clock_monotonic_ms());
	STATS_ADD(w->stats, messages_rejected[reason], 1);
}

static void readings_refused(struct writer *w, struct message *m)
{
	refuse_readings(w, m, w->beyond_retention ? REJECT_BEYOND_RETENTION : REJECT_DATABASE);
}

/*
 * A rejection record the database refused (transient failures never get here: write_isolating waits them
 * out). Dropping it would lose an acknowledged message without a trace, so it is recorded in its plainest
 * form, without the payload that may be what the database refuses and with the refusal in its detail; if
 * even that is refused, it is retried until it is recorded: the spool's checkpoint never moves past it.
 */
static void rejection_refused(struct writer *w, struct message *m)
{
	struct rejection *r = m->rejection;
	char detail[1024];
	bool logged = false;

	log_error(w->name,
		  "could not record a rejected message (reason %s): %s; recording it without its payload",
		  reject_reason_name(r->reason), w->error);
	snprintf(detail, sizeof(detail), "%s [payload dropped: the database refused the record: %s]",
		 r->detail, w->error);
	free(r->detail);
	r->detail = xstrdup(detail);
	free(r->payload);
	r->payload = NULL;
	r->payload_len = 0;
	for (;;) {
		ensure_connected(w);
		enum write_outcome outcome = insert_rejections(w, 0, m, 1);
		if (outcome == WRITE_OK)
			break;
		if (outcome == WRITE_TRANSIENT) {
			wait_transient(w);
			continue;
		}
		if (!logged)
			log_error(
				w->name,
				"the database refuses even the plain rejection record (%s): retrying until it "
				"accepts it",
				w->error);
		logged = true;
		db_backoff_wait(&w->backoff);
	}
	commit_spooled(w, m, 1);
}

/*
 * Policy "register": gives every new point of the chain a real id before the batch is written. A device
 * over its point cap (another replica won the race) turns its message into a rejection.
 */
static void register_new_points(struct writer *w, struct message **chain, size_t *count)
{
	struct message **link = chain;

	while (*link) {
		struct message *m = *link;
		bool refused = false, over_cap = false;

		for (uint32_t i = 0; i < m->new_point_count && !refused; i++) {
			char device[16], cap[16];
			const char *params[3] = { device, m->new_points[i], cap };
			int32_t id = 0;

			snprintf(device, sizeof(device), "%d", (int)m->device_id);
			snprintf(cap, sizeof(cap), "%d", w->options.max_points_per_device);
			for (;;) {
				PGresult *res = NULL;

				ensure_connected(w);
				enum write_outcome outcome =
					outcome_of(w, db_check(w->conn, &w->report, "register point",
							       PQexecPrepared(w->conn, "register_point", 3,
									      params, NULL, NULL, 0),
							       &res));
				if (outcome == WRITE_OK) {
					id = (int32_t)atoi(PQgetvalue(res, 0, 0));
					PQclear(res);
					break;
				}
				over_cap = w->over_cap;
				if (outcome != WRITE_TRANSIENT) {
					refused = true;
					break;
				}
				wait_transient(w);
			}
			for (uint32_t r = 0; r < m->reading_count && !refused; r++)
				if (m->readings[r].point_id == -(int32_t)(i + 1))
					m->readings[r].point_id = id;
			if (!refused)
				log_info(w->name, "registered point '%s' for device id %d (point id %d)",
					 m->new_points[i], (int)m->device_id, (int)id);
		}
		if (refused) {
			*link = m->next;
			(*count)--;
			/* Over the cap: another message took the last free point before our snapshot knew. */
			refuse_readings(w, m, over_cap ? REJECT_POINT_LIMIT : REJECT_DATABASE);
			message_free(m);
			continue;
		}
		link = &m->next;
	}
}

static void free_chain(struct message *m)
{
	while (m) {
		struct message *next = m->next;
		message_free(m);
		m = next;
	}
}

static void flush_batch(struct writer *w, struct batch *b)
{
	size_t count;
	struct message *chain = batch_take(b, &count);

	if (b == &w->rejections) {
		write_isolating(w, insert_rejections, rejection_refused, 0, chain, count);
	} else {
		register_new_points(w, &chain, &count);
		if (count > 0)
			write_isolating(w, insert_readings, readings_refused, b->tenant_id, chain, count);
	}
	free_chain(chain);
}

/* --- the loop -------------------------------------------------------------------------------------- */

static struct batch *batch_for_tenant(struct writer *w, int32_t tenant_id)
{
	for (size_t i = 0; i < w->batch_count; i++)
		if (w->batches[i].tenant_id == tenant_id)
			return &w->batches[i];
	w->batches = xrealloc(w->batches, (w->batch_count + 1) * sizeof(*w->batches));
	batch_init(&w->batches[w->batch_count], tenant_id);
	return &w->batches[w->batch_count++];
}

static void route_messages(struct writer *w, struct message *chain, int64_t now_ms)
{
	while (chain) {
		struct message *m = chain;
		chain = chain->next;
		if (m->kind == MESSAGE_REJECT)
			batch_add(&w->rejections, m, now_ms);
		else
			batch_add(batch_for_tenant(w, m->tenant_id), m, now_ms);
	}
}

/*
 * Writes every batch that is due: full (batch_rows), old (flush_interval_ms), or, when nothing more is
 * waiting in the queue, older than linger_ms: waiting longer would only add latency, while under load the
 * queue refills during each write so batches grow by themselves. All of them when everything must go.
 */
static void flush_due(struct writer *w, bool everything)
{
	int64_t now = clock_monotonic_ms();
	int64_t max_age = queue_depth(w->queue) == 0 ? w->options.linger_ms : w->options.flush_interval_ms;

	for (size_t i = 0; i < w->batch_count; i++)
		if (w->batches[i].message_count > 0 &&
		    (everything || batch_due(&w->batches[i], (size_t)w->options.batch_rows, max_age, now)))
			flush_batch(w, &w->batches[i]);
	/* Rejections flush after the readings: a refused reading adds to them. */
	if (w->rejections.message_count > 0 &&
	    (everything || batch_due(&w->rejections, REJECT_BATCH_MAX, w->options.flush_interval_ms, now)))
		flush_batch(w, &w->rejections);
}

/* How long the loop may wait for more messages before some batch is due (it wakes early for a message). */
static int wait_budget_ms(struct writer *w)
{
	int64_t now = clock_monotonic_ms(), budget = 1000;

	for (size_t i = 0; i <= w->batch_count; i++) {
		const struct batch *b = i < w->batch_count ? &w->batches[i] : &w->rejections;
		if (b->message_count > 0) {
			int64_t left = b->opened_ms + w->options.linger_ms - now;
			if (left < budget)
				budget = left;
		}
	}
	return budget < 0 ? 0 : (int)budget;
}

/*
 * A session that saw a read-only database stays read-only (the setting is read at connect), and an idle
 * writer would not find out that the database is writable again: readiness would stay false. So while idle
 * and read-only, look again on a new session once a second.
 */
static void probe_writable(struct writer *w)
{
	int64_t now = clock_monotonic_ms();

	if (atomic_load(&w->writable) || now - w->probed_ms < 1000)
		return;
	w->probed_ms = now;
	disconnect(w);
	w->probing = true;
	ensure_connected(w);
	w->probing = false;
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;

	ensure_connected(w);
	for (;;) {
		size_t count;
		struct message *chain = queue_pop(w->queue, POP_MAX, wait_budget_ms(w), &count);

		if (chain)
			route_messages(w, chain, clock_monotonic_ms());
		if (queue_is_finished(w->queue)) {
			flush_due(w, true);
			break;
		}
		flush_due(w, false);
		probe_writable(w);
	}
	log_info(w->name, "queue drained, writer stops");
	disconnect(w);
	atomic_store(&w->finished, true);
	return NULL;
}

struct writer *writer_start(int index, const struct writer_options *options, struct queue *queue,
			    struct stats *stats)
{
	struct writer *w = xcalloc(1, sizeof(*w));
	int rc;

	w->index = index;
	snprintf(w->name, sizeof(w->name), "writer-%d", index);
	w->options = *options;
	w->queue = queue;
	w->stats = stats;
	w->report = (struct db_report){ .module = w->name, .report = classify, .arg = w };
	w->backoff =
		(struct db_backoff){ .delay_ms = 100, .first_ms = 100, .max_ms = options->reconnect_max_ms };
	atomic_init(&w->connected, false);
	atomic_init(&w->writable, true);
	atomic_init(&w->finished, false);
	batch_init(&w->rejections, 0);
	rc = pthread_create(&w->thread, NULL, writer_main, w);
	if (rc != 0) {
		log_error(MODULE, "cannot start writer thread %d: %s", index, strerror(rc));
		free(w);
		return NULL;
	}
	return w;
}

bool writer_is_connected(const struct writer *w)
{
	return atomic_load(&w->connected);
}

bool writer_is_writable(const struct writer *w)
{
	return atomic_load(&w->connected) && atomic_load(&w->writable);
}

bool writer_is_finished(const struct writer *w)
{
	return atomic_load(&w->finished);
}

void writer_join(struct writer *w)
{
	if (!w)
		return;
	pthread_join(w->thread, NULL);
	for (size_t i = 0; i < w->batch_count; i++) {
		size_t n;
		free_chain(batch_take(&w->batches[i], &n));
	}
	free(w->batches);
	batch_arrays_free(&w->arrays);
	free(w);
}
