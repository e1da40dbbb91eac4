/* SPDX-License-Identifier: Apache-2.0 */
/*
 * regsync: keeps the registry snapshot current. It loads tenants, devices and points in one consistent
 * read, publishes the snapshot in the registry_store, and LISTENs on "mqtt2pg_registry" (the registry
 * tables' triggers NOTIFY it), reloading within moments of a change; a periodic reload covers missed
 * notifications (a connection lost while a change happened). Runs on the main thread, driven by poll().
 */
#ifndef MQTT2PG_REGSYNC_H
#define MQTT2PG_REGSYNC_H

#include <stdbool.h>
#include <stdint.h>

#include "registry.h"
#include "stats.h"

struct regsync;
struct db_secret; /* db.h */

/* Borrows conninfo, password, store and stats for its lifetime. */
struct regsync *regsync_new(const char *conninfo, const char *password, struct registry_store *store,
			    struct stats *stats, int refresh_interval_s);

/* From now on connect with secret's current password (borrowed; re-read at SIGHUP) instead of password. */
void regsync_use_secret(struct regsync *rs, struct db_secret *secret);

void regsync_free(struct regsync *rs);

/* Connects, LISTENs and loads a snapshot now. Returns 0 on success, -1 after logging why. */
int regsync_load_now(struct regsync *rs) __attribute__((warn_unused_result));

/* The socket to poll for notifications, or -1 while disconnected. */
int regsync_socket(const struct regsync *rs);

/* Reads notifications, reconnects with back-off when needed, and reloads when a change or the
 * refresh interval says so. now_ms is a monotonic clock. */
void regsync_tick(struct regsync *rs, int64_t now_ms);

/* True once a snapshot has been published. */
bool regsync_has_snapshot(const struct regsync *rs);

#endif
