/**
 * How errors reach the user: an MpError shows its message, what is at fault and the hint; anything
 * else is a bug in mp and shows its stack so it can be reported.
 */
import { isAbortError, isMpError } from '@mp/core';
import type { CommandInput } from '../commands/table.ts';
import { style } from './style.ts';

export function reportError(
  error: unknown,
  io: { json: boolean; stdout: CommandInput['stdout']; stderr: CommandInput['stderr']; aborted: boolean },
): number {
  if (io.aborted || isAbortError(error)) {
    if (io.json)
      io.stdout.write(
        `${JSON.stringify({ type: 'result', ok: false, error: { code: 'CANCELLED', message: 'cancelled' } })}\n`,
      );
    else io.stderr.write(`\n${style.yellow('Cancelled.')}\n`);
    return 130;
  }
  if (isMpError(error)) {
    if (io.json) {
      io.stdout.write(`${JSON.stringify({ type: 'result', ok: false, error: error.toJSON() })}\n`);
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
  if (io.json)
    io.stdout.write(
      `${JSON.stringify({ type: 'result', ok: false, error: { code: 'INTERNAL', message: String(error) } })}\n`,
    );
  io.stderr.write(`\n${style.red('✖ mp failed unexpectedly (this is a bug in mp):')}\n${message}\n`);
  return 1;
}
