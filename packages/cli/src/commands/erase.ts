/**
 * `mp erase`: the whole flash of the board. It cannot be undone (the firmware and the files on
 * the board's filesystem go), so it asks in a terminal and needs --yes anywhere else.
 */
import { createInterface } from 'node:readline/promises';
import { createEraseJob, MpError } from '@mp/core';
import { loadProject } from '../project.ts';
import { formatSeconds } from '../ui/progress.ts';
import { renderSteps } from '../ui/run-steps.ts';
import { style } from '../ui/style.ts';
import { pickPort } from './ports.ts';
import type { CommandRun, OPTIONS } from './table.ts';

export const run: CommandRun<typeof OPTIONS.erase> = async (input) => {
  const { values } = input;
  const project = await loadProject(input, {
    ...(typeof values.board === 'string' ? { board: values.board } : {}),
    ...(typeof values.port === 'string' ? { port: values.port } : {}),
  });
  const board = await project.plugins.load('board', project.config.board);
  const selected = await pickPort(input, project.config.flash.port, project.stateDir);
  if (values.yes !== true) {
    const interactive = !input.json && process.stdin.isTTY === true && input.stderr.isTTY === true;
    if (!interactive) {
      throw new MpError({
        code: 'USAGE',
        message: `mp erase would erase the whole flash of the board on ${selected.path} and needs a confirmation`,
        hint: 'Run it in a terminal to be asked, or pass --yes.',
        exitCode: 2,
      });
    }
    const rl = createInterface({ input: process.stdin, output: input.stderr });
    const answer = await rl.question(
      `Erase the whole flash of the board on ${selected.path}? Its firmware and files will be gone. [y/N] `,
    );
    rl.close();
    if (!/^y(es)?$/i.test(answer.trim())) {
      input.stderr.write('Nothing was erased.\n');
      return 1;
    }
  }
  const job = createEraseJob({ port: selected.path, chip: board.chip, boardId: board.id });
  try {
    await renderSteps(job.steps, job, input);
  } finally {
    await job.dispose();
  }
  const result = job.result!;
  if (input.json) {
    input.stdout.write(`${JSON.stringify({ type: 'result', ok: true, erase: result })}\n`);
    return 0;
  }
  input.stderr.write(
    `${style.green('✔')} Erased the ${result.flashSize ?? ''} flash of ${result.chip} on ${result.port} in ${formatSeconds(result.ms / 1000)}; the next \`mp flash\` writes the whole image\n`,
  );
  return 0;
};
