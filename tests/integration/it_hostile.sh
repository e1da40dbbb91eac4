#!/usr/bin/env bash
# it_hostile.sh - a corpus of hostile MQTT messages against the real bridge, PostgreSQL 15 and Mosquitto on
# loopback. The corpus is data (tests/integration/hostile/corpus.tsv, its header explains the format): each
# message has one expected verdict, either "accept" (a valid control) or the exact rejection reason of the
# README's table, or that it never reaches the bridge (ignored / pub_refused / broker_refused).
#
#  1. every message is published (its own mosquitto_pub, or a hand-made MQTT packet for raw: topics);
#     mosquitto_pub must fail exactly for the pub_refused ones, the broker must drop the broker_refused ones;
#  2. rejected_messages holds exactly one row per rejected message, with its expected reason (matched by the
#     case id carried in the topic or payload), with the topic, claimed tenant and serial escaped as the
#     README says, and the raw payload (truncated to reject_payload_bytes);
#  3. the accepted messages wrote exactly the rows PostgreSQL's own JSON reading of their payloads gives
#     (device, point, time, value), and nothing else wrote a row; the metrics count the same;
#  4. afterwards the bridge still runs and serves a valid message, the SQL injection attempts changed nothing,
#     the bridge log (at debug level, where every rejection is logged with its topic and detail) has no line
#     that does not start with a timestamp (a device string with a newline must not forge one), no control
#     character and no invalid UTF-8, and no sanitizer report;
#  5. the same messages again with log.format = "json": every log line is one JSON object in valid UTF-8.
# Every check runs even after a failed one; the test fails at the end if any did, listing them all.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/integration/lib.sh
. "$here/lib.sh"
# shellcheck source=tests/integration/bridge.sh
. "$here/bridge.sh"

CORPUS=$here/hostile/corpus.tsv
MAX_PAYLOAD=65536
REJECT_PAYLOAD_BYTES=4096
STANDARD_POINTS=(--point total_output_power:W:0:20000 --point grid_voltage:V:180:260 --point daily_energy:kWh
	--point status::0:1 --point temperature:C:-40:90
	--point abcdefghijklmnopqrstuvwxyz_ABCDEFGHIJKLMNOPQRSTUVWXYZ.0123456/-X)

it_setup hostile
pg_start
mosq_start
db_prepare
T0=$(date -u +%s)
MSG=$IT_DIR/msg
mkdir -p "$MSG"

# --- checks that do not stop the test -------------------------------------------------------------------
FAILURES=()
check()
{
	local what=$1
	shift
	if "$@"; then
		printf 'ok: %s\n' "$what"
	else
		printf 'FAIL: %s\n' "$what" >&2
		FAILURES+=("$what")
	fi
}
check_eq() # EXPECTED ACTUAL WHAT; an empty EXPECTED means "no findings": ACTUAL lists them
{
	if [[ "$1" == "$2" ]]; then
		printf 'ok: %s\n' "$3"
		return 0
	fi
	if [[ -z "$1" ]]; then
		printf 'FAIL: %s:\n' "$3" >&2
		printf '%s\n' "$2" | sed 's/^/    /' >&2
	else
		printf 'FAIL: %s: expected %q, got %q\n' "$3" "$1" "$2" >&2
	fi
	FAILURES+=("$3")
}

# --- building the messages --------------------------------------------------------------------------------
# hex of a file's bytes, and bytes of a hex string (no xxd on a minimal Debian).
to_hex() { od -An -v -tx1 | tr -d ' \n'; }
from_hex()
{
	local hex=$1 esc
	[[ -n "$hex" ]] || return 0
	# shellcheck disable=SC2001 # sed: every pair of hex digits becomes \xHH
	esc=$(sed 's/../\\x&/g' <<<"$hex")
	printf '%b' "$esc"
}

# expand TEXT ID: the corpus placeholders ({{id}}, {{idnum}}, {{t:EXPR[:FORMAT]}}, {{e:EXPR}}).
expand()
{
	local text=$1 id=$2 out='' token kind arg expr fmt value
	while [[ "$text" =~ \{\{([^}]*)\}\} ]]; do
		token=${BASH_REMATCH[1]}
		out+=${text%%"{{$token}}"*}
		text=${text#*"{{$token}}"}
		kind=${token%%:*}
		arg=${token#*:}
		case $kind in
		id) value=$id ;;
		idnum) value=${id#h} ;;
		t | e)
			expr=${arg%%:*}
			fmt='%Y-%m-%dT%H:%M:%SZ'
			if [[ "$arg" == *:* ]]; then
				fmt=${arg#*:}
			fi
			[[ "$expr" =~ ^[now0-9+*-]+$ ]] || fail "corpus $id: bad time expression '$expr'"
			value=$((${expr//now/$T0}))
			if [[ $kind == t ]]; then
				value=$(date -u -d "@$value" "+$fmt")
			fi
			;;
		*) fail "corpus $id: unknown placeholder {{$token}}" ;;
		esac
		out+=$value
	done
	printf '%s' "$out$text"
}

repeat() { printf "%${2}s" '' | tr ' ' "$1"; }

# Generated payloads and topics (gen:NAME); $1 is the case id.
gen_big_array()
{
	local i sep=
	printf '['
	for ((i = 0; i < 500; i++)); do
		printf '%s{"timestamp":%d,"measurements":{"daily_energy":%d.5}}' "$sep" $((T0 - 3000 - i)) "$i"
		sep=,
	done
	printf ']'
}
gen_deep_ignored()
{
	printf '{"meta":%s%s,"timestamp":%d,"measurements":{"total_output_power":16}}' "$(repeat '[' 900)" \
		"$(repeat ']' 900)" $((T0 - 1021))
}
padded_envelope() # SIZE VALUE: a valid envelope padded with spaces to exactly SIZE bytes
{
	local body
	body=$(printf '{"timestamp":%d,"measurements":{"total_output_power":%d}}' $((T0 - 1022)) "$2")
	printf '%s%s' "$body" "$(repeat ' ' $(($1 - ${#body})))"
}
gen_max_size() { padded_envelope "$MAX_PAYLOAD" 17; }
gen_oversized() { padded_envelope $((MAX_PAYLOAD + 1)) 1; }
gen_huge() { repeat A 1048576; }
gen_deep_nesting() { printf '%s%s' "$(repeat '[' 5000)" "$(repeat ']' 5000)"; }
gen_deep_value()
{
	printf '{"measurements":{"total_output_power":%s1%s}}' "$(repeat '[' 800)" "$(repeat ']' 800)"
}
gen_many_points()
{
	local i sep=
	printf '{"measurements":{'
	for ((i = 0; i < 3000; i++)); do
		printf '%s"p%d":%d' "$sep" "$i" "$i"
		sep=,
	done
	printf '}}'
}
gen_long_serial_topic() { printf 'solar/acme/%s%s/telemetry' "$1" "$(repeat A 60000)"; }
gen_too_long_topic() { printf 'solar/acme/%s%s/telemetry' "$1" "$(repeat A 65600)"; }

# materialize SPEC ID FILE: the bytes a topic or payload spec stands for.
materialize()
{
	local spec=$1 id=$2 file=$3
	case $spec in
	hex:*) from_hex "${spec#hex:}" >"$file" ;;
	esc:*) printf '%b' "$(expand "${spec#esc:}" "$id")" >"$file" ;;
	gen:*)
		declare -F "gen_${spec#gen:}" >/dev/null || fail "corpus $id: no generator gen_${spec#gen:}"
		"gen_${spec#gen:}" "$id" >"$file"
		;;
	*) expand "$spec" "$id" >"$file" ;;
	esac
}

# --- the corpus -----------------------------------------------------------------------------------------
declare -a IDS=()
declare -A EXPECTED=() RAW=() TOPIC_SPEC=() COMMENT=()
comment=
while IFS=$'\t' read -r id expected topic payload; do
	if [[ -z "$id" || "$id" == \#* ]]; then
		if [[ "$id" == '# '* && "$id" != '# ---'* ]]; then
			comment=${id#\# }
		fi
		continue
	fi
	[[ "$id" =~ ^h[0-9]{3}$ && -n "$expected" && -n "$topic" && -n "$payload" ]] ||
		fail "corpus line '$id': want id<TAB>expected<TAB>topic<TAB>payload"
	[[ -z "${EXPECTED[$id]:-}" ]] || fail "corpus: duplicate id $id"
	IDS+=("$id")
	EXPECTED[$id]=$expected
	RAW[$id]=0
	if [[ "$topic" == raw:* ]]; then
		RAW[$id]=1
		topic=${topic#raw:}
	fi
	TOPIC_SPEC[$id]=$topic
	COMMENT[$id]=$comment
	comment=
	materialize "$topic" "$id" "$MSG/$id.topic"
	materialize "$payload" "$id" "$MSG/$id.payload"
done <"$CORPUS"

reasons_known=" no_route empty_payload oversized_payload invalid_utf8 malformed_json wrong_type bad_timestamp
	serial_mismatch non_finite_value unknown_tenant unknown_device device_disabled tenant_mismatch unknown_point
	point_limit value_out_of_range timestamp_future timestamp_stale no_measurements invalid_point_name "
delivered=0
rejects=0
for id in "${IDS[@]}"; do
	case ${EXPECTED[$id]} in
	accept) delivered=$((delivered + 1)) ;;
	ignored | pub_refused | broker_refused) ;;
	*)
		[[ "$reasons_known" == *[[:space:]]${EXPECTED[$id]}[[:space:]]* ]] ||
			fail "corpus $id: '${EXPECTED[$id]}' is not a README reason nor a verdict"
		delivered=$((delivered + 1))
		rejects=$((rejects + 1))
		;;
	esac
	case ${EXPECTED[$id]} in
	ignored | pub_refused | broker_refused) ;;
	*)
		# Each delivered message carries its id, in the topic or in the payload.
		grep -aq -- "$id" "$MSG/$id.topic" || grep -aq -- "$id" "$MSG/$id.payload" ||
			fail "corpus $id: neither topic nor payload carries the id"
		;;
	esac
done
it_log "corpus: ${#IDS[@]} messages, $delivered reach the bridge ($rejects to be rejected)"

# --- registry -------------------------------------------------------------------------------------------
m2p_admin tenant add acme --name "Acme Solar" >/dev/null
m2p_admin tenant add globex --name "Globex" >/dev/null
topic_level() { cut -d/ -f"$2" <"$MSG/$1.topic"; }
for id in "${IDS[@]}"; do
	tenant=acme
	case ${EXPECTED[$id]} in
	unknown_device) continue ;;
	tenant_mismatch)
		if [[ "$(topic_level "$id" 2)" == acme ]]; then
			tenant=globex
		fi
		;;
	esac
	m2p_admin device add "$id" --tenant "$tenant" --model hostile "${STANDARD_POINTS[@]}" >/dev/null
	if [[ ${EXPECTED[$id]} == device_disabled ]]; then
		m2p_admin device disable "$id" >/dev/null
	fi
done
m2p_admin device add final-1 --tenant acme "${STANDARD_POINTS[@]}" >/dev/null
psql_owner "INSERT INTO points (device_id, name, unit) SELECT id, 'phase:L1/voltage', 'V' FROM devices" >/dev/null
registry_before=$(psql_super "SELECT (SELECT count(*) FROM tenants) || '/' || (SELECT count(*) FROM devices) || '/' ||
	(SELECT count(*) FROM points) || '/' || (SELECT count(*) FROM devices WHERE enabled)")
it_log "registry: tenants/devices/points/enabled = $registry_before"

# --- the bridge -----------------------------------------------------------------------------------------
HTTP_PORT=$(free_port)
conf=$IT_DIR/bridge.conf
bridge_config "$conf" "validation = { max_payload_bytes = $MAX_PAYLOAD; max_future_skew = 300; max_age = 86400;
	reject_payload_bytes = $REJECT_PAYLOAD_BYTES; };" "http = { listen = \"127.0.0.1\"; port = $HTTP_PORT; };"
# Debug level: every rejection is logged with its (escaped) topic and detail, so a device string that
# could break a log line gets its chance.
sed -i 's/level = "info"/level = "debug"/' "$conf"
grep -q 'level = "debug"' "$conf" || fail "could not set the log level to debug in $conf"
bridge_start "$conf"

metric() { metric_at "$HTTP_PORT" "$1"; }

# --- publishing -----------------------------------------------------------------------------------------
# A variable-length MQTT "remaining length", as hex.
mqtt_varint()
{
	local n=$1 out='' byte
	while :; do
		byte=$((n % 128))
		n=$((n / 128))
		if ((n > 0)); then
			byte=$((byte | 128))
		fi
		out+=$(printf '%02x' "$byte")
		if ((n == 0)); then
			break
		fi
	done
	printf '%s' "$out"
}
mqtt_string() { printf '%04x%s' $((${#1} / 2)) "$1"; } # HEX -> length-prefixed

# raw_publish ID: CONNECT (MQTT 3.1.1, clean session, client id hostile-raw-ID), PUBLISH QoS 0 of the case's
# topic and payload bytes as they are, DISCONNECT. No client library checks anything. Prints the CONNACK.
raw_publish()
{
	local id=$1 client topic payload body connect publish
	client=$(printf 'hostile-raw-%s' "$id" | to_hex)
	topic=$(to_hex <"$MSG/$id.topic")
	payload=$(to_hex <"$MSG/$id.payload")
	body="$(mqtt_string "$(printf MQTT | to_hex)")0402003c$(mqtt_string "$client")"
	connect="10$(mqtt_varint $((${#body} / 2)))$body"
	body="$(mqtt_string "$topic")$payload"
	publish="30$(mqtt_varint $((${#body} / 2)))$body"
	(
		trap '' PIPE
		exec 3<>"/dev/tcp/127.0.0.1/$MQTT_PORT"
		from_hex "$connect" >&3
		timeout 5 head -c 4 <&3 | to_hex
		from_hex "$publish" >&3 2>/dev/null || true
		from_hex e000 >&3 2>/dev/null || true
		sleep 0.2
	) || true
}

declare -A PUB_RC=() CONNACK=()
# publish_case ID: one message, as its topic spec says (mosquitto_pub QoS 1, or the raw packet).
publish_case()
{
	local id=$1 rc=0
	if ((RAW[$id])); then
		CONNACK[$id]=$(raw_publish "$id")
		return 0
	fi
	if [[ -s "$MSG/$id.payload" ]]; then
		mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -i "hostile-pub-$id" -t "$(cat "$MSG/$id.topic")" \
			-f "$MSG/$id.payload" >"$MSG/$id.pub.log" 2>&1 || rc=$?
	else
		mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -i "hostile-pub-$id" -t "$(cat "$MSG/$id.topic")" \
			-n >"$MSG/$id.pub.log" 2>&1 || rc=$?
	fi
	PUB_RC[$id]=$rc
}
started=$(now_s)
for id in "${IDS[@]}"; do
	publish_case "$id"
done
it_log "published ${#IDS[@]} messages in $(awk -v a="$started" -v b="$(now_s)" 'BEGIN { printf "%.1f", b - a }')s"

# --- 1. publishing verdicts -------------------------------------------------------------------------------
bad_pub=()
for id in "${IDS[@]}"; do
	if ((RAW[$id])); then
		[[ "${CONNACK[$id]}" == 20020000 ]] || bad_pub+=("$id: raw CONNECT answered '${CONNACK[$id]}'")
		if [[ ${EXPECTED[$id]} == broker_refused ]] &&
			! grep -Eq "Client hostile-raw-$id disconnected (due to|, not authorised)|Bad client hostile-raw-$id" "$MOSQ_LOG"; then
			bad_pub+=("$id: the broker did not drop the raw client ($(grep -a "hostile-raw-$id" "$MOSQ_LOG" | tail -n 1))")
		fi
	elif [[ ${EXPECTED[$id]} == pub_refused ]]; then
		((PUB_RC[$id] != 0)) || bad_pub+=("$id: mosquitto_pub published it (${COMMENT[$id]})")
	elif ((PUB_RC[$id] != 0)); then
		bad_pub+=("$id: mosquitto_pub failed: $(head -c 200 "$MSG/$id.pub.log")")
	fi
done
check_eq "" "$(printf '%s\n' "${bad_pub[@]}")" "mosquitto_pub refuses exactly the pub_refused topics, the broker drops the raw malformed ones"

# --- waiting for the bridge ---------------------------------------------------------------------------------
received_ge() { test "$(metric mqtt2pg_messages_received_total)" -ge "$1" 2>/dev/null; }
wait_until 60 received_ge "$delivered" ||
	it_log "WARNING: the bridge took only $(metric mqtt2pg_messages_received_total) of $delivered messages"
settled() # true once rows, rejections and the queue stayed the same for three polls (0.6 s)
{
	local counts
	counts="$(rejected)/$(rows)/$(metric mqtt2pg_queue_depth)"
	if [[ "$counts" == "${_last_counts:-}" ]]; then
		_same_polls=$((_same_polls + 1))
	else
		_same_polls=0
		_last_counts=$counts
	fi
	((_same_polls >= 3))
}
_same_polls=0
sleep 0.5
wait_until 30 settled || it_log "WARNING: rows and rejections still moving"
recorded_rejects=$(rejected)
it_log "the bridge took $(metric mqtt2pg_messages_received_total) messages; $recorded_rejects rejections and $(rows) rows recorded"

# --- 2. rejections, per message ------------------------------------------------------------------------------
expected_rejects=$(for id in "${IDS[@]}"; do
	case ${EXPECTED[$id]} in accept | ignored | pub_refused | broker_refused) ;; *) echo "$id ${EXPECTED[$id]}" ;; esac
done | sort)
actual_rejects=$(psql_super "SELECT coalesce(substring(topic from 'h[0-9]{3}'),
	substring(encode(payload, 'escape') from 'h[0-9]{3}'), '?') || ' ' || reason FROM rejected_messages" | sort)
if [[ "$expected_rejects" == "$actual_rejects" ]]; then
	printf 'ok: each of the %d rejected messages recorded once, with its expected reason\n' "$rejects"
else
	printf 'FAIL: rejected_messages differ from the corpus (< expected, > recorded):\n' >&2
	diff <(echo "$expected_rejects") <(echo "$actual_rejects") | grep '^[<>]' | while read -r dir id reason; do
		if [[ "$dir" == '<' ]]; then
			got=$(psql_super "SELECT coalesce(string_agg(reason, ','), 'not rejected') || ', ' || (SELECT count(*)
				FROM measurements m JOIN devices d ON d.id = m.device_id WHERE d.serial = '$id') || ' row(s)'
				FROM rejected_messages WHERE coalesce(substring(topic from 'h[0-9]{3}'),
				substring(encode(payload, 'escape') from 'h[0-9]{3}')) = '$id'")
		else
			got="expected ${EXPECTED[$id]:-?}"
		fi
		printf '  %s %s %-20s %s: %s\n' "$dir" "$id" "$reason" "${COMMENT[$id]:-}" "$got" >&2
	done || true
	FAILURES+=("rejections per message")
fi

# Topic, claimed tenant and serial as recorded: the bytes sent, escaped (a '\' doubled; the broker lets no
# control character through); the payload raw, cut at reject_payload_bytes.
declare -A REC_TOPIC=() REC_TENANT=() REC_SERIAL=() REC_PAYLOAD=()
while IFS='|' read -r id topic tenant serial payload; do
	REC_TOPIC[$id]=$topic
	REC_TENANT[$id]=$tenant
	REC_SERIAL[$id]=$serial
	REC_PAYLOAD[$id]=$payload
done < <(psql_super "SELECT coalesce(substring(topic from 'h[0-9]{3}'), substring(encode(payload, 'escape') from 'h[0-9]{3}')),
	encode(convert_to(topic, 'UTF8'), 'hex'), coalesce(encode(convert_to(tenant_slug, 'UTF8'), 'hex'), 'NULL'),
	coalesce(encode(convert_to(serial, 'UTF8'), 'hex'), 'NULL'), coalesce(encode(payload, 'hex'), '')
	FROM rejected_messages")
# text_escape's output for these strings: '\' doubled, and the bidirectional controls and line separators
# (U+202A-202E, U+2066-2069, U+200E/200F, U+061C, U+2028/2029) written as \uNNNN (issue 12, finding 7).
escaped_hex()
{
	local -a expr=(-e 's/\\/\\\\/g' -e 's/\xd8\x9c/\\u061c/g')
	local cp
	for cp in 200e 200f 2028 2029 202a 202b 202c 202d 202e 2066 2067 2068 2069; do
		expr+=(-e "s/$(printf '\\x%02x\\x%02x\\x%02x' 0xe2 $((0x80 | (0x$cp >> 6 & 0x3f))) $((0x80 | (0x$cp & 0x3f))))/\\\\u$cp/g")
	done
	LC_ALL=C sed "${expr[@]}" | to_hex
}
bad_record=()
for id in "${IDS[@]}"; do
	case ${EXPECTED[$id]} in accept | ignored | pub_refused | broker_refused) continue ;; esac
	[[ -n "${REC_TOPIC[$id]:-}" ]] || continue # reported above
	want_payload=$(head -c "$REJECT_PAYLOAD_BYTES" "$MSG/$id.payload" | to_hex)
	[[ "${REC_PAYLOAD[$id]}" == "$want_payload" ]] ||
		bad_record+=("$id: payload $(head -c 60 <<<"${REC_PAYLOAD[$id]}")... is not the first $REJECT_PAYLOAD_BYTES bytes sent")
	if [[ ${TOPIC_SPEC[$id]} == gen:* ]]; then
		# A topic too long for its column: cut, marked with "...", still valid text.
		rec=$(from_hex "${REC_TOPIC[$id]}")
		((${#rec} <= 1023)) && [[ "$rec" == *... && "$rec" == "solar/acme/$id"* ]] ||
			bad_record+=("$id: long topic recorded as ${#rec} characters '${rec:0:40}...${rec: -10}'")
		continue
	fi
	[[ "${REC_TOPIC[$id]}" == "$(escaped_hex <"$MSG/$id.topic")" ]] ||
		bad_record+=("$id: topic recorded as '$(from_hex "${REC_TOPIC[$id]}")'")
	if [[ ${EXPECTED[$id]} == no_route ]]; then
		[[ "${REC_TENANT[$id]}/${REC_SERIAL[$id]}" == NULL/NULL ]] ||
			bad_record+=("$id: no route, but a tenant or serial was recorded")
	else
		[[ "${REC_TENANT[$id]}" == "$(topic_level "$id" 2 | tr -d '\n' | escaped_hex)" &&
			"${REC_SERIAL[$id]}" == "$(topic_level "$id" 3 | tr -d '\n' | escaped_hex)" ]] ||
			bad_record+=("$id: claimed tenant/serial recorded as '$(from_hex "${REC_TENANT[$id]}")'/'$(from_hex "${REC_SERIAL[$id]}")'")
	fi
done
check_eq "" "$(printf '%s\n' "${bad_record[@]}")" "rejections keep the topic, claimed tenant and serial (escaped) and the raw payload"
check_eq 0 "$(psql_super "SELECT count(*) FROM rejected_messages WHERE
	concat(topic, tenant_slug, serial, detail) ~ '[\x01-\x1f\x7f-\x9f]'")" "no control character in any recorded text"

# --- 3. accepted messages: exactly the rows PostgreSQL reads from their payloads ----------------------------------
accept_src=$IT_DIR/accept.tsv
for id in "${IDS[@]}"; do
	[[ ${EXPECTED[$id]} == accept ]] && printf '%s\t%s\n' "$id" "$(to_hex <"$MSG/$id.payload")"
done >"$accept_src"
chmod 644 "$accept_src"
compare_sql=(
	"CREATE TEMP TABLE src (id text, payload_hex text)"
	"\\copy src FROM '$accept_src'"
	"CREATE TEMP TABLE expected AS
	WITH doc AS (
		SELECT id, ltrim(convert_from(decode(payload_hex, 'hex'), 'UTF8'), U&'\\FEFF')::jsonb AS j FROM src),
	envelope AS (
		SELECT id, e AS o FROM doc,
			jsonb_array_elements(CASE jsonb_typeof(j) WHEN 'array' THEN j ELSE jsonb_build_array(j) END) e)
	SELECT id, m.key AS point, (m.value #>> '{}')::float8 AS value,
		CASE jsonb_typeof(o->'timestamp')
			WHEN 'string' THEN regexp_replace(o->>'timestamp', '(\\.[0-9]{6})[0-9]+', '\\1')::timestamptz
			WHEN 'number' THEN to_timestamp((o->>'timestamp')::float8) END AS time
	FROM envelope, jsonb_each(o->'measurements') m
	WHERE jsonb_typeof(m.value) = 'number'; -- null and booleans are skipped (README, issue 15)
	CREATE TEMP TABLE actual AS
		SELECT d.serial AS id, p.name AS point, m.value, m.time FROM measurements m
		JOIN devices d ON d.id = m.device_id JOIN points p ON p.id = m.point_id;
	CREATE TEMP VIEW missing AS SELECT * FROM expected e WHERE NOT EXISTS (SELECT 1 FROM actual a
		WHERE a.id = e.id AND a.point = e.point AND a.value = e.value
		AND (a.time = e.time OR (e.time IS NULL AND a.time BETWEEN to_timestamp($T0) AND now())));
	CREATE TEMP VIEW unexpected AS SELECT * FROM actual a WHERE NOT EXISTS (SELECT 1 FROM expected e
		WHERE a.id = e.id AND a.point = e.point AND a.value = e.value
		AND (a.time = e.time OR (e.time IS NULL AND a.time BETWEEN to_timestamp($T0) AND now())))")
row_counts=$(psql_super "${compare_sql[@]}" "SELECT (SELECT count(*) FROM expected) || ' ' || (SELECT count(*) FROM actual)
	|| ' ' || (SELECT count(*) FROM missing) || ' ' || (SELECT count(*) FROM unexpected)")
read -r rows_expected rows_actual rows_missing rows_unexpected <<<"$row_counts"
if ((rows_missing == 0 && rows_unexpected == 0 && rows_expected == rows_actual)); then
	printf 'ok: the %d accepted messages wrote exactly their %d rows, nothing else wrote a row\n' \
		"$(grep -c . "$accept_src")" "$rows_expected"
else
	printf 'FAIL: rows: %d expected, %d written, %d missing, %d unexpected; first differences:\n' \
		"$rows_expected" "$rows_actual" "$rows_missing" "$rows_unexpected" >&2
	psql_super "${compare_sql[@]}" "SELECT 'missing', id, point, value, time FROM missing UNION ALL
		SELECT 'unexpected', id, point, value, time FROM unexpected ORDER BY 1, 2 LIMIT 20" |
		while IFS='|' read -r what id rest; do
			printf '  %-10s %s %s  (%s: %s)\n' "$what" "$id" "$rest" "${EXPECTED[$id]:-?}" "${COMMENT[$id]:-}" >&2
		done
	FAILURES+=("rows of the accepted messages")
fi

# The metrics count what the database holds.
metrics_reasons=$(curl -sf "http://127.0.0.1:$HTTP_PORT/metrics" |
	sed -n 's/^mqtt2pg_messages_rejected_total{reason="\([a-z0-9_]*\)"} \([0-9]*\)$/\1 \2/p' | awk '$2 > 0' | sort)
db_reasons=$(psql_super "SELECT reason || ' ' || count(*) FROM rejected_messages GROUP BY reason" | sort)
check_eq "$db_reasons" "$metrics_reasons" "mqtt2pg_messages_rejected_total{reason} matches rejected_messages"
check_eq "$delivered" "$(metric mqtt2pg_messages_received_total)" "mqtt2pg_messages_received_total counts every delivered message"

# --- 4. the bridge afterwards ------------------------------------------------------------------------------------
check "the bridge is still running" kill -0 "$BRIDGE_PID"
publish solar/acme/final-1/telemetry "{\"timestamp\":\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\",\"measurements\":{\"total_output_power\":4242}}"
check "the bridge still serves a valid message" wait_until 20 rows_ge 1 \
	"value = 4242 AND device_id = (SELECT id FROM devices WHERE serial = 'final-1')"
check_eq "$registry_before" "$(psql_super "SELECT (SELECT count(*) FROM tenants) || '/' || (SELECT count(*) FROM devices)
	|| '/' || (SELECT count(*) FROM points) || '/' || (SELECT count(*) FROM devices WHERE enabled)")" \
	"the registry is unchanged by the injection attempts"
check_eq "measurements points rejected_messages devices tenants" \
	"$(psql_super "SELECT string_agg(t, ' ' ORDER BY o) FROM unnest(ARRAY['measurements', 'points',
		'rejected_messages', 'devices', 'tenants']) WITH ORDINALITY AS x(t, o) WHERE to_regclass(t) IS NOT NULL")" \
	"every table is still there"

bridge_stop TERM
check_eq 0 "$BRIDGE_RC" "the bridge exits 0 on SIGTERM"
# Every log line starts with the timestamp: a device string with a newline must not start a line of its own.
ts_re='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z '
forged=$(grep -avE "$ts_re" "$BRIDGE_LOG" | head -n 5 || true)
check_eq "" "$forged" "every bridge log line starts with a timestamp (no forged line)"
bad_bytes=$(LC_ALL=C grep -anP '[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]' "$BRIDGE_LOG" | cut -c1-220 | cat -v | head -n 5 || true)
check_eq "" "$bad_bytes" "no control character in the bridge log"
bad_utf8=
if ! iconv -f UTF-8 -t UTF-8 -o /dev/null "$BRIDGE_LOG" 2>/dev/null; then
	bad_utf8=$(while IFS= read -r line; do
		iconv -f UTF-8 -t UTF-8 -o /dev/null <<<"$line" 2>/dev/null || printf '%s\n' "$line"
	done <"$BRIDGE_LOG" | cut -c1-220 | cat -v | head -n 5)
fi
check_eq "" "$bad_utf8" "the bridge log is valid UTF-8"
check_eq "$recorded_rejects" "$(grep -ac 'rejected message on topic' "$BRIDGE_LOG" || true)" \
	"each rejection logged once (debug level), on one line"

# --- 5. the same rejections with log.format = "json" ------------------------------------------------------------
# Every line must stay one JSON object (time, level, module, msg) in valid UTF-8, whatever the device sent.
sed -i 's/level = "debug";/level = "debug"; format = "json";/' "$conf"
grep -q 'format = "json"' "$conf" || fail "could not set log.format = json in $conf"
bridge_start "$conf"
# Every delivered message once more: the rejected ones are rejected again (recorded again, the same number),
# the accepted ones are duplicates.
for id in "${IDS[@]}"; do
	case ${EXPECTED[$id]} in ignored | pub_refused | broker_refused) continue ;; esac
	publish_case "$id"
done
wait_until 60 rejected_ge $((2 * recorded_rejects)) ||
	it_log "WARNING: only $(($(rejected) - recorded_rejects)) of $recorded_rejects rejections recorded again"
bridge_stop TERM
check_eq 0 "$BRIDGE_RC" "the JSON-logging bridge exits 0 on SIGTERM"
bad_utf8=
if ! iconv -f UTF-8 -t UTF-8 -o /dev/null "$BRIDGE_LOG" 2>/dev/null; then
	bad_utf8=$(while IFS= read -r line; do
		iconv -f UTF-8 -t UTF-8 -o /dev/null <<<"$line" 2>/dev/null || printf '%s\n' "$line"
	done <"$BRIDGE_LOG" | cut -c1-220 | cat -v | head -n 5)
fi
check_eq "" "$bad_utf8" "the JSON bridge log is valid UTF-8"
# PostgreSQL parses each line (the valid-UTF-8 part; the check above reports the rest).
iconv -c -f UTF-8 -t UTF-8 "$BRIDGE_LOG" >"$IT_DIR/json-log.utf8" 2>/dev/null || true
chmod 644 "$IT_DIR/json-log.utf8"
json_counts=$(psql_super "CREATE FUNCTION pg_temp.log_msg(line text) RETURNS text LANGUAGE plpgsql AS \$f\$
	DECLARE j jsonb;
	BEGIN
		j := line::jsonb;
		IF jsonb_typeof(j) <> 'object' OR NOT j ?& ARRAY['time', 'level', 'module', 'msg'] THEN
			RETURN NULL;
		END IF;
		RETURN j->>'msg';
	EXCEPTION WHEN others THEN
		RETURN NULL;
	END \$f\$" "SELECT count(*) FILTER (WHERE pg_temp.log_msg(line) IS NULL) || ' ' ||
		count(*) FILTER (WHERE pg_temp.log_msg(line) LIKE 'rejected message on topic %')
	FROM regexp_split_to_table(rtrim(convert_from(pg_read_binary_file('$IT_DIR/json-log.utf8'), 'UTF8'), E'\n'), E'\n') AS line")
read -r json_bad json_rejections <<<"$json_counts"
check_eq "0 $recorded_rejects" "$json_bad $json_rejections" "every JSON log line is one object with time, level, module, msg; each rejection logged once"

# --- summary ---------------------------------------------------------------------------------------------------
counts=$(for id in "${IDS[@]}"; do echo "${EXPECTED[$id]}"; done | sort | uniq -c | sort -k1,1nr -k2 |
	awk '{ printf "%s%s=%d", (NR > 1 ? " " : ""), $2, $1 }')
echo "hostile corpus: ${#IDS[@]} messages ($delivered delivered: $((delivered - rejects)) accepted, $rejects rejected); $counts"
if ((${#FAILURES[@]} > 0)); then
	printf '  failed: %s\n' "${FAILURES[@]}" >&2
	fail "${#FAILURES[@]} check(s) failed"
fi
echo "PASS it_hostile"
