# shellcheck shell=bash
# tests/integration/lib.sh - shared harness for the mqtt2pg integration tests.
#
# Source it from a test script that runs under `set -euo pipefail`:
#
#	. tests/integration/lib.sh
#	it_setup my_test          # throw-away $IT_DIR + EXIT trap
#	pg_start                  # private PostgreSQL 15 cluster, $SUPER_DB/$OWNER_DB
#	mosq_start                # private mosquitto broker, $MQTT_URI
#	...
#
# Everything listens on 127.0.0.1 only, on free random ports, with all state
# under $IT_DIR.  The EXIT trap stops everything that was started (also when
# the test fails or is interrupted) and removes $IT_DIR unless IT_KEEP=1.
#
# Processes the test starts itself (the daemon under test, background
# mosquitto_sub, ...) must be registered with it_track_pid so the trap can stop
# them; log files worth showing on failure are registered with it_track_log.
#
# Works as root (the normal case: initdb/postgres are then run as the
# `postgres` user through runuser, mosquitto drops to the `mosquitto` user by
# itself) and, for convenience, as an ordinary user (everything runs as that
# user).

# PostgreSQL 15 server binaries (initdb, pg_ctl, postgres) are not on $PATH on
# Debian.
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

# ---------------------------------------------------------------------------
# Logging and assertions
# ---------------------------------------------------------------------------

# it_log MSG...: timestamped progress line on stderr, so it does not mix with
# values a test captures from stdout.
it_log()
{
	printf '[%(%H:%M:%S)T %s] %s\n' -1 "${IT_NAME:-it}" "$*" >&2
}

# fail MSG...: abort the test.  Prints "FAIL: MSG" on stderr and exits 1, which
# fires the EXIT trap (cleanup + log tails).  Note: inside $(...) or a pipeline
# this only leaves the subshell; the caller's set -e then takes over.
fail()
{
	printf 'FAIL: %s\n' "$*" >&2
	exit 1
}

# assert_eq EXPECTED ACTUAL WHAT: print "ok: WHAT" if equal, fail otherwise
# showing both values.
assert_eq()
{
	if [[ "$1" == "$2" ]]; then
		printf 'ok: %s\n' "$3"
	else
		fail "$3: expected '$1', got '$2'"
	fi
}

# Current time in milliseconds (bash 5 $EPOCHREALTIME, no fork).  Sets the
# variable named by $1.
_it_now_ms()
{
	local us=${EPOCHREALTIME//[!0-9]/}
	printf -v "$1" '%d' $((10#$us / 1000))
}

# wait_until TIMEOUT_S CMD...: run CMD every 0.2 s until it succeeds (return
# 0) or TIMEOUT_S seconds (may be fractional, e.g. 2.5) have passed (return 1).
# CMD is always tried at least once.
wait_until()
{
	local timeout=$1 secs frac now deadline
	shift
	secs=${timeout%%.*}
	frac=0
	if [[ "$timeout" == *.* ]]; then
		frac=${timeout#*.}000
		frac=$((10#${frac:0:3}))
	fi
	_it_now_ms now
	deadline=$((now + 10#${secs:-0} * 1000 + frac))
	while :; do
		if "$@"; then
			return 0
		fi
		_it_now_ms now
		if ((now >= deadline)); then
			return 1
		fi
		sleep 0.2
	done
}

# ---------------------------------------------------------------------------
# Test directory, process tracking, cleanup
# ---------------------------------------------------------------------------

# it_setup NAME: create the throw-away directory $IT_DIR (mode 755 so the
# postgres and mosquitto users can reach their sub-directories) and install
# the traps that run it_cleanup on exit, including on failure and on
# INT/TERM/HUP.  Bookkeeping lives in files under $IT_DIR/.it so that helpers
# called from subshells (e.g. $(free_port)) share it.
it_setup()
{
	local name=${1:?usage: it_setup NAME}

	# Keep the name short and path-safe: the PostgreSQL socket path
	# ($IT_DIR/pgsock/.s.PGSQL.NNNNN) must stay below 108 bytes.
	name=${name//[!A-Za-z0-9_-]/_}
	IT_NAME=${name:0:40}
	IT_DIR=$(mktemp -d "/tmp/mqtt2pg-it.$IT_NAME.XXXXXX")
	chmod 755 "$IT_DIR"
	mkdir "$IT_DIR/.it"
	: >"$IT_DIR/.it/pids"
	: >"$IT_DIR/.it/logs"
	: >"$IT_DIR/.it/ports"
	export IT_NAME IT_DIR

	trap it_cleanup EXIT
	trap 'exit 129' HUP
	trap 'exit 130' INT
	trap 'exit 143' TERM
	it_log "test dir $IT_DIR"
}

# it_track_pid PID...: register processes for it_cleanup to stop (TERM, then
# KILL after 5 s).  Stopped in reverse order of registration, so the daemon
# under test goes before the broker it talks to.
it_track_pid()
{
	local pid
	for pid in "$@"; do
		printf '%s\n' "$pid" >>"$IT_DIR/.it/pids"
	done
}

# it_untrack_pid PID: forget a process (it was stopped on purpose).
it_untrack_pid()
{
	local f=$IT_DIR/.it/pids
	grep -vx -- "$1" "$f" >"$f.new" || true
	mv "$f.new" "$f"
}

# it_track_log FILE...: register log files whose last 40 lines are printed
# when the test fails.
it_track_log()
{
	local f
	for f in "$@"; do
		printf '%s\n' "$f" >>"$IT_DIR/.it/logs"
	done
}

# Is process PID still running?  (bash reaps its own background children
# asynchronously, so exited children do not linger as zombies here.)
_it_alive()
{
	kill -0 "$1" 2>/dev/null
}

# Have all processes PID... exited?
_it_none_alive()
{
	local pid
	for pid in "$@"; do
		! _it_alive "$pid" || return 1
	done
}

# _it_stop_pids TIMEOUT_S PID...: TERM the given processes, wait up to
# TIMEOUT_S for them to exit, then KILL what is left.  Reaps our own children.
_it_stop_pids()
{
	local timeout=$1 pid
	shift
	(($# > 0)) || return 0
	for pid in "$@"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	if ! wait_until "$timeout" _it_none_alive "$@"; then
		for pid in "$@"; do
			if _it_alive "$pid"; then
				it_log "pid $pid ignored SIGTERM for ${timeout}s, sending SIGKILL"
				kill -KILL "$pid" 2>/dev/null || true
			fi
		done
	fi
	for pid in "$@"; do
		wait "$pid" 2>/dev/null || true
	done
}

# _it_tail FILE: print the last 40 lines of FILE with a header, if it exists.
_it_tail()
{
	[[ -s "$1" ]] || return 0
	printf '\n----- last 40 lines of %s -----\n' "$1" >&2
	tail -n 40 "$1" >&2
}

# it_cleanup: the EXIT trap.  Best effort, never fails: stops tracked
# processes (newest first) and any leftover background job of this shell,
# stops mosquitto and PostgreSQL, prints log tails if the test failed, and
# removes $IT_DIR unless IT_KEEP=1.  Exits with the test's exit status.
it_cleanup()
{
	local rc=$? f jobs
	local -a pids=()
	trap - EXIT HUP INT TERM
	set +e
	[[ -n "${IT_DIR:-}" && -d "$IT_DIR/.it" ]] || exit "$rc"

	if ((rc != 0)); then
		_it_tail "$IT_DIR/pg.log"
		_it_tail "$IT_DIR/mosquitto.log"
		while IFS= read -r f; do
			_it_tail "$f"
		done <"$IT_DIR/.it/logs"
		printf '\n' >&2
	fi

	# Tracked processes (the daemon under test, mosquitto, ...), newest
	# first, then PostgreSQL, then any background job of this shell nobody
	# registered (e.g. a forgotten mosquitto_sub &).
	mapfile -t pids < <(tac "$IT_DIR/.it/pids")
	_it_stop_pids 5 "${pids[@]}"
	MOSQ_PID=
	_pg_stop_quiet
	jobs=$(jobs -p)
	if [[ -n "$jobs" ]]; then
		mapfile -t pids <<<"$jobs"
		_it_stop_pids 5 "${pids[@]}"
	fi

	if [[ "${IT_KEEP:-0}" == 1 ]]; then
		it_log "IT_KEEP=1: keeping $IT_DIR"
	else
		rm -rf "$IT_DIR"
	fi
	if ((rc != 0)); then
		it_log "test failed (exit $rc)"
	fi
	exit "$rc"
}

# ---------------------------------------------------------------------------
# Ports
# ---------------------------------------------------------------------------

# Is something listening on (or otherwise using) 127.0.0.1:PORT?  Uses ss when
# available (sees every local TCP socket on that port), else tries to connect
# with bash's /dev/tcp.
_it_port_in_use()
{
	if command -v ss >/dev/null 2>&1; then
		[[ -n "$(ss -Htan "sport = :$1" 2>/dev/null)" ]]
	else
		_it_port_open "$1"
	fi
}

# Does 127.0.0.1:PORT accept TCP connections?
_it_port_open()
{
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# free_port: print a TCP port on 127.0.0.1 that nothing uses, random in
# 20000-60000 (well away from 5432/1883, so a system PostgreSQL or mosquitto
# does not matter), never the same port twice within one $IT_DIR.  There is an
# unavoidable window between this check and the server binding the port.
free_port()
{
	local used=$IT_DIR/.it/ports port i
	for ((i = 0; i < 200; i++)); do
		port=$(((RANDOM * 32768 + RANDOM) % 40001 + 20000))
		if grep -qx "$port" "$used" || _it_port_in_use "$port"; then
			continue
		fi
		printf '%s\n' "$port" >>"$used"
		printf '%s\n' "$port"
		return 0
	done
	echo "free_port: no free port found after 200 tries" >&2
	return 1
}

# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------

# _as_pg CMD...: run a server-side PostgreSQL command.  initdb/postgres refuse
# to run as root, so as root run it as the `postgres` user (from / so an
# unreadable cwd does not matter); as any other user just run it.
_as_pg()
{
	if ((EUID == 0)); then
		(cd / && runuser -u postgres -- "$@")
	else
		"$@"
	fi
}

# Make PATHs owned by the user the server runs as (postgres when we are root).
_it_chown_pg()
{
	if ((EUID == 0)); then
		chown postgres:postgres "$@"
	fi
}

# pg_start: create and start a private PostgreSQL 15 cluster in $IT_DIR/pg
# (socket in $IT_DIR/pgsock, TCP on 127.0.0.1:$PGPORT, log $IT_DIR/pg.log,
# durability off since it is thrown away), then create the login role
# mqtt2pg_owner (CREATEROLE, password 'owner-secret') and the database
# mqtt2pg owned by it.  Exports PGPORT, PG_SOCKDIR, PG_DATA, PG_LOG,
# SUPER_DB (superuser postgres over the socket, trust) and OWNER_DB
# (mqtt2pg_owner over TCP, scram-sha-256).
pg_start()
{
	[[ -x "$PG_BIN/initdb" ]] || fail "pg_start: $PG_BIN/initdb not found (postgresql-15 installed?)"
	PGPORT=$(free_port)
	PG_DATA=$IT_DIR/pg
	PG_SOCKDIR=$IT_DIR/pgsock
	PG_LOG=$IT_DIR/pg.log
	SUPER_DB="host=$PG_SOCKDIR port=$PGPORT dbname=mqtt2pg user=postgres"
	OWNER_DB="host=127.0.0.1 port=$PGPORT dbname=mqtt2pg user=mqtt2pg_owner password=owner-secret"
	_IT_PG_PID=
	export PGPORT PG_DATA PG_SOCKDIR PG_LOG SUPER_DB OWNER_DB

	mkdir -p "$PG_DATA" "$PG_SOCKDIR"
	_it_chown_pg "$PG_DATA" "$PG_SOCKDIR"

	it_log "initdb $PG_DATA"
	if ! _as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -A trust -E UTF8 \
		--locale=C --no-sync >"$IT_DIR/initdb.log" 2>&1; then
		_it_tail "$IT_DIR/initdb.log"
		fail "pg_start: initdb failed"
	fi

	# Appended settings override the defaults initdb wrote above them.
	cat >>"$PG_DATA/postgresql.conf" <<EOF

# --- mqtt2pg integration test settings (tests/integration/lib.sh) ---
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$PG_SOCKDIR'
max_connections = 100
shared_buffers = 32MB
fsync = off
synchronous_commit = off
full_page_writes = off
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d/%a '
log_checkpoints = off
EOF
	# IT_TIMESCALEDB=1: the same test on TimescaleDB (.ci/run installs it from ../shared/timescaledb/):
	# the server preloads it; db_prepare's `migrate --timescaledb` creates the extension.
	if [[ "${IT_TIMESCALEDB:-0}" == 1 ]]; then
		if [[ ! -e "$(_pg_pkglibdir)/timescaledb.so" ]]; then
			echo "SKIP: IT_TIMESCALEDB=1 but TimescaleDB is not installed for $PG_BIN" \
				"(tar -xzf ../shared/timescaledb/*.tar.gz -C /)"
			trap - EXIT
			rm -rf "$IT_DIR"
			exit 77
		fi
		cat >>"$PG_DATA/postgresql.conf" <<EOF
shared_preload_libraries = 'timescaledb'
timescaledb.telemetry_level = off
EOF
	fi
	cat >"$PG_DATA/pg_hba.conf" <<EOF
# TYPE	DATABASE	USER	ADDRESS		METHOD
local	all		all			trust
host	all		all	127.0.0.1/32	scram-sha-256
EOF

	_pg_launch
	psql_as "host=$PG_SOCKDIR port=$PGPORT dbname=postgres user=postgres" \
		"CREATE ROLE mqtt2pg_owner LOGIN CREATEROLE PASSWORD 'owner-secret'" \
		"CREATE DATABASE mqtt2pg OWNER mqtt2pg_owner"
	it_log "postgres ready on 127.0.0.1:$PGPORT (socket $PG_SOCKDIR)"
}

# The server's library directory (where extensions' .so files live).
_pg_pkglibdir()
{
	"$PG_BIN/pg_config" --pkglibdir 2>/dev/null || echo /usr/lib/postgresql/15/lib
}

# Start the postmaster of $PG_DATA in the background, as a direct child of
# this shell (not daemonized by pg_ctl, whose orphaned postmaster would be
# left for PID 1 to reap - not done in some containers), and wait (max 30 s)
# until it accepts connections, else fail (the EXIT trap shows the log tail).
# As root the child is runuser, which forwards signals and waits for the
# postmaster; it must not be sent SIGTERM (it SIGKILLs its child 2 s later),
# so it is not tracked with it_track_pid: stop it with pg_stop.
_pg_launch()
{
	local i
	if ((EUID == 0)); then
		(cd / && exec runuser -u postgres -- "$PG_BIN/postgres" -D "$PG_DATA") \
			>>"$PG_LOG" 2>&1 </dev/null &
	else
		"$PG_BIN/postgres" -D "$PG_DATA" >>"$PG_LOG" 2>&1 </dev/null &
	fi
	_IT_PG_PID=$!
	for ((i = 0; i < 150; i++)); do
		if ! _it_alive "$_IT_PG_PID"; then
			wait "$_IT_PG_PID" 2>/dev/null || true
			_IT_PG_PID=
			fail "pg_start: postgres exited during startup (log: $PG_LOG)"
		fi
		if pg_isready -q -h "$PG_SOCKDIR" -p "$PGPORT" -d postgres -U postgres; then
			return 0
		fi
		sleep 0.2
	done
	fail "pg_start: postgres on port $PGPORT not accepting connections after 30 s (log: $PG_LOG)"
}

# Wait (max 10 s) for the background postgres launched by _pg_launch to exit
# after a pg_ctl stop, and reap it.
_pg_reap()
{
	[[ -n "${_IT_PG_PID:-}" ]] || return 0
	wait_until 10 _it_none_alive "$_IT_PG_PID" || true
	wait "$_IT_PG_PID" 2>/dev/null || true
	_IT_PG_PID=
}

# pg_stop [MODE]: stop the cluster (pg_ctl -m MODE: smart|fast|immediate,
# default fast) and wait for it to be down.  `immediate` simulates a crash.
# shellcheck disable=SC2120 # arguments are optional
pg_stop()
{
	local mode=${1:-fast}
	it_log "stopping postgres (mode $mode)"
	_as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m "$mode" -w -t 30 stop >/dev/null ||
		fail "pg_stop: pg_ctl stop -m $mode failed"
	_pg_reap
}

# pg_start_again: restart the cluster stopped by pg_stop, same data and port.
pg_start_again()
{
	[[ -z "${_IT_PG_PID:-}" ]] || fail "pg_start_again: postgres still running"
	it_log "starting postgres again on port $PGPORT"
	_pg_launch
}

# Cleanup helper: stop the cluster if one is running (fast, then immediate,
# then SIGKILL of the postmaster as a last resort).  Never fails.
_pg_stop_quiet()
{
	local pidfile=${PG_DATA:-/nonexistent}/postmaster.pid pid
	if [[ -f "$pidfile" ]]; then
		if ! _as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 10 stop >/dev/null 2>&1 &&
			! _as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w -t 10 stop >/dev/null 2>&1; then
			pid=$(head -n 1 "$pidfile" 2>/dev/null)
			if [[ "$pid" =~ ^[0-9]+$ ]]; then
				it_log "postgres did not stop, killing postmaster $pid"
				kill -KILL "$pid" 2>/dev/null || true
			fi
		fi
	fi
	_pg_reap
	return 0
}

# psql_as CONNINFO SQL...: run each SQL with psql -c (no psqlrc, stop on
# error, unaligned tuples-only output) and print the result.
psql_as()
{
	local conninfo=$1 sql
	local -a args=()
	shift
	for sql in "$@"; do
		args+=(-c "$sql")
	done
	psql -X -qAt -v ON_ERROR_STOP=1 -d "$conninfo" "${args[@]}"
}

# psql_super SQL...: psql_as the superuser postgres (unix socket, trust).
psql_super()
{
	psql_as "$SUPER_DB" "$@"
}

# psql_owner SQL...: psql_as mqtt2pg_owner (TCP, password).
psql_owner()
{
	psql_as "$OWNER_DB" "$@"
}

# ---------------------------------------------------------------------------
# Mosquitto
# ---------------------------------------------------------------------------

# Make PATHs owned by the user mosquitto runs as: started as root, mosquitto
# drops privileges to the `mosquitto` user right after reading its config, and
# writes its persistence DB (and reads password/ACL files) as that user.  Use
# it on password/ACL files you pass through mosq_start's extra lines.
mosq_chown()
{
	if ((EUID == 0)); then
		chown mosquitto:mosquitto "$@"
	fi
}

# mosq_start [EXTRA_CONFIG_LINE...]: start a private mosquitto 2.0 broker on
# 127.0.0.1:$MQTT_PORT (foreground process in the background, pid in
# $MOSQ_PID and tracked), persistence in $IT_DIR/mosq/, log in
# $IT_DIR/mosquitto.log, and wait until it accepts connections.
# Anonymous access is allowed unless an extra line sets allow_anonymous.
# Extra lines are appended after the listener line, so listener-scoped
# options apply to it.  Exports MQTT_PORT, MQTT_URI, MOSQ_PID, MOSQ_CONF,
# MOSQ_LOG, MOSQ_DATA.
# shellcheck disable=SC2120 # arguments are optional
mosq_start()
{
	local line anon=1
	MQTT_PORT=$(free_port)
	MQTT_URI=tcp://127.0.0.1:$MQTT_PORT
	MOSQ_CONF=$IT_DIR/mosquitto.conf
	MOSQ_LOG=$IT_DIR/mosquitto.log
	MOSQ_DATA=$IT_DIR/mosq
	export MQTT_PORT MQTT_URI MOSQ_CONF MOSQ_LOG MOSQ_DATA

	mkdir -p "$MOSQ_DATA"
	: >>"$MOSQ_LOG"
	mosq_chown "$MOSQ_DATA" "$MOSQ_LOG"
	for line in "$@"; do
		[[ "$line" =~ ^[[:space:]]*allow_anonymous[[:space:]] ]] && anon=0
	done

	{
		echo "# mqtt2pg integration test broker (tests/integration/lib.sh)"
		# Persistent sessions must survive mosq_start_again.
		echo "persistence true"
		echo "persistence_location $MOSQ_DATA/"
		# Default 1000 silently drops QoS 1/2 messages queued for a slow
		# or offline persistent subscriber; 0 = unlimited.
		echo "max_queued_messages 0"
		echo "max_inflight_messages 0"
		# Not log_dest stdout: stdout to a file is block-buffered, so
		# the log would lag until exit.  The file log is flushed per
		# line.  Startup errors printed before it is opened go to
		# stderr, which _mosq_launch appends to the same file.
		echo "log_dest file $MOSQ_LOG"
		echo "log_type all"
		echo "log_timestamp true"
		echo "log_timestamp_format %Y-%m-%dT%H:%M:%S"
		echo "connection_messages true"
		echo "listener $MQTT_PORT 127.0.0.1"
		if ((anon)); then
			echo "allow_anonymous true"
		fi
		for line in "$@"; do
			printf '%s\n' "$line"
		done
	} >"$MOSQ_CONF"
	chmod 644 "$MOSQ_CONF"

	_mosq_launch
}

# Launch mosquitto with $MOSQ_CONF and wait (max 10 s) for its port; fail
# early if the process exits (the EXIT trap shows the log tail).
_mosq_launch()
{
	local i
	mosquitto -c "$MOSQ_CONF" >>"$MOSQ_LOG" 2>&1 </dev/null &
	MOSQ_PID=$!
	export MOSQ_PID
	it_track_pid "$MOSQ_PID"
	for ((i = 0; i < 50; i++)); do
		if ! _it_alive "$MOSQ_PID"; then
			fail "mosq_start: mosquitto exited during startup (log: $MOSQ_LOG)"
		fi
		if _it_port_open "$MQTT_PORT"; then
			it_log "mosquitto ready on $MQTT_URI (pid $MOSQ_PID)"
			return 0
		fi
		sleep 0.2
	done
	fail "mosq_start: mosquitto not listening on port $MQTT_PORT after 10 s"
}

# mosq_stop [SIGNAL]: stop the broker and wait for it to exit.  SIGTERM
# (default) makes it save its persistence DB; KILL simulates a crash (only
# what the last autosave wrote survives).
# shellcheck disable=SC2120 # arguments are optional
mosq_stop()
{
	local sig=${1:-TERM}
	[[ -n "${MOSQ_PID:-}" ]] || fail "mosq_stop: mosquitto is not running"
	it_log "stopping mosquitto (pid $MOSQ_PID, SIG$sig)"
	kill "-$sig" "$MOSQ_PID" 2>/dev/null || true
	_it_stop_pids 10 "$MOSQ_PID"
	it_untrack_pid "$MOSQ_PID"
	MOSQ_PID=
}

# mosq_start_again: start the broker again with the same config (same port,
# same persistence directory), e.g. after mosq_stop to simulate a restart.
mosq_start_again()
{
	[[ -z "${MOSQ_PID:-}" ]] || fail "mosq_start_again: mosquitto still running (pid $MOSQ_PID)"
	it_log "starting mosquitto again on port $MQTT_PORT"
	_mosq_launch
}

# --- the bridge's /metrics ------------------------------------------------------------------------------

# metric_at PORT NAME: one value from the /metrics page on 127.0.0.1:PORT (bash /dev/tcp: no process per
# poll, which matters in wait loops); empty if nothing answers.
metric_at()
{
	local line value=
	{ exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 0
	printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
	while IFS= read -r -t 5 line <&3; do
		if [[ "$line" == "$2 "* ]]; then
			value=${line#* }
			value=${value%$'\r'}
		fi
	done
	exec 3<&-
	printf '%s' "$value"
}
