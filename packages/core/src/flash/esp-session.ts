/**
 * One conversation with an ESP's serial bootloader through esptool-js: reset into the ROM loader,
 * identify the chip, load the flasher stub, raise the baud rate, then compressed writes, MD5
 * checks and an explicit reset into the application.
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
import {
  deviceLostError,
  isDamagedBlockRefusal,
  noAnswerError,
  portOpenError,
  sessionError,
} from './errors.ts';
import {
  bootloaderResetConstructors,
  disableUsbJtagWatchdogs,
  type RestartResult,
  reenumeratesOnRestart,
  resetIntoApplication,
  restartIntoApplication,
} from './reset.ts';
import type { DeflatedPayload } from './deflate.ts';
import { padToWord } from './sectors.ts';

export { resetIntoApplication } from './reset.ts';

export { type DeflatedPayload, deflateForFlash } from './deflate.ts';

/** The ROM loaders of every ESP chip start at this rate. */
export const ROM_BAUD = 115200;

export interface EspConnectOptions {
  /** Serial port path, e.g. `/dev/ttyUSB0`. */
  path: string;
  /** Default: `MP_SERIAL_BINDING`, else real hardware. */
  binding?: BindingInterface;
  /** Baud rate once the stub runs (the board's, or --baud). Default 460800. */
  baudRate?: number;
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
  /** The baud rate in use after the stub started. */
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

    constructor(port: NodeWebSerialPort, log: (line: string) => void) {
      super(port as never, false);
      this.#log = log;
      this.#path = port.path;
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
      return super.read(timeout);
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
      romBaudrate: ROM_BAUD,
      terminal: { clean: () => {}, writeLine: debug, write: debug },
      // esptool-js still chooses USB-JTAG or classic from the USB ids; the sequences are reset.ts's.
      resetConstructors: bootloaderResetConstructors(port),
    });
    // `writeDeflated` decides itself which blocks may be sent again.
    this.#loader.WRITE_BLOCK_ATTEMPTS = 1;
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
    await this.#run('loading the flasher stub', () => loader.runStub());
    if ((options.baudRate ?? 460800) !== ROM_BAUD) {
      await this.#run('changing the baud rate', () => loader.changeBaud());
    }
    let flashSize: string | undefined;
    try {
      flashSize = await this.#run('reading the flash id', () => loader.detectFlashSize());
    } catch (error) {
      if (this.lost || (error instanceof MpError && error.code === 'CANCELLED')) throw error;
      this.#logger.warn(
        `Could not read the flash size of the ${chip} on ${this.path}; the image is not checked against it.`,
      );
    }
    this.info = {
      chip,
      description,
      mac,
      flashSize,
      flashSizeBytes: flashSizeBytes(flashSize),
      baudRate: this.#transport.baudrate,
    };
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
    const blocks = await this.#run(during, () => loader.flashDeflBegin(size, compressed.length, offset));
    const blockSize = loader.FLASH_WRITE_SIZE;
    const ratio = size / compressed.length;
    let sent = 0;
    let timeout = 5000;
    for (let seq = 0; seq < blocks; seq++) {
      const block = compressed.subarray(seq * blockSize, (seq + 1) * blockSize);
      // The stub acknowledges a block on receipt and writes it while the next one arrives, so
      // this block's answer may wait for the previous block's erase and write.
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
      timeout = Math.max(5000, loader.timeoutPerMb(loader.ERASE_WRITE_TIMEOUT_PER_MB, block.length * ratio));
      sent += block.length;
      onProgress?.(sent);
    }
    await this.#run(during, () => loader.flashDeflFinish(false, timeout));
  }

  /** MD5 (hex) of `size` bytes of flash at `offset`, computed by the board. */
  md5(offset: number, size: number): Promise<string> {
    return this.#run('the MD5 check', () => this.#loader.flashMd5sum(offset, size));
  }

  /**
   * Erases the whole flash (the stub's ERASE_FLASH, 0xD0: esptool's `erase_flash`, esptool-js
   * `ESPLoader.eraseFlash`, which waits up to its CHIP_ERASE_TIMEOUT for a chip erase).
   */
  async eraseFlash(): Promise<void> {
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
