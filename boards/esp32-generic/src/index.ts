/**
 * A generic ESP32 (ESP32-WROOM/WROVER modules): MicroPython's ESP32_GENERIC board, built with
 * Espressif's ESP-IDF image at the version the MicroPython release asks for.
 */
import { DEFAULT_IDF, defineBoard, IDF_IMAGE_SETUP, idfToolchain, versionAtLeast } from '@mp/core';

// The IDF choice lives in core (upstream/toolchains.ts): upstream boards make the same one.
export { idfToolchain, idfVersionFor, idfVersionFromLockfile } from '@mp/core';

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
