/**
 * @mp/esp-emulator: emulated ESP8266 / ESP32 / ESP32-S3 / ESP32-C3 boards (ROM bootloader, esptool
 * flasher stub, SPI flash, auto-reset circuit or USB-Serial/JTAG, a MicroPython-like app) behind a
 * serialport binding, for tests and benchmarks.
 */
export { EmulatedPort, EmulatorBinding } from './binding.ts';
export {
  CHIP_DETECT_MAGIC_REG,
  CHIPS,
  type ChipDefinition,
  type ChipName,
  type ResetCause,
  type UsbIdentity,
  usbSerialJtagIdentity,
} from './chips.ts';
export {
  type EmulatorConfig,
  type EmulatorDeviceConfig,
  type EmulatorFiles,
  type EmulatorState,
  FROM_ENV_MODULE,
  loadEmulatorConfig,
  type PersistentEmulator,
  writeEmulatorConfig,
} from './config.ts';
export {
  APP_BAUD,
  type BootKind,
  DEFAULT_FLASH_SIZE,
  type DeviceMode,
  EmulatedEsp,
  type EmulatorStats,
  type ErrorResponse,
  type EspDeviceOptions,
  emptyStats,
  garble,
  type HostLink,
} from './device.ts';
export { createEspEmulator, EspEmulator } from './emulator.ts';
export type { FaultAction, FaultDirection, FaultFrame, FaultRule, FiredFault } from './faults.ts';
export { firmwareBanner, firmwareId, IMAGE_MAGIC, makeTestFirmware } from './firmware.ts';
export { FlashMemory, type FlashRegion, SECTOR_SIZE } from './flash.ts';
export {
  COMMANDS,
  type CommandName,
  checksum,
  commandName,
  encodeResponse,
  ROM_ERROR,
  SlipDecoder,
  STUB_ERROR,
  slipEncode,
} from './protocol.ts';
export { type LineEffect, UsbSerialJtagLines } from './usb-serial-jtag.ts';
