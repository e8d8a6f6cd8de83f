/**
 * `mp monitor`: the board's serial console (MicroPython REPL) in this terminal until Ctrl-].
 */
import { deviceLostError, MONITOR_BAUD, MpError, runSerialConsole, SerialMonitor } from '@mp/core';
import { loadProject, positiveInt } from '../project.ts';
import { style } from '../ui/style.ts';
import { pickPort } from './ports.ts';
import type { CommandInput, CommandRun, OPTIONS } from './table.ts';

export const run: CommandRun<typeof OPTIONS.monitor> = async (input) => {
  assertNotJson(input, '`mp monitor`');
  const project = await loadProject(
    input,
    typeof input.values.port === 'string' ? { port: input.values.port } : {},
  );
  const baudRate =
    typeof input.values.baud === 'string' ? positiveInt('--baud', input.values.baud) : MONITOR_BAUD;
  const selected = await pickPort(input, project.config.flash.port, project.stateDir);
  const monitor = new SerialMonitor({ path: selected.path, baudRate });
  await monitor.attach();
  return consoleUntilExit(input, monitor, `${selected.path} at ${baudRate} baud`);
};

/**
 * Runs the console on this terminal and turns its end into an exit code: 0 for Ctrl-], 130 for
 * Ctrl-C outside raw mode, an error for a board that went away. Used by `mp flash --monitor` too.
 */
export async function consoleUntilExit(
  input: CommandInput,
  monitor: SerialMonitor,
  where: string,
): Promise<number> {
  input.stderr.write(style.dim(`Serial monitor on ${where}. Ctrl-] to leave.\n`));
  const end = await runSerialConsole(
    monitor,
    { input: process.stdin, output: input.stdout },
    { signal: input.signal },
  );
  if (end === 'device-lost') throw deviceLostError(monitor.path, 'the serial monitor');
  input.stderr.write(style.dim(`\nLeft the serial monitor; ${monitor.path} is free.\n`));
  return end === 'cancelled' ? 130 : 0;
}

export function assertNotJson(input: CommandInput, what: string): void {
  if (input.json) {
    throw new MpError({
      code: 'USAGE',
      message: `${what} is interactive and cannot be combined with --json`,
      hint: 'Leave out --json, or run the command without the monitor.',
      exitCode: 2,
    });
  }
}
