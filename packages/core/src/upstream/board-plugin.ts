/**
 * An upstream board (`mp build --board ESP32_GENERIC_S3 --variant SPIRAM_OCT`) as a board plugin,
 * derived from the MicroPython tree being built: the chip and flash offset from board.json
 * (upstream/boards.ts), the toolchain as the curated boards choose it (upstream/toolchains.ts),
 * the artifacts each port's build writes, and the manifest the board or its variant freezes:
 *
 *   esp8266   `FROZEN_MANIFEST ?= …` in mpconfigvariant[_<V>].mk / mpconfigboard.mk, else the
 *             port's `boards/manifest.py` (ports/esp8266/Makefile: `FROZEN_MANIFEST ?= boards/manifest.py`)
 *   esp32     `set(MICROPY_FROZEN_MANIFEST …)` in mpconfigvariant_<V>.cmake / mpconfigboard.cmake,
 *             else `boards/manifest.py` (ports/esp32/CMakeLists.txt: `elseif (NOT MICROPY_FROZEN_MANIFEST)`)
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MpError } from '../errors.ts';
import type { BoardPlugin, EspChip } from '../plugin/types.ts';
import { readUpstreamBoard, type UpstreamBoard } from './boards.ts';
import { esp8266Toolchain, idfToolchain } from './toolchains.ts';

/** The chips mp's flasher knows; a board of another chip is built but flashed without the chip check. */
const FLASHABLE: readonly string[] = ['ESP8266', 'ESP32', 'ESP32-S2', 'ESP32-S3', 'ESP32-C3', 'ESP32-C6'];

/** The board folder in either ESP port of the tree. */
export async function findUpstreamBoard(
  micropythonDir: string,
  name: string,
): Promise<UpstreamBoard | undefined> {
  return (
    (await readUpstreamBoard(micropythonDir, 'esp32', name)) ??
    (await readUpstreamBoard(micropythonDir, 'esp8266', name))
  );
}

export async function upstreamBoardPlugin(
  micropythonDir: string,
  name: string,
  variant: string | undefined,
): Promise<BoardPlugin> {
  const board = await findUpstreamBoard(micropythonDir, name);
  if (!board) {
    throw new MpError({
      code: 'UNKNOWN_BOARD',
      message: `MicroPython's tree has no ESP board "${name}" (looked in ports/esp32/boards and ports/esp8266/boards) and no board plugin has that id`,
      plugin: name,
      step: 'resolve',
      hint: 'Run `mp boards --upstream` for the boards of this MicroPython, or `mp boards` for the plugins.',
      exitCode: 2,
    });
  }
  if (variant && !board.variants.some((v) => v.name === variant)) {
    throw new MpError({
      code: 'UNKNOWN_BOARD',
      message: `Board ${name} has no variant "${variant}"; its variants: ${board.variants.map((v) => v.name).join(', ') || 'none'}`,
      plugin: name,
      step: 'resolve',
      hint: 'Pick one of the variants listed (board.json of the board), or leave out --variant.',
      exitCode: 2,
    });
  }
  const defaultManifest = await boardManifest(micropythonDir, board, variant);
  const title = `${[board.vendor, board.product].filter(Boolean).join(' ') || name} (MicroPython ${name})`;
  const chip = FLASHABLE.includes(board.chip) ? (board.chip as EspChip) : undefined;
  if (board.port === 'esp8266') {
    const makefile = await readFile(join(micropythonDir, 'ports/esp8266/Makefile'), 'utf8').catch(
      () => undefined,
    );
    return {
      kind: 'board',
      id: name,
      title,
      port: 'esp8266',
      chip,
      exportPrefix: name,
      board: name,
      toolchain: esp8266Toolchain(makefile),
      artifacts: { firmware: 'firmware.bin' },
      firmware: 'firmware',
      defaultManifest,
      // The SDK reads the flash size from the image header: it must be the chip's.
      flash: {
        segments: [{ offset: 0, artifact: 'firmware' }],
        mode: 'keep',
        freq: 'keep',
        size: 'detect',
        baud: 460800,
      },
    };
  }
  return {
    kind: 'board',
    id: name,
    title,
    port: 'esp32',
    chip,
    exportPrefix: name,
    board: name,
    toolchain: await idfToolchain({ dir: micropythonDir }, board.mcu),
    // firmware.bin is bootloader + partition table + application, laid out from the board's offset.
    artifacts: {
      firmware: 'firmware.bin',
      bootloader: 'bootloader/bootloader.bin',
      partitions: 'partition_table/partition-table.bin',
      application: 'micropython.bin',
    },
    firmware: 'firmware',
    defaultManifest,
    flash: {
      segments: [{ offset: board.flashOffset, artifact: 'firmware' }],
      mode: 'keep',
      freq: 'keep',
      size: 'keep',
      baud: 460800,
    },
  };
}

/** The manifest the board (or its variant) freezes, with make's variables for the generated include. */
async function boardManifest(
  dir: string,
  board: UpstreamBoard,
  variant: string | undefined,
): Promise<string> {
  const boardDir = join(dir, 'ports', board.port, 'boards', board.name);
  const read = (file: string) => readFile(join(boardDir, file), 'utf8').catch(() => '');
  if (board.port === 'esp8266') {
    for (const file of [
      variant ? `mpconfigvariant_${variant}.mk` : 'mpconfigvariant.mk',
      'mpconfigboard.mk',
    ]) {
      const m = /^\s*FROZEN_MANIFEST\s*\??=\s*(\S+)/m.exec(await read(file));
      if (m) return m[1]!;
    }
    return '$(PORT_DIR)/boards/manifest.py';
  }
  for (const file of [...(variant ? [`mpconfigvariant_${variant}.cmake`] : []), 'mpconfigboard.cmake']) {
    const m = /set\s*\(\s*MICROPY_FROZEN_MANIFEST\s+([^)\s]+)\s*\)/.exec(await read(file));
    if (m)
      return m[1]!
        .replace(/\$\{MICROPY_BOARD_DIR\}/, '$(BOARD_DIR)')
        .replace(/\$\{MICROPY_PORT_DIR\}/, '$(PORT_DIR)');
  }
  return '$(PORT_DIR)/boards/manifest.py';
}
