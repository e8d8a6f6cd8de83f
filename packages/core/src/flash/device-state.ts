/**
 * What mp last wrote to each device, keyed by the chip's MAC address, so the next flash can write
 * only the sectors that changed. One JSON file per device in the user cache:
 * `<userCacheDir>/devices/<mac>.json` (e.g. `~/.cache/mp/devices/5ccf7f0a1b2c.json`).
 *
 * The record is a cache, never the truth: a flash always ends with the device's own MD5 of the
 * whole region, and a mismatch means a full write. Sectors being written are recorded as unknown
 * (`null`) before the write starts, so an interrupted flash is finished by the next run.
 */
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/fs.ts';
import { userCacheDir } from '../util/paths.ts';

/** One flash region as last written: where, how big, and one hash per 4 KiB sector. */
export interface DeviceSegmentState {
  offset: number;
  size: number;
  /** SHA-256 of the whole region's content, or null while a write to it is unfinished. */
  sha256: string | null;
  /** Per-sector hashes (see `hashSectors`); null where the content is unknown. */
  sectors: Array<string | null>;
  /** The last write to it failed the board's MD5 check (so every sector is unknown). */
  verifyFailed?: boolean;
}

/**
 * @example
 * { "schema": "mp.device/1", "mac": "5c:cf:7f:0a:1b:2c", "chip": "ESP8266", "flashSize": "4MB",
 *   "updatedAt": "2026-05-01T10:00:00.000Z", "firmware": { "file": "/p/export/ESP8266-….bin", "board": "esp8266-d1mini" },
 *   "segments": [{ "offset": 0, "size": 634880, "sha256": "…", "sectors": ["9f2c…", …] }] }
 */
export interface DeviceState {
  schema: 'mp.device/1';
  mac: string;
  chip: string;
  flashSize?: string;
  updatedAt: string;
  /** The firmware last written (informational). */
  firmware?: { file?: string; board?: string; sha256?: string };
  segments: DeviceSegmentState[];
}

export class DeviceStateStore {
  readonly dir: string;

  /** Default: `<userCacheDir>/devices`. */
  constructor(dir: string = join(userCacheDir(), 'devices')) {
    this.dir = dir;
  }

  file(mac: string): string {
    return join(this.dir, `${normaliseMac(mac)}.json`);
  }

  /** The record for `mac`; undefined when there is none or it cannot be read (= unknown state). */
  async read(mac: string): Promise<DeviceState | undefined> {
    try {
      const value = JSON.parse(await readFile(this.file(mac), 'utf8')) as DeviceState;
      if (value?.schema !== 'mp.device/1' || !Array.isArray(value.segments)) return undefined;
      return value;
    } catch {
      return undefined;
    }
  }

  async write(state: DeviceState): Promise<void> {
    await writeFileAtomic(this.file(state.mac), `${JSON.stringify(state)}\n`);
  }

  async forget(mac: string): Promise<void> {
    await rm(this.file(mac), { force: true });
  }
}

/** `5C:CF:7F:0A:1B:2C` → `5ccf7f0a1b2c` (file names without colons work on every OS). */
export function normaliseMac(mac: string): string {
  return mac.toLowerCase().replace(/[^0-9a-f]/g, '');
}
