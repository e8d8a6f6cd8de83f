import { describe, expect, it } from 'vitest';
import type { ChipName } from '../src/index.ts';
import { createEspEmulator, firmwareBanner, makeTestFirmware } from '../src/index.ts';
import {
  APP_OFFSET,
  flashOptions,
  md5Hex,
  openLoader,
  readUntil,
  resetIntoApplication,
  u32s,
  writeText,
} from './helpers.ts';

const EXPECTED: Record<
  ChipName,
  { name: string; description: string; features: string; crystal: string; mac: string }
> = {
  esp8266: {
    name: 'ESP8266',
    description: 'Chip is ESP8266EX',
    features: 'Features: WiFi',
    crystal: 'Crystal is 26MHz',
    mac: 'MAC: 5c:cf:7f:a1:b2:c3',
  },
  esp32: {
    name: 'ESP32',
    description: 'Chip is ESP32-D0WD-V3 (revision 3)',
    features: 'Features: Wi-Fi, BT, Dual Core, 240MHz, VRef calibration in efuse, Coding Scheme None',
    crystal: 'Crystal is 40MHz',
    mac: 'MAC: 24:0a:c4:a1:b2:c3',
  },
  esp32s3: {
    name: 'ESP32-S3',
    description: 'Chip is ESP32-S3 (QFN56) (revision v0.2)',
    features: 'Features: Wi-Fi,BLE',
    crystal: 'Crystal is 40MHz',
    mac: 'MAC: f4:12:fa:a1:b2:c3',
  },
  esp32c3: {
    name: 'ESP32-C3',
    description: 'Chip is ESP32-C3 (QFN32) (revision v0.3)',
    features: 'Features: Wi-Fi,BLE',
    crystal: 'Crystal is 40MHz',
    mac: 'MAC: 34:85:18:a1:b2:c3',
  },
};

describe.each<ChipName>(['esp8266', 'esp32', 'esp32s3', 'esp32c3'])(
  'esptool-js flashing an emulated %s through the Web Serial adapter',
  (chip) => {
    it('detects the chip, uploads the stub, switches to 460800 baud, writes compressed, verifies MD5 and boots the new firmware', async () => {
      const emulator = createEspEmulator({ chip });
      const device = emulator.device();
      const { port, transport, loader, log } = await openLoader(emulator);
      const image = makeTestFirmware(200_000, 7);
      const offset = APP_OFFSET[chip];

      const description = await loader.main();
      expect(description).toBe(EXPECTED[chip].description.replace('Chip is ', ''));
      expect(log).toEqual(
        expect.arrayContaining([
          EXPECTED[chip].description,
          EXPECTED[chip].features,
          EXPECTED[chip].crystal,
          EXPECTED[chip].mac,
          'Stub running...',
          'Flash ID: 1640ef',
        ]),
      );
      expect(loader.chip.CHIP_NAME).toBe(EXPECTED[chip].name);
      expect(loader.IS_STUB).toBe(true);
      expect(device.mode).toBe('stub');
      expect(device.stats.stubStarts).toBe(1);
      expect(device.stats.baudChanges).toEqual([460800]);
      expect(device.baudRate).toBe(460800);
      expect(port.baudRate).toBe(460800);
      expect(await loader.detectFlashSize()).toBe('4MB');

      await loader.writeFlash(flashOptions(image, offset));
      expect(log).toContain('Hash of data verified.');
      expect(device.flash.subarray(offset, offset + image.length)).toEqual(image);
      expect(device.flash[offset + image.length]).toBe(0xff);
      expect(device.stats.flashWrites).toEqual([{ offset, length: image.length }]);
      expect(device.stats.commands.FLASH_DEFL_DATA).toBeGreaterThan(1);
      expect(device.stats.commands.FLASH_DATA).toBeUndefined();
      expect(device.stats.commands.SPI_FLASH_MD5).toBe(1);
      expect(device.stats.bytesReceived).toBeGreaterThan(100_000);
      expect(device.stats.bytesReceived).toBeLessThan(image.length);
      expect(device.stats.garbledBytesReceived).toBe(0);
      // esptool-js first asks for GET_SECURITY_INFO, which the ESP8266 and ESP32 ROMs do not
      // implement; the S3 and C3 ROMs answer it with their chip id.
      expect(device.stats.commands.GET_SECURITY_INFO).toBe(1);
      expect(device.stats.errorResponses).toEqual(
        device.chip.securityInfo ? [] : [{ command: 'GET_SECURITY_INFO', error: 0x05, stub: false }],
      );
      expect(device.stats.internalErrors).toEqual([]);
      await transport.disconnect();

      // The serial monitor's view: open at 115200, reset with GPIO0 released, see the banner, type.
      await port.open({ baudRate: 115200 });
      await resetIntoApplication(port);
      const boot = await readUntil(port, '>>> ');
      expect(boot).toContain(`${firmwareBanner(chip, image)}\r\n`);
      expect(device.banner).toBe(firmwareBanner(chip, image));
      expect(device.mode).toBe('app');
      await writeText(port, 'print("hello")\r');
      expect(await readUntil(port, 'hello\r\n>>> ')).toBe('print("hello")\r\nhello\r\n>>> ');
      expect(device.stats.replLines).toEqual(['print("hello")']);
      await port.close();
    });
  },
);

describe('esptool-js traps the emulator reproduces', () => {
  it("after('hard_reset') following a connect leaves GPIO0 low and does not reset: the app only starts after an explicit EN pulse", async () => {
    const emulator = createEspEmulator({ chip: 'esp32' });
    const device = emulator.device();
    const { port, transport, loader } = await openLoader(emulator);
    const image = makeTestFirmware(20_000, 3);
    await loader.main();
    await loader.writeFlash(flashOptions(image, 0x1000));
    const resetsBefore = device.stats.resets;

    await loader.after('hard_reset');
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(device.stats.resets).toBe(resetsBefore);
    expect(device.mode).toBe('stub');

    await transport.disconnect();
    await port.open({ baudRate: 115200 });
    await resetIntoApplication(port);
    expect(await readUntil(port, '>>> ')).toContain(firmwareBanner('esp32', image));
    expect(device.stats.boots.at(-1)).toBe('app');
    await port.close();
  });
});

describe('other loader paths', () => {
  it('writes uncompressed (FLASH_DATA), reads flash back (READ_FLASH), erases a region and the whole chip', async () => {
    const emulator = createEspEmulator({ chip: 'esp8266', flashSize: 1024 * 1024 });
    const device = emulator.device();
    const { transport, loader } = await openLoader(emulator);
    await loader.main();
    expect(await loader.detectFlashSize()).toBe('1MB');
    const image = makeTestFirmware(40_000, 9);

    await loader.writeFlash(flashOptions(image, 0x8000, { compress: false }));
    expect(device.stats.commands.FLASH_DATA).toBe(3);
    expect(device.flash.subarray(0x8000, 0x8000 + image.length)).toEqual(image);
    // esptool pads the last uncompressed block to 16 KiB with 0xFF
    expect(device.stats.flashWrites).toEqual([{ offset: 0x8000, length: 3 * 0x4000 }]);

    const readBack = await loader.readFlash(0x8000, 5000);
    expect(readBack).toEqual(image.subarray(0, 5000));
    expect(device.stats.commands.READ_FLASH).toBe(1);

    expect(await loader.flashMd5sum(0x8000, image.length)).toBe(md5Hex(image));

    await loader.checkCommand('erase region', loader.ESP_ERASE_REGION, u32s(0x9000, 0x1000));
    expect(device.flash.subarray(0x9000, 0xa000).every((b) => b === 0xff)).toBe(true);
    expect(device.flash[0x8fff]).toBe(image[0xfff]);

    await loader.eraseFlash();
    expect(device.flash.every((b) => b === 0xff)).toBe(true);
    await transport.disconnect();
  });

  it("after('soft_reset') starts the application from the ESP8266 ROM; esptool-js's stub ignores RUN_USER_CODE", async () => {
    const image = makeTestFirmware(10_000, 17);
    for (const withStub of [false, true]) {
      const emulator = createEspEmulator({ chip: 'esp8266', flash: image });
      const device = emulator.device();
      const { loader, transport } = await openLoader(emulator);
      await loader.connect();
      if (withStub) await loader.runStub();
      await loader.after('soft_reset');
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(device.stats.commands[withStub ? 'RUN_USER_CODE' : 'FLASH_END']).toBe(1);
      if (withStub) {
        // esp-flasher-stub: "This command does not send response. TODO: … reset"; the stub stays.
        expect(device.mode).toBe('stub');
        expect((await loader.readReg(0x40001000)) >>> 0).toBe(0xfff0c101);
      } else {
        expect(device.mode).toBe('app');
        expect(new TextDecoder('latin1').decode(transport.peek())).toContain(
          firmwareBanner('esp8266', image),
        );
      }
      await transport.disconnect();
    }
  });

  it('a board without firmware stays in the ROM with its error message instead of a REPL', async () => {
    const emulator = createEspEmulator({ chip: 'esp32' });
    const { port } = await openLoader(emulator);
    await port.open({ baudRate: 115200 });
    await resetIntoApplication(port);
    expect(await readUntil(port, 'ets_main.c')).toContain('flash read err, 1000');
    expect(emulator.device().mode).toBe('no-firmware');
    await port.close();
  });
});
