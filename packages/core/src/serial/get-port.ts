/** Ports by path: unopened for esptool-js (which opens them itself), or opened for direct use. */
import { realpathSync } from 'node:fs';
import { listSerialPorts, parseUsbId } from './list.ts';
import { NodeWebSerialPort, type NodeWebSerialPortOptions } from './web-serial-port.ts';
import type { WebSerialOpenOptions } from './web-serial-types.ts';

export interface GetWebSerialPortOptions extends NodeWebSerialPortOptions {}

/**
 * The Node counterpart of `navigator.serial.requestPort()`: an unopened port whose `getInfo()`
 * carries the USB ids the binding lists for `path` (and `serialNumber` its serial number). Pass it to
 * esptool-js's `Transport`, which opens it.
 */
export async function getWebSerialPort(
  path: string,
  options: GetWebSerialPortOptions = {},
): Promise<NodeWebSerialPort> {
  let info = options.info;
  let serialNumber = options.serialNumber;
  if (!info) {
    info = {};
    try {
      const ports = await listSerialPorts(options.binding);
      const match = ports.find((port) => samePath(port.path, path));
      const usbVendorId = parseUsbId(match?.vendorId);
      const usbProductId = parseUsbId(match?.productId);
      if (usbVendorId !== undefined) info.usbVendorId = usbVendorId;
      if (usbProductId !== undefined) info.usbProductId = usbProductId;
      serialNumber ??= match?.serialNumber;
    } catch {
      // USB ids only refine reset handling; a port that cannot be listed can still be opened.
    }
  }
  return new NodeWebSerialPort(path, { binding: options.binding, info, serialNumber });
}

export interface OpenWebSerialPortOptions extends GetWebSerialPortOptions, Partial<WebSerialOpenOptions> {}

/** `getWebSerialPort` + `open()`, for direct use (serial monitor); baud rate defaults to 115200. */
export async function openWebSerialPort(
  path: string,
  options: OpenWebSerialPortOptions = {},
): Promise<NodeWebSerialPort> {
  const port = await getWebSerialPort(path, options);
  await port.open({
    baudRate: options.baudRate ?? 115200,
    dataBits: options.dataBits,
    stopBits: options.stopBits,
    parity: options.parity,
    bufferSize: options.bufferSize,
    flowControl: options.flowControl,
  });
  return port;
}

function samePath(a: string, b: string): boolean {
  if (a === b) return true;
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}
