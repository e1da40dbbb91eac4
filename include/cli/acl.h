/* SPDX-License-Identifier: Apache-2.0 */
/*
 * acl: the broker's access control, derived from the device registry.
 *
 * The broker is the first line of defence against a device publishing as another: `mqtt2pg acl export` writes
 * a Mosquitto acl_file (or dynamic-security JSON) in which each enabled device (its broker username is its
 * serial) may publish only into its own subtree <prefix>/<tenant>/<serial>/# and the bridge's user may read
 * the route tree <prefix>/+/+/#; nothing else is granted. `mqtt2pg acl check FILE` lints a hand-tuned
 * acl_file against the registry: every way a device could publish into another tenant's (or device's) tree,
 * wildcard grants that span tenants, patterns that do not confine each user to its own subtree, rules for
 * users nobody registered, devices that cannot publish at all. Behind the broker, the bridge still rejects
 * a spoofed message (tenant_mismatch) and PostgreSQL's RLS refuses a row for the wrong tenant.
 *
 * A serial is unique within its tenant only (sql/013), but a broker username is one name for the whole
 * broker. By default a device's username is its serial, and the export refuses a serial that two tenants'
 * enabled devices share; `--username serial@tenant` names every device <serial>@<tenant> ('@' is in neither
 * alphabet, so the name is unambiguous and never another device's serial). Both commands take the option, so
 * that the check reads the file with the names the export wrote. It is not chosen per device automatically:
 * registering a serial in a second tenant must not rename the first tenant's login.
 *
 * The check reasons exactly as Mosquitto 2.0 decides (deny rules first, then the user's grants, then
 * patterns; `topic` without an access word is readwrite): for each user it enumerates one representative
 * topic of every class the file's filters can tell apart, and asks the same decision of each. A client id
 * (%c) is chosen by the client, so a pattern level holding %c counts as "any one or more levels".
 *
 * Patterns apply to every client. %u is the username the broker authenticated (the device's serial, or
 * serial@tenant), so
 * a level "%u" can pin the serial level; but no substitution names the tenant, and %c is whatever client id
 * the client sends. The rule: a pattern that grants write is accepted only if, for every enabled device, what
 * it grants that device inside the route tree stays inside the device's own subtree. So
 * `pattern write solar/+/%u/#` is reported (each device may publish its own serial into every tenant's tree:
 * the bridge rejects that as tenant_mismatch, but other subscribers of that tenant's tree receive it),
 * `pattern write solar/acme/%u/#` is accepted while acme is the only tenant with devices, and a pattern whose
 * serial or tenant level holds %c never confines anything.
 *
 * Only the route tree <prefix>/{tenant}/{serial}/... is understood (the default route); routes with other
 * templates are not.
 *
 * Everything except acl_command() is pure (no database, no files) and unit-tested in tests/unit/test_acl.c.
 */
#ifndef MQTT2PG_ACL_H
#define MQTT2PG_ACL_H

#include <stdbool.h>
#include <stddef.h>

/* ---- MQTT topic filters (pure) ---- */

/* True if filter is a valid MQTT subscription filter, as Mosquitto checks ACL topics: non-empty, '+' and '#'
 * only as a whole level, '#' only last. */
bool acl_filter_valid(const char *filter);

/* True if the topic name (no wildcards) matches filter. MQTT rules: '+' is one level, '#' any number of levels
 * including none ("a/#" matches "a"), and a topic starting with '$' is matched only by a filter whose first
 * level is literal. */
bool acl_topic_matches(const char *filter, const char *topic);

/* True if some topic name matches both filters. */
bool acl_filters_overlap(const char *a, const char *b);

/* True if every topic name that matches inner also matches outer (inner's topics are a subset of outer's). */
bool acl_filter_covers(const char *outer, const char *inner);

/* ---- Mosquitto acl_file ---- */

enum {
	ACL_ACCESS_DENY = 0, /* `topic deny` / `pattern deny` */
	ACL_ACCESS_READ = 1,
	ACL_ACCESS_WRITE = 2,
};

struct acl_rule {
	unsigned line; /* 1-based line in the file */
	bool pattern;  /* a `pattern` line: applies to every client, %u and %c substituted */
	char *user; /* owner of a `topic` line; NULL: anonymous (before any `user` line), and for patterns */
	unsigned access; /* ACL_ACCESS_READ | ACL_ACCESS_WRITE, or ACL_ACCESS_DENY */
	char *filter;
	char *text; /* the line as written, for messages */
};

struct acl_user_line {
	unsigned line;
	char *name;
};

struct acl_syntax_error {
	unsigned line;
	char *message;
};

/* A parsed acl_file: a plain value, everything in it owned. */
struct acl_file {
	struct acl_rule *rules; /* in file order; lines with errors are not rules */
	size_t rule_count;
	struct acl_user_line *users; /* every `user` line */
	size_t user_count;
	struct acl_syntax_error
		*errors; /* lines Mosquitto 2.0 refuses (it would not start), and lines it reads
					    differently than they look */
	size_t error_count;
};

/* Parses len bytes of acl_file text the way Mosquitto 2.0 does: '#' in the first column is a comment, words
 * are separated by spaces only (a tab is part of the word), `user NAME`, `topic [read|write|readwrite|deny]
 * FILTER`, `pattern [...] FILTER`. Never fails: problems are recorded in ->errors. Returns an owned file. */
struct acl_file *acl_file_parse(const char *text, size_t len);

/* Frees f and everything in it; NULL is a no-op. */
void acl_file_free(struct acl_file *f);

struct acl_decision {
	bool allowed;
	unsigned line; /* the rule that decided (granted or denied); 0: no rule matched, denied by default */
};

/* Mosquitto 2.0's decision for a client with username (NULL: anonymous) asking access (ACL_ACCESS_READ or
 * ACL_ACCESS_WRITE) to topic: the user's deny rules, then its grants, then deny patterns, then patterns.
 * A %c level in a pattern matches any levels (the client picks its id); deny patterns with %c are skipped
 * (a client picks an id they do not match). */
struct acl_decision acl_decide(const struct acl_file *f, const char *username, const char *topic,
			       unsigned access);

/* ---- The registry and the lint ---- */

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
	       char **out, char *err, size_t errlen);

/* ---- The command ---- */

/* `acl export ...` / `acl check FILE ...` (argv[0] is the verb), run as the owner on conninfo. Returns the
 * exit code: export 0 / 1 (database or file error) / 2 (usage); check 0 (safe) / 1 (findings) / 2 (usage,
 * file or database error). Errors go to stderr. */
int acl_command(const char *conninfo, int argc, char **argv);

#endif
