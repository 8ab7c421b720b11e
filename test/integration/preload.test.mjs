// preload.test.mjs — dms_stream refuses to load outside shared_preload_libraries.
//
// Starts a second throwaway cluster WITHOUT dms_stream in
// shared_preload_libraries and checks that CREATE EXTENSION fails with the
// message and hint a DBA needs, then stops that cluster.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, chmodSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';

// A port nobody listens on right now, from the kernel.
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(String(port))); });
  });
}

const PGBIN = process.env.PGBIN || '/usr/lib/postgresql/15/bin';

function asPostgres(cmd, args) {
  return execFileSync('runuser', ['-u', 'postgres', '--', cmd, ...args], { encoding: 'utf8' });
}

test('CREATE EXTENSION without shared_preload_libraries gives a clear error', async () => {
  const PORT = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'dms-preload-'));
  chmodSync(dir, 0o777);
  const data = join(dir, 'data');
  let started = false;
  try {
    asPostgres(`${PGBIN}/initdb`, ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8',
      '--locale=C.UTF-8']);
    try {
      asPostgres(`${PGBIN}/pg_ctl`, ['-D', data, '-l', join(dir, 'log'), '-w', 'start', '-o',
        `-c port=${PORT} -c listen_addresses=127.0.0.1 -c unix_socket_directories=${dir}`]);
    } catch (e) {
      throw new Error(`${e.message}\n${readFileSync(join(dir, 'log'), 'utf8')}`);
    }
    started = true;
    const r = spawnSync('psql', ['-X', '-h', '127.0.0.1', '-p', PORT, '-U', 'postgres', '-d', 'postgres',
      '-v', 'ON_ERROR_STOP=1', '-c', 'CREATE EXTENSION dms_stream'], { encoding: 'utf8' });
    assert.notEqual(r.status, 0, 'CREATE EXTENSION must fail');
    assert.match(r.stderr, /dms_stream can only be loaded via shared_preload_libraries/);
    assert.match(r.stderr, /HINT:\s+Add dms_stream to the shared_preload_libraries setting/);
    const left = spawnSync('psql', ['-X', '-At', '-h', '127.0.0.1', '-p', PORT, '-U', 'postgres', '-d', 'postgres',
      '-c', "SELECT count(*) FROM pg_extension WHERE extname = 'dms_stream'"], { encoding: 'utf8' });
    assert.equal(left.stdout.trim(), '0');
  } finally {
    if (started)
      asPostgres(`${PGBIN}/pg_ctl`, ['-D', data, '-m', 'immediate', '-w', 'stop']);
    rmSync(dir, { recursive: true, force: true });
  }
});
