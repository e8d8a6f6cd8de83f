/**
 * Which serial ports exist, with their USB ids: through the binding, or from sysfs where the
 * binding would crash (Linux without udevadm).
 */
import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { defaultSerialBinding } from './binding.ts';
import type { BindingInterface, PortInfo } from './binding-types.cts';

/** What `listSerialPorts` reports for one port (the `PortInfo` shape of the serialport package). */
export interface SerialPortListing {
  path: string;
  manufacturer: string | undefined;
  serialNumber: string | undefined;
  /** USB vendor id as 4 lowercase hex digits, e.g. `10c4`. */
  vendorId: string | undefined;
  /** USB product id as 4 lowercase hex digits, e.g. `ea60`. */
  productId: string | undefined;
  pnpId: string | undefined;
  locationId: string | undefined;
}

/** Lists serial ports through `binding` (default: the real hardware binding). */
export async function listSerialPorts(binding?: BindingInterface): Promise<SerialPortListing[]> {
  if (!binding && process.platform === 'linux' && !commandOnPath('udevadm')) {
    // bindings-cpp spawns udevadm without an 'error' listener, so a missing udevadm (slim
    // containers) crashes the whole process instead of rejecting. Read sysfs instead.
    return listLinuxPortsFromSysfs();
  }
  const ports = await (binding ?? (await defaultSerialBinding())).list();
  return ports.map(toListing);
}

/** Parses a `PortInfo` hex id (`'10c4'`, `'0x10C4'`) into a number. */
export function parseUsbId(id: string | undefined): number | undefined {
  if (!id) return undefined;
  const value = Number.parseInt(id.replace(/^0x/i, ''), 16);
  return Number.isFinite(value) ? value : undefined;
}

function toListing(port: PortInfo): SerialPortListing {
  return {
    path: port.path,
    manufacturer: port.manufacturer,
    serialNumber: port.serialNumber,
    vendorId: port.vendorId?.replace(/^0x/i, '').toLowerCase(),
    productId: port.productId?.replace(/^0x/i, '').toLowerCase(),
    pnpId: port.pnpId,
    locationId: port.locationId,
  };
}

function commandOnPath(command: string): boolean {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  return dirs.some((dir) => existsSync(join(dir, command)));
}

const LINUX_SERIAL_NAME = /^(ttyS|ttyWCH|ttyACM|ttyUSB|ttyAMA|ttyMFD|ttyO|ttyXRUSB|rfcomm)/;

function listLinuxPortsFromSysfs(): SerialPortListing[] {
  const root = '/sys/class/tty';
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return [];
  }
  const ports: SerialPortListing[] = [];
  for (const name of names.filter((n) => LINUX_SERIAL_NAME.test(n)).sort()) {
    const deviceLink = join(root, name, 'device');
    if (!existsSync(deviceLink)) continue;
    // Legacy 8250 ttyS* entries exist whether or not a UART is there; udev-based listing skips them too.
    if (name.startsWith('ttyS') && !existsSync(join(deviceLink, 'driver'))) continue;
    const usb = findUsbDeviceDir(deviceLink);
    ports.push({
      path: `/dev/${name}`,
      manufacturer: usb ? readSysfs(usb, 'manufacturer') : undefined,
      serialNumber: usb ? readSysfs(usb, 'serial') : undefined,
      vendorId: usb ? readSysfs(usb, 'idVendor') : undefined,
      productId: usb ? readSysfs(usb, 'idProduct') : undefined,
      pnpId: undefined,
      locationId: undefined,
    });
  }
  return ports;
}

function findUsbDeviceDir(deviceLink: string): string | undefined {
  let dir: string;
  try {
    dir = realpathSync(deviceLink);
  } catch {
    return undefined;
  }
  for (let depth = 0; depth < 6 && dir !== '/'; depth++) {
    if (existsSync(join(dir, 'idVendor'))) return dir;
    dir = join(dir, '..');
  }
  return undefined;
}

function readSysfs(dir: string, file: string): string | undefined {
  try {
    return readFileSync(join(dir, file), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}
