/**
 * Bad inputs: each gives a clear error (what, where, what to do), a non-zero exit, and no export.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import type { TempProject } from '@mp/test-utils';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import {
  type BuildFixtures,
  buildProject,
  exportedNames,
  jsonResult,
  mpBuild,
  projectContainers,
  setupBuildFixtures,
} from './build-helpers.ts';

let fixtures: BuildFixtures;

beforeAll(async () => {
  fixtures = await setupBuildFixtures();
}, 600_000);
afterAll(() => fixtures?.cleanup());

async function failing(project: TempProject, args: string[] = [], env: NodeJS.ProcessEnv = {}) {
  const result = await mpBuild(fixtures, project, args, { env });
  const json = await mpBuild(fixtures, project, [...args, '--json'], { env });
  const error = jsonResult(json).error as {
    code: string;
    message: string;
    hint?: string;
    file?: string;
    step?: string;
  };
  expect(result.code).not.toBe(0);
  expect(json.code).toBe(result.code);
  expect(exportedNames(project)).toEqual([]);
  expect(projectContainers(project)).toEqual([]);
  return { result, error };
}

describe('mp build refuses', () => {
  it('an unknown board, suggesting the nearest one', async () => {
    const { result, error } = await failing(buildProject(fixtures), ['--board', 'esp8266-d1mni']);
    expect(result.code).toBe(2);
    expect(error.code).toBe('UNKNOWN_BOARD');
    expect(result.stderr).toContain('Unknown board "esp8266-d1mni" (did you mean "esp8266-d1mini"?)');
    expect(result.stderr).toContain('mp boards');
  });

  it('an unknown MicroPython ref, listing the newest releases', async () => {
    const { result, error } = await failing(buildProject(fixtures), ['--micropython', 'v9.9.9']);
    expect(result.code).toBe(2);
    expect(error.code).toBe('UNKNOWN_REF');
    expect(result.stderr).toContain('MicroPython has no tag, branch or commit "v9.9.9"');
    expect(error.hint).toContain('v1.28.0, v1.27.0');
  });

  it('an unreachable repository, naming the URL and the mirror setting', async () => {
    const { result, error } = await failing(buildProject(fixtures), [], {
      MP_GIT_MIRRORS: `${fixtures.env.MP_GIT_MIRRORS};https://github.com/micropython/micropython.git=file:///nonexistent/micropython.git`,
      MP_CACHE_DIR: `${fixtures.cacheDir}-unreachable`,
    });
    expect(result.code).toBe(1);
    expect(error.code).toBe('SOURCE_UNREACHABLE');
    expect(result.stderr).toContain('file:///nonexistent/micropython.git');
    expect(error.hint).toContain('MP_GIT_MIRRORS');
    spawnSync('rm', ['-rf', `${fixtures.cacheDir}-unreachable`]);
  });

  it('to run without a Docker engine, saying how to start one', async () => {
    const { result, error } = await failing(buildProject(fixtures), [], {
      DOCKER_HOST: 'unix:///nonexistent/docker.sock',
    });
    expect(result.code).toBe(1);
    expect(error.code).toBe('DOCKER_UNAVAILABLE');
    expect(result.stderr).toContain('unix:///nonexistent/docker.sock');
    expect(error.hint).toMatch(/Start the Docker engine/);
  });

  it('a module with a syntax error, naming the file, the line, the compiler’s words and the log', async () => {
    const project = buildProject(fixtures, { 'modules/app.py': 'def main():\n    x = 1\n    return x +\n' });
    const { result, error } = await failing(project);
    expect(result.code).toBe(1);
    expect(error.code).toBe('FREEZE_FAILED');
    expect(error.file).toBe('modules/app.py:3');
    expect(result.stderr).toContain('error compiling app.py:');
    expect(result.stderr).toContain('File "app.py", line 3');
    expect(result.stderr).toContain('SyntaxError: invalid syntax');
    expect(error.hint).toContain(project.path('.mp/build/esp8266-d1mini/build.log'));
  });

  it('a library that does not support the board', async () => {
    const project = buildProject(fixtures, {
      'lib/rp2_only.py': 'PIO = 1\n',
      'mp.config.mjs': `export default {
  image: ${JSON.stringify(fixtures.image)},
  libraries: ['rp2_only'],
  plugins: [{ kind: 'library', id: 'rp2_only', title: 'RP2 PIO helpers', source: { path: './lib' },
    freeze: [{ module: 'rp2_only.py' }], ports: ['rp2'], nameFragment: 'rp2-only' }],
};
`,
    });
    project.write('mp.config.json', ''); // only one config file: the .mjs
    spawnSync('rm', [project.path('mp.config.json')]);
    const { result, error } = await failing(project);
    expect(result.code).toBe(2);
    expect(error.code).toBe('LIBRARY_UNSUPPORTED_BOARD');
    expect(result.stderr).toContain(
      'Library rp2_only does not support board esp8266-d1mini (port esp8266); it supports: rp2',
    );
  });

  it('to leave a partial export when the export disk is full', async () => {
    const project = buildProject(fixtures);
    const exportDir = project.path('export');
    mkdirSync(exportDir);
    if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', exportDir]).status !== 0) {
      return void console.warn('skipped: cannot mount a small tmpfs here (needs root)');
    }
    onTestFinished(() => void spawnSync('umount', [exportDir]));
    const result = await mpBuild(fixtures, project);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('Not enough space in');
    expect(result.stderr).toContain('Nothing was exported');
    expect(result.stderr).toContain('EXPORT_NO_SPACE');
    expect(readdirSync(exportDir)).toEqual([]);
    expect(projectContainers(project)).toEqual([]);
    // With room again, the next build only exports (make has nothing to do).
    const again = await mpBuild(fixtures, project, ['--export-dir', 'export2', '--json']);
    expect(again.code, again.output).toBe(0);
    expect(jsonResult(again).firmware).toContain('/export2/ESP8266-micropython-v1.28.0-mqtt-as-');
  });
});
