// change_oracle.mjs — an oracle for tasks whose source is this database,
// independent of the extension's code.
//
// AFTER ROW triggers log every change of the watched tables (transaction
// id, statement order, table, operation, key) with the row rendered in SQL
// by the rules the README documents for DMS messages (integers and numerics
// as JSON numbers, timestamptz as YYYY-MM-DDTHH:MM:SS.ffffffZ in UTC, bytea
// as "0x" + upper-case hex, json/jsonb as their text, dates as YYYY-MM-DD).
// For an update the log also names the columns whose value did not change
// (the only ones that may travel as "unchanged-columns").
//
// checkStream() then compares the records read back from the stream with
// the log and with the table:
//   - every record is well formed; a record id seen twice carries the same
//     data (re-sent), nothing else repeats;
//   - per partition key, records come in commit order;
//   - every transaction of the stream is in the log with the same
//     operations, tables, keys and values, record ids 1..n, only the last
//     flagged;
//   - the full load is exactly the state after the logged transactions that
//     are not in the stream (snapshot consistent, no gap, no overlap);
//   - replaying the load and then the changes in commit order gives the
//     table as it is at the end.
import assert from 'node:assert/strict';

const q = (s) => `"${s.replace(/"/g, '""')}"`;
const lit = (s) => `'${String(s).replace(/'/g, "''")}'`;

/** SQL rendering one column value (expression e of type t) as DMS does. */
function renderSql(e, type) {
  if (/^timestamp(\(\d+\))? with time zone$/.test(type))
    return `to_jsonb(to_char(${e} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))`;
  if (/^timestamp(\(\d+\))? without time zone$/.test(type))
    return `to_jsonb(to_char(${e}, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))`;
  if (type === 'bytea') return `to_jsonb('0x' || upper(encode(${e}, 'hex')))`;
  if (type === 'json' || type === 'jsonb' || type === 'date') return `to_jsonb(${e}::text)`;
  return `to_jsonb(${e})`;
}

/**
 * Install the oracle on tables (names in schema) of one schema: a log table
 * and a trigger per table in schema `${schema}_oracle` (not selected by the
 * task when its rules select only `schema`). Returns the oracle object.
 */
export async function installOracle(sql, schema, tables) {
  const os = `${schema}_oracle`;
  await sql(`CREATE SCHEMA ${q(os)};
    CREATE TABLE ${q(os)}.log (seq bigserial PRIMARY KEY, xid bigint NOT NULL, tbl text NOT NULL, op text NOT NULL,
      key text NOT NULL, row jsonb, same text[]);`);
  const oracle = { schema, os, tables: {} };
  for (const t of tables) {
    const cols = (await sql(`SELECT a.attname, format_type(a.atttypid, a.atttypmod),
        coalesce(a.attnum = ANY (i.indkey), false)
      FROM pg_attribute a LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
      WHERE a.attrelid = ${lit(`${q(schema)}.${q(t)}`)}::regclass AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attnum`)).map(([name, type, pk]) => ({ name, type, pk: pk === 't' }));
    const pk = cols.filter((c) => c.pk);
    assert.ok(pk.length > 0, `table ${t} needs a primary key for the oracle`);
    const row = (r) => `jsonb_build_object(${cols.map((c) => `${lit(c.name)}, ${renderSql(`${r}.${q(c.name)}`, c.type)}`).join(', ')})`;
    const key = (r) => `(jsonb_build_array(${pk.map((c) => renderSql(`${r}.${q(c.name)}`, c.type)).join(', ')}))::text`;
    const same = `array_remove(ARRAY[${cols.map((c) => `CASE WHEN OLD.${q(c.name)} IS NOT DISTINCT FROM NEW.${q(c.name)} THEN ${lit(c.name)} END`).join(', ')}], NULL)`;
    const fn = `${q(os)}.${q(`log_${t}`)}`;
    await sql(`CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $f$
      BEGIN
        IF TG_OP = 'DELETE' THEN
          INSERT INTO ${q(os)}.log (xid, tbl, op, key, row) VALUES (txid_current() % 4294967296, ${lit(t)}, 'delete', ${key('OLD')}, ${row('OLD')});
        ELSIF TG_OP = 'UPDATE' THEN
          INSERT INTO ${q(os)}.log (xid, tbl, op, key, row, same) VALUES (txid_current() % 4294967296, ${lit(t)}, 'update', ${key('NEW')}, ${row('NEW')}, ${same});
        ELSE
          INSERT INTO ${q(os)}.log (xid, tbl, op, key, row) VALUES (txid_current() % 4294967296, ${lit(t)}, 'insert', ${key('NEW')}, ${row('NEW')});
        END IF;
        RETURN NULL;
      END $f$;
      CREATE TRIGGER oracle AFTER INSERT OR UPDATE OR DELETE ON ${q(schema)}.${q(t)}
        FOR EACH ROW EXECUTE FUNCTION ${fn}();`);
    oracle.tables[t] = { cols, pk, row: row('x'), key: key('x') };
  }
  return oracle;
}

/** The log, in statement order. */
export async function oracleLog(sql, oracle) {
  return (await sql(`SELECT seq, xid, tbl, op, key, row, same FROM ${q(oracle.os)}.log ORDER BY seq`))
    .map(([seq, xid, tbl, op, key, row, same]) => ({
      seq: Number(seq), xid: Number(xid), tbl, op, key, row: JSON.parse(row),
      same: same ? same.replace(/^\{|\}$/g, '').split(',').filter(Boolean).map((s) => s.replace(/^"|"$/g, '')) : [],
    }));
}

/** Every row of the watched tables now, rendered: Map "tbl key" → row. */
export async function oracleTableState(sql, oracle) {
  const state = new Map();
  for (const [t, d] of Object.entries(oracle.tables)) {
    for (const [key, row] of await sql(`SELECT ${d.key}, ${d.row} FROM ${q(oracle.schema)}.${q(t)} x`))
      state.set(`${t} ${key}`, JSON.parse(row));
  }
  return state;
}

const lsn = (p) => p.split('/').map((h) => BigInt(`0x${h}`)).reduce((a, b) => (a << 32n) + b);

/**
 * Check the records of a stream (streamRecords() output: all shards, each
 * in shard order) against the log and the final table state. Returns counts.
 */
export function checkStream(records, log, finalState, oracle) {
  const keyOf = (tbl, data) => `${tbl} ${JSON.stringify(oracle.tables[tbl].pk.map((c) => data[c.name]))}`;
  const seen = new Map();
  const lastPosByKey = new Map();
  const loads = [];
  const byXid = new Map();
  let duplicates = 0;
  for (const r of records) {
    const msg = JSON.parse(r.Data.toString('utf8'));
    const md = msg.metadata;
    assert.equal(md['schema-name'], oracle.schema, 'only the selected schema');
    assert.ok(oracle.tables[md['table-name']], `a watched table (${md['table-name']})`);
    const id = md['event-id'];
    assert.ok(id, 'every record carries an event id');
    if (seen.has(id)) {
      duplicates++;
      assert.deepEqual(msg, seen.get(id).msg, `re-sent ${id} carries the same record`);
      continue;
    }
    seen.set(id, { msg });
    if (md.operation === 'load') {
      loads.push(msg);
      continue;
    }
    assert.ok(['insert', 'update', 'delete'].includes(md.operation), `operation ${md.operation}`);
    assert.equal(id, `${md['stream-position']}:${md['transaction-record-id']}`, 'event id is commit position:ordinal');
    // Per partition key: commit order (positions never go back).
    const k = `${r.ShardId} ${r.PartitionKey}`;
    const pos = [lsn(md['stream-position']), md['transaction-record-id']];
    const prev = lastPosByKey.get(k);
    if (prev)
      assert.ok(pos[0] > prev[0] || (pos[0] === prev[0] && pos[1] > prev[1]),
        `key ${r.PartitionKey}: ${id} after ${prev.join(':')} (per-key order)`);
    lastPosByKey.set(k, pos);
    if (!byXid.has(md['transaction-id'])) byXid.set(md['transaction-id'], []);
    byXid.get(md['transaction-id']).push(msg);
  }

  // Each streamed transaction against the log.
  const logByXid = new Map();
  for (const a of log) {
    if (!logByXid.has(a.xid)) logByXid.set(a.xid, []);
    logByXid.get(a.xid).push(a);
  }
  const xacts = [];
  for (const [xid, got] of byXid) {
    const want = logByXid.get(Number(xid));
    assert.ok(want, `transaction ${xid} of the stream is in the log`);
    got.sort((a, b) => a.metadata['transaction-record-id'] - b.metadata['transaction-record-id']);
    assert.equal(got.length, want.length, `transaction ${xid}: ${want.length} changes, got ${got.length}`);
    got.forEach((m, i) => {
      const md = m.metadata;
      const w = want[i];
      const where = `transaction ${xid} change ${i + 1} (${w.op} ${w.tbl} ${w.key})`;
      assert.equal(md['transaction-record-id'], i + 1, `${where}: record ids 1..n`);
      assert.equal(md['transaction-last'] === true, i === got.length - 1, `${where}: only the last is flagged`);
      assert.equal(md.operation, w.op, `${where}: operation`);
      assert.equal(md['table-name'], w.tbl, `${where}: table`);
      assert.equal(keyOf(w.tbl, m.data), `${w.tbl} ${w.key}`, `${where}: key`);
      const unchanged = md['unchanged-columns'] || [];
      for (const [c, v] of Object.entries(w.row)) {
        if (c in m.data) {
          assert.deepEqual(m.data[c], v, `${where}: column ${c}`);
        } else if (w.op === 'update') {
          assert.ok(unchanged.includes(c), `${where}: column ${c} missing and not listed unchanged`);
          assert.ok(w.same.includes(c), `${where}: column ${c} listed unchanged but it changed`);
        } else if (w.op === 'insert') {
          assert.fail(`${where}: column ${c} missing from an insert`);
        }
      }
      for (const c of Object.keys(m.data)) assert.ok(c in w.row, `${where}: unknown column ${c}`);
    });
    xacts.push({ pos: lsn(got[0].metadata['stream-position']), xid: Number(xid), msgs: got });
  }

  // The load: the state after exactly the logged transactions not streamed.
  const pre = new Map();
  for (const a of log) {
    if (byXid.has(String(a.xid)) || byXid.has(a.xid)) continue;
    const k = `${a.tbl} ${a.key}`;
    if (a.op === 'delete') pre.delete(k);
    else pre.set(k, a.row);
  }
  const loaded = new Map();
  for (const m of loads) {
    const k = keyOf(m.metadata['table-name'], m.data);
    assert.ok(!loaded.has(k), `${k} loaded once`);
    loaded.set(k, m.data);
  }
  const diff = (a, b, what) => {
    const keys = new Set([...a.keys(), ...b.keys()]);
    const bad = [...keys].filter((k) => JSON.stringify(a.get(k)) !== JSON.stringify(b.get(k)));
    assert.equal(bad.length, 0, `${what}: ${bad.length} rows differ, e.g. ${bad.slice(0, 3).map((k) => `${k}: got ${JSON.stringify(a.get(k))?.slice(0, 200)} want ${JSON.stringify(b.get(k))?.slice(0, 200)}`).join('; ')}`);
  };
  // Load rows are compared whole (no unchanged columns in a load).
  const norm = (m) => new Map([...m].map(([k, v]) => [k, Object.fromEntries(Object.entries(v).sort())]));
  diff(norm(loaded), norm(pre), 'the full load is the snapshot\'s state');

  // Replay: load, then the changes in commit order, gives the final table.
  const state = new Map(loaded);
  xacts.sort((a, b) => (a.pos < b.pos ? -1 : a.pos > b.pos ? 1 : 0));
  for (const x of xacts) {
    for (const m of x.msgs) {
      const k = keyOf(m.metadata['table-name'], m.data);
      if (m.metadata.operation === 'delete') state.delete(k);
      else state.set(k, { ...(m.metadata.operation === 'update' ? state.get(k) : {}), ...m.data });
    }
  }
  diff(norm(state), norm(finalState), 'load + changes replayed = the table now');
  return { loads: loads.length, transactions: xacts.length, changes: xacts.reduce((n, x) => n + x.msgs.length, 0), duplicates };
}
