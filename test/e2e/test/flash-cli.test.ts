/**
 * `mp flash` as a user runs it: the real CLI in a subprocess, talking to an emulated board through
 * MP_SERIAL_BINDING (the only test seam), flash content and wire statistics read back from the
 * emulator's files.
 */
import { makeTestFirmware } from '@mp/test-utils/esp-firmware';
import { describe, expect, it } from 'vitest';
import { flashFixture, writeExport } from './flash-helpers.ts';

describe('mp flash (newest export)', () => {
  it('flashes the newest export of the board (by builtAt when there is no index) and boots it', async () => {
    const older = makeTestFirmware('ESP8266', { seed: 1 });
    const newer = makeTestFirmware('ESP8266', { seed: 2 });
    const f = flashFixture('ESP8266', [{ chip: 'esp8266' }]);
    writeExport(f.project, newer, {
      name: 'ESP8266-micropython-v1.28.0-mqtt-as-20260502-0900',
      builtAt: '2026-05-02T09:00:00.000Z',
    });
    writeExport(f.project, older, {
      name: 'ESP8266-micropython-v1.28.0-mqtt-as-20260501-0900',
      builtAt: '2026-05-01T09:00:00.000Z',
    });

    const run = await f.mp(['flash']);
    expect(run.code, run.output).toBe(0);
    expect(f.flashed(newer)).toEqual(newer.image);
    expect(run.stderr).toContain(
      'Connected to ESP8266EX on /dev/ttyEMU0 (MAC 5c:cf:7f:a1:b2:c3, 4MB flash, 460800 baud)',
    );
    expect(run.stderr).toMatch(
      /✔ Flashed ESP8266EX on \/dev\/ttyEMU0: wrote 320\.0 KiB of 320\.0 KiB \(80 of 80 sectors, [\d.]+ KiB compressed; full write: mp has not flashed this device before\) in [\d.]+s/,
    );
    const state = f.emulator.readState()!;
    expect(state.stats.boots.at(-1)).toBe('app');
  });

  it('follows export/latest-<board>.json, and says what to do when nothing was exported', async () => {
    const f = flashFixture('ESP32', [{ chip: 'esp32' }]);
    const none = await f.mp(['flash']);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain(
      `No exported firmware for board esp32-generic in ${f.project.path('export')}`,
    );
    expect(none.stderr).toContain('Run `mp build --board esp32-generic` first');
    expect(none.stderr).toContain('(FIRMWARE_NOT_FOUND)');

    const indexed = makeTestFirmware('ESP32', { seed: 3 });
    const other = makeTestFirmware('ESP32', { seed: 4 });
    writeExport(f.project, indexed, { name: 'ESP32-a', builtAt: '2026-05-01T09:00:00.000Z', index: true });
    writeExport(f.project, other, { name: 'ESP32-b', builtAt: '2026-04-01T09:00:00.000Z' });
    const run = await f.mp(['flash']);
    expect(run.code, run.output).toBe(0);
    expect(f.flashed(indexed)).toEqual(indexed.image);
  });

  it('refuses an exported firmware that was changed after the export', async () => {
    const fw = makeTestFirmware('ESP8266');
    const f = flashFixture('ESP8266', [{ chip: 'esp8266' }]);
    const file = writeExport(f.project, fw, { name: 'ESP8266-x', builtAt: '2026-05-01T09:00:00.000Z' });
    f.project.write('export/ESP8266-x.bin', makeTestFirmware('ESP8266', { seed: 9 }).image);
    const run = await f.mp(['flash']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`${file} differs from what was exported`);
    expect(run.stderr).toContain('(FIRMWARE_MODIFIED)');
  });
});

describe('mp flash <file> (delta)', () => {
  it("writes the file at the board's layout, then only the sectors a one-module change touched", async () => {
    const before = makeTestFirmware('ESP32');
    const after = makeTestFirmware('ESP32', { revisions: { app: 2 } });
    const f = flashFixture('ESP32', [{ chip: 'esp32' }]);
    f.project.write('build/firmware.bin', before.image);
    const first = await f.mp(['flash', 'build/firmware.bin']);
    expect(first.code, first.output).toBe(0);
    expect(f.flashed(before)).toEqual(before.image);
    const fullWire = f.emulator.readState()!.stats.bytesReceived;

    f.project.write('build/firmware.bin', after.image);
    const second = await f.mp(['flash', 'build/firmware.bin']);
    expect(second.code, second.output).toBe(0);
    expect(f.flashed(after)).toEqual(after.image);
    expect(second.stderr).toContain('Write 2 changed of 105 sectors (7.8 KiB of 419.8 KiB)');
    expect(second.stderr).toMatch(/wrote 7\.8 KiB of 419\.8 KiB \(2 of 105 sectors, [\d.]+ KiB compressed\)/);
    const stats = f.emulator.readState()!.stats;
    // The whole session (stub upload included) is a small fraction of the first flash.
    expect(stats.bytesReceived).toBeLessThan(fullWire * 0.1);
    // Programming happened in the two changed sectors only (ESP32 image at 0x1000).
    const sectors = stats.flashWrites.map((w) => Math.floor((w.offset - 0x1000) / 4096));
    expect([...new Set(sectors)]).toEqual([32, 104]);
  });

  it('falls back to a full write when the flash is not what mp remembered; --full always writes everything', async () => {
    const before = makeTestFirmware('ESP8266');
    const fw = makeTestFirmware('ESP8266', { revisions: { app: 2 } });
    const f = flashFixture('ESP8266', [{ chip: 'esp8266' }]);
    f.project.write('fw.bin', before.image);
    expect((await f.mp(['flash', 'fw.bin'])).code).toBe(0);
    // Someone flashed something else with another tool.
    const flash = f.emulator.readFlash();
    flash.fill(0, 0x10000, 0x12000);
    f.project.write('.emulator/flash-0.bin', flash);

    f.project.write('fw.bin', fw.image);
    const run = await f.mp(['flash', 'fw.bin']);
    expect(run.code, run.output).toBe(0);
    expect(run.stderr).toMatch(/Write \d+ changed of 80 sectors/);
    expect(run.stderr).toContain('Flash differs from what mp remembered: writing the whole image');
    // The changed sectors were written twice, and are counted once.
    expect(run.stderr).toMatch(
      /wrote 320\.0 KiB of 320\.0 KiB \(80 of 80 sectors, [\d.]+ KiB compressed; full write: the flash did not match what mp remembered\)/,
    );
    expect(f.flashed(fw)).toEqual(fw.image);

    const forced = await f.mp(['flash', 'fw.bin', '--full']);
    expect(forced.code).toBe(0);
    expect(forced.stderr).toContain('Write the whole image, 320.0 KiB (--full)');
  });

  it('reports the result as JSON with --json, at the --baud asked for', async () => {
    const fw = makeTestFirmware('ESP8266');
    const f = flashFixture('ESP8266', [{ chip: 'esp8266' }]);
    f.project.write('fw.bin', fw.image);
    const run = await f.mp(['flash', 'fw.bin', '--json', '--baud', '921600']);
    expect(f.emulator.readState()!.stats.baudChanges).toEqual([921600]);
    expect(run.code).toBe(0);
    const lines = run.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.filter((l) => l.type === 'step:end').map((l) => l.id)).toEqual([
      'connect',
      'write',
      'verify',
      'reset',
    ]);
    expect(lines.at(-1)).toMatchObject({
      type: 'result',
      ok: true,
      board: 'esp8266-d1mini',
      flash: {
        mode: 'full',
        imageBytes: fw.image.length,
        writtenBytes: fw.image.length,
        device: { chip: 'ESP8266', mac: '5c:cf:7f:a1:b2:c3', baudRate: 921600 },
      },
    });
  });
});

describe('mp flash --baud', () => {
  it("falls back to the board's 460800 when the link does not carry the rate asked for", async () => {
    const fw = makeTestFirmware('ESP32');
    const f = flashFixture('ESP32', [{ chip: 'esp32', linkMaxBaud: 921600 }]);
    f.project.write('fw.bin', fw.image);
    const run = await f.mp(['flash', 'fw.bin', '--baud', '1500000']);
    expect(run.code).toBe(0);
    expect(run.stderr).toContain('does not answer at 1500000 baud; connecting again at 460800 baud');
    expect(run.stderr).toContain('460800 baud)');
    expect(f.flashed(fw)).toEqual(fw.image);
  });
});

describe('mp flash errors', () => {
  it('says the firmware is flashed but the files were not copied when the board answers no raw REPL', async () => {
    // The emulator's built-in application echoes lines and knows no raw REPL, like a firmware
    // without MicroPython's REPL on that port.
    const fw = makeTestFirmware('ESP8266', { seed: 6 });
    const f = flashFixture('ESP8266', [{ chip: 'esp8266' }]);
    f.project.write('mp.config.json', JSON.stringify({ board: 'esp8266-d1mini', files: ['main.py'] }));
    f.project.write('main.py', 'import app\n');
    f.project.write('fw.bin', fw.image);
    const run = await f.mp(['flash', 'fw.bin'], { timeoutMs: 60_000 });
    expect(run.code).toBe(1);
    expect(f.flashed(fw)).toEqual(fw.image);
    expect(run.stderr).toContain("The firmware is flashed, but the config's files were not copied");
    expect(run.stderr).toContain('The board on /dev/ttyEMU0 did not answer a MicroPython REPL');
    expect(run.stderr).toContain('(REPL_NOT_ANSWERING)');
    expect(run.stderr).toContain('--no-files');

    const skipped = await f.mp(['flash', 'fw.bin', '--no-files']);
    expect(skipped.code, skipped.output).toBe(0);
    expect(skipped.stderr).not.toContain('Copying');
  }, 60_000);

  it('refuses a file that is not a firmware image before opening the port; --force flashes it', async () => {
    const f = flashFixture('ESP8266', [{ chip: 'esp8266' }]);
    f.project.write('main.py', 'import machine\nprint("hello")\n'.repeat(100));
    const run = await f.mp(['flash', 'main.py']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      `✖ ${f.project.path('main.py')} is not an ESP firmware image: it is text ("import machine print("he…"), where an image starts with the magic byte 0xE9`,
    );
    expect(run.stderr).toContain(
      'If this really is an image without a header, flash it anyway with --force.',
    );
    expect(run.stderr).toContain('(FIRMWARE_NOT_AN_IMAGE)');
    expect(f.emulator.readState()?.stats.commands.SYNC ?? 0).toBe(0);

    const forced = await f.mp(['flash', 'main.py', '--force']);
    expect(forced.code, forced.output).toBe(0);
    expect(forced.stderr).toContain('✔ Flashed ESP8266EX on /dev/ttyEMU0');
  });

  it('refuses an ESP32 image for the (default) ESP8266 board, naming both chips', async () => {
    const f = flashFixture('ESP8266', [{ chip: 'esp8266' }]);
    f.project.write('fw.bin', makeTestFirmware('ESP32').image);
    const run = await f.mp(['flash', 'fw.bin']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      `✖ ${f.project.path('fw.bin')} is a firmware image for the ESP32 (chip id 0 in its header), but board esp8266-d1mini is an ESP8266`,
    );
    expect(run.stderr).toContain('(IMAGE_WRONG_CHIP)');
    expect(f.emulator.readState()?.stats.flashWrites ?? []).toEqual([]);
  });

  it('refuses a chip that does not match the board', async () => {
    const f = flashFixture('ESP8266', [{ chip: 'esp32' }]);
    f.project.write('fw.bin', makeTestFirmware('ESP8266').image);
    const run = await f.mp(['flash', 'fw.bin']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      '✖ The board on /dev/ttyEMU0 is an ESP32, but board esp8266-d1mini is an ESP8266',
    );
    expect(run.stderr).toContain('(WRONG_CHIP)');
    expect(f.emulator.readState()!.stats.flashWrites).toEqual([]);
  });

  it('refuses an image larger than the flash before writing', async () => {
    const f = flashFixture('ESP8266', [{ chip: 'esp8266', flashSize: 256 * 1024 }]);
    f.project.write('fw.bin', makeTestFirmware('ESP8266').image);
    const run = await f.mp(['flash', 'fw.bin']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /fw\.bin \(320\.0 KiB at 0x0\) ends at 0x50000, beyond the 256KB flash of the ESP8266EX on \/dev\/ttyEMU0/,
    );
    expect(run.stderr).toContain('(IMAGE_TOO_LARGE)');
  });

  it('says to hold BOOT when the bootloader does not answer', async () => {
    const f = flashFixture('ESP8266', [
      { chip: 'esp8266', faults: [{ action: 'drop', command: 'SYNC', times: 100_000 }] },
    ]);
    f.project.write('fw.bin', makeTestFirmware('ESP8266').image);
    const run = await f.mp(['flash', 'fw.bin']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('✖ No answer from an ESP bootloader on /dev/ttyEMU0');
    expect(run.stderr).toContain(
      'Hold the BOOT (GPIO0/FLASH) button, press and release RESET (EN/RST), release BOOT',
    );
  }, 30_000);

  it('lists the boards when several are connected and none was chosen; --port picks one', async () => {
    const fw = makeTestFirmware('ESP32');
    const f = flashFixture('ESP32', [{ chip: 'esp8266' }, { chip: 'esp32' }]);
    f.project.write('fw.bin', fw.image);
    const ambiguous = await f.mp(['flash', 'fw.bin']);
    expect(ambiguous.code).toBe(1);
    expect(ambiguous.stderr).toContain(
      'Several boards are connected:\n  /dev/ttyEMU0  WCH CH340 (1a86:7523)\n  /dev/ttyEMU1  Silicon Labs CP2102/CP2104 (10c4:ea60)  serial 0001',
    );
    expect(ambiguous.stderr).toContain('(PORT_AMBIGUOUS)');
    const chosen = await f.mp(['flash', 'fw.bin', '--port', '/dev/ttyEMU1']);
    expect(chosen.code, chosen.output).toBe(0);
    expect(f.flashed(fw, 1)).toEqual(fw.image);
  });

  it('names a port that does not exist', async () => {
    const f = flashFixture('ESP8266', [{ chip: 'esp8266' }]);
    f.project.write('fw.bin', makeTestFirmware('ESP8266').image);
    const run = await f.mp(['flash', 'fw.bin', '-p', '/dev/ttyEMU9']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('✖ Serial port /dev/ttyEMU9 does not exist');
    expect(run.stderr).toContain('mp ports');
  });
});

describe('mp ports', () => {
  it('lists the USB serial adapters and marks the one this project uses', async () => {
    const f = flashFixture('ESP8266', [{ chip: 'esp8266' }, { chip: 'esp32' }]);
    f.project.write(
      '.mp/port.json',
      JSON.stringify({ path: '/dev/ttyEMU1', rememberedAt: '2026-05-01T00:00:00.000Z' }),
    );
    const run = await f.mp(['ports']);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(
      [
        'PORT          ADAPTER                     USB ID     SERIAL',
        '/dev/ttyEMU0  WCH CH340                   1a86:7523  -',
        '/dev/ttyEMU1  Silicon Labs CP2102/CP2104  10c4:ea60  0001    (used by this project)',
        '',
      ].join('\n'),
    );
    const json = JSON.parse((await f.mp(['ports', '--json'])).stdout);
    expect(json.ports).toEqual([
      expect.objectContaining({
        path: '/dev/ttyEMU0',
        family: 'CH340',
        usbId: '1a86:7523',
        remembered: false,
      }),
      expect.objectContaining({
        path: '/dev/ttyEMU1',
        family: 'CP210x',
        usbId: '10c4:ea60',
        remembered: true,
      }),
    ]);
  });
});
