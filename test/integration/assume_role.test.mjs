// assume_role.test.mjs — ServiceAccessRoleArn: the endpoint's requests are
// signed with credentials of STS AssumeRole, called with the base
// credentials (here the endpoint's own keys, which the S3 and Kinesis proxies
// refuse: only the role's temporary credentials get through).  The fake STS
// (test/lib/fake_sts.mjs) sits behind the SigV4-verifying proxy with
// --service sts, so the AssumeRole call itself is checked by botocore.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  env, psql, psqlTry, createBucket, createStream, streamRecords, uniqueName, sleep, listS3Keys,
} from '../lib/bed.mjs';
import { startFakeSts } from '../lib/fake_sts.mjs';

const lit = (s) => (s === null || s === undefined ? 'NULL' : `'${String(s).replace(/'/g, "''")}'`);
const BASE_KEY = 'AKIDROLEBASE0001';
const BASE_SECRET = 'roleBaseSecret/000000000000000000000000';
const ROLE = 'arn:aws:iam::123456789012:role/dms-access';
const ROLE_NO_EXT = 'arn:aws:iam::123456789012:role/dms-plain';
const DENIED_ROLE = 'arn:aws:iam::123456789012:role/not-trusting';
const EXT = 'ext-id-0042';

let sts;
let bucket;
let stream;
const endpoints = [];

/** SQL run in one session, after pointing dms_stream at the fake STS. */
const session = (sql) => `\\set QUIET on\nSET dms_stream.sts_endpoint_url = ${lit(sts.url)};\n${sql}`;
const run = (sql) => psql(session(sql));
const runTry = (sql) => psqlTry(session(`\\set VERBOSITY verbose\n${sql}`));

async function endpoint(engine, settings, { url } = {}) {
  const name = uniqueName(`ar${engine.slice(0, 2)}`);
  endpoints.push(name);
  await psql(`SELECT dms_stream.create_endpoint(${lit(name)}, ${lit(engine)}, 'target', ${lit(JSON.stringify(settings))}, ${lit(url)});
    SELECT dms_stream.set_endpoint_credentials(${lit(name)}, ${lit(BASE_KEY)}, ${lit(BASE_SECRET)});`);
  return name;
}

const callsFor = (role) => sts.calls.filter((c) => c.role === role);

before(async () => {
  await psql('CREATE EXTENSION IF NOT EXISTS dms_stream;');
  sts = await startFakeSts({
    roles: { [ROLE]: EXT, [ROLE_NO_EXT]: null },
    baseKey: BASE_KEY,
    baseSecret: BASE_SECRET,
    logFile: path.join(env.DMS_BED_DIR, 'logs', `sts-proxy-${process.pid}.log`),
  });
  bucket = await createBucket(uniqueName('arole'));
  stream = await createStream(uniqueName('arole'), 1);
});

after(async () => {
  for (const e of endpoints) await psqlTry(`SELECT dms_stream.drop_endpoint(${lit(e)});`);
  if (sts) await sts.stop();
});

test('the base keys alone are refused by the S3 proxy (the role is what makes it work)', async () => {
  const ep = await endpoint('s3', { BucketName: bucket, DataFormat: 'parquet' }, { url: env.S3_PROXY_URL });
  const r = await psqlTry(`SELECT count(*) FROM dms_stream.s3_list_objects(${lit(ep)});`);
  assert.ok(!r.ok, 'listing with the base keys must fail');
  assert.match(r.error, /InvalidAccessKeyId|403/);
});

test('S3 endpoint with ServiceAccessRoleArn and ExternalId: put and list through the role, STS called once per session', async () => {
  const ep = await endpoint('s3', {
    BucketName: bucket, DataFormat: 'parquet', ServiceAccessRoleArn: ROLE,
    ServiceAccessRoleExternalId: EXT, ServiceAccessRoleSessionName: 'dms-test-session',
  }, { url: env.S3_PROXY_URL });
  const before = callsFor(ROLE).length;
  const rows = await run(`SELECT dms_stream.s3_put_object(${lit(ep)}, 'role/a.txt', 'hello'::bytea) IS NOT NULL;
    SELECT dms_stream.s3_put_object(${lit(ep)}, 'role/b.txt', 'world'::bytea) IS NOT NULL;
    SELECT string_agg(key, ',' ORDER BY key) FROM dms_stream.s3_list_objects(${lit(ep)}, 'role/');
    SELECT source, access_key_id, has_session_token, expires_at > now() + interval '50 minutes'
      FROM dms_stream.endpoint_credentials(${lit(ep)});`);
  assert.deepEqual(rows, [['t'], ['t'], ['role/a.txt,role/b.txt'],
    [`assume-role:${ROLE}`, env.DMS_BED_SESSION_ACCESS_KEY_ID, 't', 't']]);
  assert.deepEqual(listS3Keys(bucket, 'role/').sort(), ['role/a.txt', 'role/b.txt']);
  const calls = callsFor(ROLE).slice(before);
  assert.equal(calls.length, 1, `one AssumeRole for four calls in a session: ${JSON.stringify(calls)}`);
  assert.deepEqual(calls[0], {
    action: 'AssumeRole', role: ROLE, externalId: EXT, session: 'dms-test-session', duration: '3600', keyId: BASE_KEY,
  });
});

test('Kinesis endpoint with ServiceAccessRoleArn: put records through the role', async () => {
  const ep = await endpoint('kinesis', { StreamName: stream, ServiceAccessRoleArn: ROLE_NO_EXT,
    ServiceAccessRoleDurationSeconds: 900 }, { url: env.KINESIS_PROXY_URL });
  const before = callsFor(ROLE_NO_EXT).length;
  const rows = await run(`SELECT dms_stream.kinesis_put_records(${lit(ep)}, ARRAY['k1','k2'], ARRAY['one','two'])->>'acked_through';
    SELECT dms_stream.kinesis_put_records(${lit(ep)}, ARRAY['k3'], ARRAY['three'])->>'acked_through';
    SELECT source FROM dms_stream.endpoint_credentials(${lit(ep)});`);
  assert.deepEqual(rows, [['2'], ['1'], [`assume-role:${ROLE_NO_EXT}`]]);
  const recs = await streamRecords(stream);
  assert.deepEqual(recs.map((r) => r.Data.toString()).sort(), ['one', 'three', 'two']);
  const calls = callsFor(ROLE_NO_EXT).slice(before);
  assert.equal(calls.length, 1);
  assert.equal(calls[0].externalId, null);
  assert.equal(calls[0].session, 'dms_stream');
  assert.equal(calls[0].duration, '900');
});

test('short-lived role credentials are refreshed before they expire', async () => {
  const ep = await endpoint('s3', { BucketName: bucket, DataFormat: 'parquet', ServiceAccessRoleArn: ROLE,
    ServiceAccessRoleExternalId: EXT, ServiceAccessRoleSessionName: 'refresh-test' }, { url: env.S3_PROXY_URL });
  sts.expiresIn = () => 4; // cached for half their life: 2 s
  try {
    const before = sts.calls.filter((c) => c.session === 'refresh-test').length;
    const rows = await run(`SELECT count(*) FROM dms_stream.s3_list_objects(${lit(ep)}, 'role/');
      SELECT pg_sleep(3.5);
      SELECT count(*) FROM dms_stream.s3_list_objects(${lit(ep)}, 'role/');`);
    assert.deepEqual(rows, [['2'], [''], ['2']]);
    const calls = sts.calls.filter((c) => c.session === 'refresh-test').slice(before);
    assert.equal(calls.length, 2, 'a second AssumeRole after the first credentials neared expiry');
  } finally {
    sts.expiresIn = () => 3600;
  }
});

test('a wrong ExternalId and a role that does not trust the base credentials: clear errors', async () => {
  const wrong = await endpoint('s3', { BucketName: bucket, DataFormat: 'parquet', ServiceAccessRoleArn: ROLE,
    ServiceAccessRoleExternalId: 'not-the-id' }, { url: env.S3_PROXY_URL });
  const r1 = await runTry(`SELECT count(*) FROM dms_stream.s3_list_objects(${lit(wrong)});`);
  assert.ok(!r1.ok);
  assert.match(r1.error, new RegExp(`could not assume role ${ROLE.replace(/[/.]/g, '\\$&')} for endpoint "${wrong}"`));
  assert.match(r1.error, /DETAIL: {2}STS AssumeRole at .* answered HTTP 403 AccessDenied: .*not authorized to perform: sts:AssumeRole/);
  assert.match(r1.error, /HINT: {2}The role's trust policy must allow .*sts:AssumeRole.*ServiceAccessRoleExternalId/);
  assert.match(r1.error, new RegExp(`access key id ${BASE_KEY}`));

  const denied = await endpoint('kinesis', { StreamName: stream, ServiceAccessRoleArn: DENIED_ROLE },
    { url: env.KINESIS_PROXY_URL });
  const r2 = await runTry(`SELECT * FROM dms_stream.endpoint_credentials(${lit(denied)});`);
  assert.ok(!r2.ok);
  assert.match(r2.error, /could not assume role arn:aws:iam::123456789012:role\/not-trusting/);
  assert.match(r2.error, /AccessDenied/);
  assert.ok(!r2.error.includes(BASE_SECRET), 'no secret in the message');
  // test_endpoint: the credentials row fails with the role and what to fix
  const te = await run(`SELECT step, ok, detail FROM dms_stream.test_endpoint(${lit(denied)});`);
  assert.equal(te.length, 1, JSON.stringify(te));
  assert.deepEqual(te[0].slice(0, 2), ['credentials', 'f']);
  assert.match(te[0][2], /could not assume role .*not-trusting.*AccessDenied.*trust policy must allow .*sts:AssumeRole/);
});

test('AssumeRole signed with keys the STS proxy does not know is refused by the proxy (signature checked)', async () => {
  const ep = uniqueName('arbad');
  endpoints.push(ep);
  await psql(`SELECT dms_stream.create_endpoint(${lit(ep)}, 's3', 'target', ${lit(JSON.stringify({ BucketName: bucket, DataFormat: 'parquet', ServiceAccessRoleArn: ROLE, ServiceAccessRoleExternalId: EXT }))}, ${lit(env.S3_PROXY_URL)});
    SELECT dms_stream.set_endpoint_credentials(${lit(ep)}, ${lit(BASE_KEY)}, 'a-wrong-secret');`);
  const before = sts.calls.length;
  const r = await runTry(`SELECT count(*) FROM dms_stream.s3_list_objects(${lit(ep)});`);
  assert.ok(!r.ok);
  assert.match(r.error, /SignatureDoesNotMatch/);
  assert.equal(sts.calls.length, before, 'the fake STS never saw the badly signed call');
});

test('role settings are validated', async () => {
  const bad = async (settings, re) => {
    const r = await psqlTry(`SELECT dms_stream.create_endpoint(${lit(uniqueName('arv'))}, 's3', 'target', ${lit(JSON.stringify({ BucketName: bucket, DataFormat: 'parquet', ...settings }))});`);
    assert.ok(!r.ok, JSON.stringify(settings));
    assert.match(r.error, re);
  };
  await bad({ ServiceAccessRoleArn: 'dms-access' }, /is not an IAM role ARN/);
  await bad({ ServiceAccessRoleExternalId: 'abc' }, /ServiceAccessRoleArn/);
  await bad({ ServiceAccessRoleArn: ROLE, ServiceAccessRoleExternalId: 'a b' }, /Invalid external id/);
  await bad({ ServiceAccessRoleArn: ROLE, ServiceAccessRoleSessionName: 'x' }, /Invalid role session name/);
  await bad({ ServiceAccessRoleArn: ROLE, ServiceAccessRoleDurationSeconds: 60 }, /ServiceAccessRoleDurationSeconds/);
  // no longer listed as without effect
  const rows = await psql(`SELECT count(*) FROM dms_stream.endpoint
    WHERE endpoint_name = ANY(ARRAY[${endpoints.map(lit).join(',')}]::text[])`);
  assert.ok(Number(rows[0][0]) > 0);
});

test('test_endpoint names the call that was denied and the permission it needs', async () => {
  const { proxy } = await import('../lib/bed.mjs');
  const s3p = proxy('s3');
  const kp = proxy('kinesis');
  const steps = async (name) => (await psql(`SELECT step, ok, detail FROM dms_stream.test_endpoint(${lit(name)})`))
    .map(([step, ok, detail]) => ({ step, ok: ok === 't', detail }));
  const s3Denied = { status: 403, content_type: 'application/xml',
    body: '<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>' };
  const ep = uniqueName('arte');
  endpoints.push(ep);
  await psql(`SELECT dms_stream.create_endpoint(${lit(ep)}, 's3', 'target', ${lit(JSON.stringify({ BucketName: bucket, BucketFolder: 'out', DataFormat: 'parquet' }))}, ${lit(env.S3_PROXY_URL)});
    SELECT dms_stream.set_endpoint_credentials(${lit(ep)}, 'S3RVER', 'S3RVER');`);
  try {
    await s3p.setFaults({ answer: s3Denied, match: { method: '^PUT$', path: `^/${bucket}/` } });
    let s = await steps(ep);
    assert.equal(s[2].ok, false, JSON.stringify(s));
    assert.match(s[2].detail, new RegExp(`^Denied: PutObject needs s3:PutObject on arn:aws:s3:::${bucket}/out/\\*\\.`));

    await s3p.setFaults({ answer: s3Denied, match: { method: '^DELETE$', path: `^/${bucket}/` } });
    s = await steps(ep);
    assert.match(s[2].detail, /^Denied: DeleteObject needs s3:DeleteObject on /, JSON.stringify(s));

    await s3p.setFaults({ answer: s3Denied, match: { method: '^GET$', path: `^/${bucket}` } });
    s = await steps(ep);
    assert.equal(s[1].ok, false);
    assert.match(s[1].detail, new RegExp(`^Denied: ListObjectsV2 needs s3:ListBucket on arn:aws:s3:::${bucket}\\.`));
  } finally {
    await s3p.setFaults({});
  }

  const kep = uniqueName('artk');
  endpoints.push(kep);
  await psql(`SELECT dms_stream.create_endpoint(${lit(kep)}, 'kinesis', 'target', ${lit(JSON.stringify({ StreamName: stream }))}, ${lit(env.KINESIS_PROXY_URL)});
    SELECT dms_stream.set_endpoint_credentials(${lit(kep)}, ${lit(env.AWS_ACCESS_KEY_ID)}, ${lit(env.AWS_SECRET_ACCESS_KEY)});`);
  try {
    await kp.setFaults({ answer: { status: 400, content_type: 'application/x-amz-json-1.1',
      body: JSON.stringify({ __type: 'AccessDeniedException', message: 'User is not authorized to perform: kinesis:DescribeStreamSummary' }) },
    match: { target: 'DescribeStreamSummary', stream: `^${stream}$` } });
    const s = await steps(kep);
    assert.equal(s[1].ok, false, JSON.stringify(s));
    assert.match(s[1].detail, new RegExp(`^Denied: DescribeStreamSummary needs kinesis:DescribeStreamSummary on stream ${stream} `));
  } finally {
    await kp.setFaults({});
  }
});
