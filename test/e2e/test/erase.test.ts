/**
 * `mp erase` and `mp flash --erase` on both emulated chips: the whole flash is erased, the device
 * record forgotten (the next flash is a full one), and without a terminal --yes is required.
 */
import { makeTestFirmware } from '@mp/test-utils/esp-firmware';
import { describe, expect, it } from 'vitest';
import { flashFixture, writeExport } from './flash-helpers.ts';

describe.each(['ESP8266', 'ESP32'] as const)('mp erase on the %s', (chip) => {
  it('needs --yes without a terminal, then erases every byte and forgets the device', async () => {
    const fw = makeTestFirmware(chip, { seed: 5 });
    const f = flashFixture(chip, [{ chip: chip === 'ESP8266' ? 'esp8266' : 'esp32' }]);
    writeExport(f.project, fw, { name: `${chip}-a`, builtAt: '2026-05-01T09:00:00.000Z' });
    expect((await f.mp(['flash'])).code).toBe(0);
    expect(f.flashed(fw)).toEqual(fw.image);

    const unconfirmed = await f.mp(['erase']);
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.stderr).toContain('needs a confirmation');
    expect(unconfirmed.stderr).toContain('--yes');
    expect(f.flashed(fw)).toEqual(fw.image);

    const erased = await f.mp(['erase', '--yes']);
    expect(erased.code, erased.output).toBe(0);
    expect(erased.stderr).toMatch(
      /✔ Erased the 4MB flash of ESP[^\n]+ on \/dev\/ttyEMU0 in [\d.]+s; the next `mp flash` writes the whole image/,
    );
    expect(f.emulator.readFlash().every((b) => b === 0xff)).toBe(true);

    // The record is gone: the next flash writes everything, and says why.
    const again = await f.mp(['flash']);
    expect(again.code, again.output).toBe(0);
    expect(again.stderr).toContain('full write: mp has not flashed this device before');
    expect(f.flashed(fw)).toEqual(fw.image);
  });

  it('mp flash --erase erases first, then writes the whole image', async () => {
    const fw = makeTestFirmware(chip, { seed: 6 });
    const f = flashFixture(chip, [{ chip: chip === 'ESP8266' ? 'esp8266' : 'esp32' }]);
    writeExport(f.project, fw, { name: `${chip}-b`, builtAt: '2026-05-01T09:00:00.000Z' });
    expect((await f.mp(['flash'])).code).toBe(0);
    const run = await f.mp(['flash', '--erase']);
    expect(run.code, run.output).toBe(0);
    expect(run.stderr).toContain('full write: the flash was erased first (--erase)');
    expect(f.flashed(fw)).toEqual(fw.image);
    // Past the image, nothing is left of what was there before.
    const flash = f.emulator.readFlash();
    expect(flash.subarray(fw.offset + fw.image.length + 4096).every((b) => b === 0xff)).toBe(true);
    expect(
      f.emulator.readState()!.stats.flashErases.some((r) => r.offset === 0 && r.length === flash.length),
    ).toBe(true);
  });
});
