/**
 * `mp put FILE… [--to /dir]`: copies files to the board over its raw REPL, only those whose hash
 * on the board differs, with progress; the port is chosen as for `mp flash` and `mp monitor`.
 */

import { resolve } from 'node:path';
import { formatBytes, MpError, type PutFile, type PutOutcome, putTargets, putToBoard } from '@mp/core';
import { loadProject, positiveInt } from '../project.ts';
import { style } from '../ui/style.ts';
import { pickPort } from './ports.ts';
import type { CommandInput, CommandRun, OPTIONS } from './table.ts';

export const run: CommandRun<typeof OPTIONS.put> = async (input) => {
  const project = await loadProject(
    input,
    typeof input.values.port === 'string' ? { port: input.values.port } : {},
  );
  const baudRate = typeof input.values.baud === 'string' ? positiveInt('--baud', input.values.baud) : 115200;
  const selected = await pickPort(input, project.config.flash.port, project.stateDir);
  const named = input.positionals.map((file) => resolve(project.config.projectDir, file));
  if (named.length === 0 && project.config.files.length === 0) {
    throw new MpError({
      code: 'USAGE',
      message: '`mp put` was given no files, and the config lists none under `files`',
      hint: "Name the files (mp put export/mqtt_local.py main.py), or list them in mp.config: files: ['export/mqtt_local.py'].",
      exitCode: 2,
    });
  }
  const to = typeof input.values.to === 'string' ? input.values.to : undefined;
  // Named files go to --to (default /); the config's keep their own board paths unless --to moves them.
  const files = named.length
    ? putTargets(named, to)
    : to
      ? putTargets(
          project.config.files.map((f) => f.from),
          to,
        )
      : project.config.files;
  const started = performance.now();
  const outcomes = await putToBoard({
    port: selected.path,
    baudRate,
    files,
    onProgress: putProgress(input),
  });
  reportPut(input, outcomes, selected.path, started);
  return 0;
};

/** Progress of each file's copy on a terminal, at most ten lines a second. */
export function putProgress(input: CommandInput): (file: PutFile, done: number, total: number) => void {
  let lastShown = 0;
  return (file, done, total) => {
    if (input.json || !input.stderr.isTTY) return;
    const now = performance.now();
    if (done < total && now - lastShown < 100) return;
    lastShown = now;
    input.stderr.write(
      `\r${style.dim(`  ${file.to} ${formatBytes(done)} of ${formatBytes(total)}`)}\x1b[K${done === total ? '\n' : ''}`,
    );
  };
}

/** One line per file, then the total; `--json`: one result object. */
export function reportPut(input: CommandInput, outcomes: PutOutcome[], port: string, started: number): void {
  const copied = outcomes.filter((o) => o.status === 'copied');
  if (input.json) {
    input.stdout.write(`${JSON.stringify({ type: 'result', ok: true, port, files: putJson(outcomes) })}\n`);
    return;
  }
  for (const o of outcomes)
    input.stdout.write(
      `  ${o.status === 'copied' ? style.green('↑') : style.dim('=')} ${o.file.to} ${style.dim(o.status === 'copied' ? `(${formatBytes(o.bytes)})` : '(unchanged)')}\n`,
    );
  input.stdout.write(
    `${style.green('✔')} ${copied.length ? `Copied ${copied.length} of ${outcomes.length} file${outcomes.length === 1 ? '' : 's'}` : `All ${outcomes.length} file${outcomes.length === 1 ? ' is' : 's are'} up to date`} on ${port} in ${((performance.now() - started) / 1000).toFixed(1)}s\n`,
  );
}

export function putJson(outcomes: PutOutcome[]) {
  return outcomes.map((o) => ({ from: o.file.from, to: o.file.to, status: o.status, bytes: o.bytes }));
}
