/**
 * When something is wrong with the board or the port, mp stops before writing (or as soon as it
 * knows) with an error that names the port or board and says what to do next.
 */
import { describe, it } from 'vitest';
import {
  type BindingInterface,
  EspSession,
  getWebSerialPort,
  MpError,
  portOpenError,
  readImageHeader,
} from '../src/index.ts';
import { BOARDS, bench, bootedApp, firmware, firmwareImage, flashAt } from './flash-helpers.ts';

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

/** What `mp flash file.bin` makes of a file for the board (layout of `chip`'s board plugin). */
function fileFor(chip: 'ESP8266' | 'ESP32', data: Uint8Array, file = '/fixtures/firmware.bin') {
  const board = BOARDS[chip];
  return firmwareImage(firmware(chip), {
    file,
    boardId: board.id,
    chip,
    segments: [{ offset: board.offset, data, file }],
  });
}

describe('not a firmware image', () => {
  it.concurrent('a text file is refused before the port is opened, naming the file and what an image starts with', async ({
    expect,
  }) => {
    const b = bench('ESP8266');
    const text = new TextEncoder().encode('import machine\nprint("hello")\n'.repeat(200));
    const error = await failure(b.flash(fileFor('ESP8266', text, '/p/main.py')));
    expect(error.code).toBe('FIRMWARE_NOT_AN_IMAGE');
    expect(error.message).toBe(
      '/p/main.py is not an ESP firmware image: it is text ("import machine print("he…"), where an image starts with the magic byte 0xE9',
    );
    expect(error.file).toBe('/p/main.py');
    expect(error.hint).toMatch(/^Nothing was written\. Flash the firmware `mp build` exports.*--force/);
    expect(b.emulator.device().stats.commands.SYNC ?? 0).toBe(0);
    expect(b.emulator.device().stats.flashWrites).toEqual([]);
  });

  it.concurrent('random bytes are refused too', async ({ expect }) => {
    const b = bench('ESP32');
    const noise = firmware('ESP32').image.slice(0x2000, 0x40000);
    noise[0] = 0x5a;
    const error = await failure(b.flash(fileFor('ESP32', noise)));
    expect(error.code).toBe('FIRMWARE_NOT_AN_IMAGE');
    expect(error.message).toBe(
      '/fixtures/firmware.bin is not an ESP firmware image: it starts with 0x5a, where an image starts with the magic byte 0xE9',
    );
    expect(b.emulator.device().stats.flashWrites).toEqual([]);
  });

  it.concurrent('--force flashes it anyway (and the board has nothing to boot)', async ({ expect }) => {
    const b = bench('ESP8266');
    const data = new Uint8Array(0x3000).fill(0x42);
    const result = await b.flash(fileFor('ESP8266', data), { force: true });
    expect(result.writtenBytes).toBe(data.length);
    expect(flashAt(b.emulator, 0, data.length)).toEqual(data);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(b.emulator.device().stats.boots.at(-1)).toBe('no-firmware');
  });
});

describe('image for another chip', () => {
  it.concurrent('reads the chip from the header: ESP32 family by chip id, ESP8266 by having no extended header', ({
    expect,
  }) => {
    expect(readImageHeader(firmware('ESP32').image)).toEqual({ chip: 'ESP32', chipId: 0 });
    expect(readImageHeader(firmware('ESP8266').image)).toEqual({ chip: 'ESP8266' });
    const s3 = firmware('ESP32').image.slice();
    s3[12] = 9;
    expect(readImageHeader(s3)).toEqual({ chip: 'ESP32-S3', chipId: 9 });
    const c5 = firmware('ESP32').image.slice();
    c5[12] = 23;
    expect(readImageHeader(c5)).toEqual({ chip: 'ESP32-C5', chipId: 23 });
    expect(readImageHeader(new TextEncoder().encode('hello'))).toBeUndefined();
  });

  it.concurrent('an ESP32 image for the ESP8266 board is refused before connecting, naming both chips', async ({
    expect,
  }) => {
    const b = bench('ESP8266');
    const error = await failure(b.flash(fileFor('ESP8266', firmware('ESP32').image)));
    expect(error.code).toBe('IMAGE_WRONG_CHIP');
    expect(error.message).toBe(
      '/fixtures/firmware.bin is a firmware image for the ESP32 (chip id 0 in its header), but board esp8266-d1mini is an ESP8266',
    );
    expect(error.hint).toMatch(
      /^Nothing was written\. Build the firmware for esp8266-d1mini.*--board.*--force/,
    );
    expect(b.emulator.device().stats.commands.SYNC ?? 0).toBe(0);
  });

  it.concurrent('an ESP8266 image for an ESP32 board, or an ESP32-S3 image, is refused', async ({
    expect,
  }) => {
    const b = bench('ESP32');
    const esp8266 = await failure(b.flash(fileFor('ESP32', firmware('ESP8266').image)));
    expect(esp8266.message).toBe(
      '/fixtures/firmware.bin is a firmware image for the ESP8266 (its header has no ESP32-style extended header), but board esp32-generic is an ESP32',
    );
    const s3 = firmware('ESP32').image.slice();
    s3[12] = 9;
    const error = await failure(b.flash(fileFor('ESP32', s3)));
    expect(error.message).toMatch(
      /is a firmware image for the ESP32-S3 \(chip id 9 in its header\), but board esp32-generic is an ESP32$/,
    );
    expect(b.emulator.device().stats.flashWrites).toEqual([]);
  });

  it.concurrent('when the board does not say, the chip on the port must match the image', async ({
    expect,
  }) => {
    const b = bench('ESP8266');
    const error = await failure(b.flash(firmwareImage(firmware('ESP32'), { chip: undefined })));
    expect(error.code).toBe('IMAGE_WRONG_CHIP');
    expect(error.message).toBe(
      '/fixtures/ESP32.bin is a firmware image for the ESP32, but the board on /dev/ttyEMU0 is an ESP8266',
    );
    expect(error.hint).toMatch(/^Nothing was written\. Connect the ESP32 board/);
    const device = b.emulator.device();
    expect(device.stats.stubStarts).toBe(0);
    expect(device.stats.flashWrites).toEqual([]);
  });

  it.concurrent('--force skips the header check', async ({ expect }) => {
    const b = bench('ESP8266');
    const image = firmware('ESP32').image;
    const result = await b.flash(fileFor('ESP8266', image), { force: true });
    expect(result.writtenBytes).toBe(image.length);
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
