// SPDX-License-Identifier: Apache-2.0
/*
 * acl_export: `mqtt2pg acl export`'s text, a Mosquitto acl_file or dynamic-security JSON, from the registry
 * (see acl_export.h). Deterministic: the same registry always gives the same bytes.
 */
#include "cli/acl_export.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/acl_file.h"
#include "util/xalloc.h"

/* A name that is safe as one topic level and as a broker username: no '/', no wildcard, no '%' (pattern
 * substitution), no white space or control character, not empty. */
static bool safe_name(const char *s)
{
	if (!s || !s[0])
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= ' ' || *p == 0x7f || *p == '/' || *p == '+' || *p == '#' || *p == '%')
			return false;
	return true;
}

bool acl_prefix_usable(const char *prefix)
{
	struct acl_level *levels;
	size_t n;
	bool ok = prefix && prefix[0] && prefix[0] != '$';

	if (!ok)
		return false;
	n = acl_topic_split(prefix, &levels);
	for (size_t i = 0; i < n && ok; i++) {
		char *level = xstrndup(levels[i].text, levels[i].len);
		ok = safe_name(level);
		free(level);
	}
	free(levels);
	return ok;
}

static int compare_devices(const void *a, const void *b)
{
	const struct acl_device *x = *(const struct acl_device *const *)a,
				*y = *(const struct acl_device *const *)b;
	int c = strcmp(x->tenant, y->tenant);

	return c ? c : strcmp(x->serial, y->serial);
}

/*
 * Whether two of the devices would log in with one username (a serial in two tenants while usernames are
 * serials): then either could publish as the other, so the export refuses, naming both tenants. Sorts list
 * by username (the caller sorts it again).
 */
static bool shared_username(const struct acl_device **list, size_t n, char *err, size_t errlen)
{
	if (n > 1)
		qsort(list, n, sizeof(*list), acl_device_compare_user);
	for (size_t i = 1; i < n; i++)
		if (strcmp(acl_device_user(list[i - 1]), acl_device_user(list[i])) == 0) {
			snprintf(
				err, errlen,
				"serial '%s' is registered in tenants '%s' and '%s', and a broker username names "
				"one client: export with --username serial@tenant (each device then logs in as "
				"<serial>@<tenant>), or disable one of them",
				list[i]->serial, list[i - 1]->tenant, list[i]->tenant);
			return true;
		}
	return false;
}

/* The enabled devices sorted by tenant and serial (borrowed pointers), after checking every name. */
static int export_devices(const struct acl_registry *reg, const struct acl_policy *pol,
			  const struct acl_device ***out, size_t *count, char *err, size_t errlen)
{
	const struct acl_device **list = xcalloc(reg->device_count + 1, sizeof(*list));
	size_t n = 0;

	if (!acl_prefix_usable(pol->topic_prefix)) {
		snprintf(err, errlen,
			 "topic prefix '%s' is not usable: it needs one or more non-empty levels without "
			 "wildcards, '%%', white space or a leading '$'",
			 pol->topic_prefix ? pol->topic_prefix : "");
		goto fail;
	}
	if (!safe_name(pol->bridge_user)) {
		snprintf(err, errlen, "bridge user '%s' is not usable: no white space, '/', '+', '#' or '%%'",
			 pol->bridge_user ? pol->bridge_user : "");
		goto fail;
	}
	for (size_t i = 0; i < reg->device_count; i++) {
		const struct acl_device *dev = &reg->devices[i];
		if (!dev->enabled)
			continue;
		if (!safe_name(dev->serial) || !safe_name(dev->tenant) || !safe_name(acl_device_user(dev))) {
			snprintf(err, errlen,
				 "device '%s' of tenant '%s' has a name the broker would misread",
				 dev->serial, dev->tenant);
			goto fail;
		}
		if (strcmp(acl_device_user(dev), pol->bridge_user) == 0) {
			snprintf(err, errlen,
				 "device '%s' has the bridge user's name: choose another --bridge-user",
				 acl_device_user(dev));
			goto fail;
		}
		list[n++] = dev;
	}
	if (shared_username(list, n, err, errlen))
		goto fail;
	if (n > 1)
		qsort(list, n, sizeof(*list), compare_devices);
	*out = list;
	*count = n;
	return 0;
fail:
	free(list);
	return -EINVAL;
}

static char *export_mosquitto(const struct acl_policy *pol, const struct acl_device **devs, size_t n)
{
	struct xbuf sb = { 0 };
	const char *tenant = NULL;
	size_t tenants = 0;

	for (size_t i = 0; i < n; i++)
		if (i == 0 || strcmp(devs[i]->tenant, devs[i - 1]->tenant) != 0)
			tenants++;
	xbuf_printf(
		&sb,
		"# Mosquitto acl_file for mqtt2pg, written by `mqtt2pg acl export` from the device registry.\n"
		"# Regenerate it after registry changes and reload mosquitto (SIGHUP); edits here are lost.\n"
		"# Each enabled device logs in with its %s as username and may publish only into its own\n"
		"# subtree %s/<tenant>/<serial>/#. The bridge user may read the route tree. Nothing else is\n"
		"# granted: no anonymous rules, no patterns. %zu device(s) in %zu tenant(s).\n"
		"\n"
		"user %s\n"
		"topic read %s/+/+/#\n",
		n && devs[0]->username ? "<serial>@<tenant>" : "serial", pol->topic_prefix, n, tenants,
		pol->bridge_user, pol->topic_prefix);
	for (size_t i = 0; i < n; i++) {
		if (!tenant || strcmp(tenant, devs[i]->tenant) != 0) {
			tenant = devs[i]->tenant;
			xbuf_printf(&sb, "\n# tenant %s\n", tenant);
		}
		xbuf_printf(&sb, "user %s\ntopic write %s/%s/%s/#\n", acl_device_user(devs[i]),
			    pol->topic_prefix, devs[i]->tenant, devs[i]->serial);
	}
	return sb.buf;
}

static cJSON *dynsec_acl(const char *type, const char *topic)
{
	cJSON *acl = cJSON_CreateObject();

	cJSON_AddStringToObject(acl, "acltype", type);
	cJSON_AddStringToObject(acl, "topic", topic);
	cJSON_AddNumberToObject(acl, "priority", 0);
	cJSON_AddBoolToObject(acl, "allow", true);
	return acl;
}

static void dynsec_client(cJSON *clients, const char *username, const char *textname, const char *role)
{
	cJSON *client = cJSON_CreateObject(), *roles = cJSON_CreateArray(), *ref = cJSON_CreateObject();

	cJSON_AddStringToObject(client, "username", username);
	cJSON_AddStringToObject(client, "textName", textname);
	cJSON_AddStringToObject(ref, "rolename", role);
	cJSON_AddItemToArray(roles, ref);
	cJSON_AddItemToObject(client, "roles", roles);
	cJSON_AddItemToArray(clients, client);
}

/*
 * The dynamic-security plugin's state: default deny for publishing, receiving and subscribing; one role per
 * device that may publish into its subtree; a bridge role that may subscribe to and receive the route tree
 * (also through a shared subscription). Clients carry no password: set them with `mosquitto_ctrl dynsec
 * setClientPassword`; until then nobody can log in as them.
 */
static char *export_dynsec(const struct acl_policy *pol, const struct acl_device **devs, size_t n)
{
	cJSON *root = cJSON_CreateObject(), *defaults = cJSON_CreateObject();
	cJSON *clients = cJSON_CreateArray(), *roles = cJSON_CreateArray(), *role, *acls;
	char *tree = xasprintf("%s/+/+/#", pol->topic_prefix),
	     *shared = xasprintf("$share/+/%s/+/+/#", pol->topic_prefix);
	char *text;

	cJSON_AddBoolToObject(defaults, "publishClientSend", false);
	cJSON_AddBoolToObject(defaults, "publishClientReceive", false);
	cJSON_AddBoolToObject(defaults, "subscribe", false);
	cJSON_AddBoolToObject(defaults, "unsubscribe", true);
	cJSON_AddItemToObject(root, "defaultACLAccess", defaults);

	dynsec_client(clients, pol->bridge_user, "mqtt2pg bridge", "mqtt2pg-bridge");
	role = cJSON_CreateObject();
	acls = cJSON_CreateArray();
	cJSON_AddStringToObject(role, "rolename", "mqtt2pg-bridge");
	cJSON_AddStringToObject(role, "textName", "reads the route tree");
	cJSON_AddItemToArray(acls, dynsec_acl("subscribePattern", tree));
	cJSON_AddItemToArray(acls, dynsec_acl("subscribePattern", shared));
	cJSON_AddItemToArray(acls, dynsec_acl("publishClientReceive", tree));
	cJSON_AddItemToObject(role, "acls", acls);
	cJSON_AddItemToArray(roles, role);

	for (size_t i = 0; i < n; i++) {
		char *rolename = xasprintf("mqtt2pg-device-%s", acl_device_user(devs[i]));
		char *textname = xasprintf("device of tenant %s", devs[i]->tenant);
		char *subtree = xasprintf("%s/%s/%s/#", pol->topic_prefix, devs[i]->tenant, devs[i]->serial);

		dynsec_client(clients, acl_device_user(devs[i]), textname, rolename);
		role = cJSON_CreateObject();
		acls = cJSON_CreateArray();
		cJSON_AddStringToObject(role, "rolename", rolename);
		cJSON_AddStringToObject(role, "textName", textname);
		cJSON_AddItemToArray(acls, dynsec_acl("publishClientSend", subtree));
		cJSON_AddItemToObject(role, "acls", acls);
		cJSON_AddItemToArray(roles, role);
		free(rolename);
		free(textname);
		free(subtree);
	}
	cJSON_AddItemToObject(root, "clients", clients);
	cJSON_AddItemToObject(root, "groups", cJSON_CreateArray());
	cJSON_AddItemToObject(root, "roles", roles);
	text = cJSON_Print(root);
	cJSON_Delete(root);
	free(tree);
	free(shared);
	if (!text)
		abort(); /* cJSON fails only when allocation fails; so does xmalloc */
	/* cJSON's allocator is malloc: hand back an xmalloc'd copy with a final newline. */
	char *out = xasprintf("%s\n", text);
	free(text);
	return out;
}

int acl_export(const struct acl_registry *reg, const struct acl_policy *pol, enum acl_format format_kind,
	       char **out, char *err, size_t errlen)
{
	const struct acl_device **devs = NULL;
	size_t n = 0;
	int rc = export_devices(reg, pol, &devs, &n, err, errlen);

	if (rc < 0)
		return rc;
	*out = format_kind == ACL_FORMAT_DYNSEC ? export_dynsec(pol, devs, n) :
						  export_mosquitto(pol, devs, n);
	free(devs);
	return 0;
}
