/**
 * The firmware cache: every build's firmware is kept in mp's cache under a hash of its inputs. Given
 * a project built, edited and built again, when I go back to an earlier state (revert the edit,
 * switch the config back), then `mp build` answers from the cache, says so, starts no container and
 * exports the very bytes of the earlier build; and the cache stays within `cache.maxSize`.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TempProject } from '@mp/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BuildFixtures,
  buildProject,
  containersCreatedBetween,
  jsonResult,
  mpBuild,
  readJson,
  setupBuildFixtures,
} from './build-helpers.ts';

let fixtures: BuildFixtures;
beforeAll(async () => {
  fixtures = await setupBuildFixtures();
}, 600_000);
afterAll(() => fixtures?.cleanup());

const V1 = 'GREETING = "version one"\n';
const V2 = 'GREETING = "version two"\n';

async function build(project: TempProject, args: string[] = []) {
  const since = new Date();
  const run = await mpBuild(fixtures, project, ['--json', ...args]);
  expect(run.code, run.output).toBe(0);
  const result = jsonResult(run);
  return { run, result, containers: containersCreatedBetween(project, since, new Date()) };
}

function cacheEntries(): string[] {
  const dir = join(fixtures.cacheDir, 'firmware');
  return existsSync(dir) ? readdirSync(dir).filter((n) => !n.startsWith('.')) : [];
}

// Each test runs several real builds in Docker; beside the other suites in CI one took 21 s.
describe('the firmware cache answers any earlier input state without a container', () => {
  it('a reverted module edit exports the first build’s bytes from the cache, and says so', async () => {
    const project = buildProject(fixtures, { 'modules/app.py': V1 });
    const one = await build(project);
    expect(one.result.fromCache).toBe(false);
    project.write('modules/app.py', V2);
    const two = await build(project);
    expect(two.result.fromCache).toBe(false);
    expect(two.result.sha256).not.toBe(one.result.sha256);

    project.write('modules/app.py', V1);
    const back = await build(project);
    expect(back.result).toMatchObject({ fromCache: true, upToDate: false, sha256: one.result.sha256 });
    expect(back.containers).toEqual([]);
    expect(readFileSync(back.result.firmware).equals(readFileSync(one.result.firmware))).toBe(true);
    // A new export, whose sidecar says where the firmware came from.
    expect(back.result.firmware).not.toBe(one.result.firmware);
    const sidecar = readJson(back.result.sidecar);
    expect(sidecar.fromCache).toEqual({
      builtAt: readJson(one.result.sidecar).builtAt,
      durationMs: expect.any(Number),
    });
    expect(back.run.stdout).toMatch(/"title":"From the firmware cache: built \S+ from the same inputs"/);
    expect(back.run.stdout).toContain(
      '{"type":"step:skip","id":"compile","reason":"from the firmware cache"}',
    );

    // Then nothing changed since: the export just made is the answer.
    const again = await build(project);
    expect(again.result).toMatchObject({ upToDate: true, firmware: back.result.firmware });

    // The terminal view says it too.
    project.write('modules/app.py', V2);
    const plain = await mpBuild(fixtures, project);
    expect(plain.code, plain.output).toBe(0);
    expect(plain.stdout).toMatch(
      /✔ From the firmware cache: export\/\S+\.bin \(built .* from the same inputs; nothing compiled, no container\)/,
    );
  }, 120_000);

  it('going back to an earlier config (a make variable, a library) answers from the cache too', async () => {
    const project = buildProject(fixtures, {}, {});
    const plain = await build(project);
    writeFileSync(
      project.path('mp.config.json'),
      JSON.stringify({ image: fixtures.image, libraries: [], make: { MICROPY_PY_BTREE: 0 } }),
    );
    const changed = await build(project);
    expect(changed.result.fromCache).toBe(false);
    expect(changed.result.sha256).not.toBe(plain.result.sha256);
    writeFileSync(project.path('mp.config.json'), JSON.stringify({ image: fixtures.image }));
    const back = await build(project);
    expect(back.result).toMatchObject({ fromCache: true, sha256: plain.result.sha256 });
    expect(back.containers).toEqual([]);
  }, 120_000);

  it('another project with the same inputs finds the same firmware; --force compiles anyway', async () => {
    const a = buildProject(fixtures, { 'modules/app.py': 'SHARED = 1\n' });
    const first = await build(a);
    const b = buildProject(fixtures, { 'modules/app.py': 'SHARED = 1\n' });
    const second = await build(b);
    expect(second.result).toMatchObject({ fromCache: true, sha256: first.result.sha256 });
    const forced = await build(b, ['--force']);
    expect(forced.result).toMatchObject({ fromCache: false, sha256: first.result.sha256 });
    expect(forced.containers).toHaveLength(1);
  }, 120_000);

  it('a damaged cache entry is not used: the build compiles and replaces it', async () => {
    const project = buildProject(fixtures, { 'modules/app.py': 'DAMAGED = 1\n' });
    const first = await build(project);
    const key = readJson(first.result.sidecar).firmwareKey;
    const file = join(fixtures.cacheDir, 'firmware', key, 'firmware.bin');
    const data = readFileSync(file);
    data[100] = data[100]! ^ 0xff;
    writeFileSync(file, data);
    project.write('modules/app.py', 'DAMAGED = 2\n');
    await build(project);
    project.write('modules/app.py', 'DAMAGED = 1\n');
    const back = await build(project);
    expect(back.result).toMatchObject({ fromCache: false, sha256: first.result.sha256 });
    expect(readFileSync(file).equals(readFileSync(first.result.firmware))).toBe(true);
  }, 120_000);
});

describe('the firmware cache is bounded by cache.maxSize', () => {
  it('keeps the most recently used firmware within the size, evicting the oldest', async () => {
    const config = (maxSize: string) => ({ cache: { maxSize } });
    const project = buildProject(fixtures, { 'modules/app.py': 'N = 0\n' }, config('100MB'));
    const zero = await build(project);
    const size = readFileSync(zero.result.firmware).length;
    // Room for two firmware images and a little: a third build evicts the least recently used.
    const bound = `${Math.floor((size * 2.5) / 1000)}kB`;
    writeFileSync(
      project.path('mp.config.json'),
      JSON.stringify({ image: fixtures.image, ...config(bound) }),
    );
    const before = cacheEntries();
    project.write('modules/app.py', 'N = 1\n');
    const one = await build(project);
    project.write('modules/app.py', 'N = 0\n');
    expect((await build(project)).result.fromCache).toBe(true); // N = 0 is now the most recent
    project.write('modules/app.py', 'N = 2\n');
    await build(project);
    const after = cacheEntries();
    const keyOf = (r: typeof one) => readJson(r.result.sidecar).firmwareKey as string;
    expect(after).toContain(keyOf(zero));
    expect(after).not.toContain(keyOf(one));
    let bytes = 0;
    for (const key of after)
      for (const f of readdirSync(join(fixtures.cacheDir, 'firmware', key)))
        bytes += readFileSync(join(fixtures.cacheDir, 'firmware', key, f)).length;
    expect(bytes).toBeLessThanOrEqual(size * 2.5);
    expect(before.length).toBeGreaterThan(0);
    // The evicted state compiles again.
    project.write('modules/app.py', 'N = 1\n');
    expect((await build(project)).result.fromCache).toBe(false);
  }, 120_000);

  it('rejects a size it cannot read, naming the key', async () => {
    const project = buildProject(fixtures, {}, { cache: { maxSize: 'lots' } });
    const run = await mpBuild(fixtures, project);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('cache.maxSize');
  });
});
