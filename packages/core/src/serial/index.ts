/**
 * Serial ports for flashing and monitoring: a Web Serial `SerialPort` (the shape esptool-js drives)
 * over any serialport binding. The real hardware binding is the default; tests inject the emulator's.
 */

export type {
  BindingInterface,
  BindingPortInterface,
  OpenOptions,
  PortInfo,
  PortStatus,
  SetOptions,
  UpdateOptions,
} from './binding-types.cts';
export { defaultSerialBinding, listSerialPorts, parseUsbId, type SerialPortListing } from './list.ts';
export {
  type GetWebSerialPortOptions,
  getWebSerialPort,
  NodeWebSerialPort,
  type NodeWebSerialPortOptions,
  type OpenWebSerialPortOptions,
  openWebSerialPort,
  type WebSerialInputSignals,
  type WebSerialOpenOptions,
  type WebSerialOutputSignals,
  type WebSerialPortInfo,
} from './web-serial-port.ts';
