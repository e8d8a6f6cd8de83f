/**
 * Warm toolchain containers under a lease. Given MP_CONTAINER_LEASE=5 (seconds of idle time), when
 * `mp build` runs, then its container stays up for the next `mp build` (a new process) to compile in,
 * carries mp's labels, and removes itself once idle for the lease: also when mp was killed with -9
 * in the middle of make, with no mp process left to do it. `mp stop` and `mp clean` end it at once.
 */

import type { ChildProcess } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { runMp, type TempProject } from '@mp/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BuildFixtures,
  buildProject,
  containersCreatedBetween,
  jsonResult,
  mpBuild,
  projectContainers,
  setupBuildFixtures,
} from './build-helpers.ts';

const LEASE = 5;
// Each build in its own process, as the kill -9 cases need: resident mp has its suite (resident.test.ts).
const env = { MP_CONTAINER_LEASE: String(LEASE), MP_RESIDENT: '0' };

let fixtures: BuildFixtures;
const projects: TempProject[] = [];
beforeAll(async () => {
  fixtures = await setupBuildFixtures();
}, 600_000);
afterAll(() => {
  for (const p of projects) spawnSync('docker', ['rm', '-f', ...projectContainers(p)], { stdio: 'ignore' });
  fixtures?.cleanup();
});

function project(files: Record<string, string> = {}): TempProject {
  const p = buildProject(fixtures, files);
  projects.push(p);
  return p;
}

async function build(p: TempProject) {
  const run = await mpBuild(fixtures, p, ['--json'], { env });
  expect(run.code, run.output).toBe(0);
  return jsonResult(run);
}

function labels(id: string): Record<string, string> {
  const out = spawnSync('docker', ['inspect', '--format', '{{json .Config.Labels}}', id], {
    encoding: 'utf8',
  });
  return JSON.parse(out.stdout);
}

/** Waits until the project has no container; how long that took (ms), or Infinity past `limitMs`. */
async function goneWithin(p: TempProject, limitMs: number): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < limitMs) {
    if (projectContainers(p).length === 0) return performance.now() - started;
    await new Promise((r) => setTimeout(r, 200));
  }
  return Number.POSITIVE_INFINITY;
}

/** When the project's lease file (`.mp-lease-<hash>` in a build folder) was last written (ms). */
function lastRenewal(p: TempProject): number {
  const leases = readdirSync(p.path('.mp'), { recursive: true, encoding: 'utf8' }).filter((f) =>
    basename(f).startsWith('.mp-lease-'),
  );
  expect(leases).toHaveLength(1);
  return statSync(join(p.path('.mp'), leases[0]!)).mtimeMs;
}

describe('a leased toolchain container', () => {
  it('serves the next mp build (a new process), carries mp’s labels, and ends itself when idle', async () => {
    const p = project({ 'modules/app.py': 'X = 1\n' });
    const first = await build(p);
    expect(first.container).toBe('started');
    const [id] = projectContainers(p);
    expect(id).toBeDefined();
    expect(labels(id!)).toMatchObject({
      'mp.toolchain': '1',
      'mp.project': p.dir,
      'mp.board': 'esp8266-d1mini',
      'mp.lease': String(LEASE),
      'mp.spec': expect.stringMatching(/^[0-9a-f]{24}$/),
      'mp.cache': fixtures.env.MP_CACHE_DIR,
    });

    p.write('modules/app.py', 'X = 2\n');
    const since = new Date();
    const second = await build(p);
    expect(second.container).toBe('reused');
    expect(containersCreatedBetween(p, since, new Date())).toEqual([]);
    expect(projectContainers(p)).toEqual([id]);
    // Idle from the build's last renewal of the lease (its release): still up well inside the
    // lease, gone soon after it. Timed from the renewal, not from the end of the process, which
    // may come a while later on a busy machine.
    const renewed = lastRenewal(p);
    await new Promise((r) => setTimeout(r, Math.max(0, renewed + (LEASE - 2) * 1000 - Date.now())));
    expect(Date.now() - renewed, 'the check came too late to mean anything').toBeLessThan((LEASE - 1) * 1000);
    expect(projectContainers(p)).toEqual([id]);
    const gone = await goneWithin(p, 8000);
    const idleFor = Date.now() - renewed;
    console.log(
      `idle container removed itself ${(idleFor / 1000).toFixed(1)} s after the lease's last renewal (lease ${LEASE} s)`,
    );
    expect(gone).toBeLessThan(Number.POSITIVE_INFINITY);
    expect(idleFor).toBeLessThan((LEASE + 4) * 1000);
  }, 120_000);

  it('ends itself after the lease when mp is killed with -9 in the middle of make', async () => {
    // The fixture mpy-cross sleeps on this marker: make is busy for 60 s when mp dies.
    const p = project({ 'modules/slow.py': '__fixture_sleep__ = 60\n' });
    let child: ChildProcess | undefined;
    let killedAt = 0;
    let running: string[] = [];
    const run = mpBuild(fixtures, p, ['--json'], {
      env,
      onSpawn: (c) => {
        child = c;
        let buffer = '';
        c.stdout!.on('data', (chunk: Buffer) => {
          buffer += chunk.toString();
          if (killedAt === 0 && buffer.includes('MPY slow.py')) {
            running = projectContainers(p);
            killedAt = performance.now();
            c.kill('SIGKILL');
          }
        });
      },
    });
    const result = await run;
    expect(child).toBeDefined();
    expect(result.signal, result.output).toBe('SIGKILL');
    expect(running).toHaveLength(1);
    // No mp process is left, and nothing removed the container: it is there, make still running in it.
    expect(projectContainers(p)).toEqual(running);
    const gone = await goneWithin(p, (LEASE + 6) * 1000);
    const lived = performance.now() - killedAt;
    console.log(
      `after kill -9 the container removed itself ${(lived / 1000).toFixed(1)} s later (lease ${LEASE} s)`,
    );
    expect(gone).toBeLessThan(Number.POSITIVE_INFINITY);
    // It lived on after mp died (the last renewal was at most a third of the lease before the kill).
    expect(lived).toBeGreaterThan(((LEASE * 2) / 3 - 0.5) * 1000);
    expect(lived).toBeLessThan((LEASE + 5) * 1000);
    // The next build is not troubled by what the killed one left (its lock, a half-made build folder).
    p.write('modules/slow.py', 'FAST = 1\n');
    expect((await build(p)).container).toBe('started');
  }, 120_000);

  it('is not taken when a folder it mounts was removed and made again (it would see the old one)', async () => {
    const p = project({ 'modules/app.py': 'WHICH = "old folder"\n' });
    expect((await build(p)).container).toBe('started');
    rmSync(p.path('modules'), { recursive: true });
    p.write('modules/app.py', 'WHICH = "new folder"\n');
    const next = await build(p);
    expect(next.container).toBe('started');
    expect(readFileSync(next.firmware).toString('latin1')).toContain('WHICH = "new folder"');
    // The stale one was removed on the way.
    expect(projectContainers(p)).toHaveLength(1);
  }, 120_000);

  it('mp stop and mp clean remove it at once', async () => {
    const p = project();
    await build(p);
    expect(projectContainers(p)).toHaveLength(1);
    const stop = await runMp(['stop', '--cwd', p.dir, '--json'], { env: { ...fixtures.env, ...env } });
    expect(stop.code, stop.output).toBe(0);
    expect(jsonResult(stop).stopped).toHaveLength(1);
    expect(projectContainers(p)).toEqual([]);
    const none = await runMp(['stop', '--cwd', p.dir], { env: { ...fixtures.env, ...env } });
    expect(none.stdout).toContain('No toolchain container of this project is running.');

    p.write('modules/app.py', 'Y = 1\n');
    expect((await build(p)).container).toBe('started');
    expect(projectContainers(p)).toHaveLength(1);
    const clean = await runMp(['clean', '--cwd', p.dir], { env: { ...fixtures.env, ...env } });
    expect(clean.code, clean.output).toBe(0);
    expect(clean.stdout).toMatch(/removed container [0-9a-f]{12}/);
    expect(projectContainers(p)).toEqual([]);

    // mp clean --all removes the cache this container's sources come from: it goes too.
    p.write('modules/app.py', 'Y = 2\n');
    expect((await build(p)).container).toBe('started');
    const all = await runMp(['clean', '--all', '--cwd', p.dir], { env: { ...fixtures.env, ...env } });
    expect(all.code, all.output).toBe(0);
    expect(all.stdout).toMatch(/removed container [0-9a-f]{12}/);
    expect(projectContainers(p)).toEqual([]);
  }, 120_000);

  it('is not left when the lease is 0 (the default when CI is set)', async () => {
    const p = project();
    const run = await mpBuild(fixtures, p, ['--json'], { env: { CI: '1' } });
    expect(run.code, run.output).toBe(0);
    expect(projectContainers(p)).toEqual([]);
    const off = await mpBuild(fixtures, p, ['--json', '--force'], {
      env: { MP_CONTAINER_LEASE: '0', CI: '' },
    });
    expect(off.code, off.output).toBe(0);
    expect(projectContainers(p)).toEqual([]);
  }, 120_000);
});
