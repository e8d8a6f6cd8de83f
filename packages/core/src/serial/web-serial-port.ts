import type { SerialPortStream } from '@serialport/stream';
import { defaultSerialBinding } from './binding.ts';
import type { BindingInterface } from './binding-types.cts';
import type {
  WebSerialInputSignals,
  WebSerialOpenOptions,
  WebSerialOutputSignals,
  WebSerialPortInfo,
} from './web-serial-types.ts';

let serialPortStream: Promise<typeof SerialPortStream> | undefined;

/** @serialport/stream, imported when a port is first opened: every command imports core, few open a port. */
function loadSerialPortStream(): Promise<typeof SerialPortStream> {
  serialPortStream ??= import('@serialport/stream').then((module) => module.SerialPortStream);
  return serialPortStream;
}

export interface NodeWebSerialPortOptions {
  /** Where the bytes go. Default: the real hardware binding of the `serialport` package. */
  binding?: BindingInterface | undefined;
  /** What `getInfo()` reports (USB ids). `getWebSerialPort` fills it from the binding's port list. */
  info?: WebSerialPortInfo | undefined;
  /** The USB device's serial number, if it has one (Web Serial does not tell; the listing does). */
  serialNumber?: string | undefined;
}

type PortState = 'closed' | 'opening' | 'opened' | 'closing';

const DEFAULT_BUFFER_SIZE = 255;

/** Settings every SerialPortStream.set() call sends; the stream would fill omitted ones with dtr/rts=true. */
interface ControlLines {
  dtr: boolean;
  rts: boolean;
  brk: boolean;
}

/**
 * A Web Serial `SerialPort` (what esptool-js's `Transport` expects) on top of a serialport binding,
 * so one code path drives real hardware (bindings-cpp) and the emulator binding alike.
 *
 * Differences from the browser, on purpose:
 * - `close()` never rejects because a stream is locked: pending reads end with `done`, pending
 *   writes reject, then the port is released. Tearing down after an error must always work.
 * - `setBaudRate()` changes the baud rate in place (esptool-js uses it instead of close + reopen,
 *   which would toggle DTR/RTS and can reset the board).
 */
export class NodeWebSerialPort extends EventTarget {
  readonly path: string;
  /** The USB serial number from the port listing: finds the board again under another name. */
  readonly serialNumber: string | undefined;
  readonly #binding: BindingInterface | undefined;
  readonly #info: WebSerialPortInfo;
  #state: PortState = 'closed';
  #stream: SerialPortStream | null = null;
  #lost = false;
  #baudRate = 0;
  #bufferSize = DEFAULT_BUFFER_SIZE;
  #lines: ControlLines = { dtr: true, rts: true, brk: false };
  #readable: ReadableStream<Uint8Array> | null = null;
  #endReadable: (() => void) | null = null;
  #failReadable: ((error: unknown) => void) | null = null;
  #writable: WritableStream<Uint8Array> | null = null;
  #failWritable: ((error: unknown) => void) | null = null;
  #closing: Promise<void> | null = null;

  constructor(path: string, options: NodeWebSerialPortOptions = {}) {
    super();
    this.path = path;
    this.serialNumber = options.serialNumber;
    this.#binding = options.binding;
    this.#info = { ...options.info };
  }

  /** True while the port is open and the device has not gone away. */
  get isOpen(): boolean {
    return this.#state === 'opened' && !this.#lost;
  }

  /** False once the device went away (e.g. USB unplug) until the port is closed. */
  get connected(): boolean {
    return !this.#lost;
  }

  /** The host-side baud rate, 0 when closed. */
  get baudRate(): number {
    return this.#state === 'opened' ? this.#baudRate : 0;
  }

  /** Created on first access while open; after a cancel or `writer.close()` a fresh one is made. */
  get readable(): ReadableStream<Uint8Array> | null {
    if (this.#readable) return this.#readable;
    if (this.#state !== 'opened' || this.#lost || !this.#stream) return null;
    this.#readable = this.#createReadable(this.#stream);
    return this.#readable;
  }

  get writable(): WritableStream<Uint8Array> | null {
    if (this.#writable) return this.#writable;
    if (this.#state !== 'opened' || this.#lost || !this.#stream) return null;
    this.#writable = this.#createWritable(this.#stream);
    return this.#writable;
  }

  getInfo(): WebSerialPortInfo {
    return { ...this.#info };
  }

  async open(options: WebSerialOpenOptions): Promise<void> {
    if (this.#state !== 'closed') throw new DOMException('The port is already open.', 'InvalidStateError');
    const { baudRate } = options;
    if (!Number.isInteger(baudRate) || baudRate <= 0) {
      throw new TypeError(`baudRate must be a positive integer, got ${baudRate}`);
    }
    const bufferSize = options.bufferSize ?? DEFAULT_BUFFER_SIZE;
    if (!Number.isInteger(bufferSize) || bufferSize <= 0) {
      throw new TypeError(`bufferSize must be a positive integer, got ${bufferSize}`);
    }
    this.#state = 'opening';
    let stream: SerialPortStream;
    try {
      const binding = this.#binding ?? (await defaultSerialBinding());
      const SerialPortStream = await loadSerialPortStream();
      stream = new SerialPortStream({
        binding,
        path: this.path,
        baudRate,
        dataBits: options.dataBits ?? 8,
        stopBits: options.stopBits ?? 1,
        parity: options.parity ?? 'none',
        rtscts: options.flowControl === 'hardware',
        autoOpen: false,
      });
      // Failures reach callers through the web streams and promises; a Duplex 'error' event
      // without a listener would crash the process instead.
      stream.on('error', () => {});
      await new Promise<void>((resolve, reject) => {
        stream.open((error) => (error ? reject(error) : resolve()));
      });
    } catch (error) {
      this.#state = 'closed';
      throw new DOMException(`Failed to open serial port ${this.path}: ${messageOf(error)}`, {
        name: 'NetworkError',
        cause: error,
      });
    }
    stream.on('close', (error: unknown) => {
      if (this.#stream === stream && isDisconnect(error)) this.#deviceLost();
    });
    this.#stream = stream;
    this.#baudRate = baudRate;
    this.#bufferSize = bufferSize;
    this.#lost = false;
    // Opening a tty asserts DTR and RTS; later setSignals() calls change one line and keep the other.
    this.#lines = { dtr: true, rts: true, brk: false };
    this.#state = 'opened';
  }

  /**
   * Sets DTR / RTS / break. Every call sends both DTR and RTS to the binding, the one not given
   * keeping its last value: serialport would otherwise assert the missing line, and on an ESP
   * auto-reset circuit that resets the chip or pulls GPIO0 low.
   */
  async setSignals(signals: WebSerialOutputSignals): Promise<void> {
    const stream = this.#openStream();
    const { dataTerminalReady, requestToSend } = signals;
    const brk = signals.break;
    if (dataTerminalReady === undefined && requestToSend === undefined && brk === undefined) {
      throw new TypeError('setSignals() needs at least one of dataTerminalReady, requestToSend, break');
    }
    const next: ControlLines = {
      dtr: dataTerminalReady ?? this.#lines.dtr,
      rts: requestToSend ?? this.#lines.rts,
      brk: brk ?? this.#lines.brk,
    };
    await new Promise<void>((resolve, reject) => {
      stream.set({ dtr: next.dtr, rts: next.rts, brk: next.brk }, (error) =>
        error ? reject(this.#mapError(error)) : resolve(),
      );
    });
    this.#lines = next;
  }

  async getSignals(): Promise<WebSerialInputSignals> {
    const stream = this.#openStream();
    const status = await new Promise<{ cts: boolean; dsr: boolean; dcd: boolean }>((resolve, reject) => {
      stream.get((error, value) => (error || !value ? reject(this.#mapError(error)) : resolve(value)));
    });
    return {
      clearToSend: status.cts,
      dataSetReady: status.dsr,
      dataCarrierDetect: status.dcd,
      ringIndicator: false,
    };
  }

  /** Changes the host baud rate without closing the port (esptool-js `BaudRateConfigurablePort`). */
  async setBaudRate(baudRate: number): Promise<void> {
    const stream = this.#openStream();
    if (!Number.isInteger(baudRate) || baudRate <= 0) {
      throw new TypeError(`baudRate must be a positive integer, got ${baudRate}`);
    }
    await new Promise<void>((resolve, reject) => {
      stream.update({ baudRate }, (error) => (error ? reject(this.#mapError(error)) : resolve()));
    });
    this.#baudRate = baudRate;
  }

  /** Releases the port. Safe to call with locked streams, mid-read, after a device loss, or twice. */
  close(): Promise<void> {
    if (this.#state === 'closed') return Promise.resolve();
    if (this.#state === 'opening') {
      return Promise.reject(new DOMException('The port is still opening.', 'InvalidStateError'));
    }
    this.#closing ??= this.#close().finally(() => {
      this.#closing = null;
    });
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#state = 'closing';
    this.#endReadable?.();
    this.#failWritable?.(new DOMException('The port was closed.', 'AbortError'));
    this.#readable = null;
    this.#writable = null;
    const stream = this.#stream;
    if (stream) {
      await new Promise<void>((resolve) => {
        if (!stream.isOpen) return resolve();
        // A close error (the binding already gone) leaves nothing to release.
        stream.close(() => resolve());
      });
    }
    this.#stream = null;
    this.#lost = false;
    this.#state = 'closed';
  }

  #openStream(): SerialPortStream {
    if (this.#lost) throw new DOMException('The device has been lost.', 'NetworkError');
    if (this.#state !== 'opened' || !this.#stream)
      throw new DOMException('The port is closed.', 'InvalidStateError');
    return this.#stream;
  }

  #deviceLost(): void {
    if (this.#lost) return;
    this.#lost = true;
    const error = new DOMException('The device has been lost.', 'NetworkError');
    this.#failReadable?.(error);
    this.#failWritable?.(error);
    this.#readable = null;
    this.#writable = null;
    this.dispatchEvent(new Event('disconnect'));
  }

  #mapError(error: unknown): unknown {
    if (this.#lost || isDisconnect(error)) {
      return new DOMException('The device has been lost.', { name: 'NetworkError', cause: error });
    }
    return error;
  }

  #createReadable(stream: SerialPortStream): ReadableStream<Uint8Array> {
    let controller: ReadableStreamDefaultController<Uint8Array>;
    let done = false;
    const onData = (chunk: Buffer) => {
      if (done) return;
      controller.enqueue(new Uint8Array(chunk));
      // Backpressure: leave further bytes in the driver (binding) until the reader catches up.
      if ((controller.desiredSize ?? 0) <= 0) stream.pause();
    };
    const detach = () => {
      if (done) return false;
      done = true;
      stream.off('data', onData);
      stream.pause();
      if (this.#endReadable === end) {
        this.#endReadable = null;
        this.#failReadable = null;
      }
      return true;
    };
    const end = () => {
      if (detach()) controller.close();
    };
    const fail = (error: unknown) => {
      if (detach()) controller.error(error);
    };
    const readable = new ReadableStream<Uint8Array>(
      {
        start: (c) => {
          controller = c;
          this.#endReadable = end;
          this.#failReadable = fail;
          stream.on('data', onData);
        },
        pull: () => {
          if (!done) stream.resume();
        },
        cancel: () => {
          detach();
          if (this.#readable === readable) this.#readable = null;
        },
      },
      { highWaterMark: this.#bufferSize, size: (chunk) => chunk.byteLength },
    );
    return readable;
  }

  #createWritable(stream: SerialPortStream): WritableStream<Uint8Array> {
    let controller: WritableStreamDefaultController;
    let done = false;
    const release = () => {
      done = true;
      if (this.#failWritable === fail) this.#failWritable = null;
      if (this.#writable === writable) this.#writable = null;
    };
    const fail = (error: unknown) => {
      if (done) return;
      release();
      controller.error(error);
    };
    const writable = new WritableStream<Uint8Array>(
      {
        start: (c) => {
          controller = c;
          this.#failWritable = fail;
        },
        // The stream hands the sink one chunk at a time and waits for it, so at most one write is
        // pending in the binding and the writer's `ready` promise carries the backpressure.
        write: (chunk) =>
          new Promise<void>((resolve, reject) => {
            if (this.#lost) return reject(new DOMException('The device has been lost.', 'NetworkError'));
            stream.write(Buffer.from(toBytes(chunk)), (error) =>
              error ? reject(this.#mapError(error)) : resolve(),
            );
          }),
        // writer.close() waits until the bytes have left the host (tcdrain), like the browser.
        close: () =>
          new Promise<void>((resolve, reject) => {
            release();
            stream.drain((error) => (error ? reject(this.#mapError(error)) : resolve()));
          }),
        abort: () => {
          release();
        },
      },
      { highWaterMark: this.#bufferSize, size: (chunk) => chunk.byteLength },
    );
    return writable;
  }
}

function toBytes(chunk: unknown): Uint8Array {
  if (chunk instanceof Uint8Array) return chunk;
  if (ArrayBuffer.isView(chunk)) return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (chunk instanceof ArrayBuffer) return new Uint8Array(chunk);
  throw new TypeError('Serial writes take a BufferSource (Uint8Array, ArrayBuffer, ...)');
}

function isDisconnect(error: unknown): boolean {
  return (
    typeof error === 'object' && error !== null && (error as { disconnected?: unknown }).disconnected === true
  );
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
