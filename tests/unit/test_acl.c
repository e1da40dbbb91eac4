// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for acl.c: MQTT topic-filter matching, overlap and inclusion; the acl_file parser (as Mosquitto
 * 2.0 reads it, mistakes included); Mosquitto's access decision (deny first, then the user's rules, then
 * patterns); the lint's findings on exported, loose and subtle files; and the export (deterministic, and
 * lint-clean by construction).
 */
#include <CUnit/Basic.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/acl.h"
#include "unit.h"

/* A registry of two tenants: acme (A1, A2, and A3 disabled) and beta (B1); gamma has no devices. */
static const struct acl_device devices[] = {
	{ .serial = "INV-A1", .tenant = "acme", .enabled = true },
	{ .serial = "INV-A2", .tenant = "acme", .enabled = true },
	{ .serial = "INV-A3", .tenant = "acme", .enabled = false },
	{ .serial = "INV-B1", .tenant = "beta", .enabled = true },
};
static const char *const tenants[] = { "acme", "beta", "gamma" };
static const struct acl_registry registry = {
	.devices = devices, .device_count = 4, .tenants = tenants, .tenant_count = 3
};
static const struct acl_policy policy = { .topic_prefix = "solar", .bridge_user = "mqtt2pg" };

static struct acl_file *parse(const char *text)
{
	return acl_file_parse(text, strlen(text));
}

/* Lints text; returns the findings (caller frees) and prints them when ACL_TEST_VERBOSE is set. */
static size_t lint(const char *text, struct acl_finding **out)
{
	struct acl_file *f = parse(text);
	size_t n = acl_lint(f, &registry, &policy, out);

	if (getenv("ACL_TEST_VERBOSE"))
		for (size_t i = 0; i < n; i++)
			fprintf(stderr, "\n  %u: %s: %s", (*out)[i].line,
				acl_finding_kind_name((*out)[i].kind), (*out)[i].message);
	acl_file_free(f);
	return n;
}

/* True if some finding has this line and kind (and, if fragment is not NULL, mentions it). */
static bool has(const struct acl_finding *fs, size_t n, unsigned line, enum acl_finding_kind kind,
		const char *fragment)
{
	for (size_t i = 0; i < n; i++)
		if (fs[i].line == line && fs[i].kind == kind &&
		    (!fragment || strstr(fs[i].message, fragment)))
			return true;
	fprintf(stderr, "\n  no %s finding at line %u%s%s", acl_finding_kind_name(kind), line,
		fragment ? " mentioning " : "", fragment ? fragment : "");
	return false;
}

static void test_filter_valid(void)
{
	CU_ASSERT_TRUE(acl_filter_valid("solar/+/+/#"));
	CU_ASSERT_TRUE(acl_filter_valid("#"));
	CU_ASSERT_TRUE(acl_filter_valid("+"));
	CU_ASSERT_TRUE(acl_filter_valid("a//b"));
	CU_ASSERT_TRUE(acl_filter_valid("/a"));
	CU_ASSERT_TRUE(acl_filter_valid("sensor/%u/data"));
	CU_ASSERT_FALSE(acl_filter_valid(""));
	CU_ASSERT_FALSE(acl_filter_valid("a/#/b"));
	CU_ASSERT_FALSE(acl_filter_valid("a/b#"));
	CU_ASSERT_FALSE(acl_filter_valid("a+/b"));
	CU_ASSERT_FALSE(acl_filter_valid("a/+b"));
}

static void test_topic_matches(void)
{
	CU_ASSERT_TRUE(acl_topic_matches("solar/+/+/#", "solar/acme/INV-1/telemetry"));
	CU_ASSERT_TRUE(acl_topic_matches("solar/+/+/#", "solar/acme/INV-1")); /* '#' matches the parent too */
	CU_ASSERT_FALSE(acl_topic_matches("solar/+/+/#", "solar/acme"));
	CU_ASSERT_TRUE(acl_topic_matches("solar/+/x", "solar//x")); /* '+' matches an empty level */
	CU_ASSERT_FALSE(acl_topic_matches("solar/+", "solar/a/b"));
	CU_ASSERT_TRUE(acl_topic_matches("#", "anything/at/all"));
	CU_ASSERT_FALSE(acl_topic_matches("#", "$SYS/broker/uptime")); /* '$' topics need a literal */
	CU_ASSERT_FALSE(acl_topic_matches("+/broker/uptime", "$SYS/broker/uptime"));
	CU_ASSERT_TRUE(acl_topic_matches("$SYS/#", "$SYS/broker/uptime"));
	CU_ASSERT_FALSE(acl_topic_matches("solar/acme/#", "solar/acmeX/1"));
	CU_ASSERT_FALSE(acl_topic_matches("solar/#", "solar/+/x")); /* not a topic name */
}

static void test_filters_overlap(void)
{
	CU_ASSERT_TRUE(acl_filters_overlap("solar/#", "solar/+/+/#"));
	CU_ASSERT_TRUE(acl_filters_overlap("+/+/+/telemetry", "solar/+/+/#"));
	CU_ASSERT_TRUE(acl_filters_overlap("#", "solar/acme/INV-1/#"));
	CU_ASSERT_TRUE(acl_filters_overlap("solar/acme/+/x", "solar/+/INV-1/#"));
	CU_ASSERT_TRUE(acl_filters_overlap("solar/acme/INV-1/#", "solar/acme/INV-1")); /* at the parent */
	CU_ASSERT_FALSE(acl_filters_overlap("solar/acme/#", "solar/beta/#"));
	CU_ASSERT_FALSE(acl_filters_overlap("solar/+", "solar/+/+/#"));	    /* too short */
	CU_ASSERT_FALSE(acl_filters_overlap("solar/+/+", "solar/+/+/+/+")); /* lengths differ */
	CU_ASSERT_FALSE(acl_filters_overlap("other/#", "solar/+/+/#"));
	CU_ASSERT_FALSE(acl_filters_overlap("#", "$SYS/#"));
	CU_ASSERT_TRUE(acl_filters_overlap("$SYS/#", "$SYS/broker/+"));
}

static void test_filter_covers(void)
{
	CU_ASSERT_TRUE(acl_filter_covers("solar/acme/INV-1/#", "solar/acme/INV-1/telemetry"));
	CU_ASSERT_TRUE(acl_filter_covers("solar/acme/INV-1/#", "solar/acme/INV-1/#"));
	CU_ASSERT_TRUE(acl_filter_covers("solar/+/+/#", "solar/acme/+/x/#"));
	CU_ASSERT_TRUE(acl_filter_covers("#", "solar/#"));
	CU_ASSERT_TRUE(acl_filter_covers("a/+", "a/b"));
	CU_ASSERT_FALSE(acl_filter_covers("solar/acme/INV-1/#", "solar/acme/+/telemetry"));
	CU_ASSERT_FALSE(acl_filter_covers("solar/acme/INV-1/#", "solar/#"));
	CU_ASSERT_FALSE(acl_filter_covers("a/+", "a/#")); /* a/# also matches a and a/b/c */
	CU_ASSERT_FALSE(acl_filter_covers("a/b/#", "a"));
	CU_ASSERT_FALSE(acl_filter_covers("#", "$SYS/x"));
}

static void test_parse(void)
{
	struct acl_file *f = parse("# comment\n"
				   "topic read $SYS/#\n" /* 2: anonymous */
				   "\n"
				   "user INV-A1\n" /* 4 */
				   "topic write solar/acme/INV-A1/#\n"
				   "topic   solar/x  \n" /* 6: readwrite by default, blanks trimmed */
				   "pattern deny solar/%u/secret\n"
				   "  # indented comment\n"  /* 8: mosquitto refuses */
				   "user\n"		     /* 9: no name */
				   "topic\twrite\tsolar/#\n" /* 10: tabs are not separators */
				   "topic read\n"	     /* 11: the topic named "read" */
				   "topic rw solar/#\n"	     /* 12: unknown access */
				   "topic write solar/#/x\n" /* 13: invalid filter */
				   "user   two words  \r\n"  /* 14: a user name may hold a space */
				   "topic deny a/b");	     /* 15: no final newline */

	CU_ASSERT_EQUAL_FATAL(f->rule_count, 6);
	CU_ASSERT_EQUAL(f->rules[0].line, 2);
	CU_ASSERT_PTR_NULL(f->rules[0].user);
	CU_ASSERT_EQUAL(f->rules[0].access, ACL_ACCESS_READ);
	CU_ASSERT_STRING_EQUAL(f->rules[1].user, "INV-A1");
	CU_ASSERT_EQUAL(f->rules[1].access, ACL_ACCESS_WRITE);
	CU_ASSERT_STRING_EQUAL(f->rules[2].filter, "solar/x");
	CU_ASSERT_EQUAL(f->rules[2].access, ACL_ACCESS_READ | ACL_ACCESS_WRITE);
	CU_ASSERT_TRUE(f->rules[3].pattern);
	CU_ASSERT_PTR_NULL(f->rules[3].user);
	CU_ASSERT_EQUAL(f->rules[3].access, ACL_ACCESS_DENY);
	CU_ASSERT_EQUAL(f->rules[4].line, 11);
	CU_ASSERT_STRING_EQUAL(f->rules[4].filter, "read");
	CU_ASSERT_EQUAL(f->rules[4].access, ACL_ACCESS_READ | ACL_ACCESS_WRITE);
	CU_ASSERT_STRING_EQUAL(f->rules[5].user, "two words");
	CU_ASSERT_EQUAL(f->user_count, 2);
	CU_ASSERT_EQUAL(f->users[1].line, 14);

	CU_ASSERT_EQUAL_FATAL(f->error_count, 6);
	unsigned lines[] = { 8, 9, 10, 11, 12, 13 };
	for (size_t i = 0; i < 6; i++)
		CU_ASSERT_EQUAL(f->errors[i].line, lines[i]);
	CU_ASSERT_PTR_NOT_NULL(strstr(f->errors[0].message, "first column"));
	CU_ASSERT_PTR_NOT_NULL(strstr(f->errors[2].message, "\\x09")); /* the tab is shown */
	CU_ASSERT_PTR_NOT_NULL(strstr(f->errors[3].message, "named 'read'"));
	acl_file_free(f);
	acl_file_free(NULL);
}

static void test_decide(void)
{
	struct acl_file *f = parse("topic read public/#\n"
				   "user INV-A1\n"
				   "topic write solar/#\n"
				   "topic deny solar/beta/#\n"
				   "topic solar/acme/INV-A1/cmd\n"
				   "user mqtt2pg\n"
				   "topic read solar/+/+/#\n"
				   "pattern write dev/%u/#\n"
				   "pattern write cid/%c/x\n"
				   "pattern read any/#\n");
	struct acl_decision d;

	d = acl_decide(f, "INV-A1", "solar/acme/INV-A1/telemetry", ACL_ACCESS_WRITE);
	CU_ASSERT_TRUE(d.allowed);
	CU_ASSERT_EQUAL(d.line, 3);
	d = acl_decide(f, "INV-A1", "solar/beta/INV-B1/telemetry", ACL_ACCESS_WRITE);
	CU_ASSERT_FALSE(d.allowed); /* the deny comes after the grant in the file, and still wins */
	CU_ASSERT_EQUAL(d.line, 4);
	CU_ASSERT_FALSE(acl_decide(f, "INV-A1", "solar/acme/INV-A2/x", ACL_ACCESS_READ).allowed);
	CU_ASSERT_TRUE(acl_decide(f, "INV-A1", "solar/acme/INV-A1/cmd", ACL_ACCESS_READ).allowed);
	CU_ASSERT_TRUE(acl_decide(f, "mqtt2pg", "solar/beta/INV-B1/telemetry", ACL_ACCESS_READ).allowed);
	CU_ASSERT_FALSE(acl_decide(f, "mqtt2pg", "solar/beta/INV-B1/telemetry", ACL_ACCESS_WRITE).allowed);
	/* Patterns: %u is the username; a client without one gets no %u pattern. */
	CU_ASSERT_TRUE(acl_decide(f, "INV-B1", "dev/INV-B1/x", ACL_ACCESS_WRITE).allowed);
	CU_ASSERT_FALSE(acl_decide(f, "INV-B1", "dev/INV-A1/x", ACL_ACCESS_WRITE).allowed);
	CU_ASSERT_FALSE(acl_decide(f, NULL, "dev/%u/x", ACL_ACCESS_WRITE).allowed);
	/* %c: the client picks its id, even one with '/' in it. */
	CU_ASSERT_TRUE(acl_decide(f, "INV-B1", "cid/a/b/x", ACL_ACCESS_WRITE).allowed);
	CU_ASSERT_FALSE(acl_decide(f, "INV-B1", "cid/x", ACL_ACCESS_WRITE).allowed);
	/* Anonymous: the rules before the first user line, and patterns without %u. */
	CU_ASSERT_TRUE(acl_decide(f, NULL, "public/x", ACL_ACCESS_READ).allowed);
	CU_ASSERT_TRUE(acl_decide(f, NULL, "any/x", ACL_ACCESS_READ).allowed);
	CU_ASSERT_FALSE(acl_decide(f, "INV-A1", "public/x", ACL_ACCESS_READ).allowed);
	d = acl_decide(f, "nobody", "solar/acme/INV-A1/telemetry", ACL_ACCESS_WRITE);
	CU_ASSERT_FALSE(d.allowed);
	CU_ASSERT_EQUAL(d.line, 0);
	acl_file_free(f);
}

/* What `acl export` writes is clean by construction. */
static void test_export_is_clean(void)
{
	struct acl_finding *fs = NULL;
	char *text = NULL, err[256];
	size_t n;

	CU_ASSERT_EQUAL_FATAL(acl_export(&registry, &policy, ACL_FORMAT_MOSQUITTO, &text, err, sizeof(err)),
			      0);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "user mqtt2pg\ntopic read solar/+/+/#\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text,
				      "# tenant acme\nuser INV-A1\ntopic write solar/acme/INV-A1/#\n"
				      "user INV-A2\ntopic write solar/acme/INV-A2/#\n\n# tenant beta\n"));
	CU_ASSERT_PTR_NULL(strstr(text, "INV-A3")); /* disabled: nothing granted */
	CU_ASSERT_PTR_NULL(strstr(text, "\npattern "));
	n = lint(text, &fs);
	CU_ASSERT_EQUAL(n, 0);
	acl_findings_free(fs, n);
	free(text);
}

static void test_export_deterministic_and_checked(void)
{
	/* The same registry in another order gives the same bytes. */
	const struct acl_device shuffled[] = { devices[3], devices[1], devices[2], devices[0] };
	const struct acl_registry reg2 = {
		.devices = shuffled, .device_count = 4, .tenants = tenants, .tenant_count = 3
	};
	const struct acl_device clash[] = { { .serial = "mqtt2pg", .tenant = "acme", .enabled = true } };
	const struct acl_registry reg3 = {
		.devices = clash, .device_count = 1, .tenants = tenants, .tenant_count = 1
	};
	const struct acl_policy bad_prefix = { .topic_prefix = "solar/+", .bridge_user = "mqtt2pg" };
	const struct acl_policy bad_user = { .topic_prefix = "solar", .bridge_user = "a b" };
	char *a = NULL, *b = NULL, *c = NULL, err[256];

	CU_ASSERT_EQUAL(acl_export(&registry, &policy, ACL_FORMAT_MOSQUITTO, &a, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(acl_export(&reg2, &policy, ACL_FORMAT_MOSQUITTO, &b, err, sizeof(err)), 0);
	CU_ASSERT_TRUE(a && b && strcmp(a, b) == 0);
	CU_ASSERT_TRUE(acl_export(&reg3, &policy, ACL_FORMAT_MOSQUITTO, &c, err, sizeof(err)) < 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "bridge user"));
	CU_ASSERT_TRUE(acl_export(&registry, &bad_prefix, ACL_FORMAT_MOSQUITTO, &c, err, sizeof(err)) < 0);
	CU_ASSERT_TRUE(acl_export(&registry, &bad_user, ACL_FORMAT_MOSQUITTO, &c, err, sizeof(err)) < 0);
	CU_ASSERT_PTR_NULL(c);
	free(a);
	free(b);
}

/* A serial in two tenants (sql/013): one broker username cannot name both; serial@tenant names each. */
static void test_export_serial_in_two_tenants(void)
{
	static const char shared_file[] =
		"user mqtt2pg\ntopic read solar/+/+/#\nuser INV-B1\n"
		"topic write solar/beta/INV-B1/#\nuser inverter_1\n"
		"topic write solar/acme/inverter_1/#\ntopic write solar/beta/inverter_1/#\n";
	struct acl_device both[] = {
		{ .serial = "inverter_1", .tenant = "acme", .enabled = true },
		{ .serial = "inverter_1", .tenant = "beta", .enabled = true },
		{ .serial = "INV-B1", .tenant = "beta", .enabled = true },
	};
	struct acl_registry reg = {
		.devices = both, .device_count = 3, .tenants = tenants, .tenant_count = 3
	};
	struct acl_finding *fs = NULL;
	struct acl_file *f;
	char *text = NULL, err[512];
	bool cross = false;
	size_t n;

	CU_ASSERT_TRUE(acl_export(&reg, &policy, ACL_FORMAT_MOSQUITTO, &text, err, sizeof(err)) < 0);
	CU_ASSERT_PTR_NULL(text);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "serial 'inverter_1' is registered in tenants 'acme' and 'beta'"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "--username serial@tenant"));
	CU_ASSERT_TRUE(acl_export(&reg, &policy, ACL_FORMAT_DYNSEC, &text, err, sizeof(err)) < 0);
	/* One of them disabled: no clash (a disabled device gets no user). */
	both[1].enabled = false;
	CU_ASSERT_EQUAL(acl_export(&reg, &policy, ACL_FORMAT_MOSQUITTO, &text, err, sizeof(err)), 0);
	free(text);
	text = NULL;
	both[1].enabled = true;

	both[0].username = "inverter_1@acme";
	both[1].username = "inverter_1@beta";
	both[2].username = "INV-B1@beta";
	CU_ASSERT_EQUAL_FATAL(acl_export(&reg, &policy, ACL_FORMAT_MOSQUITTO, &text, err, sizeof(err)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "\nuser inverter_1@acme\ntopic write solar/acme/inverter_1/#\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "\nuser inverter_1@beta\ntopic write solar/beta/inverter_1/#\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "logs in with its <serial>@<tenant> as username"));
	/* What the export wrote is clean against the names it used, and not against plain serials. */
	f = acl_file_parse(text, strlen(text));
	n = acl_lint(f, &reg, &policy, &fs);
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, "\n  unexpected: %u %s", fs[i].line, fs[i].message);
	CU_ASSERT_EQUAL(n, 0);
	acl_findings_free(fs, n);
	both[0].username = both[1].username = both[2].username = NULL;
	n = acl_lint(f, &reg, &policy, &fs);
	CU_ASSERT_TRUE(n > 0);
	acl_findings_free(fs, n);
	acl_file_free(f);
	free(text);
	text = NULL;
	/* A hand-made file where the shared username inverter_1 writes both tenants' subtrees: each device
	 * behind that name may publish into the other tenant's tree. */
	f = acl_file_parse(shared_file, strlen(shared_file));
	n = acl_lint(f, &reg, &policy, &fs);
	for (size_t i = 0; i < n; i++)
		cross = cross || fs[i].kind == ACL_FINDING_CROSS_TENANT_WRITE;
	CU_ASSERT_TRUE(cross);
	acl_findings_free(fs, n);
	acl_file_free(f);

	/* dynsec: one client and one role per device, named apart. */
	both[0].username = "inverter_1@acme";
	both[1].username = "inverter_1@beta";
	CU_ASSERT_EQUAL_FATAL(acl_export(&reg, &policy, ACL_FORMAT_DYNSEC, &text, err, sizeof(err)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"mqtt2pg-device-inverter_1@acme\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"mqtt2pg-device-inverter_1@beta\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"username\":\t\"inverter_1@beta\""));
	free(text);
}

static void test_export_dynsec(void)
{
	char *text = NULL, err[256];
	cJSON *root, *clients, *roles, *role;

	CU_ASSERT_EQUAL_FATAL(acl_export(&registry, &policy, ACL_FORMAT_DYNSEC, &text, err, sizeof(err)), 0);
	root = cJSON_Parse(text);
	CU_ASSERT_PTR_NOT_NULL_FATAL(root);
	CU_ASSERT_TRUE(cJSON_IsFalse(
		cJSON_GetObjectItem(cJSON_GetObjectItem(root, "defaultACLAccess"), "publishClientSend")));
	clients = cJSON_GetObjectItem(root, "clients");
	roles = cJSON_GetObjectItem(root, "roles");
	CU_ASSERT_EQUAL(cJSON_GetArraySize(clients), 4); /* the bridge and three enabled devices */
	CU_ASSERT_EQUAL(cJSON_GetArraySize(roles), 4);
	CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(cJSON_GetArrayItem(clients, 1), "username")->valuestring,
			       "INV-A1");
	CU_ASSERT_PTR_NULL(cJSON_GetObjectItem(cJSON_GetArrayItem(clients, 1), "password"));
	/* The bridge may subscribe to the tree, also as a shared subscription, and receive from it. */
	CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetArrayItem(roles, 0), "acls")), 3);
	role = cJSON_GetArrayItem(roles, 1);
	CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(role, "rolename")->valuestring, "mqtt2pg-device-INV-A1");
	CU_ASSERT_STRING_EQUAL(
		cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(role, "acls"), 0), "topic")
			->valuestring,
		"solar/acme/INV-A1/#");
	cJSON_Delete(root);
	free(text);
}

/* The brief's loose file: a device may write solar/#, readwrite without a word, someone nobody knows. */
static void test_lint_loose(void)
{
	struct acl_finding *fs = NULL;
	size_t n = lint("user mqtt2pg\n"
			"topic read solar/+/+/#\n"
			"user INV-A1\n"
			"topic write solar/#\n" /* 4 */
			"user INV-A2\n"
			"topic solar/acme/+/#\n" /* 6: readwrite counts as write */
			"user INV-B1\n"
			"topic write solar/beta/INV-B1/#\n"
			"topic read solar/acme/#\n" /* 9 */
			"user INV-A3\n"		    /* 10: disabled */
			"topic write solar/acme/INV-A3/#\n"
			"user mallory\n" /* 12 */
			"topic write solar/beta/INV-B1/#\n",
			&fs);

	CU_ASSERT_TRUE(has(fs, n, 4, ACL_FINDING_WILDCARD_WRITE, "solar/#"));
	CU_ASSERT_TRUE(has(fs, n, 4, ACL_FINDING_CROSS_TENANT_WRITE, "INV-A1 (tenant acme)"));
	CU_ASSERT_TRUE(has(fs, n, 6, ACL_FINDING_CROSS_DEVICE_WRITE, "INV-A2"));
	CU_ASSERT_TRUE(has(fs, n, 9, ACL_FINDING_CROSS_TENANT_READ, "INV-B1"));
	CU_ASSERT_TRUE(has(fs, n, 10, ACL_FINDING_DISABLED_DEVICE, "INV-A3"));
	CU_ASSERT_TRUE(has(fs, n, 12, ACL_FINDING_UNKNOWN_USER, "mallory"));
	CU_ASSERT_EQUAL(n, 6);
	acl_findings_free(fs, n);
}

static void test_lint_patterns(void)
{
	struct acl_finding *fs = NULL;
	size_t n;

	/* %u at the serial level, any tenant: each device may write its own serial into every tenant's tree. */
	n = lint("user mqtt2pg\ntopic read solar/+/+/#\npattern write solar/+/%u/#\n", &fs);
	CU_ASSERT_TRUE(has(fs, n, 3, ACL_FINDING_PATTERN_WRITE, "3 device(s)"));
	CU_ASSERT_TRUE(has(fs, n, 3, ACL_FINDING_WILDCARD_WRITE, NULL));
	CU_ASSERT_EQUAL(n, 2); /* the bridge gets solar/+/mqtt2pg/# too, but patterns are judged by devices */
	acl_findings_free(fs, n);

	/* A pattern without %u or %c applies to every user alike. */
	n = lint(
		"user mqtt2pg\ntopic read solar/+/+/#\npattern write solar/acme/#\npattern write solar/beta/#\n",
		&fs);
	CU_ASSERT_TRUE(has(fs, n, 3, ACL_FINDING_PATTERN_WRITE, "INV-"));
	CU_ASSERT_TRUE(has(fs, n, 4, ACL_FINDING_PATTERN_WRITE, NULL));
	CU_ASSERT_FALSE(n > 0 &&
			fs[0].kind == ACL_FINDING_WILDCARD_WRITE); /* no wildcard at the tenant level */
	acl_findings_free(fs, n);

	/* The client id is the client's choice: %c at the serial level confines nothing. */
	n = lint(
		"user mqtt2pg\ntopic read solar/+/+/#\n"
		"user INV-A1\ntopic write solar/acme/INV-A1/#\nuser INV-A2\ntopic write solar/acme/INV-A2/#\n"
		"user INV-B1\ntopic write solar/beta/INV-B1/#\n"
		"pattern write solar/acme/%c/#\n",
		&fs);
	CU_ASSERT_TRUE(has(fs, n, 9, ACL_FINDING_PATTERN_WRITE, NULL));
	acl_findings_free(fs, n);
}

/* A pattern that names the tenant and confines by %u is fine when that tenant is the only one with
 * devices; a deny that removes what a broad grant would reach makes the grant harmless. */
static void test_lint_confined(void)
{
	const struct acl_device one_tenant[] = { devices[0], devices[1] };
	const struct acl_registry reg = {
		.devices = one_tenant, .device_count = 2, .tenants = tenants, .tenant_count = 1
	};
	const char *text = "user mqtt2pg\ntopic read solar/+/+/#\npattern write solar/acme/%u/#\n";
	struct acl_file *f = parse(text);
	struct acl_finding *fs = NULL;
	size_t n = acl_lint(f, &reg, &policy, &fs);

	CU_ASSERT_EQUAL(n, 0);
	acl_findings_free(fs, n);
	acl_file_free(f);

	n = lint(
		"user mqtt2pg\ntopic read solar/+/+/#\n"
		"user INV-A1\ntopic deny solar/beta/#\ntopic deny solar/gamma/#\ntopic deny solar/+/INV-A2/#\n"
		"topic deny solar/+/INV-B1/#\ntopic write solar/+/INV-A1/#\n"
		"user INV-A2\ntopic write solar/acme/INV-A2/#\nuser INV-B1\ntopic write solar/beta/INV-B1/#\n",
		&fs);
	/* solar/<any other tenant>/INV-A1 is still open: the denies name only the tenants known today. */
	CU_ASSERT_TRUE(has(fs, n, 8, ACL_FINDING_CROSS_TENANT_WRITE, "<other-tenant>"));
	CU_ASSERT_TRUE(has(fs, n, 8, ACL_FINDING_WILDCARD_WRITE, NULL));
	CU_ASSERT_EQUAL(n, 2);
	acl_findings_free(fs, n);
}

static void test_lint_reachability(void)
{
	struct acl_finding *fs = NULL;
	size_t n = lint("topic read $SYS/#\n" /* 1: anonymous */
			"user mqtt2pg\n"
			"topic readwrite solar/acme/+/#\n" /* 3: the bridge may write; misses beta */
			"user INV-A1\n"
			"topic write solar/acme/INV-A1/#\n"
			"topic deny solar/acme/INV-A1/telemetry\n" /* 6 */
			"user INV-B1\n"
			"topic write solar/beta/INV-B1/#\n",
			&fs);

	CU_ASSERT_TRUE(has(fs, n, 1, ACL_FINDING_ANONYMOUS, NULL));
	CU_ASSERT_TRUE(has(fs, n, 3, ACL_FINDING_BRIDGE_WRITE, "solar/acme/"));
	CU_ASSERT_TRUE(has(fs, n, 4, ACL_FINDING_NO_WRITE_RULE, "line 6 denies it"));
	CU_ASSERT_TRUE(has(fs, n, 0, ACL_FINDING_NO_WRITE_RULE, "INV-A2"));
	CU_ASSERT_TRUE(has(fs, n, 2, ACL_FINDING_BRIDGE_CANNOT_READ, "1 of 3"));
	CU_ASSERT_EQUAL(n, 5);
	/* Sorted by line, file-wide findings last. */
	CU_ASSERT_EQUAL(fs[0].line, 1);
	CU_ASSERT_EQUAL(fs[n - 1].line, 0);
	acl_findings_free(fs, n);

	n = lint("user mqtt2pg\ntopic read solar/+/+/#\n  # oops\n", &fs);
	CU_ASSERT_TRUE(has(fs, n, 3, ACL_FINDING_SYNTAX, NULL));
	acl_findings_free(fs, n);
}

int main(void)
{
	static const struct unit_test tests[] = {
		{ "filter validity", test_filter_valid },
		{ "topic matches filter", test_topic_matches },
		{ "filters overlap", test_filters_overlap },
		{ "filter covers filter", test_filter_covers },
		{ "acl_file parser", test_parse },
		{ "mosquitto's decision", test_decide },
		{ "export is lint-clean", test_export_is_clean },
		{ "export deterministic, names checked", test_export_deterministic_and_checked },
		{ "export dynsec", test_export_dynsec },
		{ "export: a serial in two tenants", test_export_serial_in_two_tenants },
		{ "lint: loose file", test_lint_loose },
		{ "lint: patterns", test_lint_patterns },
		{ "lint: confined pattern, denies", test_lint_confined },
		{ "lint: reachability", test_lint_reachability },
	};

	return unit_run("acl", NULL, NULL, tests, UNIT_COUNT(tests));
}
