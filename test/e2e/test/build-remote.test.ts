/**
 * A remote Docker engine (DOCKER_HOST=tcp://other-host:port) cannot see this machine's files, so
 * mp copies sources into volumes instead of bind-mounting them. The "remote" engine here is the
 * local one behind a TCP proxy, reached through a non-loopback address: mp sees a remote host.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { networkInterfaces } from 'node:os';
import { runMp } from '@mp/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BuildFixtures,
  buildProject,
  jsonResult,
  mpBuild,
  projectContainers,
  setupBuildFixtures,
} from './build-helpers.ts';

let fixtures: BuildFixtures;
let proxy: Server;
let dockerHost: string;
let forced: NodeJS.ProcessEnv = {};

beforeAll(async () => {
  fixtures = await setupBuildFixtures();
  proxy = createServer((client) => {
    const engine = createConnection('/var/run/docker.sock');
    client.pipe(engine).pipe(client);
    client.on('error', () => engine.destroy());
    engine.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => proxy.listen(0, '0.0.0.0', resolve));
  const port = (proxy.address() as { port: number }).port;
  const address = Object.values(networkInterfaces())
    .flat()
    .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;
  dockerHost = `tcp://${address ?? '127.0.0.1'}:${port}`;
  // Without another address, loopback is used and copying is asked for explicitly.
  if (!address) forced = { MP_DOCKER_MOUNTS: 'copy' };
}, 600_000);

afterAll(async () => {
  await new Promise((resolve) => proxy?.close(resolve));
  fixtures?.cleanup();
});

function volumeLabels(name: string): Record<string, string> {
  const out = spawnSync('docker', ['volume', 'inspect', '--format', '{{json .Labels}}', name], {
    encoding: 'utf8',
  });
  return JSON.parse(out.stdout);
}

function projectVolumes(dir: string): string[] {
  const out = spawnSync('docker', ['volume', 'ls', '-q', '--filter', `label=mp.project=${dir}`], {
    encoding: 'utf8',
  }).stdout.trim();
  return out ? out.split('\n') : [];
}

describe('mp build on a remote engine (DOCKER_HOST=tcp://…)', () => {
  it('copies the sources into volumes, builds, and rebuilds incrementally after an edit', async () => {
    const project = buildProject(fixtures);
    const env = { DOCKER_HOST: dockerHost, ...forced };
    try {
      const first = await mpBuild(fixtures, project, ['--json'], { env });
      expect(first.code, first.output).toBe(0);
      const built = jsonResult(first);
      expect(readFileSync(built.firmware).toString('latin1')).toContain('hello from app');
      const log = readFileSync(project.path('.mp/build/esp8266-d1mini/build.log'), 'utf8');
      expect(log).toMatch(/copied \d+ files to \/mp\/micropython/);
      const volumes = projectVolumes(project.dir);
      expect(volumes.length).toBeGreaterThanOrEqual(3);
      // Each is labelled with the cache its sources came from: `mp clean --all` of another cache
      // (another user of this engine, another test) leaves them, and the next build stays incremental.
      for (const name of volumes) expect(volumeLabels(name)['mp.cache']).toBe(fixtures.env.MP_CACHE_DIR);
      const other = await runMp(['clean', '--all', '--cwd', project.dir], {
        env: { ...fixtures.env, ...env, MP_CACHE_DIR: project.path('another-cache') },
      });
      expect(other.code, other.output).toBe(0);
      expect(projectVolumes(project.dir)).toEqual(volumes);

      project.write('modules/app.py', 'GREETING = "edited on the remote engine"\n');
      const second = await mpBuild(fixtures, project, ['--json'], { env });
      expect(second.code, second.output).toBe(0);
      const rebuilt = jsonResult(second);
      expect(readFileSync(rebuilt.firmware).toString('latin1')).toContain('edited on the remote engine');
      const again = readFileSync(project.path('.mp/build/esp8266-d1mini/build.log'), 'utf8');
      expect(again).toContain('copied 1 file to /mp/modules');
      expect(again).not.toMatch(/copied \d+ files? to \/mp\/micropython/);
      expect(again).toContain('MPY app.py');
      expect(again).not.toContain('MPY _boot.py');

      const noop = await mpBuild(fixtures, project, ['--json'], { env });
      expect(jsonResult(noop).upToDate).toBe(true);
      expect(projectContainers(project)).toEqual([]);

      // `mp clean --all` of this cache takes them.
      const cleaned = await runMp(['clean', '--all', '--cwd', project.dir], {
        env: { ...fixtures.env, ...env },
      });
      expect(cleaned.code, cleaned.output).toBe(0);
      expect(projectVolumes(project.dir)).toEqual([]);
    } finally {
      const volumes = projectVolumes(project.dir);
      if (volumes.length) spawnSync('docker', ['volume', 'rm', '-f', ...volumes], { stdio: 'ignore' });
    }
  }, 240_000);
});
