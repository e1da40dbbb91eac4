#!/usr/bin/env bash
# it_grafana.sh - the Grafana dashboard (deploy/grafana/mqtt2pg.json) against the real thing.
#
# PostgreSQL side: every rawSql of a panel and every PostgreSQL variable query, with Grafana's macros and
# variables substituted as Grafana would ($__timeFilter, $__timeGroupAlias, $__interval, $device as a quoted
# list of what the device variable returned, ...), runs as a tenant's reader: the login role that
# `mqtt2pg tenant grant-reader SLUG --role mqtt2pg_reader_SLUG --create` makes (sql/009: row-level security by
# role membership). Each query succeeds, returns rows, only that tenant's devices, and the same rows when the
# session sets another tenant's app.tenant_id (the setting grants a reader nothing); mqtt2pg_reader itself
# (no tenant granted) gets nothing. Values are checked against the seeded readings (constant power: exact
# averages and energy).
#
# Prometheus side: every metric the operator's panels query exists in a running bridge's /metrics.
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
. "$here/lib.sh"
. "$here/bridge.sh"
dash=$(cd "$here/../.." && pwd)/deploy/grafana/mqtt2pg.json

command -v jq >/dev/null || fail "jq is needed (deploy/local/deps.sh installs it)"
command -v perl >/dev/null || fail "perl is needed (Debian's perl-base)"
it_setup grafana

# --- the dashboard's shape --------------------------------------------------------------------------
jq -e '.schemaVersion == 38 and .uid == "mqtt2pg"' "$dash" >/dev/null || fail "unexpected schemaVersion/uid"
assert_eq "Operator: the bridge (Prometheus)|Tenant: readings (PostgreSQL, under the tenant's row-level security)" \
	"$(jq -r '[.panels[] | select(.type == "row") | .title] | join("|")' "$dash")" "two rows: operator and tenant"
assert_eq "$(jq '[.. | objects | select(has("gridPos")) | .id] | length' "$dash")" \
	"$(jq '[.. | objects | select(has("gridPos")) | .id] | unique | length' "$dash")" "panel ids are unique"
assert_eq 0 "$(jq '[.. | objects | select(has("rawSql")) | select(.datasource.uid != "${tenant}")] | length' "$dash")" \
	"every SQL query uses the tenant's datasource"
assert_eq 0 "$(jq '[.. | objects | select(has("expr")) | select(.datasource.uid != "${prometheus}")] | length' "$dash")" \
	"every PromQL query uses the Prometheus datasource"

# --- two tenants with six hours of readings, aggregated by the real code --------------------------------
pg_start
db_prepare
m2p_admin tenant add acme >/dev/null
m2p_admin tenant add beta >/dev/null
for d in INV-A1:acme INV-A2:acme INV-B1:beta; do
	m2p_admin device add "${d%%:*}" --tenant "${d#*:}" --point total_output_power:W:0:20000 --point grid_voltage:V:180:260 \
		--point "energy:Wh:::counter" >/dev/null
done
# One reading a minute per point for six hours: power constant per device (1, 2 and 5 kW), voltage 230 V, an
# energy counter that counts that power (P/60 Wh a minute).
psql_super "SELECT ensure_partitions(now() - interval '2 days', now() + interval '1 day')" >/dev/null
psql_super "INSERT INTO measurements (time, tenant_id, device_id, point_id, value)
	SELECT g, d.tenant_id, d.id, p.id,
	       CASE WHEN p.name = 'grid_voltage' THEN 230
	            ELSE CASE WHEN d.serial = 'INV-A1' THEN 1000 WHEN d.serial = 'INV-A2' THEN 2000 ELSE 5000 END
	                 * CASE WHEN p.name = 'energy'
	                        THEN extract(epoch FROM g - date_trunc('minute', now()) + interval '6 hours') / 3600
	                        ELSE 1 END END
	  FROM devices d JOIN points p ON p.device_id = d.id,
	       generate_series(date_trunc('minute', now()) - interval '6 hours',
	                       date_trunc('minute', now()) - interval '1 minute', interval '1 minute') g"
m2p_admin aggregate rebuild --from "$(date -u -d '7 hours ago' +%Y-%m-%dT%H:%M:%SZ)" \
	--to "$(date -u -d '10 minutes' +%Y-%m-%dT%H:%M:%SZ)" 2>"$IT_DIR/rebuild.log" || fail "aggregate rebuild failed"
test "$(psql_super "SELECT count(DISTINCT tenant_id) FROM measurements_5m")" = 2 || fail "no aggregates for both tenants"

# The tenants' login roles, made as deploy/grafana/README.md says (the password set by the operator, here
# by the superuser: the CLI never takes one on its command line).
for t in acme beta; do
	m2p_admin tenant grant-reader "$t" --role "mqtt2pg_reader_$t" --create >/dev/null
	psql_super "ALTER ROLE mqtt2pg_reader_$t PASSWORD '$t-secret'"
done
rc=0
m2p_admin tenant grant-reader nope --role mqtt2pg_reader_nope --create >/dev/null 2>&1 || rc=$?
test "$rc" -ne 0 || fail "grant-reader accepted an unknown tenant"
echo "ok: tenant grant-reader makes the tenants' login roles"

declare -A tenant_id serials others
tenant_id[acme]=$(psql_super "SELECT id FROM tenants WHERE slug = 'acme'")
tenant_id[beta]=$(psql_super "SELECT id FROM tenants WHERE slug = 'beta'")
serials[acme]="INV-A1 INV-A2"
serials[beta]="INV-B1"
others[acme]="INV-B1"
others[beta]="INV-A1 INV-A2"
role_db() { echo "host=127.0.0.1 port=$PGPORT dbname=mqtt2pg user=mqtt2pg_reader_$1 password=$1-secret"; }
# The role's session with the OTHER tenant's context set at connection time: it must change nothing.
switched_db() { echo "$(role_db "$1") options='-c app.tenant_id=${tenant_id[$2]}'"; }
other_tenant() { if [ "$1" = acme ]; then echo beta; else echo acme; fi; }

# --- Grafana's substitutions ------------------------------------------------------------------------
G_FROM=$(date -u -d '24 hours ago' +%Y-%m-%dT%H:%M:%SZ)
G_TO=$(date -u +%Y-%m-%dT%H:%M:%SZ)
G_INTERVAL=5m
export G_FROM G_TO G_INTERVAL

# grafana_sql < SQL: what Grafana's PostgreSQL datasource sends: dashboard variables first ($G_DEVICE is the
# multi-value $device, formatted as Grafana formats it for SQL: 'a','b'), then the macros.
grafana_sql()
{
	perl -e '
		my %unit = (s => 1, m => 60, h => 3600, d => 86400);
		sub secs { my $i = shift; $i =~ /^(\d+)([smhd])$/ or die "unknown interval $i\n"; return $1 * $unit{$2}; }
		local $/; $_ = <STDIN>;
		s/\$__interval_ms\b/secs($ENV{G_INTERVAL}) * 1000/ge;
		s/\$__interval\b/$ENV{G_INTERVAL}/g;
		s/\$\{?power_point\}?/$ENV{G_POWER}/g;
		s/\$\{?device\}?/$ENV{G_DEVICE}/g;
		s/\$__timeGroupAlias\(\s*([^,]+?)\s*,\s*\x27?(\w+)\x27?\s*\)/"floor(extract(epoch from $1)\/" . secs($2) . ")*" . secs($2) . " AS \"time\""/ge;
		s/\$__timeGroup\(\s*([^,]+?)\s*,\s*\x27?(\w+)\x27?\s*\)/"floor(extract(epoch from $1)\/" . secs($2) . ")*" . secs($2)/ge;
		s/\$__timeFilter\(\s*([^)]+?)\s*\)/$1 BETWEEN \x27$ENV{G_FROM}\x27 AND \x27$ENV{G_TO}\x27/g;
		s/\$__timeFrom\(\)/\x27$ENV{G_FROM}\x27/g;
		s/\$__timeTo\(\)/\x27$ENV{G_TO}\x27/g;
		print;'
}

# run_as CONNINFO SQL: rows as "a|b|c" lines; fails the test with the query on error.
run_as()
{
	local out
	if ! out=$(psql_as "$1" "$2" 2>&1); then
		printf '%s\n' "$2" >&2
		fail "query failed as ${1##* user=}: $out"
	fi
	printf '%s' "$out"
}

# check_tenant_rows TENANT WHAT ROWS: rows exist, name one of the tenant's devices, and none of the others'.
check_tenant_rows()
{
	local tenant=$1 what=$2 rows=$3 s own=0
	[[ -n "$rows" ]] || fail "$what ($tenant): no rows"
	for s in ${others[$tenant]}; do
		grep -q -- "$s" <<<"$rows" && fail "$what ($tenant): another tenant's device $s in the result"
	done
	for s in ${serials[$tenant]}; do
		grep -q -- "$s" <<<"$rows" && own=1
	done
	((own)) || fail "$what ($tenant): none of the tenant's devices in the result"
	return 0
}

mapfile -t var_names < <(jq -r '.templating.list[] | select(.datasource.type == "postgres") | .name' "$dash")
mapfile -t panel_ids < <(jq -r '.. | objects | select(has("targets")) | select(any(.targets[]; has("rawSql"))) | .id' "$dash")
assert_eq "device power_point" "${var_names[*]}" "PostgreSQL variables"
assert_eq "21 22 23 24" "${panel_ids[*]}" "PostgreSQL panels"
queries=0

for tenant in acme beta; do
	# The variables first, as Grafana runs them; their answers feed the panels' $device and $power_point.
	for v in "${var_names[@]}"; do
		sql=$(jq -r --arg v "$v" '.templating.list[] | select(.name == $v) | .query' "$dash" | grafana_sql)
		grep -q '\$' <<<"$sql" && fail "variable $v: unsubstituted: $sql"
		rows=$(run_as "$(role_db "$tenant")" "$sql")
		assert_eq "$rows" "$(run_as "$(switched_db "$tenant" "$(other_tenant "$tenant")")" "$sql")" \
			"variable $v ($tenant): the same rows with another tenant's app.tenant_id set"
		assert_eq "" "$(run_as "$READER_DB" "$sql")" "variable $v: nothing for a role granted no tenant"
		queries=$((queries + 1))
		case $v in
		device)
			assert_eq "${serials[$tenant]}" "$(tr '\n' ' ' <<<"$rows" | sed 's/ $//')" "variable device ($tenant): the tenant's devices"
			G_DEVICE=$(sed "s/.*/'&'/" <<<"$rows" | paste -sd, -)
			;;
		power_point)
			assert_eq total_output_power "$rows" "variable power_point ($tenant)"
			G_POWER=$rows
			;;
		esac
	done
	export G_DEVICE G_POWER

	for id in "${panel_ids[@]}"; do
		title=$(jq -r --argjson id "$id" '.. | objects | select(.id? == $id and has("targets")) | .title' "$dash")
		mapfile -t raw < <(jq -r --argjson id "$id" '.. | objects | select(.id? == $id and has("targets")) | .targets[] | select(has("rawSql")) | .rawSql | @base64' "$dash")
		for b64 in "${raw[@]}"; do
			sql=$(base64 -d <<<"$b64" | grafana_sql)
			grep -q '\$' <<<"$sql" && fail "$title: unsubstituted macro or variable: $sql"
			rows=$(run_as "$(role_db "$tenant")" "$sql")
			check_tenant_rows "$tenant" "$title" "$rows"
			assert_eq "$rows" "$(run_as "$(switched_db "$tenant" "$(other_tenant "$tenant")")" "$sql")" \
				"$title ($tenant): the same rows with another tenant's app.tenant_id set"
			# A role granted no tenant reads nothing: the panels depend on the datasource's login role.
			G_DEVICE_ALL="'INV-A1','INV-A2','INV-B1'"
			sql_all=$(base64 -d <<<"$b64" | G_DEVICE=$G_DEVICE_ALL grafana_sql)
			assert_eq "" "$(run_as "$READER_DB options='-c app.tenant_id=${tenant_id[$tenant]}'" "$sql_all")" \
				"$title: nothing for a role granted no tenant, even with the tenant's app.tenant_id"
			check_tenant_rows "$tenant" "$title (every serial asked for)" "$(run_as "$(role_db "$tenant")" "$sql_all")"
			queries=$((queries + 1))
			case $id in
			21) # power: the exact constant of each device in every interval
				bad=$(awk -F'|' '($2 == "INV-A1" && $3 != 1000) || ($2 == "INV-A2" && $3 != 2000) || ($2 == "INV-B1" && $3 != 5000)' <<<"$rows")
				assert_eq "" "$bad" "$title ($tenant): each device's mean power is its constant"
				;;
			22) # energy: 359 one-minute intervals at constant power = P x 359/60 Wh
				for s in ${serials[$tenant]}; do
					got=$(awk -F'|' -v s="$s" '$2 == s { e += $3 } END { printf "%.4f", e }' <<<"$rows")
					case $s in INV-A1) want=5.9833 ;; INV-A2) want=11.9667 ;; INV-B1) want=29.9167 ;; esac
					assert_eq "$want" "$got" "$title ($tenant): $s's energy in kWh over the range"
				done
				;;
			24) # energy counters (energy_daily): the same energy, in Wh, counted by the counter
				for s in ${serials[$tenant]}; do
					got=$(awk -F'|' -v s="$s energy (Wh)" '$2 == s { e += $3 } END { printf "%.1f", e }' <<<"$rows")
					case $s in INV-A1) want=5983.3 ;; INV-A2) want=11966.7 ;; INV-B1) want=29916.7 ;; esac
					assert_eq "$want" "$got" "$title ($tenant): $s's counted energy in Wh over the range"
				done
				;;
			23) # latest values: one row per device and point
				assert_eq $(($(wc -w <<<"${serials[$tenant]}") * 3)) "$(wc -l <<<"$rows")" "$title ($tenant): one row per device and point"
				grep -q '|grid_voltage|230|V|' <<<"$rows" || fail "$title ($tenant): no voltage row: $rows"
				;;
			esac
		done
	done
	echo "ok: every dashboard query runs as tenant $tenant and returns that tenant's rows only"
done
assert_eq 12 "$queries" "queries checked (2 variables + 4 panels, for each of 2 tenants)"

# What used to be the documented limit (a session that can run SQL could SET another tenant's context) is
# gone: the policies ask who the role is (it_security has the other ways of trying).
switched=$(psql -X -qAt -v ON_ERROR_STOP=1 -d "$(role_db acme)" -c "SET app.tenant_id = '${tenant_id[beta]}'" \
	-c "SELECT count(*) FROM measurements_5m WHERE tenant_id = ${tenant_id[beta]}")
assert_eq 0 "$switched" "a tenant's role that SETs another tenant's context still sees none of its rows"

# --- Prometheus side: the metrics the operator's panels use exist ---------------------------------------
mosq_start
port=$(free_port)
conf=$IT_DIR/bridge.conf
bridge_config "$conf" "http = { listen = \"127.0.0.1\"; port = $port; };"
bridge_start "$conf"
publish solar/acme/INV-A1/telemetry '{"measurements":{"zzz":1}}' # one rejection, so the reason label exists
metrics() { curl -s "http://127.0.0.1:$port/metrics"; }
has_rejected() { grep -q '^mqtt2pg_messages_rejected_total{reason="unknown_point"}' <<<"$(metrics)"; }
wait_until 10 has_rejected || fail "no rejection counted"
metrics >"$IT_DIR/metrics.txt"
mapfile -t used < <(jq -r '(.. | objects | select(has("expr")) | .expr),
	(.templating.list[] | select(.datasource.type? == "prometheus") | .definition)' "$dash" | grep -o 'mqtt2pg_[a-z0-9_]*' | sort -u)
for m in "${used[@]}"; do
	grep -q "^# TYPE $m " "$IT_DIR/metrics.txt" || fail "the dashboard queries $m, which /metrics does not export"
done
echo "ok: the ${#used[@]} metrics the operator's panels query are exported: ${used[*]}"
grep -q '{reason=' "$IT_DIR/metrics.txt" || fail "no reason label"
bridge_stop
assert_eq 0 "$BRIDGE_RC" "clean exit"
echo "PASS it_grafana"
