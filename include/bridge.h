/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bridge: `mqtt2pg run`. Owns the pipeline's parts and the main thread: signals, the registry refresher
 * and the periodic ticks. Start-up order: writers (and their queues), registry snapshot, then the MQTT
 * client, so that no message arrives before there is somewhere to put it and something to check it with.
 * Shutdown runs the other way round: stop consuming, drain and commit the queues, exit 0.
 */
#ifndef MQTT2PG_BRIDGE_H
#define MQTT2PG_BRIDGE_H

#include "config.h"

/* Runs until SIGTERM/SIGINT; returns the process exit code. Takes ownership of cfg. */
int bridge_run(struct config *cfg) __attribute__((warn_unused_result));

/*
 * `mqtt2pg leave`: retires cfg's client id from its shared subscription group without loss (see mqtt.h):
 * replays its spool, takes what its broker session holds, unsubscribes, drains everything into the database
 * and ends the session. Returns 0 when it left cleanly. Takes ownership of cfg.
 */
int bridge_leave(struct config *cfg) __attribute__((warn_unused_result));

#endif
