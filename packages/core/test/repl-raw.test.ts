/**
 * The raw REPL client against a scripted board: entering while the board still boots after a reset
 * (what it is sent meanwhile is lost), a board that answers late (two banners), one that never
 * answers, and the soft reset on the way out. The real protocol is tested against the real unix
 * MicroPython in test/upstream; this is the timing the real boards add.
 */
import { describe, expect, it } from 'vitest';
import { MpError } from '../src/errors.ts';
import { RawRepl, type ReplTransport } from '../src/repl/raw-repl.ts';

const CTRL_A = 0x01;
const CTRL_B = 0x02;
const CTRL_D = 0x04;
const CTRL_E = 0x05;
const BANNER = 'raw REPL; CTRL-B to exit\r\n>';

/**
 * MicroPython's raw REPL as shared/runtime/pyexec.c answers it. For `deafMs` after it was made the
 * board is booting and what it is sent is lost; until `busyMs` it is running boot.py and what it
 * is sent waits in the UART's buffer, read in order afterwards. A pasted program prints `ran`.
 */
class ScriptedBoard implements ReplTransport {
  readonly written: number[] = [];
  readonly #listeners = new Set<(bytes: Uint8Array) => void>();
  readonly #bornAt = Date.now();
  #queued: number[] = [];
  #line: number[] = [];
  #pasting = false;

  readonly options: { deafMs?: number; busyMs?: number; silent?: boolean };

  constructor(options: { deafMs?: number; busyMs?: number; silent?: boolean } = {}) {
    this.options = options;
  }

  async write(data: Uint8Array | string): Promise<void> {
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    this.written.push(...bytes);
    const age = Date.now() - this.#bornAt;
    if (this.options.silent || age < (this.options.deafMs ?? 0)) return; // still booting: lost
    const busyFor = (this.options.busyMs ?? 0) - age;
    if (busyFor > 0) {
      if (this.#queued.length === 0) setTimeout(() => this.#readQueued(), busyFor);
      this.#queued.push(...bytes);
      return;
    }
    for (const byte of bytes) this.#key(byte);
  }

  onData(listener: (bytes: Uint8Array) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  count(byte: number): number {
    return this.written.filter((b) => b === byte).length;
  }

  #readQueued(): void {
    const queued = this.#queued;
    this.#queued = [];
    for (const byte of queued) this.#key(byte);
  }

  #send(text: string | number[]): void {
    const bytes = typeof text === 'string' ? new TextEncoder().encode(text) : Uint8Array.from(text);
    for (const listener of this.#listeners) listener(bytes);
  }

  #key(byte: number): void {
    if (this.#pasting) {
      if (byte === CTRL_D) {
        this.#pasting = false;
        this.#send([CTRL_D]); // end of paste acknowledged
        this.#send('ran\r\n\x04\x04>');
      }
      return;
    }
    if (byte === CTRL_A && this.#line.join() === [CTRL_E, 0x41].join()) {
      this.#line = [];
      this.#pasting = true;
      this.#send([0x52, 0x01, 0x80, 0x00]); // raw paste on, window of 128 bytes
    } else if (byte === CTRL_A) {
      this.#line = [];
      this.#send(BANNER);
    } else if (byte === 0x03) this.#line = [];
    else if (byte === CTRL_D) {
      const program = new TextDecoder().decode(Uint8Array.from(this.#line));
      this.#line = [];
      const sync = /print\('mp-sync', (\d+)\)/.exec(program);
      this.#send(`OK${sync ? `mp-sync ${sync[1]}\r\n` : ''}\x04\x04>`);
    } else this.#line.push(byte);
  }
}

describe('raw REPL', () => {
  it('keeps sending Ctrl-C and Ctrl-A while a just-reset board boots, then runs a program', async () => {
    const board = new ScriptedBoard({ deafMs: 1200 });
    const repl = new RawRepl(board, { where: '/dev/ttyUSB0', timeoutMs: 1000 });
    await repl.enter({ bootingMs: 5000 });
    expect(board.count(CTRL_A)).toBeGreaterThan(1);
    expect((await repl.exec('print("ran")')).stdout).toBe('ran\r\n');
    await repl.exit();
  });

  it('a board busy in boot.py answers every Ctrl-A at once later: no second banner gets in the way', async () => {
    const board = new ScriptedBoard({ busyMs: 1300 });
    const repl = new RawRepl(board, { where: '/dev/ttyUSB0', timeoutMs: 1000 });
    await repl.enter({ bootingMs: 5000 });
    expect(board.count(CTRL_A)).toBeGreaterThan(1);
    expect((await repl.exec('print("ran")')).stdout).toBe('ran\r\n');
  });

  it('without bootingMs it asks once; a board that never answers is REPL_NOT_ANSWERING after the boot time', async () => {
    const booting = new ScriptedBoard({ deafMs: 1200 });
    await expect(new RawRepl(booting, { where: '/dev/ttyUSB0', timeoutMs: 300 }).enter()).rejects.toThrow(
      /did not answer a MicroPython REPL/,
    );
    expect(booting.count(CTRL_A)).toBe(1);

    const silent = new ScriptedBoard({ silent: true });
    const started = Date.now();
    const error = await new RawRepl(silent, { where: '/dev/ttyUSB0', timeoutMs: 300 })
      .enter({ bootingMs: 1000 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MpError);
    expect((error as MpError).code).toBe('REPL_NOT_ANSWERING');
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
  });

  it('exit({ softReset }) leaves the raw REPL and soft-resets from the friendly one (Ctrl-B, Ctrl-D)', async () => {
    const board = new ScriptedBoard();
    const repl = new RawRepl(board, { where: '/dev/ttyUSB0' });
    await repl.enter();
    await repl.exit({ softReset: true });
    expect(board.written.slice(-3)).toEqual([0x0d, CTRL_B, CTRL_D]);
  });
});
