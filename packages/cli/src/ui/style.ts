/** Terminal colours, off when stderr is not a TTY, NO_COLOR is set, or FORCE_COLOR=0. */
import { styleText } from 'node:util';

let enabled = colorsFor(process.stderr.isTTY === true);

function colorsFor(stderrIsTTY: boolean): boolean {
  return process.env.FORCE_COLOR !== undefined
    ? process.env.FORCE_COLOR !== '0'
    : !process.env.NO_COLOR && stderrIsTTY;
}

/** A resident mp (resident/server.ts) paints for its client's terminal, not for its own. */
export function useTerminalColors(stderrIsTTY: boolean): void {
  enabled = colorsFor(stderrIsTTY);
}

type Format = Parameters<typeof styleText>[0];
const paint = (format: Format) => (text: string) =>
  enabled ? styleText(format, text, { validateStream: false }) : text;

export const style = {
  red: paint('red'),
  green: paint('green'),
  yellow: paint('yellow'),
  cyan: paint('cyan'),
  dim: paint('dim'),
  bold: paint('bold'),
};
