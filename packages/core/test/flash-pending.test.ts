/**
 * A flash that connects before its firmware exists (`pending`, what `mp dev` does while make runs):
 * the board waits in its loader with the stub running, then gets the firmware the build gave, as a
 * delta against the one it was connected as; a build that fails leaves the board running what it ran.
 */
import { firmwareBanner } from '@mp/esp-emulator';
import { describe, it } from 'vitest';
import { MpError } from '../src/errors.ts';
import { SerialMonitor } from '../src/serial/monitor.ts';
import { bench, bootedApp, firmware, firmwareImage, flashAt } from './flash-helpers.ts';

describe.each(['ESP8266', 'ESP32'] as const)('a flash connected early to an %s', (chip) => {
  const emulated = chip === 'ESP8266' ? 'esp8266' : 'esp32';

  it.concurrent('writes what the build gives once it is there, and only the sectors that changed', async ({
    expect,
  }) => {
    const before = firmware(chip);
    const after = firmware(chip, { revisions: { app: 2 } });
    const b = bench(chip);
    await b.flash(firmwareImage(before));
    const device = b.emulator.device();
    let give!: (image: ReturnType<typeof firmwareImage>) => void;
    const pending = new Promise<ReturnType<typeof firmwareImage>>((resolve) => {
      give = resolve;
    });
    const flashing = b.flash(firmwareImage(before), { pending });
    // The board goes into its loader and waits there while "make" runs.
    while (device.mode !== 'stub' && device.mode !== 'download') await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 200));
    expect(device.mode === 'stub' || device.mode === 'download').toBe(true);
    give(firmwareImage(after));
    const result = await flashing;
    expect(result.mode).toBe('delta');
    expect(flashAt(b.emulator, after.offset, after.image.length)).toEqual(after.image);
    await bootedApp(b.emulator);
    expect(device.banner).toBe(firmwareBanner(emulated, after.image));
  });

  it.concurrent('restarts the board into what it ran when the build fails, writing nothing', async ({
    expect,
  }) => {
    const before = firmware(chip);
    const b = bench(chip);
    await b.flash(firmwareImage(before));
    const device = b.emulator.device();
    device.stats.flashWrites.length = 0;
    const failed = new MpError({ code: 'COMPILE_FAILED', message: 'make failed' });
    const pending = new Promise<ReturnType<typeof firmwareImage>>((_, reject) =>
      setTimeout(() => reject(failed), 300),
    );
    // The serial monitor of mp dev was on the port before: it is again, and sees the board boot.
    const monitor = new SerialMonitor({ path: device.path, binding: b.emulator.binding });
    let seen = '';
    monitor.onData((bytes) => {
      seen += Buffer.from(bytes).toString('latin1');
    });
    await monitor.attach();
    await expect(b.flash(firmwareImage(before), { pending, monitor })).rejects.toBe(failed);
    expect(device.stats.flashWrites).toEqual([]);
    await bootedApp(b.emulator);
    expect(device.banner).toBe(firmwareBanner(emulated, before.image));
    expect(monitor.attached).toBe(true);
    for (let i = 0; i < 100 && !seen.includes(device.banner); i++)
      await new Promise((r) => setTimeout(r, 10));
    expect(seen).toContain(device.banner);
    await monitor.detach();
  });
});
