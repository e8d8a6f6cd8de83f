/**
 * The serial monitor: the board's console (MicroPython's REPL) at 115200 baud.
 *
 * `SerialMonitor` is the programmatic part: it owns the port while attached, hands bytes to
 * listeners, and lets go of the port for a flash (`detach`) — or takes over the flasher's port
 * right before the board restarts (`adopt`), so the new firmware's first lines are not lost. A board
 * on the chip's own USB (ESP32-S3/C3 USB-Serial/JTAG) leaves the bus when it restarts: the monitor
 * waits for it to come back, under whatever name, and reattaches.
 * `runSerialConsole` joins a monitor to a pair of streams (the CLI passes the terminal): raw
 * input, Ctrl-] to leave, the port always released.
 */

import { setTimeout as sleep } from 'node:timers/promises';
import { MpError } from '../errors.ts';
import { deviceLostError, isDeviceLost, portOpenError } from '../flash/errors.ts';
import { reenumeratesOnRestart, resetIntoApplication } from '../flash/reset.ts';
import { resolveSerialBinding } from './binding.ts';
import type { BindingInterface } from './binding-types.cts';
import { getWebSerialPort } from './get-port.ts';
import { type PortIdentity, portIdentity, waitForBoardPort } from './ports.ts';
import type { NodeWebSerialPort } from './web-serial-port.ts';

/** MicroPython's console speed on every ESP port. */
export const MONITOR_BAUD = 115200;

/** Ctrl-]: leaves the console, as in telnet, miniterm and idf.py monitor. */
export const CONSOLE_ESCAPE = 0x1d;

export interface SerialMonitorOptions {
  path: string;
  /** Default 115200. */
  baudRate?: number;
  /** Default: `MP_SERIAL_BINDING`, else real hardware. */
  binding?: BindingInterface;
  /**
   * How long a board on its own USB may stay away after its port went (a restart re-enumerates
   * it) before the monitor reports it lost. Default 5000 ms; 0: report at once.
   */
  reattachWithinMs?: number;
}

type Listener<T> = (value: T) => void;

/**
 * A serial console that can step aside for flashing.
 * @example
 * const monitor = new SerialMonitor({ path: '/dev/ttyUSB0' });
 * monitor.onData((bytes) => process.stdout.write(bytes));
 * await monitor.attach();
 * await flashFirmware({ firmware, port: monitor.path, monitor }); // detaches, flashes, re-attaches before the reset
 * await monitor.detach();
 */
export class SerialMonitor {
  readonly baudRate: number;
  readonly #binding: BindingInterface | undefined;
  readonly #reattachWithinMs: number;
  #path: string;
  #port: NodeWebSerialPort | undefined;
  #reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  #reading: Promise<void> | undefined;
  /** While the board is away after a restart: what ends the wait, and the wait itself. */
  #reattach: { abort: AbortController; done: Promise<void> } | undefined;
  readonly #dataListeners = new Set<Listener<Uint8Array>>();
  readonly #lostListeners = new Set<Listener<MpError>>();
  readonly #reattachListeners = new Set<Listener<string>>();
  #onDisconnect = () => this.#lose();

  constructor(options: SerialMonitorOptions) {
    this.#path = options.path;
    this.baudRate = options.baudRate ?? MONITOR_BAUD;
    this.#binding = options.binding;
    this.#reattachWithinMs = options.reattachWithinMs ?? 5000;
  }

  /** The board's port: another one than it started with once the board came back under a new name. */
  get path(): string {
    return this.#path;
  }

  /** True while the monitor holds the port. */
  get attached(): boolean {
    return this.#port !== undefined;
  }

  /** Bytes from the board. Returns a function that removes the listener. */
  onData(listener: Listener<Uint8Array>): () => void {
    this.#dataListeners.add(listener);
    return () => this.#dataListeners.delete(listener);
  }

  /** The board went away while attached and did not come back (the monitor is detached by then). */
  onDeviceLost(listener: Listener<MpError>): () => void {
    this.#lostListeners.add(listener);
    return () => this.#lostListeners.delete(listener);
  }

  /** The board came back after a restart and the monitor reads it again, on the port given. */
  onReattach(listener: Listener<string>): () => void {
    this.#reattachListeners.add(listener);
    return () => this.#reattachListeners.delete(listener);
  }

  /** Opens the port and starts reading. Busy, missing and forbidden ports are MpErrors with hints. */
  async attach(): Promise<void> {
    if (this.#reattach) await this.#reattach.done;
    if (this.#port) return;
    await this.#open(this.#path);
  }

  async #open(path: string): Promise<void> {
    const binding = await resolveSerialBinding(this.#binding);
    const port = await getWebSerialPort(path, { binding });
    try {
      // Opening asserts DTR and RTS together, which leaves EN and GPIO0 alone on the usual
      // auto-reset circuit: the running program is not restarted.
      await port.open({ baudRate: this.baudRate });
    } catch (error) {
      throw portOpenError(path, error);
    }
    this.#start(port);
  }

  /** Takes over a port that is already open (the flasher's, right before it resets the board). */
  async adopt(port: NodeWebSerialPort): Promise<void> {
    if (this.#port || this.#reattach) await this.detach();
    if (port.baudRate !== this.baudRate) await port.setBaudRate(this.baudRate);
    this.#start(port);
  }

  /** Stops reading and closes the port, so a flasher can open it. Safe to call when detached. */
  async detach(): Promise<void> {
    const reattach = this.#reattach;
    if (reattach) {
      reattach.abort.abort();
      await reattach.done;
    }
    const port = this.#port;
    if (!port) return;
    this.#port = undefined;
    port.removeEventListener('disconnect', this.#onDisconnect);
    await this.#reader?.cancel().catch(() => {});
    await this.#reading;
    await port.close().catch(() => {});
  }

  /** Sends bytes (keystrokes, a Ctrl-C, a line of Python) to the board. */
  async write(data: Uint8Array | string): Promise<void> {
    const port = this.#port;
    if (!port) throw this.#detachedError();
    if (!port.writable) throw deviceLostError(this.path, 'the serial monitor');
    const writer = port.writable.getWriter();
    try {
      await writer.write(typeof data === 'string' ? new TextEncoder().encode(data) : data);
    } catch (error) {
      throw isDeviceLost(error) || !port.connected
        ? deviceLostError(this.path, 'the serial monitor', error)
        : error;
    } finally {
      writer.releaseLock();
    }
  }

  /**
   * Restarts the application on the board (EN pulse with GPIO0 high; the USB-Serial/JTAG
   * peripheral's reset request). A board on its own USB leaves the bus: the monitor reattaches.
   */
  async resetDevice(): Promise<void> {
    const port = this.#port;
    if (!port) throw this.#detachedError();
    await resetIntoApplication(port, { lossExpected: reenumeratesOnRestart(port.getInfo()) });
  }

  #detachedError(): MpError {
    return new MpError({
      code: 'MONITOR_DETACHED',
      message: `The serial monitor of ${this.path} is not attached (the port is closed or being flashed)`,
      hint: 'Call attach() first, or wait for the flash to hand the port back.',
    });
  }

  #start(port: NodeWebSerialPort): void {
    this.#port = port;
    this.#path = port.path;
    port.addEventListener('disconnect', this.#onDisconnect);
    const readable = port.readable;
    if (!readable) {
      this.#lose();
      return;
    }
    const reader = readable.getReader();
    this.#reader = reader;
    this.#reading = (async () => {
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          if (value?.length) for (const listener of this.#dataListeners) listener(value);
        }
      } catch {
        // A read error means the device is gone; the disconnect event reports it.
        if (this.#port === port && !port.connected) this.#lose();
      } finally {
        reader.releaseLock();
        if (this.#reader === reader) this.#reader = undefined;
      }
    })();
  }

  #lose(): void {
    const port = this.#port;
    if (!port) return;
    this.#port = undefined;
    port.removeEventListener('disconnect', this.#onDisconnect);
    void port.close().catch(() => {});
    if (this.#reattachWithinMs > 0 && reenumeratesOnRestart(port.getInfo())) {
      this.#awaitReturn(portIdentity(port));
      return;
    }
    this.#reportLost();
  }

  #reportLost(): void {
    const error = deviceLostError(this.#path, 'the serial monitor');
    for (const listener of this.#lostListeners) listener(error);
  }

  /**
   * A chip on its own USB left the bus (it restarted, or its application reset it): wait for the
   * same device (USB ids and serial number, the MAC on USB-Serial/JTAG) to be listed again and
   * open it, retrying while the OS is still setting the new port up.
   */
  #awaitReturn(identity: PortIdentity): void {
    const abort = new AbortController();
    const deadline = performance.now() + this.#reattachWithinMs;
    const done = (async () => {
      const binding = await resolveSerialBinding(this.#binding);
      while (!abort.signal.aborted) {
        const remaining = deadline - performance.now();
        if (remaining <= 0) break;
        const back = await waitForBoardPort(identity, {
          binding,
          signal: abort.signal,
          goneWithinMs: 0,
          left: true,
          backWithinMs: remaining,
        }).catch(() => undefined);
        if (!back?.returned || abort.signal.aborted) break;
        try {
          await this.#open(back.port.path);
        } catch {
          // Still listed under the old name for a moment, or udev still setting the new one up.
          await sleep(100);
          continue;
        }
        if (abort.signal.aborted) break;
        for (const listener of this.#reattachListeners) listener(back.port.path);
        return;
      }
      if (!abort.signal.aborted) this.#reportLost();
    })().finally(() => {
      if (this.#reattach?.abort === abort) this.#reattach = undefined;
    });
    this.#reattach = { abort, done };
  }
}

/** Streams the console runs over: the terminal in the CLI, anything in tests. */
export interface ConsoleStreams {
  input: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  output: NodeJS.WritableStream;
}

/** Why the console ended: Ctrl-], the board went away, or the signal fired. */
export type ConsoleEnd = 'escape' | 'device-lost' | 'cancelled';

/**
 * Joins a monitor to `input`/`output` until Ctrl-] (or the signal). A TTY input is put in raw mode
 * so every key (Ctrl-C included) goes to the board; it is restored and the monitor detached
 * (port released) however the console ends.
 */
export async function runSerialConsole(
  monitor: SerialMonitor,
  streams: ConsoleStreams,
  options: { signal?: AbortSignal; escapeByte?: number } = {},
): Promise<ConsoleEnd> {
  const escapeByte = options.escapeByte ?? CONSOLE_ESCAPE;
  const { input, output } = streams;
  const raw = input.isTTY === true && typeof input.setRawMode === 'function';
  let finish: (end: ConsoleEnd) => void = () => {};
  const ended = new Promise<ConsoleEnd>((resolve) => {
    finish = resolve;
  });
  let sending = Promise.resolve();
  const onInput = (chunk: Buffer | string) => {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    const at = bytes.indexOf(escapeByte);
    const forward = at === -1 ? bytes : bytes.subarray(0, at);
    if (forward.length) {
      const copy = new Uint8Array(forward);
      // Keystrokes go out in order; a failed write means the device is gone (reported by the monitor).
      sending = sending.then(() => monitor.write(copy)).catch(() => {});
    }
    if (at !== -1) void sending.then(() => finish('escape'));
  };
  const offData = monitor.onData((bytes) => output.write(bytes));
  const offLost = monitor.onDeviceLost(() => finish('device-lost'));
  const onAbort = () => finish('cancelled');
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) finish('cancelled');
  try {
    if (!monitor.attached) await monitor.attach();
    if (raw) input.setRawMode!(true);
    input.on('data', onInput);
    input.resume();
    return await ended;
  } finally {
    input.off('data', onInput);
    input.pause();
    if (raw) input.setRawMode!(false);
    options.signal?.removeEventListener('abort', onAbort);
    offData();
    offLost();
    await monitor.detach();
  }
}
