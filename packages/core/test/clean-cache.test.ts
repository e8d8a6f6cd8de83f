/**
 * `mp clean` and builds running meanwhile: clean takes the locks builds take and removes nothing
 * a running build uses. `--all` refuses while a build of any project is registered as a user of
 * the cache or a fetch holds a repository's lock, naming the project and the pid; a project's
 * clean refuses while a build of one of its boards holds that board's lock (its log included).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MpError } from '../src/errors.ts';
import { cleanProject } from '../src/firmware/clean.ts';
import type { Project } from '../src/project.ts';
import { cacheLockDir, listCacheUsers, registerCacheUse } from '../src/sources/cache-housekeeping.ts';
import { acquireLock, hostTag } from '../src/util/lock.ts';

const GIT_CACHE = new URL('../src/sources/cache-housekeeping.ts', import.meta.url).href;
const LOCK = new URL('../src/util/lock.ts', import.meta.url).href;

const children: ChildProcess[] = [];
let root: string;
let cacheDir: string;
let project: Project;
let env: NodeJS.ProcessEnv;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'mp-clean-'));
  cacheDir = join(root, 'cache');
  env = { MP_CACHE_DIR: cacheDir };
  const projectDir = join(root, 'project');
  project = {
    config: { projectDir, exportDir: join(projectDir, 'export') },
    stateDir: join(projectDir, '.mp'),
  } as unknown as Project;
  // The Docker part of clean is not what these tests are about: no engine, volumes unchecked.
  vi.stubEnv('DOCKER_HOST', `unix://${join(root, 'no-docker.sock')}`);
  // A project that was built, and a cache with a repository and one of its trees.
  write(join(projectDir, '.mp/build/esp8266-d1mini/abc123/port/firmware.bin'), 'fw');
  write(join(projectDir, '.mp/build/esp8266-d1mini/build.log'), 'log');
  write(join(projectDir, 'export/ESP8266-micropython-v1.28.0.bin'), 'fw');
  write(join(cacheDir, 'git/micropython-0123456789/repo.git/HEAD'), 'ref: refs/heads/master\n');
  write(join(cacheDir, 'git/micropython-0123456789/trees/0123/py/mpconfig.h'), '/* */');
  write(join(cacheDir, 'devices/esp8266.json'), '{}');
});
afterEach(async () => {
  vi.unstubAllEnvs();
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  await rm(root, { recursive: true, force: true });
});

function write(path: string, content: string): void {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, content);
}

/** Another mp process: runs `body` (an ES module) and stays alive once it printed its first line. */
async function otherProcess(body: string): Promise<ChildProcess> {
  const script = `const { registerCacheUse } = await import(${JSON.stringify(GIT_CACHE)});
    const { acquireLock } = await import(${JSON.stringify(LOCK)});
    ${body}
    console.log('ready');
    setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let errors = '';
  child.stderr!.on('data', (chunk) => {
    errors += String(chunk);
  });
  for await (const chunk of child.stdout!) if (String(chunk).includes('ready')) return child;
  throw new Error(`the other process failed:\n${errors}`);
}

async function kill(child: ChildProcess): Promise<void> {
  child.kill('SIGKILL');
  if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
}

async function refused(promise: Promise<unknown>): Promise<MpError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(MpError);
  return error as MpError;
}

const cacheIntact = () =>
  existsSync(join(cacheDir, 'git/micropython-0123456789/trees/0123/py/mpconfig.h')) &&
  existsSync(join(cacheDir, 'git/micropython-0123456789/repo.git/HEAD'));
const buildIntact = () => existsSync(join(project.stateDir, 'build/esp8266-d1mini/build.log'));

describe('mp clean --all while builds use the cache', () => {
  it('refuses while a build of another project is registered, naming project and pid; removes nothing', async () => {
    const build = await otherProcess(
      `await registerCacheUse(${JSON.stringify(cacheDir)}, { project: '/projects/weather-station' });`,
    );
    const error = await refused(cleanProject({ project, all: true, env }));
    expect(error.code).toBe('CACHE_IN_USE');
    expect(error.message).toContain('/projects/weather-station');
    expect(error.message).toContain(`pid ${build.pid}`);
    expect(error.message).toContain('nothing was removed');
    expect(error.hint).toContain('mp clean --all');
    expect(cacheIntact()).toBe(true);
    expect(buildIntact()).toBe(true);

    // Once that build is gone (even killed), its registration no longer counts.
    await kill(build);
    const result = await cleanProject({ project, all: true, env });
    expect(result.removed.map((r) => r.what)).toContain(cacheDir);
    expect(existsSync(cacheDir)).toBe(false);
    expect(existsSync(join(project.stateDir, 'build/esp8266-d1mini'))).toBe(false);
    expect(existsSync(join(project.config.exportDir, 'ESP8266-micropython-v1.28.0.bin'))).toBe(true);
  });

  it('refuses while a fetch holds a repository’s lock (a process that did not register)', async () => {
    const repoLock = join(cacheDir, 'git/micropython-0123456789/lock');
    const fetch = await otherProcess(`await acquireLock(${JSON.stringify(repoLock)});`);
    const error = await refused(cleanProject({ project, all: true, env }));
    expect(error.code).toBe('CACHE_IN_USE');
    expect(error.message).toContain('micropython-0123456789');
    expect(error.message).toContain(`pid ${fetch.pid}`);
    expect(cacheIntact()).toBe(true);
    expect(buildIntact()).toBe(true);
  });

  it('makes a build that registers meanwhile wait; registered, it makes clean --all refuse', async () => {
    // mp clean --all holding the cache lock, as while it removes the cache.
    const release = await acquireLock(cacheLockDir(cacheDir));
    const waitedFor: string[] = [];
    let registered = false;
    const registering = registerCacheUse(cacheDir, {
      project: '/projects/b',
      onWait: (owner) => waitedFor.push(owner),
    }).then((done) => {
      registered = true;
      return done;
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(registered).toBe(false);
    expect(waitedFor).toEqual([expect.stringContaining(`pid ${process.pid}`)]);
    await release();
    const done = await registering;
    expect((await listCacheUsers(cacheDir)).map((u) => u.project)).toEqual(['/projects/b']);
    expect((await refused(cleanProject({ project, all: true, env }))).code).toBe('CACHE_IN_USE');
    await done();
    expect(await listCacheUsers(cacheDir)).toEqual([]);
  });

  it('forgets the registrations of processes that are gone', async () => {
    const build = await otherProcess(
      `await registerCacheUse(${JSON.stringify(cacheDir)}, { project: '/p' });`,
    );
    expect((await listCacheUsers(cacheDir)).map((u) => u.pid)).toEqual([build.pid]);
    await kill(build);
    expect(await listCacheUsers(cacheDir)).toEqual([]);
    expect(readdirSync(join(cacheDir, 'users'))).toEqual([]);
  });
});

describe('mp clean while a build of the project runs', () => {
  it('refuses while a build holds the board’s lock (it may be fetching: its log stays)', async () => {
    const lock = join(project.stateDir, 'build/esp8266-d1mini/lock');
    const build = await otherProcess(`await acquireLock(${JSON.stringify(lock)});`);
    const error = await refused(cleanProject({ project, env }));
    expect(error.code).toBe('BUILD_RUNNING');
    expect(error.message).toContain(`pid ${build.pid}`);
    expect(buildIntact()).toBe(true);
  });

  it('removes the board folders, lock folder last; the next build takes the lock as usual', async () => {
    const lock = join(project.stateDir, 'build/esp8266-d1mini/lock');
    const result = await cleanProject({ project, env });
    expect(result.removed.map((r) => r.what)).toContain(join(project.stateDir, 'build/esp8266-d1mini'));
    expect(existsSync(join(project.stateDir, 'build/esp8266-d1mini'))).toBe(false);
    // The next build takes the lock as usual.
    const release = await acquireLock(lock, { signal: AbortSignal.timeout(5000) });
    await release();
  });

  it('removes the temporaries killed builds left in export/ and in the cache', async () => {
    const gone = spawnSync(process.execPath, ['-e', '']).pid!;
    const exportTemp = join(project.config.exportDir, `.fw.bin.${hostTag()}-${gone}.0badc0de.tmp`);
    const treeTemp = join(cacheDir, `git/micropython-0123456789/trees/.tmp-0123456789ab-${gone}-0badc0de`);
    write(exportTemp, 'half');
    write(join(treeTemp, 'py/mpconfig.h'), 'half');
    const result = await cleanProject({ project, env });
    expect(existsSync(exportTemp)).toBe(false);
    expect(existsSync(treeTemp)).toBe(false);
    expect(result.removed.map((r) => r.what)).toEqual(expect.arrayContaining([exportTemp, treeTemp]));
    expect(cacheIntact()).toBe(true);
  });
});
