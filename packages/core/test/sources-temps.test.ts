/**
 * A kill -9 during a fetch leaves hidden temporaries in the shared source cache: a half-written
 * tree `trees/.tmp-*` with its index file, a half-added submodule `.mp-submodule-*` inside a
 * MicroPython tree. The next fetch of that repository, or `mp clean` (sweepCacheTemps), removes
 * those whose process is gone, and never what a live process is writing.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFixtureRepos, type FixtureRepos, UPSTREAM } from '@mp/test-utils';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { sweepCacheTemps } from '../src/sources/cache-housekeeping.ts';
import { GitSourceCache } from '../src/sources/git-cache.ts';
import { acquireLock } from '../src/util/lock.ts';

let repos: FixtureRepos;
let cacheDir: string;
beforeAll(() => {
  repos = createFixtureRepos();
});
afterAll(() => repos.cleanup());
beforeEach(async () => {
  cacheDir = await mkdtemp(join(tmpdir(), 'mp-cache-temps-'));
  return () => rm(cacheDir, { recursive: true, force: true });
});

const deadPid = () => spawnSync(process.execPath, ['-e', '']).pid!;
const cache = () => new GitSourceCache({ cacheDir, mirrors: repos.mirrors });

/** What a process killed while checking out `sha` (and adding a submodule to `tree`) leaves. */
function plantLeftovers(trees: string, sha: string, pid: number, tree?: string): string[] {
  const half = join(trees, `.tmp-${sha.slice(0, 12)}-${pid}-0badc0de`);
  mkdirSync(join(half, 'py'), { recursive: true });
  writeFileSync(join(half, 'py', 'mpconfig.h'), '/* half */');
  writeFileSync(`${half}.index`, 'index');
  const paths = [half, `${half}.index`];
  if (tree) {
    const sub = join(tree, `.mp-submodule-${pid}-0badc0de`);
    mkdirSync(sub);
    writeFileSync(join(sub, 'README.md'), 'half');
    writeFileSync(`${sub}.index`, 'index');
    paths.push(sub, `${sub}.index`);
  }
  return paths;
}

describe('temporaries of killed fetches', () => {
  it('go with the next fetch of the repository; a live process’s stay', async () => {
    const c = cache();
    const first = await c.checkout(await c.resolveRef(UPSTREAM.micropython, 'v1.27.0'));
    const trees = join(c.repoDir(UPSTREAM.micropython), 'trees');
    const next = repos.micropython.tags['v1.28.0']!;
    const dead = plantLeftovers(trees, next, deadPid(), first.dir);
    // Named as before the pid was in it.
    const legacy = join(trees, `.tmp-${next.slice(0, 12)}-deadbeef`);
    mkdirSync(legacy);
    const live = plantLeftovers(trees, next, process.pid);

    const second = await c.checkout(await c.resolveRef(UPSTREAM.micropython, 'v1.28.0'));
    expect(existsSync(join(second.dir, 'py/mpconfig.h'))).toBe(true);
    for (const path of [...dead, legacy]) expect(existsSync(path), path).toBe(false);
    for (const path of live) expect(existsSync(path), path).toBe(true);
    expect(readdirSync(first.dir).filter((n) => n.startsWith('.mp-submodule-'))).toEqual([]);
  });

  it('in a tree go when a submodule is added to it', async () => {
    const c = cache();
    const checkout = await c.checkout(await c.resolveRef(UPSTREAM.micropython, 'v1.28.0'));
    const trees = join(c.repoDir(UPSTREAM.micropython), 'trees');
    const dead = plantLeftovers(trees, checkout.sha, deadPid(), checkout.dir);
    const withSub = await c.ensureSubmodules(checkout, ['lib/axtls']);
    expect(existsSync(join(withSub.dir, 'lib/axtls/README'))).toBe(true);
    for (const path of dead) expect(existsSync(path), path).toBe(false);
  });

  it('go with sweepCacheTemps (mp clean), except in a repository being fetched into now', async () => {
    const c = cache();
    const mp = await c.checkout(await c.resolveRef(UPSTREAM.micropython, 'v1.28.0'));
    const lib = await c.checkout(await c.resolveRef(UPSTREAM.mqtt, 'HEAD'));
    const pid = deadPid();
    const inMp = plantLeftovers(join(c.repoDir(UPSTREAM.micropython), 'trees'), mp.sha, pid, mp.dir);
    const inLib = plantLeftovers(join(c.repoDir(UPSTREAM.mqtt), 'trees'), lib.sha, pid);

    const release = await acquireLock(join(c.repoDir(UPSTREAM.mqtt), 'lock'));
    try {
      const removed = await sweepCacheTemps(cacheDir);
      expect(removed.map((r) => r.path).sort()).toEqual([...inMp].sort());
      expect(removed.find((r) => r.path === inMp[0])?.bytes).toBeGreaterThan(0);
      for (const path of inLib) expect(existsSync(path), path).toBe(true);
    } finally {
      await release();
    }
    await sweepCacheTemps(cacheDir);
    for (const path of inLib) expect(existsSync(path), path).toBe(false);
    // The checkouts themselves are untouched.
    expect(existsSync(join(mp.dir, 'py/mpconfig.h'))).toBe(true);
    expect(existsSync(join(lib.dir, '.mp-checkout.json'))).toBe(true);
  });
});
