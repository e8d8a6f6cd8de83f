/**
 * Given a board, which of its loaders does the flash work and at what rate: an ESP32's ROM writes
 * small changes and checks MD5s itself (esptool `--no-stub`), an ESP8266's ROM is synced at the
 * board's rate so its stub goes up faster, and a rate the adapter or the link cannot carry falls
 * back to the board's.
 */
import type { EmulatedEsp } from '@mp/esp-emulator';
import { describe, it } from 'vitest';
import { bench, bootedApp, firmware, firmwareImage, flashAt } from './flash-helpers.ts';

/** Commands the board executed since `before` (a copy of `stats.commands`). */
function since(device: EmulatedEsp, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, count] of Object.entries(device.stats.commands)) {
    const n = count - (before[name] ?? 0);
    if (n > 0) out[name] = n;
  }
  return out;
}

describe('an ESP32 mp flashed before', () => {
  it.concurrent('gets a one-module change from its ROM: no stub, 1 KiB blocks, no FLASH_DEFL_END', async ({
    expect,
  }) => {
    const before = firmware('ESP32');
    const after = firmware('ESP32', { revisions: { app: 2 } });
    const blocks: number[] = [];
    const b = bench('ESP32');
    await b.flash(firmwareImage(before));
    const device = b.emulator.device();
    // A rule that never fires, to see the size of every compressed block.
    device.faults.add({
      action: 'drop',
      command: 'FLASH_DEFL_DATA',
      when: (frame) => blocks.push(frame.data.length - 16) < 0,
    });
    const counted = { ...device.stats.commands };
    const stubs = device.stats.stubStarts;
    const bauds = device.stats.baudChanges.length;

    const result = await b.flash(firmwareImage(after));
    const commands = since(device, counted);
    expect(result.mode).toBe('delta');
    expect(flashAt(b.emulator, after.offset, after.image.length)).toEqual(after.image);
    expect(device.stats.stubStarts).toBe(stubs);
    expect(commands).toMatchObject({ SPI_ATTACH: 1, SPI_SET_PARAMS: 1, SPI_FLASH_MD5: 1 });
    expect(commands).not.toHaveProperty('MEM_BEGIN');
    expect(commands).not.toHaveProperty('FLASH_DEFL_END');
    // Synced at 460800 straight away (autobaud), the magic register read instead of GET_SECURITY_INFO.
    expect(device.stats.baudChanges.length).toBe(bauds);
    expect(commands).not.toHaveProperty('GET_SECURITY_INFO');
    // esptool's FLASH_WRITE_SIZE for a ROM loader.
    expect(Math.max(...blocks)).toBe(1024);
    expect(blocks.reduce((n, size) => n + size, 0)).toBe(result.compressedBytes);
    expect(result.device.baudRate).toBe(460800);
    await bootedApp(b.emulator);
  });

  it.concurrent('re-flashed with the same image costs the connection and one MD5 check, no write and no stub', async ({
    expect,
  }) => {
    const fw = firmware('ESP32');
    const b = bench('ESP32');
    await b.flash(firmwareImage(fw));
    const device = b.emulator.device();
    const counted = { ...device.stats.commands };
    const result = await b.flash(firmwareImage(fw));
    expect(result.mode).toBe('unchanged');
    const commands = since(device, counted);
    expect(commands.SPI_FLASH_MD5).toBe(1);
    for (const name of ['FLASH_DEFL_BEGIN', 'FLASH_DEFL_DATA', 'FLASH_BEGIN', 'MEM_BEGIN', 'MEM_DATA'])
      expect(commands).not.toHaveProperty(name);
  });

  it.concurrent('flashed for the first time connects again for the stub: 1.5 MB in 1 KiB ROM blocks would cost more', async ({
    expect,
  }) => {
    const fw = firmware('ESP32');
    const b = bench('ESP32');
    const result = await b.flash(firmwareImage(fw));
    const device = b.emulator.device();
    expect(result.mode).toBe('full');
    expect(device.stats.stubStarts).toBe(1);
    // The stub goes up over a link synced at 115200 (it sets its UART to that), then switches.
    expect(device.stats.baudChanges).toEqual([460800]);
    expect(device.stats.commands.FLASH_DEFL_END).toBe(1);
    expect(flashAt(b.emulator, fw.offset, fw.image.length)).toEqual(fw.image);
  });
});

describe.each(['ESP8266', 'ESP32'] as const)('an %s flashed at another rate', (chip) => {
  it.concurrent('switches to --baud 921600 with CHANGE_BAUDRATE', async ({ expect }) => {
    const before = firmware(chip);
    const after = firmware(chip, { revisions: { app: 2 } });
    const b = bench(chip);
    await b.flash(firmwareImage(before));
    const device = b.emulator.device();
    const bauds = device.stats.baudChanges.length;
    const result = await b.flash(firmwareImage(after), { baudRate: 921600 });
    expect(result.device.baudRate).toBe(921600);
    // ESP8266: its stub, after a ROM sync at 460800; ESP32: its ROM.
    expect(device.stats.baudChanges.slice(bauds)).toEqual([921600]);
    expect(flashAt(b.emulator, after.offset, after.image.length)).toEqual(after.image);
  });

  it.concurrent('falls back to the board’s 460800 when the link does not carry --baud 1500000', async ({
    expect,
  }) => {
    const before = firmware(chip);
    const after = firmware(chip, { revisions: { app: 2 } });
    const b = bench(chip, { linkMaxBaud: 921600 });
    await b.flash(firmwareImage(before));
    const result = await b.flash(firmwareImage(after), { baudRate: 1_500_000 });
    expect(result.device.baudRate).toBe(460800);
    expect(b.events).toContainEqual(
      expect.objectContaining({
        type: 'log',
        level: 'warn',
        message: expect.stringContaining('does not answer at 1500000 baud; connecting again at 460800'),
      }),
    );
    expect(flashAt(b.emulator, after.offset, after.image.length)).toEqual(after.image);
  });

  it.concurrent('asks for the board’s 460800 when the adapter refuses --baud 1500000, without a reset', async ({
    expect,
  }) => {
    const before = firmware(chip);
    const after = firmware(chip, { revisions: { app: 2 } });
    const b = bench(chip, { adapterMaxBaud: 921600 });
    await b.flash(firmwareImage(before));
    const device = b.emulator.device();
    const resets = device.stats.resets;
    const result = await b.flash(firmwareImage(after), { baudRate: 1_500_000 });
    expect(result.device.baudRate).toBe(460800);
    expect(device.stats.baudChanges).not.toContain(1_500_000);
    // One reset into the loader and one into the application.
    expect(device.stats.resets - resets).toBe(2);
    expect(flashAt(b.emulator, after.offset, after.image.length)).toEqual(after.image);
  });
});

describe('an ESP8266', () => {
  it.concurrent('gets its stub at 460800 over a ROM synced there, and mp does not read its flash id again', async ({
    expect,
  }) => {
    const before = firmware('ESP8266');
    const after = firmware('ESP8266', { revisions: { app: 2 } });
    const b = bench('ESP8266');
    await b.flash(firmwareImage(before));
    const device = b.emulator.device();
    const counted = { ...device.stats.commands };
    const result = await b.flash(firmwareImage(after));
    const commands = since(device, counted);
    expect(result).toMatchObject({ mode: 'delta', device: { flashSize: '4MB', baudRate: 460800 } });
    expect(device.stats.baudChanges).toEqual([]);
    expect(commands).toMatchObject({ MEM_END: 1, SPI_FLASH_MD5: 1 });
    // The flash id is read with WRITE_REGs (esptool-js runSpiflashCommand); the record had the size.
    expect(commands).not.toHaveProperty('WRITE_REG');
    expect(commands).not.toHaveProperty('GET_SECURITY_INFO');
  });

  it.concurrent('whose ROM misses the SYNCs at 460800 is synced at 115200, and its stub switches', async ({
    expect,
  }) => {
    const fw = firmware('ESP8266');
    // Two resets of five SYNCs each at the fast rate go unanswered.
    const b = bench('ESP8266', { faults: [{ action: 'drop', command: 'SYNC', times: 10 }] });
    const result = await b.flash(firmwareImage(fw));
    const device = b.emulator.device();
    expect(result.device.baudRate).toBe(460800);
    expect(device.stats.baudChanges).toEqual([460800]);
    expect(b.events).toContainEqual(
      expect.objectContaining({
        type: 'log',
        level: 'warn',
        message: expect.stringContaining('at 115200 baud'),
      }),
    );
    expect(flashAt(b.emulator, fw.offset, fw.image.length)).toEqual(fw.image);
  });
});
