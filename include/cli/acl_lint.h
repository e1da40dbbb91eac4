/* SPDX-License-Identifier: Apache-2.0 */
/*
 * acl_lint: a hand-tuned Mosquitto acl_file checked against the registry (`mqtt2pg acl check`): every way a
 * device could publish into another tenant's (or device's) tree, wildcard grants that span tenants, patterns
 * that do not confine each user to its own subtree, rules for users nobody registered, devices that cannot
 * publish at all. Pure: the file comes parsed (acl_file.h), the registry as values (acl_registry.h).
 */
#ifndef MQTT2PG_ACL_LINT_H
#define MQTT2PG_ACL_LINT_H

#include <stddef.h>

#include "cli/acl_file.h"
#include "cli/acl_registry.h"

enum acl_finding_kind {
	ACL_FINDING_SYNTAX,		/* Mosquitto refuses the line, or reads it otherwise than it looks */
	ACL_FINDING_CROSS_TENANT_WRITE, /* a device may publish into another tenant's tree */
	ACL_FINDING_CROSS_DEVICE_WRITE, /* a device may publish into another device's subtree of its tenant */
	ACL_FINDING_PATTERN_WRITE,	/* a pattern lets some device publish outside its own subtree */
	ACL_FINDING_WILDCARD_WRITE,	/* a write grant with a wildcard at the tenant level or above */
	ACL_FINDING_CROSS_TENANT_READ,	/* a device may read another tenant's tree */
	ACL_FINDING_BRIDGE_WRITE,	/* the bridge user may publish into the route tree (it only reads) */
	ACL_FINDING_ANONYMOUS,		/* a rule for anonymous clients */
	ACL_FINDING_UNKNOWN_USER,	/* rules for a user that is neither a device nor the bridge */
	ACL_FINDING_DISABLED_DEVICE,	/* rules for a disabled device */
	ACL_FINDING_NO_WRITE_RULE,	/* an enabled device cannot publish its own telemetry */
	ACL_FINDING_BRIDGE_CANNOT_READ, /* the bridge cannot read some device's telemetry */
	ACL_FINDING_UNANALYSED,		/* too many distinct topics to analyse a user completely */
};

struct acl_finding {
	unsigned line; /* 0: about the file as a whole */
	enum acl_finding_kind kind;
	char *message; /* one line, owned */
};

/* The finding kind as printed ("cross-tenant-write", ...). */
const char *acl_finding_kind_name(enum acl_finding_kind kind);

/*
 * Lints f against the registry and the policy. Stores an owned array of findings in *out (sorted by line,
 * file-wide findings last; free with acl_findings_free) and returns how many; 0 means the file is safe.
 */
size_t acl_lint(const struct acl_file *f, const struct acl_registry *reg, const struct acl_policy *pol,
		struct acl_finding **out);

void acl_findings_free(struct acl_finding *findings, size_t count);

#endif
