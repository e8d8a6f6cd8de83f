/**
 * `mp dev --watch`: rebuild on save, flash the board, show its output. The work is core's
 * runDevSession; this file only turns its events into lines (or JSON) and the board's output
 * into stdout. Ctrl-C ends it; the container is removed and the port released on the way out.
 */
import { relative } from 'node:path';
import { type DevEvent, runDevSession, type StepEvent } from '@mp/core';
import { buildOverrides, loadProject } from '../project.ts';
import { reportError } from '../ui/errors.ts';
import { formatBytes, formatSeconds } from '../ui/progress.ts';
import { style } from '../ui/style.ts';
import type { CommandInput, CommandRun } from './table.ts';

export const run: CommandRun = async (input) => {
  const { values } = input;
  const overrides = buildOverrides(values);
  const flash = values['no-flash'] !== true;
  const monitor = values['no-monitor'] !== true;
  const project = await loadProject(input, overrides); // fail fast on a bad config or board
  const at = (path: string) => relative(project.config.projectDir, path) || '.';
  const print = input.json ? (event: DevEvent) => printJson(input, event) : (event: DevEvent) => printHuman(input, event, at);
  await runDevSession({
    openProject: () => loadProject(input, overrides),
    signal: input.signal,
    onEvent: print,
    flash,
    monitor,
  });
  if (!input.json) input.stderr.write(`\n${style.dim('mp dev stopped: container removed, port released.')}\n`);
  return 0;
};

function printJson(input: CommandInput, event: DevEvent): void {
  if (event.type === 'dev:monitor') {
    input.stdout.write(`${JSON.stringify({ type: 'dev:monitor', text: Buffer.from(event.data).toString('utf8') })}\n`);
    return;
  }
  if (event.type === 'dev:build-failed' || event.type === 'dev:flash-failed') {
    input.stdout.write(`${JSON.stringify({ ...event, error: event.error.toJSON() })}\n`);
    return;
  }
  input.stdout.write(`${JSON.stringify(event)}\n`);
}

/** Steps worth a line while they run: the slow ones. */
const SLOW_STEPS = new Set(['sources', 'toolchain', 'compile', 'write']);

function printHuman(input: CommandInput, event: DevEvent, at: (path: string) => string): void {
  const err = input.stderr;
  const time = style.dim(new Date().toTimeString().slice(0, 8));
  switch (event.type) {
    case 'dev:watching':
      err.write(`${time} ${style.cyan('watching')} ${event.paths.map(at).join(', ')} ${style.dim('(Ctrl-C to stop)')}\n`);
      break;
    case 'dev:change':
      err.write(`${time} ${style.cyan('changed')} ${event.files.map(at).join(', ')}\n`);
      break;
    case 'dev:reload':
      err.write(`${time} ${style.cyan('config reloaded')}${event.configFile ? ` from ${at(event.configFile)}` : ''}\n`);
      break;
    case 'dev:syntax-error': {
      const p = event.problem;
      err.write(`${time} ${style.red('✖')} ${style.bold(`${at(p.file)}${p.line ? `:${p.line}` : ''}`)} ${p.message} ${style.dim('(nothing built or flashed; fix and save)')}\n`);
      break;
    }
    case 'dev:build-start':
      err.write(`${time} building…\n`);
      break;
    case 'dev:step':
      printStep(input, event.pipeline, event.event);
      break;
    case 'dev:built':
      err.write(
        `${time} ${style.green('✔')} ${event.result.upToDate ? 'firmware up to date' : 'built'} ${at(event.result.firmware)} ${style.dim(`in ${formatSeconds(event.ms / 1000)}`)}\n`,
      );
      break;
    case 'dev:build-failed':
      reportError(event.error, { json: false, stdout: input.stdout, stderr: err, aborted: false });
      err.write(`${time} ${style.dim('the board keeps its firmware; watching for the next save')}\n`);
      break;
    case 'dev:flash-start':
      err.write(`${time} flashing ${event.port}…\n`);
      break;
    case 'dev:flashed': {
      const r = event.result;
      const what = r.mode === 'unchanged' ? 'board already up to date' : `wrote ${formatBytes(r.writtenBytes)} of ${formatBytes(r.imageBytes)} (${r.sectorsWritten}/${r.sectorsTotal} sectors${r.mode === 'full' ? ', full' : ''})`;
      err.write(`${time} ${style.green('✔')} flashed: ${what} ${style.dim(`in ${formatSeconds(event.ms / 1000)}`)}\n`);
      break;
    }
    case 'dev:flash-failed':
      reportError(event.error, { json: false, stdout: input.stdout, stderr: err, aborted: false });
      err.write(`${time} ${style.dim('will flash when the board is back, or on the next save')}\n`);
      break;
    case 'dev:monitor':
      input.stdout.write(event.data);
      break;
    case 'dev:idle':
      break;
  }
}

function printStep(input: CommandInput, pipeline: 'build' | 'flash', event: StepEvent): void {
  if (event.type === 'step:start' && SLOW_STEPS.has(event.id)) input.stderr.write(`  ${style.dim(`${pipeline}: ${event.title}`)}\n`);
  if (event.type === 'log' && event.level === 'warn') input.stderr.write(`  ${style.yellow('⚠')} ${event.message}\n`);
}
