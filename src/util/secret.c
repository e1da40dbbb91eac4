// SPDX-License-Identifier: Apache-2.0
/*
 * secret: see secret.h.
 */
#include "util/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/xalloc.h"

/*
 * The rule ssh applies to its keys: a secret file belongs to us or to root and nobody else may read it. Group
 * read is allowed when root owns the file, which is how Kubernetes mounts a Secret (root:fsGroup, mode 0440)
 * and how a packager's root:mqtt2pg 0640 file looks; the group then is an explicit grant, not an accident.
 */
int secret_check_fd(int fd, const char *path, char *err, size_t errlen)
{
	struct stat st;
	mode_t others;

	if (fstat(fd, &st) != 0) {
		snprintf(err, errlen, "cannot read secret file '%s': %s", path, strerror(errno));
		return -errno;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "secret file '%s' is not a regular file", path);
		return -EINVAL;
	}
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		snprintf(
			err, errlen,
			"secret file '%s' belongs to uid %u: it must belong to the user mqtt2pg runs as (uid %u) or "
			"to root",
			path, (unsigned)st.st_uid, (unsigned)geteuid());
		return -EPERM;
	}
	others = st.st_uid == 0 ? (S_IWGRP | S_IXGRP | S_IRWXO) : (S_IRWXG | S_IRWXO);
	if (st.st_mode & others) {
		snprintf(
			err, errlen,
			"secret file '%s' has mode %04o: it must not be readable by other users (chmod 600 '%s'; "
			"0640 is allowed when root owns it)",
			path, (unsigned)(st.st_mode & 07777), path);
		return -EPERM;
	}
	return 0;
}

int secret_read_file(const char *path, char **out, char *err, size_t errlen)
{
	char buf[4097];
	ssize_t len;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY), rc;

	*out = NULL;
	if (fd < 0) {
		snprintf(err, errlen, "cannot read secret file '%s': %s", path, strerror(errno));
		return -errno;
	}
	rc = secret_check_fd(fd, path, err, errlen);
	if (rc == 0) {
		len = read(fd, buf, sizeof(buf));
		if (len < 0) {
			rc = -errno;
			snprintf(err, errlen, "cannot read secret file '%s': %s", path, strerror(errno));
		} else if ((size_t)len == sizeof(buf)) {
			rc = -EFBIG;
			snprintf(err, errlen, "secret file '%s' is longer than %zu bytes", path,
				 sizeof(buf) - 1);
		} else {
			buf[len] = '\0';
			buf[strcspn(buf, "\r\n")] = '\0';
			*out = xstrdup(buf);
		}
		explicit_bzero(buf, sizeof(buf));
	}
	close(fd);
	return rc;
}
