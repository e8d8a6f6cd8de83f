/**
 * `mp targets`: the config's targets, each with what it builds (as `mp boards` lists boards), and
 * the engines `mp build --all` spreads them over.
 */
import { listTargets } from '@mp/core';
import { loadProject } from '../project.ts';
import { style } from '../ui/style.ts';
import { formatTable } from '../ui/table.ts';
import type { CommandRun, OPTIONS } from './table.ts';

export const run: CommandRun<typeof OPTIONS.targets> = async (input) => {
  const project = await loadProject(input);
  const targets = listTargets(project);
  const { engines, parallel } = project.config;
  const engineRows = engines.map((e) => ({
    name: e.name,
    address: e.host ?? (e.context ? `context ${e.context}` : 'DOCKER_HOST'),
    parallel: e.parallel ?? parallel ?? null,
    tls: Boolean(e.certPath || e.tlsVerify),
    mounts: e.mounts ?? null,
  }));
  if (input.json) {
    input.stdout.write(
      `${JSON.stringify({ type: 'result', ok: true, targets, engines: engineRows, parallel: parallel ?? null })}\n`,
    );
    return 0;
  }
  if (targets.length === 0) {
    input.stdout.write(
      `No targets in ${project.config.configFile ?? 'this project (it has no config file)'}.\n${style.dim("Add them to mp.config, e.g. targets: { d1mini: { board: 'esp8266-d1mini' }, esp32: { board: 'esp32-generic' } } (README \"Many targets\").")}\n`,
    );
    return 0;
  }
  input.stdout.write(
    formatTable(
      ['TARGET', 'BOARD', 'VARIANT', 'MICROPYTHON', 'LIBRARIES', 'MAKE'],
      targets.map((t) => [
        t.name,
        t.board,
        t.variant ?? '-',
        t.micropython,
        t.libraries.join(', ') || 'none',
        Object.entries(t.make)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ') || '-',
      ]),
    ),
  );
  const slots = (p: number | null) => (p ? `${p} at once` : 'slots from its cores and memory');
  const where = engineRows.length
    ? engineRows
        .map((e) => `  ${e.name} (${e.address}${e.tls ? ', TLS' : ''}, ${slots(e.parallel)})`)
        .join('\n')
    : `  the engine of DOCKER_HOST (${slots(parallel ?? null)})`;
  input.stdout.write(
    style.dim(
      `\n${targets.length} target${targets.length === 1 ? '' : 's'}. Build them with: mp build --all, or mp build --target <TARGET>\nEngines:\n${where}\n`,
    ),
  );
  return 0;
};
