/**
 * `mp dev`'s board link with a board on the chip's own USB (ESP32-S3 USB-Serial/JTAG), through the
 * real effects (port selection, listing, flashing, monitor) and the emulator: the board comes back
 * under another name after every restart, and the next flash finds it there.
 */
import { createEspEmulator } from '@mp/esp-emulator';
import { makeTestFirmware } from '@mp/test-utils/esp-firmware';
import { describe, expect, it } from 'vitest';
import { BoardLink } from '../src/dev/board-link.ts';
import { realDevEffects } from '../src/dev/effects.ts';
import type { FirmwareImage } from '../src/index.ts';
import type { Project } from '../src/project.ts';
import { tempDir } from './flash-helpers.ts';

function s3Firmware(revision: number): FirmwareImage {
  const image = makeTestFirmware('ESP32', { revisions: { app: revision } }).image.slice();
  image[12] = 9; // the extended header's chip id: ESP32-S3
  const file = '/fixtures/ESP32S3.bin';
  return {
    file,
    boardId: 'esp32s3-usb',
    chip: 'ESP32-S3',
    segments: [{ offset: 0x0, data: image, file }],
    mode: 'keep',
    freq: 'keep',
    size: 'keep',
    baud: 460800,
  };
}

async function until(condition: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('mp dev with a board on its own USB', () => {
  it('flashes it where it came back after each restart, also after one it did by itself', async () => {
    const emulator = createEspEmulator({
      chip: 'esp32s3',
      path: '/dev/ttyACM0',
      usb: 'usb-serial-jtag',
      reenumerateMs: 40,
      renames: ['/dev/ttyACM1', '/dev/ttyACM2'],
    });
    const device = emulator.device();
    const effects = realDevEffects({ binding: emulator.binding, cacheDir: tempDir('mp-cache-') });
    const project = {
      config: { flash: { port: undefined, baud: undefined } },
      stateDir: tempDir('mp-state-'),
    } as unknown as Project;
    const link = new BoardLink(effects, () => {});
    const ports: string[] = [];
    const run = {
      signal: new AbortController().signal,
      observer: () => {},
      onPort: (p: string) => ports.push(p),
    };
    try {
      const first = await link.flash(s3Firmware(1), project, run);
      expect(first.mode).toBe('full');
      expect(first.portAfterRestart).toBe('/dev/ttyACM1');

      // Its application resets it (another tool's reset request here): back as ttyACM2.
      device.setLines(false, true);
      device.setLines(false, false);
      await until(() => device.listed && device.path === '/dev/ttyACM2');

      const second = await link.flash(s3Firmware(2), project, run);
      expect(second.mode).toBe('delta');
      expect(ports).toEqual(['/dev/ttyACM0', '/dev/ttyACM2']);
      expect(device.stats.internalErrors).toEqual([]);
    } finally {
      await link.close();
    }
    expect(device.portOpen).toBe(false);
  });
});
