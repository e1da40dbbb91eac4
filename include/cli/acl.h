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
 * The parts, each pure (no database, no files) and unit-tested in tests/unit/test_acl.c, and each with its
 * header: acl_file.h (the acl_file parser and Mosquitto's decision), acl_lint.h (the check), acl_export.h
 * (the export), acl_registry.h (what both know of the registry). This header includes them, so that a user
 * of the ACL tools includes one file; acl.c is only the command: arguments, the database, the files.
 */
#ifndef MQTT2PG_ACL_H
#define MQTT2PG_ACL_H

#include "cli/acl_export.h"
#include "cli/acl_file.h"
#include "cli/acl_lint.h"

/* ---- The command ---- */

/* `acl export ...` / `acl check FILE ...` (argv[0] is the verb), run as the owner on conninfo. Returns the
 * exit code: export 0 / 1 (database or file error) / 2 (usage); check 0 (safe) / 1 (findings) / 2 (usage,
 * file or database error). Errors go to stderr. */
int acl_command(const char *conninfo, int argc, char **argv) __attribute__((warn_unused_result));

#endif
