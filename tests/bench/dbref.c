// SPDX-License-Identifier: Apache-2.0
/*
 * dbref: the database-only reference of the benchmark. Inserts the same rows the bridge would (N messages of
 * M devices over T tenants, 4 points each, one row per point) straight into measurements as the writer role
 * under Row-Level Security, with no MQTT and no bridge, as fast as one or more libpq connections can. The
 * bench states the bridge's throughput as a ratio of this figure, measured in the same run on the same
 * cluster, so the result holds on a noisy machine.
 *
 * Every transaction holds one tenant's rows: BEGIN; SELECT set_config('app.tenant_id', $1, true); <write>;
 * COMMIT. The write, by --mode:
 *   values      one prepared multi-row INSERT ... VALUES (...), ... ON CONFLICT DO NOTHING of --batch rows,
 *               binary parameters (the fastest INSERT under RLS; COPY FROM is refused under RLS);
 *   copy        COPY into a temporary staging table (ON COMMIT DELETE ROWS), then
 *               INSERT INTO measurements SELECT ... FROM staging ON CONFLICT DO NOTHING;
 *   bridge-sql  the bridge's own statement (include/readings_sql.h, with four text arrays): write_readings(),
 *               the SECURITY DEFINER function of sql/015 that checks the tenant context, inserts ON CONFLICT
 *               DO NOTHING and marks aggregate_dirty;
 *   direct-sql  what the bridge ran before sql/015: the same INSERT ... ON CONFLICT DO NOTHING and marking
 *               as one statement of the writer straight into measurements (needs INSERT and SELECT on the key
 *               columns, which the bench grants for this comparison only; the bridge's role no longer has them).
 * Connection c writes the devices j with j % C == c, so no two connections touch the same rows.
 *
 * Rows are the publisher's (tests/bench/pub.c): message i is device j = i % M (serial B-<j%T+1>-<j/T>),
 * time = base + i microseconds, values the same functions of the time, so the bench checks them the same way.
 *
 * Output: "dbref: mode=... conns=... rows=... inserted=... elapsed_s=... rows_per_s=... base_us=...".
 */
#include <inttypes.h>
#include <getopt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <endian.h>

#include "readings_sql.h"

#include <libpq-fe.h>

#define POINTS		   4
#define MAX_CONNS	   16
/* Microseconds between the Unix epoch and PostgreSQL's (2000-01-01). */
#define PG_EPOCH_OFFSET_US INT64_C(946684800000000)
#define OID_INT4	   23
#define OID_FLOAT8	   701
#define OID_TIMESTAMPTZ	   1184

static const char *const point_names[POINTS] = { "total_output_power", "grid_voltage", "grid_frequency",
						 "daily_energy" };

static const char *const bridge_sql =
	READINGS_WRITE(READINGS_FROM_ARRAYS, "$5::integer") "SELECT count(*) FROM ins";

/* The writer's statement before sql/015 (readings_sql.h then), kept to measure what write_readings() costs. */
static const char *const direct_sql =
	"WITH ins AS ("
	" INSERT INTO measurements (time, tenant_id, device_id, point_id, value)"
	" SELECT timestamptz 'epoch' + r.t * interval '1 microsecond', $5::integer, r.d, r.p, r.v"
	" FROM unnest($1::bigint[], $2::integer[], $3::integer[], $4::float8[]) AS r(t, d, p, v)"
	" ON CONFLICT DO NOTHING RETURNING device_id, time), "
	"marks AS ("
	" INSERT INTO aggregate_dirty (tenant_id, device_id, bucket)"
	" SELECT DISTINCT $5::integer, k.device_id, k.bucket FROM ("
	"  SELECT device_id, date_bin('5 minutes', time, timestamptz 'epoch') AS bucket FROM ins"
	"  UNION SELECT device_id, date_bin('5 minutes', time, timestamptz 'epoch') + interval '5 minutes' FROM ins"
	" ) k ORDER BY 2, 3"
	" ON CONFLICT (device_id, bucket) DO UPDATE SET marked_at = EXCLUDED.marked_at) "
	"SELECT count(*) FROM ins";

enum mode {
	MODE_VALUES,
	MODE_COPY,
	MODE_BRIDGE_SQL,
	MODE_DIRECT_SQL
};

struct dbref_options {
	const char *conninfo;
	long messages;
	int devices, tenants, conns, batch_rows;
	enum mode mode;
	int64_t base_us;
};

/* A device as the database knows it. */
struct device {
	int32_t id, tenant_id;
	int32_t point_ids[POINTS];
};

struct row {
	int64_t t_us;
	int32_t device_id, point_id;
	double value;
};

/* One tenant's pending rows on one connection. */
struct tenant_batch {
	int32_t tenant_id;
	struct row *rows;
	int count;
};

struct connection {
	int index;
	const struct dbref_options *o;
	const struct device *devices; /* borrowed, indexed by device number j */
	pthread_barrier_t *start;
	PGconn *conn;
	struct tenant_batch *batches; /* indexed by tenant number - 1 */
	bool *prepared;		      /* values mode: statement for n rows prepared */
	char *buf;		      /* parameter / COPY text */
	size_t buf_cap;
	uint64_t inserted;
	bool failed;
};

static int64_t realtime_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);

	if (!p)
		abort();
	return p;
}

/* The publisher's values (pub.c format_message): exact decimals derived from the time. */
static double point_value(int point, int64_t t)
{
	switch (point) {
	case 0:
		return (double)(t % 1000000) / 100.0;
	case 1:
		return (double)(20000 + t % 6000) / 100.0;
	case 2:
		return (double)(49500 + t % 1000) / 1000.0;
	default:
		return (double)(t % 100000) / 1000.0;
	}
}

static bool exec_ok(struct connection *c, PGresult *res, const char *what)
{
	ExecStatusType st = PQresultStatus(res);
	bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_COPY_IN;

	if (!ok) {
		fprintf(stderr, "dbref[%d]: %s: %s", c->index, what, PQerrorMessage(c->conn));
		c->failed = true;
	}
	if (ok && strcmp(what, "write") == 0) {
		if (st == PGRES_COMMAND_OK)
			c->inserted += strtoull(PQcmdTuples(res), NULL, 10);
		else if (st == PGRES_TUPLES_OK && PQntuples(res) == 1)
			c->inserted += strtoull(PQgetvalue(res, 0, 0), NULL, 10); /* bridge-sql: count(*) */
	}
	PQclear(res);
	return ok;
}

static void buf_reserve(struct connection *c, size_t need)
{
	if (need > c->buf_cap) {
		c->buf_cap = need * 2;
		free(c->buf);
		c->buf = xcalloc(c->buf_cap, 1);
	}
}

static bool prepare_values(struct connection *c, int n)
{
	char name[32];
	size_t cap = 128 + (size_t)n * 48;
	char *sql = xcalloc(cap, 1);
	size_t len;
	Oid *types = xcalloc((size_t)n * 5, sizeof(Oid));
	bool ok;

	len = (size_t)snprintf(
		sql, cap, "INSERT INTO measurements (time, tenant_id, device_id, point_id, value) VALUES ");
	for (int r = 0; r < n; r++) {
		int p = r * 5;
		len += (size_t)snprintf(sql + len, cap - len, "%s($%d,$%d,$%d,$%d,$%d)", r ? "," : "", p + 1,
					p + 2, p + 3, p + 4, p + 5);
		types[p] = OID_TIMESTAMPTZ;
		types[p + 1] = types[p + 2] = types[p + 3] = OID_INT4;
		types[p + 4] = OID_FLOAT8;
	}
	snprintf(sql + len, cap - len, " ON CONFLICT DO NOTHING");
	snprintf(name, sizeof(name), "v%d", n);
	ok = exec_ok(c, PQprepare(c->conn, name, sql, n * 5, types), "prepare");
	free(sql);
	free(types);
	c->prepared[n] = ok;
	return ok;
}

static bool write_values(struct connection *c, const struct tenant_batch *b)
{
	int n = b->count, nparams = n * 5;
	const char **values = xcalloc((size_t)nparams, sizeof(char *));
	int *lengths = xcalloc((size_t)nparams, sizeof(int));
	int *formats = xcalloc((size_t)nparams, sizeof(int));
	char *p, name[32];
	bool ok;

	if (!c->prepared[n] && !prepare_values(c, n)) {
		ok = false;
		goto done;
	}
	buf_reserve(c, (size_t)n * 28);
	p = c->buf;
	for (int r = 0; r < n; r++) {
		const struct row *row = &b->rows[r];
		uint64_t t = htobe64((uint64_t)(row->t_us - PG_EPOCH_OFFSET_US)), v;
		uint32_t tenant = htonl((uint32_t)b->tenant_id), dev = htonl((uint32_t)row->device_id),
			 point = htonl((uint32_t)row->point_id);
		int k = r * 5;

		memcpy(&v, &row->value, sizeof(v));
		v = htobe64(v);
		memcpy(p, &t, 8), values[k] = p, lengths[k] = 8, p += 8;
		memcpy(p, &tenant, 4), values[k + 1] = p, lengths[k + 1] = 4, p += 4;
		memcpy(p, &dev, 4), values[k + 2] = p, lengths[k + 2] = 4, p += 4;
		memcpy(p, &point, 4), values[k + 3] = p, lengths[k + 3] = 4, p += 4;
		memcpy(p, &v, 8), values[k + 4] = p, lengths[k + 4] = 8, p += 8;
		for (int i = 0; i < 5; i++)
			formats[k + i] = 1;
	}
	snprintf(name, sizeof(name), "v%d", n);
	ok = exec_ok(c, PQexecPrepared(c->conn, name, nparams, values, lengths, formats, 0), "write");
done:
	free(values);
	free(lengths);
	free(formats);
	return ok;
}

static bool write_copy(struct connection *c, const struct tenant_batch *b)
{
	char insert[256];
	size_t len = 0;
	PGresult *res;

	buf_reserve(c, (size_t)b->count * 80);
	for (int r = 0; r < b->count; r++) {
		const struct row *row = &b->rows[r];
		len += (size_t)snprintf(c->buf + len, c->buf_cap - len, "%" PRId64 "\t%d\t%d\t%.17g\n",
					row->t_us, (int)row->device_id, (int)row->point_id, row->value);
	}
	if (!exec_ok(c, PQexec(c->conn, "COPY bench_staging (t, device_id, point_id, value) FROM STDIN"),
		     "copy"))
		return false;
	if (PQputCopyData(c->conn, c->buf, (int)len) != 1 || PQputCopyEnd(c->conn, NULL) != 1) {
		fprintf(stderr, "dbref[%d]: copy data: %s", c->index, PQerrorMessage(c->conn));
		c->failed = true;
		return false;
	}
	while ((res = PQgetResult(c->conn)) != NULL)
		if (!exec_ok(c, res, "copy end"))
			return false;
	snprintf(insert, sizeof(insert),
		 "INSERT INTO measurements (time, tenant_id, device_id, point_id, value)"
		 " SELECT timestamptz 'epoch' + t * interval '1 microsecond', %d, device_id, point_id, value"
		 " FROM bench_staging ON CONFLICT DO NOTHING",
		 (int)b->tenant_id);
	return exec_ok(c, PQexec(c->conn, insert), "write");
}

static bool write_bridge_sql(struct connection *c, const struct tenant_batch *b)
{
	size_t cap = (size_t)b->count * 24 + 16;
	char *arrays[4], tenant[16];
	size_t len[4] = { 0 };
	const char *params[5];
	bool ok;

	for (int a = 0; a < 4; a++) {
		arrays[a] = xcalloc(cap, 1);
		arrays[a][len[a]++] = '{';
	}
	for (int r = 0; r < b->count; r++) {
		const struct row *row = &b->rows[r];
		const char *sep = r ? "," : "";
		len[0] += (size_t)snprintf(arrays[0] + len[0], cap - len[0], "%s%" PRId64, sep, row->t_us);
		len[1] +=
			(size_t)snprintf(arrays[1] + len[1], cap - len[1], "%s%d", sep, (int)row->device_id);
		len[2] += (size_t)snprintf(arrays[2] + len[2], cap - len[2], "%s%d", sep, (int)row->point_id);
		len[3] += (size_t)snprintf(arrays[3] + len[3], cap - len[3], "%s%.17g", sep, row->value);
	}
	for (int a = 0; a < 4; a++) {
		arrays[a][len[a]] = '}';
		params[a] = arrays[a];
	}
	snprintf(tenant, sizeof(tenant), "%d", (int)b->tenant_id);
	params[4] = tenant;
	ok = exec_ok(c, PQexecPrepared(c->conn, "bridge_insert", 5, params, NULL, NULL, 0), "write");
	for (int a = 0; a < 4; a++)
		free(arrays[a]);
	return ok;
}

/* One transaction: the tenant's context, its rows, commit. */
static bool flush(struct connection *c, struct tenant_batch *b)
{
	char tenant[16];
	const char *params[1] = { tenant };
	bool ok;

	if (b->count == 0)
		return true;
	snprintf(tenant, sizeof(tenant), "%d", (int)b->tenant_id);
	if (!exec_ok(c, PQexec(c->conn, "BEGIN"), "BEGIN") ||
	    !exec_ok(c,
		     PQexecParams(c->conn, "SELECT set_config('app.tenant_id', $1, true)", 1, NULL, params,
				  NULL, NULL, 0),
		     "set_config"))
		return false;
	switch (c->o->mode) {
	case MODE_VALUES:
		ok = write_values(c, b);
		break;
	case MODE_COPY:
		ok = write_copy(c, b);
		break;
	default:
		ok = write_bridge_sql(c, b);
		break;
	}
	if (!ok || !exec_ok(c, PQexec(c->conn, "COMMIT"), "COMMIT"))
		return false;
	b->count = 0;
	return true;
}

static bool setup_connection(struct connection *c)
{
	const struct dbref_options *o = c->o;

	c->conn = PQconnectdb(o->conninfo);
	if (PQstatus(c->conn) != CONNECTION_OK) {
		fprintf(stderr, "dbref[%d]: connect: %s", c->index, PQerrorMessage(c->conn));
		return false;
	}
	c->batches = xcalloc((size_t)o->tenants, sizeof(*c->batches));
	for (int k = 0; k < o->tenants; k++) {
		c->batches[k].rows = xcalloc((size_t)o->batch_rows + POINTS, sizeof(struct row));
		c->batches[k].tenant_id = -1;
	}
	c->prepared = xcalloc((size_t)o->batch_rows + POINTS + 1, sizeof(bool));
	if (o->mode == MODE_VALUES)
		return prepare_values(c, o->batch_rows - o->batch_rows % POINTS);
	if (o->mode == MODE_COPY)
		return exec_ok(c,
			       PQexec(c->conn,
				      "CREATE TEMP TABLE bench_staging (t bigint, device_id integer, "
				      "point_id integer, value double precision) ON COMMIT DELETE ROWS"),
			       "create staging");
	return exec_ok(c,
		       PQprepare(c->conn, "bridge_insert",
				 o->mode == MODE_DIRECT_SQL ? direct_sql : bridge_sql, 0, NULL),
		       "prepare");
}

static void *connection_main(void *arg)
{
	struct connection *c = arg;
	const struct dbref_options *o = c->o;
	bool ready = setup_connection(c);

	pthread_barrier_wait(c->start);
	if (!ready) {
		c->failed = true;
		return NULL;
	}
	for (long i = 0; i < o->messages && !c->failed; i++) {
		int j = (int)(i % o->devices);
		const struct device *d = &c->devices[j];
		struct tenant_batch *b;
		int64_t t = o->base_us + i;

		if (j % o->conns != c->index)
			continue;
		b = &c->batches[j % o->tenants];
		b->tenant_id = d->tenant_id;
		for (int p = 0; p < POINTS; p++)
			b->rows[b->count++] = (struct row){ .t_us = t,
							    .device_id = d->id,
							    .point_id = d->point_ids[p],
							    .value = point_value(p, t) };
		if (b->count + POINTS > o->batch_rows)
			flush(c, b);
	}
	for (int k = 0; k < o->tenants && !c->failed; k++)
		flush(c, &c->batches[k]);
	return NULL;
}

/* Reads the ids of devices 0..M-1 and their four points from the registry. */
static bool load_devices(const struct dbref_options *o, struct device *devices)
{
	PGconn *conn = PQconnectdb(o->conninfo);
	PGresult *res = NULL;
	bool ok = false;
	int n;

	if (PQstatus(conn) != CONNECTION_OK) {
		fprintf(stderr, "dbref: connect: %s", PQerrorMessage(conn));
		goto done;
	}
	res = PQexec(conn, "SELECT d.serial, d.id, d.tenant_id, p.name, p.id FROM devices d"
			   " JOIN points p ON p.device_id = d.id WHERE d.serial LIKE 'B-%'");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		fprintf(stderr, "dbref: reading the registry: %s", PQerrorMessage(conn));
		goto done;
	}
	n = PQntuples(res);
	for (int j = 0; j < o->devices; j++)
		devices[j].id = -1;
	for (int r = 0; r < n; r++) {
		int tenant, number, j, point = -1;

		if (sscanf(PQgetvalue(res, r, 0), "B-%d-%d", &tenant, &number) != 2)
			continue;
		j = number * o->tenants + tenant - 1;
		if (tenant < 1 || tenant > o->tenants || j >= o->devices)
			continue;
		for (int p = 0; p < POINTS; p++)
			if (strcmp(PQgetvalue(res, r, 3), point_names[p]) == 0)
				point = p;
		if (point < 0)
			continue;
		devices[j].id = atoi(PQgetvalue(res, r, 1));
		devices[j].tenant_id = atoi(PQgetvalue(res, r, 2));
		devices[j].point_ids[point] = atoi(PQgetvalue(res, r, 4));
	}
	ok = true;
	for (int j = 0; j < o->devices; j++) {
		for (int p = 0; p < POINTS; p++)
			if (devices[j].point_ids[p] == 0)
				devices[j].id = -1;
		if (devices[j].id < 0) {
			fprintf(stderr,
				"dbref: device %d (B-%d-%04d) or one of its points is not registered\n", j,
				j % o->tenants + 1, j / o->tenants);
			ok = false;
			break;
		}
	}
done:
	PQclear(res);
	PQfinish(conn);
	return ok;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: dbref -d CONNINFO [-n messages] [-m devices] [-t tenants] [-c connections]\n"
		"             [-b batch_rows] [--mode values|copy|bridge-sql|direct-sql] [--base-us MICROSECONDS]\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "db", required_argument, NULL, 'd' },
		{ "messages", required_argument, NULL, 'n' },
		{ "devices", required_argument, NULL, 'm' },
		{ "tenants", required_argument, NULL, 't' },
		{ "conns", required_argument, NULL, 'c' },
		{ "batch", required_argument, NULL, 'b' },
		{ "mode", required_argument, NULL, 'M' },
		{ "base-us", required_argument, NULL, 'B' },
		{ NULL, 0, NULL, 0 },
	};
	struct dbref_options o = { .messages = 200000,
				   .devices = 1000,
				   .tenants = 10,
				   .conns = 1,
				   .batch_rows = 1000,
				   .mode = MODE_VALUES };
	struct connection conns[MAX_CONNS];
	pthread_barrier_t start;
	struct device *devices;
	uint64_t inserted = 0;
	bool failed = false;
	int64_t t0, t1;
	int opt;

	while ((opt = getopt_long(argc, argv, "d:n:m:t:c:b:", longopts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			o.conninfo = optarg;
			break;
		case 'n':
			o.messages = strtol(optarg, NULL, 10);
			break;
		case 'm':
			o.devices = atoi(optarg);
			break;
		case 't':
			o.tenants = atoi(optarg);
			break;
		case 'c':
			o.conns = atoi(optarg);
			break;
		case 'b':
			o.batch_rows = atoi(optarg);
			break;
		case 'B':
			o.base_us = strtoll(optarg, NULL, 10);
			break;
		case 'M':
			if (strcmp(optarg, "values") == 0)
				o.mode = MODE_VALUES;
			else if (strcmp(optarg, "copy") == 0)
				o.mode = MODE_COPY;
			else if (strcmp(optarg, "bridge-sql") == 0)
				o.mode = MODE_BRIDGE_SQL;
			else if (strcmp(optarg, "direct-sql") == 0)
				o.mode = MODE_DIRECT_SQL;
			else {
				usage(stderr);
				return 2;
			}
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!o.conninfo || optind != argc || o.messages < 1 || o.devices < 1 || o.tenants < 1 ||
	    o.tenants > o.devices || o.conns < 1 || o.conns > MAX_CONNS || o.batch_rows < POINTS ||
	    o.batch_rows > 10000) {
		usage(stderr);
		return 2;
	}
	if (!o.base_us)
		o.base_us =
			realtime_us() - INT64_C(600) * 1000000; /* inside today's or yesterday's partition */

	devices = xcalloc((size_t)o.devices, sizeof(*devices));
	if (!load_devices(&o, devices))
		return 1;
	pthread_barrier_init(&start, NULL, (unsigned)o.conns + 1);
	memset(conns, 0, sizeof(conns));
	for (int i = 0; i < o.conns; i++) {
		conns[i] = (struct connection){ .index = i, .o = &o, .devices = devices, .start = &start };
	}
	{
		pthread_t threads[MAX_CONNS];

		for (int i = 0; i < o.conns; i++)
			pthread_create(&threads[i], NULL, connection_main, &conns[i]);
		pthread_barrier_wait(&start);
		t0 = realtime_us();
		for (int i = 0; i < o.conns; i++)
			pthread_join(threads[i], NULL);
		t1 = realtime_us();
	}
	for (int i = 0; i < o.conns; i++) {
		inserted += conns[i].inserted;
		failed |= conns[i].failed;
		PQfinish(conns[i].conn);
	}
	printf("dbref: mode=%s conns=%d rows=%ld inserted=%" PRIu64
	       " elapsed_s=%.3f rows_per_s=%.0f base_us=%" PRId64 " start=%" PRId64 ".%06" PRId64
	       " end=%" PRId64 ".%06" PRId64 "\n",
	       o.mode == MODE_VALUES	 ? "values" :
	       o.mode == MODE_COPY	 ? "copy" :
	       o.mode == MODE_DIRECT_SQL ? "direct-sql" :
					   "bridge-sql",
	       o.conns, o.messages * POINTS, inserted, (double)(t1 - t0) / 1e6,
	       (double)inserted * 1e6 / (double)(t1 - t0), o.base_us, t0 / 1000000, t0 % 1000000,
	       t1 / 1000000, t1 % 1000000);
	return failed || inserted != (uint64_t)o.messages * POINTS ? 1 : 0;
}
