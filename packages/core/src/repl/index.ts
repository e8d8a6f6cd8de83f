/**
 * The board's REPL as a programmatic channel: the raw REPL client (raw-repl.ts) and copying
 * files with it (put-files.ts), over the same serial code path as the monitor.
 */

import type { BindingInterface } from '../serial/index.ts';
import { SerialMonitor } from '../serial/monitor.ts';
import { type PutFile, type PutOutcome, putFiles } from './put-files.ts';
import { RawRepl } from './raw-repl.ts';

export { type PutFile, type PutOutcome, putFiles, putTargets } from './put-files.ts';
export { RawRepl, type RawReplOptions, type ReplResult, type ReplTransport } from './raw-repl.ts';

export interface PutToBoardOptions {
  port: string;
  /** The REPL's speed. Default 115200. */
  baudRate?: number;
  files: PutFile[];
  binding?: BindingInterface;
  timeoutMs?: number;
  onProgress?: (file: PutFile, done: number, total: number) => void;
}

/** Opens the port, enters the raw REPL, copies what differs, leaves the REPL and frees the port. */
export async function putToBoard(options: PutToBoardOptions): Promise<PutOutcome[]> {
  const monitor = new SerialMonitor({
    path: options.port,
    baudRate: options.baudRate,
    binding: options.binding,
  });
  await monitor.attach();
  const repl = new RawRepl(monitor, { where: options.port, timeoutMs: options.timeoutMs });
  try {
    await repl.enter();
    return await putFiles(repl, options.files, options.onProgress);
  } finally {
    await repl.exit();
    await monitor.detach();
  }
}
