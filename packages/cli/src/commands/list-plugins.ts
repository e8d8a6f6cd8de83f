/** Shared by `mp boards` and `mp libs`: import every plugin of a kind and print a table. */
import type { BoardPlugin, LibraryPlugin, MpError, PluginKind } from '@mp/core';
import { loadProject } from '../project.ts';
import { style } from '../ui/style.ts';
import { formatTable } from '../ui/table.ts';
import type { CommandInput } from './table.ts';

export async function listPlugins(input: CommandInput, kind: PluginKind): Promise<number> {
  const project = await loadProject(input);
  const { plugins, errors } = await project.plugins.loadAll(kind);
  const rows = plugins.map(({ listing, plugin }) => {
    const ports =
      kind === 'board'
        ? (plugin as BoardPlugin).port
        : ((plugin as LibraryPlugin).ports?.join(', ') ?? 'all');
    return { id: listing.id, title: plugin.title, package: listing.source, ports };
  });
  if (input.json) {
    input.stdout.write(
      `${JSON.stringify({ type: 'result', ok: errors.length === 0, [kind === 'board' ? 'boards' : 'libraries']: rows, errors: errors.map((e: MpError) => e.toJSON()) })}\n`,
    );
  } else {
    input.stdout.write(
      formatTable(
        ['ID', 'TITLE', 'PACKAGE', 'PORTS'],
        rows.map((r) => [r.id, r.title, r.package, r.ports]),
      ),
    );
    for (const error of errors) {
      input.stderr.write(
        `\n${style.red('✖')} ${error.message}\n${error.hint ? `  ${style.cyan('→')} ${error.hint}\n` : ''}`,
      );
    }
  }
  return errors.length === 0 ? 0 : 1;
}
