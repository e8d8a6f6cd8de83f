/**
 * Given an emulated board that mp has never seen, when mp flashes a firmware, then the whole image
 * is written (compressed, through the stub at the board's baud rate), verified by MD5, and the
 * board restarts into it.
 */
import { firmwareBanner } from '@mp/esp-emulator';
import { describe, it } from 'vitest';
import { bench, bootedApp, firmware, firmwareImage, flashAt } from './flash-helpers.ts';

describe.each(['ESP8266', 'ESP32'] as const)('full flash of an %s', (chip) => {
  it.concurrent("writes the image at the board's offset and boots it", async ({ expect }) => {
    const fw = firmware(chip);
    const b = bench(chip);
    const result = await b.flash(firmwareImage(fw));

    expect(flashAt(b.emulator, fw.offset, fw.image.length)).toEqual(fw.image);
    expect(result).toMatchObject({
      mode: 'full',
      fullReason: 'mp has not flashed this device before',
      fellBack: false,
      imageBytes: fw.image.length,
      writtenBytes: fw.image.length,
      sectorsWritten: Math.ceil(fw.image.length / 4096),
      device: { chip, flashSize: '4MB', baudRate: 460800 },
    });
    const device = b.emulator.device();
    expect(device.stats.stubStarts).toBe(1);
    // An ESP8266's ROM is synced at 460800 right away (its ROM has no CHANGE_BAUDRATE); an ESP32
    // gets the stub over a link synced at 115200, which then switches.
    expect(device.stats.baudChanges).toEqual(chip === 'ESP8266' ? [] : [460800]);
    expect(device.stats.commands.FLASH_DEFL_DATA).toBeGreaterThan(0);
    expect(device.stats.commands.SPI_FLASH_MD5).toBe(1);
    // Compressed: far fewer bytes on the wire than the image.
    expect(device.stats.bytesReceived).toBeLessThan(fw.image.length * 0.8);
    await bootedApp(b.emulator);
    expect(device.banner).toBe(firmwareBanner(chip === 'ESP8266' ? 'esp8266' : 'esp32', fw.image));
    expect(device.portOpen).toBe(false);
  });

  it.concurrent('remembers the image per device (by MAC) in the device record', async ({ expect }) => {
    const fw = firmware(chip);
    const b = bench(chip);
    const result = await b.flash(firmwareImage(fw));
    const record = await b.devices.read(result.device.mac);
    expect(record).toMatchObject({
      schema: 'mp.device/1',
      mac: result.device.mac,
      chip,
      flashSize: '4MB',
      segments: [{ offset: fw.offset, size: fw.image.length }],
    });
    expect(record!.segments[0]!.sectors).toHaveLength(Math.ceil(fw.image.length / 4096));
    expect(record!.segments[0]!.sectors.every((s) => typeof s === 'string')).toBe(true);
  });

  it.concurrent('forces a full write with --full even when the device record is current', async ({
    expect,
  }) => {
    const fw = firmware(chip);
    const b = bench(chip);
    await b.flash(firmwareImage(fw));
    const result = await b.flash(firmwareImage(fw), { full: true });
    expect(result).toMatchObject({ mode: 'full', fullReason: '--full', writtenBytes: fw.image.length });
    expect(flashAt(b.emulator, fw.offset, fw.image.length)).toEqual(fw.image);
  });
});

describe('flash header', () => {
  it.concurrent('rewrites the ESP8266 flash size byte to the detected size (size: detect) and nothing else', async ({
    expect,
  }) => {
    const fw = firmware('ESP8266', { headerFlashSize: '1MB' });
    expect(fw.image[3]! & 0xf0).toBe(0x20);
    const b = bench('ESP8266');
    await b.flash(firmwareImage(fw));
    const written = flashAt(b.emulator, 0, fw.image.length);
    expect(written[3]! & 0xf0).toBe(0x40);
    const expected = Uint8Array.from(fw.image);
    expected[3] = written[3]!;
    expect(written).toEqual(expected);
  });

  it.concurrent('keeps the ESP32 image byte for byte (mode/freq/size keep: the appended SHA-256 stays valid)', async ({
    expect,
  }) => {
    const fw = firmware('ESP32');
    const b = bench('ESP32');
    await b.flash(firmwareImage(fw));
    expect(flashAt(b.emulator, 0x1000, fw.image.length)).toEqual(fw.image);
  });
});
