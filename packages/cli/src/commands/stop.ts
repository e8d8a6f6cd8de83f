/** `mp stop [--all]`: removes the toolchain containers builds left warm under a lease, now. */
import { stopContainers } from '@mp/core';
import { loadProject } from '../project.ts';
import { style } from '../ui/style.ts';
import type { CommandRun, OPTIONS } from './table.ts';

export const run: CommandRun<typeof OPTIONS.stop> = async (input) => {
  const project = await loadProject(input);
  const all = input.values.all === true;
  const result = await stopContainers({ project, all });
  if (input.json) {
    input.stdout.write(`${JSON.stringify({ type: 'result', ok: true, ...result })}\n`);
    return 0;
  }
  if (result.stopped.length === 0)
    input.stdout.write(`No toolchain container of ${all ? 'mp' : 'this project'} is running.\n`);
  for (const id of result.stopped)
    input.stdout.write(`${style.green('✔')} removed container ${id.slice(0, 12)}\n`);
  for (const note of result.notes) input.stderr.write(`${style.dim(note)}\n`);
  return 0;
};
