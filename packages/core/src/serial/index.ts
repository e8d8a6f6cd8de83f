/**
 * The serial side of mp: which ports exist and which one is the board (USB ids, the project's
 * remembered port), which serialport binding to go through (real hardware, or `MP_SERIAL_BINDING`
 * for the emulator), the Web Serial `SerialPort` shape esptool-js drives, and the serial monitor.
 */

export { defaultSerialBinding, resolveSerialBinding, serialBindingFromEnv } from './binding.ts';
export type {
  BindingInterface,
  BindingPortInterface,
  OpenOptions,
  PortInfo,
  PortStatus,
  SetOptions,
  UpdateOptions,
} from './binding-types.cts';
export {
  type GetWebSerialPortOptions,
  getWebSerialPort,
  type OpenWebSerialPortOptions,
  openWebSerialPort,
} from './get-port.ts';
export { listSerialPorts, parseUsbId, type SerialPortListing } from './list.ts';
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
  type BoardPortWait,
  describePort,
  findBoardPort,
  type ListBoardPortsOptions,
  listBoardPorts,
  type PortIdentity,
  portIdentity,
  type RememberedPort,
  readRememberedPort,
  rememberPort,
  type SelectedPort,
  type SelectPortOptions,
  selectPort,
  type WaitForBoardPortOptions,
  waitForBoardPort,
} from './ports.ts';
export { formatUsbId, KNOWN_USB_ADAPTERS, knownUsbAdapter, type UsbAdapter } from './usb-ids.ts';
export { NodeWebSerialPort, type NodeWebSerialPortOptions } from './web-serial-port.ts';
export type {
  WebSerialInputSignals,
  WebSerialOpenOptions,
  WebSerialOutputSignals,
  WebSerialPortInfo,
} from './web-serial-types.ts';
