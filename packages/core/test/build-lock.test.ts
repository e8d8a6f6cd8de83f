/**
 * A build holds its board's lock from its first step, before its log is opened, so `mp clean`
 * during the fetch phase refuses instead of deleting the log of a build that then exits 0.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createFixtureRepos, type FixtureRepos, tempProject } from '@mp/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanProject } from '../src/firmware/clean.ts';
import { createBuild } from '../src/firmware/pipeline.ts';
import { MpError, openProject, runSteps } from '../src/index.ts';

let repos: FixtureRepos;
beforeAll(() => {
  repos = createFixtureRepos();
});
afterAll(() => repos.cleanup());

describe('the board lock of a build', () => {
  it('is held from the resolve step on, so clean refuses and the log stays', async () => {
    const dir = tempProject({ 'modules/app.py': 'x = 1\n' });
    const cacheDir = tempProject().dir;
    const env = { MP_CACHE_DIR: cacheDir, MP_GIT_MIRRORS: repos.mirrorEnv };
    // The CLI package depends on the first-party boards, so discovery finds them from there.
    const project = await openProject({
      projectDir: dir.dir,
      env,
      pluginRoots: [fileURLToPath(new URL('../../cli', import.meta.url))],
    });
    const build = createBuild({ project, env, cacheDir });
    try {
      // Resolve and fetch, as a build in its fetch phase has done.
      await runSteps(build.steps.slice(0, 2), build.ctx, { signal: new AbortController().signal });
      expect(existsSync(build.ctx.logFile)).toBe(true);
      const error = await cleanProject({ project, env }).catch((e) => e);
      expect(error).toBeInstanceOf(MpError);
      expect((error as MpError).code).toBe('BUILD_RUNNING');
      expect(existsSync(build.ctx.logFile)).toBe(true);
    } finally {
      await build.dispose();
    }
    // Released: clean now goes through.
    await cleanProject({ project, env });
    expect(existsSync(build.ctx.logFile)).toBe(false);
  });
});
