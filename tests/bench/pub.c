// SPDX-License-Identifier: Apache-2.0
/*
 * pub: the benchmark's publisher. Publishes N telemetry messages of the contract's shape
 * (solar/t<k>/B-<k>-<dddd>/telemetry, the ~170-byte JSON envelope with 4 measurements) from M devices over
 * T tenants, at full speed or paced to a rate, with at most W messages in flight, through Paho MQTTAsync
 * (pub) or MQTTClient (pub-client, the same file built with -DPUB_MQTTCLIENT).
 *
 * Every message carries the time it was handed to Paho (epoch seconds with microseconds), distinct per
 * device, and its values are a function of that time (see format_message), so the bench can check every
 * row that arrives (device, point, time, value), not just count them, and can compute publish-to-commit
 * latency as pg_xact_commit_timestamp(xmin) - time. With -o, each process writes the (serial, time) of
 * every message it sent to PREFIX.<process>, one "serial<TAB>microseconds" line each: the expected set.
 *
 * Measured on the 2-core machine, QoS 1: MQTTAsync costs ~28-36 us of CPU per message (more with larger
 * windows: Paho walks its lists per message), MQTTClient ~14-29 us; one process reaches ~30k and ~35-50k
 * msgs/s. -P forks several publisher processes (each its own client id and its own share of the devices)
 * when one cannot saturate the pipeline.
 *
 * Output: one line on stdout, "pub: sent=... acked=... failed=... elapsed_s=... msgs_per_s=...
 * cpu_us_per_msg=... start=<epoch> end=<epoch>", start = first hand-off, end = last acknowledgement
 * (PUBACK at QoS 1, written to the socket at QoS 0). Exit 0 when every message was acknowledged.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/*
 * Paho's two libraries (paho-mqtt3as, paho-mqtt3c) cannot be linked into one binary, so the MQTTClient
 * variant is a second build of this file: pub-client (-DPUB_MQTTCLIENT).
 */
#ifdef PUB_MQTTCLIENT
#include <MQTTClient.h>
#else
#include <MQTTAsync.h>
#endif

struct pub_options {
	const char *uri;
	const char *client_prefix;
	const char
		*topic_prefix; /* first topic level: solar (the bridge) or another tree (the Node baseline) */
	const char *expected_prefix;
	long messages;
	int devices;
	int tenants;
	int qos;
	double rate; /* messages/s over all processes; 0 = as fast as possible */
	int window;
	int processes;
	int timeout_s;
	const char *stop_file; /* stop publishing (early, not failed) once this file exists */
};

/* One device this process publishes for. */
struct device {
	char serial[32];
	char topic[64];
	int64_t last_us; /* timestamps are strictly increasing per device */
};

/* Shared with Paho's threads: the in-flight window and the acknowledgement counters. */
struct flight {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	long outstanding;
	long acked;
	long failed;
	bool connected;
	bool connect_failed;
	int64_t last_ack_us;
};

struct result {
	long sent, acked, failed;
	int64_t start_us, end_us;
	bool stopped; /* the stop file appeared before all messages were sent */
};

static int64_t realtime_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_until_ns(int64_t deadline_ns)
{
	struct timespec ts = { .tv_sec = deadline_ns / 1000000000, .tv_nsec = deadline_ns % 1000000000 };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/*
 * The envelope. Values are exact decimals derived from the timestamp t (microseconds), so the checker
 * recomputes them in SQL: total_output_power = (t % 1000000) / 100, grid_voltage = 200 + (t % 6000) / 100,
 * grid_frequency = 49.5 + (t % 1000) / 1000, daily_energy = (t % 100000) / 1000. All inside the point
 * ranges run.sh registers, so validation's range check runs and passes.
 */
static int format_message(char *buf, size_t size, const char *serial, int64_t t)
{
	int64_t power = t % 1000000, volt = 20000 + t % 6000, freq = 49500 + t % 1000, energy = t % 100000;

	return snprintf(buf, size,
			"{\"serial\":\"%s\",\"timestamp\":%" PRId64 ".%06" PRId64 ",\"measurements\":{"
			"\"total_output_power\":%" PRId64 ".%02" PRId64 ",\"grid_voltage\":%" PRId64
			".%02" PRId64 ",\"grid_frequency\":%" PRId64 ".%03" PRId64
			",\"daily_energy\":%" PRId64 ".%03" PRId64 "}}",
			serial, t / 1000000, t % 1000000, power / 100, power % 100, volt / 100, volt % 100,
			freq / 1000, freq % 1000, energy / 1000, energy % 1000);
}

static void settle(struct flight *f, bool ok)
{
	int64_t now = realtime_us();

	pthread_mutex_lock(&f->lock);
	f->outstanding--;
	if (ok)
		f->acked++;
	else
		f->failed++;
	f->last_ack_us = now;
	pthread_cond_signal(&f->changed);
	pthread_mutex_unlock(&f->lock);
}

static void on_connection_lost(void *context, char *cause)
{
	(void)context;
	fprintf(stderr, "pub: connection lost: %s\n", cause ? cause : "(no cause)");
}

/* Waits until pred-like condition: outstanding below limit, or the deadline. Returns false on timeout. */
static bool wait_window(struct flight *f, long limit, int64_t deadline_us)
{
	bool ok = true;

	pthread_mutex_lock(&f->lock);
	while (f->outstanding > limit) {
		struct timespec ts;

		if (realtime_us() >= deadline_us) {
			ok = false;
			break;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&f->changed, &f->lock, &ts);
	}
	pthread_mutex_unlock(&f->lock);
	return ok;
}

/*
 * The two Paho APIs behind one face. MQTTAsync (pub) queues each publish as a command for its send thread;
 * MQTTClient (pub-client; callbacks set, so a background thread reads the acknowledgements) writes from the
 * calling thread. Both report completion through struct flight.
 */
struct session {
	const struct pub_options *o;
	struct flight f;
	char client_id[64];
#ifdef PUB_MQTTCLIENT
	MQTTClient sync;
#else
	MQTTAsync async;
#endif
};

#ifdef PUB_MQTTCLIENT
static void sync_delivered(void *context, MQTTClient_deliveryToken token)
{
	(void)token;
	settle(context, true);
}

static int sync_arrived(void *context, char *topic, int topic_len, MQTTClient_message *message)
{
	(void)context;
	(void)topic_len;
	MQTTClient_freeMessage(&message);
	MQTTClient_free(topic);
	return 1;
}

static int session_connect(struct session *s, int64_t deadline_us)
{
	const struct pub_options *o = s->o;
	MQTTClient_connectOptions conn_opts = MQTTClient_connectOptions_initializer;
	int rc;

	(void)deadline_us;
	if (MQTTClient_create(&s->sync, o->uri, s->client_id, MQTTCLIENT_PERSISTENCE_NONE, NULL) !=
	    MQTTCLIENT_SUCCESS) {
		fprintf(stderr, "pub: cannot create client for %s\n", o->uri);
		return -1;
	}
	MQTTClient_setCallbacks(s->sync, &s->f, on_connection_lost, sync_arrived, sync_delivered);
	conn_opts.keepAliveInterval = 60;
	conn_opts.cleansession = 1;
	conn_opts.MQTTVersion = MQTTVERSION_3_1_1;
	conn_opts.connectTimeout = o->timeout_s;
	conn_opts.maxInflightMessages = o->window * 2 > 65535 ? 65535 : o->window * 2;
	rc = MQTTClient_connect(s->sync, &conn_opts);
	if (rc != MQTTCLIENT_SUCCESS) {
		fprintf(stderr, "pub: connect to %s failed: %d\n", o->uri, rc);
		return -1;
	}
	return 0;
}

static int session_send(struct session *s, const char *topic, char *payload, int len)
{
	MQTTClient_message msg = MQTTClient_message_initializer;
	MQTTClient_deliveryToken token;
	int rc;

	msg.payload = payload;
	msg.payloadlen = len;
	msg.qos = s->o->qos;
	rc = MQTTClient_publishMessage(s->sync, topic, &msg, &token);
	if (rc == MQTTCLIENT_MAX_MESSAGES_INFLIGHT)
		return 1;
	if (rc != MQTTCLIENT_SUCCESS) {
		fprintf(stderr, "pub: MQTTClient_publishMessage: %d\n", rc);
		return -1;
	}
	if (s->o->qos == 0) /* no delivery callback for QoS 0: written is done */
		settle(&s->f, true);
	return 0;
}

static void session_close(struct session *s)
{
	if (!s->sync)
		return;
	if (MQTTClient_isConnected(s->sync))
		MQTTClient_disconnect(s->sync, 2000);
	MQTTClient_destroy(&s->sync);
}

#else
static void on_connect(void *context, MQTTAsync_successData *response)
{
	struct flight *f = context;

	(void)response;
	pthread_mutex_lock(&f->lock);
	f->connected = true;
	pthread_cond_broadcast(&f->changed);
	pthread_mutex_unlock(&f->lock);
}

static void on_connect_failure(void *context, MQTTAsync_failureData *response)
{
	struct flight *f = context;

	fprintf(stderr, "pub: connect failed: %d %s\n", response ? response->code : 0,
		response && response->message ? response->message : "");
	pthread_mutex_lock(&f->lock);
	f->connect_failed = true;
	pthread_cond_broadcast(&f->changed);
	pthread_mutex_unlock(&f->lock);
}

static void on_sent(void *context, MQTTAsync_successData *response)
{
	(void)response;
	settle(context, true);
}

static void on_send_failure(void *context, MQTTAsync_failureData *response)
{
	static int reported;

	if (reported++ < 5)
		fprintf(stderr, "pub: publish failed: %d\n", response ? response->code : 0);
	settle(context, false);
}

static int session_connect(struct session *s, int64_t deadline_us)
{
	const struct pub_options *o = s->o;
	MQTTAsync_createOptions create_opts = MQTTAsync_createOptions_initializer;
	MQTTAsync_connectOptions conn_opts = MQTTAsync_connectOptions_initializer;
	struct flight *f = &s->f;

	create_opts.sendWhileDisconnected = 0;
	/* Paho counts every queued command against this, connected or not (-12 otherwise). */
	create_opts.maxBufferedMessages = o->window * 2 + 100;
	if (MQTTAsync_createWithOptions(&s->async, o->uri, s->client_id, MQTTCLIENT_PERSISTENCE_NONE, NULL,
					&create_opts) != MQTTASYNC_SUCCESS) {
		fprintf(stderr, "pub: cannot create client for %s\n", o->uri);
		return -1;
	}
	MQTTAsync_setCallbacks(s->async, f, on_connection_lost, NULL, NULL);
	conn_opts.keepAliveInterval = 60;
	conn_opts.cleansession = 1;
	conn_opts.MQTTVersion = MQTTVERSION_3_1_1;
	/* Paho's own cap sits above ours: our window decides. */
	conn_opts.maxInflight = o->window * 2 > 65535 ? 65535 : o->window * 2;
	conn_opts.onSuccess = on_connect;
	conn_opts.onFailure = on_connect_failure;
	conn_opts.context = f;
	if (MQTTAsync_connect(s->async, &conn_opts) != MQTTASYNC_SUCCESS) {
		fprintf(stderr, "pub: cannot start connecting to %s\n", o->uri);
		return -1;
	}
	pthread_mutex_lock(&f->lock);
	while (!f->connected && !f->connect_failed && realtime_us() < deadline_us) {
		struct timespec ts = { .tv_sec = time(NULL) + 1 };
		pthread_cond_timedwait(&f->changed, &f->lock, &ts);
	}
	pthread_mutex_unlock(&f->lock);
	return f->connected ? 0 : -1;
}

/* 0: handed over; 1: Paho is full, try again; -1: failed. */
static int session_send(struct session *s, const char *topic, char *payload, int len)
{
	MQTTAsync_message msg = MQTTAsync_message_initializer;
	MQTTAsync_responseOptions ropts = MQTTAsync_responseOptions_initializer;
	int rc;

	msg.payload = payload;
	msg.payloadlen = len;
	msg.qos = s->o->qos;
	ropts.onSuccess = on_sent;
	ropts.onFailure = on_send_failure;
	ropts.context = &s->f;
	rc = MQTTAsync_sendMessage(s->async, topic, &msg, &ropts);
	if (rc == MQTTASYNC_MAX_MESSAGES_INFLIGHT || rc == MQTTASYNC_MAX_BUFFERED_MESSAGES)
		return 1;
	if (rc != MQTTASYNC_SUCCESS)
		fprintf(stderr, "pub: MQTTAsync_sendMessage: %d\n", rc);
	return rc == MQTTASYNC_SUCCESS ? 0 : -1;
}

static void session_close(struct session *s)
{
	MQTTAsync_disconnectOptions dopts = MQTTAsync_disconnectOptions_initializer;

	if (!s->async)
		return;
	dopts.timeout = 2000;
	if (MQTTAsync_isConnected(s->async))
		MQTTAsync_disconnect(s->async, &dopts);
	for (int i = 0; i < 40 && MQTTAsync_isConnected(s->async); i++)
		usleep(50000);
	MQTTAsync_destroy(&s->async);
}

#endif

/* Publishes this process's share: messages for devices[0..device_count) round-robin. */
static int publish_share(const struct pub_options *o, int index, long messages, struct device *devices,
			 int device_count, struct result *res)
{
	struct session s = {
		.o = o, .f = { .lock = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER }
	};
	struct flight *f = &s.f;
	FILE *expected = NULL;
	char payload[256];
	double rate = o->rate / o->processes;
	int64_t deadline_us = realtime_us() + (int64_t)o->timeout_s * 1000000, t0_ns;
	int rc = 1;

	memset(res, 0, sizeof(*res));
	if (o->expected_prefix) {
		char path[4096];

		snprintf(path, sizeof(path), "%s.%d", o->expected_prefix, index);
		expected = fopen(path, "w");
		if (!expected) {
			fprintf(stderr, "pub: %s: %s\n", path, strerror(errno));
			return 1;
		}
		setvbuf(expected, NULL, _IOFBF, 1 << 20);
	}
	snprintf(s.client_id, sizeof(s.client_id), "%s-%d-%d", o->client_prefix, (int)getpid(), index);
	if (session_connect(&s, deadline_us) != 0) {
		fprintf(stderr, "pub: not connected to %s\n", o->uri);
		goto cleanup;
	}

	t0_ns = monotonic_ns();
	res->start_us = realtime_us();
	for (long i = 0; i < messages; i++) {
		struct device *d = &devices[i % device_count];
		int64_t t;
		int len, src;

		/* Checked every 64 messages: a stat per message would cost more than the publish. */
		if (o->stop_file && i % 64 == 0 && access(o->stop_file, F_OK) == 0) {
			res->stopped = true;
			break;
		}

		if (rate > 0) {
			int64_t due = t0_ns + (int64_t)((double)i * 1e9 / rate);
			if (monotonic_ns() < due)
				sleep_until_ns(due);
		}
		if (!wait_window(f, o->window - 1, deadline_us)) {
			fprintf(stderr, "pub: timed out after %d s with %ld messages sent\n", o->timeout_s,
				res->sent);
			break;
		}
		t = realtime_us();
		if (t <= d->last_us)
			t = d->last_us + 1;
		d->last_us = t;
		len = format_message(payload, sizeof(payload), d->serial, t);
		pthread_mutex_lock(&f->lock);
		f->outstanding++;
		pthread_mutex_unlock(&f->lock);
		while ((src = session_send(&s, d->topic, payload, len)) == 1 && realtime_us() < deadline_us) {
			struct timespec pause = { .tv_nsec = 100000 };
			nanosleep(&pause, NULL);
		}
		if (src != 0) {
			pthread_mutex_lock(&f->lock);
			f->outstanding--;
			pthread_mutex_unlock(&f->lock);
			fprintf(stderr, "pub: giving up after %ld messages\n", res->sent);
			break;
		}
		res->sent++;
		if (expected)
			fprintf(expected, "%s\t%" PRId64 "\n", d->serial, t);
	}
	if (!wait_window(f, 0, deadline_us))
		fprintf(stderr, "pub: timed out waiting for %ld acknowledgements\n", f->outstanding);

	pthread_mutex_lock(&f->lock);
	res->acked = f->acked;
	res->failed = f->failed;
	res->end_us = f->last_ack_us ? f->last_ack_us : realtime_us();
	pthread_mutex_unlock(&f->lock);
	if ((res->sent == messages || res->stopped) && res->acked == res->sent)
		rc = 0;
cleanup:
	session_close(&s);
	if (expected && fclose(expected) != 0) {
		fprintf(stderr, "pub: writing the expected set: %s\n", strerror(errno));
		rc = 1;
	}
	return rc;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: pub [options]\n"
		"  -u, --uri URI          broker (tcp://127.0.0.1:1883)\n"
		"  -n, --messages N       messages in total (10000)\n"
		"  -m, --devices M        devices (1000): serials B-<tenant>-<dddd>\n"
		"  -t, --tenants T        tenants (10): topics <prefix>/t<tenant>/<serial>/telemetry\n"
		"      --prefix P         the topics' first level (solar)\n"
		"  -q, --qos Q            0 or 1 (1)\n"
		"  -r, --rate R           messages/s over all processes, 0 = as fast as possible (0)\n"
		"  -w, --window W         max messages in flight per process (1000)\n"
		"  -P, --processes P      publisher processes, each with its share of the devices (1)\n"
		"  -o, --expected PREFIX  write each sent (serial, time) to PREFIX.<process>\n"
		"  -c, --client-id ID     client id prefix (mqtt2pg-bench-pub)\n"
		"      --timeout S        give up after S seconds (600)\n"
		"      --stop-file PATH   stop early (exit 0) once PATH exists: a stream that lasts until the\n"
		"                         caller says so, whatever the machine's speed (at most N messages)\n"
		"  -V, --version          print the Paho version and exit\n");
}

static bool parse_options(int argc, char **argv, struct pub_options *o)
{
	static const struct option longopts[] = {
		{ "uri", required_argument, NULL, 'u' },
		{ "messages", required_argument, NULL, 'n' },
		{ "devices", required_argument, NULL, 'm' },
		{ "tenants", required_argument, NULL, 't' },
		{ "qos", required_argument, NULL, 'q' },
		{ "rate", required_argument, NULL, 'r' },
		{ "window", required_argument, NULL, 'w' },
		{ "processes", required_argument, NULL, 'P' },
		{ "expected", required_argument, NULL, 'o' },
		{ "client-id", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "version", no_argument, NULL, 'V' },
		{ "stop-file", required_argument, NULL, 'S' },
		{ "prefix", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*o = (struct pub_options){ .uri = "tcp://127.0.0.1:1883",
				   .client_prefix = "mqtt2pg-bench-pub",
				   .topic_prefix = "solar",
				   .messages = 10000,
				   .devices = 1000,
				   .tenants = 10,
				   .qos = 1,
				   .window = 1000,
				   .processes = 1,
				   .timeout_s = 600 };
	while ((c = getopt_long(argc, argv, "u:n:m:t:q:r:w:P:o:c:Vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'u':
			o->uri = optarg;
			break;
		case 'n':
			o->messages = strtol(optarg, NULL, 10);
			break;
		case 'm':
			o->devices = atoi(optarg);
			break;
		case 't':
			o->tenants = atoi(optarg);
			break;
		case 'q':
			o->qos = atoi(optarg);
			break;
		case 'r':
			o->rate = strtod(optarg, NULL);
			break;
		case 'w':
			o->window = atoi(optarg);
			break;
		case 'P':
			o->processes = atoi(optarg);
			break;
		case 'o':
			o->expected_prefix = optarg;
			break;
		case 'c':
			o->client_prefix = optarg;
			break;
		case 'T':
			o->timeout_s = atoi(optarg);
			break;
		case 'S':
			o->stop_file = optarg;
			break;
		case 'p':
			o->topic_prefix = optarg;
			break;
		case 'V': {
#ifdef PUB_MQTTCLIENT
			MQTTClient_nameValue *info = MQTTClient_getVersionInfo();
#else
			MQTTAsync_nameValue *info = MQTTAsync_getVersionInfo();
#endif
			for (; info && info->name; info++)
				if (strcmp(info->name, "Version") == 0)
					printf("%s\n", info->value);
			exit(0);
		}
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return false;
		}
	}
	if (optind != argc || o->messages < 1 || o->devices < 1 || o->tenants < 1 ||
	    o->tenants > o->devices || (o->qos != 0 && o->qos != 1) || o->rate < 0 || o->window < 1 ||
	    o->processes < 1 || o->processes > o->devices || o->processes > 64 || o->timeout_s < 1) {
		usage(stderr);
		return false;
	}
	return true;
}

/* Device j belongs to tenant j % T + 1 and is that tenant's device number j / T; process p gets j % P == p. */
static int devices_of(const struct pub_options *o, int index, struct device **out)
{
	struct device *list = calloc((size_t)o->devices / (size_t)o->processes + 1, sizeof(*list));
	int n = 0;

	if (!list)
		abort();
	for (int j = index; j < o->devices; j += o->processes) {
		int tenant = j % o->tenants + 1;
		snprintf(list[n].serial, sizeof(list[n].serial), "B-%d-%04d", tenant, j / o->tenants);
		snprintf(list[n].topic, sizeof(list[n].topic), "%s/t%d/%s/telemetry", o->topic_prefix, tenant,
			 list[n].serial);
		n++;
	}
	*out = list;
	return n;
}

int main(int argc, char **argv)
{
	struct pub_options o;
	struct result total = { 0 };
	struct rusage ru;
	pid_t pids[64];
	int pipes[64][2];
	int rc = 0;

	if (!parse_options(argc, argv, &o))
		return 2;

	for (int p = 0; p < o.processes; p++) {
		long share = o.messages / o.processes + (p < o.messages % o.processes ? 1 : 0);

		if (pipe(pipes[p]) != 0) {
			perror("pub: pipe");
			return 1;
		}
		fflush(NULL);
		pids[p] = fork();
		if (pids[p] < 0) {
			perror("pub: fork");
			return 1;
		}
		if (pids[p] == 0) {
			struct device *devices = NULL;
			int n = devices_of(&o, p, &devices);
			struct result res;
			int child_rc = publish_share(&o, p, share, devices, n, &res);

			if (write(pipes[p][1], &res, sizeof(res)) != (ssize_t)sizeof(res))
				child_rc = 1;
			free(devices);
			_exit(child_rc);
		}
		close(pipes[p][1]);
	}
	for (int p = 0; p < o.processes; p++) {
		struct result res;
		int status = 0;

		if (read(pipes[p][0], &res, sizeof(res)) != (ssize_t)sizeof(res)) {
			fprintf(stderr, "pub: process %d reported nothing\n", p);
			memset(&res, 0, sizeof(res));
			rc = 1;
		}
		close(pipes[p][0]);
		if (waitpid(pids[p], &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			rc = 1;
		total.sent += res.sent;
		total.acked += res.acked;
		total.failed += res.failed;
		if (res.start_us && (!total.start_us || res.start_us < total.start_us))
			total.start_us = res.start_us;
		if (res.end_us > total.end_us)
			total.end_us = res.end_us;
	}
	getrusage(RUSAGE_CHILDREN, &ru);
	{
		double cpu_us = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
				(double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
		double elapsed = (double)(total.end_us - total.start_us) / 1e6;

		printf("pub: sent=%ld acked=%ld failed=%ld elapsed_s=%.3f msgs_per_s=%.0f cpu_us_per_msg=%.1f "
		       "start=%" PRId64 ".%06" PRId64 " end=%" PRId64 ".%06" PRId64 "\n",
		       total.sent, total.acked, total.failed, elapsed,
		       elapsed > 0 ? (double)total.acked / elapsed : 0.0,
		       total.sent ? cpu_us / (double)total.sent : 0.0, total.start_us / 1000000,
		       total.start_us % 1000000, total.end_us / 1000000, total.end_us % 1000000);
	}
	if ((!o.stop_file && total.sent != o.messages) || total.acked != total.sent)
		rc = 1;
	return rc;
}
