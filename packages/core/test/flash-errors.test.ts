/**
 * When something is wrong with the board or the port, mp stops before writing (or as soon as it
 * knows) with an error that names the port or board and says what to do next.
 */
import { describe, it } from 'vitest';
import { type BindingInterface, EspSession, getWebSerialPort, MpError, portOpenError } from '../src/index.ts';
import { bench, bootedApp, firmware, firmwareImage } from './flash-helpers.ts';

async function failure(promise: Promise<unknown>): Promise<MpError> {
  const error = await promise.then(
    () => new Error('expected a failure, but it succeeded'),
    (e: unknown) => e,
  );
  if (!(error instanceof MpError)) throw error;
  return error;
}

describe('wrong chip', () => {
  it.concurrent('refuses an ESP32 when the board is an ESP8266, writes nothing and leaves the board running', async ({
    expect,
  }) => {
    const b = bench('ESP32');
    const error = await failure(b.flash(firmwareImage(firmware('ESP8266'))));
    expect(error.code).toBe('WRONG_CHIP');
    expect(error.message).toBe(
      'The board on /dev/ttyEMU0 is an ESP32, but board esp8266-d1mini is an ESP8266',
    );
    expect(error.hint).toMatch(/Connect the ESP8266 board.*--port.*mp boards/);
    const device = b.emulator.device();
    expect(device.stats.flashWrites).toEqual([]);
    expect(device.stats.stubStarts).toBe(0);
    expect(device.portOpen).toBe(false);
    // Restarted into whatever it ran (here: nothing flashed yet, so the ROM reports no firmware).
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(device.stats.boots.at(-1)).toBe('no-firmware');
  });

  it.concurrent('refuses an ESP8266 when the board is an ESP32', async ({ expect }) => {
    const b = bench('ESP8266');
    const error = await failure(b.flash(firmwareImage(firmware('ESP32'))));
    expect(error.code).toBe('WRONG_CHIP');
    expect(error.message).toMatch(/is an ESP8266, but board esp32-generic is an ESP32/);
  });
});

describe('image larger than the flash', () => {
  it.concurrent('is refused before anything is written, naming the file, the sizes and the port', async ({
    expect,
  }) => {
    const b = bench('ESP8266', { flashSize: 256 * 1024 });
    const error = await failure(b.flash(firmwareImage(firmware('ESP8266'))));
    expect(error.code).toBe('IMAGE_TOO_LARGE');
    expect(error.message).toBe(
      '/fixtures/ESP8266.bin (320.0 KiB at 0x0) ends at 0x50000, beyond the 256KB flash of the ESP8266EX on /dev/ttyEMU0',
    );
    expect(error.hint).toMatch(/^Nothing was written/);
    expect(b.emulator.device().stats.flashWrites).toEqual([]);
    await bootedApp(b.emulator).catch(() => {});
    expect(b.emulator.device().portOpen).toBe(false);
  });
});

describe('serial port problems', () => {
  it.concurrent('a port another program holds is PORT_BUSY with a hint to close it', async ({ expect }) => {
    const b = bench('ESP8266');
    const other = await getWebSerialPort('/dev/ttyEMU0', { binding: b.emulator.binding });
    await other.open({ baudRate: 115200 });
    try {
      const error = await failure(b.flash(firmwareImage(firmware('ESP8266'))));
      expect(error.code).toBe('PORT_BUSY');
      expect(error.message).toBe('Serial port /dev/ttyEMU0 is busy: another program has it open');
      expect(error.hint).toMatch(/Close the other program using \/dev\/ttyEMU0/);
    } finally {
      await other.close();
    }
  });

  it.concurrent('a port that does not exist is PORT_NOT_FOUND pointing at mp ports', async ({ expect }) => {
    const b = bench('ESP8266');
    const error = await failure(b.flash(firmwareImage(firmware('ESP8266')), { port: '/dev/ttyEMU7' }));
    expect(error.code).toBe('PORT_NOT_FOUND');
    expect(error.message).toBe('Serial port /dev/ttyEMU7 does not exist');
    expect(error.hint).toMatch(/mp ports/);
  });

  it.concurrent('permission denied names the dialout/uucp groups', async ({ expect }) => {
    const denied = {
      list: async () => [],
      open: async () => {
        throw Object.assign(new Error('Error: Permission denied, cannot open /dev/ttyUSB0'), {
          code: 'EACCES',
        });
      },
    } as unknown as BindingInterface;
    const error = await failure(EspSession.connect({ path: '/dev/ttyUSB0', binding: denied }));
    expect(error.code).toBe('PORT_PERMISSION_DENIED');
    expect(error.message).toBe('Permission denied opening serial port /dev/ttyUSB0');
    if (process.platform === 'linux') expect(error.hint).toMatch(/usermod -aG dialout.*usermod -aG uucp/);
  });

  it.concurrent('maps the errors of the real serialport binding', ({ expect }) => {
    const busy = new Error('Error Resource temporarily unavailable Cannot lock port');
    expect(portOpenError('/dev/ttyUSB0', busy).code).toBe('PORT_BUSY');
    expect(portOpenError('/dev/ttyUSB0', Object.assign(new Error('EBUSY'), { code: 'EBUSY' })).code).toBe(
      'PORT_BUSY',
    );
    expect(
      portOpenError('/dev/ttyUSB0', new Error('Error: Permission denied, cannot open /dev/ttyUSB0')).code,
    ).toBe('PORT_PERMISSION_DENIED');
    expect(
      portOpenError('/dev/ttyUSB9', new Error('Error: No such file or directory, cannot open /dev/ttyUSB9'))
        .code,
    ).toBe('PORT_NOT_FOUND');
    const wrapped = new DOMException('Failed to open serial port /dev/ttyUSB0', {
      name: 'NetworkError',
      cause: busy,
    });
    expect(portOpenError('/dev/ttyUSB0', wrapped).code).toBe('PORT_BUSY');
  });
});

describe('no answer from the bootloader', () => {
  it.concurrent('is DEVICE_NO_ANSWER with the hold-BOOT hint', async ({ expect }) => {
    const b = bench('ESP8266', { faults: [{ action: 'drop', command: 'SYNC', times: 10_000 }] });
    const error = await failure(b.flash(firmwareImage(firmware('ESP8266')), { connectAttempts: 2 }));
    expect(error.code).toBe('DEVICE_NO_ANSWER');
    expect(error.message).toBe('No answer from an ESP bootloader on /dev/ttyEMU0');
    expect(error.hint).toMatch(/Hold the BOOT \(GPIO0\/FLASH\) button, press and release RESET/);
    expect(b.emulator.device().portOpen).toBe(false);
  });
});

describe('flash layout', () => {
  it.concurrent('refuses a segment that does not start on a sector boundary', async ({ expect }) => {
    const b = bench('ESP32');
    const fw = firmware('ESP32');
    const image = firmwareImage(fw, {
      segments: [{ offset: 0x1800, data: fw.image, file: '/fixtures/x.bin' }],
    });
    const error = await failure(b.flash(image));
    expect(error.code).toBe('FLASH_LAYOUT_INVALID');
    expect(b.emulator.device().stats.commands.SYNC ?? 0).toBe(0);
  });
});
