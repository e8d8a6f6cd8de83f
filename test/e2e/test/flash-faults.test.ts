/**
 * `mp flash` over a bad link: dropped, damaged and delayed frames are survived; a cable pulled
 * mid-write is a clear error, and running the same command again leaves flash == image.
 * Faults are configured in the emulator file and fire a limited number of times across processes.
 */
import type { FaultRule } from '@mp/esp-emulator';
import { makeTestFirmware } from '@mp/test-utils/esp-firmware';
import { describe, expect, it } from 'vitest';
import { flashFixture } from './flash-helpers.ts';

const survivable: Array<[string, Omit<FaultRule, 'when'>]> = [
  ['a dropped data frame', { action: 'drop', command: 'FLASH_DEFL_DATA', occurrence: 4 }],
  ['a corrupted data frame', { action: 'corrupt', command: 'FLASH_DEFL_DATA', occurrence: 4 }],
  [
    'a delayed answer',
    { action: 'delay', command: 'FLASH_DEFL_DATA', occurrence: 4, direction: 'response', delayMs: 1000 },
  ],
];

describe('mp flash over a bad link', () => {
  it.each(survivable)('survives %s', async (_, fault) => {
    const fw = makeTestFirmware('ESP8266');
    const f = flashFixture('ESP8266', [{ chip: 'esp8266', faults: [fault] }]);
    f.project.write('fw.bin', fw.image);
    const run = await f.mp(['flash', 'fw.bin']);
    expect(run.code, run.output).toBe(0);
    expect(f.emulator.readState()!.faultsFired).toEqual([1]);
    expect(f.flashed(fw)).toEqual(fw.image);
  });

  it('survives a lost answer to a data block by restarting the board and its stub, not by sending the block twice', async () => {
    const fw = makeTestFirmware('ESP32');
    const f = flashFixture('ESP32', [
      {
        chip: 'esp32',
        faults: [{ action: 'drop', command: 'FLASH_DEFL_DATA', occurrence: 2, direction: 'response' }],
      },
    ]);
    f.project.write('fw.bin', fw.image);
    const run = await f.mp(['flash', 'fw.bin']);
    expect(run.code, run.output).toBe(0);
    expect(run.stderr).toContain(
      'The board on /dev/ttyEMU0 stopped answering properly during the write at 0x1000: it did not answer in time. Restarting the board and loading the flasher stub again, then trying the write at 0x1000 again.',
    );
    expect(run.stderr).toMatch(/✔ Flashed .* wrote 419\.8 KiB of 419\.8 KiB \(105 of 105 sectors/);
    const { stats } = f.emulator.readState()!;
    expect(stats.stubStarts).toBe(2);
    expect(stats.stubHangs).toBe(0);
    expect(f.flashed(fw)).toEqual(fw.image);
  });

  it.each(['ESP8266', 'ESP32'] as const)(
    'an %s unplugged mid-write: clear error, and a rerun recovers',
    async (chip) => {
      const fw = makeTestFirmware(chip);
      const f = flashFixture(chip, [
        {
          chip: chip === 'ESP8266' ? 'esp8266' : 'esp32',
          faults: [{ action: 'unplug', command: 'FLASH_DEFL_DATA', occurrence: 6 }],
        },
      ]);
      f.project.write('fw.bin', fw.image);
      const cut = await f.mp(['flash', 'fw.bin']);
      expect(cut.code).toBe(1);
      expect(cut.stderr).toMatch(
        /✖ The board on \/dev\/ttyEMU0 went away during the write at 0x[0-9a-f]+ \(unplugged, or the USB connection dropped\)/,
      );
      expect(cut.stderr).toContain('→ Plug it back in and run the same command again');
      expect(cut.stderr).toContain('(DEVICE_LOST)');
      expect(f.flashed(fw)).not.toEqual(fw.image);

      const rerun = await f.mp(['flash', 'fw.bin']);
      expect(rerun.code, rerun.output).toBe(0);
      expect(rerun.stderr).toContain('full write: the last write to this device did not finish');
      expect(f.flashed(fw)).toEqual(fw.image);
    },
  );
});
