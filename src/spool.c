// SPDX-License-Identifier: Apache-2.0
/*
 * spool: segment files, the append path (Paho's thread), the read path (the dispatcher), the commit
 * ring (writers) and the checkpoint (main thread). See spool.h for the design. One mutex guards the
 * in-memory state; file writes happen under it (one write per record), fdatasync does not.
 */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/log.h"
#include "util/xalloc.h"

#define MODULE		 "spool"
#define HEADER_BYTES	 16
#define MAX_RECORD_BYTES (64u * 1024 * 1024)
#define RING_SIZE	 (1u << 20)   /* records in flight between dispatch and commit */
#define READ_AHEAD	 (64u * 1024) /* the dispatcher reads records in windows of this size */
#define DISPATCH_BATCH	 64	      /* fewer records than this after a wake-up: let more arrive first */
#define DISPATCH_NAP_NS	 1000000L

struct record_header {
	uint32_t length; /* payload bytes */
	uint32_t crc;	 /* CRC-32C of seq and payload */
	uint64_t seq;
};

struct segment {
	uint64_t first_seq; /* 0 while empty */
	uint64_t last_seq;
	uint64_t bytes;
	char *path;
	/*
	 * Held open for the segment's whole life (the last one in append mode): if the directory is removed under
	 * us, the records not yet committed are still readable here and are written again (rebuild_directory).
	 */
	int fd;
};

struct spool {
	struct spool_options options;
	char *directory;
	int lock_fd;   /* holds the directory's exclusive flock for as long as the spool is open */
	dev_t dir_dev; /* the directory we opened: a removed or replaced one is noticed by comparing */
	ino_t dir_ino;
	enum stats_spool_state state; /* logged and counted on every change (set_state) */
	bool checkpoint_failing;      /* the checkpoint cannot be written: logged once */
	bool rebuild_failing;	      /* the removed directory cannot be rebuilt yet: logged once */
	struct stats *stats;
	pthread_mutex_t lock;
	pthread_cond_t space;	/* signalled when segments are deleted */
	pthread_cond_t records; /* signalled on append and on commit progress */
	/* append side */
	struct segment *segments; /* oldest first; the last one is appended to (its fd) */
	size_t segment_count;
	uint64_t next_seq;
	uint64_t total_bytes;
	unsigned char *batch; /* the records of one append: headers and bodies */
	size_t batch_cap;
	bool unsynced;
	int64_t last_sync_ms;
	/* read side (dispatcher) */
	size_t read_segment;
	uint64_t read_offset;
	uint64_t read_seq;
	int read_fd;
	size_t read_fd_segment;
	unsigned char *read_buf; /* the read-ahead window: bytes [window_offset, + window_len) of read_fd */
	size_t read_cap;
	uint64_t window_offset;
	size_t window_len;
	/* commit side */
	uint8_t *done;	     /* RING_SIZE flags */
	uint64_t checkpoint; /* every seq <= checkpoint is committed */
	uint64_t persisted_checkpoint;
};

/* --- CRC-32C ---------------------------------------------------------------------------------------- */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc_table[i] = c;
	}
}

uint32_t spool_crc32c(uint32_t crc, const void *data, size_t len)
{
	const unsigned char *p = data;

	pthread_once(&crc_once, crc_init);
	crc = ~crc;
	while (len--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

static uint32_t record_crc(uint64_t seq, const void *payload, uint32_t length)
{
	return spool_crc32c(spool_crc32c(0, &seq, sizeof(seq)), payload, length);
}

/* --- files ------------------------------------------------------------------------------------------- */

static char *segment_path(const struct spool *s, uint64_t first_seq)
{
	size_t n = strlen(s->directory) + 32;
	char *path = xmalloc(n);

	snprintf(path, n, "%s/%016" PRIx64 ".seg", s->directory, first_seq);
	return path;
}

static int write_all(int fd, const struct iovec *iov, int iovcnt)
{
	struct iovec v[2];
	int count = iovcnt;

	memcpy(v, iov, sizeof(*iov) * (size_t)iovcnt);
	while (count > 0) {
		ssize_t n = writev(fd, v + (iovcnt - count), count);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (int i = iovcnt - count; i < iovcnt && n > 0; i++) {
			size_t take = (size_t)n < v[i].iov_len ? (size_t)n : v[i].iov_len;
			v[i].iov_base = (char *)v[i].iov_base + take;
			v[i].iov_len -= take;
			n -= (ssize_t)take;
			if (v[i].iov_len == 0)
				count--;
		}
	}
	return 0;
}

static int read_exact(int fd, void *buf, size_t len, uint64_t offset)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(offset + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

static void sync_directory(const struct spool *s)
{
	int fd = open(s->directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

static struct segment *last_segment(const struct spool *s)
{
	return s->segment_count ? &s->segments[s->segment_count - 1] : NULL;
}

/*
 * Starts a new segment for appends, named by the next sequence; the caller holds the lock (or is opening).
 * An empty last segment already carries that name (nothing was appended since it began), so it is kept:
 * creating the name again would list one file twice, and deleting the older entry would unlink the file
 * being written (the name-reuse bug: appends went on into an unlinked file that a restart never saw).
 */
static int start_segment(struct spool *s)
{
	struct segment *last = last_segment(s);
	struct segment seg = { .fd = -1 };

	if (last && last->bytes == 0)
		return 0;
	seg.path = segment_path(s, s->next_seq);
	seg.fd = open(seg.path, O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (seg.fd < 0) {
		int err = errno;
		log_error(MODULE, "cannot create segment %s: %s", seg.path, strerror(err));
		free(seg.path);
		return -err;
	}
	if (last && last->fd >= 0)
		fdatasync(last->fd); /* a closed segment is complete on disk */
	s->segments = xrealloc(s->segments, (s->segment_count + 1) * sizeof(*s->segments));
	s->segments[s->segment_count++] = seg;
	sync_directory(s);
	return 0;
}

static int append_fd(const struct spool *s)
{
	return s->segment_count ? s->segments[s->segment_count - 1].fd : -1;
}

/* --- state ------------------------------------------------------------------------------------------- */

/*
 * Every state but OK blocks intake. A change is logged once, with what it means for the operator, and
 * counted; the MQTT callback retries meanwhile without logging per message. Called locked.
 */
static void set_state(struct spool *s, enum stats_spool_state state, const char *detail)
{
	enum stats_spool_state old = s->state;

	if (state == old)
		return;
	s->state = state;
	atomic_store(&s->stats->spool_state, (uint64_t)state);
	if (state != STATS_SPOOL_OK)
		STATS_ADD(s->stats, spool_problems[state], 1);
	switch (state) {
	case STATS_SPOOL_FULL:
		log_warn(MODULE,
			 "spool full (%" PRIu64 " of %" PRIu64
			 " bytes in %s): the database is not keeping up; "
			 "intake blocks until it catches up, and the broker holds what arrives meanwhile",
			 s->total_bytes, s->options.max_bytes, s->directory);
		break;
	case STATS_SPOOL_WRITE_ERROR:
		log_error(
			MODULE,
			"cannot append to the spool in %s: %s; intake blocks and retries until the disk takes "
			"it (nothing is acknowledged meanwhile, the broker holds the rest)",
			s->directory, detail);
		break;
	case STATS_SPOOL_MISSING:
		log_error(MODULE,
			  "the spool directory %s was removed or replaced while running (%s): intake blocks "
			  "until it is rebuilt from the files still open",
			  s->directory, detail);
		break;
	case STATS_SPOOL_OK:
		log_info(MODULE, "spool in %s takes messages again (%s over; %" PRIu64 " bytes used)",
			 s->directory, stats_spool_state_name((int)old), s->total_bytes);
		break;
	default:
		break;
	}
}

/* --- checkpoint -------------------------------------------------------------------------------------- */

static uint64_t read_checkpoint(const struct spool *s)
{
	char path[4096], text[32] = "";
	FILE *f;

	snprintf(path, sizeof(path), "%s/checkpoint", s->directory);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (!fgets(text, sizeof(text), f))
		text[0] = '\0';
	fclose(f);
	return strtoull(text, NULL, 10);
}

/*
 * Writes the checkpoint (atomically, by rename). A failure is logged when it begins and when it ends, not
 * every tick: on a full disk it fails until segments are deleted, which no longer waits for it.
 */
static int write_checkpoint(struct spool *s, uint64_t checkpoint, bool durable)
{
	char path[4096], tmp[4096], text[32];
	const char *what = NULL;
	int fd, n, err = 0;

	snprintf(path, sizeof(path), "%s/checkpoint", s->directory);
	snprintf(tmp, sizeof(tmp), "%s/checkpoint.tmp", s->directory);
	n = snprintf(text, sizeof(text), "%" PRIu64 "\n", checkpoint);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, text, (size_t)n) != n || (durable && fdatasync(fd) < 0)) {
		what = "write";
		err = errno;
	} else if (close(fd), fd = -1, rename(tmp, path) < 0) {
		what = "rename into place";
		err = errno;
	}
	if (fd >= 0)
		close(fd);
	if (what && !s->checkpoint_failing)
		log_error(
			MODULE,
			"cannot %s the checkpoint %s: %s; committed segments are deleted anyway, and a restart "
			"replays (idempotently) what the stale checkpoint does not cover",
			what, tmp, strerror(err ? err : ENOSPC));
	else if (!what && s->checkpoint_failing)
		log_info(MODULE, "the checkpoint in %s is written again", s->directory);
	s->checkpoint_failing = what != NULL;
	return what ? -1 : 0;
}

/* --- recovery ---------------------------------------------------------------------------------------- */

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists *.seg names in the directory, sorted (their names are zero-padded hex sequence numbers). */
static char **list_segments(const char *directory, size_t *count)
{
	DIR *dir = opendir(directory);
	struct dirent *e;
	char **names = NULL;

	*count = 0;
	if (!dir)
		return NULL;
	while ((e = readdir(dir)) != NULL) {
		size_t len = strlen(e->d_name);
		if (len == 20 && strcmp(e->d_name + 16, ".seg") == 0) {
			names = xrealloc(names, (*count + 1) * sizeof(*names));
			names[(*count)++] = xstrdup(e->d_name);
		}
	}
	closedir(dir);
	if (*count)
		qsort(names, *count, sizeof(*names), compare_names);
	return names;
}

/*
 * Scans one segment, keeping the valid prefix: on a bad length, short read, bad CRC or a sequence gap the
 * rest is a torn write, truncated away and reported. Fills seg and the replay start if it lies here.
 */
static void recover_segment(struct spool *s, struct segment *seg, uint64_t checkpoint, bool *start_found)
{
	int fd = open(seg->path, O_RDWR | O_CLOEXEC);
	struct stat st;
	uint64_t offset = 0;
	unsigned char *payload = NULL;
	size_t cap = 0;

	seg->fd = -1;
	if (fd < 0 || fstat(fd, &st) < 0) {
		log_error(MODULE, "cannot read segment %s: %s", seg->path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	while (offset < (uint64_t)st.st_size) {
		struct record_header h;
		bool ok = read_exact(fd, &h, HEADER_BYTES, offset) == 0 && h.length <= MAX_RECORD_BYTES &&
			  offset + HEADER_BYTES + h.length <= (uint64_t)st.st_size &&
			  (seg->last_seq == 0 ? h.seq >= s->next_seq : h.seq == seg->last_seq + 1);
		if (ok) {
			if (h.length > cap) {
				cap = h.length;
				payload = xrealloc(payload, cap);
			}
			ok = read_exact(fd, payload, h.length, offset + HEADER_BYTES) == 0 &&
			     record_crc(h.seq, payload, h.length) == h.crc;
		}
		if (!ok) {
			log_warn(MODULE,
				 "segment %s: torn or corrupt record at offset %" PRIu64
				 "; dropping its last %" PRIu64
				 " bytes (a write cut short by a crash), keeping the %s records before it",
				 seg->path, offset, (uint64_t)st.st_size - offset,
				 seg->last_seq ? "valid" : "(no)");
			if (ftruncate(fd, (off_t)offset) < 0)
				log_error(MODULE, "cannot truncate %s: %s", seg->path, strerror(errno));
			STATS_ADD(s->stats, spool_torn_records, 1);
			STATS_ADD(s->stats, spool_records_lost[STATS_LOST_TORN], 1);
			break;
		}
		if (seg->first_seq == 0)
			seg->first_seq = h.seq;
		seg->last_seq = h.seq;
		if (!*start_found && h.seq > checkpoint) {
			*start_found = true;
			s->read_segment = (size_t)(seg - s->segments);
			s->read_offset = offset;
			s->read_seq = h.seq;
		}
		offset += HEADER_BYTES + h.length;
		s->next_seq = h.seq + 1;
	}
	seg->bytes = offset;
	s->total_bytes += offset;
	free(payload);
	seg->fd = fd;
}

/*
 * An empty last segment is named by the sequence that was next when it began. With nothing to replay, that
 * name is the lower bound of the next sequence: segments are deleted without waiting for the checkpoint
 * file (it may be stale: a full disk), and a sequence must never be reused (rejections are idempotent by
 * it). The segment is kept for appends when its name is the next sequence, else removed.
 */
static void keep_empty_last_segment(struct spool *s, bool start_found)
{
	struct segment *last = last_segment(s);
	const char *name;
	uint64_t named;

	if (!last || last->bytes != 0)
		return;
	name = strrchr(last->path, '/');
	named = strtoull(name ? name + 1 : last->path, NULL, 16);
	if (!start_found && named > s->next_seq)
		s->next_seq = named;
	if (named == s->next_seq && last->fd >= 0 && fcntl(last->fd, F_SETFL, O_APPEND) == 0)
		return;
	if (unlink(last->path) < 0 && errno != ENOENT)
		log_error(MODULE, "cannot delete the empty segment %s: %s", last->path, strerror(errno));
	if (last->fd >= 0)
		close(last->fd);
	free(last->path);
	s->segment_count--;
}

static int recover(struct spool *s)
{
	uint64_t checkpoint = read_checkpoint(s);
	size_t count;
	char **names = list_segments(s->directory, &count);
	bool start_found = false;

	s->next_seq = 1;
	for (size_t i = 0; i < count; i++) {
		struct segment seg = { 0 };
		size_t n = strlen(s->directory) + strlen(names[i]) + 2;

		seg.path = xmalloc(n);
		snprintf(seg.path, n, "%s/%s", s->directory, names[i]);
		free(names[i]);
		s->segments = xrealloc(s->segments, (s->segment_count + 1) * sizeof(*s->segments));
		s->segments[s->segment_count++] = seg;
		recover_segment(s, &s->segments[s->segment_count - 1], checkpoint, &start_found);
	}
	free(names);
	if (s->next_seq <= checkpoint)
		s->next_seq = checkpoint + 1;
	keep_empty_last_segment(s, start_found);
	if (!start_found) {
		struct segment *last = last_segment(s);
		/* the reused empty segment, or the new one started below */
		s->read_segment = last && last->bytes == 0 ? s->segment_count - 1 : s->segment_count;
		s->read_offset = 0;
		s->read_seq = s->next_seq;
	}
	s->checkpoint = s->read_seq - 1;
	s->persisted_checkpoint = checkpoint;
	log_info(MODULE,
		 "%s: %zu segment(s), %" PRIu64 " bytes; checkpoint %" PRIu64 "; %" PRIu64
		 " record(s) to replay",
		 s->directory, count, s->total_bytes, checkpoint, s->next_seq - s->read_seq);
	return start_segment(s) < 0 ? -1 : 0;
}

/*
 * One process per spool directory. Two bridges appending to and deleting segments of the same directory would
 * each commit and delete records the other acknowledged to its broker but has not written: acknowledged
 * messages would be lost. flock(2) is released by the kernel when the process dies, even by SIGKILL, so a
 * crashed bridge never leaves a stale lock behind.
 */
/* Takes the directory's lock (again, after a rebuild); quiet: a retry whose failure was already logged. */
static int lock_directory(struct spool *s, bool quiet)
{
	char path[PATH_MAX];
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "%s/lock", s->directory);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_error(MODULE, "cannot open the spool lock file %s: %s", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == 0 && stat(s->directory, &st) == 0) {
		if (s->lock_fd >= 0)
			close(s->lock_fd);
		s->lock_fd = fd;
		s->dir_dev = st.st_dev;
		s->dir_ino = st.st_ino;
		return 0;
	}
	if (!quiet && errno == EWOULDBLOCK)
		log_error(MODULE,
			  "the spool directory %s is in use by another mqtt2pg process (it holds %s): "
			  "each replica needs its own spool.directory",
			  s->directory, path);
	else if (!quiet)
		log_error(MODULE, "cannot lock %s: %s", path, strerror(errno));
	close(fd);
	return -1;
}

/* Is the directory we locked still there, the same one, with our lock file in it? */
static bool directory_intact(const struct spool *s, const char **why)
{
	struct stat st;

	if (stat(s->directory, &st) < 0) {
		*why = "it is gone";
		return false;
	}
	if (st.st_dev != s->dir_dev || st.st_ino != s->dir_ino) {
		*why = "another directory now has its name";
		return false;
	}
	if (fstat(s->lock_fd, &st) < 0 || st.st_nlink == 0) {
		*why = "its lock file was deleted";
		return false;
	}
	return true;
}

/* Copies segment seg's bytes from its open (possibly unlinked) file into a new file at its path. */
static int rewrite_segment(struct segment *seg)
{
	int fd = open(seg->path, O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	char buf[65536];
	uint64_t done = 0;

	if (fd < 0)
		return -errno;
	while (done < seg->bytes) {
		size_t want = seg->bytes - done < sizeof(buf) ? (size_t)(seg->bytes - done) : sizeof(buf);
		struct iovec iov = { .iov_base = buf, .iov_len = want };
		int rc = read_exact(seg->fd, buf, want, done) < 0 ? -EIO : write_all(fd, &iov, 1);
		if (rc < 0) {
			close(fd);
			unlink(seg->path);
			return rc;
		}
		done += want;
	}
	if (fdatasync(fd) < 0) {
		int err = errno;
		close(fd);
		return -err;
	}
	close(seg->fd);
	seg->fd = fd;
	return 0;
}

/*
 * The directory was removed (or replaced) under us. What is not committed yet lives only in the files we
 * hold open: recreate the directory, take its lock again, and write every segment that still holds an
 * uncommitted record (or is being appended to) back under its name. Called locked; until it succeeds the
 * state stays MISSING (intake blocked) and the main thread retries every tick.
 */
static int rebuild_directory(struct spool *s, const char *why)
{
	uint64_t records = s->next_seq - 1 - s->checkpoint;
	size_t rewritten = 0;
	int rc = 0;

	set_state(s, STATS_SPOOL_MISSING, why);
	if (mkdir(s->directory, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (lock_directory(s, s->rebuild_failing) < 0)
		return -EWOULDBLOCK;
	for (size_t i = 0; i < s->segment_count && rc == 0; i++) {
		struct segment *seg = &s->segments[i];
		if (i + 1 < s->segment_count && seg->last_seq <= s->checkpoint)
			continue; /* committed: deleted at the next tick (its file is already gone) */
		rc = rewrite_segment(seg);
		rewritten += rc == 0;
	}
	if (rc < 0)
		return rc;
	write_checkpoint(s, s->checkpoint, true);
	s->persisted_checkpoint = s->checkpoint;
	sync_directory(s);
	if (s->read_fd >= 0) /* it reads the old file; appends go to the new one from now on */
		close(s->read_fd);
	s->read_fd = -1;
	s->window_len = 0;
	log_error(
		MODULE,
		"the spool directory %s was rebuilt: %zu segment(s) holding the %" PRIu64
		" record(s) not yet "
		"committed were written back from the files still open; nothing was lost. Find out what removed "
		"it: a directory removed while mqtt2pg is stopped takes its records with it",
		s->directory, rewritten, records);
	set_state(s, STATS_SPOOL_OK, NULL);
	return 0;
}

struct spool *spool_open(const struct spool_options *options, struct stats *stats)
{
	struct spool *s = xcalloc(1, sizeof(*s));
	pthread_condattr_t attr;

	s->options = *options;
	s->directory = xstrdup(options->directory);
	s->stats = stats;
	s->read_fd = -1;
	s->lock_fd = -1;
	s->done = xcalloc(RING_SIZE, 1);
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&s->space, &attr);
	pthread_cond_init(&s->records, &attr);
	pthread_condattr_destroy(&attr);
	atomic_store(&stats->spool_state, STATS_SPOOL_OK);
	if (options->max_bytes < 2 * options->segment_bytes) {
		log_error(MODULE,
			  "spool.max_bytes (%" PRIu64 ") must be at least twice spool.segment_bytes (%" PRIu64
			  ")",
			  options->max_bytes, options->segment_bytes);
		spool_close(s);
		return NULL;
	}
	if (mkdir(s->directory, 0700) < 0 && errno != EEXIST) {
		log_error(MODULE, "cannot create the spool directory %s: %s", s->directory, strerror(errno));
		spool_close(s);
		return NULL;
	}
	if (lock_directory(s, false) < 0 || recover(s) < 0) {
		spool_close(s);
		return NULL;
	}
	return s;
}

/* --- append ------------------------------------------------------------------------------------------ */

/*
 * Encodes the n messages as consecutive records (header and body each) into s->batch, numbered from
 * s->next_seq. Called locked. Returns the batch's length.
 */
static size_t encode_records(struct spool *s, const struct message *const *messages, size_t n)
{
	size_t used = 0;

	for (size_t i = 0; i < n; i++) {
		/* The body goes straight to its place after its header's; the header follows, once its length is known. */
		size_t length = message_encode(messages[i], &s->batch, &s->batch_cap, used + HEADER_BYTES);
		struct record_header h = { .length = (uint32_t)length, .seq = s->next_seq + i };

		h.crc = record_crc(h.seq, s->batch + used + HEADER_BYTES, h.length);
		memcpy(s->batch + used, &h, HEADER_BYTES);
		used += HEADER_BYTES + length;
	}
	return used;
}

/*
 * Room for bytes more. A batch larger than the limit still goes in once nothing else is left to commit:
 * otherwise one large message would block intake for good.
 */
static bool has_room(const struct spool *s, uint64_t bytes)
{
	return s->total_bytes + bytes <= s->options.max_bytes ||
	       (s->segment_count == 1 && s->checkpoint + 1 == s->next_seq);
}

/* Waits (locked) up to the deadline for bytes of room. Returns false if there is still none. */
static bool wait_for_room(struct spool *s, uint64_t bytes, const struct timespec *deadline)
{
	int rc = 0;

	if (!has_room(s, bytes)) {
		set_state(s, STATS_SPOOL_FULL, NULL);
		STATS_ADD(s->stats, spool_full_waits, 1);
	}
	while (!has_room(s, bytes) && rc == 0 && s->state != STATS_SPOOL_MISSING)
		rc = pthread_cond_timedwait(&s->space, &s->lock, deadline);
	if (!has_room(s, bytes))
		return false;
	if (s->state == STATS_SPOOL_FULL)
		set_state(s, STATS_SPOOL_OK, NULL);
	return true;
}

/*
 * The file being appended to was unlinked (the directory removed, and the main thread has not noticed yet):
 * a record written now would vanish with the process. Rebuild first. Called locked.
 */
static int check_append_file(struct spool *s)
{
	struct stat st;

	if (s->state == STATS_SPOOL_MISSING)
		return -ENOENT;
	if (fstat(append_fd(s), &st) == 0 && st.st_nlink > 0)
		return 0;
	return rebuild_directory(s, "the segment being written was unlinked") < 0 ? -ENOENT : 0;
}

/*
 * A write failed (ENOSPC, EROFS, EIO): nothing half-written stays behind. On a full disk the segment is
 * closed too, so that it can be deleted once committed: otherwise the only segment, never full, would keep
 * the disk full for good. Called locked; returns rc.
 */
static int append_failed(struct spool *s, struct segment *seg, int rc)
{
	if (ftruncate(seg->fd, (off_t)seg->bytes) < 0 && errno != EROFS)
		log_error(MODULE, "cannot truncate %s after a failed write: %s", seg->path, strerror(errno));
	STATS_ADD(s->stats, spool_write_errors, 1);
	set_state(s, STATS_SPOOL_WRITE_ERROR, strerror(-rc));
	if (rc == -ENOSPC && seg->bytes > 0)
		(void)start_segment(s); /* may fail on a full disk: tried again at the next failure */
	return rc;
}

int spool_append_all(struct spool *s, const struct message *const *messages, size_t n, int timeout_ms)
{
	struct timespec deadline = clock_deadline_after_ms(timeout_ms);
	struct segment *seg;
	struct iovec iov;
	size_t bytes;
	int rc;

	if (n == 0)
		return 0;
	pthread_mutex_lock(&s->lock);
	bytes = encode_records(s, messages, n);
	if (!wait_for_room(s, bytes, &deadline)) {
		pthread_mutex_unlock(&s->lock);
		return s->state == STATS_SPOOL_MISSING ? -ENOENT : -ETIMEDOUT;
	}
	rc = check_append_file(s);
	if (rc < 0) {
		pthread_mutex_unlock(&s->lock);
		return rc;
	}
	seg = last_segment(s);
	if (seg->bytes >= s->options.segment_bytes && start_segment(s) == 0)
		seg = last_segment(s);
	iov = (struct iovec){ .iov_base = s->batch, .iov_len = bytes };
	rc = write_all(seg->fd, &iov, 1);
	if (rc < 0) {
		rc = append_failed(s, seg, rc);
		pthread_mutex_unlock(&s->lock);
		return rc;
	}
	if (seg->first_seq == 0)
		seg->first_seq = s->next_seq;
	s->next_seq += n;
	seg->last_seq = s->next_seq - 1;
	seg->bytes += bytes;
	s->total_bytes += bytes;
	if (s->state == STATS_SPOOL_WRITE_ERROR)
		set_state(s, STATS_SPOOL_OK, NULL);
	s->unsynced = true;
	if (s->options.fsync_interval_ms == 0) {
		fdatasync(seg->fd);
		s->unsynced = false;
	}
	pthread_cond_signal(&s->records);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

int spool_append(struct spool *s, const struct message *m, int timeout_ms)
{
	return spool_append_all(s, &m, 1, timeout_ms);
}

/* --- read (dispatcher) ------------------------------------------------------------------------------- */

/*
 * A record we wrote cannot be read back (an I/O error, or the file changed under us). The record stays
 * unconsumed: nothing is skipped, so nothing is lost; we reopen the file on the next try and wait out the
 * caller's timeout first, so a lasting fault costs a log line per try, not a busy loop. Called locked.
 */
static void read_back_failed(struct spool *s, size_t index, const struct timespec *deadline)
{
	log_error(MODULE, "cannot read record %" PRIu64 " back from %s (%s); retrying", s->read_seq,
		  s->segments[index].path, s->read_fd < 0 ? strerror(errno) : "short read or wrong sequence");
	if (s->read_fd >= 0)
		close(s->read_fd);
	s->read_fd = -1;
	s->window_len = 0;
	while (pthread_cond_timedwait(&s->records, &s->lock, deadline) == 0) {
	}
}

/*
 * Makes the window hold the bytes [offset, offset + need) of segment index (open as read_fd): one pread
 * of up to READ_AHEAD bytes (more for a larger record), never past the segment's appended bytes, instead
 * of two preads per record. Appended bytes never change, so a window stays true until the fd changes.
 */
static int window_fill(struct spool *s, size_t index, uint64_t offset, uint64_t need)
{
	uint64_t size = s->segments[index].bytes - offset;

	if (s->window_len && offset >= s->window_offset && offset + need <= s->window_offset + s->window_len)
		return 0;
	if (size < need)
		return -1;
	if (size > READ_AHEAD)
		size = need > READ_AHEAD ? need : READ_AHEAD;
	if (size > s->read_cap) {
		s->read_cap = (size_t)size;
		s->read_buf = xrealloc(s->read_buf, s->read_cap);
	}
	s->window_len = 0;
	if (read_exact(s->read_fd, s->read_buf, (size_t)size, offset) < 0)
		return -1;
	s->window_offset = offset;
	s->window_len = (size_t)size;
	return 0;
}

struct message *spool_next(struct spool *s, int timeout_ms)
{
	struct timespec deadline = clock_deadline_after_ms(timeout_ms);
	struct record_header h;
	struct message *m = NULL;
	uint64_t offset;
	size_t index;
	bool waited = false;
	int rc = 0;

	pthread_mutex_lock(&s->lock);
	while ((s->read_seq >= s->next_seq || s->read_seq - s->checkpoint >= RING_SIZE) && rc == 0) {
		waited = true;
		rc = pthread_cond_timedwait(&s->records, &s->lock, &deadline);
	}
	if (s->read_seq >= s->next_seq || s->read_seq - s->checkpoint >= RING_SIZE) {
		pthread_mutex_unlock(&s->lock);
		return NULL;
	}
	if (waited && s->next_seq - s->read_seq < DISPATCH_BATCH) {
		/*
		 * Woken by the first record after catching up: let more arrive before handing them out, so that
		 * one wake-up (a futex call on Paho's thread, a context switch here and at the writer) carries
		 * dozens of records instead of one. Costs at most a millisecond of latency.
		 */
		struct timespec nap = { 0, DISPATCH_NAP_NS };
		pthread_mutex_unlock(&s->lock);
		nanosleep(&nap, NULL);
		pthread_mutex_lock(&s->lock);
	}
	while (s->read_offset >= s->segments[s->read_segment].bytes) {
		s->read_segment++;
		s->read_offset = 0;
	}
	index = s->read_segment;
	offset = s->read_offset;
	if (s->read_fd < 0 || s->read_fd_segment != index) {
		if (s->read_fd >= 0)
			close(s->read_fd);
		/* Its own descriptor of the segment's file: reading never depends on the directory. */
		s->read_fd = fcntl(s->segments[index].fd, F_DUPFD_CLOEXEC, 0);
		s->read_fd_segment = index;
		s->window_len = 0;
	}
	/* Reading under the lock keeps the segment from being deleted meanwhile; it comes from the page cache. */
	if (s->read_fd >= 0 && window_fill(s, index, offset, HEADER_BYTES) == 0)
		memcpy(&h, s->read_buf + (offset - s->window_offset), HEADER_BYTES);
	else
		h.seq = 0; /* never a record's sequence */
	if (h.seq != s->read_seq) {
		read_back_failed(s, index, &deadline);
		pthread_mutex_unlock(&s->lock);
		return NULL;
	}
	if (window_fill(s, index, offset, HEADER_BYTES + (uint64_t)h.length) < 0) {
		read_back_failed(s, index, &deadline); /* nothing consumed: tried again, not skipped */
		pthread_mutex_unlock(&s->lock);
		return NULL;
	}
	m = message_decode(s->read_buf + (offset - s->window_offset) + HEADER_BYTES, h.length);
	if (!m) { /* our own bytes, read back whole: this is a bug, not input; skipped below, loudly */
		log_error(MODULE, "record %" PRIu64 " in %s does not decode; skipping it (lost)", h.seq,
			  s->segments[index].path);
		STATS_ADD(s->stats, spool_records_lost[STATS_LOST_UNDECODABLE], 1);
	}
	s->read_offset += HEADER_BYTES + h.length;
	s->read_seq++;
	pthread_mutex_unlock(&s->lock);
	if (!m) {
		spool_commit(s, h.seq);
		return NULL;
	}
	m->spool_seq = h.seq;
	return m;
}

bool spool_drained(struct spool *s)
{
	bool drained;

	pthread_mutex_lock(&s->lock);
	drained = s->read_seq >= s->next_seq;
	pthread_mutex_unlock(&s->lock);
	return drained;
}

/* --- commit ------------------------------------------------------------------------------------------ */

void spool_commit(struct spool *s, uint64_t seq)
{
	bool advanced = false, ring_full;

	pthread_mutex_lock(&s->lock);
	/* Only a reader stopped by a full ring waits for commits: wake it then, not on every commit. */
	ring_full = s->read_seq - s->checkpoint >= RING_SIZE;
	if (seq > s->checkpoint) {
		s->done[seq % RING_SIZE] = 1;
		while (s->done[(s->checkpoint + 1) % RING_SIZE] && s->checkpoint + 1 < s->read_seq) {
			s->done[(s->checkpoint + 1) % RING_SIZE] = 0;
			s->checkpoint++;
			advanced = true;
		}
	}
	if (advanced && ring_full)
		pthread_cond_broadcast(&s->records);
	pthread_mutex_unlock(&s->lock);
}

/* --- tick ---------------------------------------------------------------------------------------------- */

/*
 * Deletes the segments wholly committed, without waiting for the checkpoint file: on a full disk it cannot
 * be written, and the segments would keep the disk full for good. A stale checkpoint costs only idempotent
 * replays; the next sequence never goes back (keep_empty_last_segment). Called locked.
 */
static void delete_committed_segments(struct spool *s)
{
	size_t deleted = 0;

	/* Segments the dispatcher has read to the end (it moves on only when another record is there). */
	while (s->read_segment + 1 < s->segment_count &&
	       s->read_offset >= s->segments[s->read_segment].bytes) {
		s->read_segment++;
		s->read_offset = 0;
	}
	while (deleted + 1 < s->segment_count && s->segments[deleted].last_seq <= s->checkpoint &&
	       deleted < s->read_segment) {
		struct segment *seg = &s->segments[deleted];
		if (unlink(seg->path) < 0 && errno != ENOENT)
			log_error(MODULE, "cannot delete %s: %s", seg->path, strerror(errno));
		s->total_bytes -= seg->bytes;
		if (seg->fd >= 0)
			close(seg->fd);
		free(seg->path);
		deleted++;
	}
	if (deleted == 0)
		return;
	memmove(s->segments, s->segments + deleted, (s->segment_count - deleted) * sizeof(*s->segments));
	s->segment_count -= deleted;
	s->read_segment -= deleted;
	if (s->read_fd >= 0 && s->read_fd_segment >= deleted)
		s->read_fd_segment -= deleted;
	else if (s->read_fd >= 0) {
		close(s->read_fd);
		s->read_fd = -1;
		s->window_len = 0;
	}
	pthread_cond_broadcast(&s->space);
}

/*
 * Notices a removed or replaced directory (dev/inode, lock file) and rebuilds it, retrying every tick while
 * that fails; the first failure of a streak is logged. Called locked.
 */
static void watch_directory(struct spool *s)
{
	const char *why = "it is gone";
	int rc;

	if (s->state != STATS_SPOOL_MISSING && directory_intact(s, &why))
		return;
	rc = rebuild_directory(s, why);
	if (rc < 0 && !s->rebuild_failing)
		log_error(MODULE,
			  "cannot rebuild the spool directory %s yet: %s; intake stays blocked, retrying",
			  s->directory, strerror(-rc));
	s->rebuild_failing = rc < 0;
	pthread_cond_broadcast(&s->space); /* an append waiting for room re-checks the state */
}

void spool_tick(struct spool *s, int64_t now_ms)
{
	int sync_fd = -1;

	pthread_mutex_lock(&s->lock);
	watch_directory(s);
	if (s->unsynced && now_ms - s->last_sync_ms >= s->options.fsync_interval_ms) {
		sync_fd = fcntl(append_fd(s), F_DUPFD_CLOEXEC,
				0); /* sync outside the lock: appends go on meanwhile */
		s->unsynced = false;
		s->last_sync_ms = now_ms;
	}
	pthread_mutex_unlock(&s->lock);
	if (sync_fd >= 0) {
		fdatasync(sync_fd);
		close(sync_fd);
	}
	pthread_mutex_lock(&s->lock);
	/* The checkpoint may trail what is durable; never lead it: a replayed record is only a duplicate. */
	if (s->checkpoint != s->persisted_checkpoint && s->state != STATS_SPOOL_MISSING &&
	    write_checkpoint(s, s->checkpoint, false) == 0)
		s->persisted_checkpoint = s->checkpoint;
	delete_committed_segments(s);
	atomic_store(&s->stats->spool_bytes, s->total_bytes);
	atomic_store(&s->stats->spool_backlog, s->next_seq - 1 - s->checkpoint);
	pthread_mutex_unlock(&s->lock);
}

/*
 * At exit, uncommitted records held only in removed files are lost with the process: rebuild once more, and
 * if that fails, count and say how many. Called locked.
 */
static void close_check_directory(struct spool *s)
{
	uint64_t at_risk = s->next_seq - 1 - s->checkpoint;

	watch_directory(s);
	if (s->state != STATS_SPOOL_MISSING || at_risk == 0)
		return;
	STATS_ADD(s->stats, spool_records_lost[STATS_LOST_DIRECTORY_GONE], at_risk);
	log_error(MODULE,
		  "LOST: %" PRIu64 " spooled record(s) not yet committed were only in the removed spool "
		  "directory %s, which could not be rebuilt; they are lost at this exit (sequences %" PRIu64
		  "..%" PRIu64 ")",
		  at_risk, s->directory, s->checkpoint + 1, s->next_seq - 1);
}

void spool_close(struct spool *s)
{
	if (!s)
		return;
	if (s->segments) {
		pthread_mutex_lock(&s->lock);
		close_check_directory(s);
		pthread_mutex_unlock(&s->lock);
	}
	if (append_fd(s) >= 0)
		fdatasync(append_fd(s));
	if (s->read_fd >= 0)
		close(s->read_fd);
	if (s->segments && s->checkpoint != s->persisted_checkpoint && s->state != STATS_SPOOL_MISSING)
		write_checkpoint(s, s->checkpoint, true);
	for (size_t i = 0; i < s->segment_count; i++) {
		if (s->segments[i].fd >= 0)
			close(s->segments[i].fd);
		free(s->segments[i].path);
	}
	free(s->segments);
	free(s->batch);
	free(s->read_buf);
	free(s->done);
	free(s->directory);
	if (s->lock_fd >= 0)
		close(s->lock_fd); /* releases the flock */
	pthread_cond_destroy(&s->space);
	pthread_cond_destroy(&s->records);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
