/**
 * How errors reach the user: an MpError shows its message, what is at fault and the hint; anything
 * else is a bug in mp and shows its stack so it can be reported.
 */
import { isAbortError, isMpError } from '@mp/core';
import type { CommandInput } from '../commands/table.ts';
import { style } from './style.ts';

type Streams = { stdout: CommandInput['stdout']; stderr: CommandInput['stderr'] };

/** The closing JSON line of a command that failed: the same shape for every failure. */
function writeJsonFailure(
  stdout: Streams['stdout'],
  error: Record<string, unknown>,
  exitCode: number,
): number {
  stdout.write(`${JSON.stringify({ type: 'result', ok: false, error, exitCode })}\n`);
  return exitCode;
}

/**
 * A command line mp cannot run (unknown command or option, missing value, wrong arguments):
 * exit code 2, one line on stderr, or with --json the JSON result on stdout.
 */
export function reportUsageError(
  usage: { message: string; hint: string },
  io: Streams & { json: boolean },
): number {
  if (io.json)
    return writeJsonFailure(io.stdout, { code: 'USAGE', message: usage.message, hint: usage.hint }, 2);
  io.stderr.write(`mp: ${usage.message} ${usage.hint}\n`);
  return 2;
}

export function reportError(error: unknown, io: Streams & { json: boolean; aborted: boolean }): number {
  if (io.aborted || isAbortError(error)) {
    if (io.json) return writeJsonFailure(io.stdout, { code: 'CANCELLED', message: 'cancelled' }, 130);
    io.stderr.write(`\n${style.yellow('Cancelled.')}\n`);
    return 130;
  }
  if (isMpError(error)) {
    if (io.json) {
      writeJsonFailure(io.stdout, error.toJSON(), error.exitCode);
    } else {
      const where = [
        error.step && `step: ${error.step}`,
        error.plugin && `plugin: ${error.plugin}`,
        error.file && `file: ${error.file}`,
      ].filter(Boolean);
      io.stderr.write(
        `\n${style.red('✖')} ${style.bold(error.message)}\n` +
          (where.length ? `  ${style.dim(where.join('  '))}\n` : '') +
          (error.hint ? `  ${style.cyan('→')} ${error.hint}\n` : '') +
          `  ${style.dim(`(${error.code})`)}\n`,
      );
    }
    return error.exitCode;
  }
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
  if (io.json) writeJsonFailure(io.stdout, { code: 'INTERNAL', message: String(error) }, 1);
  io.stderr.write(`\n${style.red('✖ mp failed unexpectedly (this is a bug in mp):')}\n${message}\n`);
  return 1;
}
