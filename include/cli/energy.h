/* SPDX-License-Identifier: Apache-2.0 */
/*
 * energy: `mqtt2pg energy --tenant SLUG --from DATE --to DATE [--point NAME]`, the daily energy of a tenant's
 * counter points per device and local day (the daily rollups of sql/014_energy.sql, through the
 * energy_daily view), and the tenant's total per day: a quick look without Grafana.
 */
#ifndef MQTT2PG_ENERGY_H
#define MQTT2PG_ENERGY_H

/*
 * Runs the command (argv[0] is the first option) as the owner role on conninfo (borrowed). --from and --to are
 * local dates of the tenant's time zone, --to exclusive. Returns the process exit code; errors go to stderr.
 */
int energy_command(const char *conninfo, int argc, char **argv) __attribute__((warn_unused_result));

#endif
