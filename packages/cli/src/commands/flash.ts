/**
 * `mp flash [firmware.bin]`: the newest export of the project's board (or the given file at the
 * board's layout) onto the board over serial, writing only the sectors that changed.
 */
import { resolve } from 'node:path';
import {
  asMpError,
  type ConfigOverrides,
  createFlashJob,
  type FirmwareImage,
  type FlashResult,
  findLatestExport,
  firmwareFromFile,
  firmwareFromSidecar,
  formatBytes,
  MpError,
  type PutFile,
  type PutOutcome,
  putAfterFlash,
  SerialMonitor,
} from '@mp/core';
import { loadProject, positiveInt } from '../project.ts';
import { formatSeconds } from '../ui/progress.ts';
import { renderSteps } from '../ui/run-steps.ts';
import { style } from '../ui/style.ts';
import { assertNotJson, consoleUntilExit } from './monitor.ts';
import { pickPort } from './ports.ts';
import { putJson, putProgress, reportPut } from './put.ts';
import type { CommandInput, CommandRun, OPTIONS } from './table.ts';

export const run: CommandRun<typeof OPTIONS.flash> = async (input) => {
  const { values } = input;
  if (values.monitor === true) assertNotJson(input, '--monitor');
  const overrides: ConfigOverrides = {};
  if (typeof values.board === 'string') overrides.board = values.board;
  if (typeof values.port === 'string') overrides.port = values.port;
  if (typeof values.baud === 'string') overrides.baud = positiveInt('--baud', values.baud);
  const project = await loadProject(input, overrides);
  const firmware = await firmwareToFlash(input, project);
  const selected = await pickPort(input, project.config.flash.port, project.stateDir);
  const monitor = values.monitor === true ? new SerialMonitor({ path: selected.path }) : undefined;
  const job = createFlashJob({
    firmware,
    port: selected.path,
    baudRate: project.config.flash.baud,
    full: values.full === true,
    force: values.force === true,
    erase: values.erase === true,
    monitor,
  });
  const started = performance.now();
  try {
    await renderSteps(job.steps, job, input);
  } finally {
    await job.dispose();
  }
  const result = job.result!;
  if (!input.json) input.stderr.write(`${summary(result, (performance.now() - started) / 1000)}\n`);
  const files =
    values['no-files'] === true || project.config.files.length === 0
      ? undefined
      : await copyFilesAfterFlash(
          input,
          project.config.files,
          result.portAfterRestart ?? selected.path,
          monitor,
        );
  if (input.json) {
    input.stdout.write(
      `${JSON.stringify({ type: 'result', ok: true, firmware: firmware.file, board: firmware.boardId, flash: result, ...(files ? { files: putJson(files) } : {}) })}\n`,
    );
    return 0;
  }
  if (!monitor) return 0;
  return consoleUntilExit(input, monitor, `${monitor.path} at ${monitor.baudRate} baud`);
};

async function firmwareToFlash(
  input: CommandInput,
  project: Awaited<ReturnType<typeof loadProject>>,
): Promise<FirmwareImage> {
  const boardId = project.config.board;
  const file = input.positionals[0];
  if (file) return firmwareFromFile(resolve(input.cwd, file), await project.plugins.load('board', boardId));
  return firmwareFromSidecar(await findLatestExport(project.config.exportDir, boardId));
}

/** "✔ Flashed ESP8266EX on /dev/ttyUSB0: wrote 4.0 KiB of 320.0 KiB (1 of 80 sectors, 3.5 KiB sent) in 2.1s" */
function summary(result: FlashResult, seconds: number): string {
  const what =
    result.mode === 'unchanged'
      ? `already up to date (${formatBytes(result.imageBytes)} checked, nothing written)`
      : `wrote ${formatBytes(result.writtenBytes)} of ${formatBytes(result.imageBytes)} (${result.sectorsWritten} of ${result.sectorsTotal} sectors, ${formatBytes(result.compressedBytes)} compressed${result.mode === 'full' && result.fullReason ? `; full write: ${result.fullReason}` : ''})`;
  return `${style.green('✔')} Flashed ${result.device.description} on ${result.port}: ${what} in ${formatSeconds(seconds)}`;
}

/**
 * The config's `files` onto the board that was just flashed and reset: over its raw REPL, only
 * those that differ, then a soft reset so main.py runs with them. A board that does not answer
 * fails the command with the flash already done, and says so.
 */
async function copyFilesAfterFlash(
  input: CommandInput,
  files: PutFile[],
  port: string,
  monitor: SerialMonitor | undefined,
): Promise<PutOutcome[]> {
  const started = performance.now();
  if (!input.json)
    input.stderr.write(
      style.dim(`Copying ${files.length} file${files.length === 1 ? '' : 's'} to the board…\n`),
    );
  try {
    const outcomes = await putAfterFlash({ port, files, transport: monitor, onProgress: putProgress(input) });
    if (!input.json) reportPut(input, outcomes, port, started);
    return outcomes;
  } catch (error) {
    const failure = asMpError(error, 'REPL_PROTOCOL');
    throw new MpError({
      code: failure.code,
      message: `The firmware is flashed, but the config's files were not copied: ${failure.message}`,
      hint: `${failure.hint ?? ''} Copy them later with \`mp put\`, or flash with --no-files.`.trim(),
      file: failure.file,
      exitCode: failure.exitCode,
      cause: error,
    });
  }
}
