/**
 * Wemos/LOLIN D1 mini: ESP8266 with 4 MB flash, MicroPython's ESP8266_GENERIC board, default variant.
 */
import { defineBoard, versionAtLeast } from '@mp/core';

export default defineBoard({
  id: 'esp8266-d1mini',
  title: 'Wemos/LOLIN D1 mini (ESP8266, 4 MB)',
  port: 'esp8266',
  chip: 'ESP8266',
  exportPrefix: 'ESP8266',
  board: 'ESP8266_GENERIC',
  // The MicroPython README's own recipe: `docker run -u $UID larsks/esp-open-sdk make`.
  toolchain: { image: 'larsks/esp-open-sdk' },
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
  resolve({ micropython, logger }) {
    const v = micropython.version;
    if (!v) {
      logger.warn(
        `MicroPython ${micropython.ref} has no release version; assuming the current ESP8266 layout. larsks/esp-open-sdk fails on master after v1.28.0 (its esptool rejects "elf2image --chip"): pass --image with a newer toolchain if make fails there.`,
      );
      return {};
    }
    if (versionAtLeast(v, 1, 21)) {
      if (versionAtLeast(v, 1, 29)) {
        logger.warn(
          'larsks/esp-open-sdk is known to fail on MicroPython after v1.28.0 (its esptool rejects "elf2image --chip"); pass --image with a newer toolchain if make fails.',
        );
      }
      return {};
    }
    // Before v1.21 the board was called GENERIC and froze $(BOARD_DIR)/manifest.py;
    // before v1.21 the output was also firmware-combined.bin.
    return {
      board: 'GENERIC',
      defaultManifest: '$(BOARD_DIR)/manifest.py',
      artifacts: { firmware: 'firmware-combined.bin' },
    };
  },
});
