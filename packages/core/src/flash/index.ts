/**
 * Flashing and monitoring boards over serial: port detection, the esptool-js session, delta writes
 * against a per-device record, the serial monitor.
 */
export { type DeviceSegmentState, type DeviceState, DeviceStateStore, normaliseMac } from './device-state.ts';
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
export {
  CONSOLE_ESCAPE,
  type ConsoleEnd,
  type ConsoleStreams,
  MONITOR_BAUD,
  runSerialConsole,
  SerialMonitor,
  type SerialMonitorOptions,
} from './monitor.ts';
export {
  type BoardPort,
  describePort,
  type ListBoardPortsOptions,
  listBoardPorts,
  type RememberedPort,
  readRememberedPort,
  rememberPort,
  type SelectedPort,
  type SelectPortOptions,
  selectPort,
} from './ports.ts';
export { changedRuns, hashSectors, padToWord, runBytes, SECTOR_SIZE, type SectorRun } from './sectors.ts';
export { resolveSerialBinding, serialBindingFromEnv } from './serial-binding.ts';
export { formatUsbId, KNOWN_USB_ADAPTERS, knownUsbAdapter, type UsbAdapter } from './usb-ids.ts';
