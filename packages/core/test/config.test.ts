import { tempProject } from '@mp/test-utils';
import { describe, expect, it } from 'vitest';
import { defineBoard, loadConfig, openProject, ValidationError } from '../src/index.ts';

describe('project config', () => {
  it('with no config file, reproduces the original pipeline: D1 mini, mqtt_as, modules/', async () => {
    const project = tempProject();
    const config = await loadConfig({ projectDir: project.dir, env: {} });
    expect(config.configFile).toBeUndefined();
    expect(config.board).toBe('esp8266-d1mini');
    expect(config.libraries).toEqual([{ id: 'mqtt_as' }]);
    expect(config.modulesDir).toBe(project.path('modules'));
    expect(config.exportDir).toBe(project.path('export'));
    expect(config.micropython.ref).toBeUndefined(); // newest stable tag
    expect(config.micropython.git).toBe('https://github.com/micropython/micropython.git');
  });

  it('loads mp.config.ts with defineConfig from @mp/core, even outside this repository', async () => {
    const project = tempProject({
      'mp.config.ts': `import { defineConfig } from '@mp/core';
const board: string = 'esp32-generic';
export default defineConfig({ board, libraries: [{ id: 'mqtt_as', ref: 'v1.0' }], micropython: { ref: 'v1.27.0' }, jobs: 3 });`,
    });
    const config = await loadConfig({ projectDir: project.dir, env: {} });
    expect(config.configFile).toBe(project.path('mp.config.ts'));
    expect(config.board).toBe('esp32-generic');
    expect(config.libraries).toEqual([{ id: 'mqtt_as', ref: 'v1.0' }]);
    expect(config.micropython.ref).toBe('v1.27.0');
    expect(config.jobs).toBe(3);
  });

  it('lets command-line flags override the config file, and the environment the file', async () => {
    const project = tempProject({
      'mp.config.json': JSON.stringify({
        board: 'esp32-generic',
        micropython: { ref: 'v1.27.0' },
        libraries: [],
      }),
    });
    const config = await loadConfig({
      projectDir: project.dir,
      env: { MP_MICROPYTHON_REF: 'v1.28.0', MP_GIT_MIRRORS: 'https://github.com/=file:///srv/git/' },
      overrides: { board: 'unix', libraries: ['mqtt_as'] },
    });
    expect(config.board).toBe('unix');
    expect(config.libraries).toEqual([{ id: 'mqtt_as' }]);
    expect(config.micropython.ref).toBe('v1.28.0');
    expect(config.mirrors).toEqual({ 'https://github.com/': 'file:///srv/git/' });
  });

  it('`files`: a name goes to / under its own name; { from, to } to a board path or folder', async () => {
    const project = tempProject({
      'mp.config.json': JSON.stringify({
        files: [
          'export/mqtt_local.py',
          { from: 'src/app.py', to: '/lib/' },
          { from: 'data.bin', to: '/data/table.bin' },
        ],
      }),
    });
    const config = await loadConfig({ projectDir: project.dir, env: {} });
    expect(config.files).toEqual([
      { from: project.path('export/mqtt_local.py'), to: '/mqtt_local.py' },
      { from: project.path('src/app.py'), to: '/lib/app.py' },
      { from: project.path('data.bin'), to: '/data/table.bin' },
    ]);
    const relative = tempProject({
      'mp.config.json': JSON.stringify({ files: [{ from: 'main.py', to: 'lib/main.py' }] }),
    });
    await expect(loadConfig({ projectDir: relative.dir, env: {} })).rejects.toThrow(
      /files.*board path starts with \//s,
    );
  });

  it('treats --micropython with a path as a local checkout', async () => {
    const project = tempProject();
    const config = await loadConfig({
      projectDir: project.dir,
      env: {},
      overrides: { micropythonRef: './mpy' },
    });
    expect(config.micropython).toMatchObject({ ref: undefined, path: project.path('mpy') });
  });

  it('reports every problem of a config at once, each with its key path', async () => {
    const project = tempProject({
      'mp.config.js': `export default { bord: 'x', libraries: ['mqtt_as', { ref: 'main', path: './lib' }, 3], flash: { baud: 'fast' }, jobs: 0 };`,
    });
    const error = await loadConfig({ projectDir: project.dir, env: {} }).catch((e) => e);
    expect(error).toBeInstanceOf(ValidationError);
    // In the schema's order, with each object's unknown keys after its known ones.
    expect((error as ValidationError).issues.map((i) => i.path)).toEqual([
      'libraries[1].id',
      'libraries[1]',
      'libraries[2]',
      'flash.baud',
      'jobs',
      'bord',
    ]);
    expect(error.message).toContain('did you mean "board"');
    expect(error.file).toBe(project.path('mp.config.js'));
  });

  it('names the config file when it fails to load', async () => {
    const project = tempProject({ 'mp.config.ts': 'export default {' });
    const error = await loadConfig({ projectDir: project.dir, env: {} }).catch((e) => e);
    expect(error.code).toBe('CONFIG_LOAD_FAILED');
    expect(error.message).toContain('mp.config.ts');
  });

  it('takes plugin objects from the config, flattening arrays and dropping falsy entries', async () => {
    const project = tempProject();
    const inline = defineBoard({
      id: 'inline-board',
      title: 'Inline',
      port: 'unix',
      exportPrefix: 'IN',
      toolchain: { image: 'x/y' },
      artifacts: { firmware: 'micropython' },
      firmware: 'firmware',
      defaultManifest: 'm.py',
    });
    project.write('mp.config.mjs', `export default { plugins: [[globalThis.__inline], false, null] };`);
    (globalThis as Record<string, unknown>).__inline = inline;
    const opened = await openProject({ projectDir: project.dir, env: {} });
    expect(opened.plugins.list('board').map((l) => [l.id, l.source])).toEqual([
      ['inline-board', 'mp.config'],
    ]);
    expect(await opened.plugins.load('board', 'inline-board')).toBe(inline);
  });

  it('fails clearly when the project directory does not exist', async () => {
    const error = await loadConfig({ projectDir: '/nonexistent/mp-project', env: {} }).catch((e) => e);
    expect(error.code).toBe('PROJECT_NOT_FOUND');
    expect(error.exitCode).toBe(2);
  });
});

describe('one precedence: defaults < config file < environment < flags', () => {
  const load = (file: Record<string, unknown>, env: NodeJS.ProcessEnv, overrides = {}) => {
    const project = tempProject({ 'mp.config.json': JSON.stringify(file) });
    return loadConfig({ projectDir: project.dir, env, overrides }).then((c) => ({ c, project }));
  };

  it('for MicroPython: a later layer that names a ref replaces an earlier path, and the other way round', async () => {
    const file = { micropython: { path: './mpy', git: 'https://file.example/mp.git' } };
    const a = await load(file, {});
    expect(a.c.micropython).toEqual({
      ref: undefined,
      path: a.project.path('mpy'),
      git: 'https://file.example/mp.git',
    });
    const b = await load(file, {
      MP_MICROPYTHON_REF: 'v1.27.0',
      MP_MICROPYTHON_GIT: 'https://env.example/mp.git',
    });
    expect(b.c.micropython).toEqual({ ref: 'v1.27.0', path: undefined, git: 'https://env.example/mp.git' });
    const c = await load(file, { MP_MICROPYTHON_PATH: '/env/mpy' }, { micropythonRef: 'v1.28.0' });
    expect(c.c.micropython).toMatchObject({ ref: 'v1.28.0', path: undefined });
    const d = await load({ micropython: { ref: 'v1.27.0' } }, { MP_MICROPYTHON_PATH: '/env/mpy' });
    expect(d.c.micropython).toMatchObject({ ref: undefined, path: '/env/mpy' });
    const e = await load(
      { micropython: { ref: 'v1.27.0' } },
      { MP_MICROPYTHON_REF: 'v1.28.0' },
      { micropythonRef: '../here' },
    );
    expect(e.c.micropython).toMatchObject({ ref: undefined, path: e.project.path('..', 'here') });
  });

  it('for the other keys flags override the file, and the environment adds mirrors over the file', async () => {
    const { c } = await load(
      { board: 'unix', jobs: 3, variant: 'A', make: { X: 1 }, mirrors: { 'https://a/': 'https://file/' } },
      { MP_GIT_MIRRORS: 'https://a/=https://env/' },
      { board: 'esp32-generic', jobs: 5, variant: 'B', make: { X: '2' } },
    );
    expect(c).toMatchObject({ board: 'esp32-generic', jobs: 5, variant: 'B', make: { X: '2' } });
    expect(c.mirrors).toEqual({ 'https://a/': 'https://env/' });
  });
});
