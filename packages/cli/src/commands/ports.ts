/**
 * `mp ports`: the serial ports with a known USB serial adapter (all ports with --all), and the port
 * selection shared by `mp flash` and `mp monitor` (asks in a terminal when several boards are there).
 */
import { join } from 'node:path';
import { createInterface } from 'node:readline/promises';
import {
  type BoardPort,
  describePort,
  listBoardPorts,
  readRememberedPort,
  type SelectedPort,
  selectPort,
} from '@mp/core';
import { style } from '../ui/style.ts';
import { formatTable } from '../ui/table.ts';
import type { CommandInput, CommandRun, OPTIONS } from './table.ts';

export const run: CommandRun<typeof OPTIONS.ports> = async (input) => {
  const ports = await listBoardPorts({ all: input.values.all === true });
  const remembered = await readRememberedPort(join(input.cwd, '.mp'));
  if (input.json) {
    const rows = ports.map((p) => ({
      path: p.path,
      adapter: p.adapter?.name ?? null,
      family: p.adapter?.family ?? null,
      usbId: p.usbId || null,
      serialNumber: p.serialNumber ?? null,
      manufacturer: p.manufacturer ?? null,
      remembered: p.path === remembered?.path,
    }));
    input.stdout.write(`${JSON.stringify({ type: 'result', ok: true, ports: rows })}\n`);
    return 0;
  }
  if (ports.length === 0) {
    input.stderr.write(
      input.values.all === true
        ? 'No serial ports found.\n'
        : `No USB serial adapter (CH340, CP210x, FTDI, Espressif USB) found. Plug the board in with a data cable, or run ${style.bold('mp ports --all')} to see every serial port.\n`,
    );
    return 0;
  }
  input.stdout.write(
    formatTable(
      ['PORT', 'ADAPTER', 'USB ID', 'SERIAL', ''],
      ports.map((p) => [
        p.path,
        p.adapter?.name ?? (p.manufacturer || '-'),
        p.usbId || '-',
        p.serialNumber ?? '-',
        p.path === remembered?.path ? '(used by this project)' : '',
      ]),
    ),
  );
  return 0;
};

/**
 * The port for a board command: --port/config, the project's remembered one, the only board, or
 * the user's pick (in a terminal; elsewhere several boards are an error listing them).
 */
export async function pickPort(
  input: CommandInput,
  explicit: string | undefined,
  stateDir: string,
): Promise<SelectedPort> {
  const interactive = !input.json && process.stdin.isTTY === true && input.stderr.isTTY === true;
  return selectPort({
    explicit,
    stateDir,
    choose: interactive ? (ports) => askForPort(ports, input) : undefined,
  });
}

async function askForPort(ports: BoardPort[], input: CommandInput): Promise<BoardPort> {
  input.stderr.write(
    `Several boards are connected:\n${ports.map((p, i) => `  ${i + 1}) ${describePort(p)}`).join('\n')}\n`,
  );
  const rl = createInterface({ input: process.stdin, output: input.stderr });
  try {
    for (;;) {
      const answer = (await rl.question(`Which one? [1-${ports.length}] `, { signal: input.signal })).trim();
      const choice = ports[Number(answer) - 1] ?? ports.find((p) => p.path === answer);
      if (choice) {
        input.stderr.write(style.dim(`Remembered for this project (.mp/port.json); --port overrides it.\n`));
        return choice;
      }
    }
  } finally {
    rl.close();
  }
}
