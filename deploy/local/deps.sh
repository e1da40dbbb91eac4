#!/usr/bin/env bash
# deploy/local/deps.sh - install the Debian 12 packages mqtt2pg needs to
# build, run and test (unit + integration).
#
# Idempotent: if every package is already installed it does nothing and exits
# 0 without touching the network.  Otherwise it runs `apt-get update` and
# installs the missing packages non-interactively.  Works without stdin, as
# root directly or through sudo otherwise.
#
# Note: on some setups installing postgresql-15 auto-creates and starts a
# "main" cluster on port 5432.  Nothing in this project uses it (the
# integration tests start their own throw-away clusters on free ports), so it
# is left alone.
set -euo pipefail

PACKAGES=(
	# build
	build-essential cmake pkg-config clang libclang-rt-14-dev
	# libraries
	libpaho-mqtt-dev libpq-dev libcjson-dev libconfig-dev libcunit1-dev libmicrohttpd-dev
	zlib1g-dev # mqtt2pg import reads gzip-compressed exports
	# run + integration tests
	postgresql-15 postgresql-client-15 mosquitto mosquitto-clients
	procps iproute2 curl jq
	# the zones of routes with a timezone, and of unit_formats
	tzdata
	# deploy checks (tests/deploy/helm_check.sh): Go and the libraries its chart renderer builds
	# against offline from /usr/share/gocode; apt brings sprig's own dependencies along
	golang-go golang-github-masterminds-sprig-dev golang-k8s-sigs-yaml-dev golang-gopkg-yaml.v3-dev
	golang-github-xeipuuv-gojsonschema-dev
)

# Print the packages from PACKAGES that are not fully installed.
missing_packages()
{
	local pkg status
	for pkg in "${PACKAGES[@]}"; do
		status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
		if [[ "$status" != installed ]]; then
			printf '%s\n' "$pkg"
		fi
	done
}

# Run a command as root: directly if we already are, through sudo otherwise.
as_root()
{
	if [[ $EUID -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		# -n: never prompt for a password when there is no terminal
		if [[ -t 2 ]]; then sudo -- "$@"; else sudo -n -- "$@"; fi
	else
		echo "deps.sh: not root and sudo is not available" >&2
		return 1
	fi
}

main()
{
	local missing
	mapfile -t missing < <(missing_packages)
	if [[ ${#missing[@]} -eq 0 ]]; then
		echo "deps.sh: all ${#PACKAGES[@]} packages already installed"
		return 0
	fi

	echo "deps.sh: installing: ${missing[*]}"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update </dev/null
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
		"${missing[@]}" </dev/null

	mapfile -t missing < <(missing_packages)
	if [[ ${#missing[@]} -ne 0 ]]; then
		echo "deps.sh: still missing after install: ${missing[*]}" >&2
		return 1
	fi
	echo "deps.sh: done"
}

main "$@"
