/**
 * `mp clean`: given a project that was built, when I clean it, then its build folders and the
 * volumes mp made for it are gone, its exports are not, and the next build works from scratch.
 * A build that is running keeps everything in place, and so does a build of any project that uses
 * mp's cache when it is `--all`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { acquireLock } from '@mp/core';
import { runMp } from '@mp/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BuildFixtures,
  buildProject,
  exportedNames,
  mpBuild,
  setupBuildFixtures,
} from './build-helpers.ts';

let fixtures: BuildFixtures;

beforeAll(async () => {
  fixtures = await setupBuildFixtures();
}, 600_000);
afterAll(() => fixtures?.cleanup());

const volumeExists = (name: string) =>
  spawnSync('docker', ['volume', 'inspect', name], { stdio: 'ignore' }).status === 0;

describe('mp clean', { timeout: 240_000 }, () => {
  it('removes the build folders and the project’s volumes, keeps exports; the next build is cold', async () => {
    const project = buildProject(fixtures);
    expect((await mpBuild(fixtures, project)).code).toBe(0);
    const exports = exportedNames(project);
    expect(existsSync(project.path('.mp/build/esp8266-d1mini'))).toBe(true);
    const volume = `mp-test-clean-${process.pid}`;
    spawnSync('docker', [
      'volume',
      'create',
      '--label',
      'mp.volume=1',
      '--label',
      `mp.project=${project.dir}`,
      volume,
    ]);
    const other = `mp-test-clean-other-${process.pid}`;
    spawnSync('docker', [
      'volume',
      'create',
      '--label',
      'mp.volume=1',
      '--label',
      'mp.project=/somewhere/else',
      other,
    ]);

    const cleaned = await runMp(['clean', '--cwd', project.dir]);
    expect(cleaned.code, cleaned.output).toBe(0);
    expect(cleaned.stdout).toMatch(/✔ removed \.mp\/build\/esp8266-d1mini \([\d.]+ (KiB|MiB)\)/);
    expect(cleaned.stdout).toContain(`✔ removed volume ${volume}`);
    expect(existsSync(project.path('.mp/build'))).toBe(true);
    expect(existsSync(project.path('.mp/build/esp8266-d1mini'))).toBe(false);
    expect(volumeExists(volume)).toBe(false);
    expect(volumeExists(other)).toBe(true); // another project's
    spawnSync('docker', ['volume', 'rm', other], { stdio: 'ignore' });
    expect(exportedNames(project)).toEqual(exports);

    const rebuilt = await mpBuild(fixtures, project, ['--json']);
    expect(rebuilt.code, rebuilt.output).toBe(0);
    expect(rebuilt.stdout).not.toContain('"upToDate":true');
  });

  it('refuses while a build of the project runs, and removes nothing', async () => {
    const project = buildProject(fixtures);
    expect((await mpBuild(fixtures, project)).code).toBe(0);
    // The lock a running build holds, held by this process.
    const release = await acquireLock(project.path('.mp/build/esp8266-d1mini/lock'));
    try {
      const cleaned = await runMp(['clean', '--cwd', project.dir]);
      expect(cleaned.code).toBe(1);
      expect(cleaned.stderr).toContain('A build of esp8266-d1mini is running in this project');
      expect(cleaned.stderr).toContain(`pid ${process.pid}`);
      expect(cleaned.stderr).toContain('(BUILD_RUNNING)');
      expect(existsSync(project.path('.mp/build/esp8266-d1mini/last-build.json'))).toBe(true);
    } finally {
      await release();
    }
  });

  it('--all refuses while another process fetches into the cache, and removes nothing', async () => {
    const project = buildProject(fixtures);
    const cache = project.path('own-cache');
    expect((await mpBuild(fixtures, project, [], { env: { MP_CACHE_DIR: cache } })).code).toBe(0);
    const [repo] = readdirSync(join(cache, 'git'));
    // A fetch of another project's build holds the repository's lock.
    const release = await acquireLock(join(cache, 'git', repo!, 'lock'));
    try {
      const cleaned = await runMp(['clean', '--all', '--cwd', project.dir], {
        env: { ...fixtures.env, MP_CACHE_DIR: cache },
      });
      expect(cleaned.code, cleaned.output).toBe(1);
      expect(cleaned.stderr).toContain('(CACHE_IN_USE)');
      expect(cleaned.stderr).toContain(`pid ${process.pid}`);
      expect(existsSync(join(cache, 'git', repo!, 'repo.git'))).toBe(true);
      expect(existsSync(project.path('.mp/build/esp8266-d1mini/last-build.json'))).toBe(true);
    } finally {
      await release();
    }
  });

  it('--all also removes mp’s user-wide cache', async () => {
    const project = buildProject(fixtures);
    const cache = project.path('own-cache');
    expect((await mpBuild(fixtures, project, [], { env: { MP_CACHE_DIR: cache } })).code).toBe(0);
    expect(existsSync(cache)).toBe(true);
    const cleaned = await runMp(['clean', '--all', '--cwd', project.dir], {
      env: { ...fixtures.env, MP_CACHE_DIR: cache },
    });
    expect(cleaned.code, cleaned.output).toBe(0);
    expect(existsSync(cache)).toBe(false);
    expect(cleaned.stderr).toContain('the next flash of each board writes the whole image once');
  });
});
