/**
 * MicroPython's raw REPL over a serial connection, as mpremote drives it (tools/mpremote/mpremote/
 * transport_serial.py): Ctrl-C twice to stop a running program, Ctrl-A to enter the raw REPL
 * (`raw REPL; CTRL-B to exit\r\n>`), then each program is sent in raw-paste mode (Ctrl-E `A`
 * Ctrl-A, answered `R\x01` and a window size; the device grants more window with `\x01`), or in
 * plain raw mode when the firmware predates raw paste (`R\x00`). Output comes back as stdout
 * `\x04` stderr `\x04`, then the `>` prompt for the next program. Ctrl-B leaves the raw REPL.
 *
 * The transport is anything that writes bytes and hands over what arrives: the serial monitor in
 * the CLI, a fake in tests.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { MpError } from '../errors.ts';

export interface ReplTransport {
  write(data: Uint8Array | string): Promise<void>;
  /** Registers a listener for received bytes; returns the function that removes it. */
  onData(listener: (bytes: Uint8Array) => void): () => void;
}

export interface RawReplOptions {
  /** Where the REPL is, for messages (`/dev/ttyUSB0`). */
  where: string;
  /** How long the board may stay silent when an answer is due. Default 5 s. */
  timeoutMs?: number;
}

export interface ReplResult {
  stdout: string;
  stderr: string;
}

const CTRL_A = 0x01;
const CTRL_B = 0x02;
const CTRL_C = 0x03;
const CTRL_D = 0x04;
const RAW_BANNER = 'raw REPL; CTRL-B to exit\r\n';

export class RawRepl {
  readonly #transport: ReplTransport;
  readonly #where: string;
  readonly #timeoutMs: number;
  #buffer = new Uint8Array(0);
  #waiter: (() => void) | undefined;
  #unsubscribe: (() => void) | undefined;
  #rawPaste: boolean | undefined;

  constructor(transport: ReplTransport, options: RawReplOptions) {
    this.#transport = transport;
    this.#where = options.where;
    this.#timeoutMs = options.timeoutMs ?? 5000;
  }

  /**
   * Interrupts whatever runs and enters the raw REPL. `bootingMs`: the board was just reset and may
   * still be starting (ROM, boot.py, the port coming back on native USB), when what is written is
   * lost: the interrupt and Ctrl-A are sent again every half second until it answers or the time is
   * up, as a person at the keyboard would.
   */
  async enter(options: { bootingMs?: number } = {}): Promise<void> {
    this.#unsubscribe ??= this.#transport.onData((bytes) => this.#receive(bytes));
    const deadline = Date.now() + (options.bootingMs ?? 0);
    for (let attempt = 0; ; attempt++) {
      const last = Date.now() >= deadline;
      try {
        await this.#transport.write(new Uint8Array([0x0d, CTRL_C, CTRL_C]));
        // What the interrupted program and the friendly REPL printed is not ours to read.
        await sleep(100);
        // A banner answering an earlier attempt may be on its way: only the first clears.
        if (attempt === 0) this.#buffer = new Uint8Array(0);
        await this.#transport.write(new Uint8Array([0x0d, CTRL_A]));
        await this.#readUntil(RAW_BANNER, 'entering the raw REPL (Ctrl-A)', last ? this.#timeoutMs : 500);
      } catch (error) {
        // A port that is reattaching after the reset cannot be written yet: that is booting too.
        if (last) throw error;
        await sleep(attempt === 0 ? 0 : 100);
        continue;
      }
      // Every Ctrl-A the board read prints the banner: after several, one program whose output is
      // known puts everything they printed behind us (the board answers in the order it reads).
      if (attempt > 0) await this.#sync();
      return;
    }
  }

  /** Runs one program; a Python exception on the board is an MpError with its traceback. */
  async exec(code: string, what = 'a command'): Promise<ReplResult> {
    await this.#readUntil('>', `waiting for the raw REPL prompt before ${what}`);
    const program = new TextEncoder().encode(code);
    if (this.#rawPaste !== false) {
      await this.#transport.write(new Uint8Array([0x05, 0x41, CTRL_A]));
      const answer = await this.#readBytes(2, `starting raw-paste mode for ${what}`);
      this.#rawPaste = answer[0] === 0x52 && answer[1] === 0x01;
      if (this.#rawPaste) await this.#pasteWrite(program, what);
      else if (!(answer[0] === 0x52 && answer[1] === 0x00)) {
        // An old firmware took Ctrl-E as ordinary input: the raw REPL is left in a state we cannot
        // read; start over in plain raw mode.
        await this.enter();
        await this.#readUntil('>', `waiting for the raw REPL prompt before ${what}`);
      }
    }
    if (!this.#rawPaste) {
      // Plain raw mode: the whole program, Ctrl-D, then "OK" (mpremote writes 256-byte chunks).
      for (let at = 0; at < program.length; at += 256)
        await this.#transport.write(program.subarray(at, at + 256));
      await this.#transport.write(new Uint8Array([CTRL_D]));
      const ok = await this.#readBytes(2, `sending ${what}`);
      if (ok[0] !== 0x4f || ok[1] !== 0x4b) throw this.#protocolError(`sending ${what}`, ok);
    }
    const stdout = await this.#readUntil('\x04', `running ${what}`);
    const stderr = await this.#readUntil('\x04', `running ${what}`);
    if (stderr) {
      throw new MpError({
        code: 'REPL_EXCEPTION',
        message: `The board on ${this.#where} raised an exception while ${what}:\n${stderr.trimEnd()}`,
        hint: 'Check the path and the free space on the board (`import os; os.statvfs("/")`), then try again.',
      });
    }
    return { stdout, stderr };
  }

  /** Runs `print('mp-sync', n)` in plain raw mode and reads up to its output, whatever came first. */
  async #sync(): Promise<void> {
    const n = Math.floor(Math.random() * 1e9);
    await this.#transport.write(new TextEncoder().encode(`print('mp-sync', ${n})`));
    await this.#transport.write(new Uint8Array([CTRL_D]));
    // Then the rest of its stdout (`\r\n` on boards, `\n` from the unix port), the end of stdout
    // and the (empty) stderr; the prompt stays for the next program.
    await this.#readUntil(`mp-sync ${n}`, 'entering the raw REPL (Ctrl-A)');
    await this.#readUntil('\x04', 'entering the raw REPL (Ctrl-A)');
    await this.#readUntil('\x04', 'entering the raw REPL (Ctrl-A)');
  }

  /**
   * Leaves the raw REPL (Ctrl-B) for the friendly one, and stops listening. `softReset`: then
   * Ctrl-D at the friendly prompt, so the board restarts MicroPython and runs boot.py and main.py
   * with the files just copied (in the raw REPL a soft reset would not run main.py:
   * shared/runtime/pyexec.c and each port's main.c).
   */
  async exit(options: { softReset?: boolean } = {}): Promise<void> {
    // The prompt after the last program is ours, not the board's output for whoever reads next.
    if (this.#unsubscribe) await this.#readUntil('>', 'leaving the raw REPL', 200).catch(() => undefined);
    const keys = options.softReset ? [0x0d, CTRL_B, CTRL_D] : [0x0d, CTRL_B];
    await this.#transport.write(new Uint8Array(keys)).catch(() => undefined);
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  async #pasteWrite(program: Uint8Array, what: string): Promise<void> {
    const header = await this.#readBytes(2, `starting raw-paste mode for ${what}`);
    const window = header[0]! | (header[1]! << 8);
    let remaining = window;
    let at = 0;
    while (at < program.length) {
      while (remaining === 0 || this.#buffer.length > 0) {
        const [flag] = await this.#readBytes(1, `sending ${what}`);
        if (flag === CTRL_A) remaining += window;
        else if (flag === CTRL_D) {
          // The device ended the paste early (a syntax error is reported in stderr below).
          await this.#transport.write(new Uint8Array([CTRL_D]));
          return;
        } else throw this.#protocolError(`sending ${what}`, new Uint8Array([flag!]));
      }
      const chunk = program.subarray(at, at + remaining);
      await this.#transport.write(chunk);
      remaining -= chunk.length;
      at += chunk.length;
    }
    await this.#transport.write(new Uint8Array([CTRL_D]));
    await this.#readUntil('\x04', `finishing the paste of ${what}`);
  }

  #receive(bytes: Uint8Array): void {
    const next = new Uint8Array(this.#buffer.length + bytes.length);
    next.set(this.#buffer);
    next.set(bytes, this.#buffer.length);
    this.#buffer = next;
    this.#waiter?.();
  }

  /** Waits for `marker` and returns (and consumes) what came before it. */
  async #readUntil(marker: string, doing: string, timeoutMs = this.#timeoutMs): Promise<string> {
    const needle = new TextEncoder().encode(marker);
    return this.#waitFor(doing, timeoutMs, () => {
      const at = indexOf(this.#buffer, needle);
      if (at < 0) return undefined;
      const before = this.#buffer.subarray(0, at);
      this.#buffer = this.#buffer.slice(at + needle.length);
      return new TextDecoder().decode(before);
    });
  }

  async #readBytes(count: number, doing: string): Promise<Uint8Array> {
    return this.#waitFor(doing, this.#timeoutMs, () => {
      if (this.#buffer.length < count) return undefined;
      const out = this.#buffer.slice(0, count);
      this.#buffer = this.#buffer.slice(count);
      return out;
    });
  }

  async #waitFor<T>(doing: string, timeoutMs: number, take: () => T | undefined): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const got = take();
      if (got !== undefined) return got;
      const left = deadline - Date.now();
      if (left <= 0) throw this.#silentError(doing);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#waiter = undefined;
    }
  }

  #silentError(doing: string): MpError {
    const heard = new TextDecoder().decode(this.#buffer.slice(-200)).replace(/[^\x20-\x7e\n]/g, '·');
    return new MpError({
      code: 'REPL_NOT_ANSWERING',
      message: `The board on ${this.#where} did not answer a MicroPython REPL while ${doing}${heard.trim() ? ` (it said: ${JSON.stringify(heard.trim())})` : ' (it said nothing)'}`,
      hint: 'Check that the firmware is MicroPython with its REPL on this port (115200 baud by default; --baud for another), that no other program holds the port, and that main.py does not block Ctrl-C. Flashing with `mp flash` resets the board to a known state.',
    });
  }

  #protocolError(doing: string, got: Uint8Array): MpError {
    return new MpError({
      code: 'REPL_PROTOCOL',
      message: `The board on ${this.#where} answered ${JSON.stringify(new TextDecoder().decode(got))} while ${doing}, which is not MicroPython's raw REPL`,
      hint: 'Reset the board (unplug it, or `mp flash`) and try again; check that the firmware is MicroPython.',
    });
  }
}

function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
