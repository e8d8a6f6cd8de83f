import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempProject } from '@mp/test-utils';
import { describe, expect, it } from 'vitest';
import {
  findWorkspaceRoot,
  MpError,
  PluginRegistry,
  ValidationError,
  workspacePackageDirs,
} from '../src/index.ts';

const boardModule = (id: string, extra = '') => `export default {
  kind: 'board', id: '${id}', title: 'Test ${id}', port: 'esp8266', chip: 'ESP8266', exportPrefix: 'TEST',
  board: 'ESP8266_GENERIC', toolchain: { image: 'example/toolchain:1' }, artifacts: { firmware: 'firmware.bin' },
  firmware: 'firmware', defaultManifest: '$(BOARD_DIR)/manifest.py',
  flash: { segments: [{ offset: 0, artifact: 'firmware' }], mode: 'keep', freq: 'keep', size: 'detect', baud: 460800 },
  ${extra}
};\n`;

function pluginPackage(name: string, mp: Record<string, string>, source: string) {
  return {
    [`${name}/package.json`]: JSON.stringify({
      name: `@x/${name}`,
      version: '1.2.3',
      type: 'module',
      exports: './index.js',
      mp,
    }),
    [`${name}/index.js`]: source,
  };
}

describe('plugin discovery', () => {
  it('finds plugin packages of a workspace from package.json alone, and imports them only when loaded', async () => {
    const ws = tempProject({
      'pnpm-workspace.yaml': 'packages:\n  - boards/*\n  - "plugins/*" # comment\n',
      'package.json': '{"name":"ws","private":true}',
      ...Object.fromEntries(
        Object.entries(pluginPackage('board-a', { board: 'board-a' }, boardModule('board-a'))).map(
          ([k, v]) => [`boards/${k}`, v],
        ),
      ),
      // Importing this module would throw: listing must not import it.
      ...Object.fromEntries(
        Object.entries(
          pluginPackage('board-b', { board: 'board-b' }, 'throw new Error("imported too early")'),
        ).map(([k, v]) => [`boards/${k}`, v]),
      ),
      'plugins/not-a-plugin/package.json': '{"name":"plain"}',
    });
    const registry = PluginRegistry.create({ roots: [ws.dir] });
    expect(registry.list('board').map((l) => [l.id, l.source, l.version])).toEqual([
      ['board-a', '@x/board-a', '1.2.3'],
      ['board-b', '@x/board-b', '1.2.3'],
    ]);
    expect((await registry.load('board', 'board-a')).title).toBe('Test board-a');
  });

  it('finds plugins among the installed dependencies of a project', async () => {
    const project = tempProject({
      'package.json': JSON.stringify({ name: 'app', dependencies: { '@x/board-dep': '1.0.0' } }),
      ...Object.fromEntries(
        Object.entries(pluginPackage('board-dep', { board: 'dep-board' }, boardModule('dep-board'))).map(
          ([k, v]) => [`node_modules/@x/${k.replace('board-dep/', 'board-dep/')}`, v],
        ),
      ),
    });
    const registry = PluginRegistry.create({ roots: [project.dir] });
    expect(registry.list('board').map((l) => l.id)).toEqual(['dep-board']);
    expect((await registry.load('board', 'dep-board')).id).toBe('dep-board');
  });

  it('names the package when a plugin fails to import, and says what to do', async () => {
    const project = tempProject({
      ...Object.fromEntries(
        Object.entries(pluginPackage('broken', { board: 'broken' }, 'import "./missing.js";')).map(
          ([k, v]) => [`boards/${k}`, v],
        ),
      ),
    });
    const registry = PluginRegistry.create({ roots: [project.dir] });
    const error = await registry.load('board', 'broken').catch((e) => e);
    expect(error).toBeInstanceOf(MpError);
    expect(error.code).toBe('PLUGIN_IMPORT_FAILED');
    expect(error.message).toContain('@x/broken');
    expect(error.plugin).toBe('@x/broken');
    expect(error.hint).toMatch(/Fix the error/);
  });

  it('reports every invalid field of a plugin at once, with key paths and the package', async () => {
    const bad = `export default { kind: 'board', id: 'Bad_Id', title: 'x', port: 'esp8266', chip: 'Z80', exportPrefix: 'X',
      toolchain: {}, artifacts: { firmware: 'f.bin' }, firmware: 'elf', defaultManifest: 'm.py',
      flash: { segments: [{ offset: 0x800, artifact: 'nope' }], mode: 'fast', freq: '40m', size: '4MB', baud: 460800 } };`;
    const project = tempProject({
      ...Object.fromEntries(
        Object.entries(pluginPackage('bad', { board: 'Bad_Id' }, bad)).map(([k, v]) => [`boards/${k}`, v]),
      ),
    });
    const error = await PluginRegistry.create({ roots: [project.dir] })
      .load('board', 'Bad_Id')
      .catch((e) => e);
    expect(error).toBeInstanceOf(ValidationError);
    const paths = (error as ValidationError).issues.map((i) => i.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        'id',
        'chip',
        'toolchain',
        'firmware',
        'flash.mode',
        'flash.segments[0].offset',
        'flash.segments[0].artifact',
      ]),
    );
    expect(error.message).toContain('@x/bad');
  });

  it('reports two plugins with the same id, naming both packages', () => {
    const project = tempProject({
      ...Object.fromEntries(
        Object.entries(pluginPackage('one', { board: 'same' }, boardModule('same'))).map(([k, v]) => [
          `boards/${k}`,
          v,
        ]),
      ),
      ...Object.fromEntries(
        Object.entries(pluginPackage('two', { board: 'same' }, boardModule('same'))).map(([k, v]) => [
          `boards/${k}`,
          v,
        ]),
      ),
    });
    expect(() => PluginRegistry.create({ roots: [project.dir] })).toThrow(/"same".*@x\/one.*@x\/two/s);
  });

  it('rejects a module whose id differs from its package.json declaration', async () => {
    const project = tempProject({
      ...Object.fromEntries(
        Object.entries(pluginPackage('mismatch', { board: 'declared' }, boardModule('exported'))).map(
          ([k, v]) => [`boards/${k}`, v],
        ),
      ),
    });
    const error = await PluginRegistry.create({ roots: [project.dir] })
      .load('board', 'declared')
      .catch((e) => e);
    expect(error.code).toBe('PLUGIN_ID_MISMATCH');
  });

  it('suggests the nearest id for an unknown board', async () => {
    const project = tempProject({
      ...Object.fromEntries(
        Object.entries(pluginPackage('a', { board: 'esp8266-d1mini' }, boardModule('esp8266-d1mini'))).map(
          ([k, v]) => [`boards/${k}`, v],
        ),
      ),
    });
    const error = await PluginRegistry.create({ roots: [project.dir] })
      .load('board', 'esp8266-d1mni')
      .catch((e) => e);
    expect(error.code).toBe('UNKNOWN_BOARD');
    expect(error.message).toContain('did you mean "esp8266-d1mini"');
    expect(error.exitCode).toBe(2);
  });

  it('collects a package whose "mp" field is unusable as a problem, without hiding the others', async () => {
    const project = tempProject({
      'boards/weird/package.json': JSON.stringify({ name: 'weird', mp: { board: 'x', library: 'y' } }),
      ...Object.fromEntries(
        Object.entries(pluginPackage('fine', { board: 'fine' }, boardModule('fine'))).map(([k, v]) => [
          `boards/${k}`,
          v,
        ]),
      ),
    });
    const registry = PluginRegistry.create({ roots: [project.dir] });
    const { plugins, errors } = await registry.loadAll('board');
    expect(plugins.map((p) => p.plugin.id)).toEqual(['fine']);
    expect(errors.map((e) => e.code)).toEqual(['PLUGIN_PACKAGE_INVALID']);
    writeFileSync(join(project.dir, 'x'), '');
  });
});

describe('workspace packages', () => {
  const tree = {
    'boards/esp/d1/package.json': '{"name":"d1"}',
    'boards/esp/legacy/package.json': '{"name":"legacy"}',
    'boards/esp/d1/fixtures/broken/package.json': '{"name":"fixture"}',
    'boards/esp/node_modules/dep/package.json': '{"name":"dep"}',
    'boards/notes/README.md': 'not a package',
    'plugins/lib/package.json': '{"name":"lib"}',
    'plugins/lib/sub/package.json': '{"name":"too-deep"}',
  };
  const found = ['boards/esp/d1', 'plugins/lib'];

  it('follows pnpm-workspace.yaml: `**` at any depth, `!` taking folders out, never node_modules', () => {
    const ws = tempProject({
      ...tree,
      'pnpm-workspace.yaml': `# the plugins of this workspace
packages:
  - 'boards/**'
  - "plugins/*" # one level only
  - '!boards/**/legacy'
  - '!**/fixtures/**'
onlyBuiltDependencies: [esbuild]
`,
    });
    expect(workspacePackageDirs(ws.path('plugins/lib/sub'))).toEqual(found.map((d) => ws.path(d)));
    expect(findWorkspaceRoot(ws.path('boards/esp'))?.dir).toBe(ws.dir);
  });

  it('follows the "workspaces" of an npm or yarn package.json the same way', () => {
    const ws = tempProject({
      ...tree,
      'package.json': JSON.stringify({
        name: 'ws',
        workspaces: { packages: ['boards/**', 'plugins/*', '!boards/**/legacy', '!**/fixtures/**'] },
      }),
    });
    expect(workspacePackageDirs(ws.dir)).toEqual(found.map((d) => ws.path(d)));
  });

  it('names a pnpm-workspace.yaml that is not YAML', () => {
    const ws = tempProject({ 'pnpm-workspace.yaml': 'packages:\n  - [boards/*\n' });
    expect(() => workspacePackageDirs(ws.dir)).toThrow(MpError);
    expect(() => workspacePackageDirs(ws.dir)).toThrow(`${ws.path('pnpm-workspace.yaml')} is not valid YAML`);
  });
});
