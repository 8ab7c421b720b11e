// Helpers for the dms_stream integration tests (node:test, ESM).
//
// The bed (PostgreSQL, s3rver, kinesalite, the two SigV4 proxies) is started by
// test/bed/start.sh; test/check.sh does that and exports test/bed/env.sh. When
// a test file is run by hand without that environment, env.sh is read here.
//
//   import { env, psql, psqlTry, aws, awsTry, proxy, ... } from '../lib/bed.mjs';
//
//   psql(sql, {db})            rows as arrays of strings (throws on error)
//   psqlTry(sql, {db})         {ok, rows, error}: error is psql's stderr text
//   aws(args, opts)            /usr/bin/aws with the bed env; parsed JSON (throws AwsError)
//   awsTry(args, opts)         {ok, status, json, stdout, stderr, code}: code = AWS error code
//   curl(args)                 {status: exit code, stdout, stderr}
//   proxy('s3'|'kinesis')      .url .setFaults(obj) .faults() .stats() .reset()
//                              .seq() .requests({since, path, op, stream}): the request journal
//   createBucket(name)         through the S3 proxy
//   createStream(name, shards) through the Kinesis proxy, waits until ACTIVE
//   readS3Object(bucket, key)  Buffer from s3rver's files (null if absent)
//   listS3Keys(bucket, prefix) keys stored by s3rver, sorted
//   kinesis(op, body, {endpoint})   one Kinesis JSON call, signed (default: kinesalite directly)
//   streamRecords(stream, {endpoint})  every record of every shard (TRIM_HORIZON)
//   signedFetch({...})         SigV4-signed fetch (node:crypto signer), with tampering knobs
//   signRequest({...})         the same, returning {url, init} to alter before fetch()
//   uniqueName(prefix), waitFor(fn, opts), sleep(ms)

import { spawn, execFileSync } from 'node:child_process';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The bed environment: process.env if env.sh was sourced, else env.sh read once. */
export const env = (() => {
  if (process.env.DMS_BED_DIR && process.env.S3_PROXY_URL) return { ...process.env };
  const out = execFileSync('bash', ['-c', 'source test/bed/env.sh && env -0'], { cwd: ROOT });
  const vars = {};
  for (const entry of out.toString().split('\0')) {
    const i = entry.indexOf('=');
    if (i > 0) vars[entry.slice(0, i)] = entry.slice(i + 1);
  }
  Object.assign(process.env, vars);
  return vars;
})();

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A name usable as bucket or stream name, unique for this run. */
export function uniqueName(prefix = 't') {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`.toLowerCase();
}

/** Poll fn() until it returns a truthy value; throws with `what` after timeoutMs. */
export async function waitFor(fn, { timeoutMs = 30000, intervalMs = 100, what = 'condition' } = {}) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (last: ${last})`);
    await sleep(intervalMs);
  }
}

/** Run a program; resolves {status, stdout, stderr} (never rejects on exit code). */
export function run(cmd, args, { input, env: extraEnv, timeoutMs = 120000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...env, ...extraEnv }, stdio: ['pipe', 'pipe', 'pipe'] });
    const out = [];
    const err = [];
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => err.push(d));
    child.on('error', reject);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({
        status: status ?? (signal ? 128 : 1),
        signal,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
      });
    });
    // A program that exits without reading its input (curl) closes the pipe
    // first: that EPIPE is not an error of the run.
    child.stdin.on('error', (e) => { if (e.code !== 'EPIPE') reject(e); });
    child.stdin.end(input ?? '');
  });
}

// ---------------------------------------------------------------- PostgreSQL

/** psql -X -At: resolves {ok, rows, error}; rows are arrays of column strings. */
export async function psqlTry(sql, { db = env.PGDATABASE || 'postgres', vars = {} } = {}) {
  const args = ['-X', '-At', '-v', 'ON_ERROR_STOP=1', '-F', '\x1f', '-d', db];
  for (const [k, v] of Object.entries(vars)) args.push('-v', `${k}=${v}`);
  const r = await run('psql', args, { input: sql });
  const rows = r.stdout === '' ? [] : r.stdout.replace(/\n$/, '').split('\n').map((l) => l.split('\x1f'));
  return { ok: r.status === 0, rows, error: r.status === 0 ? null : r.stderr.trim() };
}

/** psql, throwing with psql's error text on failure. */
export async function psql(sql, opts) {
  const r = await psqlTry(sql, opts);
  if (!r.ok) throw new Error(`psql failed: ${r.error}\n-- SQL:\n${sql}`);
  return r.rows;
}

// ---------------------------------------------------------------- aws CLI

export class AwsError extends Error {
  constructor(result, args) {
    super(`aws ${args.join(' ')} -> exit ${result.status}: ${result.stderr.trim()}`);
    Object.assign(this, result);
  }
}

/** The endpoint an aws command goes to: the proxy of its service unless given. */
function withEndpoint(args, endpoint) {
  if (args.includes('--endpoint-url')) return args;
  const url = endpoint ?? (args[0] === 'kinesis' ? env.KINESIS_PROXY_URL : env.S3_PROXY_URL);
  return ['--endpoint-url', url, ...args];
}

/**
 * Run /usr/bin/aws with the bed env; resolves {ok, status, json, stdout, stderr, code}.
 * opts.endpoint overrides the proxy URL; opts.env adds variables (e.g. a wrong
 * AWS_SECRET_ACCESS_KEY, AWS_MAX_ATTEMPTS=1). code is the AWS error code parsed
 * from "An error occurred (Code)".
 */
export async function awsTry(args, { endpoint, env: extraEnv } = {}) {
  const full = withEndpoint(args, endpoint);
  const r = await run(env.AWS || '/usr/bin/aws', full, { env: extraEnv });
  let json = null;
  if (r.stdout.trim()) {
    try {
      json = JSON.parse(r.stdout);
    } catch {
      json = null;
    }
  }
  const m = /An error occurred \(([^)]+)\)/.exec(r.stderr);
  return { ok: r.status === 0, status: r.status, json, stdout: r.stdout, stderr: r.stderr, code: m ? m[1] : null };
}

/** Like awsTry, but resolves the parsed JSON (or {} for no output) and throws AwsError on failure. */
export async function aws(args, opts) {
  const r = await awsTry(args, opts);
  if (!r.ok) throw new AwsError(r, args);
  return r.json ?? {};
}

export function curl(args, opts) {
  return run('curl', ['-sS', ...args], opts);
}

// ---------------------------------------------------------------- proxies

/** Admin client of the verifying proxy of `service` ('s3' or 'kinesis'). */
export function proxy(service) {
  const url = service === 's3' ? env.S3_PROXY_URL : env.KINESIS_PROXY_URL;
  const call = async (method, p, body) => {
    const res = await fetch(`${url}/__proxy/${p}`, {
      method,
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await res.json();
    if (!res.ok) throw new Error(`proxy ${service} ${method} ${p}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  return {
    url,
    setFaults: (faults) => call('POST', 'faults', faults),
    faults: () => call('GET', 'faults'),
    stats: () => call('GET', 'stats'),
    reset: () => call('POST', 'reset'),
    /** Sequence number of the last request the proxy saw (a mark for requests()). */
    seq: async () => (await call('GET', 'stats')).seq,
    /**
     * Journal entries (newest last) after `since`, filtered by regexes on
     * path, op (X-Amz-Target operation or HTTP method) and stream. Each entry:
     * {seq, time, method, path, op, stream, status, forwarded, rejected, faults[]}.
     */
    requests: async ({ since = 0, path, op, stream } = {}) => {
      const q = new URLSearchParams({ since: String(since) });
      if (path) q.set('path', path);
      if (op) q.set('op', op);
      if (stream) q.set('stream', stream);
      return (await call('GET', `requests?${q}`)).requests;
    },
  };
}

// ---------------------------------------------------------------- S3 (s3rver)

export async function createBucket(name) {
  await aws(['s3api', 'create-bucket', '--bucket', name]);
  return name;
}

function s3rverPath(bucket, key) {
  return path.join(env.S3RVER_DIR, bucket, `${key}._S3rver_object`);
}

/** The bytes s3rver stored for bucket/key, read from its files; null if absent. */
export function readS3Object(bucket, key) {
  try {
    return fs.readFileSync(s3rverPath(bucket, key));
  } catch (err) {
    if (err.code === 'ENOENT') return null;
    throw err;
  }
}

/** Keys s3rver holds in a bucket (optionally under a prefix), sorted. */
export function listS3Keys(bucket, prefix = '') {
  const base = path.join(env.S3RVER_DIR, bucket);
  const keys = [];
  const walk = (dir, rel) => {
    let entries;
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.isDirectory()) walk(path.join(dir, e.name), rel + e.name + '/');
      else if (e.name.endsWith('._S3rver_object')) keys.push(rel + e.name.slice(0, -'._S3rver_object'.length));
    }
  };
  walk(base, '');
  return keys.filter((k) => k.startsWith(prefix)).sort();
}

// ---------------------------------------------------------------- SigV4 + Kinesis

const sha256hex = (data) => createHash('sha256').update(data).digest('hex');
const hmac = (key, data) => createHmac('sha256', key).update(data).digest();
const rfc3986 = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());

/**
 * fetch() signed with SigV4 by a small node:crypto signer (a third
 * implementation next to botocore and the extension's). Knobs for negative
 * tests: sendBody (bytes sent instead of the signed body), date (a Date for
 * X-Amz-Date), region, scopeService, payloadHash (x-amz-content-sha256 value;
 * S3 defaults to the body's hash), accessKeyId/secretAccessKey/sessionToken.
 */
export async function signedFetch(opts) {
  const { url, init } = signRequest(opts);
  return fetch(url, init);
}

/** The signing half of signedFetch: returns {url, init} for fetch(url, init). */
export function signRequest({
  service, url, method = 'GET', headers = {}, body = '', sendBody,
  accessKeyId = env.AWS_ACCESS_KEY_ID, secretAccessKey = env.AWS_SECRET_ACCESS_KEY,
  sessionToken, region = 'us-east-1', scopeService = service, date = new Date(), payloadHash,
}) {
  const u = new URL(url);
  const amzDate = date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const day = amzDate.slice(0, 8);
  const bodyHash = sha256hex(body);
  const h = { host: u.host, 'x-amz-date': amzDate };
  if (sessionToken) h['x-amz-security-token'] = sessionToken;
  for (const [k, v] of Object.entries(headers)) h[k.toLowerCase()] = String(v);
  if (service === 's3' && !h['x-amz-content-sha256']) h['x-amz-content-sha256'] = payloadHash ?? bodyHash;
  const names = Object.keys(h).sort();
  // S3 signs the path as sent; other services encode it once more.
  const canonicalPath = service === 's3' ? u.pathname : u.pathname.split('/').map(rfc3986).join('/');
  const query = u.search.slice(1).split('&').filter(Boolean).map((p) => {
    const [k, v = ''] = p.split('=');
    return [rfc3986(decodeURIComponent(k)), rfc3986(decodeURIComponent(v))];
  }).sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : 1) : a[0] < b[0] ? -1 : 1)).map(([k, v]) => `${k}=${v}`).join('&');
  const canonical = [
    method, canonicalPath, query,
    names.map((n) => `${n}:${h[n].trim().replace(/\s+/g, ' ')}\n`).join(''),
    names.join(';'),
    h['x-amz-content-sha256'] ?? bodyHash,
  ].join('\n');
  const scope = `${day}/${region}/${scopeService}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256hex(canonical)].join('\n');
  let key = hmac('AWS4' + secretAccessKey, day);
  for (const part of [region, scopeService, 'aws4_request']) key = hmac(key, part);
  const signature = createHmac('sha256', key).update(toSign).digest('hex');
  const sendHeaders = { ...h };
  delete sendHeaders.host;
  sendHeaders.authorization =
    `AWS4-HMAC-SHA256 Credential=${accessKeyId}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`;
  const payload = sendBody ?? body;
  return { url: u, init: { method, headers: sendHeaders, body: method === 'GET' || method === 'HEAD' ? undefined : payload } };
}

/**
 * One Kinesis JSON API call. Goes to kinesalite directly unless
 * opts.endpoint is given (e.g. env.KINESIS_PROXY_URL). Resolves the parsed
 * response; throws an Error carrying .status and .type (__type) otherwise.
 */
export async function kinesis(op, body = {}, { endpoint = env.KINESALITE_URL, ...signOpts } = {}) {
  const res = await signedFetch({
    service: 'kinesis', url: endpoint + '/', method: 'POST', body: JSON.stringify(body),
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `Kinesis_20131202.${op}` },
    ...signOpts,
  });
  const text = await res.text();
  const json = text ? JSON.parse(text) : {};
  if (!res.ok) {
    const err = new Error(`Kinesis ${op}: ${res.status} ${text}`);
    err.status = res.status;
    err.type = json.__type;
    throw err;
  }
  return json;
}

/** Create a stream through the Kinesis proxy and wait until it is ACTIVE. */
export async function createStream(name, shards = 1) {
  await aws(['kinesis', 'create-stream', '--stream-name', name, '--shard-count', String(shards)]);
  await waitStreamActive(name);
  return name;
}

export async function waitStreamActive(name) {
  await waitFor(async () => {
    const d = await kinesis('DescribeStreamSummary', { StreamName: name });
    return d.StreamDescriptionSummary.StreamStatus === 'ACTIVE';
  }, { what: `stream ${name} ACTIVE` });
}

/**
 * Every record of every shard of a stream, from TRIM_HORIZON, read directly
 * from kinesalite by default. Records get Data decoded to a Buffer and ShardId.
 */
export async function streamRecords(stream, opts = {}) {
  const { Shards } = await kinesis('ListShards', { StreamName: stream }, opts);
  const all = [];
  for (const shard of Shards) {
    let { ShardIterator: it } = await kinesis('GetShardIterator', {
      StreamName: stream, ShardId: shard.ShardId, ShardIteratorType: 'TRIM_HORIZON',
    }, opts);
    for (let i = 0; it && i < 1000; i++) {
      const r = await kinesis('GetRecords', { ShardIterator: it, Limit: 10000 }, opts);
      for (const rec of r.Records) all.push({ ...rec, Data: Buffer.from(rec.Data, 'base64'), ShardId: shard.ShardId });
      if (r.Records.length === 0) break;
      it = r.NextShardIterator;
    }
  }
  return all;
}
