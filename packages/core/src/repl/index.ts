/**
 * The board's REPL as a programmatic channel: the raw REPL client (raw-repl.ts) and copying
 * files with it (put-files.ts), over the same serial code path as the monitor.
 */

import type { BindingInterface } from '../serial/index.ts';
import { SerialMonitor } from '../serial/monitor.ts';
import { type PutFile, type PutOutcome, putFiles } from './put-files.ts';
import { RawRepl, type ReplTransport } from './raw-repl.ts';

export { type PutFile, type PutOutcome, putFiles, putTargets } from './put-files.ts';
export { RawRepl, type RawReplOptions, type ReplResult, type ReplTransport } from './raw-repl.ts';

export interface PutToBoardOptions {
  port: string;
  /** The REPL's speed. Default 115200. */
  baudRate?: number;
  files: PutFile[];
  binding?: BindingInterface;
  /**
   * A connection to the port that is open already (the serial monitor of `mp flash --monitor` and
   * `mp dev`): used as it is and left open. Default: the port is opened and closed here.
   */
  transport?: ReplTransport;
  timeoutMs?: number;
  /** The board was just reset: how long it may take to answer its REPL (see RawRepl.enter). */
  bootingMs?: number;
  /** Soft-reset the board afterwards so main.py runs with the new files (after a flash). */
  softReset?: boolean;
  onProgress?: (file: PutFile, done: number, total: number) => void;
}

/** How long a just-flashed board may take from its reset to answering its REPL (ROM, boot.py, USB). */
const BOOT_MS = 5000;

/**
 * The config's files onto a board that was just flashed and reset (`mp flash`, `mp dev`): the REPL
 * is knocked on while the board boots, and a good copy ends with a soft reset, so main.py runs with
 * the new files.
 */
export function putAfterFlash(
  options: Omit<PutToBoardOptions, 'bootingMs' | 'softReset'>,
): Promise<PutOutcome[]> {
  return putToBoard({ ...options, bootingMs: BOOT_MS, softReset: true });
}

/** Opens the port, enters the raw REPL, copies what differs, leaves the REPL and frees the port. */
export async function putToBoard(options: PutToBoardOptions): Promise<PutOutcome[]> {
  const monitor = options.transport
    ? undefined
    : new SerialMonitor({ path: options.port, baudRate: options.baudRate, binding: options.binding });
  await monitor?.attach();
  const transport = options.transport ?? monitor!;
  const repl = new RawRepl(transport, { where: options.port, timeoutMs: options.timeoutMs });
  let copied = false;
  try {
    await repl.enter({ bootingMs: options.bootingMs });
    const outcomes = await putFiles(repl, options.files, options.onProgress);
    copied = true;
    return outcomes;
  } finally {
    // A soft reset only after a good copy: after a failure the board stays at its REPL, to look at.
    await repl.exit({ softReset: options.softReset === true && copied });
    await monitor?.detach();
  }
}
