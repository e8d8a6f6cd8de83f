/**
 * The ESP boards a MicroPython tree describes itself: every folder of `ports/esp8266/boards/*`
 * and `ports/esp32/boards/*` with a `board.json`. From it and the port's files mp derives what a
 * curated plugin would say by hand:
 *
 *   chip        board.json `mcu` (esp32s3 …), which is also the board's IDF_TARGET
 *               (`set(IDF_TARGET esp32s3)` in its mpconfigboard.cmake; a board without one is esp32)
 *   flash at    board.json `deploy_options.flash_offset`, what the board's own deploy notes tell
 *               users to pass to `esptool write_flash` (ports/esp32/boards/deploy.md:
 *               "starting at address {deploy_options[flash_offset]}"). v1.28.0: 0x1000 for ESP32 and
 *               ESP32-S2, 0x0 for S3, C3, C6 and C2, 0x2000 for C5 and P4. Without the key, the
 *               chip's bootloader offset from esptool (`BOOTLOADER_FLASH_OFFSET` of targets/*.py)
 *   native USB  the board's deploy notes include deploy_nativeusb.md (USB-Serial/JTAG or USB-OTG)
 *   variants    board.json `variants` (name → description)
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

export type UpstreamPort = 'esp8266' | 'esp32';

export interface UpstreamBoard {
  /** MicroPython's BOARD, e.g. `ESP32_GENERIC_S3`. */
  name: string;
  port: UpstreamPort;
  /** board.json `mcu`: `esp8266`, `esp32`, `esp32s3`, … (the IDF_TARGET on esp32). */
  mcu: string;
  /** The chip as esptool names it: `ESP32-S3`. */
  chip: string;
  vendor: string | undefined;
  product: string | undefined;
  url: string | undefined;
  variants: Array<{ name: string; description: string }>;
  /** Where firmware.bin goes, and where that fact came from. */
  flashOffset: number;
  flashOffsetFrom: 'board.json' | 'chip default';
  /** Reached through the chip's own USB peripheral (its deploy notes say so). */
  nativeUsb: boolean;
}

/** esptool's chip names for board.json's `mcu`. */
const CHIP_OF_MCU: Record<string, string> = {
  esp8266: 'ESP8266',
  esp32: 'ESP32',
  esp32s2: 'ESP32-S2',
  esp32s3: 'ESP32-S3',
  esp32c2: 'ESP32-C2',
  esp32c3: 'ESP32-C3',
  esp32c5: 'ESP32-C5',
  esp32c6: 'ESP32-C6',
  esp32p4: 'ESP32-P4',
};

/** esptool targets/*.py `BOOTLOADER_FLASH_OFFSET` (esp8266: the image starts the flash). */
const BOOTLOADER_OFFSET: Record<string, number> = {
  esp8266: 0x0,
  esp32: 0x1000,
  esp32s2: 0x1000,
  esp32s3: 0x0,
  esp32c2: 0x0,
  esp32c3: 0x0,
  esp32c5: 0x2000,
  esp32c6: 0x0,
  esp32p4: 0x2000,
};

interface BoardJson {
  mcu?: string;
  vendor?: string;
  product?: string;
  url?: string;
  deploy?: string[];
  deploy_options?: { flash_offset?: string };
  variants?: Record<string, string>;
}

/** Every ESP board of the tree, sorted by port then name. Folders without board.json are skipped. */
export async function listUpstreamBoards(micropythonDir: string): Promise<UpstreamBoard[]> {
  const out: UpstreamBoard[] = [];
  for (const port of ['esp8266', 'esp32'] as const) {
    const root = join(micropythonDir, 'ports', port, 'boards');
    const entries = await readdir(root, { withFileTypes: true }).catch(() => []);
    for (const entry of entries.filter((e) => e.isDirectory()).sort((a, b) => a.name.localeCompare(b.name))) {
      const board = await readUpstreamBoard(micropythonDir, port, entry.name);
      if (board) out.push(board);
    }
  }
  return out;
}

export async function readUpstreamBoard(
  micropythonDir: string,
  port: UpstreamPort,
  name: string,
): Promise<UpstreamBoard | undefined> {
  const dir = join(micropythonDir, 'ports', port, 'boards', name);
  const text = await readFile(join(dir, 'board.json'), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  let json: BoardJson;
  try {
    json = JSON.parse(text) as BoardJson;
  } catch {
    return undefined;
  }
  const mcu = json.mcu ?? (await idfTargetOf(dir)) ?? port;
  const declared = json.deploy_options?.flash_offset;
  const offset = declared !== undefined ? Number(declared) : undefined;
  return {
    name,
    port,
    mcu,
    chip: CHIP_OF_MCU[mcu] ?? mcu.toUpperCase(),
    vendor: json.vendor,
    product: json.product,
    url: json.url,
    variants: Object.entries(json.variants ?? {}).map(([variant, description]) => ({
      name: variant,
      description,
    })),
    flashOffset: offset !== undefined && Number.isFinite(offset) ? offset : (BOOTLOADER_OFFSET[mcu] ?? 0),
    flashOffsetFrom: offset !== undefined && Number.isFinite(offset) ? 'board.json' : 'chip default',
    nativeUsb: (json.deploy ?? []).some((file) => file.endsWith('deploy_nativeusb.md')),
  };
}

/** `set(IDF_TARGET esp32s3)` in the board's mpconfigboard.cmake. */
async function idfTargetOf(dir: string): Promise<string | undefined> {
  const file = join(dir, 'mpconfigboard.cmake');
  if (!existsSync(file)) return undefined;
  const text = await readFile(file, 'utf8');
  return /set\s*\(\s*IDF_TARGET\s+(\w+)\s*\)/.exec(text)?.[1];
}

/** MicroPython board names are UPPER_SNAKE (`ESP32_GENERIC_S3`); mp's plugin ids are kebab-case. */
export function looksLikeUpstreamBoard(id: string): boolean {
  return /^[A-Z][A-Z0-9_]*$/.test(id);
}
