// pg_oracle.test.mjs — postgres-source tasks checked against an oracle
// that does not share the extension's code (test/lib/change_oracle.mjs:
// trigger-logged changes rendered in SQL by the README's rules, and the
// table itself).
//
// Random mixes of inserts, updates (some columns, the large value or not)
// and deletes, several statements per transaction, rows deleted and
// re-inserted and updated twice in one transaction, odd text keys, values
// of every documented type, large incompressible values stored out of line
// (TOAST, some columns STORAGE EXTERNAL), from three writers at once —
// running while the task takes its snapshot and loads, and after. Checked:
// the load is exactly the snapshot's state, every later transaction comes
// once with the same operations and values, per-key order holds, and load +
// changes replayed give the table at the end.
//
// Run: test/check.sh --only pg_oracle
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  env, psql, psqlTry, run, createStream, kinesis, uniqueName, waitFor, streamRecords,
} from '../lib/bed.mjs';
import { assertStreamInvariants } from '../lib/stream_invariants.mjs';
import { installOracle, oracleLog, oracleTableState, checkStream } from '../lib/change_oracle.mjs';

const lit = (s) => (s === null || s === undefined ? 'NULL' : `'${String(s).replace(/'/g, "''")}'`);
const PRE = '\\set QUIET on\nSET client_min_messages = warning;\n';
const sql = (q) => psql(PRE + q);
const one = async (q) => (await sql(q)).at(-1)?.[0];

const tasks = [];
const streams = [];

/** Deterministic pseudo-random numbers (mulberry32), so a failure can be rerun. */
function prng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n) => Math.floor(next() * n), pick: (xs) => xs[Math.floor(next() * xs.length)] };
}

async function makeSchema(identityFull) {
  const schema = uniqueName('orc').replace(/-/g, '_');
  await sql(`CREATE SCHEMA ${schema};
    -- incompressible text of about 32*n bytes
    CREATE FUNCTION ${schema}_big(n int) RETURNS text LANGUAGE sql VOLATILE AS
      $$ SELECT string_agg(md5(random()::text || i), '') FROM generate_series(1, n) i $$;
    CREATE TABLE ${schema}.acct (id bigint PRIMARY KEY, n numeric(12,2), ts timestamptz, d date, f float8,
      ok boolean, note text, doc jsonb, blob bytea, big text);
    CREATE TABLE ${schema}.evt (k text PRIMARY KEY, v int, big text);
    ALTER TABLE ${schema}.evt ALTER COLUMN big SET STORAGE EXTERNAL;
    ${identityFull ? `ALTER TABLE ${schema}.acct REPLICA IDENTITY FULL; ALTER TABLE ${schema}.evt REPLICA IDENTITY FULL;` : ''}`);
  return schema;
}

/** SQL for a row's values of acct (random, some NULL, some large). */
function acctValues(r, schema, id) {
  const n = r.int(5) === 0 ? 'NULL' : `${(r.int(2000000) - 1000000) / 100}`;
  const ts = r.int(6) === 0 ? 'NULL' : `'2024-0${1 + r.int(9)}-1${r.int(9)} 0${r.int(9)}:1${r.int(9)}:2${r.int(9)}.${r.int(1000000)}+0${r.int(9)}'`;
  const d = r.int(6) === 0 ? 'NULL' : `'20${10 + r.int(20)}-0${1 + r.int(9)}-2${r.int(8)}'`;
  const f = r.pick(['NULL', '0.1', '-2.5e-7', '1e+20', `${r.int(100000) / 7}`]);
  const ok = r.pick(['NULL', 'true', 'false']);
  const note = r.pick(['NULL', "''", `'note ${id} ü ✓ "q" \\\\ /x'`, `'${'n'.repeat(r.int(3000))}'`]);
  const doc = r.pick(['NULL', `'{"a": ${id}, "b": [1, "two", null]}'`, `'[]'`]);
  const blob = r.pick(['NULL', "'\\x00ff10'", `decode(md5('${id}'), 'hex')`]);
  const big = r.int(4) === 0 ? `${schema}_big(${600 + r.int(1400)})` : r.pick(['NULL', `'small ${id}'`]);
  return { n, ts, d, f, ok, note, doc, blob, big };
}

/**
 * One writer's script: `xacts` transactions of 1-6 statements on the keys
 * it owns (acct ids ≡ w mod 3, evt keys with its prefix), so writers never
 * wait on each other's rows.
 */
function writerScript(schema, w, xacts, seed, owned) {
  const r = prng(seed);
  const out = [];
  owned.nextId ??= 1000000 + w;
  owned.nextK ??= 0;
  for (let x = 0; x < xacts; x++) {
    out.push('BEGIN;');
    for (let s = 0, n = 1 + r.int(6); s < n; s++) {
      const kind = r.int(10);
      if (owned.acct.length === 0 || kind < 3) {
        const id = (owned.nextId += 3);
        const v = acctValues(r, schema, id);
        out.push(`INSERT INTO ${schema}.acct VALUES (${id}, ${v.n}, ${v.ts}, ${v.d}, ${v.f}, ${v.ok}, ${v.note}, ${v.doc}, ${v.blob}, ${v.big});`);
        owned.acct.push(id);
      } else if (kind < 6) {
        const id = r.pick(owned.acct);
        const v = acctValues(r, schema, id);
        const cols = Object.keys(v).filter(() => r.int(3) === 0);
        if (cols.length === 0) cols.push('n');
        out.push(`UPDATE ${schema}.acct SET ${cols.map((c) => `${c} = ${v[c]}`).join(', ')} WHERE id = ${id};`);
        if (r.int(8) === 0) out.push(`UPDATE ${schema}.acct SET ok = NOT coalesce(ok, false) WHERE id = ${id};`);
      } else if (kind < 7) {
        const i = r.int(owned.acct.length);
        const id = owned.acct[i];
        out.push(`DELETE FROM ${schema}.acct WHERE id = ${id};`);
        if (r.int(3) === 0) {
          const v = acctValues(r, schema, id);
          out.push(`INSERT INTO ${schema}.acct VALUES (${id}, ${v.n}, ${v.ts}, ${v.d}, ${v.f}, ${v.ok}, ${v.note}, ${v.doc}, ${v.blob}, ${v.big});`);
        } else {
          owned.acct.splice(i, 1);
        }
      } else if (owned.evt.length === 0 || kind < 8) {
        const k = `w${w}/key "${owned.nextK++}" é ${'/'.repeat(r.int(3))}.`;
        out.push(`INSERT INTO ${schema}.evt VALUES (${lit(k)}, ${r.int(1000)}, ${r.int(3) === 0 ? `${schema}_big(${700 + r.int(1000)})` : 'NULL'});`);
        owned.evt.push(k);
      } else if (kind < 9) {
        const k = r.pick(owned.evt);
        out.push(r.int(2) === 0
          ? `UPDATE ${schema}.evt SET v = v + 1 WHERE k = ${lit(k)};`
          : `UPDATE ${schema}.evt SET big = ${schema}_big(${700 + r.int(1000)}), v = ${r.int(100)} WHERE k = ${lit(k)};`);
      } else {
        const i = r.int(owned.evt.length);
        out.push(`DELETE FROM ${schema}.evt WHERE k = ${lit(owned.evt[i])};`);
        owned.evt.splice(i, 1);
      }
    }
    out.push('COMMIT;');
    if (r.int(4) === 0) out.push('SELECT pg_sleep(0.005);');
  }
  return out.join('\n');
}

/** Run a writer's script in its own session; rejects when a statement failed. */
async function runWriter(script) {
  const r = await run('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1'], { input: `SET client_min_messages = warning;\n${script}`, timeoutMs: 600000 });
  if (r.status !== 0) throw new Error(`writer failed: ${r.stderr.slice(0, 2000)}`);
}

async function makeTask(schema, migrationType) {
  const stream = uniqueName('orc');
  const task = uniqueName('orctask');
  await createStream(stream, 2);
  streams.push(stream);
  const ks = { StreamName: stream, IncludeTransactionDetails: true, IncludeNullAndEmpty: true };
  const mappings = { rules: [{ 'rule-type': 'selection', 'rule-id': '1', 'rule-name': 'one',
    'object-locator': { 'schema-name': schema, 'table-name': '%' }, 'rule-action': 'include' }] };
  await sql(`SELECT dms_stream.create_endpoint(${lit(`${task}-src`)}, 'postgres', 'source', '{}');
    SELECT dms_stream.create_endpoint(${lit(`${task}-tgt`)}, 'kinesis', 'target', ${lit(JSON.stringify(ks))}, ${lit(env.KINESIS_PROXY_URL)});
    SELECT dms_stream.set_endpoint_credentials(${lit(`${task}-tgt`)}, ${lit(env.AWS_ACCESS_KEY_ID)}, ${lit(env.AWS_SECRET_ACCESS_KEY)});
    SELECT dms_stream.create_task(${lit(task)}, ${lit(`${task}-src`)}, ${lit(`${task}-tgt`)}, ${lit(migrationType)}, ${lit(JSON.stringify(mappings))});`);
  tasks.push(task);
  return { stream, task };
}

const taskState = async (task) => (await sql(`SELECT status, coalesce(last_error, ''), coalesce(phase, '')
  FROM dms_stream.task_status WHERE task = ${lit(task)}`))[0];

/** Wait until every logged transaction after the load is in the stream. */
async function waitComplete(stream, schema, oracle, task) {
  let lastMsg = '';
  await waitFor(async () => {
    const [st, err] = await taskState(task);
    if (st === 'failed') throw new Error(`task failed: ${err}`);
    const log = await oracleLog(sql, oracle);
    const recs = await streamRecords(stream);
    const xids = new Set(recs.map((r) => JSON.parse(r.Data.toString('utf8')).metadata['transaction-id']).filter((x) => x !== undefined).map(Number));
    const lastXid = log.at(-1).xid;
    lastMsg = `${xids.size} transactions streamed, waiting for ${lastXid}`;
    return xids.has(lastXid);
  }, { timeoutMs: 240000, intervalMs: 1000, what: `the last transaction in the stream (${lastMsg})` });
}

before(async () => {
  await sql('CREATE EXTENSION IF NOT EXISTS dms_stream;');
});

after(async () => {
  for (const t of tasks) await psqlTry(`SELECT dms_stream.stop_task(${lit(t)})`);
  for (const t of tasks) {
    await waitFor(async () => ['stopped', 'failed', 'ready'].includes((await taskState(t))[0]), { timeoutMs: 30000 }).catch(() => {});
    await psqlTry(`UPDATE dms_stream.task SET status = 'stopped', desired_state = 'stopped' WHERE task_name = ${lit(t)};
      SELECT dms_stream.drop_task(${lit(t)});`);
  }
  for (const st of streams) await kinesis('DeleteStream', { StreamName: st }).catch(() => {});
});

for (const identityFull of [false, true]) {
  test(`full-load-and-cdc under three concurrent writers, large values, every type${identityFull ? ', REPLICA IDENTITY FULL' : ''}: the stream matches the trigger log and the table`, { timeout: 600000 }, async () => {
    const schema = await makeSchema(identityFull);
    const oracle = await installOracle(sql, schema, ['acct', 'evt']);
    const seedRng = prng(identityFull ? 7 : 3);
    const owned = [0, 1, 2].map(() => ({ acct: [], evt: [] }));
    // Seed rows, some of them large, each owned by one writer.
    const seed = [];
    for (let id = 1; id <= 1500; id++) {
      const v = acctValues(seedRng, schema, id);
      seed.push(`(${id}, ${v.n}, ${v.ts}, ${v.d}, ${v.f}, ${v.ok}, ${v.note}, ${v.doc}, ${v.blob}, ${v.big})`);
      owned[id % 3].acct.push(id);
    }
    await sql(`INSERT INTO ${schema}.acct VALUES ${seed.join(',\n')};
      INSERT INTO ${schema}.evt SELECT 'seed/' || g || '/' || (g % 3), g, CASE WHEN g % 4 = 0 THEN ${schema}_big(800) END
        FROM generate_series(1, 300) g;`);
    for (let g = 1; g <= 300; g++) owned[g % 3].evt.push(`seed/${g}/${g % 3}`);
    const toast = await one(`SELECT pg_relation_size(reltoastrelid) FROM pg_class WHERE oid = '${schema}.evt'::regclass`);
    assert.ok(Number(toast) > 0, 'large values are stored out of line');

    const { stream, task } = await makeTask(schema, 'full-load-and-cdc');
    const scripts = [0, 1, 2].map((w) => writerScript(schema, w, 120, 100 * (identityFull ? 2 : 1) + w, owned[w]));
    const second = [0, 1, 2].map((w) => writerScript(schema, w, 60, 900 + w, owned[w]));
    // The writers run while the task starts, snapshots and loads; a second
    // round of writes follows once it streams.
    const writers = Promise.all(scripts.map(runWriter));
    await sql(`SELECT dms_stream.start_task(${lit(task)});`);
    await writers;
    await waitFor(async () => {
      const [st, err, phase] = await taskState(task);
      if (st === 'failed') throw new Error(`task failed: ${err}`);
      return phase.startsWith('cdc:');
    }, { timeoutMs: 180000, what: 'task streaming' });
    await Promise.all(second.map(runWriter));
    await waitComplete(stream, schema, oracle, task);

    const log = await oracleLog(sql, oracle);
    const recs = await streamRecords(stream);
    assertStreamInvariants(recs, { what: stream });
    const got = checkStream(recs, log, await oracleTableState(sql, oracle), oracle);
    assert.ok(got.loads >= 1500, `the load (${got.loads} rows)`);
    assert.ok(got.transactions >= 180, `the second round at least was streamed (${got.transactions} transactions)`);
    assert.ok(log.filter((a) => a.op === 'update').length > 300 && log.filter((a) => a.op === 'delete').length > 50,
      'the mix has updates and deletes');
  });
}
