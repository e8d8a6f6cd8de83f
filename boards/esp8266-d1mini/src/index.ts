/**
 * Wemos/LOLIN D1 mini: ESP8266 with 4 MB flash, MicroPython's ESP8266_GENERIC board, default variant.
 * The toolchain image follows the MicroPython tree being built (see {@link esp8266Toolchain}).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { defineBoard, ESP_OPEN_SDK_IMAGE, esp8266Toolchain, versionAtLeast } from '@mp/core';

// The choice lives in core (upstream/toolchains.ts): upstream ESP8266 boards make the same one.
export { ESP_OPEN_SDK_IMAGE, esp8266Toolchain, MICROPYTHON_ESP8266_IMAGE } from '@mp/core';

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
