#!/usr/bin/env bash
# tests/deploy/helm_check.sh - checks mqtt2pg's deployment files on a machine without helm, a Kubernetes
# cluster or a Docker engine: the Helm chart (deploy/helm/mqtt2pg), the Dockerfile (deploy/docker) and the
# Compose stack (deploy/compose).
#
#   bash tests/deploy/helm_check.sh        from the repository root, after deploy/local/deps.sh
#
# It installs nothing. It builds two small Go programs offline against Debian's packaged sources
# (/usr/share/gocode, GOPATH mode): helmrender renders a chart as `helm template` does, deploycheck checks
# what comes out. Then it
#   - tests helmrender itself on a fixture chart against a golden file (include, tpl, required, values
#     merging, float64 numbers, .Files, .Capabilities, hooks, ordering);
#   - builds mqtt2pg with the Dockerfile's own CMake commands and checks the Dockerfile statically, including
#     that its runtime packages provide every library the binary links;
#   - checks the Compose file, the files it mounts, the broker's ACL and passwords, runs the broker with that
#     configuration on loopback to see the ACL hold, and runs `mqtt2pg check-config` on its bridge config;
#   - checks the chart's documentation, renders it with the defaults and each ci/*-values.yaml, checks every
#     Kubernetes object, runs `mqtt2pg check-config` on every rendered config, and makes sure that bad values
#     are refused and that checksum/config follows the config.
# Prints one "ok: ..." or "FAIL: ..." line per check and ends with "N passed, M failed"; exits 1 on any
# failure. Leaves nothing running; build products go to a temporary directory (the Go build cache to .cache/).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
chart=deploy/helm/mqtt2pg
start=$(date +%s)

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }
# check WHAT COMMAND...: one result from a command's exit status.
check() {
	local what=$1
	shift
	if "$@" >"$work/check.out" 2>&1; then ok "$what"; else fail "$what: $(tail -n 5 "$work/check.out" | tr '\n' ' ')"; fi
}
# tally COMMAND...: runs a program that prints ok:/FAIL: lines itself and counts them; a non-zero exit
# without a FAIL line (a crash, a usage error) is a failure of its own.
tally() {
	local out rc=0 n_ok n_fail
	out=$("$@" 2>&1) || rc=$?
	printf '%s\n' "$out" | grep -E '^(ok|FAIL): ' || true
	n_ok=$(printf '%s\n' "$out" | grep -c '^ok: ' || true)
	n_fail=$(printf '%s\n' "$out" | grep -c '^FAIL: ' || true)
	passed=$((passed + n_ok))
	failed=$((failed + n_fail))
	if [[ $rc -ne 0 && $n_fail -eq 0 ]]; then
		fail "$(basename "$1") $2 exited $rc: $(printf '%s\n' "$out" | grep -vE '^(ok|FAIL): ' | tail -n 5 | tr '\n' ' ')"
	fi
}

mosquitto_pid=
work=$(mktemp -d /tmp/mqtt2pg-helm-check.XXXXXX)
cleanup() {
	if [[ -n $mosquitto_pid ]]; then
		kill "$mosquitto_pid" 2>/dev/null || true
		wait "$mosquitto_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

for tool in go cmake objdump dpkg-query mosquitto mosquitto_passwd mosquitto_pub mosquitto_sub ss; do
	command -v "$tool" >/dev/null || { echo "helm_check.sh: $tool is missing: run deploy/local/deps.sh" >&2; exit 2; }
done
[[ -d /usr/share/gocode/src/github.com/Masterminds/sprig ]] ||
	{ echo "helm_check.sh: Debian's sprig sources are missing: run deploy/local/deps.sh" >&2; exit 2; }

# --- the two Go programs ---------------------------------------------------------------------------
# GOPATH mode against /usr/share/gocode: nothing is downloaded. The programs sit below tests/deploy/go.mod
# so that GOPATH mode resolves sprig's and semver's /v3 import paths; the temporary GOPATH only gives them
# an import path of their own.
export GO111MODULE=off GOFLAGS='' GOPROXY=off GOTOOLCHAIN=local CGO_ENABLED=0
export GOCACHE=$root/.cache/go-build
mkdir -p "$work/gopath/src"
ln -s "$root/tests/deploy" "$work/gopath/src/mqtt2pg-deploy"
build_go() {
	(cd "$work/gopath/src/mqtt2pg-deploy" && GOPATH=$work/gopath:/usr/share/gocode go build -o "$work/$1" "./$1")
}
if build_go helmrender && build_go deploycheck; then
	ok "built helmrender and deploycheck offline ($(go version | cut -d' ' -f3), Debian's sprig, sigs.k8s.io/yaml, gojsonschema, yaml.v3)"
else
	fail "building the Go programs in tests/deploy"
	echo "$passed passed, $failed failed"
	exit 1
fi
render() { "$work/helmrender" "$@"; }

# --- helmrender against a golden file ----------------------------------------------------------------
fixture=tests/deploy/testdata/fixture
if render -f $fixture/override.yaml --name rel --namespace ns --notes "$work/fx-notes" $fixture >"$work/fx.yaml" 2>"$work/fx.err" &&
	diff -u tests/deploy/testdata/fixture.golden "$work/fx.yaml" >"$work/fx.diff"; then
	ok "helmrender renders the fixture chart as tests/deploy/testdata/fixture.golden expects (Helm 3 semantics)"
else
	fail "helmrender fixture: $(cat "$work/fx.err" "$work/fx.diff" | head -n 20 | tr '\n' ' ')"
fi
check "helmrender renders NOTES.txt apart from the manifests" grep -qx 'rel-fixture notes: install' "$work/fx-notes"
check "helmrender renders an upgrade (.Release.IsUpgrade)" \
	bash -c "'$work/helmrender' -f $fixture/override.yaml --upgrade --notes '$work/fx-up' $fixture >/dev/null 2>&1 && grep -qx 'release-name-fixture notes: upgrade' '$work/fx-up'"
check "helmrender fails like helm on a missing required value" \
	bash -c "'$work/helmrender' $fixture 2>&1 >/dev/null | grep -qF 'execution error at (fixture/templates/configmap.yaml:8:15): need .Values.must'"
check "helmrender enforces the chart's kubeVersion" \
	bash -c "'$work/helmrender' --kube-version v1.19.0 -f $fixture/override.yaml $fixture 2>&1 >/dev/null | grep -q 'incompatible with Kubernetes v1.19.0'"

# --- mqtt2pg, built the way the Dockerfile builds it ------------------------------------------------
if cmake -S . -B "$work/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMQTT2PG_TESTS=OFF >"$work/cmake.log" 2>&1 &&
	cmake --build "$work/build" -j"$(nproc)" >>"$work/cmake.log" 2>&1 &&
	cmake --install "$work/build" --prefix "$work/opt/mqtt2pg" >>"$work/cmake.log" 2>&1 &&
	[[ -x $work/opt/mqtt2pg/bin/mqtt2pg ]]; then
	ok "the Dockerfile's CMake commands build and install bin/mqtt2pg"
else
	fail "building mqtt2pg as the Dockerfile does: $(tail -n 5 "$work/cmake.log" | tr '\n' ' ')"
	echo "$passed passed, $failed failed"
	exit 1
fi
mqtt2pg=$work/opt/mqtt2pg/bin/mqtt2pg
# check-config with a clean environment: no MQTT2PG_* override may hide what the file says.
check_config() { env -i PATH="$PATH" "$mqtt2pg" check-config -c "$1"; }

# The runtime packages the binary needs: each NEEDED library, resolved by ldd, to its Debian package.
needed=()
while read -r lib; do
	path=$(ldd "$mqtt2pg" | awk -v l="$lib" '$1 == l { print $3 }')
	pkg=$(dpkg-query -S "$(readlink -f "$path")" 2>/dev/null || dpkg-query -S "$path" 2>/dev/null || echo "?$lib:")
	needed+=("${pkg%%:*}")
done < <(objdump -p "$mqtt2pg" | awk '$1 == "NEEDED" { print $2 }')
needed_csv=$(printf '%s\n' "${needed[@]}" | sort -u | paste -sd, -)
tally "$work/deploycheck" dockerfile --context . --needed-packages "$needed_csv" deploy/docker/Dockerfile

# --- Compose ---------------------------------------------------------------------------------------
tally "$work/deploycheck" compose deploy/compose/docker-compose.yml
check "compose: mqtt2pg check-config accepts deploy/compose/mqtt2pg.conf" check_config deploy/compose/mqtt2pg.conf
check "compose: the role script is valid sh" sh -n deploy/compose/postgres/10-mqtt2pg-roles.sh

# The broker with the compose configuration, on a free loopback port: the ACL must hold.
free_port() {
	local port
	for _ in $(seq 1 50); do
		port=$((20000 + RANDOM % 30000))
		if ! ss -Htln "sport = :$port" | grep -q .; then echo "$port"; return 0; fi
	done
	return 1
}
mq=$work/mosquitto
mkdir -p "$mq/auth" "$mq/data"
cp deploy/compose/mosquitto/passwd deploy/compose/mosquitto/acl "$mq/auth/"
port=$(free_port)
sed -e "s#/mosquitto/auth/#$mq/auth/#; s#/mosquitto/data/#$mq/data/#; s#^listener 1883\$#listener $port 127.0.0.1#" \
	-e 's#^log_dest stdout#log_dest stderr#' deploy/compose/mosquitto/mosquitto.conf >"$mq/mosquitto.conf"
if mosquitto_passwd -U "$mq/auth/passwd" >"$mq/passwd.log" 2>&1; then
	ok "compose: mosquitto_passwd -U hashes mosquitto/passwd"
else
	fail "compose: mosquitto_passwd -U mosquitto/passwd: $(cat "$mq/passwd.log")"
fi
chmod 0600 "$mq/auth/passwd" "$mq/auth/acl"
# As root, mosquitto drops to its own user: give it the files, as the mosquitto-auth service does.
if [[ $EUID -eq 0 ]] && id mosquitto >/dev/null 2>&1; then
	chmod 0711 "$work"
	chown -R mosquitto: "$mq"
fi
mosquitto -c "$mq/mosquitto.conf" >"$mq/broker.log" 2>&1 &
mosquitto_pid=$!
for _ in $(seq 1 50); do ss -Htln "sport = :$port" | grep -q . && break; sleep 0.1; done
if ss -Htln "sport = :$port" | grep -q .; then
	ok "compose: mosquitto 2 starts with mosquitto/mosquitto.conf (max_queued_messages 0, passwords, ACL)"
	# shellcheck disable=SC2016 # a literal $share topic
	timeout 10 mosquitto_sub -h 127.0.0.1 -p "$port" -u mqtt2pg -P bridge-secret -V 5 \
		-t '$share/mqtt2pg/solar/+/+/telemetry' -q 1 -v -W 8 >"$mq/received" 2>"$mq/sub.err" &
	sub=$!
	sleep 0.5
	pub() { mosquitto_pub -h 127.0.0.1 -p "$port" -q 1 "$@" 2>&1; }
	pub -u INV-0001 -P inv-0001-secret -t solar/other/OTHER-1/telemetry -m spoofed >/dev/null || true
	pub -u INV-0001 -P inv-0001-secret -t solar/demo/INV-0002/telemetry -m neighbour >/dev/null || true
	pub -u INV-0001 -P wrong -t solar/demo/INV-0001/telemetry -m badpassword >"$mq/badpw" || true
	pub -t solar/demo/INV-0001/telemetry -m anonymous >"$mq/anon" || true
	pub -u INV-0001 -P inv-0001-secret -t solar/demo/INV-0001/telemetry -m own
	pub -u OTHER-1 -P other-1-secret -t solar/other/OTHER-1/telemetry -m other
	for _ in $(seq 1 50); do [[ $(wc -l <"$mq/received") -ge 2 ]] && break; sleep 0.1; done
	kill "$sub" 2>/dev/null || true
	wait "$sub" 2>/dev/null || true
	check "compose: the bridge user reads every tenant's tree through its shared subscription" \
		bash -c "grep -qx 'solar/demo/INV-0001/telemetry own' '$mq/received' && grep -qx 'solar/other/OTHER-1/telemetry other' '$mq/received'"
	check "compose: a device cannot publish into another tenant's or another device's tree" \
		bash -c "! grep -qE 'spoofed|neighbour' '$mq/received'"
	check "compose: wrong passwords and anonymous clients are refused" \
		bash -c "grep -qi 'not authori' '$mq/badpw' && grep -qi 'not authori' '$mq/anon' && ! grep -qE 'badpassword|anonymous' '$mq/received'"
else
	fail "compose: mosquitto did not start with mosquitto/mosquitto.conf: $(tail -n 5 "$mq/broker.log" | tr '\n' ' ')"
fi
kill "$mosquitto_pid" 2>/dev/null || true
wait "$mosquitto_pid" 2>/dev/null || true
mosquitto_pid=

# --- the chart ---------------------------------------------------------------------------------------
tally "$work/deploycheck" chart $chart

# render_and_check LABEL CHECK-ARGS RENDER-ARGS...: render, check the objects, check the rendered config.
render_and_check() {
	local label=$1 args=$2
	shift 2
	local out=$work/render-$label.yaml
	if render "$@" --notes "$work/notes-$label.txt" $chart >"$out" 2>"$work/render-$label.err"; then
		ok "$label: the chart renders ($(tail -n 1 "$work/render-$label.err" | sed 's/^helmrender: //'))"
	else
		fail "$label: rendering: $(tr '\n' ' ' <"$work/render-$label.err")"
		return
	fi
	check "$label: NOTES.txt renders" test -s "$work/notes-$label.txt"
	# shellcheck disable=SC2086 # args is a list of flags
	tally "$work/deploycheck" manifests --label "$label" --config-out "$work/config-$label.conf" $args "$out"
	if [[ -s $work/config-$label.conf ]]; then
		# The metrics token is a Secret mounted in the pod; check-config reads it, so give it one here (0600:
		# mqtt2pg refuses a token file others may read).
		if grep -q 'metrics_token_file = "/etc/mqtt2pg-metrics/token"' "$work/config-$label.conf"; then
			printf 'test-token\n' >"$work/metrics-token"
			chmod 600 "$work/metrics-token"
			sed -i "s|/etc/mqtt2pg-metrics/token|$work/metrics-token|" "$work/config-$label.conf"
		fi
		check "$label: mqtt2pg check-config accepts the rendered mqtt2pg.conf" check_config "$work/config-$label.conf"
	fi
}

render_and_check default "--expect-replicas 2 --expect-grace 60 \
--expect-kinds StatefulSet,ConfigMap,Secret,Service,ServiceAccount,PodDisruptionBudget,Pod \
--absent-kinds Job,ServiceMonitor,NetworkPolicy"
for values in "$chart"/ci/*-values.yaml; do
	label=ci/$(basename "$values" -values.yaml)
	render_and_check "${label//\//-}" "$(sed -n 's/^# check: //p' "$values")" -f "$values"
done
for values in tests/deploy/values/*.yaml; do
	render_and_check "values-$(basename "$values" .yaml)" "$(sed -n 's/^# check: //p' "$values")" -f "$values"
done
# The libconfig rendering: both routes reach the bridge, the string is escaped for libconfig.
routes_and_escaping() {
	local conf=$work/config-values-escaping-and-routes.conf
	check_config "$conf" | grep -q '(2 route(s)' &&
		grep -qF "conninfo = \"host=postgresql dbname=mqtt2pg user=mqtt2pg_writer application_name='mqtt2pg \\\\ \\\"eu\\\"'\";" "$conf"
}
check "values-escaping-and-routes: the bridge reads both routes, the conninfo's quotes and backslash are escaped" routes_and_escaping
# Release names at the edges: a name containing the chart's (fullname is the release name) and one long
# enough to be cut (a StatefulSet name must stay within 52 characters).
render_and_check release-mqtt2pg "--expect-replicas 2" --name mqtt2pg
render_and_check long-release-name "--expect-replicas 2" --name solar-telemetry-bridge-production-eu-west-1-blue-green
check "release-mqtt2pg: a release named mqtt2pg is not doubled (StatefulSet mqtt2pg)" \
	grep -qx '  name: mqtt2pg' "$work/render-release-mqtt2pg.yaml"
check "default: render as an upgrade (NOTES.txt says upgraded)" \
	bash -c "'$work/helmrender' --upgrade --notes '$work/notes-upgrade.txt' $chart >/dev/null 2>&1 && grep -q 'is upgraded as' '$work/notes-upgrade.txt'"

# checksum/config follows the configuration, and only it.
checksum() { grep -m1 'checksum/config:' "$1" | awk '{ print $2 }' || true; }
printf 'config:\n  log:\n    level: "debug"\n' >"$work/v-log.yaml"
printf 'replicaCount: 5\n' >"$work/v-replicas.yaml"
render -f "$work/v-log.yaml" $chart >"$work/r-log.yaml" 2>/dev/null
render -f "$work/v-replicas.yaml" $chart >"$work/r-replicas.yaml" 2>/dev/null
base=$(checksum "$work/render-default.yaml")
if [[ -n $base && $(checksum "$work/r-log.yaml") != "$base" ]]; then
	ok "checksum/config changes when the config changes (log.level), so the pods roll"
else
	fail "checksum/config did not change with config.log.level"
fi
if [[ -n $base && $(checksum "$work/r-replicas.yaml") == "$base" ]]; then
	ok "checksum/config stays when only replicaCount changes"
else
	fail "checksum/config changed with replicaCount"
fi

# Values the schema must refuse, each with the error it must name.
for bad in tests/deploy/bad-values/*.yaml; do
	expect=$(sed -n 's/^# expect-error: //p' "$bad")
	template_expect=$(sed -n 's/^# expect-template-error: //p' "$bad")
	if [[ -n $template_expect ]]; then # a rule between two values, which JSON Schema cannot state: a fail
		if render -f "$bad" $chart >/dev/null 2>"$work/bad.err"; then
			fail "the chart accepts $(basename "$bad") ($(sed -n 1p "$bad" | sed 's/^# //'))"
		elif grep -qF -- "$template_expect" "$work/bad.err"; then
			ok "the chart refuses $(basename "$bad" .yaml): $template_expect"
		else
			fail "$(basename "$bad"): refused, but not for '$template_expect': $(tr '\n' ' ' <"$work/bad.err")"
		fi
		continue
	fi
	if render -f "$bad" $chart >/dev/null 2>"$work/bad.err"; then
		fail "values.schema.json accepts $(basename "$bad") ($(sed -n 2p "$bad" | sed 's/^# //'))"
	elif grep -qF -- "$expect" "$work/bad.err" && grep -q "don't meet the specifications of the schema" "$work/bad.err"; then
		ok "values.schema.json refuses $(basename "$bad" .yaml): $(grep -m1 '^- ' "$work/bad.err" | sed 's/^- //')"
	else
		fail "$(basename "$bad"): refused, but not for '$expect': $(tr '\n' ' ' <"$work/bad.err")"
	fi
done

echo "helm_check.sh: $(($(date +%s) - start)) s"
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
