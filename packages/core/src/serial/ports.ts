/**
 * Which serial port a board is on: `--port` (or `flash.port` in the config) when given; otherwise
 * the port the project used last, if it is still there; otherwise the one USB serial adapter of a
 * known kind, or the user's choice among several (remembered in `<project>/.mp/port.json`).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CancelledError, MpError } from '../errors.ts';
import { writeFileAtomic } from '../util/fs.ts';
import { resolveSerialBinding } from './binding.ts';
import type { BindingInterface } from './binding-types.cts';
import { listSerialPorts, parseUsbId, type SerialPortListing } from './list.ts';
import { formatUsbId, knownUsbAdapter, type UsbAdapter } from './usb-ids.ts';
import type { NodeWebSerialPort } from './web-serial-port.ts';

/** A serial port with what mp knows about its USB adapter. */
export interface BoardPort extends SerialPortListing {
  /** The known USB serial adapter, if the ids match one (absent: not a likely board). */
  adapter: UsbAdapter | undefined;
  /** `1a86:7523`, or empty for ports without USB ids. */
  usbId: string;
}

export interface ListBoardPortsOptions {
  /** Default: `MP_SERIAL_BINDING`, else real hardware. */
  binding?: BindingInterface;
  /** Include ports without a known USB serial adapter (built-in UARTs, Bluetooth). */
  all?: boolean;
}

/** Serial ports with a known USB serial adapter (or every port with `all`), sorted by path. */
export async function listBoardPorts(options: ListBoardPortsOptions = {}): Promise<BoardPort[]> {
  const binding = await resolveSerialBinding(options.binding);
  let listings: SerialPortListing[];
  try {
    listings = await listSerialPorts(binding);
  } catch (error) {
    throw new MpError({
      code: 'PORT_LIST_FAILED',
      message: `Could not list serial ports: ${error instanceof Error ? error.message : String(error)}`,
      hint: 'Pass the port explicitly with --port (e.g. /dev/ttyUSB0, /dev/cu.usbserial-1410, COM3).',
      cause: error,
    });
  }
  const ports = listings.map((listing): BoardPort => {
    const vendorId = parseUsbId(listing.vendorId);
    const productId = parseUsbId(listing.productId);
    return {
      ...listing,
      adapter: knownUsbAdapter(vendorId, productId),
      usbId: formatUsbId(vendorId, productId),
    };
  });
  return ports.filter((p) => options.all || p.adapter).sort((a, b) => a.path.localeCompare(b.path));
}

/** What `.mp/port.json` holds: the port chosen for this project, and how to recognise it again. */
export interface RememberedPort {
  path: string;
  usbId?: string;
  serialNumber?: string;
  rememberedAt: string;
}

const REMEMBERED_PORT_FILE = 'port.json';

export async function readRememberedPort(stateDir: string): Promise<RememberedPort | undefined> {
  try {
    const value = JSON.parse(
      await readFile(join(stateDir, REMEMBERED_PORT_FILE), 'utf8'),
    ) as Partial<RememberedPort>;
    return typeof value.path === 'string' ? (value as RememberedPort) : undefined;
  } catch {
    // Missing or damaged: detect again, as on the first run.
    return undefined;
  }
}

export async function rememberPort(
  stateDir: string,
  port: Pick<BoardPort, 'path' | 'usbId' | 'serialNumber'>,
): Promise<void> {
  const value: RememberedPort = {
    path: port.path,
    ...(port.usbId ? { usbId: port.usbId } : {}),
    ...(port.serialNumber ? { serialNumber: port.serialNumber } : {}),
    rememberedAt: new Date().toISOString(),
  };
  await writeFileAtomic(join(stateDir, REMEMBERED_PORT_FILE), `${JSON.stringify(value, null, 2)}\n`);
}

export interface SelectPortOptions {
  /** `--port` or `flash.port`: used as is, never remembered. */
  explicit?: string;
  /** The project's `.mp` directory, where the choice is remembered. Absent: nothing is remembered. */
  stateDir?: string;
  binding?: BindingInterface;
  /**
   * Asks the user to pick one of several ports (the CLI prompts in a TTY). Absent, several ports
   * are an error listing them.
   */
  choose?: (ports: BoardPort[]) => Promise<BoardPort>;
}

export interface SelectedPort {
  path: string;
  /** How the port was found, for the UI ("using /dev/ttyUSB0 (remembered)"). */
  source: 'explicit' | 'remembered' | 'detected' | 'chosen';
  port?: BoardPort;
}

export async function selectPort(options: SelectPortOptions = {}): Promise<SelectedPort> {
  if (options.explicit) return { path: options.explicit, source: 'explicit' };
  const all = await listBoardPorts({ binding: options.binding, all: true });
  const candidates = all.filter((p) => p.adapter);
  const remembered = options.stateDir ? await readRememberedPort(options.stateDir) : undefined;
  if (remembered) {
    // The same adapter may come back under another name (ttyUSB0 → ttyUSB1, or ttyACM0 → ttyACM1
    // after a native-USB chip restarted): its serial number says so.
    const same =
      all.find((p) => p.path === remembered.path) ??
      (remembered.serialNumber
        ? findBoardPort({ ...remembered, usbId: remembered.usbId ?? '' }, candidates)
        : undefined);
    if (same) {
      if (same.path !== remembered.path && options.stateDir) await rememberPort(options.stateDir, same);
      return { path: same.path, source: 'remembered', port: same };
    }
  }
  if (candidates.length === 0) {
    const others = all.map((p) => p.path);
    throw new MpError({
      code: 'PORT_NOT_FOUND',
      message: `No board found: no USB serial adapter (CH340, CP210x, FTDI, Espressif USB) is connected${others.length ? ` (other serial ports: ${others.join(', ')})` : ''}`,
      hint: 'Plug the board in with a data cable (charge-only cables have no data lines), check that its driver is installed (`mp doctor`), or name the port with --port.',
    });
  }
  if (candidates.length === 1) {
    const only = candidates[0]!;
    if (options.stateDir) await rememberPort(options.stateDir, only);
    return { path: only.path, source: 'detected', port: only };
  }
  if (!options.choose) {
    throw new MpError({
      code: 'PORT_AMBIGUOUS',
      message: `Several boards are connected:\n${candidates.map((p) => `  ${describePort(p)}`).join('\n')}`,
      hint: `Name one with --port (e.g. --port ${candidates[0]!.path}) or set flash.port in the config; in a terminal, mp asks and remembers the answer for this project.`,
    });
  }
  const chosen = await options.choose(candidates);
  if (options.stateDir) await rememberPort(options.stateDir, chosen);
  return { path: chosen.path, source: 'chosen', port: chosen };
}

/** `/dev/ttyUSB0  CH340 (1a86:7523)  serial 1234` */
export function describePort(port: BoardPort): string {
  const parts = [port.path];
  if (port.adapter) parts.push(`${port.adapter.name} (${port.usbId})`);
  else if (port.usbId) parts.push(port.usbId);
  if (port.serialNumber) parts.push(`serial ${port.serialNumber}`);
  return parts.join('  ');
}

/** How to recognise a board's port again, also under another name. */
export interface PortIdentity {
  path: string;
  /** `303a:1001`; empty when unknown. */
  usbId: string;
  /** The USB serial number (the chip's MAC on USB-Serial/JTAG); absent when the device has none. */
  serialNumber?: string | undefined;
}

/** The identity of an (open or unopened) port from `getWebSerialPort`. */
export function portIdentity(port: NodeWebSerialPort): PortIdentity {
  const info = port.getInfo();
  return {
    path: port.path,
    usbId: formatUsbId(info.usbVendorId, info.usbProductId),
    serialNumber: port.serialNumber,
  };
}

/**
 * The board's port among `ports`: the same USB ids and serial number under whatever name, else the
 * same name with the same USB ids (a device without a serial number, or ids unknown).
 */
export function findBoardPort(identity: PortIdentity, ports: readonly BoardPort[]): BoardPort | undefined {
  const sameIds = (p: BoardPort) => !identity.usbId || !p.usbId || p.usbId === identity.usbId;
  if (identity.serialNumber) {
    const bySerial = ports.find((p) => p.serialNumber === identity.serialNumber && sameIds(p));
    if (bySerial) return bySerial;
  }
  return ports.find(
    (p) => p.path === identity.path && sameIds(p) && !(identity.serialNumber && p.serialNumber),
  );
}

export interface WaitForBoardPortOptions {
  binding?: BindingInterface;
  signal?: AbortSignal;
  /** How long the port may stay listed before mp takes it that the board does not leave. */
  goneWithinMs: number;
  /** The board is known to have left (its open port failed): wait for it to be listed only. */
  left?: boolean;
  /** How long the board may then take to be listed again. */
  backWithinMs: number;
  /** Default 50 ms. */
  pollMs?: number;
}

export type BoardPortWait =
  | { returned: true; port: BoardPort; reenumerated: boolean }
  | { returned: false; reenumerated: true };

/**
 * Follows a board whose USB device leaves the bus and comes back (a chip on its own USB after a
 * restart): waits up to `goneWithinMs` for its port to go away (it stays: `reenumerated: false`;
 * listed under another name: it has been and gone), then up to `backWithinMs` for it to be listed
 * again, maybe under another name. The listing is what counts, not the open port: the OS may keep
 * a dead port open long after the device left.
 */
export async function waitForBoardPort(
  identity: PortIdentity,
  options: WaitForBoardPortOptions,
): Promise<BoardPortWait> {
  const pollMs = options.pollMs ?? 50;
  const list = async () => listBoardPorts({ binding: options.binding, all: true }).catch(() => []);
  const wait = async () => {
    if (options.signal?.aborted) throw new CancelledError('waiting for the board');
    await sleep(pollMs, undefined, { signal: options.signal }).catch(() => {
      throw new CancelledError('waiting for the board');
    });
  };
  const goneBy = performance.now() + options.goneWithinMs;
  for (;;) {
    const port = findBoardPort(identity, await list());
    if (port && (options.left || port.path !== identity.path)) {
      return { returned: true, port, reenumerated: true };
    }
    if (!port) break;
    if (performance.now() >= goneBy) return { returned: true, port, reenumerated: false };
    await wait();
  }
  const backBy = performance.now() + options.backWithinMs;
  for (;;) {
    await wait();
    const port = findBoardPort(identity, await list());
    if (port) return { returned: true, port, reenumerated: true };
    if (performance.now() >= backBy) return { returned: false, reenumerated: true };
  }
}
