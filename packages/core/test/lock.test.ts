/**
 * The cross-process lock (util/lock.ts) that keeps two builds of a board, two fetches of a
 * repository and `mp clean` apart: one holder at a time, across processes, even when owners are
 * killed at the worst moment.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CancelledError } from '../src/errors.ts';
import { acquireLock, tryAcquireLock } from '../src/util/lock.ts';

const LOCK_MODULE = new URL('../src/util/lock.ts', import.meta.url).href;

/** A node process running `body`, an ES module with `acquireLock` and `tryAcquireLock` in scope. */
function lockChild(body: string): ChildProcess {
  const script = `const { acquireLock, tryAcquireLock } = await import(${JSON.stringify(LOCK_MODULE)});\n${body}`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let errors = '';
  child.stderr!.on('data', (chunk) => {
    errors += String(chunk);
  });
  stderrOf.set(child, () => errors);
  return child;
}

const stderrOf = new WeakMap<ChildProcess, () => string>();

/** Waits for a child that must succeed; its stderr is the message if it does not. */
async function succeeded(child: ChildProcess): Promise<void> {
  const code = await exited(child);
  expect(code, stderrOf.get(child)?.()).toBe(0);
}

/** The child's first line on stdout (`held` once it holds the lock). */
async function firstLine(child: ChildProcess): Promise<string> {
  let text = '';
  for await (const chunk of child.stdout!) {
    text += String(chunk);
    if (text.includes('\n')) return text.split('\n')[0]!;
  }
  throw new Error(`the child exited before saying anything:\n${stderrOf.get(child)?.()}`);
}

async function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
  return child.exitCode;
}

/** A process that holds the lock until killed. */
async function holder(lockDir: string): Promise<ChildProcess> {
  const child = lockChild(
    `await acquireLock(${JSON.stringify(lockDir)}); console.log('held'); setInterval(() => {}, 1000);`,
  );
  expect(await firstLine(child)).toBe('held');
  return child;
}

async function killed(child: ChildProcess): Promise<void> {
  child.kill('SIGKILL');
  await exited(child);
}

/** Critical sections logged as `+ id` … `- id` lines; throws if two overlap. */
function assertNoOverlap(logFile: string, expected: number): void {
  const lines = readFileSync(logFile, 'utf8').trim().split('\n');
  expect(lines.length).toBe(expected * 2);
  for (let i = 0; i < lines.length; i += 2) {
    const [enter, leave] = [lines[i]!, lines[i + 1]!];
    expect(enter.startsWith('+ '), `line ${i + 1}: ${enter}`).toBe(true);
    expect(leave, `two holders at once after "${enter}"`).toBe(`- ${enter.slice(2)}`);
  }
}

const children: ChildProcess[] = [];
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mp-lock-'));
});
afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

describe('the lock', () => {
  it('is exclusive within a process and free again after release', async () => {
    const lock = join(dir, 'a', 'lock');
    const release = await acquireLock(lock);
    expect('heldBy' in (await tryAcquireLock(lock))).toBe(true);
    await release();
    const again = await tryAcquireLock(lock);
    expect('release' in again).toBe(true);
    if ('release' in again) await again.release();
    // Nothing is left behind once released.
    expect(existsSync(lock)).toBe(false);
  });

  it('names the process that holds it, for "Waiting for …"', async () => {
    const lock = join(dir, 'lock');
    const child = await holder(lock);
    const attempt = await tryAcquireLock(lock);
    expect(attempt).toEqual({ heldBy: expect.stringContaining(`pid ${child.pid}`) });
    const waitedFor: string[] = [];
    const waiting = acquireLock(lock, { pollMs: 10, onWait: (owner) => waitedFor.push(owner) });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(waitedFor).toEqual([expect.stringContaining(`pid ${child.pid}`)]);
    await killed(child);
    await (await waiting)();
  });

  it('stops waiting when cancelled', async () => {
    const lock = join(dir, 'lock');
    const release = await acquireLock(lock);
    const controller = new AbortController();
    const waiting = acquireLock(lock, { signal: controller.signal, pollMs: 10 });
    setTimeout(() => controller.abort(), 50);
    await expect(waiting).rejects.toBeInstanceOf(CancelledError);
    await release();
  });

  it('is taken over at once when its owner was killed (SIGKILL)', async () => {
    const lock = join(dir, 'lock');
    const child = await holder(lock);
    await killed(child);
    const release = await acquireLock(lock, { signal: AbortSignal.timeout(5000), pollMs: 10 });
    await release();
  });

  it('is not stuck on a lock folder whose owner never got written (killed right after creating it)', async () => {
    const lock = join(dir, 'lock');
    mkdirSync(lock);
    const release = await acquireLock(lock, { signal: AbortSignal.timeout(5000), pollMs: 10 });
    await release();
  });

  it('takes over an owner file of the earlier format whose process is gone, and waits for a live one', async () => {
    const lock = join(dir, 'lock');
    mkdirSync(lock);
    const gone = spawnSync(process.execPath, ['-e', '']).pid!;
    writeFileSync(join(lock, 'owner'), `${hostname()} ${gone}\n`);
    const release = await acquireLock(lock, { signal: AbortSignal.timeout(5000), pollMs: 10 });
    await release();
    mkdirSync(lock, { recursive: true });
    writeFileSync(join(lock, 'owner'), `${hostname()} ${process.ppid}\n`);
    expect(await tryAcquireLock(lock)).toEqual({ heldBy: expect.stringContaining(`pid ${process.ppid}`) });
  });

  it('is not released by a holder whose lock was removed and taken by another meanwhile (mp clean)', async () => {
    const lock = join(dir, 'build', 'lock');
    const cleaner = await acquireLock(lock);
    // mp clean removes the build folder, lock included, while it holds the lock ...
    await rm(join(dir, 'build'), { recursive: true, force: true });
    // ... a build that was waiting takes the lock ...
    const build = await acquireLock(lock, { signal: AbortSignal.timeout(5000), pollMs: 10 });
    // ... and clean's release must leave the build's lock alone.
    await cleaner();
    expect('heldBy' in (await tryAcquireLock(lock))).toBe(true);
    await build();
    const free = await tryAcquireLock(lock);
    expect('release' in free).toBe(true);
    if ('release' in free) await free.release();
  });
});

describe('the lock under stress', { timeout: 60_000 }, () => {
  const contender = (lockDir: string, logFile: string, rounds: number, goFile?: string) =>
    lockChild(`
      const { appendFileSync, existsSync } = await import('node:fs');
      const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
      console.log('ready');
      ${goFile ? `while (!existsSync(${JSON.stringify(goFile)})) await sleep(1);` : ''}
      for (let i = 0; i < ${rounds}; i++) {
        const release = await acquireLock(${JSON.stringify(lockDir)}, { pollMs: 2 });
        appendFileSync(${JSON.stringify(logFile)}, '+ ' + process.pid + ' ' + i + '\\n');
        await sleep(Math.random() * 3);
        appendFileSync(${JSON.stringify(logFile)}, '- ' + process.pid + ' ' + i + '\\n');
        await release();
      }
    `);

  it('8 processes taking it 20 times each are never inside at the same time', async () => {
    const lock = join(dir, 'lock');
    const log = join(dir, 'log');
    const go = join(dir, 'go');
    const all = Array.from({ length: 8 }, () => contender(lock, log, 20, go));
    for (const child of all) expect(await firstLine(child)).toBe('ready');
    writeFileSync(go, '');
    for (const child of all) await succeeded(child);
    assertNoOverlap(log, 8 * 20);
    expect(existsSync(lock)).toBe(false);
  });

  it('goes on, one holder at a time, when holders are killed while others wait', async () => {
    const lock = join(dir, 'lock');
    const log = join(dir, 'log');
    const go = join(dir, 'go');
    const all = Array.from({ length: 8 }, () => contender(lock, log, 20, go));
    for (const child of all) expect(await firstLine(child)).toBe('ready');
    writeFileSync(go, '');
    const victims = new Set<number>();
    while (victims.size < 4 && all.some((c) => c.exitCode === null)) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      const last = (existsSync(log) ? readFileSync(log, 'utf8') : '').trim().split('\n').pop() ?? '';
      const pid = Number(last.split(' ')[1]);
      const child = all.find((c) => c.pid === pid && c.exitCode === null);
      if (!last.startsWith('+ ') || !child || victims.has(pid)) continue;
      // Logged before the kill: whoever enters after this line may do so because the holder died.
      appendFileSync(log, `k ${pid}\n`);
      victims.add(pid);
      await killed(child);
    }
    for (const child of all) if (!victims.has(child.pid!)) await succeeded(child);
    let inside: string | undefined;
    // A holder marked for killing may still leave before it dies: `+ X`, `k X`, `- X` is fine.
    let dying: string | undefined;
    for (const line of readFileSync(log, 'utf8').trim().split('\n')) {
      const [what, pid] = line.split(' ');
      if (what === '+') {
        expect(inside, `${pid} entered while ${inside} was inside`).toBeUndefined();
        inside = pid;
        dying = undefined;
      } else if (what === '-') {
        if (inside === undefined && dying === pid) dying = undefined;
        else expect(inside, `${pid} left while ${inside} was inside`).toBe(pid);
        inside = undefined;
      } else if (inside === pid) {
        inside = undefined;
        dying = pid;
      }
    }
    expect(victims.size).toBeGreaterThan(0);
  });

  it('has one winner when 8 processes find its owner killed at the same moment', async () => {
    for (let round = 0; round < 3; round++) {
      const lock = join(dir, `lock-${round}`);
      const log = join(dir, `log-${round}`);
      const go = join(dir, `go-${round}`);
      const owner = await holder(lock);
      const all = Array.from({ length: 8 }, () => contender(lock, log, 1, go));
      for (const child of all) expect(await firstLine(child)).toBe('ready');
      await killed(owner);
      writeFileSync(go, '');
      for (const child of all) await succeeded(child);
      assertNoOverlap(log, 8);
    }
  });
});
