#!/usr/bin/env bash
# it_acl.sh - the broker as the first line of defence against spoofing. `mqtt2pg acl export` writes the
# Mosquitto acl_file from the registry; a real broker with a password file and that ACL lets each device
# publish only into its own subtree (a publish into another tenant's tree is refused by the broker: it
# never reaches the bridge, no row and no rejected message, only the broker's "Denied PUBLISH"); with a
# deliberately loose ACL the bridge still rejects the spoofed message (tenant_mismatch). `mqtt2pg acl check`
# passes the exported file and reports the loose one, line by line. The dynamic-security export is loaded
# into a broker with the plugin and enforced the same way. A serial in two tenants (sql/013) is refused as
# one broker username and exported, checked and enforced as <serial>@<tenant> (--username serial@tenant).
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
. "$here/lib.sh"
. "$here/bridge.sh"

it_setup acl
pg_start
db_prepare
m2p_admin tenant add acme >/dev/null
m2p_admin tenant add beta >/dev/null
m2p_admin device add INV-A1 --tenant acme --point p:W >/dev/null
m2p_admin device add INV-B1 --tenant beta --point p:W >/dev/null
m2p_admin device add INV-A9 --tenant acme --point p:W >/dev/null
m2p_admin device disable INV-A9 >/dev/null

# --- export -----------------------------------------------------------------------------------------
acl=$IT_DIR/acl.exported
m2p_admin acl export --format mosquitto -o "$acl"
expected="user mqtt2pg
topic read solar/+/+/#

# tenant acme
user INV-A1
topic write solar/acme/INV-A1/#

# tenant beta
user INV-B1
topic write solar/beta/INV-B1/#"
assert_eq "$expected" "$(sed '1,/^$/d' "$acl")" "exported acl_file: bridge reads the tree, each enabled device writes its own subtree"
grep -q INV-A9 "$acl" && fail "the disabled device got a rule"
assert_eq "$(cat "$acl")" "$(m2p_admin acl export)" "stdout and -o write the same bytes"
assert_eq "$(sha256sum <"$acl")" "$(m2p_admin acl export | sha256sum)" "export is deterministic"
assert_eq 644 "$(stat -c %a "$acl")" "the file is readable by the broker's user"
grep -qx 'topic write site/solar/acme/INV-A1/#' <<<"$(m2p_admin acl export --bridge-user ingest --topic-prefix site/solar)" ||
	fail "--topic-prefix not applied"
grep -qx 'user ingest' <<<"$(m2p_admin acl export --bridge-user ingest --topic-prefix site/solar)" || fail "--bridge-user not applied"
rc=0
m2p_admin acl export --bridge-user INV-A1 >/dev/null 2>"$IT_DIR/err" || rc=$?
assert_eq 1 "$rc" "a bridge user named like a device is refused"
rc=0
m2p_admin acl export --format yaml >/dev/null 2>&1 || rc=$?
assert_eq 2 "$rc" "unknown format is a usage error"

# --- check ------------------------------------------------------------------------------------------
rc=0
m2p_admin acl check "$acl" >"$IT_DIR/check.out" 2>&1 || rc=$?
assert_eq 0 "$rc" "acl check passes the exported file"

loose=$IT_DIR/acl.loose
cat >"$loose" <<'EOF'
user mqtt2pg
topic read solar/+/+/#

user INV-A1
topic write solar/#

user INV-B1
topic solar/+/INV-B1/#

user mallory
topic write solar/beta/#
EOF
rc=0
m2p_admin acl check "$loose" >"$IT_DIR/check.out" 2>"$IT_DIR/check.err" || rc=$?
assert_eq 1 "$rc" "acl check reports the loose file"
cat "$IT_DIR/check.out"
assert_eq "$loose:5: cross-tenant-write
$loose:5: wildcard-write
$loose:8: cross-tenant-write
$loose:8: wildcard-write
$loose:8: cross-tenant-read
$loose:10: unknown-user" "$(cut -d: -f1-3 "$IT_DIR/check.out")" \
	"findings: solar/# and the readwrite 'topic solar/+/INV-B1/#' reach other tenants, mallory is nobody"
grep -q "6 finding(s)" "$IT_DIR/check.err" || fail "no summary line: $(cat "$IT_DIR/check.err")"
rc=0
m2p_admin acl check "$IT_DIR/nonexistent" >/dev/null 2>&1 || rc=$?
assert_eq 2 "$rc" "a missing file is exit 2"
rc=0
"$MQTT2PG_BIN" --db "host=127.0.0.1 port=$PGPORT dbname=mqtt2pg user=nobody" acl check "$acl" >/dev/null 2>&1 || rc=$?
assert_eq 2 "$rc" "a database error is exit 2"

# --- the broker enforces the exported ACL -----------------------------------------------------------
passwd=$IT_DIR/passwd
active=$IT_DIR/acl.active
mosquitto_passwd -b -c "$passwd" mqtt2pg bridge-secret
mosquitto_passwd -b "$passwd" INV-A1 a1-secret
mosquitto_passwd -b "$passwd" INV-B1 b1-secret
cp "$acl" "$active"
chmod 644 "$passwd" "$active"
mosq_chown "$passwd" "$active"
mosq_start "allow_anonymous false" "password_file $passwd" "acl_file $active"

printf 'bridge-secret\n' >"$IT_DIR/bridge.pw"
chmod 600 "$IT_DIR/bridge.pw" # mqtt2pg refuses a password file others may read
BRIDGE_MQTT_EXTRA="username = \"mqtt2pg\"; password_file = \"$IT_DIR/bridge.pw\";"
conf=$IT_DIR/bridge.conf
bridge_config "$conf"
bridge_start "$conf"

# pub_as USER PASSWORD CLIENT_ID TOPIC PAYLOAD: one QoS 1 message, MQTT 3.1.1 (the broker acknowledges a
# refused publish and drops it silently: the device cannot tell).
pub_as()
{
	mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -V mqttv311 -q 1 -u "$1" -P "$2" -i "$3" -t "$4" -m "$5"
}
value_rows() { rows "value = $1"; }
denied() { grep -q "Denied PUBLISH from $1 .*'$2'" "$MOSQ_LOG"; }

rc=0
mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -i anon -t solar/acme/INV-A1/telemetry -m x 2>/dev/null || rc=$?
test "$rc" -ne 0 || fail "an anonymous client could publish"
echo "ok: anonymous clients are refused"

pub_as INV-A1 a1-secret a1-own solar/acme/INV-A1/telemetry '{"measurements":{"p":101}}'
wait_until 10 rows_ge 1 "value = 101" || fail "the device's own message did not arrive"
echo "ok: a device publishes into its own subtree and the row arrives"

# Spoofing: INV-A1 into beta's tree, once with its own serial, once as INV-B1.
pub_as INV-A1 a1-secret a1-spoof1 solar/beta/INV-A1/telemetry '{"measurements":{"p":666}}'
pub_as INV-A1 a1-secret a1-spoof2 solar/beta/INV-B1/telemetry '{"measurements":{"p":667}}'
wait_until 5 denied a1-spoof1 solar/beta/INV-A1/telemetry || fail "no 'Denied PUBLISH' for the spoof into beta"
wait_until 5 denied a1-spoof2 solar/beta/INV-B1/telemetry || fail "no 'Denied PUBLISH' for the impersonation of INV-B1"
# A message published after them that does arrive: the bridge has seen everything the broker let through.
pub_as INV-B1 b1-secret b1-marker solar/beta/INV-B1/telemetry '{"measurements":{"p":202}}'
wait_until 10 rows_ge 1 "value = 202" || fail "INV-B1's own message did not arrive"
sleep 1
assert_eq 0 "$(value_rows 666)" "the spoofed message never became a row"
assert_eq 0 "$(value_rows 667)" "the impersonation never became a row"
assert_eq 0 "$(rejected)" "the broker dropped them: the bridge never saw them (no rejected_messages)"
echo "ok: the broker refuses publishes into another tenant's tree (Denied PUBLISH in its log)"

# --- a loose ACL: the bridge is the second line --------------------------------------------------------
cp "$loose" "$active"
mosq_chown "$active"
reloads=$(grep -c "Reloading config" "$MOSQ_LOG" || true)
kill -HUP "$MOSQ_PID"
reloaded() { test "$(grep -c "Reloading config" "$MOSQ_LOG" || true)" -gt "$reloads"; }
wait_until 5 reloaded || fail "mosquitto did not reload its config"
sleep 0.5
it_log "loose ACL active"

pub_as INV-A1 a1-secret a1-loose solar/beta/INV-A1/telemetry '{"measurements":{"p":777}}'
wait_until 10 rejected_ge 1 "reason = 'tenant_mismatch'" || fail "the bridge did not reject the spoof"
assert_eq "solar/beta/INV-A1/telemetry|beta|INV-A1" \
	"$(psql_super "SELECT topic, tenant_slug, serial FROM rejected_messages WHERE reason = 'tenant_mismatch'")" \
	"the loose broker lets the spoof through; the bridge rejects it as tenant_mismatch"
assert_eq 0 "$(value_rows 777)" "no row for the spoofed message"
grep -q "Denied PUBLISH from a1-loose" "$MOSQ_LOG" && fail "the loose ACL still denied"
# What only the broker can stop: under the loose ACL INV-A1 may publish as INV-B1 in INV-B1's own tree, and
# that message is indistinguishable from INV-B1's own (the bridge accepts it). Hence the exported ACL.
pub_as INV-A1 a1-secret a1-imp solar/beta/INV-B1/telemetry '{"measurements":{"p":778}}'
wait_until 10 rows_ge 1 "value = 778" || fail "expected the impersonation to pass under the loose ACL"
echo "ok: under a loose ACL a device can impersonate another of the right tenant: only the broker ACL stops that"

# --- one serial in two tenants (sql/013): usernames serial@tenant ------------------------------------------
m2p_admin device add inverter_1 --tenant acme --point p:W >/dev/null
m2p_admin device add inverter_1 --tenant beta --point p:W >"$IT_DIR/dup.err" 2>&1 ||
	fail "a second tenant cannot register inverter_1: $(cat "$IT_DIR/dup.err")"
rc=0
m2p_admin acl export >/dev/null 2>"$IT_DIR/err" || rc=$?
assert_eq 1 "$rc" "with serials as usernames, a serial in two tenants is refused"
grep -q "serial 'inverter_1' is registered in tenants 'acme' and 'beta'.*--username serial@tenant" "$IT_DIR/err" ||
	fail "unexpected: $(cat "$IT_DIR/err")"
qualified=$IT_DIR/acl.qualified
m2p_admin acl export --username serial@tenant -o "$qualified"
assert_eq "user mqtt2pg
topic read solar/+/+/#

# tenant acme
user INV-A1@acme
topic write solar/acme/INV-A1/#
user inverter_1@acme
topic write solar/acme/inverter_1/#

# tenant beta
user INV-B1@beta
topic write solar/beta/INV-B1/#
user inverter_1@beta
topic write solar/beta/inverter_1/#" "$(sed '1,/^$/d' "$qualified")" "--username serial@tenant: one user per tenant's device"
rc=0
m2p_admin acl check "$qualified" --username serial@tenant >"$IT_DIR/check.out" 2>&1 || rc=$?
assert_eq 0 "$rc" "acl check --username serial@tenant passes the qualified export"
rc=0
m2p_admin acl check "$qualified" >"$IT_DIR/check.out" 2>&1 || rc=$?
assert_eq 1 "$rc" "acl check with plain serials reports the qualified names as unknown users"
grep -q "unknown-user" "$IT_DIR/check.out" || fail "unexpected: $(cat "$IT_DIR/check.out")"
# The broker enforces it: each inverter_1 publishes into its own tenant's tree only.
wait_until 10 grep -q "registry: loaded 2 tenants, 5 devices" "$BRIDGE_LOG" || fail "the bridge did not reload the registry"
mosquitto_passwd -b "$passwd" inverter_1@acme ia-secret
mosquitto_passwd -b "$passwd" inverter_1@beta ib-secret
cp "$qualified" "$active"
mosq_chown "$passwd" "$active"
reloads=$(grep -c "Reloading config" "$MOSQ_LOG" || true)
kill -HUP "$MOSQ_PID"
wait_until 5 reloaded || fail "mosquitto did not reload its config"
pub_as inverter_1@acme ia-secret ia-own solar/acme/inverter_1/telemetry '{"measurements":{"p":901}}'
pub_as inverter_1@beta ib-secret ib-own solar/beta/inverter_1/telemetry '{"measurements":{"p":902}}'
pub_as inverter_1@acme ia-secret ia-spoof solar/beta/inverter_1/telemetry '{"measurements":{"p":903}}'
wait_until 5 denied ia-spoof solar/beta/inverter_1/telemetry || fail "no 'Denied PUBLISH' for acme's inverter_1 in beta's tree"
wait_until 10 rows_ge 2 "value IN (901, 902)" || fail "the two inverter_1 messages did not arrive"
assert_eq "acme|901 beta|902" "$(psql_super "SELECT string_agg(t.slug || '|' || m.value, ' ' ORDER BY m.value) FROM measurements m
	JOIN devices d ON d.id = m.device_id AND d.tenant_id = m.tenant_id JOIN tenants t ON t.id = m.tenant_id
	WHERE d.serial = 'inverter_1'")" "each inverter_1's row in its own tenant"
assert_eq 0 "$(value_rows 903)" "the cross-tenant publish never became a row"
echo "ok: inverter_1 in two tenants: refused as one username, exported and enforced as serial@tenant"
# The dynsec part below exports plain serials: both inverter_1 disabled (a disabled device gets no user).
m2p_admin device disable inverter_1 --tenant acme >/dev/null
m2p_admin device disable inverter_1 --tenant beta >/dev/null
bridge_stop
assert_eq 0 "$BRIDGE_RC" "clean exit"
mosq_stop

# --- dynamic security: the same policy as plugin state --------------------------------------------------
plugin=
for f in /usr/lib/*/mosquitto_dynamic_security.so; do
	[[ -e "$f" ]] && plugin=$f && break
done
if [[ -z "$plugin" ]]; then
	it_log "mosquitto_dynamic_security.so not found: dynsec part skipped"
	echo "PASS it_acl (dynsec skipped)"
	exit 0
fi
command -v jq >/dev/null || fail "jq is needed (deploy/local/deps.sh installs it)"
dynsec=$IT_DIR/dynsec.json
m2p_admin acl export --format dynsec -o "$IT_DIR/dynsec.exported"
jq -e '.defaultACLAccess.publishClientSend == false and ([.clients[].username] == ["mqtt2pg","INV-A1","INV-B1"])
	and ([.clients[] | has("password")] | any | not)' "$IT_DIR/dynsec.exported" >/dev/null ||
	fail "unexpected dynsec export: $(cat "$IT_DIR/dynsec.exported")"
# An administrator to set the passwords with (`mosquitto_ctrl dynsec init` creates one), merged in.
mosquitto_ctrl dynsec init "$IT_DIR/dynsec.admin.json" admin admin-secret >/dev/null
jq -s '.[0] * {clients: (.[0].clients + .[1].clients), roles: (.[0].roles + .[1].roles)}' \
	"$IT_DIR/dynsec.exported" "$IT_DIR/dynsec.admin.json" >"$dynsec"
chmod 644 "$dynsec"
mosq_chown "$dynsec"
mosq_start "allow_anonymous false" "plugin $plugin" "plugin_opt_config_file $dynsec"
# (mosquitto_ctrl warns on stderr that the loopback connection is not encrypted)
ctrl() { mosquitto_ctrl -h 127.0.0.1 -p "$MQTT_PORT" -u admin -P admin-secret dynsec "$@" >>"$IT_DIR/ctrl.log" 2>&1; }
it_track_log "$IT_DIR/ctrl.log"
ctrl setClientPassword mqtt2pg bridge-secret
ctrl setClientPassword INV-A1 a1-secret
ctrl setClientPassword INV-B1 b1-secret
# Through a shared subscription ($share/<group>/...), as replicas subscribe: the role allows that too.
BRIDGE_MQTT_EXTRA="$BRIDGE_MQTT_EXTRA shared_group = \"ingest\";"
bridge_config "$conf"
bridge_start "$conf"
pub_as INV-A1 a1-secret ds-own solar/acme/INV-A1/telemetry '{"measurements":{"p":301}}'
wait_until 10 rows_ge 1 "value = 301" || fail "dynsec: the device's own message did not arrive"
pub_as INV-A1 a1-secret ds-spoof solar/beta/INV-B1/telemetry '{"measurements":{"p":302}}'
wait_until 5 denied ds-spoof solar/beta/INV-B1/telemetry || fail "dynsec: no 'Denied PUBLISH' for the spoof"
pub_as INV-B1 b1-secret ds-marker solar/beta/INV-B1/telemetry '{"measurements":{"p":303}}'
wait_until 10 rows_ge 1 "value = 303" || fail "dynsec: INV-B1's own message did not arrive"
sleep 1
assert_eq 0 "$(value_rows 302)" "dynsec: the spoof never became a row"
assert_eq 1 "$(rejected)" "dynsec: the bridge saw nothing new (only the earlier tenant_mismatch)"
echo "ok: the dynamic-security export is enforced the same way"
bridge_stop
assert_eq 0 "$BRIDGE_RC" "clean exit"
echo "PASS it_acl"
