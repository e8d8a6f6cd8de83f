/**
 * Flashing a board over serial: the esptool-js session, delta writes against a per-device record,
 * the firmware image and its checks. Ports, bindings and the monitor are serial/'s.
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
  resetIntoApplication,
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
export { changedRuns, hashSectors, padToWord, runBytes, SECTOR_SIZE, type SectorRun } from './sectors.ts';
