/**
 * The other boards, and builds running at the same time.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MQTT_AS_FILES, tempProject } from '@mp/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BuildFixtures,
  buildProject,
  exportedNames,
  jsonResult,
  mpBuild,
  projectContainers,
  readJson,
  setupBuildFixtures,
} from './build-helpers.ts';

let fixtures: BuildFixtures;

beforeAll(async () => {
  fixtures = await setupBuildFixtures();
}, 600_000);
afterAll(() => fixtures?.cleanup());

describe('mp build --board unix', () => {
  it('produces a host executable with the frozen modules, which runs frozen code on the host', async () => {
    const project = buildProject(fixtures, {
      'modules/app.py':
        'from mqtt_as import VERSION\n\nANSWER = 42\n\n\ndef describe():\n    return "mqtt_as %s, answer %d" % (".".join(map(str, VERSION)), ANSWER)\n',
    });
    const result = await mpBuild(fixtures, project, ['--board', 'unix', '--json']);
    expect(result.code, result.output).toBe(0);
    const answer = jsonResult(result);
    expect(answer.firmware).toMatch(/\/UNIX-micropython-v1\.28\.0-mqtt-as-\d{8}-\d{6}$/);
    const sidecar = readJson(answer.sidecar);
    expect(sidecar).toMatchObject({
      board: { id: 'unix', port: 'unix', variant: 'standard', chip: null },
      flash: null,
    });
    const out = execFileSync(answer.firmware, ['-c', 'import app, asyncio; print(app.describe())'], {
      encoding: 'utf8',
    });
    expect(out.trim()).toBe('mqtt_as 0.8.0, answer 42');
    expect(execFileSync(answer.firmware, [], { encoding: 'utf8' })).toMatch(/^MicroPython v1\.28\.0/);
    expect(projectContainers(project)).toEqual([]);
  });
});

describe('mp build --board esp32-generic', () => {
  it('exports firmware.bin laid out as makeimg.py does: bootloader, partition table at +0x7000, app at +0xF000', async () => {
    const project = buildProject(fixtures);
    const result = await mpBuild(fixtures, project, ['--board', 'esp32-generic', '--json']);
    expect(result.code, result.output).toBe(0);
    const answer = jsonResult(result);
    expect(answer.firmware).toMatch(/\/ESP32-micropython-v1\.28\.0-mqtt-as-\d{8}-\d{6}\.bin$/);
    const data = readFileSync(answer.firmware);
    expect(data[0]).toBe(0xe9);
    expect(data.readUInt16LE(0x7000)).toBe(0x50aa);
    expect(data[0xf000]).toBe(0xe9);
    expect(data.toString('latin1')).toContain('hello from app');
    const sidecar = readJson(answer.sidecar);
    expect(sidecar.flash.segments).toEqual([
      expect.objectContaining({
        offset: 0x1000,
        file: answer.firmware.split('/').pop(),
        artifact: 'firmware',
        size: data.length,
      }),
    ]);
    expect(sidecar.board).toMatchObject({ id: 'esp32-generic', chip: 'ESP32', board: 'ESP32_GENERIC' });
  });
});

describe('builds at the same time', () => {
  it('of two projects share the source cache safely', async () => {
    const a = buildProject(fixtures, { 'modules/a.py': 'A = 1\n' });
    const b = buildProject(fixtures, { 'modules/b.py': 'B = 1\n' });
    const [ra, rb] = await Promise.all([
      mpBuild(fixtures, a, ['--micropython', 'v1.27.0']),
      mpBuild(fixtures, b, ['--micropython', 'v1.27.0']),
    ]);
    expect(ra.code, ra.output).toBe(0);
    expect(rb.code, rb.output).toBe(0);
    expect(exportedNames(a).some((n) => /v1\.27\.0/.test(n))).toBe(true);
    expect(exportedNames(b).some((n) => /v1\.27\.0/.test(n))).toBe(true);
  });

  it('of one project and board take turns: the second waits, then finds the first one’s export', async () => {
    const project = buildProject(fixtures);
    const [r1, r2] = await Promise.all([
      mpBuild(fixtures, project, ['--json']),
      mpBuild(fixtures, project, ['--json']),
    ]);
    expect(r1.code, r1.output).toBe(0);
    expect(r2.code, r2.output).toBe(0);
    const results = [jsonResult(r1), jsonResult(r2)];
    expect(results.filter((r) => r.upToDate)).toHaveLength(1);
    expect(results[0]!.firmware).toBe(results[1]!.firmware);
    expect(exportedNames(project).filter((n) => n.endsWith('.bin'))).toHaveLength(1);
  });
});

describe('local sources', () => {
  function cloneMicroPython(withSubmodules: boolean): string {
    const dir = join(tempProject().dir, 'micropython');
    const { repos } = fixtures;
    execFileSync('git', ['clone', '-q', repos.micropython.path, dir]);
    execFileSync('git', ['-C', dir, 'checkout', '-q', 'v1.28.0']);
    if (withSubmodules) {
      const rewrites = Object.entries(repos.mirrors).flatMap(([from, to]) => [
        '-c',
        `url.${to}.insteadOf=${from}`,
      ]);
      execFileSync('git', [
        '-c',
        'protocol.file.allow=always',
        ...rewrites,
        '-C',
        dir,
        'submodule',
        '-q',
        'update',
        '--init',
      ]);
    }
    return dir;
  }

  it('builds a local MicroPython checkout and a local library folder as they are, noticing edits', async () => {
    const micropython = cloneMicroPython(true);
    const library = Object.fromEntries(
      Object.entries(MQTT_AS_FILES).map(([path, text]) => [`mqtt/${path}`, text]),
    );
    const project = buildProject(fixtures, library, {
      micropython: { path: micropython },
      libraries: [{ id: 'mqtt_as', path: './mqtt' }],
    });
    const result = await mpBuild(fixtures, project, ['--json']);
    expect(result.code, result.output).toBe(0);
    const answer = jsonResult(result);
    const sha = fixtures.repos.micropython.tags['v1.28.0']!;
    expect(answer.firmware).toMatch(
      new RegExp(`/ESP8266-micropython-v1\\.28\\.0-g${sha.slice(0, 7)}-mqtt-as-\\d{8}-\\d{6}\\.bin$`),
    );
    const sidecar = readJson(answer.sidecar);
    expect(sidecar.micropython).toMatchObject({ path: micropython, sha, tag: null, git: null, dirty: false });
    expect(sidecar.libraries[0]).toMatchObject({ id: 'mqtt_as', path: project.path('mqtt'), git: null });

    project.write('mqtt/mqtt_as/__init__.py', 'VERSION = (9, 9, 9)\n\nclass MQTTClient:\n    pass\n');
    const edited = jsonResult(await mpBuild(fixtures, project, ['--json']));
    expect(edited.upToDate).toBe(false);
    expect(readFileSync(edited.firmware).toString('latin1')).toContain('VERSION = (9, 9, 9)');
  });

  it('says which submodules a local checkout lacks and how to get them', async () => {
    const micropython = cloneMicroPython(false);
    const project = buildProject(fixtures, {}, { micropython: { path: micropython } });
    const result = await mpBuild(fixtures, project, ['--json']);
    expect(result.code).toBe(1);
    const error = jsonResult(result).error;
    expect(error.code).toBe('SUBMODULE_MISSING');
    expect(error.message).toContain('lib/axtls, lib/berkeley-db-1.xx, lib/micropython-lib');
    expect(error.hint).toBe(
      `Run: git -C ${micropython} submodule update --init lib/axtls lib/berkeley-db-1.xx lib/micropython-lib`,
    );
    expect(exportedNames(project)).toEqual([]);
  });
});
