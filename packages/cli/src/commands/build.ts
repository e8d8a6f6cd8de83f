/**
 * `mp build`: resolve, fetch, compile in the toolchain container, export. The work is core's
 * build Steps; this command renders them and prints the result.
 */

import { relative } from 'node:path';
import { Writable } from 'node:stream';
import {
  type BuildPlan,
  type BuildResult,
  buildPlan,
  buildTargets,
  createBuild,
  formatBytes,
  leaseSecondsFromEnv,
  runSteps,
  type StepEvent,
  type TargetEvent,
  type TargetOutcome,
  type TargetsRun,
  UsageError,
} from '@mp/core';
import { buildOverrides, loadProject, positiveInt } from '../project.ts';
import { inResident, wantResident } from '../resident/client.ts';
import { formatSeconds } from '../ui/progress.ts';
import { plainObserver, renderSteps } from '../ui/run-steps.ts';
import { style } from '../ui/style.ts';
import { formatTable } from '../ui/table.ts';
import type { CommandInput, CommandRun, OPTIONS } from './table.ts';

export const run: CommandRun<typeof OPTIONS.build> = async (input) => {
  // Warm under the lease, as the toolchain container is: the next build runs in this mp, loaded.
  wantResident(leaseSecondsFromEnv());
  if (input.values.all === true || input.values.target !== undefined) return buildTargetsCommand(input);
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
        cacheSource: result.fromCache ? (result.cacheSource ?? 'local') : null,
        container,
        resident: inResident(),
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
      `${style.green('✔')} From the ${result.cacheSource === 'remote' ? 'remote ' : ''}firmware cache: ${style.bold(name)} (built ${was ? `${was.builtAt.slice(0, 19).replace('T', ' ')} in ${formatSeconds(was.durationMs / 1000)}` : 'before'} from the same inputs; nothing compiled, no container) in ${formatSeconds(result.durationMs / 1000)}\n`,
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

// ── mp build --all / --target NAME… ──

/** Flags that pick one build, which a target names itself (or which show one build's plan). */
const SINGLE_BUILD_FLAGS = ['board', 'variant', 'print-manifest', 'dry-run'] as const;

/**
 * Every target chosen, side by side over the engines (core's buildTargets): progress on stderr,
 * one line per event and target; then a table (target, result, size, time, cache hit, engine) on
 * stdout, or with --json the same rows in the result. Exit 1 when a target failed.
 */
async function buildTargetsCommand(input: CommandInput<typeof OPTIONS.build>): Promise<number> {
  const { values } = input;
  const single = SINGLE_BUILD_FLAGS.find((flag) => values[flag] !== undefined);
  if (single)
    throw new UsageError(
      `--${single} is for one build; with --all or --target each target names its own board and variant`,
      'Set them per target in mp.config `targets`, or build one board with `mp build` alone.',
    );
  if (values.all === true && values.target !== undefined)
    throw new UsageError('--all and --target both choose targets', 'Give one of them.');
  const overrides = buildOverrides(values);
  if (typeof values.parallel === 'string') overrides.parallel = positiveInt('--parallel', values.parallel);
  const project = await loadProject(input, overrides);
  const { projectDir } = project.config;
  const observe = input.json ? jsonTargetEvents(input.stdout) : targetProgress(input.stderr, projectDir);
  const run = await buildTargets({
    project,
    targets: values.all === true ? 'all' : (values.target ?? []),
    force: values.force === true,
    signal: input.signal,
    observer: observe,
  });
  const cancelled = input.signal.aborted;
  const exitCode = run.ok ? 0 : cancelled ? 130 : 1;
  if (input.json) {
    const failed = run.outcomes.filter((o) => o.status === 'failed').map((o) => o.target);
    input.stdout.write(
      `${JSON.stringify({
        type: 'result',
        ok: run.ok,
        targets: run.outcomes.map((o) => targetRow(o)),
        index: run.index,
        engines: run.engines,
        ...(run.ok
          ? {}
          : {
              exitCode,
              error: cancelled
                ? { code: 'CANCELLED', message: 'cancelled' }
                : {
                    code: 'TARGETS_FAILED',
                    message: `${failed.length} of ${run.outcomes.length} targets failed: ${failed.join(', ')}`,
                  },
            }),
      })}\n`,
    );
    return exitCode;
  }
  input.stdout.write(formatTargetsSummary(run, projectDir));
  return exitCode;
}

/** A target's row in the table and in the --json result. */
function targetRow(o: TargetOutcome) {
  return {
    target: o.target,
    board: o.board,
    variant: o.variant,
    result: o.status,
    size: o.size,
    durationMs: Math.round(o.durationMs),
    cacheHit: o.cacheHit,
    fromCache: o.fromCache,
    engine: o.engine,
    retried: o.retried,
    firmware: o.firmware,
    sidecar: o.sidecar,
    sha256: o.sha256,
    logFile: o.logFile,
    error: o.error,
  };
}

/** --json: every event on its own line, a build's step events with their target (as `mp build --json` prints them). */
function jsonTargetEvents(out: CommandInput['stdout']): (event: TargetEvent) => void {
  return (event) => {
    if (event.type === 'target:end') {
      out.write(`${JSON.stringify({ type: 'target:end', ...targetRow(event.outcome) })}\n`);
      return;
    }
    out.write(`${JSON.stringify(event)}\n`);
  };
}

/** Plain lines, each target's prefixed with its name: what CI logs show and people read while it runs. */
function targetProgress(out: CommandInput['stderr'], projectDir: string): (event: TargetEvent) => void {
  const observers = new Map<string, (event: StepEvent) => void>();
  const stepsOf = (target: string) => {
    let observer = observers.get(target);
    if (!observer) {
      observer = plainObserver(prefixed(out, `${style.cyan(target)} │ `));
      observers.set(target, observer);
    }
    return observer;
  };
  return (event) => {
    switch (event.type) {
      case 'engines':
        out.write(`Engines: ${event.engines.map((e) => `${e.name} (${e.slots} at once)`).join(', ')}\n`);
        for (const u of event.unreachable)
          out.write(`${style.yellow('⚠')} ${u.error}; building on the others without it\n`);
        break;
      case 'target:start':
        out.write(
          `${style.bold('▶')} ${style.cyan(event.target)} on ${event.engine}${event.attempt > 1 ? ` (attempt ${event.attempt})` : ''}\n`,
        );
        break;
      case 'engine:down':
        out.write(`${style.yellow('⚠')} ${event.error}; its targets go to the other engines\n`);
        break;
      case 'target:retry':
        out.write(
          `${style.yellow('↻')} ${style.cyan(event.target)}: engine ${event.from} failed under it, building it again on another engine\n`,
        );
        break;
      case 'target:end': {
        const o = event.outcome;
        const name = style.cyan(o.target);
        const time = formatSeconds(o.durationMs / 1000);
        if (o.status === 'built')
          out.write(
            `${style.green('✔')} ${name} built ${shown(projectDir, o.firmware!)} (${formatBytes(o.size ?? 0)}) in ${time} on ${o.engine}\n`,
          );
        else if (o.status === 'up-to-date')
          out.write(`${style.green('✔')} ${name} up to date: ${shown(projectDir, o.firmware!)}\n`);
        else if (o.status === 'failed')
          out.write(`${style.red('✖')} ${name} failed: ${String(o.error?.message ?? '').split('\n')[0]}\n`);
        else out.write(`${style.yellow('✖')} ${name} cancelled\n`);
        break;
      }
      default:
        stepsOf(event.target)(event);
    }
  };
}

/** A stream that writes each line to `out` behind `prefix`. */
function prefixed(out: NodeJS.WritableStream, prefix: string): NodeJS.WritableStream {
  return new Writable({
    write(chunk, _encoding, done) {
      const text = String(chunk);
      out.write(
        text
          .split('\n')
          .map((line, i, all) => (i === all.length - 1 && line === '' ? '' : `${prefix}${line}`))
          .join('\n'),
      );
      done();
    },
  });
}

const RESULT_LABEL: Record<TargetOutcome['status'], string> = {
  built: 'built',
  'up-to-date': 'up to date',
  failed: 'FAILED',
  cancelled: 'cancelled',
};

/** The table, then what the table cannot hold: retries, each failure with its hint and log, the index. */
function formatTargetsSummary(run: TargetsRun, projectDir: string): string {
  const rows = run.outcomes.map((o) => [
    o.target,
    o.board + (o.variant ? ` (${o.variant})` : ''),
    o.fromCache ? 'from cache' : RESULT_LABEL[o.status],
    o.size === null ? '-' : formatBytes(o.size),
    formatSeconds(o.durationMs / 1000),
    o.status === 'failed' || o.status === 'cancelled' ? '-' : o.cacheHit ? 'hit' : 'miss',
    (o.engine ?? '-') + (o.retried.length ? ` (after ${o.retried.map((r) => r.engine).join(', ')})` : ''),
  ]);
  let text = `\n${formatTable(['TARGET', 'BOARD', 'RESULT', 'SIZE', 'TIME', 'CACHE', 'ENGINE'], rows)}`;
  for (const o of run.outcomes) {
    for (const r of o.retried)
      text += `${style.yellow('↻')} ${o.target}: ${r.error}; built again on ${o.engine ?? 'no other engine'}\n`;
  }
  for (const o of run.outcomes.filter((x) => x.status === 'failed')) {
    text += `\n${style.red('✖')} ${style.bold(o.target)}: ${String(o.error?.message ?? 'failed')}\n`;
    if (o.error?.hint) text += `  ${style.cyan('→')} ${String(o.error.hint)}\n`;
    if (o.logFile) text += `  ${style.dim(`log: ${shown(projectDir, o.logFile)}`)}\n`;
  }
  const built = run.outcomes.filter((o) => o.status === 'built' || o.status === 'up-to-date').length;
  text += `\n${built} of ${run.outcomes.length} target${run.outcomes.length === 1 ? '' : 's'} exported`;
  text += run.index ? `; index: ${shown(projectDir, run.index)}\n` : '\n';
  return text;
}
