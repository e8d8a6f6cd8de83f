/**
 * `buildTargets` in-process, with a fake toolchain and fake sources standing in for Docker and git:
 * given a project with targets, when they build at once, then targets of one board (another
 * variant) have their own folders and never wait for each other's lock, each is exported under a
 * name of its own and listed in export/index.json, a failing target leaves the others exported,
 * and the targets of an engine that fails are built on another, each exported once.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tempProject } from '@mp/test-utils';
import { describe, expect, it } from 'vitest';
import {
  buildTargets,
  type Engine,
  MpError,
  openProject,
  type ReadyEngine,
  readTargetsIndex,
  recordTarget,
  type TargetEvent,
  type Toolchain,
  type ToolchainContainer,
} from '../src/index.ts';
import { FakeSourceCache, FakeToolchain } from './build-fakes.ts';

const MICROPYTHON = 'https://github.com/micropython/micropython.git';
const MQTT_AS = 'https://github.com/peterhinch/micropython-mqtt.git';
const FIRMWARE = Uint8Array.from([0xe9, 1, 0, 0, 0, 0x10, 0x10, 0x40, 0x00, 0x00, 0xf0, 0x3f, 1, 2, 3, 4]);

async function setUp(config: Record<string, unknown>) {
  const project = tempProject({
    'mp.config.json': JSON.stringify(config),
    'modules/app.py': 'print("hello")\n',
  });
  const micropython = tempProject({
    'py/mpconfig.h':
      '#define MICROPY_VERSION_MAJOR 1\n#define MICROPY_VERSION_MINOR 28\n#define MICROPY_VERSION_MICRO 0\n',
    'ports/esp8266/Makefile': 'firmware.bin: firmware.elf\n\t$(ESPTOOL) elf2image $^\n',
  });
  const mqttAs = tempProject({
    'mqtt_as/__init__.py': 'VERSION = 1\n',
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
    [MICROPYTHON]: { dir: micropython.dir, sha: 'a'.repeat(40), tag: 'v1.28.0' },
    [MQTT_AS]: { dir: mqttAs.dir, sha: 'b'.repeat(40) },
  });
  return { project, opened, env, cacheDir, sources };
}

/**
 * A fake engine whose make waits until `waitFor` makes have started (so builds that block each
 * other would never finish), fails for scripts matching `failWhen`, and can stop "mid-build".
 */
class GatedToolchain implements Toolchain {
  readonly fake = new FakeToolchain({ writes: { 'firmware.bin': FIRMWARE } });
  makes = 0;
  private waiting: Array<() => void> = [];
  private readonly options: { waitFor?: number; failWhen?: RegExp; dead?: () => boolean };
  constructor(options: { waitFor?: number; failWhen?: RegExp; dead?: () => boolean } = {}) {
    this.options = options;
  }

  prepare: Toolchain['prepare'] = (request) => this.fake.prepare(request);
  removeVolumes: Toolchain['removeVolumes'] = () => this.fake.removeVolumes();

  async start(spec: Parameters<Toolchain['start']>[0]): Promise<ToolchainContainer> {
    if (this.options.dead?.()) throw new Error('connect ECONNREFUSED /run/engine-b.sock');
    const container = await this.fake.start(spec);
    const exec = container.exec.bind(container);
    container.exec = async (script, options) => {
      if (/ submodules$/m.test(script)) return exec(script, options);
      this.makes++;
      if (this.makes < (this.options.waitFor ?? 0))
        await new Promise<void>((resolve) => this.waiting.push(resolve));
      else for (const wake of this.waiting.splice(0)) wake();
      if (this.options.dead?.()) throw new Error('the engine closed the connection');
      if (this.options.failWhen?.test(script)) return { exitCode: 2 };
      return exec(script, options);
    };
    return container;
  }
}

function engine(name: string, slots: number): ReadyEngine {
  return { name, slots, env: { DOCKER_HOST: `unix:///run/${name}.sock` } };
}

function firmwareFiles(dir: string): string[] {
  return existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f.endsWith('.bin'))
        .sort()
    : [];
}

const TARGETS = {
  d1mini: { board: 'esp8266-d1mini' },
  'd1mini-1m': { board: 'esp8266-d1mini', variant: 'FLASH_1M' },
};

describe('mp build --all in-process', () => {
  it('builds two targets of one board at once, each in its own folder, and lists both in export/index.json', async () => {
    const { project, opened, env, cacheDir, sources } = await setUp({ targets: TARGETS });
    // Each make waits for the other: builds that waited for each other's lock would never finish.
    const toolchain = new GatedToolchain({ waitFor: 2 });
    const events: TargetEvent[] = [];
    const run = await buildTargets({
      project: opened,
      env,
      cacheDir,
      sources,
      engines: [engine('local', 2)],
      toolchainFor: () => toolchain,
      answers: async () => true,
      signal: new AbortController().signal,
      observer: (e) => events.push(e),
    });
    expect(run.ok).toBe(true);
    expect(run.outcomes.map((o) => [o.target, o.status, o.engine, o.variant])).toEqual([
      ['d1mini', 'built', 'local', null],
      ['d1mini-1m', 'built', 'local', 'FLASH_1M'],
    ]);
    const folders = toolchain.fake.containers
      .map((c) => c.spec.mounts.find((m) => m.container === '/mp/build')!.host)
      .map((dir) => dir.slice(0, dir.lastIndexOf('/')))
      .sort();
    expect(folders).toEqual([
      project.path('.mp/build/target-d1mini'),
      project.path('.mp/build/target-d1mini-1m'),
    ]);
    expect(toolchain.fake.scripts.some((s) => s.includes('BOARD_VARIANT=FLASH_1M'))).toBe(true);
    expect(existsSync(project.path('.mp/build/target-d1mini/build.log'))).toBe(true);

    // Names of their own, with the target's name in them.
    const names = firmwareFiles(project.path('export'));
    expect(names).toHaveLength(2);
    expect(names.find((n) => n.includes('-mqtt-as-d1mini-1m-'))).toBeDefined();
    expect(names.find((n) => /-mqtt-as-d1mini-\d{8}-/.test(n))).toBeDefined();

    const index = await readTargetsIndex(opened);
    expect(Object.keys(index!.targets)).toEqual(['d1mini', 'd1mini-1m']);
    expect(index!.targets['d1mini-1m']).toMatchObject({
      board: 'esp8266-d1mini',
      variant: 'FLASH_1M',
      firmware: names.find((n) => n.includes('d1mini-1m')),
      sidecar: `${names.find((n) => n.includes('d1mini-1m'))}.json`,
      size: FIRMWARE.length,
      micropython: 'v1.28.0',
    });
    expect(run.index).toBe(project.path('export/index.json'));
    // The step events of each build carry its target.
    expect(events.some((e) => e.type === 'step:start' && 'target' in e && e.target === 'd1mini-1m')).toBe(
      true,
    );
  });

  it('answers a second run from the last exports: no container, a cache hit per target', async () => {
    const { opened, env, cacheDir, sources } = await setUp({ targets: TARGETS });
    const toolchain = new GatedToolchain();
    const options = {
      project: opened,
      env,
      cacheDir,
      sources,
      engines: [engine('local', 2)],
      toolchainFor: () => toolchain,
      signal: new AbortController().signal,
    };
    await buildTargets(options);
    const again = await buildTargets(options);
    expect(again.outcomes.map((o) => [o.status, o.cacheHit])).toEqual([
      ['up-to-date', true],
      ['up-to-date', true],
    ]);
    expect(toolchain.fake.containers).toHaveLength(2);
  });

  it('exports the other targets when one fails, and says why that one failed', async () => {
    const { project, opened, env, cacheDir, sources } = await setUp({
      targets: { ...TARGETS, broken: { board: 'esp8266-d1mini', variant: 'BROKEN' } },
    });
    const toolchain = new GatedToolchain({ failWhen: /BOARD_VARIANT=BROKEN/ });
    const run = await buildTargets({
      project: opened,
      env,
      cacheDir,
      sources,
      engines: [engine('local', 1)],
      toolchainFor: () => toolchain,
      answers: async () => true,
      signal: new AbortController().signal,
    });
    expect(run.ok).toBe(false);
    expect(run.outcomes.map((o) => [o.target, o.status])).toEqual([
      ['d1mini', 'built'],
      ['d1mini-1m', 'built'],
      ['broken', 'failed'],
    ]);
    expect(run.outcomes[2]?.error).toMatchObject({ code: 'COMPILE_FAILED', step: 'compile' });
    expect(run.outcomes[2]?.logFile).toBe(project.path('.mp/build/target-broken/build.log'));
    expect(Object.keys((await readTargetsIndex(opened))!.targets)).toEqual(['d1mini', 'd1mini-1m']);
  });

  it('builds the targets of an engine that fails on another, and says so; each is exported once', async () => {
    const { project, opened, env, cacheDir, sources } = await setUp({
      targets: {
        ...TARGETS,
        third: { board: 'esp8266-d1mini', variant: 'THIRD' },
        fourth: { board: 'esp8266-d1mini', variant: 'FOURTH' },
      },
    });
    let bDead = false;
    const a = new GatedToolchain();
    // b takes two targets, then stops while they compile.
    const b = new GatedToolchain({
      waitFor: 2,
      dead: () => {
        if (b.makes >= 2) bDead = true;
        return bDead;
      },
    });
    const engines = [engine('a', 2), engine('b', 2)];
    const events: TargetEvent[] = [];
    const run = await buildTargets({
      project: opened,
      env,
      cacheDir,
      sources,
      engines,
      toolchainFor: (e: Engine) => (e.name === 'a' ? a : b),
      answers: async (e) => e.name !== 'b' || !bDead,
      signal: new AbortController().signal,
      observer: (e) => events.push(e),
    });
    expect(run.ok).toBe(true);
    expect(run.outcomes.every((o) => o.status === 'built' && o.engine === 'a')).toBe(true);
    const moved = run.outcomes.filter((o) => o.retried.length);
    expect(moved).toHaveLength(2);
    for (const o of moved) {
      expect(o.retried).toEqual([{ engine: 'b', error: expect.stringContaining('Docker engine b failed') }]);
    }
    expect(events.filter((e) => e.type === 'engine:down').map((e) => 'engine' in e && e.engine)).toEqual([
      'b',
    ]);
    expect(events.filter((e) => e.type === 'target:retry')).toHaveLength(2);
    expect(run.engines).toEqual([
      { name: 'a', slots: 2, failed: false },
      { name: 'b', slots: 2, failed: true },
    ]);
    // Four targets, four firmware files: none exported twice, none lost.
    expect(firmwareFiles(project.path('export'))).toHaveLength(4);
    expect(Object.keys((await readTargetsIndex(opened))!.targets)).toEqual([
      'd1mini',
      'd1mini-1m',
      'third',
      'fourth',
    ]);
  });

  it('fails every target with the reason when no engine is left', async () => {
    const { opened, env, cacheDir, sources } = await setUp({ targets: TARGETS });
    const dead = new GatedToolchain({ dead: () => true });
    const run = await buildTargets({
      project: opened,
      env,
      cacheDir,
      sources,
      engines: [engine('only', 1)],
      toolchainFor: () => dead,
      answers: async () => false,
      signal: new AbortController().signal,
    });
    expect(run.outcomes.map((o) => [o.status, o.error?.code])).toEqual([
      ['failed', 'NO_ENGINE'],
      ['failed', 'NO_ENGINE'],
    ]);
    // The first found the engine failing; the second never started, for the same reason.
    for (const o of run.outcomes) expect(String(o.error?.message)).toContain('ECONNREFUSED');
  });
});

describe('export/index.json', () => {
  it('keeps every entry when many targets record themselves at once', async () => {
    const names = Array.from({ length: 12 }, (_, i) => `t${i}`);
    const { opened } = await setUp({ targets: Object.fromEntries(names.map((n) => [n, {}])) });
    await Promise.all(
      names.map((name) =>
        recordTarget(opened, name, {
          board: 'unix',
          variant: null,
          firmware: `${name}.bin`,
          sidecar: `${name}.bin.json`,
          sha256: 'x',
          size: 1,
          micropython: 'v1.28.0',
          builtAt: new Date(0).toISOString(),
        }),
      ),
    );
    const index = JSON.parse(readFileSync(`${opened.config.exportDir}/index.json`, 'utf8'));
    expect(Object.keys(index.targets)).toEqual(names);
    expect(index.schema).toBe('mp.targets/1');
    // No temporary file left behind.
    expect(readdirSync(opened.config.exportDir)).toEqual(['index.json']);
    expect(MpError).toBeDefined();
  });
});
