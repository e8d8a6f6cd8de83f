/**
 * The real unix port of MicroPython v1.28.0, built by `mp build` from the kit with mqtt_as and a
 * project module, then run: the frozen module imports and prints, and the firmware lists mqtt_as.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { cModuleTemplate } from '@mp/core';
import { writeEmulatorConfig } from '@mp/esp-emulator';
import { createFixtureRepos, ensureFixtureToolchainImage, runMp, tempProject } from '@mp/test-utils';
import { makeTestFirmware, makeTestS3Firmware, S3_USB_BOARD_FILES } from '@mp/test-utils/esp-firmware';
import { afterAll, describe, expect, it } from 'vitest';
import { unpackKit } from '../src/kit.ts';
import { jsonResult, kitRunner, startDevJson } from '../src/mp.ts';
import { startPtyBoard } from '../src/pty.ts';

const kit = await unpackKit();
/** The executable the first test built, for the REPL tests. */
let executable: string | undefined;
const keep = mkdtempSync(join(tmpdir(), 'mp-upstream-unix-'));
afterAll(() => rmSync(keep, { recursive: true, force: true }));
const runner = kitRunner(kit);
afterAll(() => runner.cleanup());

describe('real MicroPython: the unix port of v1.28.0', () => {
  it('builds with mqtt_as and a project module; the executable runs the module and lists mqtt_as', async () => {
    const project = tempProject({
      // No mbedtls in the kit (MICROPY_PY_SSL=0); its berkeley-db is not the pinned commit (MICROPY_PY_BTREE=0).
      'mp.config.json': JSON.stringify({
        board: 'unix',
        micropython: { ref: 'v1.28.0' },
        make: { MICROPY_PY_SSL: 0, MICROPY_PY_BTREE: 0 },
      }),
      'modules/app.py': 'GREETING = "hello from a frozen module"\nprint(GREETING)\n',
    });
    const run = await runner.mp(['build', '--cwd', project.dir, '--json']);
    expect(run.code, run.output).toBe(0);
    const result = jsonResult(run);
    const sidecar = JSON.parse(readFileSync(result.sidecar, 'utf8'));
    process.stdout.write(`real unix executable: ${result.firmware}, ${sidecar.size} bytes\n`);
    expect(sidecar.micropython.sha).toBe(kit.commit('micropython/micropython', 'v1.28.0'));
    expect(sidecar.libraries[0].sha).toBe(kit.commit('peterhinch/micropython-mqtt', 'master'));
    expect(sidecar.micropython.submodules['lib/micropython-lib'].sha).toBe(
      kit.commit('micropython/micropython-lib', 'master'),
    );
    expect(sidecar.options.make).toEqual({ MICROPY_PY_SSL: '0', MICROPY_PY_BTREE: '0' });

    // Kept past this test's temporary project, for the REPL tests below.
    executable = join(keep, 'micropython');
    copyFileSync(result.firmware, executable);
    chmodSync(executable, 0o755);
    const imported = spawnSync(result.firmware, ['-c', 'import app'], { encoding: 'utf8', cwd: project.dir });
    expect(imported.status, imported.stderr).toBe(0);
    expect(imported.stdout).toBe('hello from a frozen module\n');
    const modules = spawnSync(result.firmware, ['-c', "help('modules')"], { encoding: 'utf8' });
    expect(modules.stdout).toMatch(/\bmqtt_as\/__init__\b/);
    expect(modules.stdout).toMatch(/\bapp\b/);
    const version = spawnSync(result.firmware, ['-c', 'import sys; print(sys.implementation.version[:2])'], {
      encoding: 'utf8',
    });
    expect(version.stdout.trim()).toBe('(1, 28)');
  });

  it('compiles a user C module into the real unix build: mymod.add(2, 3) prints 5', async () => {
    const project = tempProject({
      'mp.config.json': JSON.stringify({
        board: 'unix',
        libraries: [],
        micropython: { ref: 'v1.28.0' },
        make: { MICROPY_PY_SSL: 0, MICROPY_PY_BTREE: 0 },
        cModules: ['cmodules/mymod'],
      }),
    });
    // The module `mp new c-module` writes.
    for (const [file, text] of Object.entries(cModuleTemplate('mymod')))
      project.write(`cmodules/mymod/${file}`, text);
    const run = await runner.mp(['build', '--cwd', project.dir, '--json']);
    expect(run.code, run.output).toBe(0);
    const result = jsonResult(run);
    const sidecar = JSON.parse(readFileSync(result.sidecar, 'utf8'));
    expect(sidecar.options.cModules).toEqual([
      expect.objectContaining({ name: 'mymod', path: project.path('cmodules/mymod') }),
    ]);
    const added = spawnSync(result.firmware, ['-c', 'import mymod; print(mymod.add(2, 3))'], {
      encoding: 'utf8',
    });
    expect(added.stderr).toBe('');
    expect(added.stdout).toBe('5\n');
  });

  it('mp put copies files over the real raw REPL: a second run copies nothing; an edit copies one file', async () => {
    expect(executable, 'the first test builds the executable').toBeDefined();
    const board = await startPtyBoard(executable!);
    try {
      const project = tempProject({
        'export/mqtt_local.py': 'config = {"ssid": "home", "wifi_pw": "secret"}\n',
        'main.py': 'import app\n',
        // Not text: every byte value, so the transfer's escaping is exercised.
        'data.bin': new Uint8Array(Array.from({ length: 1500 }, (_, i) => (i * 7) % 256)),
      });
      const files = ['export/mqtt_local.py', 'main.py', 'data.bin'];
      const put = () =>
        runMp(['put', ...files, '--to', board.dir, '--port', board.port, '-C', project.dir, '--json']);
      const first = await put();
      expect(first.code, first.output).toBe(0);
      expect(jsonResult(first).files.map((f: { status: string }) => f.status)).toEqual([
        'copied',
        'copied',
        'copied',
      ]);
      for (const file of files)
        expect(
          readFileSync(join(board.dir, basename(file))).equals(readFileSync(project.path(file))),
          file,
        ).toBe(true);

      const again = await put();
      expect(again.code, again.output).toBe(0);
      expect(jsonResult(again).files.map((f: { status: string }) => f.status)).toEqual([
        'unchanged',
        'unchanged',
        'unchanged',
      ]);

      project.write('main.py', 'import app\nprint("edited")\n');
      const edited = await put();
      expect(jsonResult(edited).files.map((f: { status: string }) => f.status)).toEqual([
        'unchanged',
        'copied',
        'unchanged',
      ]);
      expect(readFileSync(join(board.dir, 'main.py'), 'utf8')).toBe('import app\nprint("edited")\n');
      expect(readdirSync(board.dir).filter((f) => f.endsWith('.mp-tmp'))).toEqual([]);

      // With no files named, the config's `files` are copied.
      project.write('mp.config.json', JSON.stringify({ files: ['export/mqtt_local.py', 'main.py'] }));
      const fromConfig = await runMp([
        'put',
        '--to',
        board.dir,
        '--port',
        board.port,
        '-C',
        project.dir,
        '--json',
      ]);
      expect(fromConfig.code, fromConfig.output).toBe(0);
      expect(
        jsonResult(fromConfig).files.map((f: { to: string; status: string }) => [basename(f.to), f.status]),
      ).toEqual([
        ['mqtt_local.py', 'unchanged'],
        ['main.py', 'unchanged'],
      ]);
    } finally {
      await board.stop();
    }
  });

  it.each(['esp8266-d1mini', 'esp32s3-usb'] as const)(
    'mp flash copies the config’s files to the board (%s) whose application is the real unix MicroPython',
    async (board) => {
      expect(executable, 'the first test builds the executable').toBeDefined();
      // The board's filesystem: the folder the executable runs in (its `/` would be the host's).
      const fs = mkdtempSync(join(tmpdir(), 'mp-upstream-board-fs-'));
      const files = (names: string[]) => names.map((name) => ({ from: name, to: `${fs}/${basename(name)}` }));
      const s3 = board === 'esp32s3-usb';
      const project = tempProject({
        'mp.config.json': JSON.stringify({
          board,
          libraries: [],
          files: files(['export/mqtt_local.py', 'main.py']),
        }),
        'export/mqtt_local.py': 'config = {"ssid": "home", "wifi_pw": "secret"}\n',
        'main.py': 'import app\n',
        'firmware.bin': s3 ? makeTestS3Firmware() : makeTestFirmware('ESP8266', { seed: 5 }).image,
        ...(s3 ? S3_USB_BOARD_FILES : {}),
      });
      try {
        // The S3 is reached through its USB-Serial/JTAG peripheral: after the flasher's reset the
        // port leaves the bus and comes back under another name, where the files go.
        const emulator = writeEmulatorConfig(project.path('.emulator'), [
          s3
            ? {
                chip: 'esp32s3',
                path: '/dev/ttyACM0',
                usb: 'usb-serial-jtag',
                reenumerateMs: 150,
                renames: ['/dev/ttyACM1', '/dev/ttyACM2', '/dev/ttyACM3', '/dev/ttyACM4'],
                application: { command: executable!, cwd: fs },
              }
            : { chip: 'esp8266', application: { command: executable!, cwd: fs } },
        ]);
        const env = { ...emulator.env, MP_CACHE_DIR: project.path('.cache') };
        const flash = async (...args: string[]) => {
          const run = await runMp(['flash', 'firmware.bin', '--json', ...args], { cwd: project.dir, env });
          expect(run.code, run.output).toBe(0);
          const result = jsonResult(run);
          return {
            mode: result.flash.mode as string,
            files: (result.files ?? []).map((f: { to: string; status: string }) => [
              basename(f.to),
              f.status,
            ]),
          };
        };

        expect(await flash()).toEqual({
          mode: 'full',
          files: [
            ['mqtt_local.py', 'copied'],
            ['main.py', 'copied'],
          ],
        });
        for (const name of ['export/mqtt_local.py', 'main.py'])
          expect(readFileSync(join(fs, basename(name))).equals(readFileSync(project.path(name))), name).toBe(
            true,
          );

        // Same firmware, same files: nothing written, nothing copied.
        expect(await flash()).toEqual({
          mode: 'unchanged',
          files: [
            ['mqtt_local.py', 'unchanged'],
            ['main.py', 'unchanged'],
          ],
        });

        project.write('main.py', 'import app\nprint("edited")\n');
        expect((await flash()).files).toEqual([
          ['mqtt_local.py', 'unchanged'],
          ['main.py', 'copied'],
        ]);
        expect(readFileSync(join(fs, 'main.py'), 'utf8')).toBe('import app\nprint("edited")\n');

        // --no-files leaves the board's files alone.
        project.write('main.py', 'import app\nprint("not copied")\n');
        expect((await flash('--no-files')).files).toEqual([]);
        expect(readFileSync(join(fs, 'main.py'), 'utf8')).toBe('import app\nprint("edited")\n');
        expect(readdirSync(fs).filter((f) => f.endsWith('.mp-tmp'))).toEqual([]);
      } finally {
        rmSync(fs, { recursive: true, force: true });
      }
    },
  );

  it('mp dev copies the config’s files after a flash when they changed, to the real unix MicroPython', async () => {
    expect(executable, 'the first test builds the executable').toBeDefined();
    // The firmware comes from the fixture MicroPython in the fixture toolchain (seconds, not the
    // minutes of a real ESP8266 build); what answers the REPL after each flash is the real one.
    const repos = createFixtureRepos();
    const image = await ensureFixtureToolchainImage();
    const fs = mkdtempSync(join(tmpdir(), 'mp-upstream-board-fs-'));
    const project = tempProject({
      'mp.config.json': JSON.stringify({
        image,
        flash: { port: '/dev/ttyEMU0' },
        files: [
          { from: 'main.py', to: `${fs}/main.py` },
          { from: 'export/mqtt_local.py', to: `${fs}/mqtt_local.py` },
        ],
      }),
      'modules/app.py': 'VERSION = 1\n',
      'main.py': 'import app\n',
      'export/mqtt_local.py': 'config = {"ssid": "home"}\n',
    });
    const emulator = writeEmulatorConfig(project.path('.emulator'), [
      { chip: 'esp8266', path: '/dev/ttyEMU0', application: { command: executable!, cwd: fs } },
    ]);
    const dev = startDevJson(project.dir, {
      ...emulator.env,
      MP_CACHE_DIR: project.path('.cache'),
      MP_GIT_MIRRORS: repos.mirrorEnv,
    });
    try {
      const firstPut = await dev.waitFor('dev:put', 0, 300_000);
      expect(copiedNames(dev.events[firstPut]!)).toEqual(['main.py', 'mqtt_local.py']);
      expect(readFileSync(join(fs, 'main.py'), 'utf8')).toBe('import app\n');
      expect(readFileSync(join(fs, 'mqtt_local.py'), 'utf8')).toBe('config = {"ssid": "home"}\n');

      // A module edit: rebuilt and flashed; the files are unchanged, so no REPL session at all.
      let from = dev.events.length;
      project.write('modules/app.py', 'VERSION = 2\n');
      const flashed = await dev.waitFor('dev:flashed', from);
      await dev.waitFor('dev:idle', flashed);
      expect(dev.events.slice(from).some((e) => e.type === 'dev:put-start')).toBe(false);

      // main.py saved: copied alone after the flash (the board kept mqtt_local.py).
      from = dev.events.length;
      project.write('main.py', 'import app\nprint("edited")\n');
      const put = await dev.waitFor('dev:put', from);
      expect(copiedNames(dev.events[put]!)).toEqual(['main.py']);
      expect(readFileSync(join(fs, 'main.py'), 'utf8')).toBe('import app\nprint("edited")\n');
      expect(readdirSync(fs).filter((f) => f.endsWith('.mp-tmp'))).toEqual([]);
    } finally {
      await dev.stop();
      rmSync(fs, { recursive: true, force: true });
      repos.cleanup();
    }
  });

  it('mp put says so when what answers on the port is not a MicroPython REPL', async () => {
    // A program that reads and never answers: firmware without a REPL, or the wrong baud rate.
    const board = await startPtyBoard('cat >/dev/null');
    try {
      const project = tempProject({ 'main.py': 'x = 1\n' });
      const run = await runMp(['put', 'main.py', '--port', board.port, '-C', project.dir]);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain(`The board on ${board.port} did not answer a MicroPython REPL`);
      expect(run.stderr).toContain('REPL_NOT_ANSWERING');
      expect(run.stderr).toMatch(/baud/);
    } finally {
      await board.stop();
    }
  });
});

/** The board paths a `dev:put` event says were copied, by name. */
function copiedNames(event: Record<string, unknown>): string[] {
  const outcomes = event.outcomes as Array<{ file: { to: string }; status: string }>;
  return outcomes.filter((o) => o.status === 'copied').map((o) => basename(o.file.to));
}
