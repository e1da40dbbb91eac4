#!/usr/bin/env bash
# it_security_daemon.sh - issue 12, findings 5-8: the daemon's side of the attack suite. Each check is an
# attack or a misuse that the daemon must refuse or survive; the test runs every check and fails at the end if
# any did not hold, listing them (so that one run on old code shows every hole at once).
#
#   secrets  a password in argv is scrubbed from /proc/PID/cmdline, --db-file reads the conninfo from a file,
#            secret files readable by others are refused, core dumps off and the process not dumpable
#   http     loopback by default, /healthz answerable while 100 slowloris connections are held, a request
#            that never completes is closed within http.timeout, /metrics behind a bearer token when set
#   inject   U+202E, U+2028 and ESC from a topic or a payload never reach the log raw; the CLI refuses control
#            and bidi characters in names and escapes what it prints
#   cli      non-finite limits refused, the key=value point syntax (names with ':'), device add is one
#            transaction, database constraint errors read as sentences
#
# IT_PHASES="secrets http" runs a subset.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
. "$here/bridge.sh"

PHASES=${IT_PHASES:-secrets http inject cli}
FAILED=()
CHECKS=0

# check DESCRIPTION CMD...: runs CMD; records a failure instead of exiting, so every check runs.
check()
{
	local what=$1
	shift
	CHECKS=$((CHECKS + 1))
	if "$@"; then
		printf 'ok: %s\n' "$what"
	else
		printf 'NOT OK: %s\n' "$what"
		FAILED+=("$what")
	fi
}

phase() { [[ " $PHASES " == *" $1 "* ]]; }

it_setup sec_daemon
pg_start
mosq_start
db_prepare
m2p_admin tenant add acme >/dev/null
m2p_admin device add INV-1 --tenant acme --point p:W >/dev/null

# silent_listener PORT READYFILE: accepts TCP connections and never answers, so a libpq connect blocks there;
# touches READYFILE at the first connection (the client then has got past its start-up).
silent_listener()
{
	perl -MIO::Socket::INET -e '
		my $l = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => $ARGV[0], Listen => 16,
					      ReuseAddr => 1) or die "listen: $!";
		my @c;
		while (my $c = $l->accept) { push @c, $c; open(my $f, ">", $ARGV[1]); close($f); }' "$1" "$2" &
	it_track_pid $!
	wait_until 10 _it_port_open "$1" || fail "silent listener on $1 did not start"
}

# ----------------------------------------------------------------------------------------------------------
# secrets
# ----------------------------------------------------------------------------------------------------------
if phase secrets; then
	it_log "phase secrets"
	hang_port=$(free_port)
	silent_listener "$hang_port" "$IT_DIR/hang.accepted"

	# A password on the command line: scrubbed from /proc/PID/cmdline once mqtt2pg has started, and a warning.
	for form in "host=127.0.0.1 port=$hang_port dbname=mqtt2pg user=mqtt2pg_owner password=s3cret-argv connect_timeout=60" \
		"postgresql://mqtt2pg_owner:s3cret-argv@127.0.0.1:$hang_port/mqtt2pg?connect_timeout=60"; do
		rm -f "$IT_DIR/hang.accepted"
		"$MQTT2PG_BIN" --db "$form" tenant list >"$IT_DIR/argv.out" 2>"$IT_DIR/argv.err" &
		pid=$!
		it_track_pid "$pid"
		wait_until 30 test -e "$IT_DIR/hang.accepted" || fail "mqtt2pg never connected to the silent listener"
		cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline")
		check "password of '${form%%:*}...' form not in /proc/PID/cmdline (ps shows: $cmdline)" \
			test "${cmdline/s3cret-argv/}" == "$cmdline"
		check "the rest of the conninfo stays visible in ps" grep -q "127.0.0.1" <<<"$cmdline"
		check "a warning says the password was visible to other users" \
			grep -qi "password.*visible" "$IT_DIR/argv.err"
		limits=$(awk '/Max core file size/ { print $5 " " $6 }' "/proc/$pid/limits")
		check "core dumps off (RLIMIT_CORE $limits)" test "$limits" == "0 0"
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		it_untrack_pid "$pid"
	done

	# Not dumpable: the files of /proc/PID of a non-dumpable process belong to root, whoever runs it (needs root to see).
	if ((EUID == 0)); then
		rm -f "$IT_DIR/hang.accepted"
		setpriv --reuid=nobody --regid=nogroup --clear-groups "$MQTT2PG_BIN" \
			--db "host=127.0.0.1 port=$hang_port dbname=x user=x connect_timeout=60" tenant list \
			>/dev/null 2>"$IT_DIR/nobody.err" &
		pid=$!
		it_track_pid "$pid"
		wait_until 30 test -e "$IT_DIR/hang.accepted" || fail "mqtt2pg as nobody never connected ($(cat "$IT_DIR/nobody.err"))"
		check "process is not dumpable (/proc/PID/environ owned by uid $(stat -c %u "/proc/$pid/environ"), runs as nobody)" \
			test "$(stat -c %u "/proc/$pid/environ")" == 0
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		it_untrack_pid "$pid"
	fi

	# --db-file: the conninfo from a file of mode 0600; refused when others may read it.
	dbfile=$IT_DIR/admin.conninfo
	printf '%s\n' "$OWNER_DB" >"$dbfile"
	chmod 600 "$dbfile"
	check "--db-file with a 0600 file runs the command" \
		bash -c '"$1" --db-file "$2" tenant list 2>&1 | grep -q acme' _ "$MQTT2PG_BIN" "$dbfile"
	chmod 644 "$dbfile"
	out=$("$MQTT2PG_BIN" --db-file "$dbfile" tenant list 2>&1) && rc=0 || rc=$?
	check "--db-file readable by others (0644) is refused with a reason (rc $rc: $out)" \
		bash -c '[[ $1 != 0 && $2 == *"$3"* && $2 == *0644* && $2 != *acme* ]]' _ "$rc" "$out" "$dbfile"

	# password_file and the metrics token file: the same rule, at check-config.
	pwfile=$IT_DIR/db.password
	echo "$WRITER_PASSWORD" >"$pwfile"
	chmod 666 "$pwfile"
	conf=$IT_DIR/secrets.conf
	bridge_config "$conf"
	sed -i "s|writers = 2;|writers = 2; password_file = \"$pwfile\";|" "$conf"
	out=$("$MQTT2PG_BIN" check-config -c "$conf" 2>&1) && rc=0 || rc=$?
	check "a 0666 database.password_file is refused (rc $rc: $out)" \
		bash -c '[[ $1 != 0 && $2 == *"$3"* && $2 == *0666* ]]' _ "$rc" "$out" "$pwfile"
	chmod 600 "$pwfile"
	check "a 0600 database.password_file is accepted" "$MQTT2PG_BIN" check-config -c "$conf"
	if ((EUID == 0)); then
		chmod 640 "$pwfile"
		check "a root-owned 0640 password_file is accepted (group-readable, as Kubernetes mounts it)" \
			"$MQTT2PG_BIN" check-config -c "$conf"
		chown nobody "$pwfile"
		out=$("$MQTT2PG_BIN" check-config -c "$conf" 2>&1) && rc=0 || rc=$?
		check "a 0640 password_file owned by someone else is refused (rc $rc: $out)" \
			bash -c '[[ $1 != 0 && $2 == *"$3"* ]]' _ "$rc" "$out" "$pwfile"
	fi
	token=$IT_DIR/metrics.token
	echo "tok-$RANDOM$RANDOM" >"$token"
	chmod 644 "$token"
	bridge_config "$conf" "http = { port = $(free_port); metrics_token_file = \"$token\"; };"
	out=$("$MQTT2PG_BIN" check-config -c "$conf" 2>&1) && rc=0 || rc=$?
	check "a 0644 http.metrics_token_file is refused for its mode (rc $rc: $out)" \
		bash -c '[[ $1 != 0 && $2 == *"$3"* && $2 == *0644* ]]' _ "$rc" "$out" "$token"
fi

# ----------------------------------------------------------------------------------------------------------
# http
# ----------------------------------------------------------------------------------------------------------
# probes N URL: N requests to URL, each must answer 200 within 20 s; prints how many did.
probes()
{
	local n=$1 url=$2 ok=0 i
	for ((i = 0; i < n; i++)); do
		[[ "$(curl -s -o /dev/null -m 20 -w '%{http_code}' "$url")" == 200 ]] && ok=$((ok + 1))
	done
	echo "$ok"
}

held_at_least() { [[ -s "$1" ]] && (($(awk '{ print $2 }' "$1") >= $2)); }

if phase http; then
	it_log "phase http"
	port=$(free_port)
	conf=$IT_DIR/http.conf
	bridge_config "$conf" "http = { port = $port; };"
	bridge_start "$conf"
	listeners=$(ss -Htln "sport = :$port" | awk '{ print $4 }' | tr '\n' ' ')
	check "http.listen defaults to loopback (listening on: $listeners)" test "$listeners" == "127.0.0.1:$port "
	url=http://127.0.0.1:$port

	# 100 connections from 16 source addresses, each sending a header line a second and never finishing.
	perl "$here/slowloris.pl" hold "$port" 100 16 "$IT_DIR/slow.status" &
	slow_pid=$!
	it_track_pid "$slow_pid"
	wait_until 60 held_at_least "$IT_DIR/slow.status" 60 ||
		it_log "slowloris holds fewer than 60: $(cat "$IT_DIR/slow.status" 2>/dev/null)"
	it_log "slowloris: $(cat "$IT_DIR/slow.status" 2>/dev/null)"
	ok=$(probes 5 "$url/healthz")
	check "/healthz answered 5 of 5 probes under 100 slowloris connections (answered $ok)" test "$ok" == 5
	evicted=$(metric_at "$port" mqtt2pg_http_connections_evicted_total) || evicted=
	check "evictions counted in mqtt2pg_http_connections_evicted_total (${evicted:-absent})" \
		test "${evicted:-0}" -ge 1
	kill "$slow_pid" 2>/dev/null || true
	wait "$slow_pid" 2>/dev/null || true
	it_untrack_pid "$slow_pid"

	# One request trickled a byte a second: idle time never reaches a timeout, the whole request's must (the
	# default, 10 s; the script gives up after 120 s).
	perl "$here/slowloris.pl" trickle "$port" "$IT_DIR/trickle.out" &
	trickle_pid=$!
	it_track_pid "$trickle_pid"
	wait "$trickle_pid" || true
	it_untrack_pid "$trickle_pid"
	check "a request trickled a byte a second is closed by the default http.timeout of 10 s ($(cat "$IT_DIR/trickle.out"))" \
		grep -q "^closed" "$IT_DIR/trickle.out"
	bridge_stop
	check "bridge exits cleanly after the slowloris run" test "$BRIDGE_RC" == 0

	# /metrics behind a bearer token; the probes stay open.
	token=$IT_DIR/metrics.token
	echo "tok-$RANDOM$RANDOM" >"$token"
	chmod 600 "$token"
	port=$(free_port)
	url=http://127.0.0.1:$port
	bridge_config "$conf" "http = { port = $port; metrics_token_file = \"$token\"; };"
	# bridge_start would end the test if the bridge refuses the key (old code): start it by hand.
	BRIDGE_RUNS=$((BRIDGE_RUNS + 1))
	BRIDGE_LOG=$IT_DIR/bridge.$BRIDGE_RUNS.log
	MQTT2PG_DB_PASSWORD=$WRITER_PASSWORD "$MQTT2PG_BIN" -c "$conf" run >"$BRIDGE_LOG" 2>&1 &
	BRIDGE_PID=$!
	it_track_pid "$BRIDGE_PID"
	it_track_log "$BRIDGE_LOG"
	if wait_until 20 grep -q "subscribed to" "$BRIDGE_LOG"; then
		code() { curl -s -o /dev/null -m 20 -w '%{http_code}' "$@"; }
		check "/metrics without a token is 401" test "$(code "$url/metrics")" == 401
		check "/metrics with a wrong token is 401" \
			test "$(code -H "Authorization: Bearer wrong" "$url/metrics")" == 401
		check "/metrics with the token is 200" \
			test "$(code -H "Authorization: Bearer $(cat "$token")" "$url/metrics")" == 200
		check "/healthz needs no token" test "$(code "$url/healthz")" == 200
		bridge_stop
	else
		check "bridge starts with http.metrics_token_file ($(tail -n 3 "$BRIDGE_LOG"))" false
		kill "$BRIDGE_PID" 2>/dev/null || true
		wait "$BRIDGE_PID" 2>/dev/null || true
		it_untrack_pid "$BRIDGE_PID"
	fi
fi

# ----------------------------------------------------------------------------------------------------------
# inject
# ----------------------------------------------------------------------------------------------------------
RLO=$'\u202e'
LSEP=$'\u2028'
ESC=$'\e'
# no_raw FILE: FILE holds none of ESC, U+202E (RLO), U+2066 (LRI), U+2028 (LINE SEPARATOR).
no_raw() { ! LC_ALL=C grep -q $'\e\|\xe2\x80\xae\|\xe2\x81\xa6\|\xe2\x80\xa8' "$1"; }

if phase inject; then
	it_log "phase inject"
	conf=$IT_DIR/inject.conf
	bridge_config "$conf" "log = { level = \"debug\"; };"
	sed -i 's/^log = { level = "info"; };$//' "$conf"
	bridge_start "$conf"
	publish "solar/acme/EVIL${RLO}gnp.exe${LSEP}x/telemetry" '{"measurements":{"p":1}}'
	publish solar/acme/INV-1/telemetry "{\"measurements\":{\"q${RLO}\\u001b[2J${LSEP}\":1}}"
	wait_until 20 rejected_ge 2 || fail "the two hostile messages were not rejected"
	bridge_stop
	check "the bridge log holds no raw ESC, U+202E or U+2028 from topics and payloads" no_raw "$BRIDGE_LOG"
	check "the bridge log shows them escaped (\\u202e)" grep -q '\\u202e' "$BRIDGE_LOG"

	refused() # refused WHAT CMD...: CMD must fail, say why, and leave nothing behind (checked by the caller)
	{
		local what=$1 out rc
		shift
		out=$("$@" 2>&1) && rc=0 || rc=$?
		check "$what is refused (rc $rc: $(printf '%q' "$out"))" \
			bash -c '[[ $1 != 0 && $2 == *"control or bidirectional"* ]]' _ "$rc" "$out"
	}
	refused "tenant --name with ESC" m2p_admin tenant add t-esc --name "${ESC}[31mRED"
	refused "tenant --name with U+202E" m2p_admin tenant add t-rlo --name "abc${RLO}def"
	refused "device --model with U+2028" m2p_admin device add D-SEP --tenant acme --model "m${LSEP}x"
	refused "point --unit with U+2066" m2p_admin point add INV-1 u1 --unit $'W\u2066'
	refused "device --point unit with ESC" m2p_admin device add D-ESC --tenant acme --point "p:${ESC}[2J"
	check "nothing was created by the refused commands" test "$(psql_super "SELECT (SELECT count(*) FROM tenants
		WHERE slug IN ('t-esc','t-rlo')) + (SELECT count(*) FROM devices WHERE serial IN ('D-SEP','D-ESC'))
		+ (SELECT count(*) FROM points WHERE name = 'u1')")" == 0

	# What is already in the database (written by other means) is printed escaped.
	psql_super "INSERT INTO tenants (slug, name) VALUES ('t-raw', E'\\x1b]0;pwned\\x07${RLO}x')" \
		"INSERT INTO devices (tenant_id, serial, model) SELECT id, 'RAW-1', E'\\x1b[2Jm${LSEP}' FROM tenants WHERE slug = 't-raw'"
	m2p_admin tenant list >"$IT_DIR/tenants.out" 2>&1
	m2p_admin device list >"$IT_DIR/devices.out" 2>&1
	check "tenant list prints no raw control or bidi characters" no_raw "$IT_DIR/tenants.out"
	check "device list prints no raw control or bidi characters" no_raw "$IT_DIR/devices.out"
	check "tenant list shows the escaped name" grep -q '\\x1b\]0;pwned' "$IT_DIR/tenants.out"
fi

# ----------------------------------------------------------------------------------------------------------
# cli
# ----------------------------------------------------------------------------------------------------------
if phase cli; then
	it_log "phase cli"
	bad_number() # bad_number WHAT ARGS...: point add with these limits must fail and create no point
	{
		local what=$1 out rc
		shift
		out=$(m2p_admin point add INV-1 lim "$@" 2>&1) && rc=0 || rc=$?
		check "point add $what is refused (rc $rc: $out)" bash -c '[[ $1 != 0 && $2 == *finite* ]]' _ "$rc" "$out"
	}
	bad_number "--min nan" --min nan
	bad_number "--min -inf --max inf" --min -inf --max inf
	bad_number "--max Infinity" --max Infinity
	bad_number "--min 12abc" --min 12abc
	out=$(m2p_admin device add D-NAN --tenant acme --point "p:W:NaN:1" 2>&1) && rc=0 || rc=$?
	check "device add --point with a NaN minimum is refused (rc $rc: $out)" \
		bash -c '[[ $1 != 0 && $2 == *finite* ]]' _ "$rc" "$out"
	check "no point and no device were created" test "$(psql_super "SELECT (SELECT count(*) FROM points
		WHERE name = 'lim') + (SELECT count(*) FROM devices WHERE serial = 'D-NAN')")" == 0

	# key=value point specs: a name with ':' (Shelly's switch:0/apower), commas escaped in a unit.
	out=$(m2p_admin device add SHELLY-1 --tenant acme \
		--point 'name=switch:0/apower,unit=W,min=0,max=3500,kind=gauge' \
		--point 'name=switch:0/aenergy.total,unit=Wh,kind=counter' --point 'name=x,unit=a\,b' 2>&1) && rc=0 || rc=$?
	got=$(psql_super "SELECT string_agg(p.name || '|' || p.unit || '|' || coalesce(p.min_value::text, '') || '|' ||
		coalesce(p.max_value::text, '') || '|' || p.kind, ' ' ORDER BY p.name) FROM points p
		JOIN devices d ON d.id = p.device_id WHERE d.serial = 'SHELLY-1'")
	check "device add --point name=...,unit=...: names with ':' and escaped commas (rc $rc: $got)" \
		test "$got" == "switch:0/aenergy.total|Wh|||counter switch:0/apower|W|0|3500|gauge x|a,b|||gauge"
	out=$(m2p_admin device add SHELLY-2 --tenant acme --point 'name=p,colour=red' 2>&1) && rc=0 || rc=$?
	check "an unknown key in --point is refused and named (rc $rc: $out)" \
		bash -c '[[ $1 != 0 && $2 == *colour* ]]' _ "$rc" "$out"

	# device add is one transaction: a bad point leaves no half-made device.
	out=$(m2p_admin device add HALF-1 --tenant acme --point good:W --point 'bad name:W' 2>&1) && rc=0 || rc=$?
	check "device add with one bad point fails (rc $rc)" test "$rc" != 0
	check "... and leaves no device behind" test "$(psql_super "SELECT count(*) FROM devices WHERE serial = 'HALF-1'")" == 0

	# Constraint errors as sentences, not "violates check constraint tenants_slug_check".
	sentence() # sentence WHAT EXPECTED CMD...: CMD fails, its message holds EXPECTED and no constraint jargon
	{
		local what=$1 want=$2 out rc
		shift 2
		out=$("$@" 2>&1) && rc=0 || rc=$?
		check "$what reads as a sentence (rc $rc: $out)" \
			bash -c '[[ $1 != 0 && $2 == *"$3"* && $2 != *constraint* && $2 != *"duplicate key"* ]]' _ "$rc" "$out" "$want"
	}
	sentence "an invalid slug" "slug" m2p_admin tenant add 'Bad Slug'
	sentence "a duplicate tenant" "already exists" m2p_admin tenant add acme
	sentence "a duplicate serial" "already exists" m2p_admin device add INV-1 --tenant acme
	sentence "an invalid point name" "point name" m2p_admin point add INV-1 'bad name'
	sentence "min above max" "min" m2p_admin point add INV-1 mm --min 5 --max 1
	sentence "an unknown kind" "kind" m2p_admin point add INV-1 kk --kind histogram
fi

if ((${#FAILED[@]} > 0)); then
	printf '\n%d of %d checks failed:\n' "${#FAILED[@]}" "$CHECKS" >&2
	printf '  - %s\n' "${FAILED[@]}" >&2
	fail "it_security_daemon: ${#FAILED[@]} of $CHECKS checks failed"
fi
echo "PASS it_security_daemon ($CHECKS checks)"
