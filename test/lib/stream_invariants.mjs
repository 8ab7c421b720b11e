// Invariants of a Kinesis stream that dms_stream wrote, checked on the records
// read back (every shard, each shard in sequence order, e.g. streamRecords of
// bed.mjs, or a test's own {key, text} / {key, msg} mapping of them):
//
//   * per partition key, order: the first copy of each event appears after
//     the first copies of every event of the key that comes before it;
//   * duplicates only as repeats: a record seen again carries the same event
//     id, partition key and content (copies sent again after a lost answer,
//     a retry or a restart); a repeat may come anywhere after the first copy;
//   * with `expected` (the input's event ids, in input order): nothing lost,
//     nothing else, and the order is the input's.
//
// Without `expected`, the order of two events of a key comes from their DMS
// event ids (README "Messages"), where it is known:
//   CDC from PostgreSQL   "<commit LSN>:<record id>[.<control n>]"  LSN, then id, then n
//   full load (postgres)  "<snapshot LSN>:load:<table oid>:<row>"  row, within one table
//   S3 source             "<16 hex: hash of the file key>:<line>"  line, within one file
// Events of different groups (tables of a load, files) are not compared.
//
//   checkStream(records, opts)   -> report {records, distinct, duplicates, keys, missing,
//                                   unexpected, noId, outOfOrder, badRepeats, ok}
//   assertStreamInvariants(records, opts) -> the report; throws an AssertionError with
//                                   the first problems of each kind when one is found
//   compareEventIds(a, b)        sort comparator: the order of the changes (records of
//                                   different keys may be stored in another order)
// opts: expected (ids in input order), idOf(rec) (default: metadata.event-id of
// the DMS message), orderOf(id) -> {group, rank: BigInt[]} (default above),
// contentOf(rec) (default: data, before image, operation, record type, schema
// and table: what must not differ between copies), what (a label for messages).

import assert from 'node:assert/strict';

/** The record's partition key, data text and parsed message (cached). */
function view(rec) {
  if (rec.__view) return rec.__view;
  const key = rec.PartitionKey ?? rec.key;
  let text = null;
  if (rec.Data !== undefined) text = Buffer.isBuffer(rec.Data) ? rec.Data.toString('utf8') : String(rec.Data);
  else if (rec.text !== undefined) text = rec.text;
  let msg = rec.msg;
  if (msg === undefined) {
    try {
      msg = JSON.parse(text);
    } catch {
      msg = null;
    }
  }
  const v = { key, text: text ?? JSON.stringify(msg), msg };
  Object.defineProperty(rec, '__view', { value: v, enumerable: false });
  return v;
}

/** The DMS event id of a record (metadata.event-id), or undefined. */
export function dmsEventId(rec) {
  const m = view(rec).msg;
  return m && m.metadata ? m.metadata['event-id'] : undefined;
}

const LSN = /^([0-9A-F]+)\/([0-9A-F]+)$/i;
const NUM = /^-?\d+(\.\d+)?$/;

/** Order of a DMS event id: {group, rank} (ranks compare within a group), or null. */
export function dmsEventOrder(id) {
  if (typeof id !== 'string') return null;
  const parts = id.split(':');
  const last = parts[parts.length - 1];
  if (parts.length < 2 || !NUM.test(last)) return null;
  const [whole, frac] = last.split('.');
  const tail = [BigInt(whole), BigInt(frac ?? 0)];
  const lsn = parts.length === 2 ? LSN.exec(parts[0]) : null;
  if (lsn) return { group: 'cdc', rank: [(BigInt(`0x${lsn[1]}`) << 32n) + BigInt(`0x${lsn[2]}`), ...tail] };
  return { group: parts.slice(0, -1).join(':'), rank: tail };
}

/** What must be equal between two copies of one event (the timestamp may differ). */
export function dmsContent(rec) {
  const { msg, text } = view(rec);
  if (!msg || typeof msg !== 'object' || !msg.metadata) return text;
  const md = msg.metadata;
  const rest = { ...msg };
  delete rest.metadata;
  return JSON.stringify([rest, md['record-type'], md.operation, md['schema-name'], md['table-name'],
    md['partition-key-type'], md['partition-key-value']]);
}

/** Compare two DMS event ids in the order of the changes (ids of one group; others by text). */
export function compareEventIds(a, b) {
  const x = dmsEventOrder(a);
  const y = dmsEventOrder(b);
  if (!x || !y || x.group !== y.group) return a < b ? -1 : a > b ? 1 : 0;
  return cmpRank(x.rank, y.rank);
}

function cmpRank(a, b) {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i] ?? -1n;
    const y = b[i] ?? -1n;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/** Check the invariants; returns the report (see the header). */
export function checkStream(records, {
  expected, idOf = dmsEventId, orderOf = dmsEventOrder, contentOf = dmsContent,
} = {}) {
  const position = expected ? new Map(expected.map((id, i) => [String(id), i])) : null;
  const first = new Map();           // id -> {key, content}
  const lastByKeyGroup = new Map();  // key \0 group -> {id, rank}
  const keys = new Set();
  const report = {
    records: records.length, distinct: 0, duplicates: 0, keys: 0,
    missing: [], unexpected: [], noId: [], outOfOrder: [], badRepeats: [], ok: true,
  };
  for (let i = 0; i < records.length; i++) {
    const rec = records[i];
    const { key } = view(rec);
    const raw = idOf(rec);
    if (raw === undefined || raw === null) {
      report.noId.push({ index: i, key });
      continue;
    }
    const id = String(raw);
    keys.add(key);
    const content = contentOf(rec);
    const seen = first.get(id);
    if (seen) {
      report.duplicates++;
      if (seen.key !== key || seen.content !== content) {
        report.badRepeats.push({ index: i, id, key, firstKey: seen.key,
          why: seen.key !== key ? 'another partition key' : 'another content' });
      }
      continue;
    }
    first.set(id, { key, content });
    let order;
    if (position) {
      if (!position.has(id)) {
        report.unexpected.push({ index: i, id, key });
        continue;
      }
      order = { group: '', rank: [BigInt(position.get(id))] };
    } else {
      order = orderOf(id);
      if (!order) continue;
    }
    const slot = `${key}\0${order.group}`;
    const prev = lastByKeyGroup.get(slot);
    if (prev && cmpRank(order.rank, prev.rank) < 0) {
      report.outOfOrder.push({ index: i, key, id, after: prev.id });
      continue;                      // keep the newest as the mark
    }
    lastByKeyGroup.set(slot, { id, rank: order.rank });
  }
  report.distinct = first.size;
  report.keys = keys.size;
  if (expected) for (const id of expected) if (!first.has(String(id))) report.missing.push(String(id));
  report.ok = !report.missing.length && !report.unexpected.length && !report.noId.length
    && !report.outOfOrder.length && !report.badRepeats.length;
  return report;
}

/** checkStream, failing with the first problems of each kind. */
export function assertStreamInvariants(records, opts = {}) {
  const r = checkStream(records, opts);
  if (!r.ok) {
    const few = (xs) => `${xs.length}${xs.length ? ': ' + JSON.stringify(xs.slice(0, 5)) : ''}`;
    assert.fail(`${opts.what ?? 'stream'}: ${r.records} records, ${r.distinct} events on ${r.keys} keys; `
      + `out of key order ${few(r.outOfOrder)}; missing ${few(r.missing)}; unexpected ${few(r.unexpected)}; `
      + `without event id ${few(r.noId)}; repeats that differ ${few(r.badRepeats)}`);
  }
  return r;
}
