/**
 * Docker helpers for tests against the real engine: the offline base image, the fixture toolchain
 * image (Debian + make + python3 + git, enough for the fixture MicroPython), and looking for
 * containers mp left behind.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lock } from 'proper-lockfile';

export const BASE_IMAGE = process.env.MP_TEST_BASE_IMAGE ?? 'debian:bookworm-slim';

/** The toolchain the fixture MicroPython needs: make, python3, and git for board shell preludes. */
export const FIXTURE_TOOLCHAIN_DOCKERFILE = `FROM ${BASE_IMAGE}
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends make python3 git ca-certificates \\
 && rm -rf /var/lib/apt/lists/*
`;

export const FIXTURE_TOOLCHAIN_IMAGE = `mp-test/fixture-toolchain:${createHash('sha256').update(FIXTURE_TOOLCHAIN_DOCKERFILE).digest('hex').slice(0, 12)}`;

const ENSURE_BASE_IMAGE = fileURLToPath(new URL('../scripts/ensure-base-image.sh', import.meta.url));

function docker(args: string[], input?: string): string {
  return execFileSync('docker', args, {
    encoding: 'utf8',
    input,
    stdio: ['pipe', 'pipe', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
  }).trim();
}

export function dockerAvailable(): boolean {
  return (
    spawnSync('docker', ['version', '--format', '{{.Server.Version}}'], { encoding: 'utf8', timeout: 10_000 })
      .status === 0
  );
}

export function imageExists(ref: string): boolean {
  return spawnSync('docker', ['image', 'inspect', ref], { stdio: 'ignore' }).status === 0;
}

/** `debian:bookworm-slim` without Docker Hub: debootstrap + docker import, once per machine. */
export function ensureBaseImage(): void {
  if (imageExists(BASE_IMAGE)) return;
  execFileSync('bash', [ENSURE_BASE_IMAGE], { stdio: 'inherit' });
}

/**
 * Builds the fixture toolchain image if the engine lacks it. Test files run in parallel, so one
 * builds and the others wait (a lock in the temp folder).
 */
export async function ensureFixtureToolchainImage(): Promise<string> {
  if (imageExists(FIXTURE_TOOLCHAIN_IMAGE)) return FIXTURE_TOOLCHAIN_IMAGE;
  const locks = join(tmpdir(), 'mp-test-locks');
  mkdirSync(locks, { recursive: true });
  const release = await lock(join(locks, 'fixture-toolchain'), {
    realpath: false,
    // The holder refreshes the lock while it builds; one not refreshed for 10 s (the default
    // `stale`) was left by a process that died, and is taken over.
    retries: { forever: true, minTimeout: 250, maxTimeout: 1000 },
    // Taken over as stale (this process stalled): both then build the same image, which Docker
    // allows; failing the test run for it would help nobody.
    onCompromised: (error) => console.warn(`fixture toolchain lock: ${error.message}`),
  });
  try {
    if (imageExists(FIXTURE_TOOLCHAIN_IMAGE)) return FIXTURE_TOOLCHAIN_IMAGE;
    // Asynchronous while the lock is held: a blocked event loop could not refresh it.
    if (!imageExists(BASE_IMAGE)) await run('bash', [ENSURE_BASE_IMAGE], { inherit: true });
    await run('docker', ['build', '-q', '-t', FIXTURE_TOOLCHAIN_IMAGE, '-'], {
      input: FIXTURE_TOOLCHAIN_DOCKERFILE,
    });
    return FIXTURE_TOOLCHAIN_IMAGE;
  } finally {
    await release();
  }
}

function run(command: string, args: string[], options: { input?: string; inherit?: boolean }): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: options.inherit ? 'inherit' : ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${command} ${args.join(' ')} failed (${signal ?? `exit ${code}`})\n${stderr}`));
    });
    child.stdin?.end(options.input);
  });
}

/** Ids of toolchain containers (label `mp.toolchain`), optionally only those of one project. */
export function toolchainContainers(project?: string): string[] {
  const filters = ['--filter', 'label=mp.toolchain'];
  if (project) filters.push('--filter', `label=mp.project=${project}`);
  const out = docker(['ps', '-a', '-q', ...filters]);
  return out ? out.split('\n') : [];
}

export function removeContainers(ids: string[]): void {
  if (ids.length) spawnSync('docker', ['rm', '-f', ...ids], { stdio: 'ignore' });
}

/** Removes images built by tests (e.g. `mp-toolchain/<board>:…` tags of throwaway boards). */
export function removeImage(ref: string): void {
  spawnSync('docker', ['rmi', '-f', ref], { stdio: 'ignore' });
}
