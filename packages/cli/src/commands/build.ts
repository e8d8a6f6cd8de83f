/**
 * `mp build`: resolve, fetch, compile in the toolchain container, export. The work is core's
 * build Steps; this command renders them and prints the result.
 */
import { relative } from 'node:path';
import { type BuildPlan, type BuildResult, buildPlan, createBuild, runSteps } from '@mp/core';
import { buildOverrides, loadProject } from '../project.ts';
import { formatBytes, formatSeconds } from '../ui/progress.ts';
import { renderSteps } from '../ui/run-steps.ts';
import { style } from '../ui/style.ts';
import type { CommandInput, CommandRun, OPTIONS } from './table.ts';

export const run: CommandRun<typeof OPTIONS.build> = async (input) => {
  const project = await loadProject(input, buildOverrides(input.values));
  const force = input.values.force === true;

  if (input.values['print-manifest'] === true) {
    const build = createBuild({ project, force, manifestOnly: true });
    try {
      // Quietly: stdout carries only the manifest, so it can be redirected to a file.
      await runSteps(build.steps, build.ctx, { signal: input.signal });
    } finally {
      await build.dispose();
    }
    const manifest = build.ctx.manifest ?? '';
    if (input.json) input.stdout.write(`${JSON.stringify({ type: 'result', ok: true, manifest })}\n`);
    else input.stdout.write(manifest);
    return 0;
  }

  if (input.values['dry-run'] === true) {
    const build = createBuild({ project, force, manifestOnly: true });
    try {
      // With --json only the plan is printed (one object); otherwise the steps go to stderr.
      if (input.json) await runSteps(build.steps, build.ctx, { signal: input.signal });
      else await renderSteps(build.steps, build.ctx, { ...input, stdout: input.stderr });
    } finally {
      await build.dispose();
    }
    const plan = await buildPlan(build.ctx);
    if (input.json) input.stdout.write(`${JSON.stringify({ type: 'result', ok: true, plan })}\n`);
    else input.stdout.write(formatPlan(plan, project.config.projectDir));
    return 0;
  }

  const build = createBuild({ project, force });
  try {
    await renderSteps(build.steps, build.ctx, input);
  } finally {
    await build.dispose();
  }
  const result = build.ctx.result!;
  const { container } = build.ctx;
  printResult(
    input,
    result,
    project.config.projectDir,
    !container ? 'none' : container.reused ? 'reused' : 'started',
  );
  return 0;
};

function shown(projectDir: string, path: string): string {
  const rel = relative(projectDir, path);
  return rel && !rel.startsWith('..') ? rel : path;
}

/** How the build got its toolchain container: none (nothing compiled), one left warm, or a new one. */
type ContainerUse = 'none' | 'reused' | 'started';

function printResult(
  input: CommandInput,
  result: BuildResult,
  projectDir: string,
  container: ContainerUse,
): void {
  const { sidecar } = result;
  if (input.json) {
    input.stdout.write(
      `${JSON.stringify({
        type: 'result',
        ok: true,
        upToDate: result.upToDate,
        fromCache: result.fromCache === true,
        container,
        firmware: result.firmware,
        sidecar: result.sidecarFile,
        sha256: sidecar.sha256,
        size: sidecar.size,
        micropython: sidecar.micropython,
        board: sidecar.board.id,
        exportedFiles: sidecar.exportedFiles,
        durationMs: result.durationMs,
        logFile: result.logFile,
      })}\n`,
    );
    return;
  }
  const name = shown(projectDir, result.firmware);
  if (result.upToDate) {
    input.stdout.write(
      `${style.green('✔')} Up to date: ${style.bold(name)} (nothing changed since it was built)\n`,
    );
    return;
  }
  if (result.fromCache) {
    const was = sidecar.fromCache;
    input.stdout.write(
      `${style.green('✔')} From the firmware cache: ${style.bold(name)} (built ${was ? `${was.builtAt.slice(0, 19).replace('T', ' ')} in ${formatSeconds(was.durationMs / 1000)}` : 'before'} from the same inputs; nothing compiled, no container) in ${formatSeconds(result.durationMs / 1000)}\n`,
    );
    input.stdout.write(`  ${style.dim(`provenance: ${shown(projectDir, result.sidecarFile)}`)}\n`);
    return;
  }
  input.stdout.write(
    `${style.green('✔')} Built ${style.bold(name)} (${formatBytes(sidecar.size)}, MicroPython ${sidecar.micropython.tag ?? sidecar.micropython.sha?.slice(0, 10) ?? 'local'}) in ${formatSeconds(result.durationMs / 1000)}\n`,
  );
  for (const file of sidecar.exportedFiles) {
    const note =
      file.status === 'kept'
        ? style.yellow(`kept your edited copy; new version in ${file.file}.new`)
        : file.status === 'unchanged'
          ? 'unchanged'
          : `from ${file.library}`;
    input.stdout.write(`  ${file.file} ${style.dim(`(${note})`)}\n`);
  }
  input.stdout.write(`  ${style.dim(`provenance: ${shown(projectDir, result.sidecarFile)}`)}\n`);
}

/** The plan as a person reads it: one labelled line per decision, then the manifest. */
function formatPlan(plan: BuildPlan, projectDir: string): string {
  const mp = plan.micropython;
  const rows: Array<[string, string]> = [
    [
      'board',
      `${plan.board.id} (port ${plan.board.port}${plan.board.board ? `, BOARD=${plan.board.board}` : ''}${plan.board.variant ? `, variant ${plan.board.variant}` : ''}${plan.board.chip ? `, chip ${plan.board.chip}` : ''})`,
    ],
    [
      'micropython',
      `${mp.tag ?? mp.version ?? 'local'} ${mp.sha ? mp.sha.slice(0, 12) : ''}${mp.path ? ` at ${mp.path}` : mp.git ? ` from ${mp.git}` : ''}`.trim(),
    ],
    ...plan.libraries.map((l): [string, string] => [
      'library',
      `${l.id} ${l.sha ? l.sha.slice(0, 12) : ''} ${l.path ?? l.git ?? ''} (${l.frozen.length} files)`,
    ]),
    ['modules', plan.modules.length ? plan.modules.join(', ') : 'none'],
    ['toolchain', `${plan.toolchain.ref ?? plan.toolchain.dockerfile} (${plan.toolchain.reason})`],
    ['make', plan.make.command],
    [
      'submodules',
      `${plan.submodules.fetch ? plan.submodules.fetch.join(' ') || 'none' : 'as `make submodules` lists them'} (${plan.submodules.source})${plan.submodules.skip.length ? `; skipped: ${plan.submodules.skip.join(' ')}` : ''}`,
    ],
    ['export', shown(projectDir, plan.export.firmware)],
  ];
  if (plan.flash)
    rows.push([
      'flash',
      plan.flash.segments.map((s) => `${s.artifact} at 0x${s.offset.toString(16)}`).join(', '),
    ]);
  const width = Math.max(...rows.map(([k]) => k.length));
  return `${rows.map(([k, v]) => `${style.bold(k.padEnd(width))}  ${v}`).join('\n')}\n\n${style.dim('# frozen manifest')}\n${plan.manifest}`;
}
