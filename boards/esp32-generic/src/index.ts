/**
 * A generic ESP32 (ESP32-WROOM/WROVER modules): MicroPython's ESP32_GENERIC board, built with
 * Espressif's ESP-IDF image at the version the MicroPython release asks for.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { defineBoard, type ReleaseVersion, type ToolchainImage, versionAtLeast } from '@mp/core';

/** The newest IDF each release documents as supported (ports/esp32/README.md of that release). */
export function idfVersionFor(v: ReleaseVersion): string {
  if (!versionAtLeast(v, 1, 21)) return 'v4.4';
  if (!versionAtLeast(v, 1, 22)) return 'v5.0.2';
  if (!versionAtLeast(v, 1, 23)) return 'v5.0.4';
  if (!versionAtLeast(v, 1, 24)) return 'v5.2.0';
  if (!versionAtLeast(v, 1, 25)) return 'v5.2.2';
  if (!versionAtLeast(v, 1, 26)) return 'v5.4';
  if (!versionAtLeast(v, 1, 27)) return 'v5.4.2';
  return 'v5.5.1';
}

/**
 * From v1.26.1 each release pins its IDF per chip in `ports/esp32/lockfiles/dependencies.lock.<chip>`
 * (`idf:` … `version: 5.5.1`; the chip is the board's IDF_TARGET, e.g. `esp32`, `esp32s3`). mpbuild
 * reads the same file first (`_detect_idf_version_from_lockfile` in src/mpbuild/build.py); reading it
 * keeps branches and future releases right without a table.
 */
export async function idfVersionFromLockfile(
  micropythonDir: string,
  idfTarget = 'esp32',
): Promise<string | undefined> {
  const text = await readFile(
    join(micropythonDir, `ports/esp32/lockfiles/dependencies.lock.${idfTarget}`),
    'utf8',
  ).catch(() => undefined);
  const m = text && /^ {2}idf:\n(?: {4}.*\n)*? {4}version: ([0-9.]+)/m.exec(text);
  return m ? `v${m[1]}` : undefined;
}

/** The espressif/idf image for a tree and chip, and why (for the build output and the sidecar). */
export async function idfToolchain(
  micropython: { dir: string; version?: ReleaseVersion; tag?: string },
  idfTarget = 'esp32',
): Promise<ToolchainImage> {
  const fromLockfile = await idfVersionFromLockfile(micropython.dir, idfTarget);
  const idf = fromLockfile ?? (micropython.version ? idfVersionFor(micropython.version) : DEFAULT_IDF);
  const reason = fromLockfile
    ? `ports/esp32/lockfiles/dependencies.lock.${idfTarget} pins IDF ${fromLockfile}`
    : micropython.version
      ? `no IDF lockfile for ${idfTarget}; ports/esp32/README.md of v${micropython.version.major}.${micropython.version.minor} names IDF ${idf}`
      : `no IDF lockfile for ${idfTarget} and no release version; using IDF ${idf}`;
  return { ...IDF_IMAGE_SETUP, image: `espressif/idf:${idf}`, reason };
}

/**
 * The IDF checkout in the image belongs to root; git refuses it to other users without this,
 * and idf.py needs a writable HOME when we run as the host user.
 */
const IDF_IMAGE_SETUP = {
  env: { HOME: '/tmp/mp-home' },
  shellPrelude: 'mkdir -p "$HOME" && git config --global --add safe.directory "*"',
};

const DEFAULT_IDF = 'v5.5.1';

export default defineBoard({
  id: 'esp32-generic',
  title: 'Generic ESP32 (ESP32_GENERIC, 4 MB)',
  port: 'esp32',
  chip: 'ESP32',
  exportPrefix: 'ESP32',
  board: 'ESP32_GENERIC',
  toolchain: { ...IDF_IMAGE_SETUP, image: `espressif/idf:${DEFAULT_IDF}` },
  // firmware.bin is bootloader + partition table + application, laid out from 0x1000.
  artifacts: {
    firmware: 'firmware.bin',
    bootloader: 'bootloader/bootloader.bin',
    partitions: 'partition_table/partition-table.bin',
    application: 'micropython.bin',
  },
  firmware: 'firmware',
  defaultManifest: '$(PORT_DIR)/boards/manifest.py',
  flash: {
    // 0x1000 on ESP32 and ESP32-S2; S3/C3/C6 boards put it at 0x0.
    segments: [{ offset: 0x1000, artifact: 'firmware' }],
    mode: 'keep',
    freq: 'keep',
    size: 'keep',
    baud: 460800,
  },
  async resolve({ micropython }) {
    const board =
      micropython.version && !versionAtLeast(micropython.version, 1, 21) ? 'GENERIC' : 'ESP32_GENERIC';
    return { board, toolchain: await idfToolchain(micropython, 'esp32') };
  },
});
