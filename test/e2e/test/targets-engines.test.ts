/**
 * Targets spread over two real Docker engines: the machine's own and a second dockerd started for
 * this file (its own data root and network namespace, reached on a loopback TCP port, sources
 * copied into volumes as for a remote engine). Given four targets and two slots on each engine, when they build, then both engines
 * build some; when the second engine is stopped in the middle of a build, then its targets are
 * built again on the first, the output says so, and every target ends exported, none twice.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { type SecondEngine, startSecondEngine } from '@mp/test-utils/second-engine';
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
let second: SecondEngine;

beforeAll(async () => {
  fixtures = await setupBuildFixtures();
  second = await startSecondEngine();
  await second.loadImage(fixtures.image);
}, 600_000);

afterAll(async () => {
  await second?.cleanup();
  fixtures?.cleanup();
});

const TARGETS = {
  d1mini: { board: 'esp8266-d1mini' },
  'd1mini-1m': { board: 'esp8266-d1mini', variant: 'FLASH_1M' },
  esp32: { board: 'esp32-generic' },
  unix: { board: 'unix' },
};

/** Freezing this module takes `seconds` (the fixture mpy-cross sleeps): builds last long enough to be stopped. */
function slowModule(seconds: number, greeting: string): string {
  return `__fixture_sleep__ = ${seconds}\nGREETING = "${greeting}"\n`;
}

/** Firmware sidecars in export/ (one per export). */
function sidecars(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((n) => /-micropython-.*\.json$/.test(n)) : [];
}

describe('mp build --all over two engines', () => {
  it('spreads four targets over both, copying sources to the second, and then survives its stop mid-build', async () => {
    const project = buildProject(
      fixtures,
      { 'modules/app.py': slowModule(3, 'first') },
      {
        targets: TARGETS,
        engines: [
          { host: 'unix:///var/run/docker.sock', name: 'first', parallel: 2 },
          { host: second.host, name: 'second', parallel: 2, mounts: 'copy' },
        ],
      },
    );

    // 1. Both engines build: two slots each, four targets.
    const spread = await mpBuild(fixtures, project, ['--all', '--json']);
    expect(spread.code, spread.output).toBe(0);
    const rows = jsonResult(spread).targets as Array<{ target: string; engine: string; result: string }>;
    expect(rows.map((r) => r.result)).toEqual(['built', 'built', 'built', 'built']);
    expect(rows.filter((r) => r.engine === 'first')).toHaveLength(2);
    expect(rows.filter((r) => r.engine === 'second')).toHaveLength(2);
    // Copied into volumes there: the commit's tree (one volume both targets share), each target's
    // build folder its own.
    const logs = rows
      .filter((r) => r.engine === 'second')
      .map((r) => readFileSync(project.path(`.mp/build/target-${r.target}/build.log`), 'utf8'));
    for (const log of logs) expect(log).toMatch(/copied \d+ files? to \/mp\/build/);
    expect(logs.some((log) => /copied \d+ files to \/mp\/micropython/.test(log))).toBe(true);
    expect(await second.toolchainContainers()).toEqual([]);

    // 2. The second engine stops while it compiles: its targets go to the first.
    project.write('modules/app.py', slowModule(6, 'second'));
    let stoppedWhile: string[] = [];
    const stopping = (async () => {
      const deadline = Date.now() + 120_000;
      while (Date.now() < deadline && (await second.toolchainContainers()).length < 2)
        await new Promise((resolve) => setTimeout(resolve, 200));
      // Into the make (the module's freeze sleeps 6 s), then the engine goes.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      stoppedWhile = await second.toolchainContainers();
      await second.stop();
    })();
    const run = await mpBuild(fixtures, project, ['--all']);
    await stopping;
    expect(stoppedWhile.length, 'containers running on the second engine when it stopped').toBe(2);
    expect(run.code, run.output).toBe(0);
    // The output says which engine failed, and which targets were built again elsewhere.
    expect(run.stderr).toMatch(/⚠ Docker engine second failed: .*; its targets go to the other engines/);
    const retried = [
      ...run.stderr.matchAll(/↻ (\S+): engine second failed under it, building it again on another engine/g),
    ].map((m) => m[1]);
    expect(retried).toHaveLength(2);
    for (const name of Object.keys(TARGETS)) {
      const engine = retried.includes(name) ? 'first \\(after second\\)' : 'first';
      expect(run.stdout).toMatch(new RegExp(`^${name}\\s+\\S+.*\\s+built\\s+.*\\s+miss\\s+${engine}$`, 'm'));
    }
    for (const name of retried)
      expect(run.stdout).toMatch(
        new RegExp(`↻ ${name}: Docker engine second failed: .*; built again on first`),
      );
    expect(run.stdout).toContain('4 of 4 targets exported; index: export/index.json');

    // Every target exported, none twice: one new export each, all with the edit.
    const exportDir = project.path('export');
    expect(sidecars(exportDir)).toHaveLength(8);
    const index = readJson(`${exportDir}/index.json`);
    expect(Object.keys(index.targets)).toEqual(['d1mini', 'd1mini-1m', 'esp32', 'unix']);
    const edited = createHash('sha256').update(slowModule(6, 'second')).digest('hex');
    for (const entry of Object.values<{ sidecar: string }>(index.targets))
      expect(readJson(`${exportDir}/${entry.sidecar}`).modules).toEqual([{ file: 'app.py', sha256: edited }]);
    expect(projectContainers(project)).toEqual([]);

    // 3. With the second engine still down, the next run says so at the start and builds on the first.
    const alone = await mpBuild(fixtures, project, ['--all', '--json']);
    expect(alone.code, alone.output).toBe(0);
    const engines = jsonLines(alone.stdout).find((e) => e.type === 'engines');
    expect(engines).toMatchObject({
      engines: [{ name: 'first', slots: 2 }],
      unreachable: [{ name: 'second', error: expect.stringContaining('Docker engine second failed') }],
    });
    const rows2 = jsonResult(alone).targets as Array<{ result: string; engine: string; cacheHit: boolean }>;
    expect(rows2.map((r) => [r.result, r.engine, r.cacheHit])).toEqual(
      Object.keys(TARGETS).map(() => ['up-to-date', 'first', true]),
    );
  }, 420_000);
});
