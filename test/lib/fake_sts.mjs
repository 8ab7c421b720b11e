// fake_sts.mjs — a local fake of STS AssumeRole behind the SigV4-verifying
// proxy (test/proxy/sigv4_proxy.py --service sts): the proxy checks every
// signature with botocore and refuses unknown keys, the fake answers
// AssumeRole for the roles it is given (with their external id) with the
// bed's temporary credentials (DMS_BED_SESSION_*, which the S3 and Kinesis
// proxies accept) and AccessDenied otherwise.  calls lists what it served.
import { createServer } from 'node:http';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { env, waitFor } from './bed.mjs';

const PROXY = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'proxy', 'sigv4_proxy.py');

const xmlEscape = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function denied(res, message) {
  res.writeHead(403, { 'content-type': 'text/xml' });
  res.end('<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
    + `<Code>AccessDenied</Code><Message>${xmlEscape(message)}</Message></Error>`
    + '<RequestId>fake-sts</RequestId></ErrorResponse>');
}

/**
 * Start the fake and its proxy.  roles: {arn: externalId or null};
 * baseKey/baseSecret: the only credentials the STS proxy accepts;
 * expiresIn(): seconds until the credentials it hands out expire.
 * Returns {url, calls, expiresIn (settable), stop()}.
 */
export async function startFakeSts({ roles, baseKey, baseSecret, logFile }) {
  const state = { calls: [], expiresIn: () => 3600 };
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      const p = new URLSearchParams(body);
      const auth = req.headers.authorization || '';
      const call = {
        action: p.get('Action'), role: p.get('RoleArn'), externalId: p.get('ExternalId'),
        session: p.get('RoleSessionName'), duration: p.get('DurationSeconds'),
        keyId: (/Credential=([^/]+)\//.exec(auth) || [])[1],
      };
      state.calls.push(call);
      if (call.action !== 'AssumeRole' || p.get('Version') !== '2011-06-15') {
        res.writeHead(400, { 'content-type': 'text/xml' });
        res.end('<ErrorResponse><Error><Code>InvalidAction</Code><Message>not AssumeRole</Message></Error></ErrorResponse>');
        return;
      }
      if (!(call.role in roles)) {
        denied(res, `User: arn:aws:iam::123456789012:user/base is not authorized to perform: sts:AssumeRole on resource: ${call.role}`);
        return;
      }
      if ((roles[call.role] ?? null) !== (call.externalId ?? null)) {
        denied(res, `User: arn:aws:iam::123456789012:user/base is not authorized to perform: sts:AssumeRole on resource: ${call.role} (external id)`);
        return;
      }
      const exp = new Date(Date.now() + state.expiresIn() * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
      res.writeHead(200, { 'content-type': 'text/xml' });
      res.end('<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>'
        + '<Credentials>'
        + `<AccessKeyId>${env.DMS_BED_SESSION_ACCESS_KEY_ID}</AccessKeyId>`
        + `<SecretAccessKey>${xmlEscape(env.DMS_BED_SESSION_SECRET_ACCESS_KEY)}</SecretAccessKey>`
        + `<SessionToken>${xmlEscape(env.DMS_BED_SESSION_TOKEN)}</SessionToken>`
        + `<Expiration>${exp}</Expiration></Credentials>`
        + `<AssumedRoleUser><Arn>${xmlEscape(call.role)}/${xmlEscape(call.session)}</Arn>`
        + '<AssumedRoleId>AROAFAKE:x</AssumedRoleId></AssumedRoleUser>'
        + '</AssumeRoleResult><ResponseMetadata><RequestId>fake-sts</RequestId></ResponseMetadata>'
        + '</AssumeRoleResponse>');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const upstream = `http://127.0.0.1:${server.address().port}`;

  // the proxy on a free port of its own
  const probe = createServer();
  await new Promise((r) => probe.listen(0, '127.0.0.1', r));
  const port = probe.address().port;
  await new Promise((r) => probe.close(r));
  const proxy = spawn('/usr/bin/python3', [PROXY, '--service', 'sts', '--listen', `127.0.0.1:${port}`,
    '--upstream', upstream, '--credential', `${baseKey}:${baseSecret}`, '--log', logFile],
  { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(async () => {
    try {
      return (await fetch(`${url}/__proxy/stats`)).ok;
    } catch {
      return false;
    }
  }, { what: 'sts proxy listening', timeoutMs: 20000 });

  return {
    url,
    calls: state.calls,
    set expiresIn(fn) { state.expiresIn = fn; },
    stats: async () => (await fetch(`${url}/__proxy/stats`)).json(),
    requests: async (since = 0) => (await (await fetch(`${url}/__proxy/requests?since=${since}`)).json()),
    stop: async () => {
      proxy.kill('SIGTERM');
      await new Promise((r) => server.close(r));
      if (fs.existsSync(logFile)) return fs.readFileSync(logFile, 'utf8');
      return '';
    },
  };
}
