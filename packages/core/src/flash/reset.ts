/**
 * Resetting a board from the host's DTR and RTS: into its ROM loader before flashing, into its
 * application afterwards. What the lines do depends on what is between the host and the chip:
 *
 * - a USB-serial bridge (CP210x, CH340, FTDI) with the usual two-transistor auto-reset circuit:
 *   RTS pulls EN low, DTR pulls GPIO0 low, the chip samples GPIO0 when EN rises;
 * - the chip's own USB-Serial/JTAG peripheral (ESP32-S3, C3, C6…, USB 303a:1001): no circuit, the
 *   peripheral reads the lines itself. DTR=1 RTS=0 sets a download flag, DTR=0 RTS=0 clears it,
 *   RTS=1 DTR=0 resets the chip (into the ROM loader when the flag was set). The classic sequence
 *   starts with that reset while the flag is still clear, so the chip boots its application.
 *
 * esptool and esptool-js pick the sequence from the USB ids alone (esptool loader.py
 * `_construct_reset_strategy_sequence`: `mode == "usb-reset" or get_usb_vid_pid()[1] ==
 * USB_JTAG_SERIAL_PID`; esptool-js esploader `constructResetSequence` / `isUsbJtagSerialPort`,
 * ESPRESSIF_VID 0x303a, USB_JTAG_SERIAL_PID 0x1001); esptool-js keeps doing the choosing here, with
 * the sequences below plugged in (`bootloaderResetConstructors`).
 *
 * A chip on its own USB leaves the bus when it restarts into its application and comes back a
 * moment later, maybe under another name (esptool reset.py `HardReset`: "Chips talking over their
 * internal USB peripheral disappear from the bus during reset"; its docs on --after watchdog-reset:
 * "may cause the port to re-enumerate on Linux (e.g. /dev/ttyACM0 -> /dev/ttyACM1)").
 * `restartIntoApplication` follows it there.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ESPLoader, ResetConstructors, Transport } from 'esptool-js';
import type { Logger } from '../events.ts';
import { resolveSerialBinding } from '../serial/binding.ts';
import type { BindingInterface } from '../serial/binding-types.cts';
import { type PortIdentity, portIdentity, waitForBoardPort } from '../serial/ports.ts';
import type { NodeWebSerialPort } from '../serial/web-serial-port.ts';
import type { WebSerialPortInfo } from '../serial/web-serial-types.ts';

/** Espressif's USB vendor id: the chips' own USB (USB-Serial/JTAG, USB-OTG). */
export const ESPRESSIF_USB_VENDOR_ID = 0x303a;
/** The USB-Serial/JTAG peripheral's product id, the same on every chip that has one. */
export const USB_JTAG_SERIAL_PRODUCT_ID = 0x1001;

/** How the host's DTR and RTS reach the chip. */
export type ResetWiring = 'auto-reset-circuit' | 'usb-serial-jtag';

/** `usb-serial-jtag` for a port with USB ids 303a:1001, as esptool and esptool-js decide it. */
export function resetWiring(info: WebSerialPortInfo): ResetWiring {
  return info.usbVendorId === ESPRESSIF_USB_VENDOR_ID && info.usbProductId === USB_JTAG_SERIAL_PRODUCT_ID
    ? 'usb-serial-jtag'
    : 'auto-reset-circuit';
}

/**
 * The board is on the chip's own USB (Espressif's vendor id: USB-Serial/JTAG, or USB-OTG CDC as
 * MicroPython's S2/S3 builds use): its port goes away when the chip restarts into the application.
 */
export function reenumeratesOnRestart(info: WebSerialPortInfo): boolean {
  return info.usbVendorId === ESPRESSIF_USB_VENDOR_ID;
}

/** What a reset sequence needs of a port. Every call sets both lines, as one control request. */
type ControlLines = Pick<NodeWebSerialPort, 'setSignals'>;

const lines = (port: ControlLines, dtr: boolean, rts: boolean) =>
  port.setSignals({ dataTerminalReady: dtr, requestToSend: rts });

/**
 * Into the ROM loader through an auto-reset circuit: esptool `ClassicReset` (DTR=0 RTS=1: EN low;
 * 100 ms; DTR=1 RTS=0: EN rises with GPIO0 low; `resetDelayMs`; DTR=0: GPIO0 released). esptool and
 * esptool-js try it with 50 ms, then 550 ms for boards with a slower RC on EN.
 */
export async function classicBootloaderReset(port: ControlLines, resetDelayMs: number): Promise<void> {
  await lines(port, false, true);
  await sleep(100);
  await lines(port, true, false);
  await sleep(resetDelayMs);
  await lines(port, false, false);
}

/**
 * Into the ROM loader through USB-Serial/JTAG: esptool `USBJTAGSerialReset` (esptool-js
 * `UsbJtagSerialReset`): idle (0,0); DTR=1 RTS=0 sets the download flag; through (1,1), not (0,0),
 * which would clear it, to DTR=0 RTS=1, the reset; then back to idle. Each step here is one
 * control request with both lines, so nothing in between reaches the peripheral (esptool sets them
 * one at a time and repeats RTS because Windows' usbser.sys only sends DTR along with RTS).
 */
export async function usbJtagBootloaderReset(port: ControlLines): Promise<void> {
  await lines(port, false, false);
  await sleep(100);
  await lines(port, true, false);
  await sleep(100);
  await lines(port, true, true);
  await lines(port, false, true);
  await sleep(100);
  await lines(port, false, false);
}

/**
 * The sequences esptool-js runs in `connect()`, in place of its own: it still picks USB-JTAG or
 * classic from the port's USB ids (`constructResetSequence`) and cycles through them per attempt.
 */
export function bootloaderResetConstructors(port: ControlLines): ResetConstructors {
  return {
    classicReset: (transport: Transport, resetDelay: number) =>
      ({ transport, resetDelay, reset: () => classicBootloaderReset(port, resetDelay) }) as never,
    usbJTAGSerialReset: (transport: Transport) =>
      ({ transport, reset: () => usbJtagBootloaderReset(port) }) as never,
  };
}

/**
 * Restarts the chip into its application: EN low with GPIO0 high for 100 ms, then both lines
 * released (esptool `HardReset`: RTS for 100 ms). esptool-js's `after('hard_reset')` only releases
 * RTS, which after its connect leaves GPIO0 low on an auto-reset circuit, so the chip would come
 * back in the loader. On USB-Serial/JTAG, DTR=0 RTS=1 is the peripheral's reset request and the
 * release clears the download flag. A chip on its own USB may already be gone when the lines are
 * released: with `lossExpected` that is not an error. Resolves to true when the port was gone by then.
 */
export async function resetIntoApplication(
  port: ControlLines,
  options: { lossExpected?: boolean } = {},
): Promise<boolean> {
  await lines(port, false, true);
  await sleep(100);
  try {
    await lines(port, false, false);
    return false;
  } catch (error) {
    if (!options.lossExpected) throw error;
    return true;
  }
}

export interface RestartOptions {
  /** Default: `MP_SERIAL_BINDING`, else real hardware. */
  binding?: BindingInterface;
  signal?: AbortSignal;
  logger?: Logger;
  /**
   * How long a board on its own USB may take to come back. esptool waits 0.2 s after the release
   * and reopens up to 3 times 0.5 s apart; a re-enumeration can take longer on a busy host.
   * Default 5000 ms.
   */
  returnTimeoutMs?: number;
}

/** Where the board is after `restartIntoApplication`. */
export interface RestartResult {
  /** The port the board is on now: another name when it re-enumerated under one; undefined when it has not come back. */
  path: string | undefined;
  /** Its USB device left the bus and came back (or is still away). */
  reenumerated: boolean;
}

/**
 * Restarts the board into its application and follows it: a board on the chip's own USB leaves
 * the bus and comes back, maybe under another name (matched by its USB ids and serial number, the
 * chip's MAC on USB-Serial/JTAG). The port itself is left as it is: it may be dead afterwards.
 */
export async function restartIntoApplication(
  port: NodeWebSerialPort,
  options: RestartOptions = {},
): Promise<RestartResult> {
  const info = port.getInfo();
  if (!reenumeratesOnRestart(info)) {
    await resetIntoApplication(port);
    return { path: port.path, reenumerated: false };
  }
  const identity: PortIdentity = portIdentity(port);
  const gone = await resetIntoApplication(port, { lossExpected: true });
  const binding = await resolveSerialBinding(options.binding);
  const back = await waitForBoardPort(identity, {
    binding,
    signal: options.signal,
    // A chip whose application keeps the USB device up (ESP-IDF apps can) never leaves; one
    // whose port failed under the reset has left, and may be back already.
    goneWithinMs: 1000,
    left: gone || !port.connected,
    backWithinMs: options.returnTimeoutMs ?? 5000,
  });
  if (back.returned === false) {
    options.logger?.warn(
      `The board on ${port.path} restarted and left the USB bus, but has not come back yet; \`mp ports\` shows where it is once it does.`,
    );
    return { path: undefined, reenumerated: true };
  }
  if (back.port.path !== port.path) {
    options.logger?.debug(`the board came back on ${back.port.path} after its restart`);
  }
  return { path: back.port.path, reenumerated: back.reenumerated };
}

/**
 * RTC and super watchdog registers of the chips whose USB-Serial/JTAG does not reset them along
 * with the chip (esptool targets/esp32s3.py, esp32c3.py, esp32c6.py `disable_watchdogs`: "When
 * USB-JTAG/Serial is used, the RTC WDT and SWD watchdog are not reset and can then reset the
 * board during flashing").
 */
const USB_JTAG_WATCHDOGS: Readonly<
  Record<
    string,
    {
      wdtProtect: number;
      wdtConfig0: number;
      wdtKey: number;
      swdProtect: number;
      swdConf: number;
      swdKey: number;
      swdAutoFeed: number;
    }
  >
> = {
  'ESP32-S3': {
    wdtProtect: 0x600080b0,
    wdtConfig0: 0x60008098,
    wdtKey: 0x50d83aa1,
    swdProtect: 0x600080b8,
    swdConf: 0x600080b4,
    swdKey: 0x8f1d312a,
    swdAutoFeed: 1 << 31,
  },
  'ESP32-C3': {
    wdtProtect: 0x600080a8,
    wdtConfig0: 0x60008090,
    wdtKey: 0x50d83aa1,
    swdProtect: 0x600080b0,
    swdConf: 0x600080ac,
    swdKey: 0x8f1d312a,
    swdAutoFeed: 1 << 31,
  },
  'ESP32-C6': {
    wdtProtect: 0x600b1c18,
    wdtConfig0: 0x600b1c00,
    wdtKey: 0x50d83aa1,
    swdProtect: 0x600b1c20,
    swdConf: 0x600b1c1c,
    swdKey: 0x50d83aa1,
    swdAutoFeed: 1 << 18,
  },
};

/**
 * What esptool's `_post_connect` does on these chips over USB-Serial/JTAG before loading the stub
 * (esptool-js 0.7 does not): the RTC watchdog disabled, the super watchdog fed automatically.
 * Nothing for other chips or wirings, or when the stub was already running.
 */
export async function disableUsbJtagWatchdogs(loader: ESPLoader, info: WebSerialPortInfo): Promise<void> {
  const chip = USB_JTAG_WATCHDOGS[loader.chip.CHIP_NAME];
  const stubRunning = (loader as unknown as { syncStubDetected?: boolean }).syncStubDetected === true;
  if (!chip || resetWiring(info) !== 'usb-serial-jtag' || stubRunning) return;
  await loader.writeReg(chip.wdtProtect, chip.wdtKey);
  await loader.writeReg(chip.wdtConfig0, 0);
  await loader.writeReg(chip.wdtProtect, 0);
  await loader.writeReg(chip.swdProtect, chip.swdKey);
  await loader.writeReg(chip.swdConf, ((await loader.readReg(chip.swdConf)) | chip.swdAutoFeed) >>> 0);
  await loader.writeReg(chip.swdProtect, 0);
}
