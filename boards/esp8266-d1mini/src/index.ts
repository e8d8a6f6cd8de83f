/**
 * Wemos/LOLIN D1 mini: ESP8266 with 4 MB flash, MicroPython's ESP8266_GENERIC board, default variant.
 * The toolchain image follows the MicroPython tree being built (see {@link esp8266Toolchain}).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { defineBoard, type ToolchainImage, versionAtLeast } from '@mp/core';

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

export default defineBoard({
  id: 'esp8266-d1mini',
  title: 'Wemos/LOLIN D1 mini (ESP8266, 4 MB)',
  port: 'esp8266',
  chip: 'ESP8266',
  exportPrefix: 'ESP8266',
  board: 'ESP8266_GENERIC',
  toolchain: { image: ESP_OPEN_SDK_IMAGE },
  artifacts: { firmware: 'firmware.bin' },
  firmware: 'firmware',
  // Includes the port manifest (_boot.py, flashbdev.py, inisetup.py): without it the filesystem breaks.
  defaultManifest: '$(BOARD_DIR)/manifest_2MiB.py',
  flash: {
    segments: [{ offset: 0x0, artifact: 'firmware' }],
    // The SDK reads the flash size from the image header, so it must match the real chip.
    mode: 'keep',
    freq: 'keep',
    size: 'detect',
    baud: 460800,
  },
  async resolve({ micropython }) {
    const makefile = await readFile(join(micropython.dir, 'ports/esp8266/Makefile'), 'utf8').catch(
      () => undefined,
    );
    const toolchain = esp8266Toolchain(makefile);
    const v = micropython.version;
    if (!v || versionAtLeast(v, 1, 21)) return { toolchain };
    // Before v1.21 the board was called GENERIC and froze $(BOARD_DIR)/manifest.py;
    // before v1.21 the output was also firmware-combined.bin.
    return {
      toolchain,
      board: 'GENERIC',
      defaultManifest: '$(BOARD_DIR)/manifest.py',
      artifacts: { firmware: 'firmware-combined.bin' },
    };
  },
});
