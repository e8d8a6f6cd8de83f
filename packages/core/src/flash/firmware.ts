/**
 * What `mp flash` writes: the newest export of the project's board (its JSON sidecar says where
 * each file goes), or a firmware file given on the command line, placed by the board's flash layout.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { describeError, MpError } from '../errors.ts';
import { EXPORT_SCHEMA, type ExportSidecar } from '../firmware/sidecar.ts';
import type { BoardPlugin, EspChip, FlashFreq, FlashMode, FlashSizeSetting } from '../plugin/types.ts';

export type { ExportSidecar } from '../firmware/sidecar.ts';

/** One file's bytes and where they go in flash. */
export interface FirmwareSegment {
  offset: number;
  data: Uint8Array;
  /** Absolute path of the file the bytes came from. */
  file: string;
}

/**
 * A firmware ready to flash.
 * @example { boardId: 'esp8266-d1mini', chip: 'ESP8266', file: '/p/export/ESP8266-….bin', mode: 'keep', freq: 'keep', size: 'detect', baud: 460800, segments: [{ offset: 0, data, file }] }
 */
export interface FirmwareImage {
  /** The main firmware file (for messages and the device record). */
  file: string;
  boardId: string;
  /** The chip the board expects; flashing refuses another one. */
  chip?: EspChip;
  segments: FirmwareSegment[];
  mode: FlashMode;
  freq: FlashFreq;
  size: FlashSizeSetting;
  /** Baud rate after the stub is running. */
  baud: number;
  /** The export sidecar the image came from, if any. */
  sidecar?: string;
}

/** First byte of every ESP firmware image (esptool's ESP_IMAGE_MAGIC). */
export const IMAGE_MAGIC = 0xe9;

/**
 * The extended header's chip_id for each chip: `IMAGE_CHIP_ID` in esptool's targets/<chip>.py.
 * Chip names as esptool-js's `CHIP_NAME` (and `EspChip`).
 */
const IMAGE_CHIP_IDS: ReadonlyMap<number, string> = new Map([
  [0, 'ESP32'],
  [2, 'ESP32-S2'],
  [5, 'ESP32-C3'],
  [9, 'ESP32-S3'],
  [12, 'ESP32-C2'],
  [13, 'ESP32-C6'],
  [16, 'ESP32-H2'],
  [18, 'ESP32-P4'],
  [20, 'ESP32-C61'],
  [23, 'ESP32-C5'],
  [25, 'ESP32-H21'],
  [28, 'ESP32-H4'],
  [31, 'ESP32-E22'],
  [32, 'ESP32-S31'],
]);

/** What the header of a firmware image says about the chip it is for. */
export interface ImageHeader {
  /** esptool's chip name (`ESP8266`, `ESP32-S3`…); undefined when the header does not tell. */
  chip: string | undefined;
  /** The extended header's chip_id (ESP32 family only). */
  chipId?: number;
}

/**
 * Reads the header of an ESP firmware image (esptool's bin_image.py); undefined when `data` does
 * not start with the image magic byte 0xE9.
 *
 * After the 8-byte common header, an ESP32-family image has a 16-byte extended header: WP pin, SPI
 * drive settings, chip_id (uint16 LE at 12), chip revisions, 4 reserved zero bytes and the
 * hash-appended flag (0 or 1, at 23). An ESP8266 image has none: its first segment follows, whose
 * load address (bytes 8-11) is in the ESP8266's RAM at 0x3FFxxxxx or 0x40xxxxxx, where an ESP32
 * image has small drive-setting values.
 */
export function readImageHeader(data: Uint8Array): ImageHeader | undefined {
  if (data[0] !== IMAGE_MAGIC) return undefined;
  if (data.length < 24) return { chip: undefined };
  if (data[11] === 0x3f || data[11] === 0x40) return { chip: 'ESP8266' };
  const chipId = data[12]! | (data[13]! << 8);
  const reserved = data.subarray(19, 23).every((b) => b === 0);
  const chip = IMAGE_CHIP_IDS.get(chipId);
  if (!reserved || data[23]! > 1 || !chip) return { chip: undefined };
  return { chip, chipId };
}

/** True when the first bytes are printable text (ASCII or UTF-8, with the usual whitespace). */
function looksLikeText(data: Uint8Array): boolean {
  const head = data.subarray(0, 512);
  let printable = 0;
  for (const byte of head) if (byte === 9 || byte === 10 || byte === 13 || byte >= 0x20) printable++;
  return head.length > 0 && printable === head.length && !head.includes(0x7f);
}

/**
 * Checks the header of the firmware's main file before anything is written: it must be an ESP
 * image (magic byte 0xE9), and if its header names a chip, the board's. Returns the chip the image
 * is for (undefined when its header does not say). `mp flash --force` skips this.
 */
export function checkFirmwareImage(firmware: FirmwareImage): string | undefined {
  const main = firmware.segments.find((s) => s.file === firmware.file) ?? firmware.segments[0];
  if (!main) return undefined;
  const header = readImageHeader(main.data);
  if (!header) {
    const first = main.data[0] ?? 0;
    const text = new TextDecoder().decode(main.data.subarray(0, 24)).replace(/\s+/g, ' ').trim();
    throw new MpError({
      code: 'FIRMWARE_NOT_AN_IMAGE',
      message: looksLikeText(main.data)
        ? `${main.file} is not an ESP firmware image: it is text ("${text}…"), where an image starts with the magic byte 0xE9`
        : `${main.file} is not an ESP firmware image: it starts with 0x${first.toString(16).padStart(2, '0')}, where an image starts with the magic byte 0xE9`,
      file: main.file,
      plugin: firmware.boardId,
      hint: `Nothing was written. Flash the firmware \`mp build\` exports (\`mp flash\` without a file takes the newest), or a MicroPython .bin for ${firmware.chip ?? 'the board’s chip'}. If this really is an image without a header, flash it anyway with --force.`,
    });
  }
  if (header.chip && firmware.chip && header.chip !== firmware.chip) {
    const evidence =
      header.chipId === undefined
        ? 'its header has no ESP32-style extended header'
        : `chip id ${header.chipId} in its header`;
    throw new MpError({
      code: 'IMAGE_WRONG_CHIP',
      message: `${main.file} is a firmware image for the ${header.chip} (${evidence}), but board ${firmware.boardId} is an ${firmware.chip}`,
      file: main.file,
      plugin: firmware.boardId,
      hint: `Nothing was written. Build the firmware for ${firmware.boardId} (\`mp build\`) and flash that, or flash this one with the board it was built for: --board <id> (see \`mp boards\`). If you are sure the file is right for the ${firmware.chip}, flash it anyway with --force.`,
    });
  }
  return header.chip;
}

function noFlashLayout(board: BoardPlugin): MpError {
  return new MpError({
    code: 'BOARD_NOT_FLASHABLE',
    message: `Board ${board.id} has no flash layout: its firmware is not flashed over serial`,
    plugin: board.id,
    hint: board.chip
      ? `Add a \`flash\` layout to the board plugin ${board.id}.`
      : 'Pick an ESP board with --board (see `mp boards`); host builds run directly.',
  });
}

async function readFirmwareFile(file: string, what: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(file));
  } catch (error) {
    throw new MpError({
      code: 'FIRMWARE_NOT_FOUND',
      message: `Cannot read ${what} ${file}: ${describeError(error)}`,
      file,
      hint: 'Check the path, or run `mp build` to export a firmware and `mp flash` without a file to flash it.',
      cause: error,
    });
  }
}

/**
 * A firmware file flashed with the board's layout. A board with several segments (bootloader,
 * partition table, app) gets the file at its firmware artifact's offset only.
 */
export async function firmwareFromFile(file: string, board: BoardPlugin): Promise<FirmwareImage> {
  const layout = board.flash;
  if (!layout) throw noFlashLayout(board);
  const absolute = resolve(file);
  const data = await readFirmwareFile(absolute, 'firmware file');
  const segment = layout.segments.find((s) => s.artifact === board.firmware) ?? layout.segments[0];
  if (!segment) throw noFlashLayout(board);
  if (data.length === 0) {
    throw new MpError({
      code: 'FIRMWARE_EMPTY',
      message: `Firmware file ${absolute} is empty`,
      file: absolute,
      hint: 'Rebuild it with `mp build`.',
    });
  }
  return {
    file: absolute,
    boardId: board.id,
    chip: board.chip,
    segments: [{ offset: segment.offset, data, file: absolute }],
    mode: layout.mode,
    freq: layout.freq,
    size: layout.size,
    baud: layout.baud,
  };
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A firmware from its export sidecar: every segment file, checked against the sha256 recorded at export. */
export async function firmwareFromSidecar(sidecarFile: string): Promise<FirmwareImage> {
  const sidecar = await readSidecar(sidecarFile);
  const dir = dirname(sidecarFile);
  const firmwareFile = resolve(dir, sidecar.firmware);
  if (!sidecar.flash) {
    throw new MpError({
      code: 'BOARD_NOT_FLASHABLE',
      message: `${basename(firmwareFile)} was built for ${sidecar.board.id}, which is not flashed over serial`,
      file: sidecarFile,
      plugin: sidecar.board.id,
      hint: 'Build for an ESP board (`mp build --board esp8266-d1mini`) or pass a firmware file.',
    });
  }
  const segments: FirmwareSegment[] = [];
  for (const entry of sidecar.flash.segments) {
    const file = resolve(dir, entry.file);
    const data = await readFirmwareFile(file, 'exported firmware');
    if (entry.sha256 && sha256(data) !== entry.sha256) {
      throw new MpError({
        code: 'FIRMWARE_MODIFIED',
        message: `${file} differs from what was exported (its sha256 does not match ${basename(sidecarFile)})`,
        file,
        hint: `Run \`mp build\` to export it again, or flash the file as it is now with \`mp flash ${relative(process.cwd(), file) || file}\`.`,
      });
    }
    segments.push({ offset: entry.offset, data, file });
  }
  if (segments.length === 0) {
    throw new MpError({
      code: 'EXPORT_INVALID',
      message: `${sidecarFile} lists no flash segments`,
      file: sidecarFile,
      hint: 'Run `mp build` to export the firmware again.',
    });
  }
  return {
    file: firmwareFile,
    boardId: sidecar.board.id,
    chip: sidecar.board.chip ?? undefined,
    segments,
    mode: sidecar.flash.mode,
    freq: sidecar.flash.freq,
    size: sidecar.flash.size,
    baud: sidecar.flash.baud,
    sidecar: sidecarFile,
  };
}

export async function readSidecar(file: string): Promise<ExportSidecar> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    throw new MpError({
      code: 'EXPORT_INVALID',
      message: `Cannot read export sidecar ${file}: ${describeError(error)}`,
      file,
      hint: 'Run `mp build` to export the firmware again, or pass the firmware file to `mp flash`.',
      cause: error,
    });
  }
  const v = value as Partial<ExportSidecar>;
  if (
    v?.schema !== EXPORT_SCHEMA ||
    typeof v.firmware !== 'string' ||
    typeof v.board?.id !== 'string' ||
    v.flash === undefined
  ) {
    throw new MpError({
      code: 'EXPORT_INVALID',
      message: `${file} is not an mp export sidecar (${EXPORT_SCHEMA})`,
      file,
      hint: 'Run `mp build` to export the firmware again, or pass the firmware file to `mp flash`.',
    });
  }
  return v as ExportSidecar;
}

/**
 * The sidecar of the newest export for `boardId`: named by `latest-<board>.json` when that index
 * exists, else the sidecar with the latest `builtAt`.
 */
export async function findLatestExport(exportDir: string, boardId: string): Promise<string> {
  const index = join(exportDir, `latest-${boardId}.json`);
  const fromIndex = await readIndex(index, exportDir);
  if (fromIndex) return fromIndex;
  let names: string[] = [];
  try {
    names = await readdir(exportDir);
  } catch {
    // No export directory: nothing built yet, reported below.
  }
  let best: { file: string; builtAt: string } | undefined;
  for (const name of names) {
    if (!name.endsWith('.json') || name.startsWith('latest-')) continue;
    const file = join(exportDir, name);
    const sidecar = await readSidecar(file).catch(() => undefined);
    if (!sidecar || sidecar.board.id !== boardId) continue;
    const builtAt = sidecar.builtAt ?? '';
    if (!best || builtAt > best.builtAt) best = { file, builtAt };
  }
  if (!best) {
    throw new MpError({
      code: 'FIRMWARE_NOT_FOUND',
      message: `No exported firmware for board ${boardId} in ${exportDir}`,
      file: exportDir,
      plugin: boardId,
      hint: `Run \`mp build${boardId ? ` --board ${boardId}` : ''}\` first, or pass a firmware file: \`mp flash firmware.bin\`.`,
    });
  }
  return best.file;
}

/**
 * `latest-<board>.json` (written by the export) is the newest sidecar plus `sidecar`, the name of
 * the sidecar file. An index whose export was deleted since is ignored (the directory is scanned).
 */
async function readIndex(index: string, exportDir: string): Promise<string | undefined> {
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(await readFile(index, 'utf8'));
  } catch {
    return undefined;
  }
  const candidates = [
    typeof value.sidecar === 'string' ? resolveIn(exportDir, value.sidecar) : undefined,
    typeof value.firmware === 'string' ? resolveIn(exportDir, `${value.firmware}.json`) : undefined,
  ];
  for (const candidate of candidates) {
    if (
      candidate &&
      (await readSidecar(candidate).then(
        () => true,
        () => false,
      ))
    )
      return candidate;
  }
  return undefined;
}

function resolveIn(dir: string, file: string): string {
  return isAbsolute(file) ? file : join(dir, file);
}
