/**
 * The toolchain image a MicroPython tree needs, decided by the tree itself (what its Makefile runs,
 * which IDF its lockfile pins), with the reason shown in the build output and kept in the sidecar.
 * The curated boards (esp8266-d1mini, esp32-generic) and the upstream boards use the same choice.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ToolchainImage } from '../plugin/types.ts';
import { type ReleaseVersion, versionAtLeast } from '../plugin/version.ts';

/**
 * The image MicroPython's own ESP8266 instructions use up to v1.28: ports/esp8266/README.md of
 * v1.28.0 says `docker run --rm -v $HOME:$HOME -u $UID -w $PWD larsks/esp-open-sdk make …`, and
 * mpbuild's `BUILD_CONTAINERS["esp8266"]` (src/mpbuild/build.py) names the same image. It ships the
 * esp-open-sdk toolchain (GCC 4.8.5) with an esptool that predates the `--chip` option.
 */
export const ESP_OPEN_SDK_IMAGE = 'larsks/esp-open-sdk';

/**
 * MicroPython's official ESP8266 build image. From commit 7a61d7c2e0 (2026-07-27, first released in
 * v1.29.0) `ports/esp8266/Makefile` runs `esptool --chip esp8266 elf2image`, which the esptool in
 * larsks/esp-open-sdk rejects; mpbuild moved its ESP8266 builds to this image for that reason
 * (mattytrentini/mpbuild PR #115).
 */
export const MICROPYTHON_ESP8266_IMAGE = 'micropython/build-micropython-esp8266';

/**
 * `$(ESPTOOL) --chip esp8266 elf2image $^` (or `elf2image --chip …`) on one line of the Makefile:
 * the tree needs an esptool that knows `--chip` (esptool ≥ 2). v1.28.0 has `$(ESPTOOL) elf2image $^`.
 */
const ELF2IMAGE_WITH_CHIP = /^[^#\n]*(?:--chip\b[^\n]*\belf2image\b|\belf2image\b[^\n]*--chip\b)/m;

/** The toolchain for an ESP8266 tree, decided by what its Makefile runs rather than by its version. */
export function esp8266Toolchain(makefile: string | undefined): ToolchainImage {
  if (makefile === undefined) {
    return {
      image: MICROPYTHON_ESP8266_IMAGE,
      reason: 'ports/esp8266/Makefile could not be read; assuming a current tree',
    };
  }
  if (ELF2IMAGE_WITH_CHIP.test(makefile)) {
    return {
      image: MICROPYTHON_ESP8266_IMAGE,
      reason:
        'ports/esp8266/Makefile runs `esptool --chip esp8266 elf2image`, which larsks/esp-open-sdk’s esptool rejects',
    };
  }
  return {
    image: ESP_OPEN_SDK_IMAGE,
    reason:
      'ports/esp8266/Makefile runs `esptool elf2image` without --chip: the esp-open-sdk image of MicroPython’s ESP8266 README',
  };
}

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
export const IDF_IMAGE_SETUP = {
  env: { HOME: '/tmp/mp-home' },
  shellPrelude: 'mkdir -p "$HOME" && git config --global --add safe.directory "*"',
};

export const DEFAULT_IDF = 'v5.5.1';
