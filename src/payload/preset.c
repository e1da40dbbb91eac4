// SPDX-License-Identifier: Apache-2.0
/*
 * preset: the table of presets (see preset.h; README "Presets" documents each). Each entry cites the document
 * its topic layout and payloads come from; the unit tests (tests/unit/test_formats.c) decode those documents'
 * examples through the expanded routes.
 */
#include "payload/preset.h"

#include <string.h>

#include "util/xalloc.h"

/*
 * OpenDTU, docs/MQTT_Topics.md (github.com/tbnobody/OpenDTU): <prefix>/<serial>/<channel>/<field>, plain
 * numbers ("solar/114172220003/0/power" = "73.4"); channel 0 is AC, 1.. the DC inputs. Not readings:
 * dtu/... (the DTU's own ip, rssi, status, uptime), <serial>/name, <serial>/device/..., <serial>/status/... (reachable,
 * producing, last_update), <serial>/cmd/... (commands), ac/... and dc/... (totals over all inverters),
 * <serial>/radio/... (the radio's request/success counters and rssi: the DTU's bookkeeping, not the plant's).
 */
static const char *const opendtu_ignore[] = {
	"{prefix}/dtu/#",      "{prefix}/+/name",    "{prefix}/+/status/#",
	"{prefix}/+/device/#", "{prefix}/+/cmd/#",   "{prefix}/ac/#",
	"{prefix}/dc/#",       "{prefix}/+/radio/#", NULL
};

/*
 * AhoyDTU, User_Manual.md (github.com/lumapu/ahoy): <prefix>/<inverter name>/ch<N>/<Field> ("inverter/HM-600/
 * ch0/P_AC" = "71.000"); the device is the inverter's configured name. Not readings: <prefix>/<x> (the DTU's
 * uptime, version, status, wifi_rssi, ...), <name>/available, <name>/last_success, <name>/ack_pwr_limit, and
 * the command trees devcontrol/ and ctrl/; in ch0, the inverter's information packet (src/hm/hmDefines.h:
 * FWVersion, FWBuildYear, FWBuildMonthDay, FWBuildHourMinute, BootloaderVersion, HWPartId, HWVersion,
 * GridProfileCode, GridProfileVersion) and the alarm counter ALARM_MES_ID: firmware bookkeeping.
 */
static const char *const ahoy_ignore[] = { "{prefix}/+",
					   "{prefix}/+/available",
					   "{prefix}/+/last_success",
					   "{prefix}/+/ack_pwr_limit",
					   "{prefix}/devcontrol/#",
					   "{prefix}/ctrl/#",
					   "{prefix}/total/#",
					   "{prefix}/+/ch0/ALARM_MES_ID",
					   "{prefix}/+/ch0/FWVersion",
					   "{prefix}/+/ch0/FWBuildYear",
					   "{prefix}/+/ch0/FWBuildMonthDay",
					   "{prefix}/+/ch0/FWBuildHourMinute",
					   "{prefix}/+/ch0/BootloaderVersion",
					   "{prefix}/+/ch0/HWPartId",
					   "{prefix}/+/ch0/HWVersion",
					   "{prefix}/+/ch0/GridProfileCode",
					   "{prefix}/+/ch0/GridProfileVersion",
					   NULL };

/*
 * deye-inverter-mqtt, README.md and docs/metric_group_*.md (github.com/kbialek/deye-inverter-mqtt):
 * deye/<metric topic suffix> ("deye/ac/l1/voltage" = "230.1", "deye/day_energy"); neither topic nor payload
 * names the inverter, so the route's serial does. Not readings: status and logger_status (online/offline),
 * settings/... (active power regulation commands), uptime (the inverter's minutes since start: bookkeeping).
 */
static const char *const deye_ignore[] = { "{prefix}/status", "{prefix}/logger_status", "{prefix}/settings/#",
					   "{prefix}/uptime", NULL };

/*
 * Victron Venus OS dbus-mqtt, README.md (github.com/victronenergy/dbus-mqtt):
 * N/<portal ID>/<service type>/<device instance>/<D-Bus path> with {"value": ...}, retained by the broker.
 * The device is the portal ID; the point is "<service>/<instance>/<path>" ("system/0/Dc/Battery/Voltage").
 * Not readings: settings/0/Settings/... (configuration), and each service's bookkeeping paths of the D-Bus
 * API (DeviceInstance, ProductId, FirmwareVersion, HardwareVersion, Connected, Mgmt/...).
 */
static const char *const victron_ignore[] = {
	"{prefix}/+/keepalive",		  "{prefix}/+/full_publish_completed",
	"{prefix}/+/settings/#",	  "{prefix}/+/+/+/DeviceInstance",
	"{prefix}/+/+/+/ProductId",	  "{prefix}/+/+/+/FirmwareVersion",
	"{prefix}/+/+/+/HardwareVersion", "{prefix}/+/+/+/Connected",
	"{prefix}/+/+/+/Mgmt/#",	  NULL
};

/*
 * Tasmota, docs "MQTT" and "JSON Status Responses" (tasmota.github.io/docs): tele/<topic>/SENSOR with
 * {"Time":"2018-01-17T18:59:50","ENERGY":{"Total":1.956,"Power":9,...}}; "Time" is local time without a zone.
 * Not readings: tele/<topic>/LWT (Online/Offline), STATE, INFO*, and cmnd/ and stat/ (not subscribed).
 */
static const char *const tasmota_ignore[] = { "{prefix}/+/LWT",	  "{prefix}/+/STATE", "{prefix}/+/INFO1",
					      "{prefix}/+/INFO2", "{prefix}/+/INFO3", NULL };

/*
 * Shelly Gen2, "Notifications" and "MQTT" (shelly-api-docs.shelly.cloud/gen2): <id>/events/rpc carries
 * NotifyStatus frames ({"method":"NotifyStatus","params":{"ts":...,"switch:0":{"apower":...}}}); with "generic
 * status update over MQTT" on, <id>/status/<component> carries the component's status object. <id>/online
 * (true/false) is availability. Not readings: the components sys (uptime, ram, fs, *_rev counters), wifi
 * (rssi), cloud, mqtt, ble, eth, ws, and in every component its "id" and the energy counters' bookkeeping
 * (aenergy.minute_ts, and by_minute: the last three minutes' energy, shifted every minute, so a value's
 * index does not name a fixed time).
 */
static const char *const shelly_ignore[] = { "{prefix}/online", NULL };
static const char *const shelly_status_ignore[] = {
	"{prefix}/online",	 "{prefix}/status/sys",	 "{prefix}/status/wifi",
	"{prefix}/status/cloud", "{prefix}/status/mqtt", "{prefix}/status/ble",
	"{prefix}/status/eth",	 "{prefix}/status/ws",	 NULL
};
static const char *const shelly_ignore_points[] = { "+/id",
						    "+/aenergy/minute_ts",
						    "+/aenergy/by_minute/#",
						    "+/ret_aenergy/minute_ts",
						    "+/ret_aenergy/by_minute/#",
						    "sys/#",
						    "wifi/#",
						    "cloud/#",
						    "mqtt/#",
						    "ble/#",
						    "eth/#",
						    "ws/#",
						    NULL };

/*
 * Telegraf's MQTT output (docs.influxdata.com/telegraf/v1/output-plugins/mqtt/): topic
 * telegraf/<host>/<plugin>; data_format "influx" (timestamps in ns) or "json" (json_timestamp_units, default
 * 1s). The device is the "host" tag every Telegraf metric carries (the topic's host level says the same for
 * the default topic, but not for a custom one, and a route may name another tag: serial_tag = "name").
 */
static const char *const none_ignore[] = { NULL };

static const struct preset presets[] = {
	{ .name = "opendtu",
	  .topic = "{prefix}/{serial}/{point+}",
	  .prefix = "solar",
	  .format = ROUTE_FORMAT_VALUE,
	  .ignore = opendtu_ignore,
	  .ignore_retained = true,
	  .ignore_non_numeric = true },
	{ .name = "ahoydtu",
	  .topic = "{prefix}/{serial}/{point+}",
	  .prefix = "inverter",
	  .format = ROUTE_FORMAT_VALUE,
	  .ignore = ahoy_ignore,
	  .ignore_retained = true,
	  .ignore_non_numeric = true },
	{ .name = "deye",
	  .topic = "{prefix}/{point+}",
	  .prefix = "deye",
	  .format = ROUTE_FORMAT_VALUE,
	  .ignore = deye_ignore,
	  .ignore_retained = true,
	  .ignore_non_numeric = true,
	  .needs_serial = true },
	{ .name = "victron",
	  .topic = "{prefix}/{serial}/{point+}",
	  .prefix = "N",
	  .format = ROUTE_FORMAT_VALUE_JSON,
	  .ignore = victron_ignore,
	  .ignore_retained = true,
	  .ignore_non_numeric = true },
	{ .name = "tasmota",
	  .topic = "{prefix}/{serial}/SENSOR",
	  .prefix = "tele",
	  .format = ROUTE_FORMAT_FLAT_JSON,
	  .ignore = tasmota_ignore,
	  .ignore_retained = true,
	  .time_field = "Time",
	  .time_unit = ROUTE_TIME_RFC3339,
	  .needs_timezone = true },
	{ .name = "shelly",
	  .topic = "{prefix}/events/rpc",
	  .prefix = "{serial}",
	  .format = ROUTE_FORMAT_SHELLY_RPC,
	  .ignore = shelly_ignore,
	  .ignore_retained = true,
	  .ignore_points = shelly_ignore_points },
	{ .name = "shelly_status",
	  .topic = "{prefix}/status/{point}",
	  .prefix = "{serial}",
	  .format = ROUTE_FORMAT_FLAT_JSON,
	  .ignore = shelly_status_ignore,
	  .ignore_retained = true,
	  .ignore_points = shelly_ignore_points },
	{ .name = "telegraf",
	  .topic = "{prefix}/+/+",
	  .serial_tag = "host",
	  .prefix = "telegraf",
	  .format = ROUTE_FORMAT_INFLUX,
	  .ignore = none_ignore,
	  .point = "{measurement}.{field}",
	  .precision = "ns" },
	{ .name = "telegraf_json",
	  .topic = "{prefix}/+/+",
	  .serial_tag = "host",
	  .prefix = "telegraf",
	  .format = ROUTE_FORMAT_TELEGRAF_JSON,
	  .ignore = none_ignore,
	  .point = "{measurement}.{field}",
	  .precision = "s" },
};

const struct preset *preset_find(const char *name)
{
	for (size_t i = 0; i < sizeof(presets) / sizeof(presets[0]); i++)
		if (strcmp(presets[i].name, name) == 0)
			return &presets[i];
	return NULL;
}

const char *preset_names(void)
{
	return "opendtu, ahoydtu, deye, victron, tasmota, shelly, shelly_status, telegraf, telegraf_json";
}

char *preset_expand(const char *text, const char *prefix)
{
	size_t cap = strlen(text) + 1, len = 0;
	char *out;

	for (const char *p = strstr(text, "{prefix}"); p; p = strstr(p + 8, "{prefix}"))
		cap += strlen(prefix);
	out = xmalloc(cap);
	while (*text) {
		if (strncmp(text, "{prefix}", 8) == 0) {
			memcpy(out + len, prefix, strlen(prefix));
			len += strlen(prefix);
			text += 8;
		} else {
			out[len++] = *text++;
		}
	}
	out[len] = '\0';
	return out;
}
