/**
 * `mp flash --monitor` and `mp monitor`: the console of the board in the terminal, the new
 * firmware's banner first, keys go to the board, Ctrl-] leaves and frees the port.
 */
import { firmwareBanner } from '@mp/esp-emulator';
import { makeTestFirmware } from '@mp/test-utils/esp-firmware';
import { describe, expect, it } from 'vitest';
import { flashFixture, runMpInteractive } from './flash-helpers.ts';

describe('serial monitor', () => {
  it('mp flash --monitor shows the new firmware’s banner and Ctrl-] exits', async () => {
    const before = makeTestFirmware('ESP32');
    const after = makeTestFirmware('ESP32', { revisions: { app: 2 } });
    const f = flashFixture('ESP32', [{ chip: 'esp32' }]);
    f.project.write('fw.bin', before.image);
    expect((await f.mp(['flash', 'fw.bin'])).code).toBe(0);
    f.project.write('fw.bin', after.image);

    const banner = firmwareBanner('esp32', after.image);
    const run = await runMpInteractive(
      ['flash', 'fw.bin', '--monitor'],
      { cwd: f.project.dir, env: f.env },
      async (io) => {
        await io.until('>>> ');
        io.type('print("hello from mp")\r');
        await io.until('hello from mp\r\n>>> ');
        io.type('\x1d');
      },
    );
    expect(run.code, run.output).toBe(0);
    expect(run.stderr).toContain('Write 2 changed of 105 sectors');
    expect(run.stderr).toContain('Serial monitor on /dev/ttyEMU0 at 115200 baud. Ctrl-] to leave.');
    expect(run.stdout).toContain(`${banner}\r\nType "help()" for more information.\r\n>>> `);
    expect(run.stderr).toContain('Left the serial monitor; /dev/ttyEMU0 is free.');
    expect(f.emulator.readState()!.stats.replLines).toEqual(['print("hello from mp")']);
  });

  it('mp monitor attaches to the running firmware without restarting it', async () => {
    const fw = makeTestFirmware('ESP8266');
    const f = flashFixture('ESP8266', [{ chip: 'esp8266', flash: fw.image }]);
    const run = await runMpInteractive(['monitor'], { cwd: f.project.dir, env: f.env }, async (io) => {
      await io.until('Ctrl-] to leave.');
      io.type('print("typed")\r');
      await io.until('typed\r\n>>> ');
      io.type('\x1d');
    });
    expect(run.code, run.output).toBe(0);
    expect(run.stdout).toBe('print("typed")\r\ntyped\r\n>>> ');
    expect(f.emulator.readState()!.stats.resets).toBe(0);
  });

  it('rejects --monitor with --json', async () => {
    const f = flashFixture('ESP8266', [{ chip: 'esp8266' }]);
    const run = await f.mp(['flash', '--monitor', '--json']);
    expect(run.code).toBe(2);
    expect(JSON.parse(run.stdout.trim()).error.message).toBe(
      '--monitor is interactive and cannot be combined with --json',
    );
  });
});
