/**
 * Shared setup of the `mp build` end-to-end suites: fixture repositories reached through
 * MP_GIT_MIRRORS (so mp's default URLs are what is exercised), a private source cache, the
 * fixture toolchain image, and throwaway projects.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createFixtureRepos,
  ensureFixtureToolchainImage,
  type FixtureRepos,
  type MpResult,
  type RunMpOptions,
  runMp,
  type TempProject,
  tempProject,
} from '@mp/test-utils';

export interface BuildFixtures {
  repos: FixtureRepos;
  image: string;
  cacheDir: string;
  env: NodeJS.ProcessEnv;
  cleanup(): void;
}

export async function setupBuildFixtures(): Promise<BuildFixtures> {
  const repos = createFixtureRepos();
  const image = await ensureFixtureToolchainImage();
  const cacheDir = mkdtempSync(join(tmpdir(), 'mp-e2e-cache-'));
  return {
    repos,
    image,
    cacheDir,
    env: { MP_CACHE_DIR: cacheDir, MP_GIT_MIRRORS: repos.mirrorEnv },
    cleanup() {
      repos.cleanup();
      rmSync(cacheDir, { recursive: true, force: true });
    },
  };
}

/** A project whose config names only the toolchain image (Docker Hub is out of reach in tests). */
export function buildProject(
  fixtures: BuildFixtures,
  files: Record<string, string> = {},
  config: Record<string, unknown> = {},
): TempProject {
  return tempProject({
    'mp.config.json': JSON.stringify({ image: fixtures.image, ...config }, null, 2),
    'modules/app.py': 'GREETING = "hello from app"\n\n\ndef main():\n    print(GREETING)\n',
    ...files,
  });
}

export function mpBuild(
  fixtures: BuildFixtures,
  project: TempProject,
  args: string[] = [],
  options: RunMpOptions = {},
): Promise<MpResult> {
  return runMp(['build', '--cwd', project.dir, ...args], {
    timeoutMs: 240_000,
    ...options,
    env: { ...fixtures.env, ...options.env },
  });
}

export interface JsonEvent {
  type: string;
  [key: string]: unknown;
}

export function jsonLines(stdout: string): JsonEvent[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as JsonEvent);
}

// biome-ignore lint/suspicious/noExplicitAny: test assertions read arbitrary JSON
export function jsonResult(result: MpResult): JsonEvent & Record<string, any> {
  const events = jsonLines(result.stdout);
  const last = events.findLast((e) => e.type === 'result');
  if (!last) throw new Error(`no JSON result in:\n${result.output}`);
  // biome-ignore lint/suspicious/noExplicitAny: as above
  return last as JsonEvent & Record<string, any>;
}

export function exportedNames(project: TempProject): string[] {
  const dir = project.path('export');
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}

// biome-ignore lint/suspicious/noExplicitAny: as above
export function readJson(path: string): any {
  return JSON.parse(readFileSync(path, 'utf8'));
}

/** Toolchain containers of this project (label `mp.project`), running or not. */
export function projectContainers(project: TempProject): string[] {
  const out = spawnSync(
    'docker',
    ['ps', '-a', '-q', '--filter', 'label=mp.toolchain', '--filter', `label=mp.project=${project.dir}`],
    {
      encoding: 'utf8',
    },
  ).stdout.trim();
  return out ? out.split('\n') : [];
}

/** Containers created for this project between two times (docker events), to prove none was started. */
export function containersCreatedBetween(project: TempProject, since: Date, until: Date): string[] {
  const out = spawnSync(
    'docker',
    [
      'events',
      '--since',
      String(Math.floor(since.getTime() / 1000)),
      '--until',
      String(Math.ceil(until.getTime() / 1000) + 1),
      '--filter',
      'type=container',
      '--filter',
      'event=create',
      '--filter',
      `label=mp.project=${project.dir}`,
      '--format',
      '{{.ID}}',
    ],
    { encoding: 'utf8' },
  ).stdout.trim();
  return out ? out.split('\n') : [];
}

/** Differing 4 KiB sectors between two images (what `mp flash` would rewrite). */
export function changedSectors(a: Buffer, b: Buffer): number {
  let changed = 0;
  for (let at = 0; at < Math.max(a.length, b.length); at += 4096) {
    if (!a.subarray(at, at + 4096).equals(b.subarray(at, at + 4096))) changed++;
  }
  return changed;
}
