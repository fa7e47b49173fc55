// lib.mjs: helpers of the benchmark driver (bench/run.mjs): process figures from /proc, the
// C load generator as a child driven line by line, fast account creation for Prosody,
// fd limits, and the Markdown/CSV writers.
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

export const benchDir = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(benchDir, '..');
export const delay = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resident set size of a process in KiB (VmRSS). */
export function rssKiB(pid) {
  const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/);
  return Number(m[1]);
}
/** User + system CPU time of a process in ms (clock ticks are 10 ms on Linux). */
export function cpuMs(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}
export function fdCount(pid) {
  try { return fs.readdirSync(`/proc/${pid}/fd`).length; } catch { return -1; }
}
export function softFdLimit() {
  const m = fs.readFileSync('/proc/self/limits', 'utf8').match(/Max open files\s+(\d+)\s+(\d+)/);
  return m ? Number(m[1]) : 1024;
}

/**
 * Re-executes this script with a higher `ulimit -n` (every child inherits it: Prosody, the
 * gateway and the load generator each hold one descriptor per connection). Root can raise
 * the hard limit up to fs.nr_open; others get the hard limit.
 */
export function ensureFdLimit(want = 200000) {
  if (softFdLimit() >= want || process.env.SG_BENCH_REEXEC) return;
  const sh = `ulimit -Hn ${want} 2>/dev/null; ulimit -n ${want} 2>/dev/null || ulimit -n $(ulimit -Hn); exec "$@"`;
  const r = spawnSync('bash', ['-c', sh, 'bash', process.execPath, ...process.argv.slice(1)],
    { stdio: 'inherit', env: { ...process.env, SG_BENCH_REEXEC: '1' } });
  process.exit(r.status ?? 1);
}

/** Prosody's internal_hashed account files, written directly (PBKDF2 on node's thread pool
 * rather than in Prosody's single Lua thread, ~4x faster than in-band registration). Users are
 * u<i> with password pw-u<i>; files that exist are kept. */
export async function makeAccounts(dataDir, domain, n, iterations = 10000) {
  const dir = path.join(dataDir, domain.replace(/[^A-Za-z0-9]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`), 'accounts');
  fs.mkdirSync(dir, { recursive: true });
  const todo = [];
  for (let i = 0; i < n; i++) if (!fs.existsSync(path.join(dir, `u${i}.dat`))) todo.push(i);
  if (!todo.length) return 0;
  console.log(`creating ${todo.length} accounts in ${dir} ...`);
  let next = 0;
  const worker = async () => {
    while (next < todo.length) {
      const i = todo[next++];
      const salt = crypto.randomUUID();
      const salted = await new Promise((res, rej) => crypto.pbkdf2(`pw-u${i}`, salt, iterations, 20, 'sha1', (e, k) => (e ? rej(e) : res(k))));
      const clientKey = crypto.createHmac('sha1', salted).update('Client Key').digest();
      const storedKey = crypto.createHash('sha1').update(clientKey).digest('hex');
      const serverKey = crypto.createHmac('sha1', salted).update('Server Key').digest('hex');
      fs.writeFileSync(path.join(dir, `u${i}.dat`), `return {\n\t["iteration_count"] = ${iterations};\n\t["salt"] = "${salt}";\n\t["server_key"] = "${serverKey}";\n\t["stored_key"] = "${storedKey}";\n};\n`);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return todo.length;
}

/** The C load generator (bench/loadgen), driven by one command per line. */
export class Loadgen {
  constructor(binary, args) {
    this.child = spawn(binary, args, { stdio: ['pipe', 'pipe', 'inherit'] });
    this.pid = this.child.pid;
    this.waiters = [];
    this.lines = [];
    this.exited = false;
    readline.createInterface({ input: this.child.stdout }).on('line', (l) => {
      let j;
      try { j = JSON.parse(l); } catch { return; }
      const w = this.waiters.shift();
      if (w) w.resolve(j); else this.lines.push(j);
    });
    this.child.on('exit', (code) => {
      this.exited = true;
      for (const w of this.waiters.splice(0)) w.reject(new Error(`loadgen exited (${code})`));
    });
  }
  next(timeoutMs = 600000) {
    if (this.lines.length) return Promise.resolve(this.lines.shift());
    if (this.exited) return Promise.reject(new Error('loadgen exited'));
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`loadgen: no answer in ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({ resolve: (j) => { clearTimeout(t); resolve(j); }, reject });
    });
  }
  async cmd(line, timeoutMs) {
    this.child.stdin.write(`${line}\n`);
    const j = await this.next(timeoutMs);
    if (j.ev === 'error') throw new Error(`loadgen: ${line}: ${j.what}`);
    return j;
  }
  async quit() {
    if (this.exited) return;
    this.child.stdin.write('quit\n');
    await Promise.race([new Promise((r) => this.child.once('exit', r)), delay(3000)]);
    if (!this.exited) this.child.kill('SIGKILL');
  }
}

/** Builds the load generator (its own small CMake project) unless it is up to date. */
export function buildLoadgen() {
  const build = path.join(repoRoot, 'build-loadgen');
  const bin = path.join(build, 'sg-loadgen');
  const src = path.join(benchDir, 'loadgen', 'loadgen.c');
  if (fs.existsSync(bin) && fs.statSync(bin).mtimeMs > fs.statSync(src).mtimeMs) return bin;
  for (const args of [['-S', path.join(benchDir, 'loadgen'), '-B', build, '-DCMAKE_BUILD_TYPE=RelWithDebInfo'], ['--build', build]]) {
    const r = spawnSync('cmake', args, { stdio: ['ignore', 'ignore', 'inherit'] });
    if (r.status !== 0) throw new Error(`cmake ${args.join(' ')} failed`);
  }
  return bin;
}

/** Writes results/<name>.md (title, notes, table) and results/<name>.csv (the table). */
export function writeResults(name, title, notes, header, rows) {
  const dir = path.join(benchDir, 'results');
  fs.mkdirSync(dir, { recursive: true });
  const md = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
  fs.writeFileSync(path.join(dir, `${name}.md`), `# ${title}\n\n${notes.trim()}\n\n${md}\n`);
  const q = (v) => (/[",\n]/.test(String(v)) ? `"${String(v).replace(/"/g, '""')}"` : String(v));
  fs.writeFileSync(path.join(dir, `${name}.csv`), [header, ...rows].map((r) => r.map(q).join(',')).join('\n') + '\n');
  console.log(`\n${title}\n${md}\n`);
}

export function machineNote() {
  const cpus = fs.readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? '?';
  const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  let prosodyVer = '?';
  try { prosodyVer = fs.readFileSync('/usr/lib/prosody/prosody.version', 'utf8').trim(); } catch { /* not there */ }
  return `${new Date().toISOString()}; ${(fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^processor/gm) || []).length} CPUs (${cpus}); load average before the run ${load}; Prosody ${prosodyVer}; gateway build/sparkgate (RelWithDebInfo, no sanitizers), log.level info.`;
}

export const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : 'n/a');
export const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');

/** Key figures of a scenario, kept in results/<name>.json for the summary. */
export function saveFigures(name, obj) {
  const dir = path.join(benchDir, 'results');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `${name}.json`), `${JSON.stringify({ at: new Date().toISOString(), ...obj }, null, 1)}\n`);
}

/** results/summary.md: the targets beside the latest figures of each scenario. */
export function writeSummary(note) {
  const dir = path.join(benchDir, 'results');
  const load = (n) => { try { return JSON.parse(fs.readFileSync(path.join(dir, `${n}.json`), 'utf8')); } catch { return null; } };
  const sc = load('scale'), la = load('latency'), cm = load('cm'), fo = load('fanout');
  const num = (x) => Number(x);
  const verdict = (ok) => (ok === null ? 'n/a' : ok ? 'met' : '**missed**');
  const rows = [];
  if (sc) {
    rows.push(['gateway memory per user, plain upstream', '≤ 16 KiB', `${sc.plainKiB} KiB at ${sc.plainUsers} users`, verdict(num(sc.plainKiB) <= 16), sc.at]);
    if (sc.tlsKiB) rows.push(['gateway memory per user, STARTTLS upstream', '(none)', `${sc.tlsKiB} KiB at ${sc.tlsUsers} users`, '', sc.at]);
    rows.push(['gateway CPU per idle user', '(none)', `${sc.idleCpu} µs per second per user`, '', sc.at]);
    rows.push(['login rate', '(none)', `${sc.loginRate} logins/s (last plain step)`, '', sc.at]);
  }
  if (la) {
    const r1000 = la.rows.find((r) => String(r[0]) === '1000'), rmax = la.rows.find((r) => r[0] === 'max');
    const r100 = la.rows.find((r) => String(r[0]) === '100');
    if (r100) rows.push(['latency added at 100 msg/s, p50 / p99 (no target; nothing saturated)', '(none)', `${r100[1]} / ${r100[2]} ms`, '', la.at]);
    if (r1000) {
      rows.push(['latency added at 1,000 msg/s, p50', '≤ 0.5 ms', `${r1000[1]} ms (gateway ${la.gw1000.p50.toFixed(2)}, direct ${la.direct1000.p50.toFixed(2)})`, verdict(num(r1000[1]) <= 0.5), la.at]);
      rows.push(['latency added at 1,000 msg/s, p99', '≤ 2 ms', `${r1000[2]} ms (gateway ${la.gw1000.p99.toFixed(2)}, direct ${la.direct1000.p99.toFixed(2)})`, verdict(num(r1000[2]) <= 2), la.at]);
    }
    if (rmax) rows.push(['max throughput, gateway / direct', '≥ 0.9×', `${rmax[3]}× (${la.gwMax?.toFixed(0)} vs ${la.directMax?.toFixed(0)} msg/s)`, verdict(num(rmax[3]) >= 0.9), la.at]);
  }
  if (cm) {
    for (const r of cm.rows.filter((x) => x[1] === 'Prosody' && x[0] !== 'direct c2s (reference)'))
      rows.push([`${r[0]} memory per session, Sparkgate vs Prosody`, '≤ 1/4 of Prosody', `Sparkgate: not built; Prosody ${r[5]} KiB/session, p50 ${r[8]} ms`, 'N/A (no Sparkgate CM)', cm.at]);
  }
  if (fo) {
    const m = fo.rows.at(-1);
    rows.push([`fan-out, one user with ${fo.streams} streams`, '(none)', `${m[5]} events/s delivered (${m[4]} msg/s), p50 ${m[6]} ms`, '', fo.at]);
  }
  const md = ['| figure | target | measured | verdict | run |', '|---|---|---|---|---|', ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
  fs.writeFileSync(path.join(dir, 'summary.md'), `# Benchmark summary\n\n${note}\n\n${md}\n`);
  console.log(`\n${md}\n`);
}
