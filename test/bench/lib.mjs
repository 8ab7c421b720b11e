// Helpers shared by the benchmarks (the SQL helpers come from test/lib/tasks.mjs).
//
//   lit, PRE, sql, one            re-exported from test/lib/tasks.mjs
//   fmt(n, d)                     n with d decimals
//   startAckServer({server, args}) the minimal acknowledging server in its own process:
//                                 {url, pid, child, label, stats(), reset(), stop()}; the C one
//                                 (ack_server.c, built by buildAckServer) unless --ack-server node
//                                 or DMS_ACK_SERVER=node
//   ackServerChoice()             'c' or 'node' (or a path) from --ack-server / DMS_ACK_SERVER
//   buildAckServer(source)        compile ack_server.c with cc once per process; the binary's path
//   procStatus(pid)               {hwm, rss, anon, shmem} in kB from /proc/<pid>/status, or null
//   cpuOfStat(text), cpuSeconds(pid)  utime + stime in seconds from /proc/<pid>/stat
//   TASK_PROCS_SQL(taskExpr)      SQL: the task's processes as 'pid type,pid type'
//   processSampler()              peak memory and CPU of a set of processes, sampled every 50 ms
//   describeProcs(summary)        its report, one line per process type
//   mergePeaks(a, b)              the peaks of several runs
//   procTypes, procColumns, procCells  table columns per process type
//   dropTasks(tasks), dropEndpoints(names)  clean-up that ignores what is already gone

import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { psqlTry } from '../lib/bed.mjs';
import { lit, PRE } from '../lib/tasks.mjs';

export { lit, PRE, sql, one } from '../lib/tasks.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));

export const fmt = (n, d = 1) => Number(n).toFixed(d);

/**
 * ackServerChoice: which ack server the benchmarks start: the value of
 * --ack-server on the command line, else $DMS_ACK_SERVER, else 'c' (the C
 * server, test/bench/ack_server.c); 'node' is test/bench/ack_server.mjs; a
 * path names a server (.mjs/.js run with node, .c compiled, else executed).
 */
export function ackServerChoice() {
  const i = process.argv.indexOf('--ack-server');
  return (i >= 0 ? process.argv[i + 1] : process.env.DMS_ACK_SERVER) || 'c';
}

/**
 * buildAckServer: compile a C ack server (test/bench/ack_server.c unless
 * source is given) with `cc -O2 -Wall -Wextra -Werror`, once per process and
 * source, into $DMS_BED_DIR (when it exists) or a new temporary directory
 * (removed when the process exits); the binary's path. It is compiled under
 * a temporary name and renamed, so that runs sharing a bed directory never
 * start a half-written binary.
 */
const builds = new Map();
export function buildAckServer(source = path.join(HERE, 'ack_server.c')) {
  const src = path.resolve(source);
  if (builds.has(src)) return builds.get(src);
  const bed = process.env.DMS_BED_DIR;
  let dir = bed;
  if (!bed || !fs.existsSync(bed)) {
    const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dms-ack-'));
    process.on('exit', () => fs.rmSync(tmpDir, { recursive: true, force: true }));
    dir = tmpDir;
  }
  const bin = path.join(dir, path.basename(src, '.c'));
  const tmp = `${bin}.${process.pid}.tmp`;
  execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', tmp, src], { stdio: ['ignore', 'inherit', 'inherit'] });
  fs.renameSync(tmp, bin);
  builds.set(src, bin);
  return bin;
}

/** ackServerCommand: [command, args, label] that start the ack server named as ackServerChoice() names it. */
function ackServerCommand(server) {
  if (server === 'c') server = path.join(HERE, 'ack_server.c');
  else if (server === 'node') server = path.join(HERE, 'ack_server.mjs');
  const file = path.resolve(server);
  const rel = path.relative(process.cwd(), file);
  if (/\.(mjs|js)$/.test(file)) return [process.execPath, [file], `Node ${rel}`];
  if (file.endsWith('.c')) return [buildAckServer(file), [], `C ${rel}`];
  return [file, [], `binary ${rel}`];
}

/**
 * startAckServer: start the minimal acknowledging server (server: 'c', 'node'
 * or a path, by default ackServerChoice(); script: a path, the same) with
 * --port 0 and the extra args, and wait for its "listening URL" line. label
 * says which server it is ('C test/bench/ack_server.c', 'Node ...').
 */
export async function startAckServer({ server, script, args = [] } = {}) {
  const [command, first, label] = ackServerCommand(server ?? script ?? ackServerChoice());
  const child = spawn(command, [...first, '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening (\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`ack server exited with ${code}`)));
    child.on('error', reject);
  });
  const call = async (p, method = 'GET') => (await fetch(`${url}/${p}`, { method })).json();
  return {
    url,
    pid: child.pid,
    child,
    label,
    stats: () => call('__stats'),
    reset: () => call('__reset', 'POST'),
    stop: () => {
      if (child.exitCode === null) child.kill('SIGTERM');
    },
  };
}

/** procStatus: a process's VmHWM, VmRSS, RssAnon and RssShmem in kB, or null if it is gone. */
export function procStatus(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => Number((new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s) || [0, 0])[1]);
    return { hwm: kb('VmHWM'), rss: kb('VmRSS'), anon: kb('RssAnon'), shmem: kb('RssShmem') };
  } catch {
    return null;
  }
}

/** cpuOfStat: CPU seconds (user + system) from the text of /proc/<pid>/stat (utime and stime fields). */
const CLK_TCK = 100;
export function cpuOfStat(stat) {
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

/** cpuSeconds: the CPU seconds a process has used so far, NaN if it is gone. */
export function cpuSeconds(pid) {
  try {
    return cpuOfStat(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return NaN;
  }
}

/**
 * TASK_PROCS_SQL: a scalar SQL expression listing the processes of the task
 * named by taskExpr (an SQL expression): every pg_stat_activity row with that
 * application_name whose backend_type starts with 'dms_stream' (the task
 * worker, 'dms_stream task', and its shipping process, 'dms_stream shipper'),
 * as 'pid type,pid type' (NULL if none).
 */
export const TASK_PROCS_SQL = (taskExpr) => `(SELECT string_agg(a.pid || ' ' || a.backend_type, ',' ORDER BY a.pid)
    FROM pg_stat_activity a WHERE a.application_name = ${taskExpr} AND a.backend_type LIKE 'dms_stream%')`;

/** The short name of a backend type in reports: 'dms_stream task' -> 'task'. */
const shortType = (type) => type.replace(/^dms_stream /, '');

/**
 * processSampler: samples /proc/<pid>/status and /proc/<pid>/stat of every
 * process added (add(pid, type) or addList() with the text of TASK_PROCS_SQL)
 * every intervalMs: peak VmHWM, VmRSS, RssAnon, RssShmem (kB), and the CPU
 * seconds of the last sample. summary() groups them by process type (the
 * backend_type without 'dms_stream ': 'task', 'shipper'): {types: [{type,
 * pids, hwm, rss, anon, shmem, cpu, samples}], anonSum (sum of the types' RssAnon peaks,
 * kB), cpu (seconds, all processes), samples}. Processes of one type that
 * follow each other (a restarted worker) count once: the peaks are the
 * largest, the CPU seconds are added.
 */
export function processSampler({ intervalMs = 50 } = {}) {
  const procs = new Map();
  const sampleOne = (p) => {
    const s = procStatus(p.pid);
    const cpu = cpuSeconds(p.pid);
    if (!s || Number.isNaN(cpu)) return;
    p.hwm = Math.max(p.hwm, s.hwm);
    p.rss = Math.max(p.rss, s.rss);
    p.anon = Math.max(p.anon, s.anon);
    p.shmem = Math.max(p.shmem, s.shmem);
    p.cpu = cpu;
    p.samples++;
  };
  const take = () => {
    for (const p of procs.values()) sampleOne(p);
  };
  const timer = setInterval(take, intervalMs);
  const add = (pid, type = 'dms_stream task') => {
    if (!pid || procs.has(pid)) return;
    const p = { pid, type: shortType(type), hwm: 0, rss: 0, anon: 0, shmem: 0, cpu: 0, samples: 0 };
    procs.set(pid, p);
    sampleOne(p);
  };
  const summary = () => {
    const byType = new Map();
    for (const p of procs.values()) {
      const t = byType.get(p.type) ?? { type: p.type, pids: [], hwm: 0, rss: 0, anon: 0, shmem: 0, cpu: 0, samples: 0 };
      t.pids.push(p.pid);
      t.hwm = Math.max(t.hwm, p.hwm);
      t.rss = Math.max(t.rss, p.rss);
      t.anon = Math.max(t.anon, p.anon);
      t.shmem = Math.max(t.shmem, p.shmem);
      t.cpu += p.cpu;
      t.samples += p.samples;
      byType.set(p.type, t);
    }
    // the worker first, then the other types by name
    const types = [...byType.values()].sort((a, b) => (a.type === 'task' ? -1 : b.type === 'task' ? 1 : a.type.localeCompare(b.type)));
    return {
      types,
      anonSum: types.reduce((a, t) => a + t.anon, 0),
      cpu: types.reduce((a, t) => a + t.cpu, 0),
      samples: types.reduce((a, t) => a + t.samples, 0),
    };
  };
  return {
    add,
    /** addList: add the processes listed by TASK_PROCS_SQL ('pid type,pid type', or empty). */
    addList(text) {
      for (const item of (text || '').split(',')) {
        const m = /^(\d+) (.+)$/.exec(item.trim());
        if (m) add(Number(m[1]), m[2]);
      }
    },
    pids: () => [...procs.keys()],
    sample: take,
    summary,
    stop() {
      clearInterval(timer);
      take();
      return summary();
    },
  };
}

/** typeLabel: how a process type is named in reports ('task' is the worker). */
const typeLabel = (type) => (type === 'task' ? 'worker' : type);

/**
 * describeProcs: one line per process type of a sampler summary: peak VmHWM,
 * VmRSS, RssAnon and CPU seconds, then the sum of the RssAnon peaks.
 */
export function describeProcs(sum) {
  const mb = (kb) => fmt(kb / 1024);
  const lines = sum.types.map((t) => `${typeLabel(t.type)} pid ${t.pids.join(', ')}: peak VmHWM ${mb(t.hwm)} MB, max VmRSS ${mb(t.rss)} MB, `
    + `max RssAnon ${mb(t.anon)} MB, CPU ${fmt(t.cpu, 2)} s (${t.samples} samples)`);
  if (sum.types.length > 1) lines.push(`all ${sum.types.length} process types: RssAnon peaks summed ${mb(sum.anonSum)} MB, CPU ${fmt(sum.cpu, 2)} s`);
  return lines;
}

/**
 * mergePeaks: a summary of several runs from two (a may be null): per
 * process type the largest memory peaks and the smallest CPU seconds (the
 * best run of each type), the samples added; anonSum and cpu are the sums
 * over the types of those.
 */
export function mergePeaks(a, b) {
  if (!a) return b;
  const byType = new Map(a.types.map((t) => [t.type, { ...t, pids: [...t.pids] }]));
  for (const t of b.types) {
    const m = byType.get(t.type);
    if (!m) {
      byType.set(t.type, { ...t, pids: [...t.pids] });
      continue;
    }
    m.pids = [...new Set([...m.pids, ...t.pids])];
    for (const k of ['hwm', 'rss', 'anon', 'shmem']) m[k] = Math.max(m[k], t[k]);
    m.cpu = Math.min(m.cpu, t.cpu);
    m.samples += t.samples;
  }
  const types = [...byType.values()];
  return {
    types,
    anonSum: types.reduce((x, t) => x + t.anon, 0),
    cpu: types.reduce((x, t) => x + t.cpu, 0),
    samples: a.samples + b.samples,
  };
}

/** procTypes: the process types found in any of the summaries, the worker ('task') first. */
export function procTypes(summaries) {
  const set = new Set(['task']);
  for (const s of summaries) for (const t of s?.types ?? []) set.add(t.type);
  return [...set].sort((a, b) => (a === 'task' ? -1 : b === 'task' ? 1 : a.localeCompare(b)));
}

/**
 * procColumns / procCells: markdown table columns of the memory of each
 * process type (VmHWM, RssAnon; 'worker' for the task worker) and the sum
 * of the RssAnon peaks, with cpu also the CPU seconds of each type.
 */
export function procColumns(types, { cpu = false } = {}) {
  const cols = [];
  for (const t of types) cols.push(`${typeLabel(t)} VmHWM MB`, `${typeLabel(t)} RssAnon MB`);
  cols.push('RssAnon sum MB');
  if (cpu) for (const t of types) cols.push(`${typeLabel(t)} CPU s`);
  return cols;
}
export function procCells(sum, types, { cpu = false } = {}) {
  const get = (type) => sum?.types.find((x) => x.type === type);
  const cells = [];
  for (const type of types) {
    const t = get(type);
    cells.push(t ? fmt(t.hwm / 1024) : '-', t ? fmt(t.anon / 1024) : '-');
  }
  cells.push(sum ? fmt(sum.anonSum / 1024) : '-');
  if (cpu) for (const type of types) cells.push(get(type) ? fmt(get(type).cpu, 2) : '-');
  return cells;
}

/** dropTasks: stop (if running) and drop each task, ignoring errors. */
export async function dropTasks(tasks) {
  for (const t of tasks) {
    await psqlTry(`${PRE}SELECT dms_stream.stop_task(${lit(t)}) FROM dms_stream.task_status WHERE task = ${lit(t)} AND status NOT IN ('stopped', 'failed', 'ready');`);
    await psqlTry(`${PRE}SELECT dms_stream.drop_task(${lit(t)});`);
  }
}

/** dropEndpoints: drop each endpoint, ignoring errors. */
export async function dropEndpoints(names) {
  for (const e of names) await psqlTry(`${PRE}SELECT dms_stream.drop_endpoint(${lit(e)});`);
}
