/**
 * Given a link that drops, damages or delays frames, or a cable pulled mid-write, then the flash
 * either recovers by itself or fails with a clear error, and running it again leaves flash == image.
 */
import type { FaultRule } from '@mp/esp-emulator';
import { describe, it } from 'vitest';
import { describeLoaderError, MpError } from '../src/index.ts';
import { bench, firmware, firmwareImage, flashAt } from './flash-helpers.ts';

const recoverable: Array<[string, FaultRule]> = [
  ['a dropped data frame', { action: 'drop', command: 'FLASH_DEFL_DATA', occurrence: 3 }],
  [
    'a dropped answer to a data frame',
    { action: 'drop', command: 'FLASH_DEFL_DATA', occurrence: 3, direction: 'response' },
  ],
  ['a corrupted data frame (bad checksum)', { action: 'corrupt', command: 'FLASH_DEFL_DATA', occurrence: 3 }],
  [
    'a corrupted answer',
    { action: 'corrupt', command: 'FLASH_DEFL_DATA', occurrence: 2, direction: 'response' },
  ],
  ['a delayed data frame', { action: 'delay', command: 'FLASH_DEFL_DATA', occurrence: 3, delayMs: 800 }],
  ['a dropped MD5 answer', { action: 'drop', command: 'SPI_FLASH_MD5', direction: 'response' }],
  ['a dropped SYNC', { action: 'drop', command: 'SYNC', times: 3 }],
];

describe.each(['ESP8266', 'ESP32'] as const)('faults on an %s', (chip) => {
  // Each case has its own emulated board and device records, so they wait out their timeouts side by side.
  it.concurrent.for(recoverable)('recovers from %s', async ([, rule], { expect }) => {
    const fw = firmware(chip);
    const b = bench(chip, { faults: [rule] });
    const result = await b.flash(firmwareImage(fw));
    expect(b.emulator.device().stats.faultsFired).toHaveLength(rule.times ?? 1);
    expect(result.mode).toBe('full');
    expect(flashAt(b.emulator, fw.offset, fw.image.length)).toEqual(fw.image);
  });

  it.concurrent('a lost answer to a data block: mp restarts the board and its stub, and writes again, instead of sending the block twice', async ({
    expect,
  }) => {
    // ESP32: the second block sent twice makes the stub write past its region and hang.
    const fw = firmware(chip);
    const b = bench(chip, {
      faults: [{ action: 'drop', command: 'FLASH_DEFL_DATA', occurrence: 2, direction: 'response' }],
    });
    const started = Date.now();
    const result = await b.flash(firmwareImage(fw));
    expect(Date.now() - started).toBeLessThan(12_000);
    expect(flashAt(b.emulator, fw.offset, fw.image.length)).toEqual(fw.image);
    const device = b.emulator.device();
    expect(device.stats.faultsFired).toHaveLength(1);
    expect(device.stats.stubHangs).toBe(0);
    expect(device.stats.stubStarts).toBe(2);
    expect(device.stats.errorResponses.filter((e) => e.stub)).toEqual([]);
    expect(result).toMatchObject({ mode: 'full', writtenBytes: fw.image.length });
    expect(b.events).toContainEqual(
      expect.objectContaining({
        type: 'log',
        level: 'warn',
        message: expect.stringMatching(
          /during the write at 0x[0-9a-f]+: it did not answer in time\. Restarting the board and loading the flasher stub again/,
        ),
      }),
    );
  });

  it.concurrent('an answer garbled into an error status is not taken for a refusal of the block', async ({
    expect,
  }) => {
    // Byte 8 is the first status byte: the block was taken, but esptool-js sees "status 255,0".
    const fw = firmware(chip);
    const b = bench(chip, {
      faults: [
        { action: 'corrupt', command: 'FLASH_DEFL_DATA', occurrence: 2, direction: 'response', byte: 8 },
      ],
    });
    await b.flash(firmwareImage(fw));
    expect(flashAt(b.emulator, fw.offset, fw.image.length)).toEqual(fw.image);
    const device = b.emulator.device();
    expect(device.stats.faultsFired).toHaveLength(1);
    expect(device.stats.stubStarts).toBe(2);
    expect(device.stats.errorResponses.filter((e) => e.stub)).toEqual([]);
  });

  it.concurrent('an unplug mid-write fails at once with DEVICE_LOST; a rerun rewrites what was interrupted', async ({
    expect,
  }) => {
    const fw = firmware(chip);
    const b = bench(chip, { faults: [{ action: 'unplug', command: 'FLASH_DEFL_DATA', occurrence: 5 }] });
    const started = Date.now();
    const error = (await b.flash(firmwareImage(fw)).catch((e: unknown) => e)) as MpError;
    expect(error).toBeInstanceOf(MpError);
    expect(error.code).toBe('DEVICE_LOST');
    expect(error.message).toBe(
      'The board on /dev/ttyEMU0 went away during the write at 0x' +
        fw.offset.toString(16) +
        ' (unplugged, or the USB connection dropped)',
    );
    expect(error.hint).toBe(
      'Plug it back in and run the same command again: mp remembers which sectors were being written and rewrites them, then checks the whole image.',
    );
    // No waiting for esptool's timeouts.
    expect(Date.now() - started).toBeLessThan(2500);
    expect(flashAt(b.emulator, fw.offset, fw.image.length)).not.toEqual(fw.image);

    b.emulator.device().replug();
    const result = await b.flash(firmwareImage(fw));
    expect(result).toMatchObject({
      mode: 'full',
      fullReason: 'the last write to this device did not finish',
    });
    expect(flashAt(b.emulator, fw.offset, fw.image.length)).toEqual(fw.image);
  });

  it.concurrent('an unplug while the stub is uploaded says that nothing was written', async ({ expect }) => {
    const b = bench(chip, { faults: [{ action: 'unplug', command: 'MEM_DATA', occurrence: 2 }] });
    const error = (await b.flash(firmwareImage(firmware(chip))).catch((e: unknown) => e)) as MpError;
    expect(error.code).toBe('DEVICE_LOST');
    expect(error.message).toBe(
      'The board on /dev/ttyEMU0 went away during loading the flasher stub (unplugged, or the USB connection dropped)',
    );
    expect(error.hint).toBe(
      'Plug it back in and run the same command again. Nothing had been written yet: the board still has the firmware it had.',
    );
    expect(b.emulator.device().stats.flashWrites).toEqual([]);
  });

  it.concurrent('after a failed MD5 check the next run says so, not that the write did not finish', async ({
    expect,
  }) => {
    // Byte 10 of the MD5 answer is in the digest: the board's MD5 reads as not the image's.
    const fw = firmware(chip);
    const b = bench(chip, {
      faults: [{ action: 'corrupt', command: 'SPI_FLASH_MD5', direction: 'response', byte: 10 }],
    });
    const error = (await b.flash(firmwareImage(fw)).catch((e: unknown) => e)) as MpError;
    expect(error.code).toBe('VERIFY_FAILED');
    const result = await b.flash(firmwareImage(fw));
    expect(result).toMatchObject({
      mode: 'full',
      fullReason: 'the last write to this device failed its MD5 check',
    });
  });

  it.concurrent('an unplug during a delta write is finished by the rerun without a full write', async ({
    expect,
  }) => {
    const before = firmware(chip);
    const after = firmware(chip, { revisions: { app: 2, config: 3 } });
    const b = bench(chip);
    await b.flash(firmwareImage(before));
    const device = b.emulator.device();
    device.faults.add({ action: 'unplug', command: 'FLASH_DEFL_DATA' });
    const error = (await b.flash(firmwareImage(after)).catch((e: unknown) => e)) as MpError;
    expect(error.code).toBe('DEVICE_LOST');

    device.replug();
    const result = await b.flash(firmwareImage(after));
    expect(result.mode).toBe('delta');
    expect(result.sectorsWritten).toBeLessThan(result.sectorsTotal / 4);
    expect(flashAt(b.emulator, after.offset, after.image.length)).toEqual(after.image);
  });

  it.concurrent('a link that keeps failing ends with a clear error and a rerun completes', async ({
    expect,
  }) => {
    const fw = firmware(chip);
    const b = bench(chip, { faults: [{ action: 'corrupt', command: 'FLASH_DEFL_DATA', times: 1000 }] });
    const error = (await b.flash(firmwareImage(fw)).catch((e: unknown) => e)) as MpError;
    b.emulator.device().faults.clear();
    expect(error).toBeInstanceOf(MpError);
    expect(error.code).toBe('DEVICE_PROTOCOL_ERROR');
    expect(error.message).toMatch(
      /^The board on \/dev\/ttyEMU0 stopped answering properly during the write at 0x(0|1000): the flasher stub reported at block 0 that the data arrived damaged \(error 0xC1\), also after mp restarted the board and loaded the flasher stub again$/,
    );
    expect(error.hint).toMatch(/Run the command again.*--baud 115200/);
    // Each block was sent three times in each of the two sessions.
    expect(b.emulator.device().stats.stubStarts).toBe(2);
    const result = await b.flash(firmwareImage(fw));
    expect(flashAt(b.emulator, fw.offset, fw.image.length)).toEqual(fw.image);
    expect(result.mode).toBe('full');
  });
});

describe('what esptool-js reports, said plainly', () => {
  it('a stub status, as both stubs send it (code first)', ({ expect }) => {
    // The legacy stub after a block taken twice: the wording a user saw.
    expect(
      describeLoaderError(new Error('Failed to leave compressed flash mode failed with status 201,0')),
    ).toBe(
      'the flasher stub reported at the end of the write that more data arrived than announced (error 0xC9): the flash does not hold what was sent (a block taken twice after its answer was lost does this)',
    );
    expect(
      describeLoaderError(
        new Error('Failed to write compressed data to flash after seq 7 failed with status 193,0'),
      ),
    ).toBe('the flasher stub reported at block 7 that the data arrived damaged (error 0xC1)');
  });

  it('a ROM status (1, then the code), a timeout and garbled answers', ({ expect }) => {
    expect(describeLoaderError(new Error('Failed to enter Flash download mode failed with status 1,8'))).toBe(
      'the ROM bootloader reported when asked to enter Flash download mode that writing the flash failed (error 0x08)',
    );
    expect(
      describeLoaderError(new Error('Serial data stream stopped: Possible serial noise or corruption.')),
    ).toBe('it did not answer in time');
    expect(describeLoaderError(new Error('invalid response'))).toMatch(/^its answers were garbled/);
  });
});
