// SPDX-License-Identifier: Apache-2.0
/*
 * bridge: the main thread (see bridge.h). Signals are blocked in every thread and read here through a
 * signalfd, so no work ever happens inside a signal handler. A first SIGTERM/SIGINT drains; a second one
 * exits at once (the operator has decided not to wait).
 */
#include "bridge.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "aggregate.h"
#include "util/clock.h"
#include "db.h"
#include "dispatch.h"
#include "http.h"
#include "util/log.h"
#include "mqtt.h"
#include "queue.h"
#include "registry.h"
#include "regsync.h"
#include "spool.h"
#include "stats.h"
#include "writer.h"
#include "util/xalloc.h"

#define MODULE	       "bridge"
#define TICK_MS	       200
/* `leave`: how long no message may have arrived after the UNSUBSCRIBE before the session counts as empty
 * (what the broker had in flight to us arrives within a round trip; this is many of them). */
#define LEAVE_QUIET_MS 3000

struct bridge {
	struct config *cfg;
	enum mqtt_mode mode;
	struct stats stats;
	struct stats stats_logged; /* totals at the last stats line */
	int64_t stats_logged_ms;
	struct registry_store *store;
	struct regsync *regsync;
	struct queue **queues;
	struct writer **writers;
	size_t writer_count;
	struct mqtt *mqtt;
	struct spool *spool;	       /* NULL in memory mode */
	struct dispatcher *dispatcher; /* spool -> queues, disk mode only */
	struct aggregator *aggregator;
	struct config_validation **policies;	/* every policy handed to ingest by a reload; freed at exit */
	const struct config_validation *policy; /* the last of them; NULL: cfg->validation is in effect */
	size_t policy_count;
	struct health health;
	struct http_server *http;
	struct db_secret *db_secret; /* the writers' password, re-read at SIGHUP */
	int signal_fd;
};

static int open_signal_fd(void)
{
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGPIPE);
	/* Blocked before any thread exists, so every thread (ours, Paho's, libpq's) inherits the mask. */
	if (pthread_sigmask(SIG_BLOCK, &mask, NULL) != 0)
		return -1;
	sigdelset(&mask, SIGPIPE);
	return signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* Returns the signal read, or 0 if none is pending. */
static int read_signal(int fd)
{
	struct signalfd_siginfo info;

	if (read(fd, &info, sizeof(info)) != (ssize_t)sizeof(info))
		return 0;
	return (int)info.ssi_signo;
}

static void start_writers(struct bridge *b)
{
	const struct config_database *db = &b->cfg->database;
	struct writer_options options = {
		.conninfo = db->conninfo,
		.secret = b->db_secret,
		.batch_rows = db->batch_rows,
		.flush_interval_ms = db->flush_interval_ms,
		.linger_ms = db->linger_ms < db->flush_interval_ms ? db->linger_ms : db->flush_interval_ms,
		.reconnect_max_ms = db->reconnect_max_ms,
		.max_points_per_device = b->cfg->validation.max_points_per_device,
		.spool = b->spool,
		.origin = b->cfg->mqtt.client_id,
	};

	/*
	 * With a spool, the spool is the buffer: the dispatcher only has to keep each writer fed, and a full
	 * queue just makes it wait. A batch's worth of messages per queue does that; the configured 50,000
	 * (for memory mode, where the queue is the only buffer) cost ~9 MB per writer when draining a backlog.
	 */
	size_t capacity = (size_t)db->queue_messages;

	if (b->spool && capacity > (size_t)db->batch_rows)
		capacity = (size_t)db->batch_rows;
	b->writer_count = (size_t)db->writers;
	b->queues = xcalloc(b->writer_count, sizeof(*b->queues));
	b->writers = xcalloc(b->writer_count, sizeof(*b->writers));
	for (size_t i = 0; i < b->writer_count; i++) {
		b->queues[i] = queue_new(capacity);
		queue_count_depth_in(b->queues[i], &b->stats.queue_depth);
		b->writers[i] = writer_start((int)i, &options, b->queues[i], &b->stats);
		if (!b->writers[i])
			die(MODULE, "cannot start writer %zu", i);
	}
}

/* Waits (with back-off) for the first registry snapshot; returns -1 if told to stop meanwhile. */
static int load_registry(struct bridge *b)
{
	int backoff_ms = 500;

	while (regsync_load_now(b->regsync) < 0) {
		int sig;
		log_warn(MODULE, "no registry yet; retrying in %d ms", backoff_ms);
		atomic_store(&b->health.loop_heartbeat_ms, clock_monotonic_ms());
		clock_sleep_ms(backoff_ms);
		sig = read_signal(b->signal_fd);
		if (sig == SIGTERM || sig == SIGINT)
			return -1;
		backoff_ms = backoff_ms < 5000 ? backoff_ms * 2 : 5000; /* under /healthz's stall limit */
	}
	return 0;
}

/* Publishes the state /readyz and /metrics read. */
static void update_health(struct bridge *b, int64_t now)
{
	int connected = 0, writable = 0;

	for (size_t i = 0; i < b->writer_count; i++) {
		connected += b->writers[i] && writer_is_connected(b->writers[i]);
		writable += b->writers[i] && writer_is_writable(b->writers[i]);
	}
	atomic_store(&b->health.loop_heartbeat_ms, now);
	atomic_store(&b->health.writers_connected, connected);
	atomic_store(&b->health.writers_writable, writable);
	atomic_store(&b->health.mqtt_connected, b->mqtt && mqtt_is_connected(b->mqtt));
	atomic_store(&b->health.registry_loaded, regsync_has_snapshot(b->regsync));
}

static void tick(struct bridge *b)
{
	int64_t now = clock_monotonic_ms();

	regsync_tick(b->regsync, now);
	if (b->spool)
		spool_tick(b->spool, now);
	update_health(b, now);
	if (b->cfg->stats_interval > 0 &&
	    now - b->stats_logged_ms >= (int64_t)b->cfg->stats_interval * 1000) {
		stats_log(&b->stats, &b->stats_logged, (double)(now - b->stats_logged_ms) / 1000.0);
		b->stats_logged_ms = now;
	}
}

/*
 * The words of a reload's log line for a section: "mqtt client" says why every mqtt key needs a restart (the
 * client is made once, with all of them).
 */
static const char *section_label(const struct config_key *key)
{
	if (!key->section)
		return key->name;
	return strcmp(key->section, "mqtt") == 0 ? "mqtt client" : key->section;
}

/* config_diff's callback: one line per changed key, saying whether it now applies. */
static void report_change(const struct config_key *key, void *ctx)
{
	char dotted[128];

	(void)ctx;
	config_key_dotted(key, dotted, sizeof(dotted));
	if (key->reloadable)
		log_info(MODULE, "reload: %s changed: applied", dotted);
	else
		log_warn(MODULE,
			 "reload: %s changed: restart required (%s; the running value stays in effect)",
			 section_label(key), dotted);
}

/*
 * A rotated database password (a Kubernetes Secret is updated in place): new writer connections use it; open
 * sessions stay, PostgreSQL does not end them when a password changes.
 */
static void reload_password(struct bridge *b)
{
	int rc = db_secret_reload(b->db_secret);

	if (rc > 0)
		log_info(MODULE, "re-read the database password from %s: new connections use it",
			 b->cfg->database.password_file);
	else if (rc == 0 && b->cfg->database.password_file)
		log_info(MODULE, "re-read the database password from %s: unchanged",
			 b->cfg->database.password_file);
}

/*
 * After SIGHUP, reads the registry at once rather than at the next tick. A failure needs nothing more here:
 * regsync has logged it, the running snapshot stays, and regsync_tick tries again (the reload stays pending).
 */
static void refresh_registry(struct bridge *b)
{
	if (regsync_load_now(b->regsync) < 0) {
		/* see above */
	}
}

/*
 * SIGHUP: parse the file again into a new snapshot; if it is valid, apply the keys the table (config.c) marks
 * reloadable and report every other changed key as "restart required", one line per key; if it is not, keep
 * the running configuration and say why. Then refresh the registry.
 */
static void reload(struct bridge *b)
{
	char errors[4096];
	struct config *fresh = config_load(b->cfg->path, errors, sizeof(errors));
	struct config_validation *policy;
	int pending;

	reload_password(b);
	if (!fresh) {
		char *saveptr = NULL;
		for (char *line = strtok_r(errors, "\n", &saveptr); line;
		     line = strtok_r(NULL, "\n", &saveptr))
			log_error(MODULE, "reload failed, keeping the running configuration: %s", line);
		refresh_registry(b);
		return;
	}
	/*
	 * The validation keys in effect are the last policy's (b->cfg->validation stays as started: ingest may
	 * still be reading it); a new policy is a copy with the reloadable keys changed, the rest as running.
	 */
	pending = config_diff(b->cfg, b->policy, fresh, report_change, NULL);
	policy = xmalloc(sizeof(*policy));
	*policy = b->policy ? *b->policy : b->cfg->validation;
	config_apply_reloadable(b->cfg, policy, fresh);
	b->policies = xrealloc(b->policies, (b->policy_count + 1) * sizeof(*b->policies));
	b->policies[b->policy_count++] = policy;
	b->policy = policy;
	if (b->mqtt)
		mqtt_set_policy(b->mqtt, policy);
	log_set_level(b->cfg->log_level);
	log_set_json(b->cfg->log_json);
	log_info(MODULE, "configuration reloaded from %s (%d key(s) need a restart%s)",
		 b->cfg->path ? b->cfg->path : "(defaults)", pending,
		 pending ? "; see the restart-required lines" : "");
	config_free(fresh);
	refresh_registry(b);
}

/* Serves until the first SIGTERM/SIGINT, or when leaving, until the session is empty. */
static void serve(struct bridge *b)
{
	for (;;) {
		struct pollfd fds[2] = { { .fd = b->signal_fd, .events = POLLIN },
					 { .fd = regsync_socket(b->regsync), .events = POLLIN } };
		int sig;

		if (poll(fds, fds[1].fd >= 0 ? 2 : 1, TICK_MS) < 0 && errno != EINTR)
			log_error(MODULE, "poll: %s", strerror(errno));
		while ((sig = read_signal(b->signal_fd)) != 0) {
			if (sig == SIGTERM || sig == SIGINT) {
				log_info(MODULE, "%s received: stop consuming, drain, exit", strsignal(sig));
				return;
			}
			if (sig == SIGHUP) {
				log_info(MODULE, "SIGHUP: reloading the configuration and the registry");
				reload(b);
			}
		}
		tick(b);
		if (b->mode == MQTT_LEAVE && mqtt_has_left(b->mqtt, LEAVE_QUIET_MS)) {
			log_info(MODULE,
				 "left the group: nothing arrived for %d ms after the unsubscribe; draining",
				 LEAVE_QUIET_MS);
			return;
		}
	}
}

static bool writers_finished(struct bridge *b)
{
	for (size_t i = 0; i < b->writer_count; i++)
		if (!writer_is_finished(b->writers[i]))
			return false;
	return true;
}

static bool dispatcher_finished(struct bridge *b)
{
	return !b->dispatcher || dispatch_is_finished(b->dispatcher);
}

/*
 * Waits until done(b) while the spool keeps ticking (its checkpoint follows the commits). Past the
 * shutdown deadline, or on a second SIGTERM/SIGINT, exits at once: in disk mode nothing is lost by that,
 * the spool replays what was not committed at the next start.
 */
static void wait_draining(struct bridge *b, bool (*done)(struct bridge *), int64_t deadline)
{
	while (!done(b)) {
		struct pollfd pfd = { .fd = b->signal_fd, .events = POLLIN };
		const char *why = NULL;
		int sig;

		if (clock_monotonic_ms() > deadline)
			why = "drain did not finish within shutdown_timeout";
		else if (poll(&pfd, 1, TICK_MS) > 0 &&
			 ((sig = read_signal(b->signal_fd)) == SIGTERM || sig == SIGINT))
			why = "second signal";
		atomic_store(&b->health.loop_heartbeat_ms, clock_monotonic_ms());
		if (b->spool)
			spool_tick(b->spool, clock_monotonic_ms());
		if (why) {
			log_error(MODULE, "%s: exiting without draining; %s", why,
				  b->spool ?
					  "the spool replays what was not committed at the next start" :
					  "uncommitted messages are lost unless the broker redelivers them");
			_exit(1);
		}
	}
}

/* Hands out what the spool still holds, closes the queues and waits for the writers to commit it all. */
static void drain(struct bridge *b)
{
	int64_t deadline = clock_monotonic_ms() + (int64_t)b->cfg->shutdown_timeout * 1000;

	atomic_store(&b->health.mqtt_connected, false);
	if (b->dispatcher) {
		dispatch_request_finish(b->dispatcher);
		wait_draining(b, dispatcher_finished, deadline);
		dispatch_join(b->dispatcher);
		b->dispatcher = NULL;
	}
	for (size_t i = 0; i < b->writer_count; i++)
		queue_close(b->queues[i]);
	wait_draining(b, writers_finished, deadline);
	for (size_t i = 0; i < b->writer_count; i++) {
		writer_join(b->writers[i]);
		queue_free(b->queues[i]);
	}
}

static int bridge_main(struct config *cfg, enum mqtt_mode mode)
{
	struct bridge b = { .cfg = cfg, .mode = mode };
	int rc = 0;

	log_set_level(cfg->log_level);
	log_set_json(cfg->log_json);
	b.signal_fd = open_signal_fd();
	if (b.signal_fd < 0)
		die(MODULE, "cannot set up signal handling: %s", strerror(errno));
	log_info(MODULE, "mqtt2pg %s starting: %d writer(s), batch %d rows / %d ms", MQTT2PG_VERSION,
		 cfg->database.writers, cfg->database.batch_rows, cfg->database.flush_interval_ms);
	atomic_store(&b.health.loop_heartbeat_ms, clock_monotonic_ms());
	atomic_store(&b.health.writers_total, cfg->database.writers);
	if (cfg->http_port > 0) {
		b.http = http_start(cfg, &b.health, &b.stats);
		if (!b.http)
			die(MODULE, "cannot start the HTTP listener (http.port = %d)", cfg->http_port);
	}
	b.db_secret = db_secret_new(cfg->database.password, cfg->database.password_file);
	b.store = registry_store_new();
	b.regsync = regsync_new(cfg->database.conninfo, cfg->database.password, b.store, &b.stats,
				cfg->registry_refresh_interval);
	regsync_use_secret(b.regsync, b.db_secret);
	if (cfg->spool.durable) {
		struct spool_options so = {
			.directory = cfg->spool.directory,
			.max_bytes = (uint64_t)cfg->spool.max_bytes,
			.segment_bytes = (uint64_t)cfg->spool.segment_bytes,
			.fsync_interval_ms = cfg->spool.fsync_interval_ms,
		};
		b.spool = spool_open(&so, &b.stats);
		if (!b.spool)
			die(MODULE,
			    "cannot open the spool in %s (spool.directory; the reason is logged above)",
			    cfg->spool.directory);
	} else {
		log_warn(
			MODULE,
			"spool.mode = memory: a crash or SIGKILL loses what was acknowledged and not committed");
	}
	if (load_registry(&b) < 0)
		goto out;
	start_writers(&b);
	if (b.spool) {
		b.dispatcher = dispatch_start(b.spool, b.queues, b.writer_count, &b.stats);
		if (!b.dispatcher)
			die(MODULE, "cannot start the dispatcher");
	}
	if (cfg->aggregates.enabled && mode == MQTT_CONSUME) { /* a leaving process is gone in seconds */
		struct aggregator_options agg = {
			.conninfo = cfg->database.conninfo,
			.password = cfg->database.password,
			.secret = b.db_secret,
			.interval_s = cfg->aggregates.interval,
			.raw_retention_days = cfg->aggregates.raw_retention_days,
			.rejected_retention_days = cfg->validation.rejected_retention_days,
			.partitions_ahead_days = cfg->aggregates.partitions_ahead_days,
			.connections = cfg->aggregates.connections,
		};
		b.aggregator = aggregator_start(&agg, &b.stats);
	}
	b.mqtt = mqtt_start(cfg, b.store, b.spool, b.queues, b.writer_count, &b.stats, mode);
	if (!b.mqtt) {
		rc = 1;
	} else {
		b.stats_logged_ms = clock_monotonic_ms();
		serve(&b);
		atomic_store(&b.health.draining, true);
		if (mode == MQTT_LEAVE && !mqtt_left_cleanly(b.mqtt)) {
			log_error(
				MODULE,
				"did not leave the group cleanly (interrupted, or a message was left unacknowledged): "
				"the session stays; run leave again");
			rc = 1;
		}
		mqtt_stop(b.mqtt);
		b.mqtt = NULL;
	}
	drain(&b);
	aggregator_stop(b.aggregator);
	spool_close(b.spool);
	b.spool = NULL;
	stats_log(&b.stats, &b.stats_logged, (double)(clock_monotonic_ms() - b.stats_logged_ms) / 1000.0);
	if (mode == MQTT_LEAVE)
		log_info(MODULE, "leave: took %llu message(s) from the session of %s, all committed",
			 (unsigned long long)STATS_GET(&b.stats, messages_received), cfg->mqtt.client_id);
	log_info(MODULE, "drained; exiting");
out:
	spool_close(b.spool);
	http_stop(b.http);
	regsync_free(b.regsync);
	db_secret_free(b.db_secret);
	registry_store_free(b.store);
	free(b.queues);
	free(b.writers);
	for (size_t i = 0; i < b.policy_count; i++)
		free(b.policies[i]);
	free(b.policies);
	close(b.signal_fd);
	config_free(cfg);
	return rc;
}

int bridge_run(struct config *cfg)
{
	return bridge_main(cfg, MQTT_CONSUME);
}

int bridge_leave(struct config *cfg)
{
	log_info(MODULE, "leave: taking the session of %s, then leaving its shared group",
		 cfg->mqtt.client_id);
	return bridge_main(cfg, MQTT_LEAVE);
}
