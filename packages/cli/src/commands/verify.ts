/**
 * `mp verify <firmware or sidecar>`: rebuilds the firmware from its sidecar's provenance from
 * scratch, and says whether the bytes are the same; if not, which input differs (core's
 * createVerification). Exit 0 when identical, 1 (VERIFY_DIFFERENT) when not.
 */
import { relative } from 'node:path';
import { createVerification, MpError, UsageError, type VerifyResult } from '@mp/core';
import { loadProject } from '../project.ts';
import { formatSeconds } from '../ui/progress.ts';
import { renderSteps } from '../ui/run-steps.ts';
import { style } from '../ui/style.ts';
import type { CommandRun, OPTIONS } from './table.ts';

export const run: CommandRun<typeof OPTIONS.verify> = async (input) => {
  const file = input.positionals[0];
  if (!file)
    throw new UsageError(
      'mp verify needs the firmware to check (or its sidecar)',
      'For example: mp verify export/ESP8266-micropython-v1.28.0-mqtt-as-20261121-233312.bin',
    );
  const project = await loadProject(input);
  const started = performance.now();
  const verification = await createVerification({ project, file });
  let result: VerifyResult;
  try {
    await renderSteps(verification.build.steps, verification.build.ctx, input);
    result = await verification.finish();
  } finally {
    await verification.dispose();
  }
  const shown = (path: string) => {
    const rel = relative(project.config.projectDir, path);
    return rel && !rel.startsWith('..') ? rel : path;
  };
  const name = shown(result.sidecarFile.replace(/\.json$/, ''));
  if (input.json) input.stdout.write(`${JSON.stringify({ type: 'verify', ...result })}\n`);
  const took = formatSeconds((performance.now() - started) / 1000);
  if (result.identical) {
    if (input.json) input.stdout.write(`${JSON.stringify({ type: 'result', ok: true, ...result })}\n`);
    else
      input.stdout.write(
        `${style.green('✔')} Identical: ${style.bold(name)} is what its provenance builds (sha256 ${result.sha256.rebuilt.slice(0, 16)}…, rebuilt from scratch in ${took})\n`,
      );
    return 0;
  }
  const lines = [
    `Rebuilding ${name} from its provenance gives sha256 ${result.sha256.rebuilt}, not ${result.sha256.recorded}`,
    ...result.differences.map((d) => `  ${d.input}: recorded ${d.recorded}, now ${d.now}`),
  ];
  if (result.notReproducible)
    lines.push('  Every recorded input is the same: the build itself is not reproducible.');
  lines.push(`  The rebuilt firmware: ${result.rebuilt}`);
  throw new MpError({
    code: 'VERIFY_DIFFERENT',
    message: lines.join('\n'),
    file: result.sidecarFile,
    hint: result.notReproducible
      ? 'Compare the two files (cmp -l) and report it with both, and with the mp version.'
      : 'Those inputs changed since the build: restore them (git checkout the modules, the config) to rebuild the same firmware, or build anew.',
  });
};
