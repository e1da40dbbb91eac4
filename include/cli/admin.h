/* SPDX-License-Identifier: Apache-2.0 */
/*
 * admin: the operator's commands on the registry (`mqtt2pg tenant|device|point ...`). They run as the
 * owner role (database.admin_conninfo, $MQTT2PG_ADMIN_CONNINFO or --db) and print plain tables.
 * Registry changes reach running bridges by NOTIFY within moments; no restart needed.
 */
#ifndef MQTT2PG_ADMIN_H
#define MQTT2PG_ADMIN_H

/* Runs `noun argv...` (argv[0] is the verb). Returns the process exit code; errors go to stderr. */
int admin_tenant(const char *conninfo, int argc, char **argv) __attribute__((warn_unused_result));
int admin_device(const char *conninfo, int argc, char **argv) __attribute__((warn_unused_result));
int admin_point(const char *conninfo, int argc, char **argv) __attribute__((warn_unused_result));
/* `aggregate rebuild --from T1 --to T2 [--tenant SLUG]`: recomputes the 5-minute aggregates of a range. */
int admin_aggregate(const char *conninfo, int argc, char **argv) __attribute__((warn_unused_result));

#endif
