/**
 * Resident mp (packages/cli/bin/resident.js, src/resident/server.ts). Given a lease
 * (MP_CONTAINER_LEASE), when `mp build` runs, then it leaves a detached mp process behind that
 * runs the next `mp build` of the same environment with the same output and exit code, ends
 * itself when idle for the lease, ends at once on `mp stop`, cancels a build whose client was
 * killed with -9, steps aside when a module it loaded changed (an edited mp.config.ts is seen),
 * and when it was killed with -9 the next build runs in its own process and a new one takes over.
 * `mp clean` ends it; `mp clean --all` of another mp cache does not; a SIGTERM ends it with its
 * socket. It warms up on the command
 * that started it (dry runs), and a build or `mp stop` that comes meanwhile is served or ends it.
 *
 * The resident process is found as a user would find it: a process whose environment names this
 * suite's cache and the socket it serves on (Linux's /proc).
 */

import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runMp, type TempProject } from '@mp/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBundle } from '../../../packages/cli/src/bundle.ts';
import {
  type BuildFixtures,
  buildProject,
  jsonResult,
  mpBuild,
  projectContainers,
  setupBuildFixtures,
} from './build-helpers.ts';

const LEASE = 6;
const env = { MP_CONTAINER_LEASE: String(LEASE) };

let fixtures: BuildFixtures;
const projects: TempProject[] = [];
beforeAll(async () => {
  // A resident mp runs bundled code only (never sources being edited): the bundle must be there.
  const bundle = await ensureBundle();
  if (!bundle)
    throw new Error('the CLI bundle could not be made (packages/cli/src/bundle.ts): no resident mp');
  fixtures = await setupBuildFixtures();
}, 600_000);
afterAll(async () => {
  for (const resident of residents()) process.kill(resident.pid, 'SIGKILL');
  for (const p of projects)
    if (projectContainers(p).length)
      await runMp(['stop', '--cwd', p.dir], { env: { ...fixtures.env, ...env } });
  fixtures?.cleanup();
});

function project(files: Record<string, string> = {}): TempProject {
  const p = buildProject(fixtures, files);
  projects.push(p);
  return p;
}

async function build(p: TempProject, extraEnv: NodeJS.ProcessEnv = {}) {
  const run = await mpBuild(fixtures, p, ['--json'], { env: { ...env, ...extraEnv } });
  expect(run.code, run.output).toBe(0);
  return jsonResult(run);
}

interface Resident {
  pid: number;
  socket: string;
}

/** The resident mp processes of this suite's cache, from their environments. */
function residents(): Resident[] {
  if (!fixtures) return [];
  const found: Resident[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let environ: string[];
    try {
      environ = readFileSync(`/proc/${name}/environ`, 'utf8').split('\0');
    } catch {
      continue;
    }
    const socket = environ
      .find((v) => v.startsWith('MP_RESIDENT_SOCKET='))
      ?.slice('MP_RESIDENT_SOCKET='.length);
    if (socket && environ.includes(`MP_CACHE_DIR=${fixtures.cacheDir}`)) {
      // A zombie is gone for all that matters here.
      const state = readFileSync(`/proc/${name}/stat`, 'utf8').split(') ')[1]?.[0];
      if (state !== 'Z') found.push({ pid: Number(name), socket });
    }
  }
  return found;
}

async function until<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  limitMs = 15_000,
): Promise<T> {
  const started = performance.now();
  while (performance.now() - started < limitMs) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what}: not within ${limitMs} ms`);
}

/**
 * An onSpawn that signals the client once, when its output shows `marker` (make is busy then).
 * Once: a second Ctrl-C means "exit now", in the client and in a build's own process alike.
 */
function signalOnce(marker: string, signal: NodeJS.Signals) {
  return (child: ChildProcess) => {
    let seen = '';
    let sent = false;
    child.stdout?.on('data', (d) => {
      seen += d;
      if (!sent && seen.includes(marker)) {
        sent = true;
        child.kill(signal);
      }
    });
  };
}

/** The one resident mp of this suite, once it answers on its socket. */
const oneResident = async () => {
  const all = residents();
  return all.length === 1 && (await answers(all[0]!.socket)) ? all[0] : undefined;
};

/**
 * True when the resident on the socket is idle: it declines a command it does not serve as that
 * ('command'), and any command as 'busy' while it runs one. Nothing runs either way.
 */
function idle(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createConnection(socket);
    let answer = '';
    probe.setEncoding('utf8');
    probe.once('connect', () =>
      probe.write(`${JSON.stringify({ type: 'run', argv: ['boards'], cwd: '/', stdout: {}, stderr: {} })}\n`),
    );
    probe.on('data', (chunk: string) => {
      answer += chunk;
    });
    probe.once('close', () => resolve(answer.includes('"reason":"command"')));
    probe.once('error', () => resolve(false));
  });
}

/** True when something listens on the socket (a killed resident's socket file stays, unanswered). */
function answers(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createConnection(socket);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}
const noResident = () => (residents().length === 0 ? true : undefined);

/** The registrations in the mp cache of builds by `pid` (`users/<pid>-<token>.json`). */
function cacheUsers(pid: number): string[] {
  const dir = join(fixtures.cacheDir, 'users');
  return exists(dir) ? readdirSync(dir).filter((name) => name.startsWith(`${pid}-`)) : [];
}

/**
 * The resident mp, caught warming up: its warm-up's dry runs register as users of the mp cache,
 * as every build does, for some milliseconds each; looked for every 2 ms.
 */
async function warmingUp(limitMs = 15_000): Promise<Resident> {
  const started = performance.now();
  while (performance.now() - started < limitMs) {
    const [resident] = residents();
    if (resident && cacheUsers(resident.pid).length > 0) return resident;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`no resident mp seen warming up within ${limitMs} ms`);
}
const exists = (file: string) => statSync(file, { throwIfNoEntry: false }) !== undefined;

describe('resident mp', () => {
  it('runs the next build of the same environment, as the build’s own process would, and ends when idle', async () => {
    const p = project({ 'modules/app.py': 'X = 1\n' });
    const first = await build(p);
    expect(first.resident).toBe(false);
    const resident = await until('a resident mp after the first build', oneResident);
    expect(exists(resident.socket)).toBe(true);

    p.write('modules/app.py', 'X = 2\n');
    const second = await build(p);
    expect(second).toMatchObject({ resident: true, upToDate: false, fromCache: false, container: 'reused' });
    expect(second.sha256).not.toBe(first.sha256);
    expect(exists(second.firmware)).toBe(true);

    // Another environment is not served by it: what a build sees must be its own environment.
    p.write('modules/app.py', 'X = 3\n');
    const other = await build(p, { MP_RESIDENT_TEST_OTHER: '1', MP_CONTAINER_LEASE: '0' });
    expect(other.resident).toBe(false);

    // A failing command: the same output and exit code as in a process of its own.
    const badArgs = ['--board', 'no-such-board', '--json'];
    const served = await mpBuild(fixtures, p, badArgs, { env });
    const own = await mpBuild(fixtures, p, badArgs, { env: { ...env, MP_RESIDENT: '0' } });
    expect(served.code).toBe(own.code);
    expect(served.code).not.toBe(0);
    const timeless = (out: string) => out.replace(/"ms":[\d.]+/g, '"ms":0');
    expect(timeless(served.stdout)).toBe(timeless(own.stdout));
    expect(served.stderr).toBe(own.stderr);
    expect(served.stdout).toContain('no-such-board');

    // Idle for the lease: gone, with its socket.
    const idleSince = performance.now();
    await until('the resident mp ending when idle', noResident, (LEASE + 10) * 1000);
    expect(performance.now() - idleSince).toBeGreaterThan((LEASE - 2) * 1000);
    expect(exists(resident.socket)).toBe(false);
  }, 240_000);

  it('killed with -9, leaves the next build to its own process, and a new one takes the socket over', async () => {
    const p = project({ 'modules/app.py': 'X = 10\n' });
    await build(p);
    const resident = await until('a resident mp', oneResident);
    process.kill(resident.pid, 'SIGKILL');
    await until('the killed resident gone', noResident);
    expect(exists(resident.socket)).toBe(true); // nobody removed it

    p.write('modules/app.py', 'X = 11\n');
    const after = await build(p);
    expect(after.resident).toBe(false);
    const next = await until('a new resident mp', oneResident);
    expect(next.pid).not.toBe(resident.pid);
    expect(next.socket).toBe(resident.socket);
    p.write('modules/app.py', 'X = 12\n');
    expect((await build(p)).resident).toBe(true);

    // `mp stop` ends it at once, and says so.
    const stop = await runMp(['stop', '--cwd', p.dir, '--json'], { env: { ...fixtures.env, ...env } });
    expect(stop.code, stop.output).toBe(0);
    expect(jsonResult(stop).residents).toBe(1);
    await until('the resident mp ending on mp stop', noResident, 3000);
    expect(exists(next.socket)).toBe(false);
    expect(projectContainers(p)).toEqual([]);

    // Ended by a signal (`kill`, a logout's SIGHUP), it removes its socket as it goes.
    p.write('modules/app.py', 'X = 13\n');
    await build(p);
    const third = await until('a resident mp', oneResident);
    process.kill(third.pid, 'SIGTERM');
    await until('the resident mp ending on SIGTERM', noResident, 3000);
    expect(exists(third.socket)).toBe(false);
  }, 240_000);

  it('cancels the build of a client that is interrupted or killed with -9, and serves the next one', async () => {
    const p = project({ 'modules/app.py': 'X = 20\n' });
    await build(p);
    const resident = await until('a resident mp', oneResident);
    // The fixture mpy-cross sleeps on this marker: make is busy when the client is signalled.
    p.write('modules/slow.py', '__fixture_sleep__ = 60\n');
    // Ctrl-C: the resident process cancels the build, and the client exits as its own process would.
    const interrupted = await mpBuild(fixtures, p, ['--json'], {
      env,
      onSpawn: signalOnce('MPY slow.py', 'SIGINT'),
    });
    expect(interrupted.code, interrupted.output).toBe(130);
    expect(jsonResult(interrupted)).toMatchObject({ ok: false, error: { code: 'CANCELLED' } });
    // Until its cancelled build is cleaned up it is busy, and the next build would run elsewhere.
    await until('the resident idle again', () => idle(resident.socket));
    p.write('modules/slow.py', '__fixture_sleep__ = 61\n');
    const killed = await mpBuild(fixtures, p, ['--json'], {
      env,
      onSpawn: signalOnce('MPY slow.py', 'SIGKILL'),
    });
    expect(killed.signal).toBe('SIGKILL');
    expect(killed.stdout).toContain('MPY slow.py');

    rmSync(p.path('modules/slow.py'));
    p.write('modules/app.py', 'X = 21\n');
    // While it cancels (make stopped in the container) it is busy, and a build runs in its own
    // process; then it serves again.
    let next = await build(p);
    for (let attempt = 0; next.resident !== true && attempt < 10; attempt++) {
      await new Promise((r) => setTimeout(r, 1000));
      p.write('modules/app.py', `X = ${22 + attempt}\n`);
      next = await build(p);
    }
    // The same process: the cancelled build released its lock and container, and it lives on.
    expect(next).toMatchObject({ resident: true, upToDate: false });
    expect(residents().map((r) => r.pid)).toEqual([resident.pid]);
    const log = readFileSync(next.logFile, 'utf8');
    expect(log).not.toContain('slow.py');
  }, 240_000);

  it('warms up on the command that started it, serves a build that comes meanwhile, and ends cleanly on mp stop', async () => {
    const p = project({ 'modules/app.py': 'X = 40\n' });
    const stop = () => runMp(['stop', '--cwd', p.dir, '--json'], { env: { ...fixtures.env, ...env } });
    // One started by this build, not the one an earlier test left warm.
    await stop();
    await until('no resident mp', noResident, 3000);
    await build(p);
    const resident = await warmingUp();
    // A build while it warms up waits for the warm-up (a dry run, ended within a step), not elsewhere.
    p.write('modules/app.py', 'X = 41\n');
    const served = await build(p);
    expect(served).toMatchObject({ resident: true, upToDate: false, fromCache: false });
    expect(residents().map((r) => r.pid)).toEqual([resident.pid]);

    // `mp stop` while a new one warms up: it ends, its dry run cancelled and cleaned up after.
    expect((await stop()).code).toBe(0);
    await until('the resident mp ending on mp stop', noResident, 3000);
    p.write('modules/app.py', 'X = 42\n');
    expect((await build(p)).resident).toBe(false);
    const next = await warmingUp();
    expect(jsonResult(await stop()).residents).toBe(1);
    await until('the warming resident ending on mp stop', noResident, 3000);
    expect(exists(next.socket)).toBe(false);
    expect(cacheUsers(next.pid)).toEqual([]);
    expect(exists(join(fixtures.cacheDir, 'lock'))).toBe(false);
  }, 240_000);

  it('steps aside when a module it loaded changed: an edited mp.config.ts is seen', async () => {
    const config = (dir: string) =>
      `export default { image: ${JSON.stringify(fixtures.image)}, exportDir: ${JSON.stringify(dir)} };\n`;
    const p = project({ 'mp.config.ts': config('out-a'), 'modules/app.py': 'X = 30\n' });
    rmSync(p.path('mp.config.json'));
    await build(p);
    const resident = await until('a resident mp', oneResident);
    p.write('modules/app.py', 'X = 31\n');
    const served = await build(p);
    expect(served.resident).toBe(true);
    expect(served.firmware).toContain(join(p.dir, 'out-a'));

    // A new mtime for the config module the resident process imported.
    await new Promise((r) => setTimeout(r, 20));
    p.write('mp.config.ts', config('out-b'));
    const edited = await build(p);
    expect(edited.resident).toBe(false);
    expect(edited.firmware).toContain(join(p.dir, 'out-b'));
    await until('the old resident gone', () =>
      residents().some((r) => r.pid === resident.pid) ? undefined : true,
    );
    const next = await until('a new resident mp', oneResident);
    expect(next.pid).not.toBe(resident.pid);

    // `mp clean --all` of another mp cache is none of its business; `mp clean` of its own ends it.
    const otherCache = mkdtempSync(join(tmpdir(), 'mp-e2e-other-cache-'));
    try {
      const other = await runMp(['clean', '--all', '--cwd', p.dir, '--json'], {
        env: { ...fixtures.env, ...env, MP_CACHE_DIR: otherCache },
      });
      expect(other.code, other.output).toBe(0);
      expect(jsonResult(other).residents).toBe(0);
      expect(await answers(next.socket)).toBe(true);
    } finally {
      rmSync(otherCache, { recursive: true, force: true });
    }
    const clean = await runMp(['clean', '--cwd', p.dir, '--json'], { env: { ...fixtures.env, ...env } });
    expect(clean.code, clean.output).toBe(0);
    expect(jsonResult(clean).residents).toBe(1);
    await until('the resident mp ending on mp clean', noResident, 3000);
  }, 240_000);
});
