// SPDX-License-Identifier: Apache-2.0
// tests/bench/node/bridge.js - the Node.js baseline of the benchmark (issue 17): a simple, competently written
// MQTT-to-PostgreSQL bridge with the same contract on the database side as mqtt2pg (tenant-scoped transactions
// as mqtt2pg_writer, set_config('app.tenant_id', ..., true), write_readings() of four arrays: INSERT ... ON
// CONFLICT DO NOTHING of up to BATCH_ROWS rows, flushed every FLUSH_MS) so the benchmark compares the bridges.
//
// What it does NOT do, and mqtt2pg does: it acknowledges each QoS 1 message on receipt (mqtt.js sends the PUBACK
// once the 'message' handler has run; acknowledging only after the commit would let the broker's 20-message
// in-flight window hold one batch at a time), so a crash loses what was buffered; no spool, no validation beyond
// "registered device and point", no rejection log. That is what the simple bridges of issue 17 do.
//
// Configuration (environment): MQTT_URI, CLIENT_ID, TOPIC_FILTER, WRITER_DB and REGISTRY_DB (libpq key=value
// strings: the writer writes, the registry is read once at start as a role that may read it), BATCH_ROWS (4000),
// FLUSH_MS (50), CONNECTIONS (2), STATUS_FILE (total committed rows, rewritten every 200 ms), PRIME=1 (connect,
// subscribe, disconnect: creates the persistent session and exits).
'use strict';

const mqtt = require('mqtt');
const { Client } = require('pg');

const env = (name, fallback) => process.env[name] ?? fallback;
const BATCH_ROWS = Number(env('BATCH_ROWS', 4000));
const FLUSH_MS = Number(env('FLUSH_MS', 50));
const CONNECTIONS = Number(env('CONNECTIONS', 2));
const STATUS_FILE = env('STATUS_FILE', '');

// libpq's "key=value key=value" into pg's config object (the bench passes no quoted values).
function pgConfig(conninfo) {
  const c = {};
  for (const kv of conninfo.trim().split(/\s+/)) {
    const [k, v] = kv.split('=');
    if (k === 'dbname') c.database = v;
    else if (k === 'port') c.port = Number(v);
    else c[k] = v;
  }
  return c;
}

// Registry: "slug/serial" -> {tenant, device, points: Map(name -> id)}.
async function loadRegistry() {
  const db = new Client(pgConfig(env('REGISTRY_DB')));
  await db.connect();
  const res = await db.query(
    `SELECT t.slug, d.serial, d.tenant_id, d.id AS device_id, p.name, p.id AS point_id
       FROM devices d JOIN tenants t ON t.id = d.tenant_id JOIN points p ON p.device_id = d.id`);
  await db.end();
  const devices = new Map();
  for (const r of res.rows) {
    const key = `${r.slug}/${r.serial}`;
    let d = devices.get(key);
    if (!d) devices.set(key, (d = { tenant: r.tenant_id, device: r.device_id, points: new Map() }));
    d.points.set(r.name, r.point_id);
  }
  return devices;
}

// Rows buffered per tenant, as column arrays ready for unnest().
class TenantBuffer {
  constructor() { this.clear(); }
  clear() { this.time = []; this.device = []; this.point = []; this.value = []; }
  get length() { return this.time.length; }
}

// The writer's only way in (sql/015): write_readings() checks the tenant context, inserts ON CONFLICT DO NOTHING
// and marks the new rows' buckets dirty, as it does for mqtt2pg. Times in microseconds since the epoch.
const INSERT = 'SELECT count(*) FROM write_readings($2, $1::bigint[], $3::int[], $4::int[], $5::float8[])';

async function main() {
  const filter = env('TOPIC_FILTER');
  const connectMqtt = async () => {
    const c = mqtt.connect(env('MQTT_URI'), {
      clientId: env('CLIENT_ID'), clean: false, protocolVersion: 4, keepalive: 30, reconnectPeriod: 1000,
    });
    return c;
  };
  if (env('PRIME', '') === '1') {
    const c = await connectMqtt();
    await new Promise((resolve, reject) => { c.once('connect', resolve); c.once('error', reject); });
    await c.subscribeAsync(filter, { qos: 1 });
    await c.endAsync();
    return;
  }

  // Registry and database first: the persistent session's queued messages arrive right after CONNACK, and a
  // message with no 'message' listener yet would be acknowledged and dropped.
  const registry = await loadRegistry();
  const pool = [];
  for (let i = 0; i < CONNECTIONS; i++) {
    const c = new Client(pgConfig(env('WRITER_DB')));
    await c.connect();
    pool.push(c);
  }
  const idle = [...pool];
  const buffers = new Map(); // tenant -> TenantBuffer
  let committed = 0, unknown = 0, inFlight = 0;

  async function write(tenant, buf) {
    const db = idle.pop();
    inFlight++;
    try {
      await db.query('BEGIN');
      await db.query("SELECT set_config('app.tenant_id', $1, true)", [String(tenant)]);
      await db.query(INSERT, [buf.time, tenant, buf.device, buf.point, buf.value]);
      await db.query('COMMIT');
      committed += buf.length;
    } catch (err) {
      console.error(`tenant ${tenant}: ${buf.length} rows not written: ${err.message}`);
      await db.query('ROLLBACK').catch(() => {});
    } finally {
      idle.push(db);
      inFlight--;
      setImmediate(flush, false);
    }
  }

  // Hands full buffers (or, on the timer, every non-empty one) to idle connections.
  function flush(all) {
    for (const [tenant, buf] of buffers) {
      if (idle.length === 0) return;
      if (buf.length === 0 || (!all && buf.length < BATCH_ROWS)) continue;
      buffers.set(tenant, new TenantBuffer());
      write(tenant, buf);
    }
  }

  const client = await connectMqtt();
  client.on('message', (topic, payload) => {
    const [, slug, serial] = topic.split('/');
    const dev = registry.get(`${slug}/${serial}`);
    let msg;
    try { msg = JSON.parse(payload); } catch { unknown++; return; }
    if (!dev || !msg || typeof msg.measurements !== 'object') { unknown++; return; }
    // Epoch seconds as a double: rounded to the microsecond it is exact for today's dates.
    const epochSeconds = typeof msg.timestamp === 'number' ? msg.timestamp
      : msg.timestamp !== undefined ? Date.parse(msg.timestamp) / 1000 : Date.now() / 1000;
    let buf = buffers.get(dev.tenant);
    if (!buf) buffers.set(dev.tenant, (buf = new TenantBuffer()));
    for (const [name, value] of Object.entries(msg.measurements)) {
      const point = dev.points.get(name);
      if (point === undefined || typeof value !== 'number') { unknown++; continue; }
      buf.time.push(String(Math.round(epochSeconds * 1e6)));
      buf.device.push(dev.device);
      buf.point.push(point);
      buf.value.push(value);
    }
    if (buf.length >= BATCH_ROWS) flush(false);
  });
  setInterval(() => flush(true), FLUSH_MS);
  if (STATUS_FILE) {
    const fs = require('fs');
    setInterval(() => fs.writeFileSync(STATUS_FILE, `${committed} ${unknown}\n`), 200);
  }
  await client.subscribeAsync(filter, { qos: 1 });
  console.log(`subscribed to ${filter}`);

  const stop = async () => {
    await client.endAsync();
    while (true) {
      flush(true);
      if (inFlight === 0 && [...buffers.values()].every((b) => b.length === 0)) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const c of pool) await c.end();
    console.log(`stopped: ${committed} rows committed, ${unknown} readings unknown`);
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err) => { console.error(err); process.exit(1); });
