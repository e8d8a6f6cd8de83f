/**
 * `mp dev --watch`: rebuild on save, flash the board, show its output. The work is core's
 * runDevSession; this file only turns its events into lines (or JSON) and the board's output
 * into stdout. Ctrl-C ends it; the container is removed and the port released on the way out.
 */

import { relative } from 'node:path';
import { type DevEvent, formatBytes, type MpError, runDevSession } from '@mp/core';
import { buildOverrides, loadProject } from '../project.ts';
import { reportError } from '../ui/errors.ts';
import { formatSeconds } from '../ui/progress.ts';
import { style } from '../ui/style.ts';
import type { CommandInput, CommandRun, OPTIONS } from './table.ts';

export const run: CommandRun<typeof OPTIONS.dev> = async (input) => {
  const { values } = input;
  const overrides = buildOverrides(values);
  const flash = values['no-flash'] !== true;
  const monitor = values['no-monitor'] !== true;
  const files = values['no-files'] !== true;
  const project = await loadProject(input, overrides); // fail fast on a bad config or board
  const at = (path: string) => relative(project.config.projectDir, path) || '.';
  const print = input.json ? (event: DevEvent) => printJson(input, event) : humanPrinter(input, at);
  await runDevSession({
    openProject: () => loadProject(input, overrides),
    signal: input.signal,
    onEvent: print,
    flash,
    monitor,
    files,
  });
  if (!input.json)
    input.stderr.write(`\n${style.dim('mp dev stopped: container removed, port released.')}\n`);
  return 0;
};

function printJson(input: CommandInput, event: DevEvent): void {
  if (event.type === 'dev:monitor') {
    input.stdout.write(
      `${JSON.stringify({ type: 'dev:monitor', text: Buffer.from(event.data).toString('utf8') })}\n`,
    );
    return;
  }
  if (
    event.type === 'dev:build-failed' ||
    event.type === 'dev:flash-failed' ||
    event.type === 'dev:put-failed'
  ) {
    input.stdout.write(`${JSON.stringify({ ...event, error: event.error.toJSON() })}\n`);
    return;
  }
  input.stdout.write(`${JSON.stringify(event)}\n`);
}

/** Steps worth a line while they run: the slow ones, and only until the first build is done. */
const SLOW_STEPS = new Set(['sources', 'toolchain', 'compile', 'write']);

function humanPrinter(input: CommandInput, at: (path: string) => string): (event: DevEvent) => void {
  let firstBuildDone = false;
  // The board's output rarely ends with a newline (the REPL prompt): start status lines on a new one.
  let boardLineOpen = false;
  const err = input.stderr;
  const line = (text: string) => {
    if (boardLineOpen) input.stdout.write('\n');
    boardLineOpen = false;
    err.write(`${style.dim(new Date().toTimeString().slice(0, 8))} ${text}\n`);
  };
  const failure = (error: MpError, next: string) => {
    if (boardLineOpen) input.stdout.write('\n');
    boardLineOpen = false;
    reportError(error, { json: false, stdout: input.stdout, stderr: err, aborted: false });
    line(style.dim(next));
  };
  return (event) => {
    switch (event.type) {
      case 'dev:watching':
        line(`${style.cyan('watching')} ${event.paths.map(at).join(', ')} ${style.dim('(Ctrl-C to stop)')}`);
        break;
      case 'dev:change':
        line(`${style.cyan('changed')} ${event.files.map(at).join(', ')}`);
        break;
      case 'dev:reload':
        line(`${style.cyan('config reloaded')}${event.configFile ? ` from ${at(event.configFile)}` : ''}`);
        break;
      case 'dev:syntax-error': {
        const p = event.problem;
        line(
          `${style.red('✖')} ${style.bold(`${at(p.file)}${p.line ? `:${p.line}` : ''}`)} ${p.message} ${style.dim('(nothing built or flashed; fix and save)')}`,
        );
        break;
      }
      case 'dev:build-start':
        line('building…');
        break;
      case 'dev:step':
        if (firstBuildDone) break;
        if (event.event.type === 'step:start' && SLOW_STEPS.has(event.event.id))
          line(style.dim(`  ${event.pipeline}: ${event.event.title}`));
        if (event.event.type === 'log' && event.event.level === 'warn')
          line(`  ${style.yellow('⚠')} ${event.event.message}`);
        break;
      case 'dev:built':
        firstBuildDone = true;
        line(
          `${style.green('✔')} ${event.result.upToDate ? 'firmware up to date' : 'built'} ${at(event.result.firmware)} ${style.dim(`in ${formatSeconds(event.ms / 1000)}`)}`,
        );
        break;
      case 'dev:build-failed':
        firstBuildDone = true;
        failure(event.error, 'the board keeps its firmware; watching for the next save');
        break;
      case 'dev:flash-start':
        line(`flashing ${event.port}…`);
        break;
      case 'dev:flashed': {
        const r = event.result;
        const what =
          r.mode === 'unchanged'
            ? 'board already up to date'
            : `wrote ${formatBytes(r.writtenBytes)} of ${formatBytes(r.imageBytes)} (${r.sectorsWritten}/${r.sectorsTotal} sectors${r.mode === 'full' ? ', full' : ''})`;
        line(`${style.green('✔')} flashed: ${what} ${style.dim(`in ${formatSeconds(event.ms / 1000)}`)}`);
        break;
      }
      case 'dev:flash-skipped':
        line(`${style.green('✔')} the board already runs this firmware ${style.dim('(not flashed again)')}`);
        break;
      case 'dev:flash-failed':
        failure(event.error, 'will flash when the board is back, or on the next save');
        break;
      case 'dev:put-start':
        line(
          `copying ${event.files.length === 1 ? event.files[0]!.to : `${event.files.length} files`} to the board…`,
        );
        break;
      case 'dev:put': {
        const copied = event.outcomes.filter((o) => o.status === 'copied');
        line(
          `${style.green('✔')} ${copied.length ? `copied ${copied.map((o) => `${o.file.to} (${formatBytes(o.bytes)})`).join(', ')}` : 'files on the board up to date'}${style.dim(`; soft reset, in ${formatSeconds(event.ms / 1000)}`)}`,
        );
        break;
      }
      case 'dev:put-failed':
        failure(event.error, 'the firmware is flashed; the files are copied after the next flash');
        break;
      case 'dev:monitor':
        input.stdout.write(event.data);
        if (event.data.length) boardLineOpen = event.data[event.data.length - 1] !== 0x0a;
        break;
      case 'dev:idle':
        break;
    }
  };
}
