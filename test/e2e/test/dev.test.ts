/**
 * `mp dev --watch` end to end: the real CLI as a subprocess, the real Docker engine with the
 * fixture MicroPython behind mp's default URLs, and an emulated D1 mini on the serial binding.
 * Given a project with modules/app.py, when I save, then new firmware is built in the warm
 * container and ends up in the board's flash; bad saves flash nothing; Ctrl-C leaves nothing behind.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { type EmulatorFiles, writeEmulatorConfig } from '@mp/esp-emulator';
import { MP_BIN, type TempProject } from '@mp/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BuildFixtures,
  buildProject,
  type JsonEvent,
  projectContainers,
  setupBuildFixtures,
} from './build-helpers.ts';

interface DevProcess {
  child: ChildProcess;
  events: JsonEvent[];
  output: () => string;
  /** Waits for the next event (after `from`) that matches; returns its index. */
  waitFor(match: (e: JsonEvent) => boolean, options?: { from?: number; timeoutMs?: number }): Promise<number>;
  exited: Promise<number | null>;
}

function startDev(project: TempProject, env: NodeJS.ProcessEnv, args: string[] = []): DevProcess {
  const child = spawn(process.execPath, [MP_BIN, 'dev', '--watch', '--json', '--cwd', project.dir, ...args], {
    env: { ...process.env, NO_COLOR: '1', CI: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const events: JsonEvent[] = [];
  let output = '';
  let buffer = '';
  child.stdout!.on('data', (d: Buffer) => {
    output += d;
    buffer += d;
    let nl = buffer.indexOf('\n');
    while (nl !== -1) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (line.startsWith('{')) events.push(JSON.parse(line));
      nl = buffer.indexOf('\n');
    }
  });
  child.stderr!.on('data', (d: Buffer) => {
    output += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return {
    child,
    events,
    output: () => output,
    async waitFor(match, { from = 0, timeoutMs = 120_000 } = {}) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const at = events.findIndex((e, i) => i >= from && match(e));
        if (at !== -1) return at;
        if (child.exitCode !== null)
          throw new Error(`mp dev exited (${child.exitCode}) while waiting:\n${output}`);
        if (Date.now() > deadline) throw new Error(`timed out waiting for an event:\n${output}`);
        await sleep(25);
      }
    },
    exited,
  };
}

const sha = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');
const is = (type: string) => (e: JsonEvent) => e.type === type;
// biome-ignore lint/suspicious/noExplicitAny: event payloads are read as JSON
const firmwareOf = (e: JsonEvent) => readFileSync((e as any).result.firmware);

let fixtures: BuildFixtures;
let project: TempProject;
let emulator: EmulatorFiles;
let dev: DevProcess;

beforeAll(async () => {
  fixtures = await setupBuildFixtures();
  project = buildProject(
    fixtures,
    { 'modules/app.py': 'VERSION = 1\n' },
    { flash: { port: '/dev/ttyEMU0' } },
  );
  emulator = writeEmulatorConfig(project.path('.emulator'), [{ chip: 'esp8266', path: '/dev/ttyEMU0' }]);
  dev = startDev(project, { ...fixtures.env, ...emulator.env });
}, 600_000);

afterAll(async () => {
  if (dev && dev.child.exitCode === null) {
    dev.child.kill('SIGKILL');
    await dev.exited;
  }
  fixtures?.cleanup();
  project?.cleanup();
});

/** Waits until mp dev is idle: its latest event (board output aside) says so. */
async function settled(): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const last = dev.events.findLast((e) => e.type !== 'dev:monitor');
    if (last?.type === 'dev:idle') return;
    await sleep(50);
  }
  throw new Error(`mp dev did not settle:\n${dev.output()}`);
}

/** Waits for the board to boot the firmware flashed at event `flashedAt` (its banner). */
function booted(flashedAt: number): Promise<number> {
  return dev.waitFor(
    (e) => e.type === 'dev:monitor' && String(e.text).includes('MicroPython (emulated ESP8266)'),
    { from: flashedAt },
  );
}

/** The board's flash at 0x0, as long as `image`. */
function flashed(image: Uint8Array): Uint8Array {
  return emulator.readFlash(0).slice(0, image.length);
}

describe('mp dev --watch', { timeout: 300_000 }, () => {
  it('builds and flashes the project when it starts, then shows the board booting it', async () => {
    const built = await dev.waitFor(is('dev:built'), { timeoutMs: 300_000 });
    const firmware = firmwareOf(dev.events[built]!);
    // The monitor is attached again before the reset: the new firmware's banner arrives.
    await booted(await dev.waitFor(is('dev:flashed'), { from: built }));
    expect(sha(flashed(firmware))).toBe(sha(firmware));
  });

  it('edit a module → new firmware → the board’s flash changes, delta-flashed in the warm container', async () => {
    const before = dev.events.length;
    writeFileSync(project.path('modules/app.py'), 'VERSION = 2\n');
    const built = await dev.waitFor(is('dev:built'), { from: before });
    const firmware = firmwareOf(dev.events[built]!);
    expect(firmware.toString('latin1')).toContain('VERSION = 2');
    const flashedAt = await dev.waitFor(is('dev:flashed'), { from: built });
    // biome-ignore lint/suspicious/noExplicitAny: JSON payload
    const result = (dev.events[flashedAt] as any).result;
    expect(result.mode).toBe('delta');
    expect(result.sectorsWritten).toBeLessThan(result.sectorsTotal / 4);
    await booted(flashedAt);
    expect(sha(flashed(firmware))).toBe(sha(firmware));
    // One warm container served both builds.
    expect(projectContainers(project)).toHaveLength(1);
  });

  it('a burst of saves → the last state is what ends up flashed, with at most two builds', async () => {
    await settled();
    const before = dev.events.length;
    for (let i = 3; i <= 8; i++) {
      writeFileSync(project.path('modules/app.py'), `VERSION = ${i}\n`);
      await sleep(5);
    }
    let flashedAt = await dev.waitFor(is('dev:flashed'), { from: before });
    // If the burst straddled a build, a second build with the newest state follows.
    await sleep(1500);
    const later = dev.events.findIndex((e, i) => i > flashedAt && e.type === 'dev:build-start');
    if (later !== -1) flashedAt = await dev.waitFor(is('dev:flashed'), { from: later });
    const builds = dev.events.slice(before).filter(is('dev:build-start')).length;
    expect(builds).toBeGreaterThanOrEqual(1);
    expect(builds).toBeLessThanOrEqual(2);
    const lastBuilt = dev.events.slice(0, flashedAt).findLast(is('dev:built'))!;
    const firmware = firmwareOf(lastBuilt);
    expect(firmware.toString('latin1')).toContain('VERSION = 8');
    await booted(flashedAt);
    expect(sha(flashed(firmware))).toBe(sha(firmware));
  });

  it('a syntax error → nothing built or flashed, the error shown with file:line; the next good save flashes', async () => {
    await settled();
    const flashBefore = sha(emulator.readFlash(0));
    const before = dev.events.length;
    writeFileSync(project.path('modules/app.py'), 'VERSION = 9\ndef broken(:\n    pass\n');
    const errorAt = await dev.waitFor((e) => e.type === 'dev:syntax-error' || e.type === 'dev:build-failed', {
      from: before,
    });
    const event = dev.events[errorAt]!;
    // The warm container's mpy-cross caught it (beside make, which it stopped).
    expect(event.type).toBe('dev:syntax-error');
    // biome-ignore lint/suspicious/noExplicitAny: JSON payload
    const problem = (event as any).problem;
    expect(problem.file).toBe(project.path('modules/app.py'));
    expect(problem.line).toBe(2);
    expect(problem.message).toMatch(/SyntaxError/);
    expect(dev.events.slice(before).some(is('dev:built'))).toBe(false);
    await settled();
    expect(dev.events.slice(before).some(is('dev:flash-start'))).toBe(false);
    expect(sha(emulator.readFlash(0))).toBe(flashBefore);

    const fixed = dev.events.length;
    writeFileSync(project.path('modules/app.py'), 'VERSION = 10\n');
    const built = await dev.waitFor(is('dev:built'), { from: fixed });
    const firmware = firmwareOf(dev.events[built]!);
    await booted(await dev.waitFor(is('dev:flashed'), { from: built }));
    expect(sha(flashed(firmware))).toBe(sha(firmware));
  });

  it('a config change re-resolves the project: dropping mqtt_as rebuilds without it', async () => {
    await settled();
    const before = dev.events.length;
    const config = JSON.parse(readFileSync(project.path('mp.config.json'), 'utf8'));
    writeFileSync(project.path('mp.config.json'), JSON.stringify({ ...config, libraries: [] }));
    const previous = firmwareOf(dev.events.findLast(is('dev:built'))!).toString('latin1');
    expect(previous).toContain('PROPERTIES = {0x01');
    await dev.waitFor(is('dev:reload'), { from: before });
    const built = await dev.waitFor(is('dev:built'), { from: before });
    const firmware = firmwareOf(dev.events[built]!).toString('latin1');
    expect(firmware).toContain('VERSION = 10');
    expect(firmware).not.toContain('PROPERTIES = {0x01'); // mqtt_as/mqtt_v5_properties.py
    await booted(await dev.waitFor(is('dev:flashed'), { from: built }));
  });

  it('Ctrl-C → mp dev ends, no container is left, the port is released', async () => {
    dev.child.kill('SIGINT');
    const started = Date.now();
    const code = await dev.exited;
    expect(code).toBe(0);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(projectContainers(project)).toEqual([]);
    expect(emulator.readState(0)?.portOpen).toBe(false);
  });
});

describe('mp dev when the board is unplugged mid-flash', { timeout: 300_000 }, () => {
  let unplugProject: TempProject;
  let unplugEmulator: EmulatorFiles;
  let unplugDev: DevProcess;

  afterAll(async () => {
    if (unplugDev && unplugDev.child.exitCode === null) {
      unplugDev.child.kill('SIGKILL');
      await unplugDev.exited;
    }
    unplugProject?.cleanup();
  });

  it('keeps running, and flashes when the board comes back', async () => {
    unplugProject = buildProject(
      fixtures,
      { 'modules/app.py': 'VERSION = 1\n' },
      { flash: { port: '/dev/ttyEMU0' } },
    );
    unplugEmulator = writeEmulatorConfig(unplugProject.path('.emulator'), [
      {
        chip: 'esp8266',
        path: '/dev/ttyEMU0',
        // The cable comes out during the third block of the first write and goes back 0.5 s later,
        // before mp dev's first look for it.
        faults: [{ action: 'unplug', command: 'FLASH_DEFL_DATA', occurrence: 3, replugAfterMs: 500 }],
      },
    ]);
    unplugDev = startDev(unplugProject, { ...fixtures.env, ...unplugEmulator.env });
    const failedAt = await unplugDev.waitFor(is('dev:flash-failed'), { timeoutMs: 300_000 });
    // biome-ignore lint/suspicious/noExplicitAny: JSON payload
    const failure = unplugDev.events[failedAt] as any;
    expect(failure.error.code).toBe('DEVICE_LOST');
    expect(failure.willRetry).toBe(true);
    expect(unplugDev.child.exitCode).toBe(null);
    // No save needed: the board reappearing is enough.
    const flashedAt = await unplugDev.waitFor(is('dev:flashed'), { from: failedAt, timeoutMs: 30_000 });
    const built = unplugDev.events.findLast((e, i) => i < flashedAt && e.type === 'dev:built')!;
    const firmware = firmwareOf(built);
    await unplugDev.waitFor(
      (e) => e.type === 'dev:monitor' && String(e.text).includes('MicroPython (emulated'),
      { from: flashedAt },
    );
    expect(sha(unplugEmulator.readFlash(0).slice(0, firmware.length))).toBe(sha(firmware));
    unplugDev.child.kill('SIGTERM');
    expect(await unplugDev.exited).toBe(0);
    expect(projectContainers(unplugProject)).toEqual([]);
  });
});

describe('mp dev with a board that has nothing to flash (unix)', { timeout: 300_000 }, () => {
  it('rebuilds the host executable on save and never looks for a serial port', async () => {
    const unixProject = buildProject(fixtures, { 'modules/app.py': 'VERSION = 1\n' }, { board: 'unix' });
    const unixDev = startDev(unixProject, fixtures.env);
    try {
      await unixDev.waitFor(is('dev:built'), { timeoutMs: 300_000 });
      await unixDev.waitFor(is('dev:idle'));
      const before = unixDev.events.length;
      writeFileSync(unixProject.path('modules/app.py'), 'VERSION = 2\n');
      const built = await unixDev.waitFor(is('dev:built'), { from: before });
      // biome-ignore lint/suspicious/noExplicitAny: JSON payload
      const executable = (unixDev.events[built] as any).result.firmware;
      expect(
        execFileSync(executable, ['-c', 'import app; print(app.VERSION)'], { encoding: 'utf8' }).trim(),
      ).toBe('2');
      await unixDev.waitFor(is('dev:idle'), { from: built });
      expect(unixDev.events.some((e) => e.type === 'dev:flash-start' || e.type === 'dev:flash-failed')).toBe(
        false,
      );
    } finally {
      unixDev.child.kill('SIGINT');
      expect(await unixDev.exited).toBe(0);
      expect(projectContainers(unixProject)).toEqual([]);
      unixProject.cleanup();
    }
  });
});
