/** `mp clean [--all]`: the project's build folders and copied volumes; with --all, mp's cache too. */

import { relative } from 'node:path';
import { cleanProject, formatBytes, userCacheDir } from '@mp/core';
import { loadProject } from '../project.ts';
import { stopResidents } from '../resident/client.ts';
import { style } from '../ui/style.ts';
import type { CommandRun, OPTIONS } from './table.ts';

export const run: CommandRun<typeof OPTIONS.clean> = async (input) => {
  const project = await loadProject(input);
  const all = input.values.all === true;
  // A resident mp goes with the warm containers: the next build starts from scratch in every way.
  const [result, residents] = await Promise.all([
    cleanProject({ project, all }),
    stopResidents(all ? { cacheDir: userCacheDir() } : {}),
  ]);
  if (input.json) {
    input.stdout.write(`${JSON.stringify({ type: 'result', ok: true, ...result, residents })}\n`);
    return 0;
  }
  const shown = (what: string) =>
    what.startsWith('/') ? relative(project.config.projectDir, what) || what : what;
  if (result.removed.length === 0) input.stdout.write('Nothing to clean.\n');
  for (const item of result.removed) {
    input.stdout.write(
      `${style.green('✔')} removed ${shown(item.what)}${item.bytes ? ` (${formatBytes(item.bytes)})` : ''}\n`,
    );
  }
  const freed = result.removed.reduce((sum, item) => sum + (item.bytes ?? 0), 0);
  if (freed) input.stdout.write(`${formatBytes(freed)} freed. The next build starts from scratch.\n`);
  for (const note of result.notes) input.stderr.write(`${style.dim(note)}\n`);
  return 0;
};
