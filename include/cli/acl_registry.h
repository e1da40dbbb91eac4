/* SPDX-License-Identifier: Apache-2.0 */
/*
 * acl_registry: what the ACL tools (the lint, acl_lint.h; the export, acl_export.h) know of the device
 * registry and the deployment. Plain values that borrow everything; `mqtt2pg acl` (acl.c) fills them from
 * the database, the unit tests from tables.
 */
#ifndef MQTT2PG_ACL_REGISTRY_H
#define MQTT2PG_ACL_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

struct acl_device {
	const char *serial; /* unique within its tenant only (sql/013) */
	const char *tenant; /* its tenant's slug */
	bool enabled;
	const char *username; /* the device's broker username; NULL: its serial */
};

/* What the lint and the export know of the registry. Borrows everything. */
struct acl_registry {
	const struct acl_device *devices;
	size_t device_count;
	const char *const *tenants; /* every tenant slug */
	size_t tenant_count;
};

struct acl_policy {
	const char *topic_prefix; /* "solar": the route tree is <prefix>/<tenant>/<serial>/# */
	const char *bridge_user;  /* "mqtt2pg": the bridge's broker username */
};

/* The device's broker username: its serial, or what the loader set (serial@tenant). */
static inline const char *acl_device_user(const struct acl_device *dev)
{
	return dev->username ? dev->username : dev->serial;
}

/* qsort/bsearch order of device pointers (const struct acl_device **) by broker username. */
static inline int acl_device_compare_user(const void *a, const void *b)
{
	return strcmp(acl_device_user(*(const struct acl_device *const *)a),
		      acl_device_user(*(const struct acl_device *const *)b));
}

#endif
