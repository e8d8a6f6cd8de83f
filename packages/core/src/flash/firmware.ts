/**
 * What `mp flash` writes: the newest export of the project's board (its JSON sidecar says where
 * each file goes), or a firmware file given on the command line, placed by the board's flash layout.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { EXPORT_SCHEMA } from '../build/sidecar.ts';
import { describeError, MpError } from '../errors.ts';
import type { BoardPlugin, EspChip, FlashFreq, FlashMode, FlashSizeSetting } from '../plugin/types.ts';

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

/** The export sidecar written beside each exported firmware (`<firmware>.json`), as far as flashing reads it. */
export interface ExportSidecar {
  schema: string;
  firmware: string;
  board: {
    id: string;
    chip?: EspChip | null;
    port?: string;
    board?: string;
    variant?: string;
    exportPrefix?: string;
  };
  sha256?: string;
  size?: number;
  flash: {
    mode: FlashMode;
    freq: FlashFreq;
    size: FlashSizeSetting;
    baud: number;
    segments: Array<{ offset: number; file: string; sha256?: string; size?: number }>;
  } | null;
  builtAt?: string;
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
