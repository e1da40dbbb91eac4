// SPDX-License-Identifier: Apache-2.0
/*
 * dispatch: spool -> writer queues (see dispatch.h).
 */
#include "dispatch.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/xalloc.h"

#define MODULE	"dispatch"
#define WAIT_MS 200

struct dispatcher {
	struct spool *spool;
	struct queue **queues;
	size_t queue_count;
	struct stats *stats;
	pthread_t thread;
	atomic_bool finishing;
	atomic_bool finished;
	size_t next_rejection;
};

static void *dispatch_main(void *arg)
{
	struct dispatcher *d = arg;

	for (;;) {
		struct message *m = spool_next(d->spool, WAIT_MS);
		size_t index;

		if (!m) {
			if (atomic_load(&d->finishing) && spool_drained(d->spool))
				break;
			continue;
		}
		index = message_shard(m, d->queue_count, &d->next_rejection);
		/* The spool holds it durably: waiting here as long as the writer needs is the back-pressure. */
		int rc;
		while ((rc = queue_push(d->queues[index], m, WAIT_MS)) == -ETIMEDOUT) {
		}
		if (rc < 0) /* closed: only at teardown after a failed start; the record stays in the spool */
			message_free(m);
	}
	atomic_store(&d->finished, true);
	return NULL;
}

struct dispatcher *dispatch_start(struct spool *spool, struct queue **queues, size_t queue_count,
				  struct stats *stats)
{
	struct dispatcher *d = xcalloc(1, sizeof(*d));
	int rc;

	d->spool = spool;
	d->queues = queues;
	d->queue_count = queue_count;
	d->stats = stats;
	atomic_init(&d->finishing, false);
	atomic_init(&d->finished, false);
	rc = pthread_create(&d->thread, NULL, dispatch_main, d);
	if (rc != 0) {
		log_error(MODULE, "cannot start the dispatcher thread: %s", strerror(rc));
		free(d);
		return NULL;
	}
	return d;
}

void dispatch_request_finish(struct dispatcher *d)
{
	atomic_store(&d->finishing, true);
}

bool dispatch_is_finished(struct dispatcher *d)
{
	return atomic_load(&d->finished);
}

void dispatch_join(struct dispatcher *d)
{
	if (!d)
		return;
	atomic_store(&d->finishing, true);
	pthread_join(d->thread, NULL);
	free(d);
}
