// The S3 client (src/s3.c) through its SQL utilities (sql/install/40_s3.sql),
// against s3rver behind the test bed's SigV4-verifying fault proxy, with the
// AWS CLI (/usr/bin/aws) as the independent reader and writer.
//
// Covered: odd keys, byte-exact round trips, byte ranges, ListObjectsV2
// pagination and start_after, BucketFolder, multipart uploads (25 MB in
// 5 MiB parts), the streaming reader's bounded memory on a 64 MiB object
// (VmHWM of the backend), abort of multipart uploads on failure (an UploadPart
// failing beyond the retries, a statement timeout, a failing subtransaction),
// retries under SlowDown, an object replaced while it is read, the headers
// sent (ExpectedBucketOwner, SSE, ACL, If-Match: seen by a recording relay in
// front of the proxy), virtual-hosted addressing (a private s3rver serving
// BUCKET.s3.localhost), a wrong secret, and privileges.
//
// s3rver does not implement AbortMultipartUpload (405 MethodNotAllowed): the
// tests check that the DELETE ?uploadId= request was sent, in the proxy's
// journal.  Faults are global to the proxy, so each is scoped with `match` to
// this file's keys and cleared after each test.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  env, aws, awsTry, psql, psqlTry, proxy, createBucket, signedFetch, uniqueName, waitFor, sleep,
} from '../lib/bed.mjs';

const s3p = proxy('s3');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 's3-test-'));
const MiB = 1024 * 1024;
const sha = (b) => createHash('sha256').update(b).digest('hex');
const lit = (s) => (s === null || s === undefined ? 'NULL' : `'${String(s).replace(/'/g, "''")}'`);
const hexLit = (buf) => `decode('${buf.toString('hex')}', 'hex')`;
const reEscape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const PRE = '\\set QUIET on\n\\set VERBOSITY verbose\nSET client_min_messages = warning;\n';

let bucket;
let ep; // endpoint without BucketFolder
let epFolder; // same bucket, BucketFolder "base/dir/"
const endpoints = [];
const roles = [];
const children = [];
const servers = [];

async function sql(q) {
  return psql(PRE + q);
}

async function sqlError(q) {
  const r = await psqlTry(PRE + q);
  assert.ok(!r.ok, `expected an error, got ${JSON.stringify(r.rows)}`);
  return r.error;
}

async function createEndpoint(settings, { url = env.S3_PROXY_URL, style = 'auto', key = 'S3RVER', secret = 'S3RVER' } = {}) {
  const name = uniqueName('s3t');
  await sql(`SELECT dms_stream.create_endpoint(${lit(name)}, 's3', 'target', ${lit(JSON.stringify(settings))}::jsonb,
               ${lit(url)}, NULL, ${lit(style)});
             SELECT dms_stream.set_endpoint_credentials(${lit(name)}, ${lit(key)}, ${lit(secret)});`);
  endpoints.push(name);
  return name;
}

/** Journal entries of this file's requests on `key` (path regex) since mark. */
async function journal(mark, keyPath, bkt = bucket) {
  return s3p.requests({ since: mark, path: `^/${reEscape(bkt)}/${reEscape(keyPath)}(\\?|$)` });
}

function cliPath(key) {
  return path.join(tmp, key.replace(/[^A-Za-z0-9._-]/g, '_'));
}

/** Object bytes read back with the AWS CLI. */
async function cliGet(key, bkt = bucket, endpoint) {
  const out = cliPath(`get-${randomBytes(4).toString('hex')}`);
  await aws(['s3api', 'get-object', '--bucket', bkt, '--key', key, out], { endpoint });
  const data = fs.readFileSync(out);
  fs.rmSync(out);
  return data;
}

async function cliPut(key, data, bkt = bucket, endpoint) {
  const file = cliPath(`put-${randomBytes(4).toString('hex')}`);
  fs.writeFileSync(file, data);
  const r = await aws(['s3api', 'put-object', '--bucket', bkt, '--key', key, '--body', file], { endpoint });
  fs.rmSync(file);
  return r;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => { const p = srv.address().port; srv.close(() => resolve(p)); });
  });
}

function waitPort(port) {
  return waitFor(() => new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  }), { what: `port ${port}`, timeoutMs: 20000 });
}

/** VmHWM and VmRSS (kB) of the backend running the SQL around `q`, in one session. */
async function backendMemory(warmup, q) {
  const mem = (tag) => `SELECT '${tag}', (regexp_match(s, 'VmHWM:\\s+(\\d+)'))[1], (regexp_match(s, 'VmRSS:\\s+(\\d+)'))[1]
                          FROM pg_read_file('/proc/self/status') s;`;
  const rows = await sql(`${warmup}\n${mem('before')}\n${q}\n${mem('after')}`);
  const get = (tag) => rows.find((r) => r[0] === tag);
  const before = get('before');
  const afterRow = get('after');
  return {
    rows,
    hwmBeforeKb: Number(before[1]),
    hwmAfterKb: Number(afterRow[1]),
    rssAfterKb: Number(afterRow[2]),
  };
}

before(async () => {
  const r = await psqlTry(`SET client_min_messages = warning;
    DO $$ BEGIN
      IF to_regproc('dms_stream.create_endpoint') IS NULL THEN CREATE EXTENSION dms_stream; END IF;
    END $$;`);
  assert.ok(r.ok, r.error);
  bucket = await createBucket(uniqueName('s3t'));
  ep = await createEndpoint({ BucketName: bucket });
  epFolder = await createEndpoint({ BucketName: bucket, BucketFolder: 'base/dir/' });
});

afterEach(async () => {
  await s3p.setFaults({});
});

after(async () => {
  await s3p.setFaults({}).catch(() => {});
  for (const s of servers) s.close();
  for (const c of children) c.kill('SIGTERM');
  for (const role of roles) await psqlTry(`DROP ROLE IF EXISTS ${role}`);
  for (const name of endpoints) await psqlTry(`SELECT dms_stream.drop_endpoint(${lit(name)})`);
  if (bucket) await awsTry(['s3', 'rb', `s3://${bucket}`, '--force']);
  fs.rmSync(tmp, { recursive: true, force: true });
});

// ------------------------------------------------------------------ objects

const ODD_KEYS = [
  'odd/a b.txt',
  'odd/plus+sign.txt',
  'odd/eq=amp&and.txt',
  'odd/pct%41%2F.txt',
  'odd/ünïcødé/日本語 €.txt',
  'odd/tilde~star*(paren)!.txt',
  "odd/dollar$at@colon:comma,semi;quote'.txt",
  // not 'a//b': s3rver cannot store keys with empty path segments (the CLI gets 404 too)
];

test('odd keys: put and get are byte-exact both ways, checked with the AWS CLI', async () => {
  const all = Buffer.from([...Array(256).keys()]);
  const mine = new Map(ODD_KEYS.map((k) => [k, Buffer.concat([all, randomBytes(1000), Buffer.from(k)])]));
  const etags = await sql([...mine].map(([k, d]) =>
    `SELECT dms_stream.s3_put_object(${lit(ep)}, ${lit(k)}, ${hexLit(d)});`).join('\n'));
  assert.deepEqual(etags.map((r) => r[0]), [...mine.values()].map((d) => createHash('md5').update(d).digest('hex')));
  const down = fs.mkdtempSync(path.join(tmp, 'odd-down-'));
  await aws(['s3', 'cp', '--only-show-errors', '--recursive', `s3://${bucket}/odd/`, down]);
  for (const [k, d] of mine) {
    assert.ok(fs.readFileSync(path.join(down, k.slice('odd/'.length))).equals(d), `the CLI reads what the extension wrote: ${k}`);
  }

  const up = fs.mkdtempSync(path.join(tmp, 'odd-up-'));
  const theirs = new Map(ODD_KEYS.map((k) => [k, randomBytes(3000)]));
  for (const [k, d] of theirs) {
    fs.mkdirSync(path.dirname(path.join(up, k.slice('odd/'.length))), { recursive: true });
    fs.writeFileSync(path.join(up, k.slice('odd/'.length)), d);
  }
  await aws(['s3', 'cp', '--only-show-errors', '--recursive', up, `s3://${bucket}/odd/`]);
  const got = await sql([...theirs.keys()].map((k) =>
    `SELECT encode(dms_stream.s3_get_object(${lit(ep)}, ${lit(k)}), 'hex');`).join('\n'));
  assert.deepEqual(got.map((r) => r[0]), [...theirs.values()].map((d) => d.toString('hex')),
    'the extension reads what the CLI wrote');
  const listed = (await sql(`SELECT key FROM dms_stream.s3_list_objects(${lit(ep)}, 'odd/')`)).map((r) => r[0]);
  const cli = (await aws(['s3api', 'list-objects-v2', '--bucket', bucket, '--prefix', 'odd/'])).Contents.map((c) => c.Key);
  assert.deepEqual(listed, cli);
  assert.deepEqual([...listed].sort(), [...ODD_KEYS].sort());

  // empty object, and a content type
  await sql(`SELECT dms_stream.s3_put_object(${lit(ep)}, 'odd/empty', ''::bytea, 'text/csv')`);
  assert.equal((await cliGet('odd/empty')).length, 0);
  const head = await aws(['s3api', 'head-object', '--bucket', bucket, '--key', 'odd/empty']);
  assert.equal(head.ContentType, 'text/csv');
  const [[size, ctype]] = await sql(`SELECT size, content_type FROM dms_stream.s3_head_object(${lit(ep)}, 'odd/empty')`);
  assert.deepEqual([size, ctype], ['0', 'text/csv']);
  const [[bytes, digest, requests]] = await sql(`SELECT * FROM dms_stream.s3_object_checksum(${lit(ep)}, 'odd/empty')`);
  assert.deepEqual([bytes, digest, requests], ['0', sha(Buffer.alloc(0)), '0']);
});

test('s3_get_object byte ranges are inclusive and exact', async () => {
  const data = randomBytes(1000);
  await cliPut('ranges/r.bin', data);
  const get = async (s, e) => {
    const [[hex]] = await sql(`SELECT encode(dms_stream.s3_get_object(${lit(ep)}, 'ranges/r.bin', ${s ?? 'NULL'}, ${e ?? 'NULL'}), 'hex')`);
    return Buffer.from(hex, 'hex');
  };
  assert.ok((await get(null, null)).equals(data));
  assert.ok((await get(0, 0)).equals(data.subarray(0, 1)));
  assert.ok((await get(10, 19)).equals(data.subarray(10, 20)));
  assert.ok((await get(990, null)).equals(data.subarray(990)));
  assert.ok((await get(null, 9)).equals(data.subarray(0, 10)));
  assert.ok((await get(500, 5000)).equals(data.subarray(500)));
  const err = await sqlError(`SELECT dms_stream.s3_get_object(${lit(ep)}, 'ranges/r.bin', 1000, NULL)`);
  assert.match(err, /S3 GetObject of s3:\/\/[^/]+\/ranges\/r\.bin \(endpoint "[^"]+"\) failed: InvalidRange/);
  assert.match(await sqlError(`SELECT dms_stream.s3_get_object(${lit(ep)}, 'ranges/r.bin', 9, 3)`),
    /invalid byte range 9-3/);
  assert.match(await sqlError(`SELECT dms_stream.s3_get_object(${lit(ep)}, 'ranges/r.bin', -1, 3)`),
    /must not be negative/);
});

test('missing keys: NoSuchKey names the operation, bucket, key and endpoint; head gives no row; delete is quiet', async () => {
  const err = await sqlError(`SELECT dms_stream.s3_get_object(${lit(ep)}, 'nope/missing.txt')`);
  assert.match(err, new RegExp(`ERROR:  42704: S3 GetObject of s3://${bucket}/nope/missing\\.txt \\(endpoint "${ep}"\\) failed: NoSuchKey`));
  assert.match(err, /DETAIL: .*GET http:\/\/127\.0\.0\.1:\d+\/.*answered HTTP status 404, AWS error NoSuchKey/);
  assert.deepEqual(await sql(`SELECT * FROM dms_stream.s3_head_object(${lit(ep)}, 'nope/missing.txt')`), []);
  await sql(`SELECT dms_stream.s3_delete_object(${lit(ep)}, 'nope/missing.txt')`);
  assert.match(await sqlError(`SELECT * FROM dms_stream.s3_object_checksum(${lit(ep)}, 'nope/missing.txt')`),
    /S3 HeadObject of s3:\/\/.*nope\/missing\.txt .* failed: NoSuchKey/);

  // delete removes what is there
  await cliPut('nope/there.txt', Buffer.from('x'));
  await sql(`SELECT dms_stream.s3_delete_object(${lit(ep)}, 'nope/there.txt')`);
  assert.equal((await awsTry(['s3api', 'head-object', '--bucket', bucket, '--key', 'nope/there.txt'])).ok, false);

  // not an S3 endpoint
  const kin = uniqueName('s3t');
  await sql(`SELECT dms_stream.create_endpoint(${lit(kin)}, 'kinesis', 'target', '{"StreamName": "s"}')`);
  endpoints.push(kin);
  assert.match(await sqlError(`SELECT * FROM dms_stream.s3_list_objects(${lit(kin)})`),
    new RegExp(`endpoint "${kin}" is not an S3 endpoint`));
});

// ------------------------------------------------------------------ listing

test('listing follows continuation tokens, honours max_keys and start_after (compared with the CLI)', async () => {
  const keys = Array.from({ length: 25 }, (_, i) => `page/k${String(i).padStart(2, '0')}`);
  const dir = fs.mkdtempSync(path.join(tmp, 'page-'));
  for (const k of keys) fs.writeFileSync(path.join(dir, k.slice('page/'.length)), k);
  await aws(['s3', 'cp', '--only-show-errors', '--recursive', dir, `s3://${bucket}/page/`]);

  let mark = await s3p.seq();
  const rows = await sql(`SELECT key, size, etag, last_modified IS NOT NULL FROM dms_stream.s3_list_objects(${lit(ep)}, 'page/', page_size => 10)`);
  assert.deepEqual(rows.map((r) => r[0]), keys);
  for (const r of rows) {
    assert.equal(r[1], String(r[0].length));
    assert.equal(r[2], createHash('md5').update(r[0]).digest('hex'));
    assert.equal(r[3], 't');
  }
  let lists = await s3p.requests({ since: mark, path: `^/${bucket}\\?` });
  assert.equal(lists.length, 3, 'three ListObjectsV2 pages of 10, 10 and 5');
  assert.match(lists[0].path, /list-type=2/);
  assert.match(lists[0].path, /max-keys=10/);
  assert.doesNotMatch(lists[0].path, /continuation-token/);
  assert.match(lists[1].path, /continuation-token=/);
  assert.match(lists[2].path, /continuation-token=/);

  mark = await s3p.seq();
  const limited = await sql(`SELECT key FROM dms_stream.s3_list_objects(${lit(ep)}, 'page/', max_keys => 7, page_size => 5)`);
  assert.deepEqual(limited.map((r) => r[0]), keys.slice(0, 7));
  lists = await s3p.requests({ since: mark, path: `^/${bucket}\\?` });
  assert.equal(lists.length, 2);
  assert.match(lists[1].path, /max-keys=2/);

  const after = await sql(`SELECT key FROM dms_stream.s3_list_objects(${lit(ep)}, 'page/', start_after => 'page/k12', page_size => 4)`);
  const cli = await aws(['s3api', 'list-objects-v2', '--bucket', bucket, '--prefix', 'page/', '--start-after', 'page/k12']);
  assert.deepEqual(after.map((r) => r[0]), cli.Contents.map((c) => c.Key));
  assert.deepEqual(after.map((r) => r[0]), keys.slice(13));

  assert.deepEqual(await sql(`SELECT key FROM dms_stream.s3_list_objects(${lit(ep)}, 'page/', max_keys => 0)`), []);
  assert.deepEqual(await sql(`SELECT key FROM dms_stream.s3_list_objects(${lit(ep)}, 'no-such-prefix/')`), []);
  assert.match(await sqlError(`SELECT * FROM dms_stream.s3_list_objects(${lit(ep)}, page_size => 1001)`),
    /page_size must be between 1 and 1000/);
});

test('BucketFolder is prepended to keys and prefixes, and stripped from listed keys', async () => {
  await sql(`SELECT dms_stream.s3_put_object(${lit(epFolder)}, 'f1.txt', 'one'::bytea)`);
  assert.equal((await cliGet('base/dir/f1.txt')).toString(), 'one');
  await cliPut('base/dir/sub/f2.txt', Buffer.from('two'));
  await cliPut('base/dirx/outside.txt', Buffer.from('no'));
  await cliPut('base/other.txt', Buffer.from('no'));

  const all = await sql(`SELECT key, size FROM dms_stream.s3_list_objects(${lit(epFolder)})`);
  assert.deepEqual(all, [['f1.txt', '3'], ['sub/f2.txt', '3']]);
  assert.deepEqual(await sql(`SELECT key FROM dms_stream.s3_list_objects(${lit(epFolder)}, 'sub/')`), [['sub/f2.txt']]);
  assert.deepEqual(await sql(`SELECT key FROM dms_stream.s3_list_objects(${lit(epFolder)}, '', 'f1.txt')`), [['sub/f2.txt']]);
  const [[two]] = await sql(`SELECT convert_from(dms_stream.s3_get_object(${lit(epFolder)}, 'sub/f2.txt'), 'UTF8')`);
  assert.equal(two, 'two');
  // without a folder the same objects have their full keys
  const full = await sql(`SELECT key FROM dms_stream.s3_list_objects(${lit(ep)}, 'base/')`);
  assert.deepEqual(full.map((r) => r[0]), ['base/dir/f1.txt', 'base/dir/sub/f2.txt', 'base/dirx/outside.txt', 'base/other.txt']);
  await sql(`SELECT dms_stream.s3_delete_object(${lit(epFolder)}, 'f1.txt')`);
  assert.equal((await awsTry(['s3api', 'head-object', '--bucket', bucket, '--key', 'base/dir/f1.txt'])).ok, false);
});

// ------------------------------------------------------------------ multipart and streaming

test('multipart upload of 25 MB in 5 MiB parts, checked with the AWS CLI', async (t) => {
  const size = 25 * MiB + 12345;
  const mark = await s3p.seq();
  const t0 = Date.now();
  const [[bytes, parts, digest, etag]] = await sql(
    `SELECT * FROM dms_stream.s3_put_generated_object(${lit(ep)}, 'mp/25mb.bin', ${size}, 5242880, 42)`);
  const ms = Date.now() - t0;
  t.diagnostic(`25 MB multipart upload: ${ms} ms`);
  assert.equal(Number(bytes), size);
  assert.equal(Number(parts), 6);
  const data = await cliGet('mp/25mb.bin');
  assert.equal(data.length, size);
  assert.equal(sha(data), digest, 'the CLI reads the bytes the writer hashed');
  const head = await aws(['s3api', 'head-object', '--bucket', bucket, '--key', 'mp/25mb.bin']);
  assert.equal(head.ETag.replace(/"/g, ''), etag);

  // the extension's requests (the CLI's GET and HEAD came after them)
  const reqs = (await journal(mark, 'mp/25mb.bin')).filter((r) => r.method === 'POST' || r.method === 'PUT');
  const ops = reqs.map((r) => `${r.method} ${r.path.replace(/^[^?]*/, '').replace(/uploadId=[^&]+/, 'uploadId=ID')}`);
  assert.equal(ops.filter((o) => o === 'POST ?uploads').length, 1);
  assert.deepEqual(ops.filter((o) => o.startsWith('PUT ?partNumber=')).sort(),
    [1, 2, 3, 4, 5, 6].map((n) => `PUT ?partNumber=${n}&uploadId=ID`).sort());
  assert.equal(ops.filter((o) => o === 'POST ?uploadId=ID').length, 1);
  assert.equal(ops.at(-1), 'POST ?uploadId=ID', 'CompleteMultipartUpload comes last');

  // the same generator and seed give the same bytes; fewer than a part is one PutObject
  const [[, parts2, digest2]] = await sql(
    `SELECT * FROM dms_stream.s3_put_generated_object(${lit(ep)}, 'mp/again.bin', ${size}, 5242880, 42)`);
  assert.equal(digest2, digest);
  assert.equal(parts2, '6');
  const mark2 = await s3p.seq();
  const [[, one]] = await sql(`SELECT * FROM dms_stream.s3_put_generated_object(${lit(ep)}, 'mp/small.bin', 5242880)`);
  assert.equal(one, '1');
  // the proxy journals a request once its answer is sent: wait for the entry
  const small = await waitFor(async () => {
    const j = await journal(mark2, 'mp/small.bin');
    return j.length ? j : null;
  }, { what: 'the journal entry of mp/small.bin' });
  assert.deepEqual(small.map((r) => r.method), ['PUT']);
  assert.match(await sqlError(`SELECT * FROM dms_stream.s3_put_generated_object(${lit(ep)}, 'mp/x.bin', 10, 1048576)`),
    /part size 1048576 is out of range/);
});

test('the streaming reader reads a 64 MiB object with bounded backend memory; the copy goes through the multipart writer', async (t) => {
  const size = 64 * MiB + 777;
  const data = randomBytes(size);
  const file = cliPath('big64.bin');
  fs.writeFileSync(file, data);
  await aws(['s3', 'cp', '--only-show-errors', file, `s3://${bucket}/stream/big64.bin`]);
  fs.rmSync(file);
  await cliPut('stream/warm.bin', randomBytes(3 * MiB));

  const warm = `SELECT * FROM dms_stream.s3_object_checksum(${lit(ep)}, 'stream/warm.bin', 1048576);`;
  const read = await backendMemory(warm,
    `SELECT 'sum', bytes, sha256, requests FROM dms_stream.s3_object_checksum(${lit(ep)}, 'stream/big64.bin', 1048576);`);
  const sum = read.rows.find((r) => r[0] === 'sum');
  assert.equal(Number(sum[1]), size);
  assert.equal(sum[2], sha(data));
  assert.equal(Number(sum[3]), 65, 'one ranged GET per MiB');
  const readGrowthMiB = (read.hwmAfterKb - read.hwmBeforeKb) / 1024;
  t.diagnostic(`64 MiB read in 1 MiB chunks: backend VmHWM +${readGrowthMiB.toFixed(1)} MiB ` +
    `(${(read.hwmBeforeKb / 1024).toFixed(1)} -> ${(read.hwmAfterKb / 1024).toFixed(1)} MiB)`);
  assert.ok(readGrowthMiB < 16, `peak memory grew by ${readGrowthMiB} MiB reading 64 MiB`);

  const mark = await s3p.seq();
  const copy = await backendMemory(warm,
    `SELECT 'copy', * FROM dms_stream.s3_copy_object_streamed(${lit(ep)}, 'stream/big64.bin', 'copied/big64.bin',
       5242880, 1048576, ${lit(epFolder)});`);
  const row = copy.rows.find((r) => r[0] === 'copy');
  assert.equal(Number(row[1]), size);
  assert.equal(Number(row[2]), 13, '12 parts of 5 MiB and the rest');
  assert.equal(row[3], sha(data));
  const copyGrowthMiB = (copy.hwmAfterKb - copy.hwmBeforeKb) / 1024;
  t.diagnostic(`64 MiB streamed copy (5 MiB parts, 4 in flight): backend VmHWM +${copyGrowthMiB.toFixed(1)} MiB`);
  assert.ok(copyGrowthMiB < 40, `peak memory grew by ${copyGrowthMiB} MiB copying 64 MiB`);
  assert.equal(sha(await cliGet('base/dir/copied/big64.bin')), sha(data), 'the copy landed under the target BucketFolder');
  const gets = (await journal(mark, 'stream/big64.bin')).filter((r) => r.method === 'GET');
  assert.equal(gets.length, 65);
});

test('an object replaced while it is read is an error, not a mix of two versions', async () => {
  const key = 'change/obj.bin';
  const size = 2 * MiB;
  await cliPut(key, randomBytes(size));
  await s3p.setFaults({ delay_ms: 2000, match: { method: '^GET$', path: `^/${bucket}/${reEscape(key)}$` } });
  const mark = await s3p.seq();
  const reading = psqlTry(`${PRE}SELECT * FROM dms_stream.s3_object_checksum(${lit(ep)}, ${lit(key)}, 262144)`);
  // after the first two ranges, overwrite it (directly on s3rver: no delay) with as many other bytes
  await waitFor(async () => (await journal(mark, key)).some((r) => r.method === 'GET' && r.status === 206),
    { what: 'first ranged GET', timeoutMs: 20000 });
  const res = await signedFetch({ service: 's3', method: 'PUT', url: `${env.S3RVER_URL}/${bucket}/${key}`, body: randomBytes(size) });
  assert.equal(res.status, 200);
  const r = await reading;
  assert.ok(!r.ok, 'the read must fail');
  assert.match(r.error, new RegExp(`S3 object s3://${bucket}/change/obj\\.bin \\(endpoint "${ep}"\\) changed while it was being read`));
  assert.match(r.error, /DETAIL: .*Reading began with ETag "[0-9a-f]+" and size 2097152; at byte \d+ the object had ETag "[0-9a-f]+"/);
});

// ------------------------------------------------------------------ failures

test('an UploadPart failing beyond the retries fails clearly and aborts the multipart upload', async () => {
  const key = 'fail/part2.bin';
  await s3p.setFaults({ http_fail_rate: 1.0, fail_status: 500,
    match: { method: '^PUT$', path: `^/${bucket}/${reEscape(key)}\\?partNumber=2&` } });
  const mark = await s3p.seq();
  const err = await sqlError(`SET dms_stream.http_max_retries = 1;
    SELECT * FROM dms_stream.s3_put_generated_object(${lit(ep)}, ${lit(key)}, 12000000)`);
  assert.match(err, new RegExp(`S3 UploadPart \\(part 2\\) of s3://${bucket}/fail/part2\\.bin \\(endpoint "${ep}"\\) failed: InternalError`));
  assert.match(err, /DETAIL: .*PUT http:\/\/.*partNumber=2&uploadId=.* answered HTTP status 500, AWS error InternalError: .*request id \w+; 2 attempts/);
  // s3rver answers AbortMultipartUpload with 405: the extension says so
  assert.match(err, /WARNING: .*could not abort the S3 multipart upload of s3:\/\/.*fail\/part2\.bin/);

  // The proxy journals a request once it has answered it, which can be just
  // after psql returned: wait for the abort to show up (or give up).
  let reqs = [];
  await waitFor(async () => {
    reqs = await journal(mark, key);
    return reqs.some((r) => r.method === 'DELETE');
  }, { timeoutMs: 10000, what: 'AbortMultipartUpload in the proxy journal' }).catch(() => {});
  const create = reqs.find((r) => r.method === 'POST' && /\?uploads$/.test(r.path));
  assert.ok(create, 'CreateMultipartUpload was sent');
  const uploadId = reqs.find((r) => /uploadId=/.test(r.path)).path.match(/uploadId=([^&]+)/)[1];
  const failed = reqs.filter((r) => /partNumber=2&/.test(r.path));
  assert.equal(failed.length, 2, 'the part was tried twice');
  assert.ok(failed.every((r) => r.faults.includes('http_fail')));
  const abort = reqs.filter((r) => r.method === 'DELETE');
  assert.equal(abort.length, 1, 'AbortMultipartUpload was sent');
  assert.equal(abort[0].path, `/${bucket}/${key}?uploadId=${uploadId}`);
  assert.ok(abort[0].seq > Math.max(...failed.map((r) => r.seq)));
  assert.ok(!reqs.some((r) => r.method === 'POST' && /\?uploadId=/.test(r.path)), 'never completed');
  assert.equal((await awsTry(['s3api', 'head-object', '--bucket', bucket, '--key', key])).ok, false);
});

test('an ERROR raised elsewhere (statement timeout) aborts the upload when the transaction aborts', async () => {
  const key = 'fail/timeout.bin';
  await s3p.setFaults({ delay_ms: 4000, match: { method: '^PUT$', path: `^/${bucket}/${reEscape(key)}\\?partNumber=` } });
  const mark = await s3p.seq();
  const err = await sqlError(`SET statement_timeout = '1500ms';
    SELECT * FROM dms_stream.s3_put_generated_object(${lit(ep)}, ${lit(key)}, 12000000)`);
  assert.match(err, /canceling statement due to statement timeout/);
  const abort = await waitFor(async () => (await journal(mark, key)).find((r) => r.method === 'DELETE'),
    { what: 'AbortMultipartUpload', timeoutMs: 20000 });
  assert.match(abort.path, /\?uploadId=.+/);
  const reqs = await journal(mark, key);
  assert.ok(!reqs.some((r) => r.method === 'POST' && /\?uploadId=/.test(r.path)), 'never completed');
});

test('a failing subtransaction aborts its upload, and the transaction goes on', async () => {
  const key = 'fail/subxact.bin';
  await s3p.setFaults({ delay_ms: 4000, match: { method: '^PUT$', path: `^/${bucket}/${reEscape(key)}\\?partNumber=` } });
  const mark = await s3p.seq();
  const rows = await sql(`BEGIN;
    SET LOCAL statement_timeout = '1500ms';
    DO $$
    BEGIN
      BEGIN
        PERFORM * FROM dms_stream.s3_put_generated_object(${lit(ep)}, ${lit(key)}, 12000000);
      EXCEPTION WHEN query_canceled THEN
        RAISE NOTICE 'caught';
      END;
    END $$;
    SET LOCAL statement_timeout = 0;
    SELECT 'after', parts FROM dms_stream.s3_put_generated_object(${lit(ep)}, 'fail/after-subxact.bin', 100);
    COMMIT;`);
  assert.deepEqual(rows.find((r) => r[0] === 'after'), ['after', '1']);
  const reqs = await journal(mark, key);
  const abort = reqs.filter((r) => r.method === 'DELETE');
  assert.equal(abort.length, 1, 'AbortMultipartUpload sent when the subtransaction aborted');
  const afterPut = (await journal(mark, 'fail/after-subxact.bin'))[0];
  assert.ok(abort[0].seq < afterPut.seq, 'before the rest of the transaction ran');
  assert.equal((await cliGet('fail/after-subxact.bin')).length, 100);
});

test('retries under injected 503 SlowDown succeed, for parts and for ranged GETs', async () => {
  const key = 'slow/down.bin';
  await s3p.setFaults({ throttle_rate: 1.0, count: 4, match: { method: '^PUT$', path: `^/${bucket}/${reEscape(key)}\\?partNumber=` } });
  const mark = await s3p.seq();
  const [[bytes, parts, digest]] = await sql(`SELECT * FROM dms_stream.s3_put_generated_object(${lit(ep)}, ${lit(key)}, 12000000, 5242880, 7)`);
  assert.equal(bytes, '12000000');
  assert.equal(parts, '3');
  // The proxy journals a request once it has answered it: wait for the last one.
  let reqs = [];
  await waitFor(async () => {
    reqs = await journal(mark, key);
    return reqs.filter((r) => r.faults.includes('throttle')).length >= 4;
  }, { timeoutMs: 10000, what: 'the throttled parts in the proxy journal' }).catch(() => {});
  // The proxy injected up to 4 throttles (its journal has been seen to miss one
  // under load); what matters is that throttled parts were retried to success.
  const throttledParts = reqs.filter((r) => r.faults.includes('throttle')).length;
  assert.ok(throttledParts >= 1 && throttledParts <= 4, `throttled parts: ${throttledParts}`);
  assert.equal(reqs.filter((r) => r.faults.includes('throttle')).every((r) => r.status === 503), true);
  assert.equal(sha(await cliGet(key)), digest);

  await s3p.setFaults({ throttle_rate: 1.0, count: 3, match: { method: '^GET$', path: `^/${bucket}/${reEscape(key)}$` } });
  const mark2 = await s3p.seq();
  const [[, digest2, requests]] = await sql(`SELECT * FROM dms_stream.s3_object_checksum(${lit(ep)}, ${lit(key)}, 4000000)`);
  assert.equal(digest2, digest);
  assert.equal(requests, '3');
  let throttled = 0;
  await waitFor(async () => {
    throttled = (await journal(mark2, key)).filter((r) => r.faults.includes('throttle')).length;
    return throttled >= 3;
  }, { timeoutMs: 10000, what: 'the throttled GETs in the proxy journal' }).catch(() => {});
  assert.ok(throttled >= 1 && throttled <= 3, `throttled GETs: ${throttled}`);
});

test('a wrong secret gives SignatureDoesNotMatch, naming the endpoint', async () => {
  const bad = await createEndpoint({ BucketName: bucket }, { secret: 'not-the-secret' });
  const err = await sqlError(`SELECT * FROM dms_stream.s3_list_objects(${lit(bad)})`);
  assert.match(err, new RegExp(`ERROR:  28000: S3 ListObjectsV2 of s3://${bucket}/ \\(endpoint "${bad}"\\) failed: SignatureDoesNotMatch`));
  assert.match(err, /DETAIL: .*answered HTTP status 403, AWS error SignatureDoesNotMatch: The request signature we calculated/);
  assert.match(err, /HINT: .*secret access key/);
  const err2 = await sqlError(`SELECT dms_stream.s3_put_object(${lit(bad)}, 'x.txt', 'x'::bytea)`);
  assert.match(err2, new RegExp(`S3 PutObject of s3://${bucket}/x\\.txt \\(endpoint "${bad}"\\) failed: SignatureDoesNotMatch`));
});

// ------------------------------------------------------------------ headers

test('ExpectedBucketOwner, SSE, canned ACL and If-Match headers are sent and signed', async () => {
  // a relay in front of the proxy records what the extension sends
  const seen = [];
  const relay = http.createServer((req, res) => {
    seen.push({ method: req.method, url: req.url, headers: { ...req.headers } });
    const up = http.request({
      host: '127.0.0.1', port: new URL(env.S3_PROXY_URL).port, method: req.method, path: req.url, headers: req.headers,
    }, (ur) => { res.writeHead(ur.statusCode, ur.headers); ur.pipe(res); });
    up.on('error', (e) => { res.writeHead(502); res.end(String(e)); });
    req.pipe(up);
  });
  servers.push(relay);
  await new Promise((r) => relay.listen(0, '127.0.0.1', r));
  const relayUrl = `http://127.0.0.1:${relay.address().port}`;
  const kmsKey = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
  const hep = await createEndpoint({
    BucketName: bucket, BucketFolder: 'hdr', ExpectedBucketOwner: '111122223333', EncryptionMode: 'sse-kms',
    ServerSideEncryptionKmsKeyId: kmsKey, CannedAclForObjects: 'bucket-owner-full-control',
  }, { url: relayUrl });

  await sql(`SELECT dms_stream.s3_put_object(${lit(hep)}, 'one.txt', 'hello'::bytea)`);
  await sql(`SELECT * FROM dms_stream.s3_put_generated_object(${lit(hep)}, 'multi.bin', 11000000)`);
  await sql(`SELECT * FROM dms_stream.s3_object_checksum(${lit(hep)}, 'multi.bin', 4000000)`);
  await sql(`SELECT * FROM dms_stream.s3_list_objects(${lit(hep)})`);
  await sql(`SELECT dms_stream.s3_get_object(${lit(hep)}, 'one.txt')`);
  await sql(`SELECT dms_stream.s3_delete_object(${lit(hep)}, 'one.txt')`);

  assert.ok(seen.length >= 12);
  for (const r of seen) {
    assert.equal(r.headers['x-amz-expected-bucket-owner'], '111122223333', `${r.method} ${r.url}`);
    assert.match(r.headers.authorization, /SignedHeaders=[^,]*x-amz-expected-bucket-owner/);
  }
  const creating = seen.filter((r) => (r.method === 'PUT' && !r.url.includes('partNumber=')) ||
    (r.method === 'POST' && r.url.endsWith('?uploads')));
  assert.equal(creating.length, 2, 'PutObject and CreateMultipartUpload');
  for (const r of creating) {
    assert.equal(r.headers['x-amz-server-side-encryption'], 'aws:kms');
    assert.equal(r.headers['x-amz-server-side-encryption-aws-kms-key-id'], kmsKey);
    assert.equal(r.headers['x-amz-acl'], 'bucket-owner-full-control');
    assert.match(r.headers.authorization, /x-amz-acl;.*x-amz-server-side-encryption;x-amz-server-side-encryption-aws-kms-key-id/);
  }
  const parts = seen.filter((r) => r.url.includes('partNumber='));
  assert.equal(parts.length, 3);
  for (const r of parts) assert.equal(r.headers['x-amz-server-side-encryption'], undefined, 'not on UploadPart');
  const [head] = seen.filter((r) => r.method === 'HEAD');
  const ranged = seen.filter((r) => r.method === 'GET' && r.headers.range);
  assert.deepEqual(ranged.map((r) => r.headers.range), ['bytes=0-3999999', 'bytes=4000000-7999999', 'bytes=8000000-10999999']);
  for (const r of ranged) assert.match(r.headers['if-match'], /^"[0-9a-f]{32}"$/);
  assert.ok(head);

  // sse-s3 is AES256
  await sql(`SELECT dms_stream.alter_endpoint(${lit(hep)}, '{"EncryptionMode": "SSE_S3", "ServerSideEncryptionKmsKeyId": null, "CannedAclForObjects": "none"}')`);
  seen.length = 0;
  await sql(`SELECT dms_stream.s3_put_object(${lit(hep)}, 'two.txt', 'hello'::bytea)`);
  assert.equal(seen[0].headers['x-amz-server-side-encryption'], 'AES256');
  assert.equal(seen[0].headers['x-amz-acl'], undefined);
  assert.equal((await cliGet('hdr/two.txt')).toString(), 'hello');
});

// ------------------------------------------------------------------ addressing

test('virtual-hosted addressing: BUCKET.s3.localhost through a verifying proxy', async () => {
  // s3rver serves virtual hosts of its --service-endpoint: a private one for *.s3.localhost
  const s3port = await freePort();
  const pxport = await freePort();
  const dir = fs.mkdtempSync(path.join(tmp, 'vh-'));
  const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
  const s3rver = spawn('node', ['--openssl-legacy-provider', path.join(root, 'node_modules/s3rver/bin/s3rver.js'),
    '-d', dir, '-a', '127.0.0.1', '-p', String(s3port), '--service-endpoint', 'localhost', '--silent'], { stdio: 'ignore' });
  children.push(s3rver);
  const px = spawn(env.DMS_BED_PYTHON || '/usr/bin/python3', ['-u', path.join(root, 'test/proxy/sigv4_proxy.py'),
    '--service', 's3', '--listen', `127.0.0.1:${pxport}`, '--upstream', `http://127.0.0.1:${s3port}`,
    '--upstream-access-key', 'S3RVER', '--log', path.join(tmp, 'vh-proxy.log')], { stdio: 'ignore' });
  children.push(px);
  await waitPort(s3port);
  await waitPort(pxport);
  const direct = `http://127.0.0.1:${pxport}`;
  const vb = uniqueName('vh');
  await aws(['s3api', 'create-bucket', '--bucket', vb], { endpoint: direct });

  const vep = await createEndpoint({ BucketName: vb }, { url: `http://s3.localhost:${pxport}`, style: 'virtual' });
  const key = 'v dir/odd+key=&ü.txt';
  const data = randomBytes(5000);
  await sql(`SELECT dms_stream.s3_put_object(${lit(vep)}, ${lit(key)}, ${hexLit(data)})`);
  assert.ok((await cliGet(key, vb, direct)).equals(data), 'the CLI (path style) finds it in the bucket');
  const [[bytes, parts, digest]] = await sql(`SELECT * FROM dms_stream.s3_put_generated_object(${lit(vep)}, 'big.bin', 11000000)`);
  assert.equal([bytes, parts].join(), '11000000,3');
  assert.equal(sha(await cliGet('big.bin', vb, direct)), digest);
  const [[, digest2]] = await sql(`SELECT * FROM dms_stream.s3_object_checksum(${lit(vep)}, 'big.bin', 4000000)`);
  assert.equal(digest2, digest);
  const listed = await sql(`SELECT key FROM dms_stream.s3_list_objects(${lit(vep)})`);
  assert.deepEqual(listed.map((r) => r[0]), ['big.bin', key]);
  const [[hex]] = await sql(`SELECT encode(dms_stream.s3_get_object(${lit(vep)}, ${lit(key)}, 1, 3), 'hex')`);
  assert.equal(hex, data.subarray(1, 4).toString('hex'));

  // the proxy verified every request: nothing rejected, and the bucket was never in a path
  const jr = await (await fetch(`${direct}/__proxy/requests?since=0`)).json();
  const mine = jr.requests.filter((r) => r.method !== 'PUT' || r.path !== `/${vb}`);
  assert.ok(mine.length > 8);
  assert.ok(mine.every((r) => r.rejected === null), JSON.stringify(mine.filter((r) => r.rejected)));
  const fromExtension = mine.filter((r) => !r.path.startsWith(`/${vb}`));
  assert.ok(fromExtension.some((r) => r.path.startsWith('/v%20dir/odd%2Bkey%3D%26%C3%BC.txt')));
  assert.ok(fromExtension.some((r) => r.path.startsWith('/?') && /list-type=2/.test(r.path)));

  // the same server with auto addressing on a custom URL uses path style
  const pep = await createEndpoint({ BucketName: vb }, { url: direct });
  const mark = (await (await fetch(`${direct}/__proxy/stats`)).json()).seq;
  assert.deepEqual(await sql(`SELECT key FROM dms_stream.s3_list_objects(${lit(pep)}, 'big')`), [['big.bin']]);
  const jr2 = await (await fetch(`${direct}/__proxy/requests?since=${mark}`)).json();
  assert.match(jr2.requests[0].path, new RegExp(`^/${vb}\\?`));
});

test('addressing on AWS and custom endpoints (s3_object_url: no request made)', async () => {
  const mk = async (settings, url, region, style) => {
    const name = uniqueName('s3t');
    await sql(`SELECT dms_stream.create_endpoint(${lit(name)}, 's3', 'target', ${lit(JSON.stringify(settings))}::jsonb,
                 ${lit(url)}, ${lit(region)}, ${lit(style)})`);
    endpoints.push(name);
    return name;
  };
  const url = async (name, key) => (await sql(`SELECT dms_stream.s3_object_url(${lit(name)}, ${key ? lit(key) : 'NULL'})`))[0][0];
  const a1 = await mk({ BucketName: 'my-bucket', BucketFolder: '/a/b/' }, null, 'eu-west-1', 'auto');
  assert.equal(await url(a1, 'k ü+.csv'), 'https://my-bucket.s3.eu-west-1.amazonaws.com/a/b/k%20%C3%BC%2B.csv');
  assert.equal(await url(a1), 'https://my-bucket.s3.eu-west-1.amazonaws.com/');
  const a2 = await mk({ BucketName: 'my.dotted.bucket' }, null, 'eu-west-1', 'auto');
  assert.equal(await url(a2, 'k'), 'https://s3.eu-west-1.amazonaws.com/my.dotted.bucket/k', 'dotted names: path style');
  const a3 = await mk({ BucketName: 'my-bucket' }, null, 'cn-north-1', 'path');
  assert.equal(await url(a3, 'k'), 'https://s3.cn-north-1.amazonaws.com.cn/my-bucket/k');
  const a4 = await mk({ BucketName: 'my-bucket' }, 'https://minio.example:9000/', null, 'virtual');
  assert.equal(await url(a4, 'x/y'), 'https://my-bucket.minio.example:9000/x/y');
  const a5 = await mk({ BucketName: 'my-bucket' }, 'https://minio.example:9000', null, 'auto');
  assert.equal(await url(a5, 'x/y'), 'https://minio.example:9000/my-bucket/x/y', 'auto on a custom URL: path style');
  assert.equal(await url(a5), 'https://minio.example:9000/my-bucket');
});

// ------------------------------------------------------------------ privileges

test('only dms_stream_admin may call the S3 utilities', async () => {
  const role = `s3t_user_${randomBytes(3).toString('hex')}`;
  roles.push(role);
  await sql(`CREATE ROLE ${role}`);
  const calls = [
    `SELECT * FROM dms_stream.s3_list_objects(${lit(ep)})`,
    `SELECT * FROM dms_stream.s3_head_object(${lit(ep)}, 'k')`,
    `SELECT dms_stream.s3_get_object(${lit(ep)}, 'k')`,
    `SELECT dms_stream.s3_put_object(${lit(ep)}, 'k', 'x'::bytea)`,
    `SELECT dms_stream.s3_delete_object(${lit(ep)}, 'k')`,
    `SELECT * FROM dms_stream.s3_object_checksum(${lit(ep)}, 'k')`,
    `SELECT * FROM dms_stream.s3_copy_object_streamed(${lit(ep)}, 'k', 'k2')`,
    `SELECT * FROM dms_stream.s3_put_generated_object(${lit(ep)}, 'k', 1)`,
    `SELECT dms_stream.s3_object_url(${lit(ep)}, 'k')`,
  ];
  for (const c of calls) {
    const err = await sqlError(`SET ROLE ${role}; ${c}`);
    assert.match(err, /42501: permission denied for function s3_/, c);
  }
  await sql(`GRANT dms_stream_admin TO ${role}`);
  await sql(`SET ROLE ${role}; SELECT dms_stream.s3_put_object(${lit(ep)}, 'priv/by-admin.txt', 'x'::bytea)`);
  const rows = await sql(`SET ROLE ${role}; SELECT key FROM dms_stream.s3_list_objects(${lit(ep)}, 'priv/')`);
  assert.deepEqual(rows, [['priv/by-admin.txt']]);
  await sql(`REVOKE dms_stream_admin FROM ${role}`);
});
