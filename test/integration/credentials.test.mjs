// credentials.test.mjs — every source of the AWS credential chain, in order.
//
// Runs a throwaway cluster (shared_preload_libraries = dms_stream) restarted
// with a different server environment per case, and local fakes of STS
// (AssumeRoleWithWebIdentity), the ECS container endpoint and EC2 IMDSv2
// served on 127.0.0.1 by this test.  dms_stream.endpoint_credentials() says
// which source signed; the fakes count the requests they served, which
// shows caching and refresh before expiry.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync, spawn } from 'node:child_process';
import { mkdtempSync, chmodSync, rmSync, writeFileSync, readFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:http';

const PGBIN = process.env.PGBIN || '/usr/lib/postgresql/15/bin';
let dir, data, port, fake, fakeUrl;
const served = { sts: [], ecs: [], imdsToken: 0, imdsCreds: 0 };
let ecsExpiry = () => new Date(Date.now() + 3600e3).toISOString();

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => { const p = srv.address().port; srv.close(() => resolve(p)); });
  });
}

// Start (or restart) the cluster with exactly this environment.
function startWith(envVars, conf = '') {
  spawnSync('runuser', ['-u', 'postgres', '--', `${PGBIN}/pg_ctl`, '-D', data, '-m', 'fast', '-w', 'stop'], { encoding: 'utf8' });
  writeFileSync(join(data, 'dms_test.conf'), conf);
  const envArgs = Object.entries({ PATH: '/usr/bin:/bin', HOME: '/nonexistent', ...envVars }).map(([k, v]) => `${k}=${v}`);
  execFileSync('runuser', ['-u', 'postgres', '--', 'env', '-i', ...envArgs, `${PGBIN}/pg_ctl`, '-D', data,
    '-l', join(dir, 'log'), '-w', 'start'], { encoding: 'utf8' });
}

// psql without blocking the event loop: the fakes below answer from this process.
function psql(sql) {
  return new Promise((resolve) => {
    const p = spawn('psql', ['-X', '-At', '-F', '|', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres',
      '-d', 'postgres', '-v', 'ON_ERROR_STOP=1', '-c', sql]);
    let out = '', err = '';
    p.stdout.on('data', (c) => { out += c; });
    p.stderr.on('data', (c) => { err += c; });
    p.on('close', (code) => resolve({ ok: code === 0, out: out.trim(), err }));
  });
}

const creds = async (sql = "SELECT * FROM dms_stream.endpoint_credentials('kin')") => {
  const r = await psql(sql);
  assert.ok(r.ok, r.err);
  return r.out.split('\n').map((l) => l.split('|'));
};

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dms-creds-'));
  chmodSync(dir, 0o777);
  data = join(dir, 'data');
  port = await freePort();
  execFileSync('runuser', ['-u', 'postgres', '--', `${PGBIN}/initdb`, '-D', data, '-U', 'postgres',
    '--auth=trust', '-E', 'UTF8', '--locale=C.UTF-8'], { encoding: 'utf8' });
  appendFileSync(join(data, 'postgresql.conf'), `port = ${port}\nlisten_addresses = '127.0.0.1'\n` +
    `unix_socket_directories = '${dir}'\nshared_preload_libraries = 'dms_stream'\ninclude = 'dms_test.conf'\n`);
  writeFileSync(join(dir, 'token'), 'eyJ.web.identity.token\n');
  writeFileSync(join(dir, 'ecs-auth'), 'Bearer file-token\n');
  chmodSync(join(dir, 'token'), 0o644);
  chmodSync(join(dir, 'ecs-auth'), 0o644);

  // One fake for STS, ECS and IMDS, told apart by path.
  fake = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', async () => {
      if (req.method === 'POST' && req.url === '/') {
        served.sts.push(Object.fromEntries(new URLSearchParams(body)));
        res.writeHead(200, { 'Content-Type': 'text/xml' });
        res.end(`<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult><Credentials>
    <AccessKeyId>ASIAWEBIDENTITY</AccessKeyId><SecretAccessKey>webSecret</SecretAccessKey>
    <SessionToken>webSessionToken</SessionToken><Expiration>${new Date(Date.now() + 3600e3).toISOString()}</Expiration>
  </Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>`);
      } else if (req.url === '/ecs/creds') {
        served.ecs.push(req.headers.authorization || null);
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ AccessKeyId: 'ASIACONTAINER', SecretAccessKey: 'ecsSecret', Token: 'ecsToken', Expiration: ecsExpiry() }));
      } else if (req.method === 'PUT' && req.url === '/latest/api/token') {
        served.imdsToken++;
        assert.equal(req.headers['x-aws-ec2-metadata-token-ttl-seconds'], '21600');
        res.end('imds-session-token');
      } else if (req.url.startsWith('/latest/meta-data/iam/security-credentials/')) {
        if (req.headers['x-aws-ec2-metadata-token'] !== 'imds-session-token') { res.writeHead(401); res.end(); return; }
        const role = req.url.slice('/latest/meta-data/iam/security-credentials/'.length);
        if (role === '') { res.end('dms-role\n'); return; }
        served.imdsCreds++;
        res.end(JSON.stringify({ Code: 'Success', AccessKeyId: 'ASIAINSTANCE', SecretAccessKey: 'imdsSecret', Token: 'imdsToken',
          Expiration: new Date(Date.now() + 3600e3).toISOString() }));
      } else { res.writeHead(404); res.end(); }
    });
  });
  await new Promise((r) => fake.listen(0, '127.0.0.1', r));
  fakeUrl = `http://127.0.0.1:${fake.address().port}`;

  startWith({ AWS_EC2_METADATA_DISABLED: 'true' });
  const r = await psql(`CREATE EXTENSION dms_stream;
    SELECT dms_stream.create_endpoint('kin', 'kinesis', 'target', '{"StreamName": "s"}');
    SELECT dms_stream.create_endpoint('kin-keys', 'kinesis', 'target', '{"StreamName": "s"}');
    SELECT dms_stream.set_endpoint_credentials('kin-keys', 'AKIDENDPOINT', 'endpointSecret');`);
  assert.ok(r.ok, r.err);
});

after(() => {
  spawnSync('runuser', ['-u', 'postgres', '--', `${PGBIN}/pg_ctl`, '-D', data, '-m', 'immediate', '-w', 'stop']);
  fake?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('no source: a clear error listing what was tried', async () => {
  startWith({ AWS_EC2_METADATA_DISABLED: 'true' });
  const r = await psql("SELECT * FROM dms_stream.endpoint_credentials('kin')");
  assert.equal(r.ok, false);
  assert.match(r.err, /no AWS credentials found for endpoint "kin"/);
  assert.match(r.err, /DETAIL:.*environment: AWS_ACCESS_KEY_ID not set.*instance metadata: disabled/);
  assert.match(r.err, /HINT:.*set_endpoint_credentials/);
});

test('1. endpoint keys come first, even with keys in the environment', async () => {
  startWith({ AWS_EC2_METADATA_DISABLED: 'true', AWS_ACCESS_KEY_ID: 'AKIDENV', AWS_SECRET_ACCESS_KEY: 'envSecret' });
  assert.deepEqual(await creds("SELECT * FROM dms_stream.endpoint_credentials('kin-keys')"), [['endpoint', 'AKIDENDPOINT', 'f', '']]);
});

test('2. settings come before the environment', async () => {
  startWith({ AWS_EC2_METADATA_DISABLED: 'true', AWS_ACCESS_KEY_ID: 'AKIDENV', AWS_SECRET_ACCESS_KEY: 'envSecret' },
    "dms_stream.aws_access_key_id = 'AKIDSETTING'\ndms_stream.aws_secret_access_key = 'settingSecret'\n");
  assert.deepEqual(await creds(), [['settings', 'AKIDSETTING', 'f', '']]);
  // The secret setting is not shown to anybody, not even in SHOW ALL.
  const r = await psql("SELECT count(*) FROM pg_settings WHERE name = 'dms_stream.aws_secret_access_key'");
  assert.equal(r.out, '0');
});

test('3. environment, with a session token', async () => {
  startWith({ AWS_EC2_METADATA_DISABLED: 'true', AWS_ACCESS_KEY_ID: 'AKIDENV', AWS_SECRET_ACCESS_KEY: 'envSecret',
    AWS_SESSION_TOKEN: 'envToken' });
  assert.deepEqual(await creds(), [['environment', 'AKIDENV', 't', '']]);
});

test('4. shared credentials file with AWS_PROFILE, then config file with dms_stream.aws_profile', async () => {
  writeFileSync(join(dir, 'credentials'), '[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = d\n\n' +
    '# the profile we want\n[prof]\naws_access_key_id=AKIDPROFILE\naws_secret_access_key = p\n');
  writeFileSync(join(dir, 'config'), '[default]\nregion = us-east-1\n[profile other]\naws_access_key_id = AKIDCONFIG\naws_secret_access_key = c\n');
  chmodSync(join(dir, 'credentials'), 0o644);
  chmodSync(join(dir, 'config'), 0o644);
  const files = { AWS_EC2_METADATA_DISABLED: 'true', AWS_SHARED_CREDENTIALS_FILE: join(dir, 'credentials'),
    AWS_CONFIG_FILE: join(dir, 'config') };
  startWith({ ...files, AWS_PROFILE: 'prof' });
  assert.deepEqual(await creds(), [['shared-credentials-file:prof', 'AKIDPROFILE', 'f', '']]);
  startWith(files, "dms_stream.aws_profile = 'other'\n");
  assert.deepEqual(await creds(), [['config-file:other', 'AKIDCONFIG', 'f', '']]);
});

test('5. web identity through STS AssumeRoleWithWebIdentity', async () => {
  startWith({ AWS_EC2_METADATA_DISABLED: 'true', AWS_WEB_IDENTITY_TOKEN_FILE: join(dir, 'token'),
    AWS_ROLE_ARN: 'arn:aws:iam::123456789012:role/dms-stream', AWS_ROLE_SESSION_NAME: 'sess-1',
    AWS_ENDPOINT_URL_STS: fakeUrl });
  const [[source, key, token, expires]] = await creds();
  assert.deepEqual([source, key, token], ['web-identity', 'ASIAWEBIDENTITY', 't']);
  assert.ok(expires.length > 0, 'expiry is reported');
  const call = served.sts.at(-1);
  assert.equal(call.Action, 'AssumeRoleWithWebIdentity');
  assert.equal(call.RoleArn, 'arn:aws:iam::123456789012:role/dms-stream');
  assert.equal(call.RoleSessionName, 'sess-1');
  assert.equal(call.WebIdentityToken, 'eyJ.web.identity.token');
});

test('6. container credentials: authorization token file, cached until near expiry', async () => {
  const ecs = { AWS_EC2_METADATA_DISABLED: 'true', AWS_CONTAINER_CREDENTIALS_FULL_URI: `${fakeUrl}/ecs/creds`,
    AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: join(dir, 'ecs-auth') };
  startWith(ecs);
  served.ecs.length = 0;
  const twice = "SELECT * FROM dms_stream.endpoint_credentials('kin') UNION ALL SELECT * FROM dms_stream.endpoint_credentials('kin')";
  const rows = await creds(twice);
  assert.equal(rows[0][0], 'container');
  assert.equal(rows[0][1], 'ASIACONTAINER');
  assert.deepEqual(served.ecs, ['Bearer file-token'], 'one fetch for two uses: cached');
  // Credentials that expire within the refresh margin are fetched again.
  ecsExpiry = () => new Date(Date.now() + 120e3).toISOString();
  startWith(ecs);
  served.ecs.length = 0;
  await creds(twice);
  assert.equal(served.ecs.length, 2, 'refreshed before expiry');
  ecsExpiry = () => new Date(Date.now() + 3600e3).toISOString();
});

test('7. instance metadata (IMDSv2): token first, then the role credentials', async () => {
  startWith({ AWS_EC2_METADATA_SERVICE_ENDPOINT: fakeUrl });
  const before = served.imdsToken;
  assert.deepEqual((await creds()).map((r) => r.slice(0, 3)), [['instance-metadata', 'ASIAINSTANCE', 't']]);
  assert.ok(served.imdsToken > before, 'IMDSv2 session token was requested');
});
