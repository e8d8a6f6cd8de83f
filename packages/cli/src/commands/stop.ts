/**
 * `mp stop [--all]`: removes the toolchain containers builds left warm under a lease, now, and ends
 * the resident mp of this environment (with --all: every one of this user's; resident/server.ts).
 */
import { stopContainers } from '@mp/core';
import { loadProject } from '../project.ts';
import { stopResidents } from '../resident/client.ts';
import { style } from '../ui/style.ts';
import type { CommandRun, OPTIONS } from './table.ts';

export const run: CommandRun<typeof OPTIONS.stop> = async (input) => {
  const project = await loadProject(input);
  const all = input.values.all === true;
  const [result, residents] = await Promise.all([stopContainers({ project, all }), stopResidents({ all })]);
  if (input.json) {
    input.stdout.write(`${JSON.stringify({ type: 'result', ok: true, ...result, residents })}\n`);
    return 0;
  }
  if (result.stopped.length === 0)
    input.stdout.write(`No toolchain container of ${all ? 'mp' : 'this project'} is running.\n`);
  for (const id of result.stopped)
    input.stdout.write(`${style.green('✔')} removed container ${id.slice(0, 12)}\n`);
  if (residents > 0)
    input.stdout.write(
      `${style.green('✔')} ended ${residents === 1 ? 'the resident mp process' : `${residents} resident mp processes`}\n`,
    );
  for (const note of result.notes) input.stderr.write(`${style.dim(note)}\n`);
  return 0;
};
