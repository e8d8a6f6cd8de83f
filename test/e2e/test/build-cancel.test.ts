/**
 * Ctrl-C, SIGTERM and SIGHUP (a closed terminal) during a build: the toolchain container is stopped and removed within 2 s,
 * mp exits 130, nothing is exported.
 */
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BuildFixtures,
  buildProject,
  exportedNames,
  mpBuild,
  projectContainers,
  setupBuildFixtures,
} from './build-helpers.ts';

let fixtures: BuildFixtures;

beforeAll(async () => {
  fixtures = await setupBuildFixtures();
}, 600_000);
afterAll(() => fixtures?.cleanup());

describe.each(['SIGINT', 'SIGTERM', 'SIGHUP'] as const)('%s during compile', (signal) => {
  it('removes the container within 2 s, exits 130 and exports nothing', async () => {
    // The fixture mpy-cross sleeps on this marker: make is busy in the container when the signal comes.
    const project = buildProject(fixtures, { 'modules/slow.py': '__fixture_sleep__ = 60\n' });
    let child: ChildProcess | undefined;
    let signalledAt = 0;
    let containersWhenSignalled: string[] = [];
    const running = mpBuild(fixtures, project, ['--json'], {
      onSpawn: (c) => {
        child = c;
        let buffer = '';
        c.stdout!.on('data', (chunk: Buffer) => {
          buffer += chunk.toString();
          if (signalledAt === 0 && buffer.includes('MPY slow.py')) {
            containersWhenSignalled = projectContainers(project);
            signalledAt = performance.now();
            c.kill(signal);
          }
        });
      },
    });
    const result = await running;
    const exitedAfter = performance.now() - signalledAt;
    console.log(`${signal}: exited ${Math.round(exitedAfter)} ms after the signal`);
    expect(child).toBeDefined();
    expect(signalledAt, result.output).toBeGreaterThan(0);
    expect(containersWhenSignalled).toHaveLength(1);
    expect(result.code, result.output).toBe(130);
    expect(exitedAfter).toBeLessThan(2000);
    expect(projectContainers(project)).toEqual([]);
    expect(exportedNames(project)).toEqual([]);
  }, 120_000);
});
