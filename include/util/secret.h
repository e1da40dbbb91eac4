/* SPDX-License-Identifier: Apache-2.0 */
/*
 * secret: the one reader of secret files (database and broker passwords, the metrics token, --db-file), used
 * at start-up by config and again at SIGHUP by db's password re-read, so that a rotated file is held to the
 * same rule as the first one.
 */
#ifndef MQTT2PG_SECRET_H
#define MQTT2PG_SECRET_H

#include <stddef.h>

/*
 * Reads a secret (a password, a token, a connection string) from path: its first line, without the line end,
 * into *out (owned by the caller; free it, ideally after explicit_bzero). Every secret file mqtt2pg reads goes
 * through here. Refuses, as ssh does, a file that is not a regular file, that belongs to someone other than
 * the effective user or root, or that others may read: mode 0600 or stricter, 0640 when root owns it.
 * Returns 0, or a negative errno with a sentence for the operator in err (naming the file and the fix).
 */
int secret_read_file(const char *path, char **out, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * The rule alone, for a file someone else reads (the TLS key Paho opens): fd open on path. Returns 0, or a
 * negative errno with the sentence in err.
 */
int secret_check_fd(int fd, const char *path, char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
