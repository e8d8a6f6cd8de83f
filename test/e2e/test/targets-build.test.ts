/**
 * `mp build --all` and `mp targets` on the real engine: given a project with four targets (two of
 * them the same board in two variants), when they build two at a time, then each is exported under
 * its own name, export/index.json lists them all, the summary table says how each went, and a
 * target that fails leaves the others exported.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { runMp } from '@mp/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BuildFixtures,
  buildProject,
  jsonLines,
  jsonResult,
  mpBuild,
  projectContainers,
  readJson,
  setupBuildFixtures,
} from './build-helpers.ts';

let fixtures: BuildFixtures;

beforeAll(async () => {
  fixtures = await setupBuildFixtures();
}, 600_000);
afterAll(() => fixtures?.cleanup());

const TARGETS = {
  d1mini: { board: 'esp8266-d1mini' },
  'd1mini-1m': { board: 'esp8266-d1mini', variant: 'FLASH_1M', make: { MICROPY_PY_BTREE: 0 } },
  esp32: { board: 'esp32-generic' },
  unix: { board: 'unix', libraries: [] },
};

/** The sidecars of firmware exports (not index.json, not latest-<board>.json). */
function sidecars(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((n) => /-micropython-.*\.json$/.test(n)) : [];
}

describe('mp build --all on one engine', () => {
  it('builds every target two at a time, each under its own name, and indexes them', async () => {
    const project = buildProject(fixtures, {}, { targets: TARGETS, parallel: 2 });
    const listed = await runMp(['targets', '--cwd', project.dir], { env: fixtures.env });
    expect(listed.code, listed.output).toBe(0);
    expect(listed.stdout).toMatch(
      /^d1mini-1m\s+esp8266-d1mini\s+FLASH_1M\s+newest stable\s+mqtt_as\s+MICROPY_PY_BTREE=0$/m,
    );
    expect(listed.stdout).toMatch(/^unix\s+unix\s+-\s+newest stable\s+none\s+-$/m);

    const result = await mpBuild(fixtures, project, ['--all', '--json']);
    expect(result.code, result.output).toBe(0);
    const answer = jsonResult(result);
    expect(answer.ok).toBe(true);
    expect(answer.targets.map((t: { target: string; result: string }) => [t.target, t.result])).toEqual([
      ['d1mini', 'built'],
      ['d1mini-1m', 'built'],
      ['esp32', 'built'],
      ['unix', 'built'],
    ]);
    // Two at a time: the second target started before the first ended.
    const events = jsonLines(result.stdout);
    const order = events
      .filter((e) => e.type === 'target:start' || e.type === 'target:end')
      .map((e) => `${e.type === 'target:start' ? '>' : '<'}${e.target}`);
    expect(order.slice(0, 2)).toEqual(['>d1mini', '>d1mini-1m']);

    const exportDir = project.path('export');
    const index = readJson(project.path('export/index.json'));
    expect(Object.keys(index.targets)).toEqual(['d1mini', 'd1mini-1m', 'esp32', 'unix']);
    for (const [name, entry] of Object.entries<{ firmware: string; sidecar: string }>(index.targets)) {
      expect(entry.firmware).toContain(`-${name}-`);
      expect(existsSync(`${exportDir}/${entry.firmware}`)).toBe(true);
      expect(readJson(`${exportDir}/${entry.sidecar}`).firmware).toBe(entry.firmware);
    }
    expect(sidecars(exportDir)).toHaveLength(4);
    const oneMeg = readJson(`${exportDir}/${index.targets['d1mini-1m'].sidecar}`);
    expect(oneMeg.board).toMatchObject({ id: 'esp8266-d1mini', variant: 'FLASH_1M' });
    expect(oneMeg.options.make).toEqual({ MICROPY_PY_BTREE: '0' });
    // Same board, two folders, two logs.
    for (const name of ['d1mini', 'd1mini-1m'])
      expect(readFileSync(project.path(`.mp/build/target-${name}/build.log`), 'utf8')).toMatch(/LINK/);
    expect(projectContainers(project)).toEqual([]);

    // Nothing changed: every target answers from its last export, without a container.
    const again = await mpBuild(fixtures, project, ['--target', 'unix,esp32']);
    expect(again.code, again.output).toBe(0);
    expect(again.stdout).toMatch(
      /^esp32\s+esp32-generic\s+up to date\s+\S+ \S+\s+\S+\s+hit\s+unix:\/\/\/var\/run\/docker\.sock$/m,
    );
    expect(again.stdout).toMatch(/^unix\s+unix\s+up to date/m);
    expect(again.stdout).toContain('2 of 2 targets exported; index: export/index.json');
    expect(Object.keys(readJson(project.path('export/index.json')).targets)).toHaveLength(4);
  }, 240_000);

  it('exports the others when one target fails, says which failed and why, and exits 1', async () => {
    const project = buildProject(
      fixtures,
      {},
      { targets: { d1mini: TARGETS.d1mini, broken: { board: 'unix', variant: 'no-such-variant' } } },
    );
    const result = await mpBuild(fixtures, project, ['--all']);
    expect(result.code, result.output).toBe(1);
    // Built, or taken from mp's firmware cache (the first test built these inputs in another project).
    expect(result.stdout).toMatch(/^d1mini\s+esp8266-d1mini\s+(built|from cache)\s/m);
    expect(result.stdout).toMatch(/^broken\s+unix \(no-such-variant\)\s+FAILED\s+-/m);
    expect(result.stdout).toContain('✖ broken: make failed');
    expect(result.stdout).toContain('log: .mp/build/target-broken/build.log');
    expect(result.stdout).toContain('1 of 2 targets exported');
    expect(result.stderr).toMatch(/broken │ .*Invalid VARIANT specified/);
    expect(Object.keys(readJson(project.path('export/index.json')).targets)).toEqual(['d1mini']);
  }, 240_000);

  it('refuses flags that choose one build, and names that are no target', async () => {
    const project = buildProject(fixtures, {}, { targets: TARGETS });
    const board = await mpBuild(fixtures, project, ['--all', '--board', 'unix']);
    expect(board.code).toBe(2);
    expect(board.stderr).toContain('--board is for one build');
    const unknown = await mpBuild(fixtures, project, ['--target', 'd1mni', '--json']);
    expect(unknown.code).toBe(2);
    expect(jsonResult(unknown).error).toMatchObject({ code: 'TARGET_UNKNOWN' });
    expect(jsonResult(unknown).error.message).toContain('did you mean "d1mini"?');
  });
});
