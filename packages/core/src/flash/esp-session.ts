/**
 * One conversation with an ESP's serial bootloader through esptool-js: reset into the ROM loader,
 * identify the chip, load the flasher stub and raise the baud rate (or, for small changes to an
 * ESP32, keep its ROM loader, which writes compressed data and computes MD5s itself), then
 * compressed writes, MD5 checks and an explicit reset into the application.
 *
 * esptool-js drives a Web Serial port; ours is the core serial adapter over the `serialport`
 * package (real hardware, or an injected binding such as the emulator).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ESPLoader, Transport } from 'esptool-js';
import { CancelledError, describeError, MpError } from '../errors.ts';
import { type Logger, silentLogger } from '../events.ts';
import type { EspChip, FlashFreq, FlashMode, FlashSizeSetting } from '../plugin/types.ts';
import { resolveSerialBinding } from '../serial/binding.ts';
import { getWebSerialPort } from '../serial/get-port.ts';
import type { BindingInterface } from '../serial/index.ts';
import type { NodeWebSerialPort } from '../serial/web-serial-port.ts';
import type { DeflatedPayload } from './deflate.ts';
import {
  deviceLostError,
  isDamagedBlockRefusal,
  noAnswerError,
  portOpenError,
  sessionError,
} from './errors.ts';
import {
  attachRomFlash,
  changeBaudArguments,
  ROM_WRITE_BLOCK,
  romFlashDeflBegin,
  romFlashes,
  romMd5,
  sendChangeBaud,
  setFlashParameters,
} from './loaders.ts';
import {
  bootloaderResetConstructors,
  disableUsbJtagWatchdogs,
  type RestartResult,
  reenumeratesOnRestart,
  resetIntoApplication,
  restartIntoApplication,
} from './reset.ts';
import { padToWord } from './sectors.ts';

export { type DeflatedPayload, deflateForFlash } from './deflate.ts';
export { resetIntoApplication } from './reset.ts';

/** The ROM loaders of every ESP chip start at this rate. */
export const ROM_BAUD = 115200;

/**
 * The fastest rate mp syncs a ROM loader at. "The sync packets can be sent at any baud rate, and
 * the UART peripheral will detect this" (esptool docs, serial-protocol.rst, Initial
 * Synchronisation, for the ESP8266 and for the ESP32 alike); for "very high" rates the same page
 * finds CHANGE_BAUDRATE more reliable, so mp goes above this with CHANGE_BAUDRATE. The ESP8266 ROM
 * has no CHANGE_BAUDRATE at all (esptool loader.py: `change_baud` is
 * `@stub_and_esp32_function_only`): syncing fast is the only way to upload its stub faster.
 */
export const AUTOBAUD_MAX = 460800;

/**
 * The rate the port opens at and the ROM syncs at (see `autobaud`): fast for an ESP8266, and for an
 * ESP32 that stays with its ROM. The ESP32 stub is uploaded over a link synced at 115200 only: it
 * sets the UART to the rate the ROM's UART driver holds (see `#useStub`), which after an autobaud
 * sync is not documented.
 */
function syncBaudRate(options: EspConnectOptions): number {
  const fast =
    options.autobaud !== false &&
    (options.expectChip === 'ESP8266' ||
      (options.loader === 'rom' && options.expectChip !== undefined && romFlashes(options.expectChip)));
  return fast ? Math.min(options.baudRate ?? 460800, AUTOBAUD_MAX) : ROM_BAUD;
}

const CHIP_DETECT_MAGIC_REG = 0x40001000;

/** What the user sees when no rate worked: a protocol error, so a flash job starts over once. */
function baudRateError(path: string, error: BaudRateUnusable): MpError {
  return new MpError({
    code: 'DEVICE_PROTOCOL_ERROR',
    message: `The board on ${path} stopped answering after switching to ${error.baudRate} baud`,
    file: path,
    hint: 'Flash at a lower rate: --baud 460800, or 115200 if that fails too; a shorter USB cable helps at high rates.',
    cause: error.cause,
  });
}

/**
 * The chip took CHANGE_BAUDRATE but does not answer at the new rate (the adapter, cable or board
 * cannot carry it): only a reset brings it back. `EspSession.open` then connects at the fallback.
 */
class BaudRateUnusable extends Error {
  readonly baudRate: number;

  constructor(baudRate: number, cause: unknown) {
    super(`no answer at ${baudRate} baud`, { cause });
    this.baudRate = baudRate;
  }
}

export interface EspConnectOptions {
  /** Serial port path, e.g. `/dev/ttyUSB0`. */
  path: string;
  /** Default: `MP_SERIAL_BINDING`, else real hardware. */
  binding?: BindingInterface;
  /** Baud rate for the writes (the board's, or --baud). Default 460800. */
  baudRate?: number;
  /**
   * The rate to fall back to when the adapter refuses `baudRate` or the link does not carry it
   * (the board's default under `--baud 1500000`). Default: none, the connection fails instead.
   */
  fallbackBaudRate?: number;
  /**
   * `stub` (default): load the flasher stub while connecting, as esptool does. `rom`: stay with the
   * chip's ROM loader where it can write compressed data and compute MD5s itself (ESP32, see
   * `romFlashes`; esptool `--no-stub`). An ESP8266 gets the stub either way.
   */
  loader?: 'stub' | 'rom';
  /**
   * Sync the ROM right at `baudRate` (at most `AUTOBAUD_MAX`) instead of at 115200, where that
   * saves time (see `syncBaudRate`). Default true; `open` falls back to 115200 by itself.
   */
  autobaud?: boolean;
  /**
   * The flash size mp found on the board with this MAC before (its device record): taken instead
   * of reading the flash chip's JEDEC id, which costs ten register commands.
   */
  knownFlashSize?: (mac: string) => Promise<string | undefined>;
  /** The chip the board plugin expects; another one is refused before anything is written. */
  expectChip?: EspChip;
  /** Board id, for messages. */
  boardId?: string;
  /** The chip the image's header names, and the file: another chip on the port is refused too. */
  image?: { chip: string; file: string };
  signal?: AbortSignal;
  logger?: Logger;
  /** Reset-and-sync attempts before giving up (esptool's default: 7). */
  connectAttempts?: number;
}

/** What the board told us about itself. */
export interface EspDeviceInfo {
  /** esptool's chip name: `ESP8266`, `ESP32`, `ESP32-S3`… */
  chip: string;
  /** e.g. `ESP8266EX`, `ESP32-D0WD-V3 (revision v3.1)`. */
  description: string;
  /** `5c:cf:7f:0a:1b:2c` */
  mac: string;
  /** Detected from the flash chip's JEDEC id, e.g. `4MB`; undefined when it could not be read. */
  flashSize: string | undefined;
  flashSizeBytes: number | undefined;
  /** The baud rate in use now. */
  baudRate: number;
}

interface Esptool {
  ESPLoader: typeof ESPLoader;
  CountingTransport: ReturnType<typeof defineCountingTransport>;
}

let esptool: Promise<Esptool> | undefined;

/**
 * esptool-js (with the flasher stubs of every chip) and our Transport subclass, imported when a
 * board is first connected: every command imports core, and only flashing needs them.
 */
function loadEsptool(): Promise<Esptool> {
  esptool ??= import('esptool-js').then((module) => ({
    ESPLoader: module.ESPLoader,
    CountingTransport: defineCountingTransport(module.Transport),
  }));
  return esptool;
}

/**
 * esptool-js's Transport with three changes: trace lines go to our logger instead of
 * `console.log` (esptool-js prints some unconditionally), bytes sent are counted, and once the
 * device is gone every read and write fails at once instead of waiting for its timeout. Defined
 * once esptool-js is loaded (see `loadEsptool`).
 */
function defineCountingTransport(Base: typeof Transport) {
  return class CountingTransport extends Base {
    bytesSent = 0;
    lost = false;
    openError: MpError | undefined;
    readonly #log: (line: string) => void;
    readonly #path: string;

    /** Wakes a `read` waiting for bytes (see the constructor). */
    #wake: (() => void) | undefined;

    constructor(port: NodeWebSerialPort, log: (line: string) => void) {
      super(port as never, false);
      this.#log = log;
      this.#path = port.path;
      // esptool-js's read loop appends to `buffer`; its `read` polls that every millisecond
      // (`sleep(1)`), a timer tick of latency per answer. Seeing the appends lets `read` wait for them.
      let buffer = (this as unknown as { buffer: Uint8Array }).buffer;
      Object.defineProperty(this, 'buffer', {
        get: () => buffer,
        set: (value: Uint8Array) => {
          const grew = value.length > buffer.length;
          buffer = value;
          if (grew) this.#wake?.();
        },
      });
    }

    override trace(message: string): void {
      this.#log(message);
    }

    override async connect(baud?: number, serialOptions?: object): Promise<void> {
      try {
        await super.connect(baud, serialOptions as never);
      } catch (error) {
        this.openError = portOpenError(this.#path, error);
        throw this.openError;
      }
    }

    override async write(data: Uint8Array): Promise<void> {
      if (this.lost) throw new DOMException('The device has been lost.', 'NetworkError');
      let escapes = 0;
      for (const byte of data) if (byte === 0xc0 || byte === 0xdb) escapes++;
      this.bytesSent += data.length + escapes + 2;
      await super.write(data);
    }

    override async read(timeout: number): Promise<Uint8Array> {
      if (this.lost) throw new DOMException('The device has been lost.', 'NetworkError');
      if ((this as unknown as { buffer: Uint8Array }).buffer.length > 0) return super.read(timeout);
      const arrived = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => settle(false), timeout);
        const settle = (value: boolean) => {
          clearTimeout(timer);
          this.#wake = undefined;
          resolve(value);
        };
        this.#wake = () => settle(true);
      });
      if (this.lost) throw new DOMException('The device has been lost.', 'NetworkError');
      // Nothing came within the timeout: esptool-js's read fails the same way, without waiting again.
      return super.read(arrived ? timeout : 0);
    }

    /** Ends esptool-js's read loop, leaving the port open (for a monitor) or ready to close. */
    async stopReading(): Promise<void> {
      const reader = (this as unknown as { reader?: ReadableStreamDefaultReader<Uint8Array> }).reader;
      await reader?.cancel().catch(() => {});
      // The read loop releases its lock on the next tick.
      for (let i = 0; i < 50 && this.device.readable?.locked; i++) await sleep(2);
    }
  };
}

type CountingTransport = InstanceType<Esptool['CountingTransport']>;

/**
 * esptool-js identifies a chip by GET_SECURITY_INFO first and reads the magic register only when
 * the ROM answers it as unsupported, which it then waits out (`drainInput`: 100 ms of silence). The
 * ESP8266 and ESP32 ROMs never have that command (esptool-js targets: `USES_MAGIC_VALUE`, skipped by
 * `romFromChipId`), so the magic register goes first here, and only another chip is asked for its
 * security info, as before.
 */
function identifyByMagicFirst(loader: ESPLoader): void {
  interface Identification {
    identifyChip(): Promise<ESPLoader['chip']>;
    chipFromMagicValue(): Promise<ESPLoader['chip']>;
  }
  const internals = loader as unknown as Identification;
  const bySecurityInfo = internals.identifyChip.bind(loader);
  internals.identifyChip = async () => {
    const byMagic = await internals.chipFromMagicValue().catch(() => undefined);
    return byMagic && MAGIC_ONLY_CHIPS.has(byMagic.CHIP_NAME) ? byMagic : bySecurityInfo();
  };
}

const MAGIC_ONLY_CHIPS = new Set(['ESP8266', 'ESP32']);

/**
 * eFuse words do not change while mp talks to a chip, but esptool-js reads some several times
 * (the ESP32's word 3 three times for its description) and `attachRomFlash` reads them again:
 * each read is a round trip. The eFuse read registers of the ESP8266 (esptool esp8266.py
 * `ESP_OTP_MAC0`…`3`, 0x3FF00050-0x3FF0005C) and the ESP32 (`EFUSE_RD_REG_BASE` 0x3FF5A000) are
 * read once per session.
 */
function cacheEfuseReads(loader: ESPLoader): void {
  const read = loader.readReg.bind(loader);
  const known = new Map<number, number>();
  const isEfuse = (addr: number) =>
    (addr >= 0x3ff00050 && addr <= 0x3ff0005c) || (addr >= 0x3ff5a000 && addr < 0x3ff5a100);
  loader.readReg = async (addr: number, timeout?: number) => {
    if (!isEfuse(addr)) return read(addr, timeout);
    const cached = known.get(addr);
    if (cached !== undefined) return cached;
    const value = await read(addr, timeout);
    known.set(addr, value);
    return value;
  };
}

function flashSizeBytes(size: string | undefined): number | undefined {
  const m = size ? /^(\d+)(KB|MB)$/.exec(size) : null;
  if (!m) return undefined;
  return Number(m[1]) * (m[2] === 'KB' ? 1024 : 1024 * 1024);
}

/** A connected board with the flasher stub running. Always `close()` it (or hand its port on). */
export class EspSession {
  readonly path: string;
  readonly port: NodeWebSerialPort;
  info!: EspDeviceInfo;
  readonly #transport: CountingTransport;
  readonly #loader: ESPLoader;
  readonly #logger: Logger;
  readonly #binding: BindingInterface | undefined;
  readonly #interrupted: Promise<never>;
  #closed = false;
  #released = false;
  #onDisconnect: () => void = () => {};
  #onAbort: () => void = () => {};
  readonly #signal: AbortSignal | undefined;
  /** [wanted, fallback] rates for the flash work. */
  #baudRates: [number, number | undefined] = [460800, undefined];
  #loaderKind: 'rom' | 'stub' = 'rom';

  private constructor(
    port: NodeWebSerialPort,
    options: EspConnectOptions,
    { ESPLoader, CountingTransport }: Esptool,
  ) {
    this.path = options.path;
    this.port = port;
    this.#logger = options.logger ?? silentLogger;
    this.#binding = options.binding;
    this.#signal = options.signal;
    const debug = (line: string) => {
      const text = line.trim();
      if (text) this.#logger.debug(text);
    };
    this.#transport = new CountingTransport(port, debug);
    this.#loader = new ESPLoader({
      transport: this.#transport,
      baudrate: options.baudRate ?? 460800,
      romBaudrate: syncBaudRate(options),
      terminal: { clean: () => {}, writeLine: debug, write: debug },
      // esptool-js still chooses USB-JTAG or classic from the USB ids; the sequences are reset.ts's.
      resetConstructors: bootloaderResetConstructors(port),
    });
    // `writeDeflated` decides itself which blocks may be sent again.
    this.#loader.WRITE_BLOCK_ATTEMPTS = 1;
    identifyByMagicFirst(this.#loader);
    cacheEfuseReads(this.#loader);
    this.#interrupted = new Promise<never>((_, reject) => {
      this.#onDisconnect = () => {
        this.#transport.lost = true;
        reject(new DOMException('The device has been lost.', 'NetworkError'));
      };
      this.#onAbort = () => reject(new CancelledError('flash'));
    });
    // Nobody may be waiting when the device goes away; the rejection is seen by the next call.
    this.#interrupted.catch(() => {});
    port.addEventListener('disconnect', this.#onDisconnect);
    if (options.signal?.aborted) this.#onAbort();
    options.signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  /** Bytes sent to the board so far (SLIP frames, all commands). */
  get bytesSent(): number {
    return this.#transport.bytesSent;
  }

  /** Who answers now: the chip's ROM loader, or the flasher stub mp uploaded. */
  get loader(): 'rom' | 'stub' {
    return this.#loaderKind;
  }

  /** True once the USB device went away. */
  get lost(): boolean {
    return this.#transport.lost;
  }

  /**
   * Resets the board into its ROM loader, checks the chip, loads the stub and raises the baud rate.
   * Wrong chip, busy port, missing permission and silence come back as MpErrors that say what to do.
   */
  static async connect(options: EspConnectOptions): Promise<EspSession> {
    const esptool = await loadEsptool();
    const binding = await resolveSerialBinding(options.binding);
    const port = await getWebSerialPort(options.path, { binding });
    const session = new EspSession(port, { ...options, binding }, esptool);
    try {
      await session.#connect(options);
      return session;
    } catch (error) {
      await session.close();
      throw error;
    }
  }

  /**
   * `connect` with the fallbacks of a fast start: an ESP8266 that does not answer SYNCs at the fast
   * rate (two resets) is synced at 115200 (see `autobaud`), and a chip that stops answering after
   * switching to `baudRate` is reset and connected at `fallbackBaudRate`.
   */
  static async open(options: EspConnectOptions): Promise<EspSession> {
    const logger = options.logger ?? silentLogger;
    const sync = syncBaudRate(options);
    if (sync !== ROM_BAUD) {
      try {
        const attempts = Math.min(2, options.connectAttempts ?? 7);
        return await EspSession.#openAt({ ...options, connectAttempts: attempts });
      } catch (error) {
        if (!(error instanceof MpError && error.code === 'DEVICE_NO_ANSWER')) throw error;
        logger.warn(`No answer from ${options.path} at ${sync} baud; trying at ${ROM_BAUD} baud.`);
      }
    }
    return EspSession.#openAt({ ...options, autobaud: false });
  }

  static async #openAt(options: EspConnectOptions): Promise<EspSession> {
    try {
      return await EspSession.connect(options);
    } catch (error) {
      if (!(error instanceof BaudRateUnusable)) throw error;
      const fallback = options.fallbackBaudRate;
      if (fallback === undefined || fallback === error.baudRate) throw baudRateError(options.path, error);
      (options.logger ?? silentLogger).warn(
        `The board on ${options.path} does not answer at ${error.baudRate} baud; connecting again at ${fallback} baud.`,
      );
      try {
        return await EspSession.connect({ ...options, baudRate: fallback, fallbackBaudRate: undefined });
      } catch (again) {
        throw again instanceof BaudRateUnusable ? baudRateError(options.path, again) : again;
      }
    }
  }

  async #connect(options: EspConnectOptions): Promise<void> {
    const loader = this.#loader;
    try {
      await this.#run('connecting', () => loader.detectChip('default_reset', options.connectAttempts ?? 7));
    } catch (error) {
      if (this.#transport.openError) throw this.#transport.openError;
      // esptool-js gives up with "Failed to connect with the device" when no SYNC was answered.
      const silent = error instanceof MpError && /Failed to connect/.test(describeError(error.cause));
      if (silent) throw noAnswerError(this.path, error.cause);
      throw error;
    }
    const chip = loader.chip.CHIP_NAME;
    if (options.expectChip && chip !== options.expectChip) {
      // Leave the board running what it ran before; nothing was written.
      await this.resetToApp().catch(() => {});
      throw new MpError({
        code: 'WRONG_CHIP',
        message: `The board on ${this.path} is an ${chip}, but ${options.boardId ? `board ${options.boardId} is` : 'the firmware is for'} an ${options.expectChip}`,
        file: this.path,
        plugin: options.boardId,
        hint: `Connect the ${options.expectChip} board (or name its port with --port), or flash a firmware built for the ${chip}: \`mp build --board <id>\` with a board for ${chip} (see \`mp boards\`).`,
      });
    }
    if (options.image && chip !== options.image.chip) {
      await this.resetToApp().catch(() => {});
      throw new MpError({
        code: 'IMAGE_WRONG_CHIP',
        message: `${options.image.file} is a firmware image for the ${options.image.chip}, but the board on ${this.path} is an ${chip}`,
        file: options.image.file,
        plugin: options.boardId,
        hint: `Nothing was written. Connect the ${options.image.chip} board (or name its port with --port), or flash a firmware built for the ${chip}.`,
      });
    }
    const description = await this.#run('reading the chip', () => loader.chip.getChipDescription(loader));
    const mac = await this.#run('reading the MAC address', () => loader.chip.readMac(loader));
    if (loader.chip.postConnect) await this.#run('connecting', () => loader.chip.postConnect!(loader));
    await this.#run('connecting', () => disableUsbJtagWatchdogs(loader, this.port.getInfo()));
    this.info = {
      chip,
      description,
      mac,
      flashSize: undefined,
      flashSizeBytes: undefined,
      baudRate: this.#transport.baudrate,
    };
    await this.#startLoader(options);
  }

  /**
   * Gets the session ready for flash work at the requested rate: with the stub, esptool's way
   * (upload, then CHANGE_BAUDRATE), or with the ROM where it can do the job (esptool `--no-stub`:
   * CHANGE_BAUDRATE, SPI_ATTACH, SPI_SET_PARAMS). Then reads the flash size.
   */
  async #startLoader(options: EspConnectOptions): Promise<void> {
    const loader = this.#loader;
    this.#baudRates = [options.baudRate ?? 460800, options.fallbackBaudRate];
    // A SYNC answered with 0 comes from a stub still running (no reset happened): use it.
    const stubRunning = (loader as unknown as { syncStubDetected: boolean }).syncStubDetected;
    if (options.loader !== 'rom' || !romFlashes(this.info.chip) || stubRunning) {
      await this.#useStub();
    } else {
      await this.#raiseBaudRate();
      await this.#run('attaching the flash', () => attachRomFlash(loader));
    }
    try {
      const known = await options.knownFlashSize?.(this.info.mac);
      const flashSize = known ?? (await this.#run('reading the flash id', () => loader.detectFlashSize()));
      this.info.flashSize = flashSize;
      this.info.flashSizeBytes = flashSizeBytes(flashSize);
    } catch (error) {
      if (this.lost || (error instanceof MpError && error.code === 'CANCELLED')) throw error;
      this.#logger.warn(
        `Could not read the flash size of the ${this.info.chip} on ${this.path}; the image is not checked against it.`,
      );
    }
    const size = this.info.flashSizeBytes;
    if (this.#loaderKind === 'rom' && size !== undefined) {
      await this.#run('configuring the flash', () => setFlashParameters(loader, size));
    }
  }

  /**
   * Uploads and starts the flasher stub (unless it runs already), then raises the rate. The
   * ESP8266's stub leaves the UART as the ROM's autobaud set it (esp-flasher-stub src/main.c:
   * `stub_lib_clock_init` only for USB transports). The ESP32's sets it to the rate the ROM's UART
   * driver holds (`stub_lib_uart_rominit_get_baudrate`): 115200 on a link synced there, which is
   * why `syncBaudRate` syncs an ESP32 fast only when it stays with its ROM.
   */
  async #useStub(): Promise<void> {
    if (this.#loaderKind === 'stub') return;
    const loader = this.#loader;
    await this.#run('loading the flasher stub', () => loader.runStub());
    this.#loaderKind = 'stub';
    await this.#raiseBaudRate();
  }

  /**
   * From the link's rate to the wanted one; where the serial adapter refuses that, to the fallback.
   * Throws `BaudRateUnusable` when the chip switched but does not answer at the new rate.
   */
  async #raiseBaudRate(): Promise<void> {
    for (const rate of this.#baudRates) {
      if (rate === undefined) continue;
      if (rate === this.#transport.baudrate) return;
      if (!(await this.#adapterTakes(rate))) {
        this.#logger.warn(`The serial adapter of ${this.path} does not take ${rate} baud.`);
        continue;
      }
      await this.#changeBaudRate(rate);
      return;
    }
  }

  /** Whether the host side can run at `rate`: set it and go back, before the chip is asked to. */
  async #adapterTakes(rate: number): Promise<boolean> {
    const current = this.#transport.baudrate;
    try {
      await this.port.setBaudRate(rate);
      return true;
    } catch (error) {
      this.#logger.debug(`setting the port to ${rate} baud: ${describeError(error)}`);
      return false;
    } finally {
      await this.port.setBaudRate(current).catch(() => {});
    }
  }

  /** CHANGE_BAUDRATE to the loader running now, the host follows, and a register read proves the link. */
  async #changeBaudRate(rate: number): Promise<void> {
    const loader = this.#loader;
    const current = this.#transport.baudrate;
    const args = await this.#run('changing the baud rate', () =>
      changeBaudArguments(loader, this.#loaderKind === 'stub', rate, current),
    );
    this.#logger.debug(
      `changing the baud rate from ${current} to ${rate} (CHANGE_BAUDRATE ${args.join(', ')})`,
    );
    await this.#run('changing the baud rate', () => sendChangeBaud(loader, args));
    await this.#transport.changeBaudrate(rate);
    let last: unknown;
    // The stub switches 5 ms after its answer (esp-stub-lib uart.c `rominit_set_baudrate`); the
    // ROM's timing is not documented (esptool waits 50 ms): probe early, then again.
    for (const wait of this.#loaderKind === 'stub' ? [6, 20, 50] : [1, 20, 50]) {
      await sleep(wait);
      this.#transport.flushInput();
      try {
        await this.#run('changing the baud rate', () => loader.readReg(CHIP_DETECT_MAGIC_REG, 100));
        this.info.baudRate = rate;
        return;
      } catch (error) {
        if (this.lost || (error instanceof MpError && error.code === 'CANCELLED')) throw error;
        last = error;
      }
    }
    throw new BaudRateUnusable(rate, last);
  }

  /** Runs one esptool-js call, failing at once when the device goes away or the user cancels. */
  async #run<T>(during: string, work: () => Promise<T>): Promise<T> {
    if (this.#signal?.aborted) throw new CancelledError(during);
    if (this.lost) throw deviceLostError(this.path, during);
    const promise = work();
    promise.catch(() => {});
    try {
      return await Promise.race([promise, this.#interrupted]);
    } catch (error) {
      throw sessionError(this.path, during, error, this.lost);
    }
  }

  /**
   * The image as it will sit in flash: esptool rewrites the flash mode/frequency/size bytes of the
   * header of an image at the chip's bootloader offset unless told `keep` (and `detect` means the
   * size found on this board). Doing it here, before hashing, keeps the delta bookkeeping exact.
   */
  async imageAsWritten(
    data: Uint8Array,
    offset: number,
    mode: FlashMode,
    freq: FlashFreq,
    size: FlashSizeSetting,
  ): Promise<Uint8Array> {
    const resolvedSize = size === 'detect' ? (this.info.flashSize ?? 'keep') : size;
    if (mode === 'keep' && freq === 'keep' && resolvedSize === 'keep') return data;
    // esptool-js's image parser reports odd segments with console.warn; core never prints.
    const warn = console.warn;
    console.warn = (...args: unknown[]) => this.#logger.debug(args.map(String).join(' '));
    try {
      return await this.#loader._updateImageFlashParams(
        padToWord(data),
        offset,
        mode,
        freq,
        resolvedSize as never,
      );
    } catch (error) {
      // A size the chip's header cannot express (e.g. 32MB on an ESP8266): leave the header alone.
      this.#logger.debug(
        `flash header left unchanged: ${error instanceof Error ? error.message : String(error)}`,
      );
      return data;
    } finally {
      console.warn = warn;
    }
  }

  /**
   * Writes one deflate stream (see `deflateForFlash`) at `offset`; the stub inflates, erases and
   * writes as it goes. `onProgress` gets the compressed bytes sent so far.
   */
  async writeDeflated(
    offset: number,
    payload: DeflatedPayload,
    onProgress?: (sent: number) => void,
  ): Promise<void> {
    const loader = this.#loader;
    const { size, compressed } = payload;
    const during = `the write at 0x${offset.toString(16)}`;
    const inRom = this.#loaderKind === 'rom';
    const blocks = await this.#run(during, () =>
      inRom
        ? romFlashDeflBegin(loader, size, compressed.length, offset)
        : loader.flashDeflBegin(size, compressed.length, offset),
    );
    const blockSize = inRom ? ROM_WRITE_BLOCK : loader.FLASH_WRITE_SIZE;
    const ratio = size / compressed.length;
    const blockTimeout = (block: Uint8Array) =>
      Math.max(5000, loader.timeoutPerMb(loader.ERASE_WRITE_TIMEOUT_PER_MB, block.length * ratio * 2));
    let sent = 0;
    let timeout = 5000;
    for (let seq = 0; seq < blocks; seq++) {
      const block = compressed.subarray(seq * blockSize, (seq + 1) * blockSize);
      // The stub acknowledges a block on receipt and writes it while the next one arrives, so
      // this block's answer may wait for the previous block's erase and write; the ROM answers a
      // block once it is written.
      if (inRom) timeout = blockTimeout(block);
      for (let attempt = 1; ; attempt++) {
        try {
          await this.#run(during, () => loader.flashDeflBlock(block, seq, timeout));
          break;
        } catch (error) {
          // Sent again only when the stub said the block arrived damaged, so it did not take it.
          // Without an answer the block may have been taken, and the stub does not check sequence
          // numbers: it would inflate the block twice and go wrong (the caller starts over instead).
          if (attempt === 3 || !isDamagedBlockRefusal(error)) throw error;
          this.#logger.debug(`block ${seq} at 0x${offset.toString(16)} arrived damaged; sending it again`);
          await sleep(loader.WRITE_BLOCK_RETRY_DELAY_MS);
        }
      }
      timeout = blockTimeout(block);
      sent += block.length;
      onProgress?.(sent);
    }
    // To the ROM FLASH_DEFL_END would leave the loader and run the application (esptool
    // `flash_defl_finish`: "skip sending flash_finish to ROM loader"); its last answer came after
    // the last write. The stub's comes once the data it still holds is written.
    if (!inRom) await this.#run(during, () => loader.flashDeflFinish(false, timeout));
  }

  /** MD5 (hex) of `size` bytes of flash at `offset`, computed by the board. */
  md5(offset: number, size: number): Promise<string> {
    const loader = this.#loader;
    return this.#run('the MD5 check', () =>
      this.#loaderKind === 'rom' ? romMd5(loader, offset, size) : loader.flashMd5sum(offset, size),
    );
  }

  /**
   * Erases the whole flash (the stub's ERASE_FLASH, 0xD0: esptool's `erase_flash`, esptool-js
   * `ESPLoader.eraseFlash`, which waits up to its CHIP_ERASE_TIMEOUT for a chip erase).
   */
  async eraseFlash(): Promise<void> {
    if (this.#loaderKind !== 'stub') {
      throw new MpError({
        code: 'INTERNAL',
        message: 'erasing the whole flash needs the flasher stub: connect with loader: "stub"',
      });
    }
    await this.#run('erasing the flash', () => this.#loader.eraseFlash());
  }

  /**
   * Restarts the board into its application (see `resetIntoApplication`), without waiting for a
   * board on its own USB to come back: after an error, or when nothing was written.
   */
  async resetToApp(): Promise<void> {
    if (this.lost || this.#closed) return;
    await resetIntoApplication(this.port, { lossExpected: reenumeratesOnRestart(this.port.getInfo()) });
  }

  /**
   * Restarts the board into its application and tells where it is then: a board on the chip's own
   * USB (ESP32-S3/C3 USB-Serial/JTAG) leaves the bus and may come back under another name.
   */
  async restart(options: { signal?: AbortSignal } = {}): Promise<RestartResult> {
    if (this.lost || this.#closed) return { path: undefined, reenumerated: false };
    return restartIntoApplication(this.port, {
      binding: this.#binding,
      signal: options.signal,
      logger: this.#logger,
    });
  }

  /**
   * Ends the bootloader conversation but keeps the port open and returns it: the serial monitor
   * takes it over, so nothing the application prints after the reset is missed.
   */
  async releasePort(): Promise<NodeWebSerialPort> {
    await this.#transport.stopReading();
    this.#detach();
    this.#released = true;
    return this.port;
  }

  /** Releases the port. Safe to call twice, after a device loss, or after `releasePort()` (then a no-op). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#released) return;
    this.#detach();
    await this.#transport.stopReading().catch(() => {});
    await this.port.close().catch(() => {});
  }

  #detach(): void {
    this.port.removeEventListener('disconnect', this.#onDisconnect);
    this.#signal?.removeEventListener('abort', this.#onAbort);
  }
}
