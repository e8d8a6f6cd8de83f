/**
 * Toolchain images and containers against the real Docker engine.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  connectDocker,
  DockerContainer,
  ensureImage,
  inspectImageId,
  MpError,
  pingEngine,
  removeOrphanContainers,
  TOOLCHAIN_LABEL,
} from '@mp/core';
import {
  BASE_IMAGE,
  ensureBaseImage,
  ensureFixtureToolchainImage,
  removeImage,
  tempProject,
  toolchainContainers,
} from '@mp/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let image: string;
const started: DockerContainer[] = [];

beforeAll(async () => {
  image = await ensureFixtureToolchainImage();
}, 600_000);

afterAll(async () => {
  for (const c of started) await c.stop().catch(() => undefined);
});

async function start(mounts: Array<{ host: string; container: string }> = [], user?: string) {
  const c = await DockerContainer.start({ image, mounts, user, labels: { 'mp.test': 'build-toolchain' } });
  started.push(c);
  return c;
}

function containerExists(id: string): boolean {
  return spawnSync('docker', ['inspect', id], { stdio: 'ignore' }).status === 0;
}

describe('toolchain images', () => {
  it('uses an image the engine has', async () => {
    const info = await ensureImage({ boardId: 'fixture', ref: image, override: true });
    expect(info).toEqual({ ref: image, id: await inspectImageId(image), obtained: 'present' });
  });

  it('builds the board’s Dockerfile when there is no image to pull, tagged by its content, then reuses it', async () => {
    ensureBaseImage();
    const dir = tempProject({
      'docker/Dockerfile': `FROM ${BASE_IMAGE}\nCOPY hello.txt /hello.txt\n`,
      'docker/hello.txt': `${Date.now()}\n`,
    });
    const dockerfile = dir.path('docker/Dockerfile');
    const lines: string[] = [];
    const built = await ensureImage({ boardId: 'test-board', dockerfile }, { onLine: (l) => lines.push(l) });
    try {
      expect(built.obtained).toBe('built');
      expect(built.ref).toMatch(/^mp-toolchain\/test-board:[0-9a-f]{16}$/);
      expect(lines.join('\n')).toContain('COPY hello.txt');
      expect((await ensureImage({ boardId: 'test-board', dockerfile })).obtained).toBe('present');
    } finally {
      removeImage(built.ref);
    }
  }, 120_000);

  it('says which image is missing when --image names one that cannot be pulled', async () => {
    const error = await ensureImage({
      boardId: 'esp8266-d1mini',
      ref: 'mp-test/no-such-image:1',
      override: true,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MpError);
    expect((error as MpError).code).toBe('IMAGE_UNAVAILABLE');
    expect((error as MpError).message).toContain('mp-test/no-such-image:1');
    expect((error as MpError).hint).toContain('--image');
  });

  it('reports a Docker engine that is not running', async () => {
    const error = await pingEngine({ DOCKER_HOST: 'unix:///nonexistent/docker.sock' }).catch(
      (e: unknown) => e,
    );
    expect((error as MpError).code).toBe('DOCKER_UNAVAILABLE');
    expect((error as MpError).hint).toMatch(/Start the Docker engine|DOCKER_HOST/);
  });
});

describe('toolchain containers', () => {
  it('run commands, streaming stdout and stderr lines, and report the exit code', async () => {
    const c = await start();
    const lines: string[] = [];
    const result = await c.exec('echo one; echo two >&2; printf "a\\rb\\n"; exit 3', {
      onLine: (l) => lines.push(l),
    });
    expect(result.exitCode).toBe(3);
    expect(lines).toEqual(expect.arrayContaining(['one', 'two', 'a', 'b']));
  });

  it('run as the host user, so files in bind mounts are not root-owned', async () => {
    const project = tempProject();
    chmodSync(project.dir, 0o777);
    const c = await start([{ host: project.dir, container: '/work' }], '4321:4321');
    const lines: string[] = [];
    await c.exec('id -u; touch /work/made-here', { onLine: (l) => lines.push(l) });
    expect(lines).toContain('4321');
    expect(statSync(join(project.dir, 'made-here')).uid).toBe(4321);
  });

  it('are gone after stop(), with a label naming their owner', async () => {
    const c = await start();
    const labels = JSON.parse(
      execFileSync('docker', ['inspect', '--format', '{{json .Config.Labels}}', c.id], { encoding: 'utf8' }),
    );
    expect(labels).toMatchObject({
      [TOOLCHAIN_LABEL]: '1',
      'mp.owner.pid': String(process.pid),
      'mp.owner.host': hostname(),
    });
    await c.stop();
    await c.stop();
    expect(containerExists(c.id)).toBe(false);
  });

  it('a warm container survives cancelling a command in it (mp dev)', async () => {
    const c = await start();
    const controller = new AbortController();
    const running = c.exec('sleep 30', { signal: controller.signal });
    setTimeout(() => controller.abort(), 300);
    const t = performance.now();
    await expect(running).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(performance.now() - t).toBeLessThan(3000);
    expect((await c.exec('true')).exitCode).toBe(0);
  });

  it('disappear when the mp process dies without cleaning up (kill -9)', async () => {
    const script = `
      import { DockerContainer } from '@mp/core';
      const c = await DockerContainer.start({ image: ${JSON.stringify(image)}, mounts: [], labels: { 'mp.test': 'kill-9' } });
      console.log(c.id);
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const id = await new Promise<string>((resolve) =>
      child.stdout.once('data', (d: Buffer) => resolve(d.toString().trim())),
    );
    expect(containerExists(id)).toBe(true);
    child.kill('SIGKILL');
    const deadline = Date.now() + 5000;
    while (containerExists(id) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(containerExists(id)).toBe(false);
  }, 30_000);

  it('left by a process that is gone are swept away; those of live processes are not', async () => {
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
      encoding: 'utf8',
    });
    const deadPid = dead.stdout.trim();
    const docker = await connectDocker();
    const create = async (pid: string) => {
      const container = await docker.createContainer({
        Image: image,
        Entrypoint: ['sleep', '60'],
        Labels: {
          [TOOLCHAIN_LABEL]: '1',
          'mp.owner.pid': pid,
          'mp.owner.host': hostname(),
          'mp.test': 'orphans',
        },
      });
      await container.start();
      return container.id;
    };
    const orphan = await create(deadPid);
    const alive = await create(String(process.pid));
    try {
      const removed = await removeOrphanContainers(docker);
      expect(removed).toContain(orphan);
      expect(removed).not.toContain(alive);
      expect(containerExists(orphan)).toBe(false);
      expect(containerExists(alive)).toBe(true);
    } finally {
      spawnSync('docker', ['rm', '-f', orphan, alive], { stdio: 'ignore' });
    }
    expect(toolchainContainers().filter((id) => orphan.startsWith(id) || alive.startsWith(id))).toEqual([]);
  });
});
