/**
 * `mp build` end to end: the real CLI, the real Docker engine, fixture repositories behind mp's
 * default URLs (MP_GIT_MIRRORS). Given a project with modules/app.py and mp.config.json naming only
 * the toolchain image, when I run `mp build`, then …
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import type { TempProject } from '@mp/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BuildFixtures,
  buildProject,
  changedSectors,
  containersCreatedBetween,
  exportedNames,
  jsonResult,
  mpBuild,
  projectContainers,
  readJson,
  setupBuildFixtures,
} from './build-helpers.ts';

let fixtures: BuildFixtures;
let project: TempProject;
let first: { firmware: string; sidecar: string; data: Buffer };

beforeAll(async () => {
  fixtures = await setupBuildFixtures();
  project = buildProject(fixtures, {}, {});
}, 600_000);
afterAll(() => {
  fixtures?.cleanup();
  project?.cleanup();
});

const NAME = /^ESP8266-micropython-v1\.28\.0-mqtt-as-\d{8}-\d{6}\.bin$/;

describe('mp build with the defaults (D1 mini, newest stable MicroPython, mqtt_as, modules/)', () => {
  it('exports a named firmware, its sidecar, the latest index and mqtt_local.py', async () => {
    const result = await mpBuild(fixtures, project);
    expect(result.code, result.output).toBe(0);
    expect(result.stdout).toMatch(/✔ Built export\/ESP8266-micropython-v1\.28\.0-mqtt-as-\d{8}-\d{6}\.bin/);
    const names = exportedNames(project);
    const firmware = names.find((n) => n.endsWith('.bin'))!;
    expect(firmware).toMatch(NAME);
    expect(names).toEqual([firmware, `${firmware}.json`, 'latest-esp8266-d1mini.json', 'mqtt_local.py']);
    const data = readFileSync(project.path('export', firmware));
    first = { firmware, sidecar: `${firmware}.json`, data };
    // The plain output of a non-TTY run: one readable line per stage.
    expect(result.stderr).toContain('▸ Fetch sources');
    expect(result.stderr).toMatch(/✔ Compiled esp8266-d1mini/);
  });

  it('builds the image the way the real port does: an ESP8266 image at 0x0, frozen modules in it', () => {
    const { data } = first;
    expect(data[0]).toBe(0xe9);
    expect(data[2]).toBe(2); // dio
    expect(data.length).toBeGreaterThan(0x9000);
    const text = data.toString('latin1');
    expect(text).toContain('GREETING = "hello from app"'); // modules/app.py
    expect(text).toContain('class MQTTClient'); // mqtt_as/__init__.py
    expect(text).toContain('PROPERTIES = {0x01'); // mqtt_as/mqtt_v5_properties.py
    expect(text).toContain('import inisetup'); // _boot.py, from the board's default manifest
    expect(text).toContain('class MQTTClient:\n    def __init__(self, client_id'); // umqtt.simple via require()
    expect(text).not.toContain('range test'); // mqtt_as/tests is not frozen
  });

  it('records provenance in the sidecar: board, MicroPython tag and sha, library sha, image, sha256, layout', () => {
    const sidecar = readJson(project.path('export', first.sidecar));
    expect(sidecar).toMatchObject({
      schema: 'mp.export/1',
      firmware: first.firmware,
      board: {
        id: 'esp8266-d1mini',
        port: 'esp8266',
        board: 'ESP8266_GENERIC',
        chip: 'ESP8266',
        exportPrefix: 'ESP8266',
      },
      micropython: {
        tag: 'v1.28.0',
        version: '1.28.0',
        sha: fixtures.repos.micropython.tags['v1.28.0'],
        git: 'https://github.com/micropython/micropython.git',
      },
      libraries: [
        {
          id: 'mqtt_as',
          git: 'https://github.com/peterhinch/micropython-mqtt.git',
          ref: 'master',
          sha: fixtures.repos.mqtt.head,
          frozen: ['mqtt_as/__init__.py', 'mqtt_as/mqtt_v5_properties.py'],
        },
      ],
      modules: [{ file: 'app.py' }],
      image: { ref: fixtures.image },
      sha256: createHash('sha256').update(first.data).digest('hex'),
      size: first.data.length,
      flash: {
        mode: 'keep',
        freq: 'keep',
        size: 'detect',
        baud: 460800,
        segments: [{ offset: 0, file: first.firmware, artifact: 'firmware' }],
      },
      exportedFiles: [
        { file: 'mqtt_local.py', library: 'mqtt_as', from: 'mqtt_local_example.py', status: 'written' },
      ],
    });
    expect(sidecar.image.id).toMatch(/^sha256:/);
    expect(sidecar.durationMs).toBeGreaterThan(0);
    expect(new Date(sidecar.builtAt).getTime()).toBeLessThanOrEqual(Date.now());
    const latest = readJson(project.path('export', 'latest-esp8266-d1mini.json'));
    expect(latest).toMatchObject({
      sidecar: first.sidecar,
      firmware: first.firmware,
      sha256: sidecar.sha256,
    });
    expect(readFileSync(project.path('export', 'mqtt_local.py'), 'utf8')).toContain(
      'config["ssid"] = "my_network"',
    );
  });

  it('leaves no container and no root-owned files, and keeps the full log', () => {
    expect(projectContainers(project)).toEqual([]);
    const uid = process.getuid?.();
    if (uid !== undefined) expect(statSync(project.path('export', first.firmware)).uid).toBe(uid);
    const log = readFileSync(project.path('.mp/build/esp8266-d1mini/build.log'), 'utf8');
    expect(log).toContain('Updating submodules: lib/axtls lib/berkeley-db-1.xx lib/micropython-lib');
    expect(log).toContain('MPY app.py');
    expect(log).toContain('Create /mp/build/port/firmware.bin');
  });

  it('answers an unchanged build from the cache, starting no container', async () => {
    const since = new Date();
    const t = performance.now();
    const result = await mpBuild(fixtures, project, ['--json']);
    const elapsed = performance.now() - t;
    expect(result.code, result.output).toBe(0);
    const answer = jsonResult(result);
    expect(answer).toMatchObject({
      ok: true,
      upToDate: true,
      firmware: project.path('export', first.firmware),
    });
    expect(containersCreatedBetween(project, since, new Date())).toEqual([]);
    expect(exportedNames(project).filter((n) => n.endsWith('.bin'))).toEqual([first.firmware]);
    expect(elapsed).toBeLessThan(3000);
  });

  it('rebuilds incrementally after a module edit: only that module is recompiled, few sectors change', async () => {
    project.write('modules/app.py', 'GREETING = "hello again"\n\n\ndef main():\n    print(GREETING)\n');
    const result = await mpBuild(fixtures, project, ['--json']);
    expect(result.code, result.output).toBe(0);
    const answer = jsonResult(result);
    expect(answer.upToDate).toBe(false);
    expect(answer.firmware).not.toBe(project.path('export', first.firmware));
    const log = readFileSync(project.path('.mp/build/esp8266-d1mini/build.log'), 'utf8');
    expect(log).toContain('MPY app.py');
    expect(log).not.toContain('MPY _boot.py');
    expect(log).not.toMatch(/^CC /m);
    expect(log).not.toContain('make -C mpy-cross');
    const data = readFileSync(answer.firmware);
    expect(data.toString('latin1')).toContain('hello again');
    expect(changedSectors(first.data, data)).toBeLessThanOrEqual(3);
    // The old export stays; the index points at the new one.
    expect(existsSync(project.path('export', first.firmware))).toBe(true);
    expect(readJson(project.path('export', 'latest-esp8266-d1mini.json')).firmware).toBe(
      answer.firmware.split('/').pop(),
    );
  });

  it('prints the generated manifest with --print-manifest, and nothing else on stdout', async () => {
    const result = await mpBuild(fixtures, project, ['--print-manifest']);
    expect(result.code, result.output).toBe(0);
    expect(result.stdout.split('\n').filter((l) => l && !l.startsWith('#'))).toEqual([
      'include("$(BOARD_DIR)/manifest_2MiB.py")',
      'package("mqtt_as", files=["__init__.py", "mqtt_v5_properties.py"], base_path="/mp/libs/mqtt_as")',
      'module("app.py", base_path="/mp/modules")',
    ]);
  });

  it('rebuilds when anything else changes: a module added, another MicroPython, libraries, --force', async () => {
    const build = async (args: string[] = [], env: NodeJS.ProcessEnv = {}) => {
      const result = await mpBuild(fixtures, project, ['--json', ...args], { env });
      expect(result.code, result.output).toBe(0);
      return jsonResult(result);
    };
    project.write('modules/drivers/__init__.py', 'SENSORS = []\n');
    expect((await build()).upToDate).toBe(false);
    expect((await build()).upToDate).toBe(true);

    const older = await build(['--micropython', 'v1.27.0']);
    expect(older.upToDate).toBe(false);
    expect(older.firmware).toMatch(/ESP8266-micropython-v1\.27\.0-mqtt-as-/);
    expect((await build(['--micropython', 'v1.27.0'])).upToDate).toBe(true);

    const noLibs = await build(['--no-libs']);
    expect(noLibs.upToDate).toBe(false);
    expect(noLibs.firmware).toMatch(/ESP8266-micropython-v1\.28\.0-\d{8}-\d{6}\.bin$/);

    expect((await build()).upToDate).toBe(false); // back to mqtt_as: its inputs differ from the last build
    expect((await build(['--force'])).upToDate).toBe(false);

    // A new commit on the library's branch is seen once the remembered answer expires (MP_REF_TTL=0 here).
    fixtures.repos.commit(
      fixtures.repos.mqtt,
      { 'mqtt_as/__init__.py': 'VERSION = (0, 9, 9)\n\nclass MQTTClient:\n    pass\n' },
      'new',
    );
    expect((await build()).upToDate).toBe(true);
    const moved = await build([], { MP_REF_TTL: '0' });
    expect(moved.upToDate).toBe(false);
    expect(readFileSync(moved.firmware).toString('latin1')).toContain('VERSION = (0, 9, 9)');
  });

  it('never overwrites an exported file the user edited', async () => {
    writeFileSync(project.path('export', 'mqtt_local.py'), 'config["wifi_pw"] = "my real password"\n');
    project.write('modules/app.py', 'GREETING = "edited once more"\n');
    const result = await mpBuild(fixtures, project);
    expect(result.code, result.output).toBe(0);
    expect(result.stdout).toContain('kept your edited copy');
    expect(readFileSync(project.path('export', 'mqtt_local.py'), 'utf8')).toContain('my real password');
    expect(readFileSync(project.path('export', 'mqtt_local.py.new'), 'utf8')).toContain('config["ssid"]');
  });
});
