/**
 * Shared set-up for the flash tests: an emulated board, a firmware for it, a throwaway device
 * record directory, and the flash call the CLI makes (same code path, emulator binding passed in).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEspEmulator, type EspDeviceOptions, type EspEmulator } from '@mp/esp-emulator';
import {
  makeTestFirmware,
  type TestChip,
  type TestFirmware,
  type TestFirmwareOptions,
} from '@mp/test-utils/esp-firmware';
import { afterAll } from 'vitest';
import {
  DeviceStateStore,
  type FirmwareImage,
  type FlashFirmwareOptions,
  type FlashResult,
  flashFirmware,
  type StepEvent,
} from '../src/index.ts';

/** The board plugins' layouts (boards/esp8266-d1mini, boards/esp32-generic). */
export const BOARDS = {
  ESP8266: { id: 'esp8266-d1mini', offset: 0x0, mode: 'keep', freq: 'keep', size: 'detect', baud: 460800 },
  ESP32: { id: 'esp32-generic', offset: 0x1000, mode: 'keep', freq: 'keep', size: 'keep', baud: 460800 },
} as const;

// One root per test file, removed after all its tests: the tests run concurrently, and a
// per-test cleanup hook registered from a helper could fire for the wrong test.
const root = mkdtempSync(join(tmpdir(), 'mp-flash-tests-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

export function tempDir(prefix = 'mp-flash-'): string {
  return mkdtempSync(join(root, prefix));
}

export function emulatorFor(chip: TestChip, options: Partial<EspDeviceOptions> = {}): EspEmulator {
  const emulator = createEspEmulator({ chip: chip === 'ESP8266' ? 'esp8266' : 'esp32', ...options });
  for (const device of emulator.devices) {
    device.on('internal-error', (error) => {
      throw error;
    });
  }
  return emulator;
}

/** What `mp flash file.bin --board <board>` hands to core. */
export function firmwareImage(firmware: TestFirmware, overrides: Partial<FirmwareImage> = {}): FirmwareImage {
  const board = BOARDS[firmware.chip];
  return {
    file: `/fixtures/${firmware.chip}.bin`,
    boardId: board.id,
    chip: firmware.chip,
    segments: [{ offset: firmware.offset, data: firmware.image, file: `/fixtures/${firmware.chip}.bin` }],
    mode: board.mode,
    freq: board.freq,
    size: board.size,
    baud: board.baud,
    ...overrides,
  };
}

export function firmware(chip: TestChip, options?: TestFirmwareOptions): TestFirmware {
  return makeTestFirmware(chip, options);
}

export interface Bench {
  emulator: EspEmulator;
  devices: DeviceStateStore;
  events: StepEvent[];
  flash(image: FirmwareImage, options?: Partial<FlashFirmwareOptions>): Promise<FlashResult>;
}

export function bench(chip: TestChip, options: Partial<EspDeviceOptions> = {}): Bench {
  const emulator = emulatorFor(chip, options);
  const devices = new DeviceStateStore(tempDir('mp-devices-'));
  const events: StepEvent[] = [];
  return {
    emulator,
    devices,
    events,
    flash: (image, extra = {}) =>
      flashFirmware({
        firmware: image,
        port: emulator.device().path,
        binding: emulator.binding,
        devices,
        observer: (event) => events.push(event),
        ...extra,
      }),
  };
}

/** Flash content at `offset`, as long as `image`. */
export function flashAt(emulator: EspEmulator, offset: number, length: number): Uint8Array {
  return emulator.device().flash.slice(offset, offset + length);
}

/** Sector indexes (relative to `offset`) where two images differ. */
export function differingSectors(a: Uint8Array, b: Uint8Array): number[] {
  const sectors = new Set<number>();
  const length = Math.max(a.length, b.length);
  for (let i = 0; i < length; i++) if (a[i] !== b[i]) sectors.add(Math.floor(i / 0x1000));
  return [...sectors].sort((x, y) => x - y);
}

/** Resolves when the emulated board has booted its application (the auto-reset has a short RC delay). */
export async function bootedApp(emulator: EspEmulator, timeoutMs = 1000): Promise<void> {
  const device = emulator.device();
  const deadline = Date.now() + timeoutMs;
  while (device.mode !== 'app' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  if (device.mode !== 'app') throw new Error(`device did not boot its application (mode ${device.mode})`);
}
