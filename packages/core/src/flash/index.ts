/**
 * Flashing a board over serial: the esptool-js session, the reset sequences (auto-reset circuit,
 * USB-Serial/JTAG), delta writes against a per-device record, the firmware image and its checks.
 * Ports, bindings and the monitor are serial/'s.
 */
export { type DeviceSegmentState, type DeviceState, DeviceStateStore, normaliseMac } from './device-state.ts';
export { createEraseJob, type EraseJob, type EraseOptions, type EraseResult, eraseBoard } from './erase.ts';
export {
  describeLoaderError,
  deviceLostError,
  isDeviceLost,
  isPermissionDenied,
  isPortBusy,
  noAnswerError,
  portOpenError,
} from './errors.ts';
export {
  type DeflatedPayload,
  deflateForFlash,
  type EspConnectOptions,
  type EspDeviceInfo,
  EspSession,
  ROM_BAUD,
} from './esp-session.ts';
export {
  checkFirmwareImage,
  type ExportSidecar,
  type FirmwareImage,
  type FirmwareSegment,
  findLatestExport,
  firmwareFromFile,
  firmwareFromSidecar,
  IMAGE_MAGIC,
  type ImageHeader,
  readImageHeader,
  readSidecar,
} from './firmware.ts';
export {
  createFlashJob,
  type FlashFirmwareOptions,
  FlashJob,
  type FlashResult,
  flashFirmware,
} from './flash.ts';
export {
  bootloaderResetConstructors,
  classicBootloaderReset,
  disableUsbJtagWatchdogs,
  ESPRESSIF_USB_VENDOR_ID,
  type ResetWiring,
  type RestartOptions,
  type RestartResult,
  reenumeratesOnRestart,
  resetIntoApplication,
  resetWiring,
  restartIntoApplication,
  USB_JTAG_SERIAL_PRODUCT_ID,
  usbJtagBootloaderReset,
} from './reset.ts';
export { changedRuns, hashSectors, padToWord, runBytes, SECTOR_SIZE, type SectorRun } from './sectors.ts';
