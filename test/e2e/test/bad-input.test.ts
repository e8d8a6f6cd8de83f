/**
 * The bad-input battery: every case is a real `mp build` on a throwaway project that must fail with
 * the right exit code and a message naming the file, key, plugin or step at fault, twice (plain
 * and --json), leaving no partial export, container, lock or temporary file behind.
 */
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TempProject } from '@mp/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

interface Case {
  name: string;
  /** Files of the project besides mp.config.json (which names the fixture image) and modules/app.py. */
  files?: Record<string, string>;
  /** Config keys merged into mp.config.json; `null` writes no mp.config.json at all. */
  config?: Record<string, unknown> | null;
  args?: string[];
  env?: (project: TempProject) => NodeJS.ProcessEnv;
  /** Runs before mp (to make folders, files that are not text, …). */
  prepare?: (project: TempProject) => void;
  /** Arguments that depend on the project's folder. */
  argsFor?: (project: TempProject) => string[];
  exit: number;
  code: string;
  /** What the message must name: plain text, checked in stderr (and in the JSON error's message+hint+file). */
  names: Array<string | ((project: TempProject) => string)>;
}

const cases: Case[] = [
  // ── the config file ──
  {
    name: 'config that is not JSON',
    files: { 'mp.config.json': '{ "board": ' },
    config: null,
    exit: 2,
    code: 'CONFIG_LOAD_FAILED',
    names: ['mp.config.json', 'not valid JSON'],
  },
  {
    name: 'config module that throws',
    files: { 'mp.config.mjs': 'throw new Error("broken on purpose")' },
    config: null,
    exit: 2,
    code: 'CONFIG_LOAD_FAILED',
    names: ['mp.config.mjs', 'broken on purpose'],
  },
  {
    name: 'config that is a list',
    files: { 'mp.config.json': '[]' },
    config: null,
    exit: 2,
    code: 'CONFIG_INVALID',
    names: ['mp.config.json', 'must export an object'],
  },
  {
    name: 'config module without a default export',
    files: { 'mp.config.mjs': 'export const board = "unix";' },
    config: null,
    exit: 2,
    code: 'CONFIG_INVALID',
    names: ['has no default export'],
  },
  {
    name: 'unknown config key',
    config: { boards: 'unix' },
    exit: 2,
    code: 'CONFIG_INVALID',
    names: ['boards', 'board'],
  },
  {
    name: 'board that is not a string',
    config: { board: 8266 },
    exit: 2,
    code: 'CONFIG_INVALID',
    names: ['board', 'number 8266'],
  },
  {
    name: 'libraries that are not a list',
    config: { libraries: 'mqtt_as' },
    exit: 2,
    code: 'CONFIG_INVALID',
    names: ['libraries', 'must be a list'],
  },
  {
    name: 'library with both path and git',
    config: { libraries: [{ id: 'mqtt_as', path: 'x', git: 'y' }] },
    exit: 2,
    code: 'CONFIG_INVALID',
    names: ['libraries[0]', 'cannot be combined'],
  },
  {
    name: 'library entry without id',
    config: { libraries: [{ ref: 'master' }] },
    exit: 2,
    code: 'CONFIG_INVALID',
    names: ['libraries[0].id', 'is required'],
  },
  {
    name: 'jobs of zero',
    config: { jobs: 0 },
    exit: 2,
    code: 'CONFIG_INVALID',
    names: ['jobs', 'at least 1'],
  },
  {
    name: 'baud far too low',
    config: { flash: { baud: 100 } },
    exit: 2,
    code: 'CONFIG_INVALID',
    names: ['flash.baud'],
  },
  {
    name: 'make variable with a bad name',
    config: { make: { '9LIVES': 1 } },
    exit: 2,
    code: 'CONFIG_INVALID',
    names: ['make.9LIVES', 'not a make variable name'],
  },
  {
    name: 'make value that is an object',
    config: { make: { MICROPY_PY_BTREE: { on: false } } },
    exit: 2,
    code: 'CONFIG_INVALID',
    names: ['make.MICROPY_PY_BTREE'],
  },
  {
    name: 'empty variant',
    config: { variant: '' },
    exit: 2,
    code: 'CONFIG_INVALID',
    names: ['variant', 'non-empty string'],
  },
  {
    name: 'submodules.fetch that is not a list',
    config: { submodules: { fetch: 'lib/axtls' } },
    exit: 2,
    code: 'CONFIG_INVALID',
    names: ['submodules.fetch'],
  },
  {
    name: 'micropython that is a string',
    config: { micropython: 'v1.28.0' },
    exit: 2,
    code: 'CONFIG_INVALID',
    names: ['micropython', 'must be an object'],
  },
  {
    name: 'mirror with an empty target',
    config: { mirrors: { 'https://github.com/': '' } },
    exit: 2,
    code: 'CONFIG_INVALID',
    names: ['mirrors', 'https://github.com/'],
  },
  {
    name: 'two config files',
    files: { 'mp.config.mjs': 'export default {}' },
    exit: 2,
    code: 'CONFIG_AMBIGUOUS',
    names: ['mp.config.json', 'mp.config.mjs', '--config'],
  },
  {
    name: '--config naming a missing file',
    args: ['--config', 'other.json'],
    exit: 2,
    code: 'CONFIG_NOT_FOUND',
    names: ['other.json'],
  },
  {
    name: 'inline plugin without kind',
    files: { 'mp.config.mjs': 'export default { image: process.env.MP_TEST_IMAGE, plugins: [{ id: "x" }] }' },
    config: null,
    env: () => ({ MP_TEST_IMAGE: fixtures.image }),
    exit: 2,
    code: 'PLUGIN_INVALID',
    names: ['kind', 'got nothing'],
  },
  // ── flags ──
  {
    name: 'unknown board',
    args: ['--board', 'esp8266-d1mni'],
    exit: 2,
    code: 'UNKNOWN_BOARD',
    names: ['esp8266-d1mni', 'did you mean "esp8266-d1mini"'],
  },
  {
    name: 'unknown library',
    args: ['--lib', 'mqttas'],
    exit: 2,
    code: 'UNKNOWN_LIBRARY',
    names: ['mqttas', 'mqtt_as'],
  },
  {
    name: '--jobs that is not a number',
    args: ['--jobs', 'many'],
    exit: 2,
    code: 'USAGE',
    names: ['--jobs', 'many'],
  },
  {
    name: '--make without =',
    args: ['--make', 'MICROPY_PY_BTREE'],
    exit: 2,
    code: 'USAGE',
    names: ['--make', 'MICROPY_PY_BTREE', 'VAR=VALUE'],
  },
  {
    name: '--make with a bad name',
    args: ['--make', '1X=2'],
    exit: 2,
    code: 'USAGE',
    names: ['--make', '1X=2'],
  },
  {
    name: 'unknown MicroPython ref',
    args: ['--micropython', 'v9.9.9'],
    exit: 2,
    code: 'UNKNOWN_REF',
    names: ['v9.9.9', 'v1.28.0'],
  },
  {
    name: '--micropython naming a missing folder',
    args: ['--micropython', './no-such-tree'],
    exit: 2,
    code: 'SOURCE_PATH_NOT_FOUND',
    names: ['no-such-tree', 'does not exist'],
  },
  {
    name: '--micropython naming a file',
    files: { 'notes.txt': 'x' },
    args: ['--micropython', './notes.txt'],
    exit: 2,
    code: 'SOURCE_PATH_NOT_FOUND',
    names: ['notes.txt', 'is a file, not a folder'],
  },
  {
    name: '--micropython naming a folder that is not MicroPython',
    files: { 'other/README': 'x' },
    args: ['--micropython', './other'],
    exit: 2,
    code: 'NOT_MICROPYTHON',
    names: ['other', 'not a MicroPython checkout', 'py/mpconfig.h'],
  },
  {
    name: "a MicroPython folder without the board's port",
    files: { 'mpy/py/mpconfig.h': '#define MICROPY_VERSION_MAJOR 1\n', 'mpy/ports/unix/Makefile': 'all:\n' },
    args: ['--micropython', './mpy'],
    exit: 2,
    code: 'NOT_MICROPYTHON',
    names: ['ports/esp8266'],
  },
  {
    name: '--modules naming a missing folder',
    args: ['--modules', 'nope'],
    exit: 2,
    code: 'MODULES_NOT_FOUND',
    names: ['--modules', 'nope', 'does not exist'],
  },
  {
    name: '--modules naming a file',
    files: { 'one.py': 'x = 1\n' },
    args: ['--modules', 'one.py'],
    exit: 2,
    code: 'MODULES_NOT_FOUND',
    names: ['one.py', 'is a file'],
  },
  {
    name: 'config modules naming a missing folder',
    config: { modules: 'src/py' },
    exit: 2,
    code: 'MODULES_NOT_FOUND',
    names: ['`modules`', 'src/py'],
  },
  {
    name: '--cwd naming a missing project',
    argsFor: (p) => ['--cwd', p.path('missing')],
    exit: 2,
    code: 'PROJECT_NOT_FOUND',
    names: ['missing', 'does not exist'],
  },
  {
    name: '--export-dir naming a file',
    files: { 'out.bin': 'x' },
    args: ['--export-dir', 'out.bin'],
    exit: 2,
    code: 'EXPORT_DIR_INVALID',
    names: ['out.bin', 'is a file'],
  },
  {
    name: 'export folder that is a file',
    files: { export: 'not a folder' },
    exit: 2,
    code: 'EXPORT_DIR_INVALID',
    names: ['export', '--export-dir'],
  },
  // ── the environment ──
  {
    name: 'MP_CACHE_DIR naming a file',
    files: { 'cache-file': 'x' },
    env: (p) => ({ MP_CACHE_DIR: p.path('cache-file') }),
    exit: 2,
    code: 'CACHE_DIR_INVALID',
    names: ['MP_CACHE_DIR', 'cache-file', 'not a folder'],
  },
  {
    name: 'MP_GIT_MIRRORS without =',
    env: () => ({ MP_GIT_MIRRORS: 'https://github.com/' }),
    exit: 2,
    code: 'USAGE',
    names: ['MP_GIT_MIRRORS', 'https://github.com/', 'no "="'],
  },
  {
    name: 'MP_GIT_MIRRORS with an empty target',
    env: () => ({ MP_GIT_MIRRORS: 'https://github.com/=' }),
    exit: 2,
    code: 'USAGE',
    names: ['MP_GIT_MIRRORS', 'nothing after "="'],
  },
  {
    name: 'MP_GIT_MIRRORS pointing nowhere',
    env: (p) => ({ MP_GIT_MIRRORS: `https://github.com/=${p.path('no-mirror')}/` }),
    exit: 1,
    code: 'SOURCE_UNREACHABLE',
    names: [
      'no-mirror',
      'MP_GIT_MIRRORS',
      'does not appear to be a git repository; Could not read from remote repository.',
    ],
  },
  {
    name: 'a C module folder that does not exist',
    config: { cModules: ['cmodules/none'] },
    exit: 2,
    code: 'C_MODULE_INVALID',
    names: ['cmodules/none', 'does not exist', 'mp new c-module'],
  },
  {
    name: 'a C module without micropython.mk',
    files: { 'cmodules/half/half.c': 'int x;\n' },
    config: { cModules: ['cmodules/half'] },
    exit: 2,
    code: 'C_MODULE_INVALID',
    names: ['cmodules/half', 'micropython.mk'],
  },
  {
    name: 'cModules that is not a list',
    config: { cModules: 'cmodules/x' },
    exit: 2,
    code: 'CONFIG_INVALID',
    names: ['cModules', 'must be a list'],
  },
  // ── modules and libraries ──
  {
    name: 'a module named like a frozen library',
    files: { 'modules/mqtt_as.py': 'x = 1\n' },
    exit: 2,
    code: 'MODULE_NAME_CLASH',
    names: ['modules/mqtt_as.py', 'mqtt_as', 'Rename'],
  },
  {
    name: 'a package named like a frozen library',
    files: { 'modules/mqtt_as/__init__.py': 'x = 1\n' },
    exit: 2,
    code: 'MODULE_NAME_CLASH',
    names: ['modules/mqtt_as/__init__.py', 'library mqtt_as'],
  },
  {
    name: 'a module file name that is not UTF-8',
    prepare: (p) =>
      writeFileSync(
        Buffer.concat([Buffer.from(`${p.path('modules')}/`), Buffer.from([0x62, 0xff, 0x2e, 0x70, 0x79])]),
        'x = 1\n',
      ),
    exit: 2,
    code: 'MODULE_NAME_INVALID',
    names: ['not UTF-8', '62ff2e7079'],
  },
  {
    name: 'a library path that does not exist',
    config: { libraries: [{ id: 'mqtt_as', path: './vendor/mqtt' }] },
    exit: 2,
    code: 'SOURCE_PATH_NOT_FOUND',
    names: ['library mqtt_as', 'vendor/mqtt'],
  },
  {
    name: 'a library ref that does not exist',
    config: { libraries: [{ id: 'mqtt_as', ref: 'no-such-branch' }] },
    exit: 2,
    code: 'UNKNOWN_REF',
    names: ['no-such-branch'],
  },
  {
    name: 'a library folder without its frozen files',
    files: { 'vendor/mqtt/README': 'x' },
    config: { libraries: [{ id: 'mqtt_as', path: './vendor/mqtt' }] },
    exit: 1,
    code: 'LIBRARY_FREEZE_MISSING',
    names: ['mqtt_as', 'vendor/mqtt'],
  },
];

/** What a failed build must not leave: temporaries, locks and exports in the project; temporaries in the cache. */
function leftovers(project: TempProject): string[] {
  const found: string[] = [];
  const walk = (dir: string, rel: string) => {
    let entries: string[] = [];
    try {
      entries = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of entries) {
      const path = join(dir, name);
      const r = rel ? `${rel}/${name}` : name;
      if (/\.tmp$|^\.tmp-|^\.mp-submodule-/.test(name) || (name === 'lock' && rel.startsWith('.mp')))
        found.push(r);
      if (statSync(path, { throwIfNoEntry: false })?.isDirectory() && name !== 'node_modules') walk(path, r);
    }
  };
  walk(project.dir, '');
  walk(fixtures.cacheDir, 'cache');
  return found;
}

describe('the bad-input battery', () => {
  it(`has at least 40 cases (${cases.length})`, () => {
    expect(cases.length).toBeGreaterThanOrEqual(40);
  });

  for (const c of cases) {
    it(`refuses ${c.name}`, async () => {
      const project =
        c.config === null
          ? buildProject(fixtures, c.files ?? {}, {})
          : buildProject(fixtures, c.files ?? {}, c.config ?? {});
      if (c.config === null && !c.files?.['mp.config.json']) {
        // The case's own config module stands alone.
        const { rmSync } = await import('node:fs');
        rmSync(project.path('mp.config.json'));
      }
      mkdirSync(project.path('modules'), { recursive: true });
      c.prepare?.(project);
      const args = [...(c.args ?? []), ...(c.argsFor?.(project) ?? [])];
      const env = c.env?.(project) ?? {};
      const plain = await mpBuild(fixtures, project, args, { env });
      const json = await mpBuild(fixtures, project, [...args, '--json'], { env });
      expect(plain.code, plain.output).toBe(c.exit);
      expect(json.code, json.output).toBe(c.exit);
      const error = jsonResult(json).error as { code: string; message: string; hint?: string; file?: string };
      expect(error.code, json.stdout).toBe(c.code);
      const said = [error.message, error.hint ?? '', error.file ?? ''].join('\n');
      for (const name of c.names) {
        const text = typeof name === 'string' ? name : name(project);
        expect(plain.stderr, `plain output names ${text}`).toContain(text);
        expect(said, `JSON error names ${text}`).toContain(text);
      }
      expect(plain.stderr).not.toMatch(/this is a bug in mp/i);
      if (statSync(project.path('export'), { throwIfNoEntry: false })?.isDirectory())
        expect(exportedNames(project)).toEqual([]);
      expect(projectContainers(project)).toEqual([]);
      expect(leftovers(project)).toEqual([]);
    });
  }
});
