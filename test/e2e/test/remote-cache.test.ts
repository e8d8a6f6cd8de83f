/**
 * The remote firmware cache, end to end: a real Turborepo remote-cache server
 * (ducktors/turborepo-remote-cache, local storage) started by the test. Given a project built on one
 * machine (cache folder A), which uploads its firmware, when a second machine (a fresh cache folder B
 * and a fresh copy of the project) builds the same target, then the firmware comes from the remote
 * cache: no container, the very bytes of A's build, `cacheSource: "remote"` in --json. A token the
 * server refuses and a server that is gone are one warning each, and the build is a normal build.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { TempProject } from '@mp/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BuildFixtures,
  buildProject,
  containersCreatedBetween,
  jsonLines,
  jsonResult,
  mpBuild,
  readJson,
  setupBuildFixtures,
} from './build-helpers.ts';

const TOKEN = 'e2e-remote-cache-token-7f3a';
const TEAM = 'mp-e2e';

let fixtures: BuildFixtures;
let server: ChildProcess | undefined;
let url = '';
const temps: string[] = [];

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
}

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((done) => probe.listen(0, '127.0.0.1', done));
  const { port } = probe.address() as { port: number };
  await new Promise((done) => probe.close(done));
  return port;
}

/** The server's bin, run by this Node: `turborepo-remote-cache` with local storage in `storage`. */
async function startServer(storage: string): Promise<void> {
  const pkg = createRequire(import.meta.url).resolve('turborepo-remote-cache/package.json');
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, [join(dirname(pkg), 'dist', 'cli.js')], {
    env: {
      PATH: process.env.PATH,
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: String(port),
      TURBO_TOKEN: TOKEN,
      STORAGE_PROVIDER: 'local',
      STORAGE_PATH: storage,
      STORAGE_PATH_USE_TMP_FOLDER: 'false',
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server = child;
  let log = '';
  child.stdout?.on('data', (chunk) => (log += chunk));
  child.stderr?.on('data', (chunk) => (log += chunk));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the remote cache server exited:\n${log}`);
    const status = await fetch(`${url}/v8/artifacts/status`).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) return;
    if (Date.now() > deadline) throw new Error(`the remote cache server did not come up:\n${log}`);
    await new Promise((done) => setTimeout(done, 100));
  }
}

async function stopServer(): Promise<void> {
  const child = server;
  server = undefined;
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((done) => child.once('exit', done));
  child.kill('SIGKILL');
  await exited;
}

let storage: string;
beforeAll(async () => {
  fixtures = await setupBuildFixtures();
  storage = tempDir('mp-e2e-remote-store-');
  await startServer(storage);
}, 600_000);
afterAll(async () => {
  await stopServer();
  fixtures?.cleanup();
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

/** A project whose config names the server and team; the token comes from the environment. */
function remoteProject(): TempProject {
  return buildProject(
    fixtures,
    { 'modules/app.py': 'GREETING = "shared between machines"\n' },
    { cache: { remote: { url, team: TEAM } } },
  );
}

/** `mp build --json` as a machine of its own: its own cache folder. */
async function buildOn(cacheDir: string, project: TempProject, token = TOKEN) {
  const since = new Date();
  const run = await mpBuild(fixtures, project, ['--json'], {
    env: { MP_CACHE_DIR: cacheDir, MP_REMOTE_CACHE_TOKEN: token },
  });
  expect(run.code, run.output).toBe(0);
  const result = jsonResult(run);
  const warnings = jsonLines(run.stdout)
    .filter((e) => e.type === 'log' && e.level === 'warn')
    .map((e) => String(e.message));
  return { run, result, warnings, containers: containersCreatedBetween(project, since, new Date()) };
}

describe('the remote firmware cache (a real Turborepo remote-cache server)', () => {
  // The first machine's build (its project folder goes when its test ends: the bytes are kept).
  let first: Awaited<ReturnType<typeof buildOn>>;
  let firstFirmware: Buffer;
  let key: string;
  let firstBuiltAt: string;

  it('a build on one machine misses, compiles and uploads its firmware', async () => {
    first = await buildOn(fixtures.cacheDir, remoteProject());
    expect(first.result).toMatchObject({ fromCache: false, cacheSource: null, upToDate: false });
    expect(first.containers.length).toBeGreaterThan(0);
    expect(first.warnings).toEqual([]);
    expect(first.run.stdout).toContain(`"title":"Asking the remote firmware cache ${url}"`);
    expect(first.run.stdout).toContain(`"title":"Uploading to the remote firmware cache ${url}"`);
    firstFirmware = readFileSync(first.result.firmware);
    const sidecar = readJson(first.result.sidecar);
    key = sidecar.firmwareKey;
    firstBuiltAt = sidecar.builtAt;
    // The token is in no output, sidecar or log.
    expect(first.run.output).not.toContain(TOKEN);
    expect(readFileSync(first.result.sidecar, 'utf8')).not.toContain(TOKEN);
    if (existsSync(first.result.logFile))
      expect(readFileSync(first.result.logFile, 'utf8')).not.toContain(TOKEN);
    // The server keeps it under the team, by the firmware key.
    expect(existsSync(join(storage, TEAM, key))).toBe(true);
    const stored = await fetch(`${url}/v8/artifacts/${key}?slug=${TEAM}`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(stored.status).toBe(200);
    expect((await stored.arrayBuffer()).byteLength).toBeGreaterThan(100);
  }, 240_000);

  it('a second machine (fresh cache folder, fresh project) gets it from the remote: no container, same bytes', async () => {
    const cacheB = tempDir('mp-e2e-cache-b-');
    const projectB = remoteProject();
    const second = await buildOn(cacheB, projectB);
    expect(second.result).toMatchObject({
      fromCache: true,
      cacheSource: 'remote',
      upToDate: false,
      sha256: first.result.sha256,
    });
    expect(second.containers).toEqual([]);
    expect(second.warnings).toEqual([]);
    expect(readFileSync(second.result.firmware).equals(firstFirmware)).toBe(true);
    expect(second.run.stdout).toMatch(
      /"title":"From the remote firmware cache: built \S+ from the same inputs"/,
    );
    expect(second.run.stdout).toContain(
      '{"type":"step:skip","id":"compile","reason":"from the firmware cache"}',
    );
    expect(readJson(second.result.sidecar).fromCache).toEqual({
      builtAt: firstBuiltAt,
      durationMs: expect.any(Number),
    });
    // Kept in B's own cache: a third project on machine B is a local hit, without asking the server.
    expect(existsSync(join(cacheB, 'firmware', key, 'entry.json'))).toBe(true);
    const third = await buildOn(cacheB, remoteProject());
    expect(third.result).toMatchObject({
      fromCache: true,
      cacheSource: 'local',
      sha256: first.result.sha256,
    });
    expect(third.run.stdout).not.toContain('Asking the remote firmware cache');

    // The terminal view says where it came from too.
    const plain = await mpBuild(fixtures, remoteProject(), [], {
      env: { MP_CACHE_DIR: tempDir('mp-e2e-cache-e-'), MP_REMOTE_CACHE_TOKEN: TOKEN },
    });
    expect(plain.code, plain.output).toBe(0);
    expect(plain.stdout).toMatch(
      /✔ From the remote firmware cache: export\/\S+\.bin \(built .* from the same inputs; nothing compiled, no container\)/,
    );
  }, 240_000);

  it('a token the server refuses is a warning (the token not shown), and the build compiles', async () => {
    const wrong = 'not-the-token-91c2';
    const refused = await buildOn(tempDir('mp-e2e-cache-c-'), remoteProject(), wrong);
    expect(refused.result).toMatchObject({
      fromCache: false,
      cacheSource: null,
      sha256: first.result.sha256,
    });
    expect(refused.containers.length).toBeGreaterThan(0);
    expect(refused.warnings).toEqual([
      `The remote firmware cache ${url} refused the token (HTTP 401: Invalid authorization token); set MP_REMOTE_CACHE_TOKEN or cache.remote.token to one it accepts; building without it.`,
    ]);
    expect(refused.run.output).not.toContain(wrong);
    // Nor is the upload tried with it.
    expect(refused.run.stdout).not.toContain('Uploading to the remote firmware cache');
  }, 240_000);

  it('a server that is gone is a warning naming it, and the build compiles', async () => {
    await stopServer();
    const gone = await buildOn(tempDir('mp-e2e-cache-d-'), remoteProject());
    expect(gone.result).toMatchObject({ fromCache: false, cacheSource: null, sha256: first.result.sha256 });
    expect(gone.containers.length).toBeGreaterThan(0);
    expect(gone.warnings).toEqual([
      `The remote firmware cache ${url} is unreachable (ECONNREFUSED); building without it.`,
    ]);
    expect(gone.run.stdout).not.toContain('Uploading to the remote firmware cache');
  }, 240_000);
});
