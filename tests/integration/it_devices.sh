#!/usr/bin/env bash
# it_devices.sh - every reading real devices send (issue 15), against real PostgreSQL 15 and Mosquitto:
# each family of tests/fixtures/devices/ (OpenDTU, AhoyDTU, Shelly Gen2, Victron, Tasmota, Telegraf, a deye
# logger, a cloud poller, our envelope) is configured as its README section says, every fixture message is
# published, and the rows stored for the family's devices are compared with its `expected` file exactly.
# Per family it prints messages, readings expected, stored correctly, junk (a row no fixture expects, or a
# wrong value) and duplicates (a reading stored more than once); it passes only with all expected, no junk and
# no duplicates. DEVICES_BASELINE=1 uses each family's routes.v0 (the configuration the README allowed before
# issue 15) and reports without failing: the numbers for the code as it was.
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
. "$here/lib.sh"
. "$here/bridge.sh"
fixtures=$(cd "$here/../fixtures/devices" && pwd)
# The envelope's route first (README default), so that OpenDTU's solar/+/# overlaps it as in the field.
families="envelope opendtu ahoy shelly victron tasmota telegraf deye poller"
baseline=${DEVICES_BASELINE:-0}

it_setup devices
pg_start
mosq_start
db_prepare

m2p_admin tenant add acme >/dev/null
routes=
for f in $families; do
	while read -r serial; do
		m2p_admin device add "$serial" --tenant acme >/dev/null
	done <"$fixtures/$f/devices"
	if [ -f "$fixtures/$f/aliases" ]; then
		while read -r alias serial; do
			m2p_admin device alias add "$alias" "$serial" --tenant acme >"$IT_DIR/alias.log" 2>&1 ||
				it_log "device alias add $alias failed: $(cat "$IT_DIR/alias.log")"
		done <"$fixtures/$f/aliases"
	fi
	file=$fixtures/$f/routes
	[ "$baseline" = 1 ] && [ -f "$fixtures/$f/routes.v0" ] && file=$fixtures/$f/routes.v0
	while IFS= read -r line; do
		routes+="${routes:+,
}  $line"
	done <"$file"
done
# sql/013 replayed by hand changes nothing (it looks the old constraint up and adds the new one only when missing).
constraints() { psql_super "SELECT string_agg(conname, ',' ORDER BY conname) FROM pg_constraint WHERE conrelid = 'devices'::regclass AND contype = 'u'"; }
before=$(constraints)
psql_as "$OWNER_DB" "$(cat "${MQTT2PG_SOURCE_DIR:-$here/../..}/sql/013_serial_per_tenant.sql")" >/dev/null
assert_eq "devices_id_tenant_key,devices_tenant_serial_key" "$before" "devices: unique (id, tenant_id) and (tenant_id, serial), no global serial"
assert_eq "$before" "$(constraints)" "sql/013 applied again changes nothing"
# Serials are unique per tenant (sql/013): globex has an inverter_1 too (the poller family's is acme's), and
# initech has none. Before sql/013 the second `device add` was refused (devices_serial_key).
m2p_admin tenant add globex >/dev/null
m2p_admin tenant add initech >/dev/null
m2p_admin device add inverter_1 --tenant globex --point ac_power >"$IT_DIR/dup.log" 2>&1 ||
	fail "a second tenant cannot register inverter_1: $(cat "$IT_DIR/dup.log")"

port=$(free_port)
conf=$IT_DIR/bridge.conf
bridge_config "$conf" "http = { listen = \"127.0.0.1\"; port = $port; };" \
	'validation = { unknown_points = "register"; max_points_per_device = 200; };' \
	"routes = (
$routes,
  { topic = \"it/{tenant}/{serial}/{point}\"; format = \"value\"; }
);"
"$MQTT2PG_BIN" -c "$conf" check-config >"$IT_DIR/check.log" 2>&1 || { cat "$IT_DIR/check.log" >&2; fail "check-config refused the fixtures' routes"; }
bridge_start "$conf"
url=http://127.0.0.1:$port
metric() { curl -s "$url/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
# The sum over every label of a metric (rejected_total{reason=...}).
metric_sum() { curl -s "$url/metrics" | awk -v m="$1" 'index($1, m "{") == 1 || $1 == m { s += $2 } END { print s + 0 }'; }

all_decided_now() {
	local m
	m=$(curl -s "$url/metrics")
	awk '$1 == "mqtt2pg_messages_received_total" { r = $2 }
		$1 == "mqtt2pg_messages_accepted_total" || index($1, "mqtt2pg_messages_rejected_total{") == 1 ||
		index($1, "mqtt2pg_messages_ignored_total{") == 1 { d += $2 }
		END { exit !(d >= r) }' <<<"$m"
}
# counters: every labelled counter of what became of the messages (ignored, rejected by reason, values skipped).
counters() {
	curl -s "$url/metrics" | grep -E '^mqtt2pg_(messages_(ignored|rejected)_total|values_skipped_total)\{' |
		sed -E 's/^mqtt2pg_messages_ignored_total\{reason="([^"]*)"\}/ignored:\1/;
			s/^mqtt2pg_messages_rejected_total\{reason="([^"]*)"\}/rejected:\1/;
			s/^mqtt2pg_values_skipped_total\{reason="([^"]*)"\}/skipped:\1/' | LC_ALL=C sort
}
# delta BEFORE AFTER KIND: "reason=n,reason=n" of KIND (ignored, rejected, skipped) that changed between the
# two snapshots, or "-".
delta() {
	LC_ALL=C join -a 2 -e 0 -o 0,1.2,2.2 "$1" "$2" | awk -v k="$3:" 'index($1, k) == 1 && $3 - $2 > 0 {
		out = out (out == "" ? "" : ",") substr($1, length(k) + 1) "=" $3 - $2 } END { print out == "" ? "-" : out }'
}

ts=$(($(date -u +%s) - 60))
local_time=$(TZ=Europe/Berlin date -d "@$ts" +%Y-%m-%dT%H:%M:%S)
total=0
counters >"$IT_DIR/counters.start"
prev=$IT_DIR/counters.start
for f in $families; do
	while IFS= read -r line; do
		topic=${line%% *}
		payload=${line#"$topic"}
		payload=${payload# }
		payload=${payload//@TSNS@/${ts}000000000}
		payload=${payload//@TSMS@/${ts}000}
		payload=${payload//@TS@/$ts}
		payload=${payload//@LOCAL@/$local_time}
		if [ -z "$payload" ]; then
			mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t "$topic" -n
		else
			printf '%s' "$payload" >"$IT_DIR/payload"
			publish_file "$topic" "$IT_DIR/payload"
		fi
		total=$((total + 1))
	done <"$fixtures/$f/messages"
	# The family's own sentinel: once its rejection is recorded, the broker (in order) has delivered every
	# message of the family, so the counters' change since the last sentinel is this family's (less the
	# sentinel's own unknown_device).
	publish "it/acme/SENTINEL-$f/x" 1
	wait_until 60 rejected_ge 1 "topic = 'it/acme/SENTINEL-$f/x'" || fail "$f: the sentinel was not recorded"
	wait_until 30 all_decided_now || fail "$f: not every message decided"
	counters | awk '$1 == "rejected:unknown_device" { $2 -= 1 } { print }' >"$IT_DIR/counters.$f"
	# the next family's baseline includes this family's sentinel
	counters >"$IT_DIR/counters.$f.next"
	echo "$(delta "$prev" "$IT_DIR/counters.$f" ignored)" >"$IT_DIR/$f.ignored"
	echo "$(delta "$prev" "$IT_DIR/counters.$f" rejected)" >"$IT_DIR/$f.rejected"
	echo "$(delta "$prev" "$IT_DIR/counters.$f" skipped)" >"$IT_DIR/$f.skipped"
	prev=$IT_DIR/counters.$f.next
done

# globex's inverter_1 publishes too (through the value route), and initech's tree names an inverter_1 that
# only other tenants have: spoofing (tenant_mismatch).
publish it/globex/inverter_1/ac_power 200
publish it/initech/inverter_1/ac_power 300
# A last message to an unknown device: once its rejection is recorded, the broker (one subscriber, in order)
# has delivered everything published before it. Then every received copy decided, and the spool drained.
publish it/acme/SENTINEL/x 1
wait_until 60 rejected_ge 1 "topic = 'it/acme/SENTINEL/x'" || fail "the sentinel message was not recorded"
decided() { echo $(($(metric mqtt2pg_messages_accepted_total) + $(metric_sum mqtt2pg_messages_rejected_total) + $(metric_sum mqtt2pg_messages_ignored_total))); }
all_decided() { [ "$(decided)" -ge "$(metric mqtt2pg_messages_received_total)" ]; }
committed() { [ "$(metric mqtt2pg_spool_backlog)" = 0 ] && [ "$(metric mqtt2pg_queue_depth)" = 0 ]; }
wait_until 60 all_decided || fail "received $(metric mqtt2pg_messages_received_total), decided $(decided)"
wait_until 60 committed || fail "spool backlog $(metric mqtt2pg_spool_backlog) did not drain"

bad=0
printf '%-9s %8s %8s %7s %5s %10s  %s\n' family messages expected stored junk duplicates 'ignored | rejected | values skipped (by reason)'
sum_m=0 sum_e=0 sum_s=0 sum_j=0 sum_d=0
for f in $families; do
	serials=$(sed "s/.*/'&'/" "$fixtures/$f/devices" | paste -sd,)
	psql_super "SELECT d.serial || '|' || p.name || '|' || m.value FROM measurements m
		JOIN devices d ON d.id = m.device_id JOIN points p ON p.id = m.point_id
		JOIN tenants t ON t.id = d.tenant_id
		WHERE t.slug = 'acme' AND d.serial IN ($serials) ORDER BY 1" >"$IT_DIR/$f.stored"
	sort "$fixtures/$f/expected" >"$IT_DIR/$f.expected"
	msgs=$(wc -l <"$fixtures/$f/messages")
	exp=$(wc -l <"$IT_DIR/$f.expected")
	# stored correctly: expected rows found (each once); duplicates: an expected row found again; junk: the rest.
	ok=$(sort -u "$IT_DIR/$f.stored" | comm -12 - "$IT_DIR/$f.expected" | wc -l)
	dup=$(sort "$IT_DIR/$f.stored" | uniq -d | comm -12 - "$IT_DIR/$f.expected" | wc -l)
	dup=$((dup + $(sort "$IT_DIR/$f.stored" | uniq -c | awk '$1 > 2 { s += $1 - 2 } END { print s + 0 }')))
	junk=$(sort -u "$IT_DIR/$f.stored" | comm -23 - "$IT_DIR/$f.expected" | wc -l)
	printf '%-9s %8d %8d %7d %5d %10d  %s | %s | %s\n' "$f" "$msgs" "$exp" "$ok" "$junk" "$dup" \
		"$(cat "$IT_DIR/$f.ignored")" "$(cat "$IT_DIR/$f.rejected")" "$(cat "$IT_DIR/$f.skipped")"
	sort -u "$IT_DIR/$f.stored" | comm -23 - "$IT_DIR/$f.expected" | sed 's/^/    junk: /' | head -20
	comm -13 <(sort -u "$IT_DIR/$f.stored") "$IT_DIR/$f.expected" | sed 's/^/    missing: /' | head -40
	[ "$ok" = "$exp" ] && [ "$junk" = 0 ] && [ "$dup" = 0 ] || bad=$((bad + 1))
	sum_m=$((sum_m + msgs)) sum_e=$((sum_e + exp)) sum_s=$((sum_s + ok)) sum_j=$((sum_j + junk)) sum_d=$((sum_d + dup))
done
printf '%-9s %8d %8d %7d %5d %10d\n' total "$sum_m" "$sum_e" "$sum_s" "$sum_j" "$sum_d"
curl -s "$url/metrics" | grep -E '^mqtt2pg_(messages_(ignored|rejected)_total|values_skipped_total)\{' | sed 's/^/    /'

overlap=$(metric 'mqtt2pg_messages_ignored_total{reason="overlap_copy"}')
bridge_stop
assert_eq 0 "$BRIDGE_RC" "clean exit"
if [ "$baseline" = 1 ]; then
	echo "baseline: $bad of $(echo $families | wc -w) families incomplete (not a failure in baseline mode)"
	exit 0
fi
assert_eq 0 "$bad" "every family: all expected readings stored, no junk, no duplicates"
# The envelope's route overlaps OpenDTU's solar/+/#: check-config says so, and the broker's second copy of each
# of the 3 envelope messages was ignored as overlap_copy (MQTT 5 subscription identifiers).
grep -q "warning: routes\[0\] (solar/+/+/telemetry) and routes\[1\] (solar/+/#) overlap: e.g. solar/x/x/telemetry" \
	"$IT_DIR/check.log" || fail "check-config did not report the overlap: $(cat "$IT_DIR/check.log")"
echo "ok: check-config reports the overlapping routes with an example topic"
assert_eq 3 "$overlap" "each overlapping copy ignored as overlap_copy"
# One serial, two tenants: each reading under its own tenant's device, the row's tenant the device's; the
# third tenant's copy refused. The poller's acme rows were checked above (acme's inverter_1 only).
assert_eq "globex|inverter_1|ac_power|200" "$(psql_super "SELECT t.slug || '|' || d.serial || '|' || p.name || '|' || m.value
	FROM measurements m JOIN devices d ON d.id = m.device_id JOIN points p ON p.id = m.point_id
	JOIN tenants t ON t.id = m.tenant_id WHERE t.slug <> 'acme'")" "globex's inverter_1 reading, in globex"
assert_eq "acme|612" "$(psql_super "SELECT DISTINCT t.slug || '|' || m.value FROM measurements m
	JOIN devices d ON d.id = m.device_id JOIN points p ON p.id = m.point_id JOIN tenants t ON t.id = m.tenant_id
	WHERE d.serial = 'inverter_1' AND p.name = 'ac_power' AND t.slug = 'acme'")" "acme's inverter_1 ac_power, in acme"
assert_eq 0 "$(psql_super "SELECT count(*) FROM measurements m JOIN devices d ON d.id = m.device_id
	WHERE m.tenant_id <> d.tenant_id")" "every row in its device's tenant"
assert_eq "tenant_mismatch|initech|inverter_1" "$(psql_super "SELECT reason || '|' || tenant_slug || '|' || serial
	FROM rejected_messages WHERE topic = 'it/initech/inverter_1/ac_power'")" "initech's inverter_1: spoofing"
psql_super "SELECT detail FROM rejected_messages WHERE topic = 'it/initech/inverter_1/ac_power'" | grep -q "2 other tenants" ||
	fail "the rejection does not say the serial is other tenants'"
# Isolation is per tenant, not per serial: a row for globex's inverter_1 under acme's context is refused.
GA=$(psql_super "SELECT id FROM tenants WHERE slug = 'acme'")
GD=$(psql_super "SELECT d.id FROM devices d JOIN tenants t ON t.id = d.tenant_id WHERE t.slug = 'globex' AND d.serial = 'inverter_1'")
GP=$(psql_super "SELECT id FROM points WHERE device_id = $GD AND name = 'ac_power'")
GB=$(psql_super "SELECT id FROM tenants WHERE slug = 'globex'")
as_acme() { psql_as "$WRITER_DB" "BEGIN" "SELECT set_config('app.tenant_id', '$GA', true)" "$@" "COMMIT" | sed 1d; }
# The writer reads nothing (sql/015: no privilege on measurements); its only way in, write_readings(), refuses a
# row of globex's inverter_1 under acme's context (the dirty mark's (device, tenant) key or its policy refuses it).
if as_acme "SELECT count(*) FROM write_readings($GA, ARRAY[(extract(epoch FROM now()) * 1000000)::bigint], ARRAY[$GD], ARRAY[$GP], ARRAY[1]::float8[])" \
	>/dev/null 2>"$IT_DIR/rls.err"; then
	fail "acme's context wrote a row for globex's inverter_1"
fi
grep -qE "aggregate_dirty_device_tenant_fkey|row-level security policy" "$IT_DIR/rls.err" || fail "refused, but not by the device's tenant: $(cat "$IT_DIR/rls.err")"
echo "ok: acme's context cannot write a row for globex's inverter_1 (same serial, other tenant)"
echo "ok: inverter_1 in acme and globex, each reading in its tenant, initech's refused, RLS per tenant"
# Auto-registered points take their unit and kind from point_defaults (sql/011).
assert_eq "|gauge;W|gauge;kWh|counter" "$(psql_super "SELECT string_agg(p.unit || '|' || p.kind, ';' ORDER BY p.name)
	FROM points p JOIN devices d ON d.id = p.device_id
	WHERE d.serial = 'tasmota_A1B2C3' AND p.name IN ('ENERGY/Total', 'ENERGY/Power', 'ENERGY/Period')")" \
	"point defaults: ENERGY/Period none, ENERGY/Power W gauge, ENERGY/Total kWh counter"
# The CLI: an alias listed, refused for another tenant's device, removed; a bad serial gets a sentence.
m2p_admin device alias list --tenant acme | grep -q "Balkon_Süd.*116181234567" || fail "alias not listed"
m2p_admin tenant add other >/dev/null
if m2p_admin device alias add x 116181234567 --tenant other 2>"$IT_DIR/cli.err"; then fail "alias to another tenant's device accepted"; fi
grep -q "tenant 'other' has no device '116181234567'" "$IT_DIR/cli.err" || fail "unexpected: $(cat "$IT_DIR/cli.err")"
if m2p_admin device add "Balkon Süd" --tenant acme 2>"$IT_DIR/cli.err"; then fail "bad serial accepted"; fi
grep -q "device serial 'Balkon Süd' is not valid.*device alias add NAME SERIAL" "$IT_DIR/cli.err" || fail "raw constraint error: $(cat "$IT_DIR/cli.err")"
m2p_admin device alias remove Balkon_Süd --tenant acme >/dev/null
assert_eq 0 "$(psql_super "SELECT count(*) FROM device_aliases")" "alias removed"
echo "ok: device alias add/list/remove, errors as sentences"
# The CLI names a device by tenant and serial (sql/013): inverter_1 is in acme and globex.
if m2p_admin device add inverter_1 --tenant globex 2>"$IT_DIR/cli.err"; then fail "inverter_1 added twice to globex"; fi
grep -q "device 'inverter_1' already exists in tenant 'globex'" "$IT_DIR/cli.err" || fail "raw constraint error: $(cat "$IT_DIR/cli.err")"
assert_eq "acme globex" "$(m2p_admin device list | awk '$2 == "inverter_1" { print $3 }' | paste -sd' ')" \
	"device list: inverter_1 in acme and in globex"
if m2p_admin device disable inverter_1 2>"$IT_DIR/cli.err"; then fail "disable of an ambiguous serial accepted"; fi
grep -q "device 'inverter_1' is registered in 2 tenants (acme, globex): say which with --tenant SLUG" "$IT_DIR/cli.err" ||
	fail "unexpected: $(cat "$IT_DIR/cli.err")"
m2p_admin device disable inverter_1 --tenant globex >/dev/null
assert_eq "acme|true globex|false" "$(psql_super "SELECT string_agg(t.slug || '|' || d.enabled, ' ' ORDER BY t.slug) FROM devices d
	JOIN tenants t ON t.id = d.tenant_id WHERE d.serial = 'inverter_1'")" "only globex's inverter_1 disabled"
if m2p_admin device enable inverter_1 --tenant initech 2>"$IT_DIR/cli.err"; then fail "enable in a tenant without it accepted"; fi
grep -q "tenant 'initech' has no device 'inverter_1'" "$IT_DIR/cli.err" || fail "unexpected: $(cat "$IT_DIR/cli.err")"
if m2p_admin point add inverter_1 dc_power 2>"$IT_DIR/cli.err"; then fail "point add on an ambiguous serial accepted"; fi
grep -q "registered in 2 tenants (acme, globex)" "$IT_DIR/cli.err" || fail "unexpected: $(cat "$IT_DIR/cli.err")"
m2p_admin point add inverter_1 dc_power --tenant globex --unit W >/dev/null
if m2p_admin point add inverter_1 dc_power --tenant globex 2>"$IT_DIR/cli.err"; then fail "point added twice"; fi
grep -q "device 'inverter_1' already has a point 'dc_power'" "$IT_DIR/cli.err" || fail "raw constraint error: $(cat "$IT_DIR/cli.err")"
assert_eq "globex" "$(m2p_admin point list --device inverter_1 | awk '$4 == "dc_power" { print $2 }')" \
	"point list: dc_power on globex's inverter_1 only"
assert_eq "ac_power dc_power" "$(m2p_admin point list --device inverter_1 --tenant globex | awk 'NR > 1 { print $4 }' | paste -sd' ')" \
	"point list --tenant globex"
m2p_admin device alias add "Wechselrichter 1" inverter_1 --tenant globex >/dev/null
assert_eq "globex|inverter_1" "$(psql_super "SELECT t.slug || '|' || d.serial FROM device_aliases a JOIN devices d ON d.id = a.device_id
	JOIN tenants t ON t.id = d.tenant_id WHERE a.alias = 'Wechselrichter 1'")" "an alias names the tenant's own inverter_1"
echo "ok: the CLI by tenant and serial, ambiguity and duplicates as sentences"
