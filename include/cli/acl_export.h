/* SPDX-License-Identifier: Apache-2.0 */
/*
 * acl_export: the broker's ACL written from the registry (`mqtt2pg acl export`): a Mosquitto acl_file or
 * the dynamic-security plugin's JSON in which each enabled device may publish only into its own subtree
 * <prefix>/<tenant>/<serial>/# and the bridge user may read the route tree; nothing else is granted. Pure:
 * the registry comes as values (acl_registry.h), the text goes back to the caller.
 */
#ifndef MQTT2PG_ACL_EXPORT_H
#define MQTT2PG_ACL_EXPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "cli/acl_registry.h"

enum acl_format {
	ACL_FORMAT_MOSQUITTO, /* an acl_file */
	ACL_FORMAT_DYNSEC,    /* the dynamic-security plugin's JSON (roles, clients; no passwords) */
};

/*
 * Writes the ACL of the registry's enabled devices in format: sorted by tenant and serial, so the same
 * registry always gives the same bytes. Returns 0 and an owned NUL-terminated text in *out, or -EINVAL with
 * a message in err (an unusable prefix or bridge user, a device named like the bridge user, a name the broker
 * would read as a wildcard, two enabled devices with one username: a serial in two tenants while usernames
 * are serials, see `acl export --username serial@tenant`).
 */
int acl_export(const struct acl_registry *reg, const struct acl_policy *pol, enum acl_format format,
	       char **out, char *err, size_t errlen) __attribute__((warn_unused_result));

/* True if prefix can stand as the first levels of the route tree in an ACL: one or more non-empty levels
 * without wildcards, '%', white space or a leading '$'. */
bool acl_prefix_usable(const char *prefix);

#endif
