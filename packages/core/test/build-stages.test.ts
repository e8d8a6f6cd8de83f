/**
 * A whole `mp build` in-process: the D1 mini board and mqtt_as as the CLI finds them, with a fake
 * toolchain and a fake source cache standing in for Docker and git. Given a project, when its
 * build's steps run, then each stage's result says what was resolved, fetched, planned, compiled
 * and exported, and the flasher reads the sidecar the export wrote.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { tempProject } from '@mp/test-utils';
import { describe, expect, it } from 'vitest';
import { MpError } from '../src/errors.ts';
import { runSteps } from '../src/events.ts';
import { buildPlan } from '../src/firmware/dry-run.ts';
import { type BuildOptions, createBuild } from '../src/firmware/pipeline.ts';
import { EXPORT_SCHEMA } from '../src/firmware/sidecar.ts';
import { firmwareFromSidecar } from '../src/flash/firmware.ts';
import { openProject } from '../src/project.ts';
import { FakeSourceCache, FakeToolchain } from './build-fakes.ts';

const MICROPYTHON = 'https://github.com/micropython/micropython.git';
const MQTT_AS = 'https://github.com/peterhinch/micropython-mqtt.git';
const MP_SHA = 'a'.repeat(40);
const MQTT_SHA = 'b'.repeat(40);
/** An ESP8266 image header (magic 0xE9, then a segment loaded into the ESP8266's RAM) and some bytes. */
const FIRMWARE = Uint8Array.from([0xe9, 1, 0, 0, 0, 0x10, 0x10, 0x40, 0x00, 0x00, 0xf0, 0x3f, 1, 2, 3, 4]);

/** A project with one module, and the trees the fake cache hands out for MicroPython v1.28.0 and mqtt_as. */
async function setUp(files: Record<string, string> = {}) {
  const project = tempProject({ 'modules/app.py': 'print("hello")\n', ...files });
  const micropython = tempProject({
    'py/mpconfig.h':
      '#define MICROPY_VERSION_MAJOR 1\n#define MICROPY_VERSION_MINOR 28\n#define MICROPY_VERSION_MICRO 0\n',
    'ports/esp8266/Makefile': 'firmware.bin: firmware.elf\n\t$(ESPTOOL) elf2image $^\n',
  });
  const mqttAs = tempProject({
    'mqtt_as/__init__.py': 'VERSION = 1\n',
    'mqtt_as/mqtt_v5_properties.py': 'PROPERTIES = {}\n',
    'mqtt_local_example.py': 'config = {}\n',
  });
  const cacheDir = tempProject().dir;
  const env = { MP_CACHE_DIR: cacheDir };
  const opened = await openProject({
    projectDir: project.dir,
    env,
    pluginRoots: [fileURLToPath(new URL('../../cli', import.meta.url))],
  });
  const sources = new FakeSourceCache({
    [MICROPYTHON]: { dir: micropython.dir, sha: MP_SHA, tag: 'v1.28.0' },
    [MQTT_AS]: { dir: mqttAs.dir, sha: MQTT_SHA },
  });
  const toolchain = new FakeToolchain({ writes: { 'firmware.bin': FIRMWARE } });
  const options: BuildOptions = { project: opened, env, cacheDir, sources, toolchain };
  return { project, micropython, mqttAs, options, sources, toolchain };
}

async function build(options: BuildOptions) {
  const built = createBuild(options);
  try {
    await runSteps(built.steps, built.ctx, { signal: new AbortController().signal });
  } finally {
    await built.dispose();
  }
  return built;
}

describe('a build with a fake toolchain and fake sources', () => {
  it('asks the remote firmware cache and uploads to it, unless remoteCache is off (mp dev)', async () => {
    const requests: string[] = [];
    const server = createServer((req, res) => {
      requests.push(`${req.method} ${req.url?.split('?')[0]}`);
      req.resume();
      req.on('end', () => {
        res.writeHead(req.method === 'GET' ? 404 : 200).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const config = JSON.stringify({ cache: { remote: { url, token: 't' } } });
      const dev = await setUp({ 'mp.config.json': config });
      await build({ ...dev.options, remoteCache: false });
      expect(requests).toEqual([]);

      const shared = await setUp({ 'mp.config.json': config, 'modules/app.py': 'print("other")\n' });
      const { ctx } = await build(shared.options);
      const key = ctx.planned!.firmwareKey;
      expect(requests).toEqual([`GET /v8/artifacts/${key}`, `PUT /v8/artifacts/${key}`]);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('runs resolve → fetch → plan → compile → export, each stage adding its own result', async () => {
    const { project, micropython, mqttAs, options, sources, toolchain } = await setUp();
    const { steps, ctx } = await build(options);

    expect(steps.map((s) => s.id)).toEqual([
      'resolve',
      'sources',
      'toolchain',
      'manifest',
      'compile',
      'export',
    ]);
    expect(ctx.resolved?.micropython).toMatchObject({
      sha: MP_SHA,
      tag: 'v1.28.0',
      git: { url: MICROPYTHON },
    });
    expect(ctx.resolved?.libraries.map((l) => [l.id, l.git?.ref.sha])).toEqual([['mqtt_as', MQTT_SHA]]);

    expect(ctx.fetched?.micropython).toMatchObject({
      dir: micropython.dir,
      version: { major: 1, minor: 28, patch: 0 },
    });
    expect(ctx.fetched?.libraries[0]).toMatchObject({
      dir: mqttAs.dir,
      frozenFiles: ['mqtt_as/__init__.py', 'mqtt_as/mqtt_v5_properties.py'],
      fingerprint: MQTT_SHA,
    });
    expect(ctx.fetched?.moduleHashes.map((m) => m.file)).toEqual(['app.py']);
    // The board's resolve hook read the tree's Makefile: no `--chip`, so the esp-open-sdk image.
    expect(ctx.fetched?.target.toolchain.image).toBe('larsks/esp-open-sdk');

    const planned = ctx.planned!;
    expect(planned.image.ref).toBe('larsks/esp-open-sdk');
    expect(planned.buildDir.startsWith(project.path('.mp/build/esp8266-d1mini/'))).toBe(true);
    expect(readFileSync(`${planned.buildDir}/manifest.py`, 'utf8')).toBe(planned.manifest);
    expect(planned.manifest).toContain(
      'package("mqtt_as", files=["__init__.py", "mqtt_v5_properties.py"], base_path="/mp/libs/mqtt_as")',
    );
    expect(planned.manifest).toContain('module("app.py", base_path="/mp/modules")');
    expect(planned.upToDate).toBeUndefined();

    expect(ctx.compiled?.submodules).toEqual(['lib/micropython-lib']);
    expect(readFileSync(ctx.compiled!.artifacts.firmware!)).toEqual(Buffer.from(FIRMWARE));
    const [container] = toolchain.containers;
    expect(container?.spec.owner).toEqual({
      project: project.dir,
      board: 'esp8266-d1mini',
      cache: ctx.cacheDir,
    });
    expect(container?.spec.mounts.map((m) => [m.container, m.host, m.readOnly ?? false])).toEqual([
      ['/mp/micropython', micropython.dir, true],
      ['/mp/build', planned.buildDir, false],
      ['/mp/libs/mqtt_as', mqttAs.dir, true],
      ['/mp/modules', project.path('modules'), true],
    ]);
    expect(container?.stopped).toBe(true);
    expect(sources.calls).toContain('ensureSubmodules lib/micropython-lib');

    const result = ctx.result!;
    expect(result.upToDate).toBe(false);
    expect(result.sidecar).toMatchObject({
      schema: EXPORT_SCHEMA,
      board: { id: 'esp8266-d1mini', chip: 'ESP8266' },
      micropython: {
        tag: 'v1.28.0',
        version: '1.28.0',
        sha: MP_SHA,
        submodules: { 'lib/micropython-lib': {} },
      },
      libraries: [{ id: 'mqtt_as', sha: MQTT_SHA }],
      image: { ref: 'larsks/esp-open-sdk', id: planned.image.id, override: false },
      size: FIRMWARE.length,
      cacheKey: planned.cacheKey,
    });
    expect(readFileSync(project.path('export/mqtt_local.py'), 'utf8')).toBe('config = {}\n');
    // The flasher reads the sidecar the export wrote.
    const image = await firmwareFromSidecar(result.sidecarFile);
    expect(image).toMatchObject({ boardId: 'esp8266-d1mini', chip: 'ESP8266', baud: 460800 });
    expect(image.segments.map((s) => [s.offset, Buffer.from(s.data)])).toEqual([[0, Buffer.from(FIRMWARE)]]);
  });

  it('answers an unchanged project from the last export, starting no container', async () => {
    const { options, toolchain } = await setUp();
    const first = await build(options);
    const second = await build(options);
    expect(toolchain.containers).toHaveLength(1);
    expect(second.ctx.upToDate).toBe(true);
    expect(second.ctx.compiled).toBeUndefined();
    expect(second.ctx.result).toMatchObject({ upToDate: true, firmware: first.ctx.result!.firmware });
    expect(second.steps.filter((s) => s.skip?.(second.ctx)).map((s) => s.id)).toEqual(['compile', 'export']);
  });

  it('exports again when the last export’s sidecar cannot be read (torn by a power cut, edited by hand)', async () => {
    const { options } = await setUp();
    const first = await build(options);
    writeFileSync(first.ctx.result!.sidecarFile, '{"schema": 1, "firmw');
    const second = await build(options);
    expect(second.ctx.upToDate).toBe(false);
    expect(second.ctx.result!.sidecar.sha256).toBe(first.ctx.result!.sidecar.sha256);
    expect(JSON.parse(readFileSync(second.ctx.result!.sidecarFile, 'utf8')).sha256).toBe(
      first.ctx.result!.sidecar.sha256,
    );
  });

  it('rebuilds in mp dev’s warm container after an edit, and leaves it running', async () => {
    const { project, options, toolchain } = await setUp();
    const first = await build({ ...options, keepContainer: true });
    const warm = first.ctx.container!;
    writeFileSync(project.path('modules/app.py'), 'print("edited")\n');
    const second = await build({ ...options, container: warm, keepContainer: true });
    expect(second.ctx.container).toBe(warm);
    expect(toolchain.containers).toHaveLength(1);
    expect(warm.stopped).toBe(false);
    expect(second.ctx.result?.firmware).not.toBe(first.ctx.result?.firmware);
  });

  it('copies sources in when the engine cannot see them, after the submodules are fetched too', async () => {
    const { micropython, options, toolchain } = await setUp();
    toolchain.copies = true;
    await build(options);
    const copied = toolchain.containers[0]!.copied;
    expect(copied.filter((c) => c.startsWith(`${micropython.dir} ->`))).toHaveLength(2);
    expect(copied.at(-1)).toMatch(/-> \/mp\/build$/);
  });

  it('turns a failed make into COMPILE_FAILED at the compile step, with the container removed', async () => {
    const { micropython, options, toolchain } = await setUp();
    toolchain.make = {
      writes: {},
      exitCode: 2,
      lines: ['/mp/micropython/ports/esp8266/main.c:12:3: error: boom', 'make: *** [main.o] Error 1'],
    };
    const error = await build(options).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(MpError);
    expect(error).toMatchObject({ code: 'COMPILE_FAILED', step: 'compile' });
    // The compiler's container path, as the host path the user can open.
    expect((error as MpError).file).toBe(`${micropython.dir}/ports/esp8266/main.c:12`);
    expect(toolchain.containers[0]?.stopped).toBe(true);
  });

  it('plans a dry run without the toolchain: no image, no container, nothing written to the project', async () => {
    const { project, options, toolchain } = await setUp();
    const dry = await build({ ...options, manifestOnly: true });
    expect(dry.steps.map((s) => s.id)).toEqual(['resolve', 'sources', 'manifest']);
    const plan = await buildPlan(dry.ctx);
    expect(plan.toolchain).toMatchObject({ ref: 'larsks/esp-open-sdk', override: false });
    expect(plan.submodules).toMatchObject({
      fetch: null,
      source: 'make submodules, asked in the container at build time',
    });
    expect(plan.manifest).toBe(dry.ctx.manifest);
    expect(toolchain.images).toEqual([]);
    expect(existsSync(project.path('.mp'))).toBe(false);
  });
});
