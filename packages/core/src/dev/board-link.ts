/**
 * The board side of `mp dev`: which port it is on, the monitor kept on that port between flashes,
 * and noticing an unplugged board come back. A board on the chip's own USB (ESP32-S3/C3
 * USB-Serial/JTAG) leaves the bus whenever it restarts and may come back under another name: the
 * flash says where (`portAfterRestart`), and a port that is gone by the next flash is looked up
 * again (the remembered board by its serial number).
 */
import type { StepObserver } from '../events.ts';
import type { Project } from '../project.ts';
import type {
  DevBoard,
  DevClock,
  DevEffects,
  FirmwareImage,
  FlashResult,
  PutFile,
  PutOutcome,
} from './effects.ts';

export class BoardLink {
  readonly #effects: DevEffects;
  readonly #onData: ((data: Uint8Array) => void) | undefined;
  #port: string | undefined;
  #board: DevBoard | undefined;

  /** `onData` absent: no monitor, the port is closed between flashes. */
  constructor(effects: DevEffects, onData?: (data: Uint8Array) => void) {
    this.#effects = effects;
    this.#onData = onData;
  }

  /** The port the board was last flashed on (or came back on). */
  get port(): string | undefined {
    return this.#port;
  }

  /** Pick the port again before the next flash: `flash.port` or the board may have changed. */
  forgetPort(): void {
    this.#port = undefined;
  }

  async flash(
    firmware: FirmwareImage,
    project: Project,
    run: {
      signal: AbortSignal;
      observer: StepObserver;
      onPort: (port: string) => void;
      /** The firmware still being built; `firmware` is the last one flashed (see DevBoard.flash). */
      pending?: Promise<FirmwareImage>;
    },
  ): Promise<FlashResult> {
    const explicit = project.config.flash.port;
    try {
      if (this.#port && !explicit && !(await this.#effects.listPorts()).includes(this.#port)) {
        // It restarted on its own (its application reset it) and came back under another name.
        this.forgetPort();
      }
      this.#port ??= await this.#effects.selectPort({ explicit, stateDir: project.stateDir });
      if (this.#board?.port !== this.#port) {
        await this.#board?.close();
        this.#board = this.#effects.openBoard(this.#port, this.#onData);
      }
      run.onPort(this.#port);
      const result = await this.#board.flash(firmware, {
        baudRate: project.config.flash.baud,
        signal: run.signal,
        observer: run.observer,
        pending: run.pending,
      });
      // The next flash goes there; the monitor has followed the board already.
      if (result.portAfterRestart && !explicit) this.#port = result.portAfterRestart;
      return result;
    } catch (error) {
      // An unplugged board may come back under another name.
      if (!explicit) this.forgetPort();
      throw error;
    }
  }

  /** The config's files onto the board just flashed (see DevBoard.put). */
  async put(files: PutFile[]): Promise<PutOutcome[]> {
    if (!this.#board || !this.#port) throw new Error('put before a flash'); // the session's order
    return this.#board.put(files, { port: this.#port });
  }

  async close(): Promise<void> {
    await this.#board?.close();
    this.#board = undefined;
  }
}

/**
 * Polls the ports every `everyMs` and calls `onBack` once when one shows up that was not there when
 * the poll started (the board plugged in again). Returns what stops the poll.
 */
export function watchForBoard(
  listPorts: () => Promise<string[]>,
  clock: DevClock,
  everyMs: number,
  onBack: () => void,
): () => void {
  let stopped = false;
  let cancel = () => {};
  // The ports there right after the failure are the baseline: the board coming back is a new one.
  const baseline = listPorts().then((ports) => new Set(ports));
  const look = async () => {
    const before = await baseline;
    const now = new Set(await listPorts());
    if (stopped) return;
    if ([...now].some((port) => !before.has(port))) {
      stopped = true;
      onBack();
      return;
    }
    // A port that went away since is not a baseline any more: its return counts.
    for (const port of before) if (!now.has(port)) before.delete(port);
    cancel = clock.after(everyMs, look);
  };
  cancel = clock.after(everyMs, look);
  return () => {
    stopped = true;
    cancel();
  };
}
