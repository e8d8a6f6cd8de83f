import { listPlugins } from './list-plugins.ts';
import type { CommandRun } from './table.ts';

export const run: CommandRun = (input) => listPlugins(input, 'board');
