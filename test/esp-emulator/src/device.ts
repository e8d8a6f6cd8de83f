import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { getStubJsonByChipName } from 'esptool-js';
import { type ApplicationOptions, ApplicationProcess } from './application.ts';
import type { ChipDefinition, ChipName, ResetCause, UsbIdentity } from './chips.ts';
import { chipDefinition, parseMac, usbSerialJtagIdentity } from './chips.ts';
import type { FaultRule, FiredFault } from './faults.ts';
import { corruptFrame, FaultInjector } from './faults.ts';
import { firmwareId, IMAGE_MAGIC } from './firmware.ts';
import type { FlashRegion } from './flash.ts';
import { FlashMemory, recordRegion, SECTOR_SIZE } from './flash.ts';
import { StreamingInflater } from './inflate.ts';
import type { CommandPacket } from './protocol.ts';
import {
  COMMANDS,
  checksum,
  encodeResponse,
  parseCommand,
  ROM_ERROR,
  SlipDecoder,
  STUB_ERROR,
  slipEncode,
  u32,
} from './protocol.ts';
import { UsbSerialJtagLines } from './usb-serial-jtag.ts';

export const DEFAULT_FLASH_SIZE = 4 * 1024 * 1024;
/** MicroPython's REPL UART speed. */
export const APP_BAUD = 115200;
const SPI_CMD_USR = 1 << 18;
const SYNC_PAYLOAD = Uint8Array.from([0x07, 0x07, 0x12, 0x20, ...new Array<number>(32).fill(0x55)]);
const OHAI = new TextEncoder().encode('OHAI');
const READ_FLASH_ACK_TIMEOUT_MS = 10_000;

export interface EspDeviceOptions {
  chip: ChipName;
  /** Default: `/dev/ttyEMU<n>` in creation order. */
  path?: string;
  /** Bytes; a power of two, at least 256 KiB. Default 4 MiB. */
  flashSize?: number;
  /** Initial flash content from offset 0 (the rest is erased). */
  flash?: Uint8Array;
  mac?: string;
  /** Pace bytes at the baud rate (10 bits per byte) in both directions. Default off. */
  throttle?: boolean;
  /**
   * The fastest rate the USB-serial adapter can be set to: opening or switching the port faster
   * fails, as serialport's `update()` does for a rate the driver refuses. Default: any.
   */
  adapterMaxBaud?: number;
  /**
   * The fastest rate the link carries: above it every byte arrives garbled, both ways (a long
   * cable, a marginal adapter or level shifter). Default: any.
   */
  linkMaxBaud?: number;
  faults?: FaultRule[];
  /** How often each fault already fired (from-env keeps this across processes). */
  faultsFired?: number[];
  /**
   * Time from EN's release to the chip sampling GPIO0 (the RC delay on EN). DTR/RTS changes within
   * this window still count, as on real boards. Default 10 ms.
   */
  enRiseMs?: number;
  /** Offset of the image the emulated app identifies (ESP8266: 0x0, ESP32: 0x1000, S3/C3: 0x0). */
  appOffset?: number;
  /**
   * How the host reaches the chip. Default: the board's USB-serial bridge (CP210x, CH340) with the
   * two-transistor auto-reset circuit; a partial identity overrides what `list()` reports for it.
   * `'usb-serial-jtag'`: the chip's own USB-Serial/JTAG peripheral (ESP32-S3, C3), listed as
   * 303a:1001 with the MAC as serial number, reset only by its own DTR/RTS sequence (see
   * usb-serial-jtag.ts), and off the bus for `reenumerateMs` whenever the application starts after
   * a reset.
   */
  usb?: Partial<UsbIdentity> | 'usb-serial-jtag';
  /** USB-Serial/JTAG: how long the device is gone from the bus when it re-enumerates. Default 250 ms. */
  reenumerateMs?: number;
  /**
   * USB-Serial/JTAG: the names the port comes back under on successive re-enumerations (Linux gives
   * the next free /dev/ttyACM<n> while a program still holds the old one open). Default: the same name.
   */
  renames?: string[];
  /**
   * The application after a boot into it: a real program behind a pty (the unix MicroPython of
   * the kit, whose REPL is the boards'), see application.ts. Default: a built-in REPL that echoes
   * lines and answers `print("…")`, and nothing else.
   */
  application?: ApplicationOptions;
}

export type DeviceMode = 'unplugged' | 'reset' | 'download' | 'stub' | 'app' | 'no-firmware';

export type BootKind = 'download' | 'app' | 'no-firmware';

export interface ErrorResponse {
  command: string;
  /** Second status byte: ROM_ERROR or STUB_ERROR code. */
  error: number;
  stub: boolean;
}

export interface EmulatorStats {
  /** Bytes that reached the device's UART from the host. */
  bytesReceived: number;
  /** Bytes the device put on the wire towards the host. */
  bytesSent: number;
  /** Bytes that arrived/left at a baud rate the other side did not use (seen as garbage). */
  garbledBytesReceived: number;
  garbledBytesSent: number;
  /** Commands the loader (ROM or stub) executed, by name. */
  commands: Record<string, number>;
  errorResponses: ErrorResponse[];
  /** Frames dropped by the loader: bad SLIP escape, bad header, wrong length field. */
  malformedFrames: number;
  /** Flash regions programmed, in order, contiguous writes merged. */
  flashWrites: FlashRegion[];
  flashErases: FlashRegion[];
  /** Times EN was pulled low. */
  resets: number;
  boots: BootKind[];
  stubStarts: number;
  /** Why uploaded code was refused at MEM_END (it must be esptool-js's stub, byte for byte). */
  stubRejections: string[];
  /** Baud rates set with CHANGE_BAUDRATE. */
  baudChanges: number[];
  /**
   * Times the stub stopped answering because inflated data ran past the region FLASH_DEFL_BEGIN
   * announced (e.g. a block received twice); only a reset brings it back.
   */
  stubHangs: number;
  faultsFired: FiredFault[];
  /** Lines typed into the emulated REPL. */
  replLines: string[];
  unplugs: number;
  /** Times the USB-Serial/JTAG device left the bus and came back (the application started after a reset). */
  reenumerations: number;
  /** Exceptions inside the emulator itself (always empty unless the emulator has a bug). */
  internalErrors: string[];
}

export function emptyStats(): EmulatorStats {
  return {
    bytesReceived: 0,
    bytesSent: 0,
    garbledBytesReceived: 0,
    garbledBytesSent: 0,
    commands: {},
    errorResponses: [],
    malformedFrames: 0,
    flashWrites: [],
    flashErases: [],
    resets: 0,
    boots: [],
    stubStarts: 0,
    stubRejections: [],
    baudChanges: [],
    stubHangs: 0,
    faultsFired: [],
    replLines: [],
    unplugs: 0,
    reenumerations: 0,
    internalErrors: [],
  };
}

/** The device's view of the open serial port. */
export interface HostLink {
  /** Baud rate the host side currently uses. */
  readonly baudRate: number;
  /** Bytes the device transmitted at `wireBaud`. */
  deliver(bytes: Uint8Array, wireBaud: number): void;
  /** The USB device went away. */
  deviceGone(): void;
}

interface RamSegment {
  offset: number;
  size: number;
  blocks: number;
  blockSize: number;
  nextSeq: number;
  data: Uint8Array;
}

interface FlashSession {
  compressed: boolean;
  offset: number;
  /** Erase size (ROM) or exact write size (stub, compressed). */
  size: number;
  blocks: number;
  blockSize: number;
  nextSeq: number;
  /** Bytes programmed so far (uncompressed), from `offset`. */
  written: number;
  inflater: StreamingInflater | undefined;
  erasedSectors: Set<number>;
}

/** Error codes for the ROM and for the stub; the one matching the current loader is sent. */
type ReplyError = { rom: number; stub: number };
type Reply = { value?: number; data?: Uint8Array } | ReplyError;

const stubCache = new Map<string, ReturnType<typeof getStubJsonByChipName>>();

function loadStub(chip: ChipDefinition) {
  let stub = stubCache.get(chip.displayName);
  if (!stub) {
    stub = getStubJsonByChipName(chip.displayName);
    stubCache.set(chip.displayName, stub);
  }
  return stub;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** What a receiver at the wrong baud rate makes of the bytes: a fixed-point-free byte permutation. */
export function garble(bytes: Uint8Array): Uint8Array {
  return bytes.map((b) => (b * 73 + 41) & 0xff);
}

/**
 * One emulated board: an ESP8266, ESP32, ESP32-S3 or ESP32-C3 with its ROM serial bootloader, the
 * esptool flasher stub, SPI flash, the DTR/RTS auto-reset circuit (or the chip's USB-Serial/JTAG
 * peripheral) and a MicroPython-like application.
 *
 * Events: `close` (the host closed its port), `unplug`, `replug`, `boot` (BootKind), `off-bus` and
 * `on-bus` (USB-Serial/JTAG re-enumeration; `on-bus` gets the path it came back under),
 * `internal-error`.
 */
export class EmulatedEsp extends EventEmitter {
  readonly chip: ChipDefinition;
  readonly mac: Uint8Array;
  readonly flashMemory: FlashMemory;
  readonly faults: FaultInjector;
  readonly throttle: boolean;
  readonly adapterMaxBaud: number;
  readonly linkMaxBaud: number;
  readonly usb: UsbIdentity;
  /** Reached through the chip's USB-Serial/JTAG peripheral rather than a USB-serial bridge. */
  readonly usbSerialJtag: boolean;
  readonly appOffset: number;
  readonly enRiseMs: number;
  readonly reenumerateMs: number;
  readonly stats: EmulatorStats = emptyStats();

  #path: string;
  readonly #names: string[];
  #mode: DeviceMode = 'reset';
  #plugged = true;
  /** USB-Serial/JTAG: false while the device re-enumerates (the chip keeps running). */
  #onBus = true;
  #busTimer: NodeJS.Timeout | null = null;
  readonly #usbLines = new UsbSerialJtagLines();
  #link: HostLink | null = null;
  #dtr = false;
  #rts = false;
  #enLow = false;
  #bootTimer: NodeJS.Timeout | null = null;
  /** Bumped on every reset/boot; work queued in an older epoch is discarded. */
  #epoch = 0;
  #txBaud: number;
  /** null: ROM autobaud, any rate is accepted until a SYNC locks it. */
  #rxBaud: number | null = null;
  readonly #decoder = new SlipDecoder();
  #queue: Promise<void> = Promise.resolve();
  readonly #registers = new Map<number, number>();
  readonly #constants: Map<number, number>;
  #spiAttached = false;
  #ram: RamSegment[] = [];
  #ramSession: RamSegment | null = null;
  #flashSession: FlashSession | null = null;
  #ackInbox: Uint8Array[] | null = null;
  /** The stub's error from processing the last data block, answered to the next command instead. */
  #carriedError: number | null = null;
  /** The stub is stuck in its erase loop (see `#stubDeflData`) until the chip is reset. */
  #hung = false;
  #ackWake: (() => void) | null = null;
  #replLine = '';
  #replLastCr = false;
  #banner = '';
  readonly #application: ApplicationProcess | undefined;

  constructor(options: EspDeviceOptions & { path: string }) {
    super();
    this.chip = chipDefinition(options.chip);
    this.#path = options.path;
    this.mac = parseMac(options.mac ?? this.chip.defaultMac);
    this.flashMemory = new FlashMemory(options.flashSize ?? DEFAULT_FLASH_SIZE, options.flash);
    this.faults = new FaultInjector(options.faults, options.faultsFired, this.stats.faultsFired);
    this.throttle = options.throttle ?? false;
    this.adapterMaxBaud = options.adapterMaxBaud ?? Number.POSITIVE_INFINITY;
    this.linkMaxBaud = options.linkMaxBaud ?? Number.POSITIVE_INFINITY;
    this.usbSerialJtag = options.usb === 'usb-serial-jtag';
    if (this.usbSerialJtag && !this.chip.usbSerialJtag) {
      throw new Error(
        `The ${this.chip.displayName} has no USB-Serial/JTAG peripheral (usb: 'usb-serial-jtag')`,
      );
    }
    this.usb =
      options.usb === 'usb-serial-jtag'
        ? usbSerialJtagIdentity(this.mac)
        : { ...this.chip.usb, ...options.usb };
    this.appOffset = options.appOffset ?? this.chip.appOffset;
    this.enRiseMs = options.enRiseMs ?? 10;
    this.reenumerateMs = options.reenumerateMs ?? 250;
    this.#names = [...(options.renames ?? [])];
    this.#constants = this.chip.constantRegisters(this.mac);
    this.#txBaud = this.chip.romBaud;
    this.#application = options.application
      ? new ApplicationProcess(
          options.application,
          (bytes) => {
            if (this.#mode === 'app') this.#transmit(bytes);
          },
          () => {
            // The program ended (the unix port exits on Ctrl-D): a board soft-reboots instead.
            if (this.#mode !== 'app') return;
            this.#print('MPY: soft reboot\r\n');
            this.#application?.start();
          },
        )
      : undefined;
    this.#boot('power-on');
  }

  /** The port's name now (a USB-Serial/JTAG device may come back under another one). */
  get path(): string {
    return this.#path;
  }

  /** The path the device is listed under, or will be once it is back on the bus. */
  get settledPath(): string {
    return this.#onBus ? this.#path : (this.#names[0] ?? this.#path);
  }

  /** Names still to come on re-enumerations (see `renames`). */
  get pendingRenames(): readonly string[] {
    return this.#names;
  }

  /** In `list()` and openable: plugged in and, for USB-Serial/JTAG, not re-enumerating. */
  get listed(): boolean {
    return this.#plugged && this.#onBus;
  }

  /** The flash content (live view; erased bytes are 0xFF). */
  get flash(): Uint8Array {
    return this.flashMemory.bytes;
  }

  get mode(): DeviceMode {
    return this.#mode;
  }

  get plugged(): boolean {
    return this.#plugged;
  }

  /** Baud rate the device's UART currently runs at. */
  get baudRate(): number {
    return this.#txBaud;
  }

  get portOpen(): boolean {
    return this.#link !== null;
  }

  /** Whether the application process (`application` option) runs now. */
  get applicationRunning(): boolean {
    return this.#application?.running ?? false;
  }

  /** The banner line the application printed at its last boot. */
  get banner(): string {
    return this.#banner;
  }

  /** Identity of the image at the app offset, as the banner shows it. */
  firmwareId(): string {
    return firmwareId(this.flash.subarray(this.appOffset));
  }

  /** Pulls the USB cable: the open port errors, the device leaves `list()`, power is lost. */
  unplug(): void {
    if (!this.#plugged) return;
    this.#plugged = false;
    this.#enterReset();
    this.#mode = 'unplugged';
    this.stats.unplugs++;
    if (this.#busTimer) clearTimeout(this.#busTimer);
    this.#busTimer = null;
    this.#onBus = true;
    this.#dropLink();
    this.emit('unplug');
  }

  /** Plugs the cable back in: the device is listed again and powers up (into the app). */
  replug(): void {
    if (this.#plugged) return;
    this.#plugged = true;
    this.#usbLines.powerOn();
    this.#boot('power-on');
    this.emit('replug');
  }

  #dropLink(): void {
    const link = this.#link;
    this.#link = null;
    this.#dtr = false;
    this.#rts = false;
    this.#enLow = false;
    link?.deviceGone();
  }

  /**
   * The USB-Serial/JTAG device leaves the bus and comes back `reenumerateMs` later, possibly under
   * the next name of `renames`; the chip keeps running and the flash is untouched. esptool: "Chips
   * talking over their internal USB peripheral disappear from the bus during reset;
   * post_release_delay=0.2 gives the device time to re-enumerate" (esptool/reset.py `HardReset`),
   * and its ResetStrategy reopens ports that "drop and re-enumerate the serial device during a
   * reset"; its docs on --after watchdog-reset: "may cause the port to re-enumerate on Linux (e.g.
   * /dev/ttyACM0 -> /dev/ttyACM1)". The reset into the ROM loader keeps the device on the bus:
   * esptool-js syncs over the same Web Serial port right after `UsbJtagSerialReset`, and a Web
   * Serial port does not survive a re-enumeration.
   */
  #reenumerate(): void {
    if (!this.#onBus) return;
    this.#onBus = false;
    this.stats.reenumerations++;
    this.#dropLink();
    this.emit('off-bus');
    this.#busTimer = setTimeout(() => {
      this.#busTimer = null;
      if (!this.#plugged) return;
      const next = this.#names.shift();
      if (next !== undefined) this.#path = next;
      this.#onBus = true;
      this.emit('on-bus', this.#path);
    }, this.reenumerateMs);
    // A process that exits meanwhile leaves the device where it would come back (see config.ts).
    this.#busTimer.unref();
  }

  /** Called by the binding when a port opens. */
  attach(link: HostLink): void {
    if (!this.listed) throw new Error(`${this.path} is not connected`);
    if (this.#link) throw new Error(`Error Resource temporarily unavailable Cannot lock port ${this.path}`);
    this.#link = link;
  }

  /** Called by the binding when its port closes; the tty drops DTR and RTS (hupcl). */
  detach(link: HostLink): void {
    if (this.#link !== link) return;
    this.setLines(false, false);
    this.#link = null;
    this.emit('close');
  }

  /**
   * The auto-reset circuit: EN is low while RTS is asserted and DTR is not; GPIO0 is low while DTR
   * is asserted and RTS is not. The chip boots `enRiseMs` after EN's release and samples GPIO0 then.
   */
  setLines(dtr: boolean, rts: boolean): void {
    this.#dtr = dtr;
    this.#rts = rts;
    if (!this.#plugged) return;
    if (this.usbSerialJtag) {
      const effect = this.#usbLines.set(dtr, rts);
      if (effect.reset) {
        // A reset request, not a held line: the chip restarts at once, whatever the lines do next.
        this.stats.resets++;
        this.#enterReset();
        this.#bootTimer = setTimeout(() => {
          this.#bootTimer = null;
          this.#boot('usb', effect.download);
        }, this.enRiseMs);
      }
      return;
    }
    const enLow = rts && !dtr;
    if (enLow && !this.#enLow) {
      this.stats.resets++;
      this.#enterReset();
    } else if (!enLow && this.#enLow) {
      this.#bootTimer = setTimeout(() => {
        this.#bootTimer = null;
        this.#boot('reset');
      }, this.enRiseMs);
    }
    this.#enLow = enLow;
  }

  /** Bytes from the host, sent at `hostBaud`. */
  receive(bytes: Uint8Array, hostBaud: number): void {
    this.stats.bytesReceived += bytes.length;
    const mode = this.#mode;
    if (mode !== 'download' && mode !== 'stub' && mode !== 'app') return;
    let data = bytes;
    if ((this.#rxBaud !== null && hostBaud !== this.#rxBaud) || hostBaud > this.linkMaxBaud) {
      data = garble(bytes);
      this.stats.garbledBytesReceived += bytes.length;
    }
    if (mode === 'app') {
      if (this.#application) this.#application.write(data);
      else this.#replInput(data);
      return;
    }
    const malformedBefore = this.#decoder.malformed;
    const frames = this.#decoder.push(data);
    this.stats.malformedFrames += this.#decoder.malformed - malformedBefore;
    for (const frame of frames) this.#onFrame(frame, hostBaud);
  }

  // ---------------------------------------------------------------------------------------------
  // Power, reset and boot

  #enterReset(): void {
    this.#epoch++;
    if (this.#bootTimer) clearTimeout(this.#bootTimer);
    this.#bootTimer = null;
    this.#mode = 'reset';
    this.#decoder.reset();
    this.#endFlashSession();
    this.#ram = [];
    this.#ramSession = null;
    this.#spiAttached = false;
    this.#ackInbox = null;
    this.#carriedError = null;
    this.#hung = false;
    this.#ackWake?.();
    this.#ackWake = null;
    this.#replLine = '';
    this.#application?.stop();
  }

  /** `download`: USB-Serial/JTAG's flag; otherwise GPIO0 as the auto-reset circuit drives it. */
  #boot(cause: ResetCause, download = !this.usbSerialJtag && this.#dtr && !this.#rts): void {
    this.#enterReset();
    this.#txBaud = this.chip.romBaud;
    this.#rxBaud = null;
    if (download) {
      this.#mode = 'download';
      this.stats.boots.push('download');
      this.#print(this.chip.romBanner('download', cause));
      this.emit('boot', 'download');
      return;
    }
    // The application takes the USB-Serial/JTAG device over after a reset: it leaves the bus
    // first, so what the ROM and the application print meanwhile reaches no host.
    const toApplication = this.flash[this.appOffset] === IMAGE_MAGIC;
    if (this.usbSerialJtag && cause !== 'power-on' && toApplication) this.#reenumerate();
    this.#print(this.chip.romBanner('flash', cause));
    this.#startApplication();
  }

  #startApplication(): void {
    this.#enterReset();
    if (this.flash[this.appOffset] !== IMAGE_MAGIC) {
      this.#mode = 'no-firmware';
      this.#txBaud = this.chip.romBaud;
      this.stats.boots.push('no-firmware');
      this.#print(this.chip.noFirmwareMessage);
      this.emit('boot', 'no-firmware');
      return;
    }
    this.#mode = 'app';
    this.#txBaud = APP_BAUD;
    this.#rxBaud = APP_BAUD;
    this.#banner = `MicroPython (emulated ${this.chip.displayName}) firmware ${this.firmwareId()}`;
    this.stats.boots.push('app');
    if (this.#application) {
      this.#print(`\r\n${this.#banner}\r\n`);
      this.#application.start();
    } else this.#print(`\r\n${this.#banner}\r\nType "help()" for more information.\r\n>>> `);
    this.emit('boot', 'app');
  }

  // ---------------------------------------------------------------------------------------------
  // Wire

  #transmit(bytes: Uint8Array): void {
    this.stats.bytesSent += bytes.length;
    const link = this.#link;
    if (!link) return;
    if (link.baudRate !== this.#txBaud || this.#txBaud > this.linkMaxBaud) {
      this.stats.garbledBytesSent += bytes.length;
      link.deliver(garble(bytes), this.#txBaud);
    } else {
      link.deliver(bytes, this.#txBaud);
    }
  }

  #print(text: string): void {
    this.#transmit(Uint8Array.from(text, (c) => c.charCodeAt(0) & 0xff));
  }

  #enqueue(task: () => Promise<void>): void {
    this.#queue = this.#queue.then(task).catch((error: unknown) => {
      // An emulator bug, not a device behaviour: keep it visible to tests. Emitted outside the queue
      // so a throwing listener cannot wedge it.
      this.stats.internalErrors.push(error instanceof Error ? (error.stack ?? error.message) : String(error));
      process.nextTick(() => this.emit('internal-error', error));
    });
  }

  /** Sends one SLIP frame, subject to response faults. */
  async #sendFrame(payload: Uint8Array, command: string, epoch: number): Promise<void> {
    let frame = payload;
    const rule = this.faults.check('response', command, payload.subarray(8));
    if (rule) {
      if (rule.action === 'drop') return;
      if (rule.action === 'unplug') {
        this.unplug();
        if (rule.replugAfterMs !== undefined) setTimeout(() => this.replug(), rule.replugAfterMs).unref();
        return;
      }
      if (rule.action === 'corrupt') frame = corruptFrame(payload, rule.byte);
      if (rule.action === 'delay') await sleep(rule.delayMs ?? 500);
    }
    if (epoch !== this.#epoch) return;
    this.#transmit(slipEncode(frame));
  }

  // ---------------------------------------------------------------------------------------------
  // Loader (ROM and stub)

  #onFrame(frame: Uint8Array, baud: number): void {
    if (this.#ackInbox) {
      // During READ_FLASH every frame from the host is an acknowledgement.
      this.#ackInbox.push(frame);
      this.#ackWake?.();
      return;
    }
    let cmd = parseCommand(frame);
    if (!cmd) {
      this.stats.malformedFrames++;
      return;
    }
    let delayMs = 0;
    const rule = this.faults.check('command', cmd.name, cmd.data);
    if (rule) {
      if (rule.action === 'drop') return;
      if (rule.action === 'unplug') {
        this.unplug();
        if (rule.replugAfterMs !== undefined) setTimeout(() => this.replug(), rule.replugAfterMs).unref();
        return;
      }
      if (rule.action === 'delay') delayMs = rule.delayMs ?? 500;
      if (rule.action === 'corrupt') {
        cmd = parseCommand(corruptFrame(frame, rule.byte));
        if (!cmd) {
          this.stats.malformedFrames++;
          return;
        }
      }
    }
    const epoch = this.#epoch;
    const packet = cmd;
    this.#enqueue(async () => {
      if (delayMs) await sleep(delayMs);
      if (epoch !== this.#epoch) return;
      await this.#execute(packet, baud, epoch);
    });
  }

  get #inStub(): boolean {
    return this.#mode === 'stub';
  }

  async #reply(cmd: CommandPacket, epoch: number, reply: Reply = {}): Promise<void> {
    const statusLength = this.#inStub ? 2 : this.chip.romStatusBytes;
    const status = new Uint8Array(statusLength);
    let value = 0;
    let data: Uint8Array = new Uint8Array(0);
    if ('rom' in reply) {
      const error = this.#inStub ? reply.stub : reply.rom;
      if (this.#inStub) {
        // Both flasher stubs put the error code first: esptool-legacy-flasher-stub's cmd_loop sends
        // SLIP_send_frame_data(error) then (status), esp-flasher-stub's s_send_response the 16-bit
        // code big-endian (0xC900 → C9 00). esptool-js shows them as "status 201,0".
        status[0] = error;
      } else {
        status[0] = 1;
        status[1] = error;
      }
      this.stats.errorResponses.push({ command: cmd.name, error, stub: this.#inStub });
    } else {
      value = reply.value ?? 0;
      data = reply.data ?? data;
    }
    const body = new Uint8Array(data.length + status.length);
    body.set(data);
    body.set(status, data.length);
    await this.#sendFrame(encodeResponse(cmd.op, value, body), cmd.name, epoch);
  }

  async #replyUnsupported(cmd: CommandPacket, epoch: number): Promise<void> {
    if (this.#inStub) {
      await this.#reply(cmd, epoch, { rom: 0, stub: STUB_ERROR.CMD_NOT_IMPLEMENTED });
      return;
    }
    // The ROM answers a message it cannot handle without echoing its op, status 1 / 0x05; esptool
    // (and esptool-js) read exactly that as "unsupported command".
    this.stats.errorResponses.push({ command: cmd.name, error: ROM_ERROR.INVALID_MESSAGE, stub: false });
    const status = new Uint8Array(this.chip.romStatusBytes);
    status[0] = 1;
    status[1] = ROM_ERROR.INVALID_MESSAGE;
    await this.#sendFrame(encodeResponse(0x00, 0, status), cmd.name, epoch);
  }

  async #execute(cmd: CommandPacket, baud: number, epoch: number): Promise<void> {
    if (this.#rxBaud === null && cmd.op !== COMMANDS.SYNC && baud !== this.chip.romBaud) {
      // Before autobaud locks, only a SYNC's 0x55 preamble is understood at a foreign rate.
      this.stats.garbledBytesReceived += cmd.data.length + 8;
      return;
    }
    if (this.#hung) return;
    this.stats.commands[cmd.name] = (this.stats.commands[cmd.name] ?? 0) + 1;
    if (this.#inStub && this.#carriedError !== null) {
      // esp-flasher-stub handle_command: "If previous post-process failed, send that error and skip
      // command execution".
      const error = this.#carriedError;
      this.#carriedError = null;
      return this.#reply(cmd, epoch, { rom: 0, stub: error });
    }
    const supported = (this.#inStub ? this.chip.stubCommands : this.chip.romCommands).has(cmd.op);
    if (!supported) return this.#replyUnsupported(cmd, epoch);
    switch (cmd.op) {
      case COMMANDS.SYNC:
        return this.#sync(cmd, baud, epoch);
      case COMMANDS.READ_REG:
        if (cmd.data.length !== 4) return this.#reply(cmd, epoch, badLength);
        return this.#reply(cmd, epoch, { value: this.#readRegister(u32(cmd.data, 0)) });
      case COMMANDS.WRITE_REG:
        if (cmd.data.length === 0 || cmd.data.length % 16 !== 0) return this.#reply(cmd, epoch, badLength);
        for (let i = 0; i < cmd.data.length / 16; i++) {
          this.#writeRegister(u32(cmd.data, i * 4), u32(cmd.data, i * 4 + 1), u32(cmd.data, i * 4 + 2));
        }
        return this.#reply(cmd, epoch);
      case COMMANDS.MEM_BEGIN:
        return this.#reply(cmd, epoch, this.#memBegin(cmd));
      case COMMANDS.MEM_DATA:
        return this.#reply(cmd, epoch, this.#memData(cmd));
      case COMMANDS.MEM_END:
        return this.#memEnd(cmd, epoch);
      case COMMANDS.SPI_ATTACH:
        if (cmd.data.length < 4) return this.#reply(cmd, epoch, badLength);
        this.#spiAttached = true;
        return this.#reply(cmd, epoch);
      case COMMANDS.SPI_SET_PARAMS:
        if (cmd.data.length !== 24) return this.#reply(cmd, epoch, badLength);
        return this.#reply(cmd, epoch);
      case COMMANDS.FLASH_BEGIN:
      case COMMANDS.FLASH_DEFL_BEGIN:
        return this.#reply(cmd, epoch, this.#flashBegin(cmd));
      case COMMANDS.FLASH_DEFL_DATA:
        if (this.#inStub) return this.#stubDeflData(cmd, epoch);
        return this.#reply(cmd, epoch, await this.#flashData(cmd, epoch));
      case COMMANDS.FLASH_DATA:
        return this.#reply(cmd, epoch, await this.#flashData(cmd, epoch));
      case COMMANDS.FLASH_END:
      case COMMANDS.FLASH_DEFL_END:
        return this.#flashEnd(cmd, epoch);
      case COMMANDS.SPI_FLASH_MD5:
        return this.#reply(cmd, epoch, this.#md5(cmd));
      case COMMANDS.GET_SECURITY_INFO:
        return this.#reply(cmd, epoch, this.#securityInfo(cmd));
      case COMMANDS.CHANGE_BAUDRATE:
        return this.#changeBaudRate(cmd, epoch);
      case COMMANDS.ERASE_FLASH:
        this.flashMemory.eraseRange(0, this.flashMemory.size);
        recordRegion(this.stats.flashErases, 0, this.flashMemory.size);
        return this.#reply(cmd, epoch);
      case COMMANDS.ERASE_REGION:
        return this.#reply(cmd, epoch, this.#eraseRegion(cmd));
      case COMMANDS.READ_FLASH:
        return this.#readFlash(cmd, epoch);
      case COMMANDS.RUN_USER_CODE:
        // Not answered, and nothing happens: esp-flasher-stub src/command_handler.c, `case
        // ESP_RUN_USER_CODE`: "This command does not send response. TODO: Try to implement WDT
        // reset to trigger system reset". (The legacy esptool stub did jump into the application.)
        return;
      default:
        return this.#replyUnsupported(cmd, epoch);
    }
  }

  async #sync(cmd: CommandPacket, baud: number, epoch: number): Promise<void> {
    if (!bytesEqual(cmd.data, SYNC_PAYLOAD)) {
      this.stats.malformedFrames++;
      return;
    }
    if (this.#inStub) return this.#reply(cmd, epoch, { value: 0 });
    if (this.#rxBaud === null) {
      this.#rxBaud = baud;
      this.#txBaud = baud;
    }
    // The ROM answers every SYNC eight times.
    for (let i = 0; i < 8; i++) await this.#reply(cmd, epoch, { value: this.chip.romSyncValue });
  }

  /**
   * GET_SECURITY_INFO of the S3 and later ROMs (esptool loader.py `get_security_info`): flags,
   * flash_crypt_cnt, 7 key purposes, chip_id, API version; no secure boot, no flash encryption.
   */
  #securityInfo(cmd: CommandPacket): Reply {
    if (cmd.data.length !== 0) return badLength;
    const info = this.chip.securityInfo;
    if (!info) return { rom: ROM_ERROR.INVALID_MESSAGE, stub: STUB_ERROR.CMD_NOT_IMPLEMENTED };
    const data = new Uint8Array(20);
    const view = new DataView(data.buffer);
    view.setUint32(12, info.chipId, true);
    view.setUint32(16, info.apiVersion, true);
    return { data };
  }

  #readRegister(address: number): number {
    const constant = this.#constants.get(address);
    if (constant !== undefined) return constant;
    if (address === this.chip.uartClkdivReg) {
      return Math.round((this.chip.xtalMHz * 1e6 * this.chip.xtalClkDivider) / this.#txBaud) & 0xfffff;
    }
    return this.#registers.get(address) ?? 0;
  }

  #writeRegister(address: number, value: number, mask: number): void {
    if (this.#constants.has(address)) return;
    let next = (((this.#registers.get(address) ?? 0) & ~mask) | (value & mask)) >>> 0;
    if (address === this.chip.spiRegBase && next & SPI_CMD_USR) {
      this.#runSpiCommand();
      next = (next & ~SPI_CMD_USR) >>> 0;
    }
    this.#registers.set(address, next);
  }

  /** The SPI "user command" esptool uses for RDID (runSpiflashCommand / readFlashId). */
  #runSpiCommand(): void {
    const base = this.chip.spiRegBase;
    const command = (this.#registers.get(base + this.chip.spiUsr2Offset) ?? 0) & 0xffff;
    const w0 = base + this.chip.spiW0Offset;
    if (command === 0x9f) this.#registers.set(w0, this.flashMemory.jedecId);
    else if (command === 0x05 || command === 0x35) this.#registers.set(w0, 0);
  }

  #memBegin(cmd: CommandPacket): Reply {
    if (cmd.data.length !== 16) return badLength;
    const [size, blocks, blockSize, offset] = fields(cmd.data);
    const inRam = this.chip.ramRanges.some(([start, end]) => offset >= start && offset + size <= end);
    if (!inRam) return { rom: ROM_ERROR.RAM_ADDRESS, stub: STUB_ERROR.BAD_DATA_LEN };
    if (blockSize === 0 || blocks * blockSize < size)
      return { rom: ROM_ERROR.RAM_SIZE, stub: STUB_ERROR.BAD_BLOCKSIZE };
    const segment: RamSegment = { offset, size, blocks, blockSize, nextSeq: 0, data: new Uint8Array(size) };
    // A new upload to the same RAM replaces what was there.
    this.#ram = this.#ram.filter((s) => s.offset + s.size <= offset || s.offset >= offset + size);
    this.#ram.push(segment);
    this.#ramSession = segment;
    return {};
  }

  #memData(cmd: CommandPacket): Reply {
    const session = this.#ramSession;
    if (!session) return { rom: ROM_ERROR.RESULT_WRONG, stub: STUB_ERROR.NOT_IN_FLASH_MODE };
    const block = dataBlock(cmd, session);
    if ('rom' in block) return block;
    const at = block.seq * session.blockSize;
    if (block.payload.length > session.blockSize || at + block.payload.length > session.size) {
      return { rom: ROM_ERROR.RAM_SIZE, stub: STUB_ERROR.TOO_MUCH_DATA };
    }
    session.data.set(block.payload, at);
    session.nextSeq++;
    return {};
  }

  async #memEnd(cmd: CommandPacket, epoch: number): Promise<void> {
    if (cmd.data.length !== 8) return this.#reply(cmd, epoch, badLength);
    const [noExecute, entry] = fields(cmd.data);
    const session = this.#ramSession;
    if (session && session.nextSeq !== session.blocks) {
      return this.#reply(cmd, epoch, { rom: ROM_ERROR.RESULT_WRONG, stub: STUB_ERROR.NOT_ENOUGH_DATA });
    }
    if (noExecute !== 0) return this.#reply(cmd, epoch);
    if (this.#inStub) return this.#reply(cmd, epoch, { rom: 0, stub: STUB_ERROR.CMD_NOT_IMPLEMENTED });
    const problem = await this.#checkStubUpload(entry);
    if (epoch !== this.#epoch) return;
    if (problem) {
      this.stats.stubRejections.push(problem);
      return this.#reply(cmd, epoch, { rom: ROM_ERROR.RESULT_WRONG, stub: 0 });
    }
    await this.#reply(cmd, epoch);
    if (epoch !== this.#epoch) return;
    this.#ram = [];
    this.#ramSession = null;
    this.#endFlashSession();
    this.#mode = 'stub';
    this.stats.stubStarts++;
    if (this.chip.stubUartBaud !== undefined) {
      // The stub reprograms UART0 before it greets (see ChipDefinition.stubUartBaud).
      this.#txBaud = this.chip.stubUartBaud;
      this.#rxBaud = this.chip.stubUartBaud;
    }
    await this.#sendFrame(OHAI, 'OHAI', epoch);
  }

  /** Only esptool-js's own flasher stub for this chip may run: text and data byte-exact, right entry. */
  async #checkStubUpload(entry: number): Promise<string | undefined> {
    const stub = await loadStub(this.chip);
    if (!stub) return `esptool-js has no stub for ${this.chip.displayName}`;
    const expected = [
      { name: 'text', offset: stub.text_start, bytes: stub.decodedText },
      { name: 'data', offset: stub.data_start, bytes: stub.decodedData },
    ];
    if (this.#ram.length !== expected.length) {
      return `expected ${expected.length} RAM segments (stub text + data), got ${this.#ram.length}`;
    }
    for (const want of expected) {
      const got = this.#ram.find((segment) => segment.offset === want.offset);
      if (!got) return `no ${want.name} segment at 0x${want.offset.toString(16)}`;
      if (!bytesEqual(got.data, want.bytes)) return `${want.name} segment differs from esptool-js's stub`;
    }
    if (entry !== stub.entry) return `entry 0x${entry.toString(16)}, expected 0x${stub.entry.toString(16)}`;
    return undefined;
  }

  #flashBegin(cmd: CommandPacket): Reply {
    if (cmd.data.length < 16) return badLength;
    const [size, blocks, blockSize, offset] = fields(cmd.data);
    if ((size > 0 || blocks > 0) && this.#flashDetached()) return { rom: ROM_ERROR.RESULT_WRONG, stub: 0 };
    if (!this.flashMemory.contains(offset, size)) {
      return { rom: ROM_ERROR.INVALID_PARAMETER, stub: STUB_ERROR.BAD_DATA_LEN };
    }
    if (blocks > 0 && blockSize === 0)
      return { rom: ROM_ERROR.INVALID_PARAMETER, stub: STUB_ERROR.BAD_BLOCKSIZE };
    this.#endFlashSession();
    const compressed = cmd.op === COMMANDS.FLASH_DEFL_BEGIN;
    if (!this.#inStub && size > 0) {
      // The ROM erases the whole region up front; the stub erases sector by sector as data arrives.
      this.flashMemory.eraseRange(offset, size);
      recordRegion(this.stats.flashErases, offset, size);
    }
    this.#flashSession = {
      compressed,
      offset,
      size,
      blocks,
      blockSize,
      nextSeq: 0,
      written: 0,
      inflater: compressed ? new StreamingInflater() : undefined,
      erasedSectors: new Set(),
    };
    return {};
  }

  async #flashData(cmd: CommandPacket, epoch: number): Promise<Reply> {
    const session = this.#flashSession;
    const compressed = cmd.op === COMMANDS.FLASH_DEFL_DATA;
    if (!session || session.compressed !== compressed) {
      return { rom: ROM_ERROR.RESULT_WRONG, stub: STUB_ERROR.NOT_IN_FLASH_MODE };
    }
    if (this.#flashDetached()) return { rom: ROM_ERROR.RESULT_WRONG, stub: 0 };
    const block = dataBlock(cmd, session);
    if ('rom' in block) return block;
    if (block.payload.length > session.blockSize)
      return { rom: ROM_ERROR.INVALID_PARAMETER, stub: STUB_ERROR.BAD_BLOCKSIZE };
    let at: number;
    let bytes: Uint8Array;
    if (compressed) {
      try {
        bytes = await session.inflater!.push(block.payload);
      } catch {
        return { rom: ROM_ERROR.DEFLATE, stub: STUB_ERROR.INFLATE_ERROR };
      }
      if (epoch !== this.#epoch) return {};
      at = session.offset + session.written;
    } else {
      at = session.offset + block.seq * session.blockSize;
      bytes = block.payload;
    }
    if (!this.flashMemory.contains(at, bytes.length)) {
      return { rom: ROM_ERROR.INVALID_PARAMETER, stub: STUB_ERROR.BAD_DATA_LEN };
    }
    if (!this.#programFlash(session, at, bytes))
      return { rom: ROM_ERROR.FLASH_WRITE, stub: STUB_ERROR.FAILED_SPI_OP };
    session.written = Math.max(session.written, at + bytes.length - session.offset);
    session.nextSeq++;
    return {};
  }

  /**
   * FLASH_DEFL_DATA as the flasher stub esptool-js 0.7 uploads handles it (esp-flasher-stub,
   * src/command_handler.c): `s_flash_defl_data` checks the length and the checksum only, not the
   * sequence number (neither did the legacy stub's cmd_loop), and the block is answered before it
   * is inflated and written (`handle_command` runs `s_flash_defl_data_post_process` after
   * `s_send_response`). A failure there is answered to the next command, which is not executed.
   *
   * So a block sent twice (esptool-js resends one whose answer it did not get) is inflated twice,
   * and the stream goes on from the wrong place. When that writes past the end of the region
   * FLASH_DEFL_BEGIN announced, rounded up to a sector, the stub hangs: `s_ensure_flash_erased_to`
   * loops while `next_erase_addr < target`, and with nothing left to erase
   * `stub_lib_flash_start_next_erase` (esp-stub-lib src/flash.c) returns OK without moving on.
   */
  async #stubDeflData(cmd: CommandPacket, epoch: number): Promise<void> {
    const session = this.#flashSession;
    if (!session?.compressed) {
      return this.#reply(cmd, epoch, { rom: 0, stub: STUB_ERROR.NOT_IN_FLASH_MODE });
    }
    if (cmd.data.length < 16) return this.#reply(cmd, epoch, badLength);
    const payload = cmd.data.subarray(16);
    if (u32(cmd.data, 0) !== payload.length) return this.#reply(cmd, epoch, badLength);
    if (cmd.checksum !== checksum(payload)) {
      return this.#reply(cmd, epoch, { rom: 0, stub: STUB_ERROR.BAD_DATA_CHECKSUM });
    }
    await this.#reply(cmd, epoch);
    if (epoch !== this.#epoch) return;
    let bytes: Uint8Array;
    try {
      bytes = await session.inflater!.push(payload);
    } catch {
      this.#carriedError = STUB_ERROR.INFLATE_ERROR;
      return;
    }
    if (epoch !== this.#epoch) return;
    const at = session.offset + session.written;
    const eraseEnd = Math.ceil((session.offset + session.size) / SECTOR_SIZE) * SECTOR_SIZE;
    if (at + bytes.length > eraseEnd) {
      this.#hung = true;
      this.stats.stubHangs++;
      return;
    }
    if (!this.#programFlash(session, at, bytes)) {
      this.#carriedError = STUB_ERROR.FAILED_SPI_OP;
      return;
    }
    session.written += bytes.length;
    session.nextSeq++;
  }

  #programFlash(session: FlashSession, at: number, bytes: Uint8Array): boolean {
    if (bytes.length === 0) return true;
    if (this.#inStub) {
      const first = Math.floor(at / SECTOR_SIZE);
      const last = Math.floor((at + bytes.length - 1) / SECTOR_SIZE);
      for (let sector = first; sector <= last; sector++) {
        if (session.erasedSectors.has(sector)) continue;
        session.erasedSectors.add(sector);
        this.flashMemory.eraseRange(sector * SECTOR_SIZE, SECTOR_SIZE);
        recordRegion(this.stats.flashErases, sector * SECTOR_SIZE, SECTOR_SIZE);
      }
    }
    recordRegion(this.stats.flashWrites, at, bytes.length);
    // Read-back check as the ROM does: programming unerased flash cannot set bits back to 1.
    return this.flashMemory.program(at, bytes);
  }

  async #flashEnd(cmd: CommandPacket, epoch: number): Promise<void> {
    if (cmd.data.length < 4) return this.#reply(cmd, epoch, badLength);
    const runUserCode = u32(cmd.data, 0) !== 0;
    const session = this.#flashSession;
    const compressed = cmd.op === COMMANDS.FLASH_DEFL_END;
    if (this.#inStub) {
      if (!session || session.compressed !== compressed) {
        return this.#reply(cmd, epoch, { rom: 0, stub: STUB_ERROR.NOT_IN_FLASH_MODE });
      }
      if (compressed) {
        // esp-flasher-stub s_handle_flash_end: the only check is that exactly the announced size
        // was written (total_remaining != 0 → RESPONSE_BAD_DATA_LEN); blocks are not counted.
        if (session.written !== session.size) return this.#reply(cmd, epoch, badLength);
      } else if (session.nextSeq < session.blocks) {
        return this.#reply(cmd, epoch, { rom: 0, stub: STUB_ERROR.NOT_ENOUGH_DATA });
      }
    }
    this.#endFlashSession();
    await this.#reply(cmd, epoch);
    if (epoch !== this.#epoch) return;
    // The stub stays whatever the flag says: esp-flasher-stub `s_flash_end` and `s_flash_defl_end`
    // read it, then "TODO: Implement reboot". The ROM reboots (GPIO0 decides again) or runs the app.
    if (this.#inStub) return;
    if (!runUserCode) this.#boot('software');
    else this.#startApplication();
  }

  /** The ESP32 ROM cannot reach the SPI flash before SPI_ATTACH; the stub attaches by itself. */
  #flashDetached(): boolean {
    return !this.#inStub && this.chip.romNeedsSpiAttach && !this.#spiAttached;
  }

  #endFlashSession(): void {
    this.#flashSession?.inflater?.destroy();
    this.#flashSession = null;
  }

  #md5(cmd: CommandPacket): Reply {
    if (cmd.data.length !== 16) return badLength;
    if (this.#flashDetached()) return { rom: ROM_ERROR.RESULT_WRONG, stub: 0 };
    const [address, size] = fields(cmd.data);
    if (!this.flashMemory.contains(address, size)) {
      return { rom: ROM_ERROR.INVALID_PARAMETER, stub: STUB_ERROR.BAD_DATA_LEN };
    }
    const digest = createHash('md5')
      .update(this.flash.subarray(address, address + size))
      .digest();
    // ROM: 32 hex digits in ASCII; stub: 16 raw bytes.
    const data = this.#inStub ? new Uint8Array(digest) : new TextEncoder().encode(digest.toString('hex'));
    return { data };
  }

  /**
   * CHANGE_BAUDRATE, answered at the old rate; the UART switches afterwards. The ESP32 ROM sets the
   * divider from its own measure of the crystal (esptool targets/esp32.py `change_baud`), which on
   * the emulated chip is exact (see its calibration registers). The stub (esp-flasher-stub
   * `s_change_baudrate_post_process`, after the answer) switches 5 ms later (esp-stub-lib
   * `stub_target_uart_rominit_set_baudrate`: `stub_lib_delay_us(5 * 1000)` first); on the ESP8266 it
   * scales the divider in use as if that gave 115200 (src/target/esp8266/src/uart.c:
   * `new_clk_div = clk_div * 115200 / baudrate`), so after an autobaud sync at another rate the
   * new rate is the one asked for times current / 115200.
   */
  async #changeBaudRate(cmd: CommandPacket, epoch: number): Promise<void> {
    if (cmd.data.length !== 8) return this.#reply(cmd, epoch, badLength);
    const requested = u32(cmd.data, 0);
    if (requested < 300 || requested > 5_000_000) {
      return this.#reply(cmd, epoch, { rom: ROM_ERROR.INVALID_PARAMETER, stub: STUB_ERROR.BAD_DATA_LEN });
    }
    const stub = this.#inStub;
    const baud =
      stub && this.chip.name === 'esp8266' ? Math.round((this.#txBaud * requested) / 115200) : requested;
    await this.#reply(cmd, epoch);
    if (epoch !== this.#epoch) return;
    if (stub) {
      await sleep(5);
      if (epoch !== this.#epoch) return;
    }
    this.#txBaud = baud;
    this.#rxBaud = baud;
    this.stats.baudChanges.push(baud);
  }

  #eraseRegion(cmd: CommandPacket): Reply {
    if (cmd.data.length !== 8) return badLength;
    const [offset, size] = fields(cmd.data);
    if (offset % SECTOR_SIZE !== 0 || size % SECTOR_SIZE !== 0 || !this.flashMemory.contains(offset, size)) {
      return { rom: 0, stub: STUB_ERROR.BAD_DATA_LEN };
    }
    this.flashMemory.eraseRange(offset, size);
    recordRegion(this.stats.flashErases, offset, size);
    return {};
  }

  /** Stub READ_FLASH: a plain reply, then raw data frames each acked by the host, then the MD5. */
  async #readFlash(cmd: CommandPacket, epoch: number): Promise<void> {
    if (cmd.data.length < 16) return this.#reply(cmd, epoch, badLength);
    const [offset, length, , packetSize] = fields(cmd.data);
    const maxInFlight = cmd.data.length >= 20 ? Math.max(1, u32(cmd.data, 4)) : 1;
    if (!this.flashMemory.contains(offset, length) || packetSize === 0 || length === 0) {
      return this.#reply(cmd, epoch, { rom: 0, stub: STUB_ERROR.BAD_DATA_LEN });
    }
    const inbox: Uint8Array[] = [];
    this.#ackInbox = inbox;
    try {
      await this.#reply(cmd, epoch);
      const md5 = createHash('md5');
      let sent = 0;
      let acked = 0;
      while (acked < length) {
        while (sent < length && sent - acked < maxInFlight * packetSize) {
          const chunk = this.flash.subarray(offset + sent, offset + Math.min(length, sent + packetSize));
          md5.update(chunk);
          sent += chunk.length;
          if (epoch !== this.#epoch) return;
          this.#transmit(slipEncode(chunk));
        }
        const ack = await this.#nextAck(inbox, epoch);
        if (ack?.length !== 4) return;
        const count = u32(ack, 0);
        if (count > sent || count < acked) return;
        acked = count;
      }
      if (epoch !== this.#epoch) return;
      this.#transmit(slipEncode(new Uint8Array(md5.digest())));
    } finally {
      if (this.#ackInbox === inbox) this.#ackInbox = null;
    }
  }

  async #nextAck(inbox: Uint8Array[], epoch: number): Promise<Uint8Array | undefined> {
    const deadline = Date.now() + READ_FLASH_ACK_TIMEOUT_MS;
    while (inbox.length === 0) {
      if (epoch !== this.#epoch || Date.now() > deadline) return undefined;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        this.#ackWake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#ackWake = null;
    }
    return inbox.shift();
  }

  // ---------------------------------------------------------------------------------------------
  // Application (a REPL that echoes)

  #replInput(data: Uint8Array): void {
    let out = '';
    for (const byte of data) {
      if (byte === 0x0a && this.#replLastCr) {
        this.#replLastCr = false;
        continue;
      }
      this.#replLastCr = byte === 0x0d;
      if (byte === 0x0d || byte === 0x0a) {
        const line = this.#replLine;
        this.#replLine = '';
        this.stats.replLines.push(line);
        out += `\r\n${replEvaluate(line)}>>> `;
      } else if (byte === 0x03) {
        this.#replLine = '';
        out += '\r\n>>> ';
      } else if (byte === 0x04) {
        this.#replLine = '';
        out += `\r\nMPY: soft reboot\r\n${this.#banner}\r\nType "help()" for more information.\r\n>>> `;
      } else if (byte === 0x08 || byte === 0x7f) {
        if (this.#replLine.length > 0) {
          this.#replLine = this.#replLine.slice(0, -1);
          out += '\b \b';
        }
      } else if (byte >= 0x20 && byte < 0x7f) {
        this.#replLine += String.fromCharCode(byte);
        out += String.fromCharCode(byte);
      }
    }
    if (out) this.#print(out);
  }
}

/** Just enough Python for tests: `print("text")` prints, anything else is silently accepted. */
function replEvaluate(line: string): string {
  const match = /^\s*print\((['"])(.*)\1\)\s*$/.exec(line);
  return match ? `${match[2]}\r\n` : '';
}

const badLength: ReplyError = { rom: ROM_ERROR.INVALID_MESSAGE, stub: STUB_ERROR.BAD_DATA_LEN };

/** The first four little-endian words of a payload (0 where the payload is shorter). */
function fields(data: Uint8Array): [number, number, number, number] {
  return [u32(data, 0), u32(data, 1), u32(data, 2), u32(data, 3)];
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Validates the common *_DATA payload: length, 0xEF-seeded XOR checksum, sequence number. */
function dataBlock(
  cmd: CommandPacket,
  session: { nextSeq: number; blocks: number },
): { seq: number; payload: Uint8Array } | ReplyError {
  if (cmd.data.length < 16) return badLength;
  const length = u32(cmd.data, 0);
  const seq = u32(cmd.data, 1);
  const payload = cmd.data.subarray(16);
  if (payload.length !== length) return badLength;
  if (cmd.checksum !== checksum(payload))
    return { rom: ROM_ERROR.CHECKSUM, stub: STUB_ERROR.BAD_DATA_CHECKSUM };
  if (seq >= session.blocks) return { rom: ROM_ERROR.RESULT_WRONG, stub: STUB_ERROR.TOO_MUCH_DATA };
  if (seq !== session.nextSeq) return { rom: ROM_ERROR.RESULT_WRONG, stub: STUB_ERROR.INVALID_COMMAND };
  return { seq, payload };
}
