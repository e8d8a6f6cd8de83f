/**
 * `mp boards`: the board plugins; `--upstream` also the ESP boards the MicroPython tree describes
 * (ports/esp8266/boards, ports/esp32/boards), which `mp build --board <NAME>` builds.
 */
import { listUpstreamBoards, withMicroPythonTree } from '@mp/core';
import { loadProject } from '../project.ts';
import { style } from '../ui/style.ts';
import { formatTable } from '../ui/table.ts';
import { listPlugins } from './list-plugins.ts';
import type { CommandRun, OPTIONS } from './table.ts';

export const run: CommandRun<typeof OPTIONS.boards> = async (input) => {
  if (input.values.upstream !== true) return listPlugins(input, 'board');
  const project = await loadProject(input);
  const ref = typeof input.values.micropython === 'string' ? input.values.micropython : undefined;
  const { label, boards } = await withMicroPythonTree(
    project,
    { ref, signal: input.signal },
    async (tree) => ({
      label: tree.label,
      boards: await listUpstreamBoards(tree.dir),
    }),
  );
  if (input.json) {
    input.stdout.write(`${JSON.stringify({ type: 'result', ok: true, micropython: label, boards })}\n`);
    return 0;
  }
  input.stdout.write(
    formatTable(
      ['BOARD', 'CHIP', 'VARIANTS', 'FLASH AT', 'VENDOR', 'URL'],
      boards.map((b) => [
        b.name,
        `${b.chip}${b.nativeUsb ? ' (USB)' : ''}`,
        b.variants.map((v) => v.name).join(', ') || '-',
        `0x${b.flashOffset.toString(16)}`,
        b.vendor ?? '',
        b.url ?? '',
      ]),
    ),
  );
  input.stdout.write(
    style.dim(
      `\n${boards.length} ESP boards of MicroPython ${label}. Build one with: mp build --board <BOARD> [--variant <VARIANT>]\n`,
    ),
  );
  return 0;
};
