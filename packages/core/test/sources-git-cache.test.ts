import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, GitSourceCache, type LogRecord, MpError } from '@mp/core';
import { createFixtureRepos, type FixtureRepos, UPSTREAM } from '@mp/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gitComplaint } from '../src/sources/git.ts';

let repos: FixtureRepos;
let cacheDir: string;

beforeAll(async () => {
  repos = createFixtureRepos();
  cacheDir = await mkdtemp(join(tmpdir(), 'mp-cache-'));
});
afterAll(async () => {
  repos.cleanup();
  await rm(cacheDir, { recursive: true, force: true });
});

function cache(options: Partial<ConstructorParameters<typeof GitSourceCache>[0]> = {}) {
  return new GitSourceCache({ cacheDir, mirrors: repos.mirrors, ...options });
}

async function thrown(promise: Promise<unknown>): Promise<MpError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof MpError) return error;
    throw error;
  }
  throw new Error('expected an MpError');
}

describe('newest stable MicroPython tag', () => {
  it('is found with ls-remote through the mirror: v1.28.0, not the newer v1.29.0-preview', async () => {
    const ref = await cache().resolveNewestStable(UPSTREAM.micropython);
    expect(ref).toMatchObject({
      kind: 'tag',
      name: 'v1.28.0',
      sha: repos.micropython.tags['v1.28.0'],
      from: 'remote',
    });
    expect(ref.url).toBe(UPSTREAM.micropython);
    expect(ref.fetchUrl).toBe(repos.micropython.url);
  });

  it('is answered from the cache within the TTL, from the remote after it or with refresh', async () => {
    let now = Date.now();
    const clock = () => now;
    await cache({ now: clock }).resolveNewestStable(UPSTREAM.micropython);
    expect((await cache({ now: clock }).resolveNewestStable(UPSTREAM.micropython)).from).toBe('cache');
    expect((await cache({ now: clock, refresh: true }).resolveNewestStable(UPSTREAM.micropython)).from).toBe(
      'remote',
    );
    now += 11 * 60 * 1000;
    expect((await cache({ now: clock }).resolveNewestStable(UPSTREAM.micropython)).from).toBe('remote');
  });

  it('falls back to the last answer, with a warning, when the remote cannot be reached', async () => {
    const records: LogRecord[] = [];
    const logger = createLogger((r) => records.push(r));
    await cache().resolveNewestStable(UPSTREAM.micropython);
    const moved = `${repos.micropython.path}.away`;
    renameSync(repos.micropython.path, moved);
    try {
      const ref = await cache({ refresh: true }).resolveNewestStable(UPSTREAM.micropython, {
        logger,
        label: 'MicroPython',
      });
      expect(ref).toMatchObject({ name: 'v1.28.0', from: 'stale-cache' });
      expect(records.some((r) => r.level === 'warn' && /cannot be reached/.test(r.message))).toBe(true);
    } finally {
      renameSync(moved, repos.micropython.path);
    }
  });
});

describe('resolving refs', () => {
  it('resolves tags, branches, HEAD, full and short shas', async () => {
    const c = cache({ refresh: true });
    expect(await c.resolveRef(UPSTREAM.micropython, 'v1.27.0')).toMatchObject({
      kind: 'tag',
      sha: repos.micropython.tags['v1.27.0'],
    });
    expect(await c.resolveRef(UPSTREAM.micropython, 'refs/tags/v1.29.0-preview')).toMatchObject({
      kind: 'tag',
      name: 'v1.29.0-preview',
    });
    expect(await c.resolveRef(UPSTREAM.micropython, 'master')).toMatchObject({
      kind: 'branch',
      sha: repos.micropython.head,
    });
    expect(await c.resolveRef(UPSTREAM.mqtt, 'HEAD')).toMatchObject({ kind: 'branch', sha: repos.mqtt.head });
    const sha = repos.micropython.tags['v1.27.0']!;
    expect(await c.resolveRef(UPSTREAM.micropython, sha)).toMatchObject({ kind: 'sha', sha, from: 'cache' });
    expect(await c.resolveRef(UPSTREAM.micropython, sha.slice(0, 9))).toMatchObject({ kind: 'sha', sha });
  });

  it('trusts a cached tag without asking the remote again', async () => {
    await cache({ refresh: true }).resolveRef(UPSTREAM.micropython, 'v1.27.0');
    const ref = await cache({ mirrors: { [UPSTREAM.micropython]: 'file:///nonexistent/repo' } }).resolveRef(
      UPSTREAM.micropython,
      'v1.27.0',
    );
    expect(ref).toMatchObject({ from: 'cache', sha: repos.micropython.tags['v1.27.0'] });
  });

  it('names an unknown ref, the repository and the newest releases', async () => {
    const error = await thrown(cache().resolveRef(UPSTREAM.micropython, 'v9.9.9', { label: 'MicroPython' }));
    expect(error.code).toBe('UNKNOWN_REF');
    expect(error.message).toContain('v9.9.9');
    expect(error.message).toContain(repos.micropython.url);
    expect(error.hint).toContain('v1.28.0, v1.27.0');
    expect(error.exitCode).toBe(2);
  });

  it('says a repository is unreachable and how to use a mirror', async () => {
    const url = 'https://example.invalid/nobody/nothing.git';
    const error = await thrown(
      cache({ mirrors: { [url]: 'file:///nonexistent/nothing.git' } }).resolveNewestStable(url, {
        label: 'MicroPython',
      }),
    );
    expect(error.code).toBe('SOURCE_UNREACHABLE');
    expect(error.message).toContain('file:///nonexistent/nothing.git');
    expect(error.hint).toContain('MP_GIT_MIRRORS');
  });
});

describe('checkouts', () => {
  it('fetches a tag shallowly into a plain tree, reused afterwards', async () => {
    const c = cache();
    const ref = await c.resolveRef(UPSTREAM.micropython, 'v1.28.0');
    const checkout = await c.checkout(ref);
    expect(checkout.dir).toBe(join(c.repoDir(UPSTREAM.micropython), 'trees', ref.sha));
    expect(readFileSync(join(checkout.dir, 'py/mpconfig.h'), 'utf8')).toContain('MICROPY_VERSION_MINOR 28');
    expect(existsSync(join(checkout.dir, '.git'))).toBe(false);
    // Shallow: only the one commit is in the cache's repository.
    const { execFileSync } = await import('node:child_process');
    const gitDir = join(c.repoDir(UPSTREAM.micropython), 'repo.git');
    expect(
      execFileSync('git', ['--git-dir', gitDir, 'rev-list', '--count', ref.sha], { encoding: 'utf8' }).trim(),
    ).toBe('1');
    const again = await c.checkout(ref);
    expect(again.dir).toBe(checkout.dir);
  });

  it('keeps what a fetch brings in one pack, never as loose objects a killed fetch could leave half-written', async () => {
    const c = new GitSourceCache({
      cacheDir: await mkdtemp(join(tmpdir(), 'mp-cache-pack-')),
      mirrors: repos.mirrors,
    });
    const ref = await c.resolveRef(UPSTREAM.micropython, 'v1.28.0');
    await c.checkout(ref);
    const objects = join(c.repoDir(UPSTREAM.micropython), 'repo.git', 'objects');
    const loose = readdirSync(objects).filter((d) => /^[0-9a-f]{2}$/.test(d));
    expect(loose.flatMap((d) => readdirSync(join(objects, d)))).toEqual([]);
    expect(readdirSync(join(objects, 'pack')).some((f) => f.endsWith('.pack'))).toBe(true);
  });

  it('fetches a repository again when the commit is there but objects it needs are not', async () => {
    const c = new GitSourceCache({
      cacheDir: await mkdtemp(join(tmpdir(), 'mp-cache-broken-')),
      mirrors: repos.mirrors,
    });
    const ref = await c.resolveRef(UPSTREAM.micropython, 'v1.28.0');
    const first = await c.checkout(ref);
    // What a fetch killed while it unpacked loose objects left: the commit, without its files.
    const gitDir = join(c.repoDir(UPSTREAM.micropython), 'repo.git');
    const commit = execFileSync('git', ['--git-dir', gitDir, 'cat-file', 'commit', ref.sha]);
    rmSync(join(gitDir, 'objects', 'pack'), { recursive: true, force: true });
    execFileSync('git', ['--git-dir', gitDir, 'hash-object', '-t', 'commit', '-w', '--stdin'], {
      input: commit,
    });
    rmSync(first.dir, { recursive: true, force: true });
    expect(() =>
      execFileSync('git', ['--git-dir', gitDir, 'ls-tree', '-r', ref.sha], { stdio: 'pipe' }),
    ).toThrow();

    const lines: string[] = [];
    const again = await c.checkout(ref, { onLine: (line) => lines.push(line) });
    expect(readFileSync(join(again.dir, 'py/mpconfig.h'), 'utf8')).toContain('MICROPY_VERSION_MINOR 28');
    expect(lines.join('\n')).toContain('lacks objects');
  });

  it('is safe when several builds fetch the same and different commits at once', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mp-cache-race-'));
    try {
      const caches = [0, 1, 2, 3].map(() => new GitSourceCache({ cacheDir: dir, mirrors: repos.mirrors }));
      const refs = await Promise.all(
        ['v1.27.0', 'v1.28.0', 'v1.27.0', 'v1.28.0'].map((tag, i) =>
          caches[i]!.resolveRef(UPSTREAM.micropython, tag),
        ),
      );
      const checkouts = await Promise.all(refs.map((ref, i) => caches[i]!.checkout(ref)));
      expect(checkouts[0]!.dir).toBe(checkouts[2]!.dir);
      expect(checkouts[1]!.dir).toBe(checkouts[3]!.dir);
      for (const c of checkouts) expect(existsSync(join(c.dir, 'ports/esp8266/Makefile'))).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('adds the submodules a port needs, at the pinned commits, through the mirrors', async () => {
    const c = cache();
    const checkout = await c.checkout(await c.resolveRef(UPSTREAM.micropython, 'v1.28.0'));
    const withSubs = await c.ensureSubmodules(checkout, ['lib/micropython-lib', 'lib/axtls']);
    expect(withSubs.submodules['lib/micropython-lib']).toEqual({
      url: UPSTREAM.micropythonLib,
      sha: repos.micropythonLib.head,
    });
    expect(existsSync(join(checkout.dir, 'lib/micropython-lib/README.md'))).toBe(true);
    expect(existsSync(join(checkout.dir, 'lib/axtls/README'))).toBe(true);
    // Not asked for, not fetched.
    expect(existsSync(join(checkout.dir, 'lib/berkeley-db-1.xx/README'))).toBe(false);
    const record = JSON.parse(readFileSync(join(checkout.dir, '.mp-checkout.json'), 'utf8'));
    expect(Object.keys(record.submodules).sort()).toEqual(['lib/axtls', 'lib/micropython-lib']);
    // A fresh checkout object (another build) sees them as present.
    const again = await c.checkout(await c.resolveRef(UPSTREAM.micropython, 'v1.28.0'));
    expect(Object.keys(again.submodules).sort()).toEqual(['lib/axtls', 'lib/micropython-lib']);
  });

  it('refuses a path that is not a submodule', async () => {
    const c = cache();
    const checkout = await c.checkout(await c.resolveRef(UPSTREAM.micropython, 'v1.28.0'));
    const error = await thrown(c.ensureSubmodules(checkout, ['lib/nothing-here'], { label: 'MicroPython' }));
    expect(error.code).toBe('SUBMODULE_UNKNOWN');
    expect(error.message).toContain('lib/nothing-here');
  });

  it('fetches a library branch and follows it when it moves (after the TTL or with refresh)', async () => {
    const c = cache({ refresh: true });
    const first = await c.resolveRef(UPSTREAM.mqtt, 'master');
    const moved = repos.commit(
      repos.mqtt,
      { 'mqtt_as/__init__.py': '# changed\nVERSION = (0, 9, 0)\n' },
      'move master',
    );
    const second = await c.resolveRef(UPSTREAM.mqtt, 'master');
    expect(second.sha).toBe(moved);
    expect(second.sha).not.toBe(first.sha);
    const checkout = await c.checkout(second);
    expect(readFileSync(join(checkout.dir, 'mqtt_as/__init__.py'), 'utf8')).toContain('0, 9, 0');
  });
});

describe('what git said', () => {
  it('keeps the lines that say what happened, not the last line of its advice', () => {
    const stderr = [
      "fatal: '/srv/git/micropython' does not appear to be a git repository",
      'fatal: Could not read from remote repository.',
      '',
      'Please make sure you have the correct access rights',
      'and the repository exists.',
    ].join('\n');
    expect(gitComplaint(stderr)).toBe(
      "'/srv/git/micropython' does not appear to be a git repository; Could not read from remote repository.",
    );
    expect(
      gitComplaint('Receiving objects:  10% (1/10)\rReceiving objects: 100% (10/10)\nsomething odd\n'),
    ).toBe('something odd');
  });
});
