/**
 * Leased toolchain containers against the real Docker engine. Given a container started under a
 * lease, when nobody renews it, then its watchdog ends it (and the engine removes it) after the
 * lease; when its lease file goes, at once; while it is held, never; and a later process finds it
 * by its spec, but not one started with other mounts.
 */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import {
  CACHE_LABEL,
  dockerToolchain,
  LeasedContainer,
  leaseSecondsFromEnv,
  removeLeasedContainers,
  TOOL_LABEL,
} from '@mp/core';
import { ensureFixtureToolchainImage, tempProject } from '@mp/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let image: string;
const started: LeasedContainer[] = [];
beforeAll(async () => {
  image = await ensureFixtureToolchainImage();
}, 600_000);
afterAll(async () => {
  for (const c of started) await c.stop().catch(() => undefined);
});

function exists(id: string): boolean {
  return spawnSync('docker', ['inspect', id], { stdio: 'ignore' }).status === 0;
}

/** Its main process has exited: the container is gone, or stopped and waiting for the engine's --rm. */
function ended(id: string): boolean {
  const r = spawnSync('docker', ['inspect', '-f', '{{.State.Running}}', id], { encoding: 'utf8' });
  return r.status !== 0 || r.stdout.trim() === 'false';
}

/** How long until the container ended, polled every 100 ms; Infinity if not within `ms`. */
async function endedWithin(id: string, ms: number): Promise<number> {
  const t = performance.now();
  while (performance.now() - t < ms) {
    if (ended(id)) return performance.now() - t;
    await new Promise((r) => setTimeout(r, 100));
  }
  return Number.POSITIVE_INFINITY;
}

async function start(seconds: number, extraLabels: Record<string, string> = {}) {
  const folder = tempProject();
  const spec = {
    image,
    mounts: [{ host: folder.dir, container: '/mp/build' }],
    labels: { 'mp.test': 'toolchain-lease', 'mp.project': folder.dir, 'mp.board': 'test', ...extraLabels },
  };
  const lease = { seconds, folder: { host: folder.dir, container: '/mp/build' } };
  const container = await LeasedContainer.start(spec, lease);
  started.push(container);
  return { container, spec, lease, folder };
}

describe('a leased container', () => {
  it('runs commands, is found again by its spec, and lives while held', async () => {
    const { container, spec, lease } = await start(3);
    const lines: string[] = [];
    expect((await container.exec('echo hello; exit 4', { onLine: (l) => lines.push(l) })).exitCode).toBe(4);
    expect(lines).toContain('hello');
    // Held (renewed every second): it outlives its lease.
    await new Promise((r) => setTimeout(r, 4500));
    expect(exists(container.id)).toBe(true);
    const found = await LeasedContainer.find(spec, lease);
    expect(found?.id).toBe(container.id);
    expect(found?.reused).toBe(true);
    started.push(found!);
    // Another mount is another container.
    const other = await LeasedContainer.find(
      { ...spec, mounts: [...spec.mounts, { host: '/tmp', container: '/x' }] },
      lease,
    );
    expect(other).toBeUndefined();
    await found!.release();
    await container.release();
  }, 60_000);

  it('ends itself once its lease is not renewed, with no process of ours doing it', async () => {
    const { container } = await start(2);
    await container.release();
    const released = performance.now();
    const gone = await endedWithin(container.id, 10_000);
    expect(gone).toBeLessThan(Number.POSITIVE_INFINITY);
    expect(performance.now() - released).toBeGreaterThan(1500);
  }, 30_000);

  it('ends itself at once when its lease file goes (mp clean removed the build folder)', async () => {
    const { container, folder } = await start(60);
    await container.release();
    rmSync(folder.dir, { recursive: true, force: true });
    // The watchdog reads the file every second; the bound leaves room for an engine busy with the
    // other suites (CI runs them side by side) and is still far from the lease's 60 s.
    expect(await endedWithin(container.id, 10_000)).toBeLessThan(10_000);
  }, 30_000);
});

describe('removing leased containers (mp stop, mp clean)', () => {
  it('takes those of one project, or those of one mp cache, and leaves the others running', async () => {
    const mine = await start(60, { [CACHE_LABEL]: '/tmp/mp-cache-mine' });
    const theirs = await start(60, { [CACHE_LABEL]: '/tmp/mp-cache-theirs' });
    // mp clean --all of one cache: another user's (or another test's) cache keeps its container.
    expect(await removeLeasedContainers({ cache: '/tmp/mp-cache-mine' })).toEqual([mine.container.id]);
    expect(exists(mine.container.id)).toBe(false);
    expect(exists(theirs.container.id)).toBe(true);
    // mp stop of a project: that project's alone.
    const other = await start(60);
    expect(await removeLeasedContainers({ project: other.folder.dir })).toEqual([other.container.id]);
    expect(exists(theirs.container.id)).toBe(true);
    expect(await removeLeasedContainers({ project: theirs.folder.dir })).toEqual([theirs.container.id]);
  }, 60_000);
});

describe('removing volumes (mp clean --all)', () => {
  it('takes those of the cache it cleans, not another cache’s, nor a tool volume every cache uses', async () => {
    const tag = Math.random().toString(16).slice(2, 10);
    const cache = `/tmp/mp-cache-volumes-${tag}`;
    const volume = (name: string, labels: Record<string, string>) => {
      const flags = Object.entries({ 'mp.volume': '1', ...labels }).flatMap(([k, v]) => [
        '--label',
        `${k}=${v}`,
      ]);
      expect(spawnSync('docker', ['volume', 'create', ...flags, name], { stdio: 'ignore' }).status).toBe(0);
      return name;
    };
    const mine = volume(`mp-test-mine-${tag}`, { [CACHE_LABEL]: cache });
    const theirs = volume(`mp-test-theirs-${tag}`, { [CACHE_LABEL]: `${cache}-theirs` });
    const tool = volume(`mp-test-tool-${tag}`, { [TOOL_LABEL]: 'test' });
    const volumeExists = (name: string) =>
      spawnSync('docker', ['volume', 'inspect', name], { stdio: 'ignore' }).status === 0;
    try {
      const { removed } = await dockerToolchain().removeVolumes({ cache });
      expect(removed).toContain(mine);
      expect(removed).not.toContain(theirs);
      expect(removed).not.toContain(tool);
      expect([volumeExists(mine), volumeExists(theirs), volumeExists(tool)]).toEqual([false, true, true]);
    } finally {
      spawnSync('docker', ['volume', 'rm', '-f', mine, theirs, tool], { stdio: 'ignore' });
    }
  }, 60_000);
});

describe('the lease length', () => {
  it('comes from MP_CONTAINER_LEASE, else 10 minutes, else none under CI', () => {
    expect(leaseSecondsFromEnv({})).toBe(600);
    expect(leaseSecondsFromEnv({ CI: '1' })).toBe(0);
    expect(leaseSecondsFromEnv({ CI: 'false' })).toBe(600);
    expect(leaseSecondsFromEnv({ MP_CONTAINER_LEASE: '0' })).toBe(0);
    expect(leaseSecondsFromEnv({ MP_CONTAINER_LEASE: '90', CI: '1' })).toBe(90);
    expect(leaseSecondsFromEnv({ MP_CONTAINER_LEASE: '90s' })).toBe(90);
    expect(leaseSecondsFromEnv({ MP_CONTAINER_LEASE: '10m' })).toBe(600);
    expect(leaseSecondsFromEnv({ MP_CONTAINER_LEASE: '1h' })).toBe(3600);
    expect(leaseSecondsFromEnv({ MP_CONTAINER_LEASE: 'soon' })).toBe(600);
  });
});
