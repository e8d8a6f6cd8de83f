/**
 * Given a board mp flashed before, when one frozen module changes, then only the 4 KiB sectors that
 * differ go over the wire, the board's MD5 of the whole region confirms the result, and anything
 * the record cannot vouch for is written in full.
 */
import { firmwareBanner } from '@mp/esp-emulator';
import { describe, it } from 'vitest';
import { bench, bootedApp, differingSectors, firmware, firmwareImage, flashAt } from './flash-helpers.ts';

describe.each(['ESP8266', 'ESP32'] as const)('delta flash of an %s', (chip) => {
  it.concurrent('writes only the sectors a one-module change touched', async ({ expect }) => {
    const before = firmware(chip);
    const after = firmware(chip, { revisions: { app: 2 } });
    const changed = differingSectors(before.image, after.image);
    expect(changed.length).toBeGreaterThan(0);
    expect(changed.length).toBeLessThanOrEqual(3);

    const b = bench(chip);
    const full = await b.flash(firmwareImage(before));
    const device = b.emulator.device();
    const fullWire = device.stats.bytesReceived;
    device.stats.flashWrites.length = 0;

    const result = await b.flash(firmwareImage(after));
    const deltaWire = device.stats.bytesReceived - fullWire;

    expect(flashAt(b.emulator, after.offset, after.image.length)).toEqual(after.image);
    expect(result).toMatchObject({ mode: 'delta', fellBack: false, sectorsWritten: changed.length });
    expect(result.writtenBytes).toBe(
      changed.reduce((n, s) => n + Math.min(4096, after.image.length - s * 4096), 0),
    );
    // The emulator saw programming only in the changed sectors.
    const writtenSectors = device.stats.flashWrites.flatMap((w) => {
      const first = Math.floor((w.offset - after.offset) / 4096);
      const last = Math.floor((w.offset + w.length - 1 - after.offset) / 4096);
      return Array.from({ length: last - first + 1 }, (_, i) => first + i);
    });
    expect([...new Set(writtenSectors)].sort((x, y) => x - y)).toEqual(changed);
    // Bytes on the wire: the stub upload and a few sectors, a fraction of the full write.
    expect(deltaWire).toBe(result.wireBytes);
    expect(deltaWire).toBeLessThan(full.wireBytes * 0.1);
    await bootedApp(b.emulator);
    expect(device.banner).toBe(firmwareBanner(chip === 'ESP8266' ? 'esp8266' : 'esp32', after.image));
  });

  it.concurrent('writes nothing when the board already holds the image, after checking its MD5', async ({
    expect,
  }) => {
    const fw = firmware(chip);
    const b = bench(chip);
    await b.flash(firmwareImage(fw));
    const device = b.emulator.device();
    device.stats.flashWrites.length = 0;
    const result = await b.flash(firmwareImage(fw));
    expect(result).toMatchObject({ mode: 'unchanged', writtenBytes: 0, sectorsWritten: 0 });
    expect(device.stats.flashWrites).toEqual([]);
    expect(b.events).toContainEqual(expect.objectContaining({ type: 'step:skip', id: 'write' }));
  });

  it.concurrent('falls back to a full write when the flash differs from the remembered image', async ({
    expect,
  }) => {
    const before = firmware(chip);
    const after = firmware(chip, { revisions: { app: 2 } });
    const b = bench(chip);
    await b.flash(firmwareImage(before));
    // Another tool rewrote part of the flash behind mp's back.
    const device = b.emulator.device();
    device.flash.fill(0x00, before.offset + 0x10000, before.offset + 0x11000);

    const result = await b.flash(firmwareImage(after));
    expect(result).toMatchObject({
      mode: 'full',
      fellBack: true,
      fullReason: 'the flash did not match what mp remembered',
    });
    // The changed sectors were written twice (delta, then everything), and are counted once.
    expect(result.writtenBytes).toBe(after.image.length);
    expect(result.sectorsWritten).toBe(result.sectorsTotal);
    expect(flashAt(b.emulator, after.offset, after.image.length)).toEqual(after.image);
    expect(b.events).toContainEqual(
      expect.objectContaining({
        type: 'step:title',
        id: 'verify',
        title: expect.stringMatching(/differs from what mp remembered/),
      }),
    );
    // The record is current again: the next flash of the same image writes nothing.
    expect((await b.flash(firmwareImage(after))).mode).toBe('unchanged');
  });

  it.concurrent('falls back to a full write when the board holds something else entirely but looks unchanged', async ({
    expect,
  }) => {
    const fw = firmware(chip);
    const b = bench(chip);
    await b.flash(firmwareImage(fw));
    b.emulator.device().flash.fill(0xff, fw.offset, fw.offset + 0x3000);
    const result = await b.flash(firmwareImage(fw));
    expect(result).toMatchObject({ mode: 'full', fellBack: true });
    expect(flashAt(b.emulator, fw.offset, fw.image.length)).toEqual(fw.image);
  });

  it.concurrent('writes in full when the record is damaged', async ({ expect }) => {
    const fw = firmware(chip);
    const b = bench(chip);
    const first = await b.flash(firmwareImage(fw));
    const { writeFile } = await import('node:fs/promises');
    await writeFile(b.devices.file(first.device.mac), '{ not json');
    const result = await b.flash(firmwareImage(firmware(chip, { revisions: { app: 2 } })));
    expect(result).toMatchObject({ mode: 'full', fullReason: 'mp has not flashed this device before' });
  });
});

describe('device records', () => {
  it.concurrent('are kept per device: two boards on two ports do not share a record', async ({ expect }) => {
    const { createEspEmulator } = await import('@mp/esp-emulator');
    const emulator = createEspEmulator([
      { chip: 'esp8266', mac: '5c:cf:7f:00:00:01' },
      { chip: 'esp8266', mac: '5c:cf:7f:00:00:02' },
    ]);
    const b = bench('ESP8266');
    const fw = firmware('ESP8266');
    const { flashFirmware } = await import('../src/index.ts');
    const one = await flashFirmware({
      firmware: firmwareImage(fw),
      port: '/dev/ttyEMU0',
      binding: emulator.binding,
      devices: b.devices,
    });
    const two = await flashFirmware({
      firmware: firmwareImage(fw),
      port: '/dev/ttyEMU1',
      binding: emulator.binding,
      devices: b.devices,
    });
    expect(one.mode).toBe('full');
    expect(two.mode).toBe('full');
    expect(b.devices.file(one.device.mac)).not.toBe(b.devices.file(two.device.mac));
    const again = await flashFirmware({
      firmware: firmwareImage(fw),
      port: '/dev/ttyEMU1',
      binding: emulator.binding,
      devices: b.devices,
    });
    expect(again.mode).toBe('unchanged');
  });
});
