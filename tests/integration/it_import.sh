#!/usr/bin/env bash
# it_import.sh - `mqtt2pg import` of history files (README "Importing history"), against a real PostgreSQL:
#  1. two generated exports with bad lines of every kind and in-file duplicates: tenant t1 as InfluxDB line
#     protocol (influx_inspect export layout), tenant t2 as gzip-compressed CSV; --validate-only counts every
#     line exactly and writes nothing;
#  2. the line-protocol import is SIGKILLed mid-way: what is committed is consistent (rows, rejected lines
#     and the run's counters agree); a run without --resume is refused; --resume is SIGINTed (exit 130,
#     batch in progress committed); --resume again finishes;
#  3. the CSV import is SIGKILLed and resumed the same way (gzseek into the compressed stream);
#  4. in the end every count equals what the generator wrote: lines by outcome, rejected lines by reason
#     (in the run and in rejected_messages), rows per device in the database, no duplicates, the report's
#     per-device check "ok"; a finished run resumed again writes nothing;
#  5. the 5-minute aggregates of both tenants equal an independent reference computation over the raw rows.
#
# IMPORT_LINES (default 1,000,000) data lines of good readings per file, plus the bad lines and duplicates:
# 3,000,000 + 1,000,000 rows. About 95 s under ASan on the 2-core machine; IMPORT_LINES=200000 for a quick run.
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
. "$here/lib.sh"
. "$here/bridge.sh"

N=${IMPORT_LINES:-1000000}
it_setup import
pg_start
db_prepare

m2p_admin tenant add t1 >/dev/null
m2p_admin tenant add t2 >/dev/null
# 40 inverters for t1, 10 for t2, each with power (0..20000 W), voltage (0..500 V) and a counter energy (Wh);
# T1-DIS-0 and T2-DIS-0 are registered but disabled.
psql_owner "
INSERT INTO devices (tenant_id, serial, enabled)
SELECT t.id, format('%s-INV-%s', upper(t.slug), lpad(g::text, 4, '0')), true
  FROM tenants t, generate_series(0, 39) g WHERE t.slug = 't1' OR (t.slug = 't2' AND g < 10);
INSERT INTO devices (tenant_id, serial, enabled) SELECT id, upper(slug) || '-DIS-0', false FROM tenants;
INSERT INTO points (device_id, name, unit, min_value, max_value, kind)
SELECT d.id, p.name, p.unit, p.lo, p.hi, p.kind FROM devices d,
  (VALUES ('power', 'W', 0, 20000, 'gauge'), ('voltage', 'V', 0, 500, 'gauge'), ('energy', 'Wh', NULL, NULL, 'counter'))
  AS p(name, unit, lo, hi, kind);" >/dev/null

{
	echo "mqtt = { uri = \"tcp://127.0.0.1:1\"; client_id = \"import-test\"; };"
	echo "database = { conninfo = \"host=127.0.0.1 port=$PGPORT dbname=mqtt2pg user=mqtt2pg_writer\"; };"
	echo "spool = { directory = \"$IT_DIR/spool\"; };"
} >"$IT_DIR/import.conf"
export MQTT2PG_DB_PASSWORD=$WRITER_PASSWORD
m2p_import()
{
	"$MQTT2PG_BIN" -c "$IT_DIR/import.conf" import "$@"
}

it_log "generating $N lines of line protocol (t1) and $N lines of CSV (t2)"
perl "$here/import_gen.pl" influx "$N" T1 40 T2-INV-0000 "$IT_DIR/t1.lp" "$IT_DIR/t1.expect"
perl "$here/import_gen.pl" csv "$N" T2 10 T1-INV-0000 "$IT_DIR/t2.csv" "$IT_DIR/t2.expect"
gzip -1 "$IT_DIR/t2.csv"
expect() { awk -v k="$2" '$1 == k { print $2 }' "$IT_DIR/$1.expect"; }
expect_reason() { awk -v k="$2" '$1 == "reject" && $2 == k { print $3 }' "$IT_DIR/$1.expect"; }
result_field() { sed -n 's/^import result: .* '"$2"'=\([^ ]*\).*/\1/p' "$1"; }

# --- 1. validate only ---------------------------------------------------------------------------------
m2p_import --format influx --tenant t1 --validate-only "$IT_DIR/t1.lp" >"$IT_DIR/validate.out" 2>"$IT_DIR/validate.err" ||
	{ cat "$IT_DIR/validate.err" >&2; fail "validate-only failed"; }
for k in lines skipped accepted rejected readings; do
	assert_eq "$(expect t1 "$k")" "$(result_field "$IT_DIR/validate.out" "$k")" "validate-only counts $k"
done
assert_eq "0 0" "$(psql_super "SELECT (SELECT count(*) FROM measurements) || ' ' || (SELECT count(*) FROM import_runs)")" \
	"validate-only wrote nothing"

# --- helpers for interruptions -------------------------------------------------------------------------
run_line() # TENANT FILE_NAME: committed line_number of the file's run, 0 if none
{
	psql_super "SELECT coalesce(max(r.line_number), 0) FROM import_runs r JOIN tenants t ON t.id = r.tenant_id
	            WHERE t.slug = '$1' AND r.file_name = '$2'"
}

# The committed state agrees with itself: rows of the tenant = the run's rows_written, rejected lines
# recorded = the run's lines_rejected, and every line up to line_number is accounted for.
consistent()
{
	local tenant=$1 file=$2 what=$3
	psql_super "
	SELECT (SELECT count(*) FROM measurements m JOIN tenants t ON t.id = m.tenant_id WHERE t.slug = '$tenant')
	       = r.rows_written
	   AND (SELECT count(*) FROM rejected_messages x WHERE x.origin = 'import:' || r.id) = r.lines_rejected
	   AND r.line_number = r.lines_skipped + r.lines_accepted + r.lines_rejected
	   AND r.readings = r.rows_written + r.rows_duplicate
	   AND (SELECT sum(readings) FROM import_run_devices d WHERE d.run_id = r.id) = r.readings
	  FROM import_runs r JOIN tenants t ON t.id = r.tenant_id WHERE t.slug = '$tenant' AND r.file_name = '$file'" |
		grep -qx t || fail "$what: committed state is inconsistent"
	echo "ok: $what: committed rows, rejected lines and counters agree"
}

line_at_least() # TENANT FILE_NAME N
{
	[[ "$(run_line "$1" "$2")" -ge "$3" ]]
}

# interrupt SIGNAL TENANT FILE_NAME MIN_LINE ARGS...: start an import, send SIGNAL once its committed
# line_number passes MIN_LINE; sets IMPORT_RC.
interrupt()
{
	local sig=$1 tenant=$2 file=$3 min=$4 pid
	shift 4
	# the binary itself in the background (not a shell function: its subshell would take the signal)
	"$MQTT2PG_BIN" -c "$IT_DIR/import.conf" import "$@" >>"$IT_DIR/import.out" 2>>"$IT_DIR/import.err" &
	pid=$!
	it_track_pid "$pid"
	wait_until 120 line_at_least "$tenant" "$file" "$min" ||
		{ cat "$IT_DIR/import.err" >&2; fail "import of $file did not get past line $min"; }
	kill -"$sig" "$pid"
	IMPORT_RC=0
	wait "$pid" || IMPORT_RC=$?
	it_untrack_pid "$pid"
}
it_track_log "$IT_DIR/import.err"

it_log "line protocol: SIGKILL, refusal, SIGINT, resume"
# --- 2. line protocol: SIGKILL, refusal, SIGINT, resume -------------------------------------------------
t1_lines=$(expect t1 lines)
interrupt KILL t1 t1.lp $((t1_lines / 4)) --format influx --tenant t1 "$IT_DIR/t1.lp"
assert_eq 137 "$IMPORT_RC" "SIGKILL ends the import"
consistent t1 t1.lp "after SIGKILL"
killed_at=$(run_line t1 t1.lp)
[[ "$killed_at" -lt "$t1_lines" ]] || fail "the import finished before SIGKILL ($killed_at lines)"

rc=0
m2p_import --format influx --tenant t1 "$IT_DIR/t1.lp" >/dev/null 2>"$IT_DIR/refused.err" || rc=$?
assert_eq 1 "$rc" "a second import of a partly imported file without --resume is refused"
grep -q "pass --resume" "$IT_DIR/refused.err" || fail "the refusal does not say --resume"

interrupt INT t1 t1.lp $((killed_at + t1_lines / 4)) --format influx --tenant t1 --resume "$IT_DIR/t1.lp"
assert_eq 130 "$IMPORT_RC" "SIGINT ends the import with 130"
grep -q "interrupted after line" "$IT_DIR/import.err" || fail "no interruption message"
consistent t1 t1.lp "after SIGINT"

m2p_import --format influx --tenant t1 --resume "$IT_DIR/t1.lp" >"$IT_DIR/t1.out" 2>>"$IT_DIR/import.err" ||
	{ cat "$IT_DIR/t1.out" >&2; fail "resumed import of t1 failed"; }
consistent t1 t1.lp "after the resumed run"

it_log "CSV (gzip): SIGKILL, resume"
# --- 3. CSV (gzip): SIGKILL, resume -------------------------------------------------------------------
t2_lines=$(expect t2 lines)
# (the CSV runs use --method array, the line-protocol runs the default, copy: both write paths are covered)
interrupt KILL t2 t2.csv.gz $((t2_lines / 3)) --format csv --tenant t2 --time-unit s --method array "$IT_DIR/t2.csv.gz"
assert_eq 137 "$IMPORT_RC" "SIGKILL ends the CSV import"
consistent t2 t2.csv.gz "CSV after SIGKILL"
m2p_import --format csv --tenant t2 --time-unit s --method array --resume "$IT_DIR/t2.csv.gz" >"$IT_DIR/t2.out" 2>>"$IT_DIR/import.err" ||
	{ cat "$IT_DIR/t2.out" >&2; fail "resumed import of t2 failed"; }
consistent t2 t2.csv.gz "CSV after the resumed run"

it_log "checking every count against the generator"
# --- 4. every count equals the source ------------------------------------------------------------------
for t in t1 t2; do
	out="$IT_DIR/$t.out"
	for k in lines skipped accepted rejected readings; do
		assert_eq "$(expect $t "$k")" "$(result_field "$out" "$k")" "$t: $k as generated"
	done
	assert_eq "$(expect $t distinct)" "$(result_field "$out" written)" "$t: rows written = distinct readings"
	assert_eq "$(($(expect $t readings) - $(expect $t distinct)))" "$(result_field "$out" duplicate)" \
		"$t: in-file duplicates skipped"
	assert_eq ok "$(result_field "$out" check)" "$t: the report's database check"
	grep -q "MISSING [0-9]" "$out" && fail "$t: the report lists missing rows"
	# rejected lines by reason: the run's counters and rejected_messages both equal the generator's
	want=$(awk '$1 == "reject" { print $2 "=" $3 }' "$IT_DIR/$t.expect" | sort | tr '\n' ' ')
	got=$(psql_super "SELECT key || '=' || value FROM import_runs r JOIN tenants t ON t.id = r.tenant_id,
	                  jsonb_each_text(r.rejected) WHERE t.slug = '$t' ORDER BY 1" | tr '\n' ' ')
	assert_eq "$want" "$got" "$t: rejected lines by reason in the run"
	got=$(psql_super "SELECT reason || '=' || count(*) FROM rejected_messages x JOIN import_runs r
	                  ON x.origin = 'import:' || r.id JOIN tenants t ON t.id = r.tenant_id
	                  WHERE t.slug = '$t' GROUP BY reason ORDER BY 1" | tr '\n' ' ')
	assert_eq "$want" "$got" "$t: rejected lines by reason in rejected_messages"
	assert_eq "$(expect $t rejected)" "$(psql_super "SELECT count(DISTINCT origin_seq) FROM rejected_messages x
	           JOIN import_runs r ON x.origin = 'import:' || r.id JOIN tenants t ON t.id = r.tenant_id
	           WHERE t.slug = '$t'")" "$t: each rejected line recorded once"
	# rows per device in the database = the generator's distinct readings per device
	want=$(awk '$1 == "device" { print $2 "=" $3 }' "$IT_DIR/$t.expect" | sort | tr '\n' ' ')
	got=$(psql_super "SELECT d.serial || '=' || count(*) FROM measurements m JOIN devices d ON d.id = m.device_id
	                  JOIN tenants t ON t.id = m.tenant_id WHERE t.slug = '$t' GROUP BY d.serial ORDER BY 1" | tr '\n' ' ')
	assert_eq "$want" "$got" "$t: rows per device in the database"
	assert_eq "$(expect $t from) $(expect $t to)" "$(psql_super "SELECT to_char(min(time) AT TIME ZONE 'UTC',
	           'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') || ' ' || to_char(max(time) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')
	           FROM measurements m JOIN tenants t ON t.id = m.tenant_id WHERE t.slug = '$t'")" "$t: time range"
done
assert_eq 0 "$(psql_super "SELECT count(*) FROM (SELECT device_id, point_id, time FROM measurements
                           GROUP BY 1, 2, 3 HAVING count(*) > 1) x")" "no duplicate rows"

before=$(psql_super "SELECT count(*) FROM measurements")
m2p_import --format influx --tenant t1 --resume --no-aggregates "$IT_DIR/t1.lp" >"$IT_DIR/again.out" 2>&1 ||
	{ cat "$IT_DIR/again.out" >&2; fail "resuming a finished run failed"; }
grep -q "already complete" "$IT_DIR/again.out" || fail "a finished run resumed does not say so"
assert_eq "$before" "$(psql_super "SELECT count(*) FROM measurements")" "a finished run resumed writes nothing"

it_log "hostile input"
# --- hostile input: every line still accounted for, nothing crashes ------------------------------------------
{
	printf 'serial,point,value,time\r\n'                                   # other column order, CRLF
	printf 'T1-INV-0001,power,1,2026-09-01T00:00:00Z\r\n'                 # accepted
	printf 'T1-INV-0001,power,2,%s\n' "$(head -c 100000 /dev/zero | tr '\0' 7)" # 100 kB line: malformed_line
	printf 'T1-INV-0001,power\0,3,2026-09-01T00:00:10Z\n'                 # NUL byte: malformed_line
	printf 'T1-\xff\xfe,power,4,2026-09-01T00:00:20Z\n'                   # invalid UTF-8 serial: unknown_device
	printf '"T1-INV-0001","power","5","2026-09-01T00:00:30Z"\n'           # quoted: accepted
	printf '"NOPE ""Q"" \\",power,7,2026-09-01T00:00:50Z\n'             # quotes, backslash: unknown_device
	printf 'T1-INV-0001,power,6,2026-09-01T00:00:40Z'                      # no final newline: accepted
} >"$IT_DIR/hostile.csv"
m2p_import --format csv --tenant t1 "$IT_DIR/hostile.csv" >"$IT_DIR/hostile.out" 2>&1 ||
	{ cat "$IT_DIR/hostile.out" >&2; fail "hostile CSV import failed"; }
assert_eq "8 1 3 4" "$(for k in lines skipped accepted rejected; do result_field "$IT_DIR/hostile.out" $k; done | tr '\n' ' ' | sed 's/ $//')" \
	"hostile CSV: 8 lines = 1 header + 3 accepted + 4 rejected"
assert_eq "malformed_line=2 unknown_device=2" "$(psql_super "SELECT string_agg(reason || '=' || n, ' ' ORDER BY reason)
           FROM (SELECT reason, count(*) n FROM rejected_messages x JOIN import_runs r ON x.origin = 'import:' || r.id
           WHERE r.file_name = 'hostile.csv' GROUP BY reason) s")" "hostile CSV: reasons recorded"
hostile_rejects="FROM rejected_messages x JOIN import_runs r ON x.origin = 'import:' || r.id WHERE r.file_name = 'hostile.csv'"
assert_eq "t t" "$(psql_super "SELECT bool_or(position('\\xfffe'::bytea IN payload) > 0) $hostile_rejects" \
           "SELECT bool_or(serial = 'NOPE \"Q\" \\\\') $hostile_rejects" | tr '\n' ' ' | sed 's/ $//')" \
	"hostile CSV: raw bytes kept in payload; the serial with its quotes, the backslash escaped (text_escape)"
assert_eq 1 "$(psql_super "SELECT count(*) $hostile_rejects AND position('\\x00'::bytea IN payload) > 0")" \
	"hostile CSV: the NUL byte kept in payload"
# a truncated gzip stream: what could be read is committed and counted, the import says so and exits 1
head -c 20000 "$IT_DIR/t2.csv.gz" >"$IT_DIR/cut.csv.gz"
rc=0
m2p_import --format csv --tenant t2 --no-aggregates "$IT_DIR/cut.csv.gz" >"$IT_DIR/cut.out" 2>&1 || rc=$?
assert_eq 1 "$rc" "a truncated gzip file ends the import with 1"
grep -q "read error after line" "$IT_DIR/cut.out" || { cat "$IT_DIR/cut.out" >&2; fail "no read error message"; }
assert_eq t "$(psql_super "SELECT line_number > 0 AND line_number = lines_skipped + lines_accepted + lines_rejected
           AND finished_at IS NULL FROM import_runs WHERE file_name = 'cut.csv.gz'")" \
	"truncated gzip: the lines before the damage are committed and accounted for"

# unknown points under the other two policies: "drop" keeps the line's known readings and counts the others,
# "register" adds the point to the device as it goes (line protocol, point template {measurement}.{field})
policy_conf()
{
	sed '/^database/a validation = { unknown_points = "'"$1"'"; max_points_per_device = 5; };' "$IT_DIR/import.conf" >"$IT_DIR/$1.conf"
}
policy_conf drop
policy_conf register
printf 'inverter,serial=T1-INV-0002 power=10,frequency=50 1790000000000000000\n' >"$IT_DIR/drop.lp"
"$MQTT2PG_BIN" -c "$IT_DIR/drop.conf" import --format influx --tenant t1 "$IT_DIR/drop.lp" >"$IT_DIR/drop.out" 2>&1 ||
	{ cat "$IT_DIR/drop.out" >&2; fail "import under policy drop failed"; }
assert_eq "1 1 1 0" "$(for k in accepted readings dropped rejected; do result_field "$IT_DIR/drop.out" $k; done | tr '\n' ' ' | sed 's/ $//')" \
	"policy drop: the line is accepted, its unknown point dropped and counted"
{
	printf 'inverter,serial=T1-INV-0003 freq=50,temp=41.5 1790000000000000000\n'
	printf 'inverter,serial=T1-INV-0003 freq=50.1,temp=41.7 1790000010000000000\n'
	printf 'inverter,serial=T1-INV-0003 extra=1 1790000020000000000\n' # a sixth point: over the cap of 5
} >"$IT_DIR/register.lp"
"$MQTT2PG_BIN" -c "$IT_DIR/register.conf" import --format influx --tenant t1 --point '{measurement}.{field}' \
	"$IT_DIR/register.lp" >"$IT_DIR/register.out" 2>&1 || { cat "$IT_DIR/register.out" >&2; fail "import under policy register failed"; }
assert_eq "2 4 4 1" "$(for k in accepted readings written rejected; do result_field "$IT_DIR/register.out" $k; done | tr '\n' ' ' | sed 's/ $//')" \
	"policy register: new points registered and written; the point over the cap rejected"
assert_eq "inverter.freq inverter.temp" "$(psql_super "SELECT string_agg(p.name, ' ' ORDER BY p.name) FROM points p
           JOIN devices d ON d.id = p.device_id WHERE d.serial = 'T1-INV-0003' AND p.auto_registered")" \
	"policy register: the points are in the registry, marked auto_registered"
grep -q "point_limit=1" "$IT_DIR/register.out" || { cat "$IT_DIR/register.out" >&2; fail "the sixth point is not point_limit"; }

# --- one serial in two tenants (sql/013): each import finds its own tenant's device -----------------------
m2p_admin device add inverter_1 --tenant t1 --point power >/dev/null
m2p_admin device add inverter_1 --tenant t2 --point power >"$IT_DIR/dup.err" 2>&1 ||
	fail "a second tenant cannot register inverter_1: $(cat "$IT_DIR/dup.err")"
printf 'serial,point,value,time\ninverter_1,power,11,2026-09-02T00:00:00Z\ninverter_1,power,12,2026-09-02T00:00:10Z\n' \
	>"$IT_DIR/site1.csv"
printf 'inverter,serial=inverter_1 power=21 1788307200000000000\ninverter,serial=inverter_1 power=22 1788307210000000000\n' \
	>"$IT_DIR/site2.lp"
m2p_import --format csv --tenant t1 "$IT_DIR/site1.csv" >"$IT_DIR/site1.out" 2>&1 || { cat "$IT_DIR/site1.out" >&2; fail "import site1 failed"; }
m2p_import --format influx --tenant t2 "$IT_DIR/site2.lp" >"$IT_DIR/site2.out" 2>&1 || { cat "$IT_DIR/site2.out" >&2; fail "import site2 failed"; }
for f in site1 site2; do
	assert_eq "2 0 2 ok" "$(for k in accepted rejected written check; do result_field "$IT_DIR/$f.out" $k; done | tr '\n' ' ' | sed 's/ $//')" \
		"$f: both lines accepted and written, the per-device check ok"
done
assert_eq "t1|11,12 t2|21,22" "$(psql_super "SELECT string_agg(slug || '|' || v, ' ' ORDER BY slug) FROM (
           SELECT t.slug, string_agg(m.value::text, ',' ORDER BY m.time) v FROM measurements m
             JOIN devices d ON d.id = m.device_id AND d.tenant_id = m.tenant_id JOIN tenants t ON t.id = m.tenant_id
            WHERE d.serial = 'inverter_1' GROUP BY t.slug) s")" "inverter_1's rows each in its own tenant, under its own device"
# The same file into a tenant without an inverter_1: the serial is other tenants' (tenant_mismatch).
m2p_admin tenant add t3 >/dev/null
m2p_import --format csv --tenant t3 --validate-only "$IT_DIR/site1.csv" >"$IT_DIR/site3.out" 2>&1 || true
grep -q "tenant_mismatch=2" "$IT_DIR/site3.out" || { cat "$IT_DIR/site3.out" >&2; fail "t3: inverter_1 is not tenant_mismatch"; }
echo "ok: inverter_1 imported into t1 and t2, each into its own device; t3 refuses it as another tenant's"

it_log "aggregates against the reference"
# --- 5. aggregates equal a reference computed here (lag over each point's whole series) --------------------
assert_eq 0 "$(psql_super "SELECT count(*) FROM aggregate_dirty")" "no dirty bucket left after the imports"
mismatch=$(psql_super "
WITH r AS (
  SELECT m.device_id, m.point_id, m.time, m.value, p.kind, date_bin('5 minutes', m.time, timestamptz 'epoch') AS bucket,
         lag(m.time) OVER w AS pt, lag(m.value) OVER w AS pv
    FROM measurements m JOIN points p ON p.id = m.point_id
  WINDOW w AS (PARTITION BY m.device_id, m.point_id ORDER BY m.time)),
ref AS (
  SELECT device_id, point_id, bucket, count(*) AS count, min(value) AS min, max(value) AS max, sum(value) AS sum,
         min(time) AS first_time, max(time) AS last_time,
         sum(CASE WHEN pt >= time - interval '5 minutes' THEN (value + pv) / 2 * extract(epoch FROM time - pt) / 3600 ELSE 0 END) AS integral,
         CASE WHEN min(kind) = 'counter' THEN sum(CASE WHEN pt >= time - interval '5 minutes'
              THEN CASE WHEN value >= pv THEN value - pv ELSE value END ELSE 0 END) END AS increase
    FROM r GROUP BY device_id, point_id, bucket)
SELECT count(*) FROM ref FULL JOIN measurements_5m a USING (device_id, point_id, bucket)
 WHERE ref.device_id IS NULL OR a.device_id IS NULL OR ref.count <> a.count OR ref.min <> a.min OR ref.max <> a.max
    OR ref.first_time <> a.first_time OR ref.last_time <> a.last_time
    OR abs(ref.sum - a.sum) > 1e-9 * greatest(1, abs(ref.sum))
    OR abs(ref.integral - a.integral) > 1e-9 * greatest(1, abs(ref.integral))
    OR (ref.increase IS NULL) <> (a.increase IS NULL)
    OR abs(ref.increase - a.increase) > 1e-9 * greatest(1, abs(ref.increase))")
buckets=$(psql_super "SELECT count(*) FROM measurements_5m")
[[ "$buckets" -gt 0 ]] || fail "no aggregates"
assert_eq 0 "$mismatch" "all $buckets aggregate rows of the imported ranges equal the reference"
it_log "passed"
