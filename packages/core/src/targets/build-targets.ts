/**
 * `mp build --all` / `--target NAME…`: the selected targets built side by side, each a whole
 * `createBuild` of its own (its container, build folder, lock and log: see targets.ts), spread
 * over the engines by free slots (schedule.ts). A target that fails is reported and the others go
 * on; a target whose engine fails under it is built again on another engine, and the outcome says
 * so. Each export is followed by an update of `export/index.json`.
 *
 *   const run = await buildTargets({ project, targets: 'all', signal, observer: (e) => show(e) });
 *   for (const t of run.outcomes) console.log(t.target, t.status, t.size);
 */
import { rm } from 'node:fs/promises';
import type { ResolvedTarget } from '../config/types.ts';
import { describeError, isAbortError, isMpError, MpError } from '../errors.ts';
import type { Step, StepEvent } from '../events.ts';
import { runSteps } from '../events.ts';
import type { BuildContext } from '../firmware/pipeline.ts';
import { createBuild } from '../firmware/pipeline.ts';
import type { SourceCache } from '../firmware/resolve.ts';
import type { Project } from '../project.ts';
import { dockerToolchain } from '../toolchain/docker.ts';
import type { Toolchain } from '../toolchain/toolchain.ts';
import { sharedEngineToolchain } from './engine-toolchain.ts';
import {
  type Engine,
  engineAnswers,
  engineError,
  probeEngines,
  type ReadyEngine,
  resolveEngines,
} from './engines.ts';
import { indexEntry, recordTarget, withExportLock } from './export-index.ts';
import { type AttemptResult, scheduleTargets } from './schedule.ts';
import { selectTargets, targetProject } from './targets.ts';

export interface BuildTargetsOptions {
  project: Project;
  /** Target names (`a,b` counts as two), or every target (the default). */
  targets?: string[] | 'all';
  signal: AbortSignal;
  observer?: (event: TargetEvent) => void;
  /** Build even if nothing changed (`--force`). */
  force?: boolean;
  env?: NodeJS.ProcessEnv;
  cacheDir?: string;
  now?: () => Date;
  /** Engines with their slots; default the config's `engines` (or DOCKER_HOST's), asked for their slots. */
  engines?: ReadyEngine[];
  /** An engine's toolchain; default its Docker engine. */
  toolchainFor?: (engine: Engine) => Toolchain;
  /** Whether an engine still answers (after a build on it failed); default a ping. */
  answers?: (engine: Engine) => Promise<boolean>;
  /** Where sources come from; default mp's git cache (one per build). */
  sources?: SourceCache;
}

/** How one target ended. `--json` prints these; the CLI's table shows them. */
export interface TargetOutcome {
  target: string;
  board: string;
  variant: string | null;
  status: 'built' | 'up-to-date' | 'failed' | 'cancelled';
  /** The engine it was built on (the last one tried). */
  engine: string | null;
  /** Engines that failed under it first: it was built again on the next. */
  retried: Array<{ engine: string; error: string }>;
  firmware: string | null;
  sidecar: string | null;
  size: number | null;
  sha256: string | null;
  /** Wall time of the target, retries included. */
  durationMs: number;
  /**
   * Answered without compiling: its inputs had not changed since its last export (`up-to-date`),
   * or their firmware was in mp's firmware cache (`fromCache`, exported from there).
   */
  cacheHit: boolean;
  fromCache: boolean;
  logFile: string | null;
  error: Record<string, unknown> | null;
}

export type TargetEvent =
  | {
      type: 'engines';
      engines: Array<{ name: string; slots: number }>;
      unreachable: Array<{ name: string; error: string }>;
    }
  | { type: 'target:start'; target: string; engine: string; attempt: number }
  /** A step event of one target's build (the same events `mp build` shows, with the target). */
  | (StepEvent & { target: string })
  | { type: 'engine:down'; engine: string; error: string }
  | { type: 'target:retry'; target: string; from: string; error: string }
  | { type: 'target:end'; outcome: TargetOutcome };

export interface TargetsRun {
  outcomes: TargetOutcome[];
  /** `export/index.json`, once a target was recorded there. */
  index: string | null;
  engines: Array<{ name: string; slots: number; failed: boolean }>;
  ok: boolean;
}

export async function buildTargets(options: BuildTargetsOptions): Promise<TargetsRun> {
  const { project, signal } = options;
  const emit = options.observer ?? (() => {});
  const selected = selectTargets(project, options.targets ?? 'all');
  const env = options.env ?? process.env;
  const engines = options.engines ?? (await readyEngines(project, env, emit));
  if (options.engines)
    emit({
      type: 'engines',
      engines: engines.map((e) => ({ name: e.name, slots: e.slots })),
      unreachable: [],
    });

  const toolchains = new Map<Engine, Toolchain>();
  const toolchainOf = (engine: Engine) => {
    let toolchain = toolchains.get(engine);
    if (!toolchain) {
      toolchain = sharedEngineToolchain(
        options.toolchainFor?.(engine) ?? dockerToolchain({ env: engine.env }),
      );
      toolchains.set(engine, toolchain);
    }
    return toolchain;
  };
  const answers = options.answers ?? ((engine: Engine) => engineAnswers(engine));
  const started = new Map<string, number>();
  const retried = new Map<string, Array<{ engine: string; error: string }>>();
  const downErrors = new Map<string, unknown>();
  let index: string | null = null;

  const attempt = async (
    target: ResolvedTarget,
    engine: ReadyEngine,
    n: number,
  ): Promise<AttemptResult<TargetOutcome>> => {
    if (!started.has(target.name)) started.set(target.name, Date.now());
    emit({ type: 'target:start', target: target.name, engine: engine.name, attempt: n });
    const build = createBuild({
      project: targetProject(project, target),
      env: engine.env,
      cacheDir: options.cacheDir,
      force: options.force,
      now: options.now,
      toolchain: toolchainOf(engine),
      sources: options.sources,
    });
    let error: unknown;
    try {
      await runSteps(withSerializedExport(build.steps, project, signal), build.ctx, {
        signal,
        observer: (event) => emit({ ...event, target: target.name }),
      });
    } catch (caught) {
      error = caught;
    } finally {
      await build.dispose();
    }
    const outcome = (fields: Partial<TargetOutcome>): AttemptResult<TargetOutcome> => ({
      kind: 'done',
      result: finished(target, engine.name, build.ctx, fields),
    });
    if (error === undefined) {
      const result = build.ctx.result!;
      try {
        index = await recordTarget(project, target.name, indexEntry(result), { now: options.now, signal });
      } catch (indexError) {
        return outcome({ status: 'failed', error: failure(indexError) });
      }
      return outcome({ status: result.upToDate ? 'up-to-date' : 'built' });
    }
    if (signal.aborted || isAbortError(error)) return outcome({ status: 'cancelled' });
    // Once exported, a target is done whatever happens to its engine: it is never exported twice.
    const engineFailed =
      !build.ctx.exported &&
      ((isMpError(error) && error.code === 'DOCKER_UNAVAILABLE') || !(await answers(engine)));
    if (!engineFailed) return outcome({ status: 'failed', error: failure(error) });
    // What a make that died with its engine left half written is not for the next engine's make.
    if (build.ctx.buildDir) await rm(build.ctx.buildDir, { recursive: true, force: true }).catch(() => {});
    return { kind: 'engine-failed', error: engineError(engine, error) };
  };

  const finished = (
    target: ResolvedTarget,
    engine: string | null,
    ctx: BuildContext | undefined,
    fields: Partial<TargetOutcome>,
  ): TargetOutcome => {
    const result = fields.status === 'built' || fields.status === 'up-to-date' ? ctx?.result : undefined;
    const outcome: TargetOutcome = {
      target: target.name,
      board: target.board,
      variant: target.variant ?? null,
      status: 'failed',
      engine,
      retried: retried.get(target.name) ?? [],
      firmware: result?.firmware ?? null,
      sidecar: result?.sidecarFile ?? null,
      size: result?.sidecar.size ?? null,
      sha256: result?.sidecar.sha256 ?? null,
      durationMs: Date.now() - (started.get(target.name) ?? Date.now()),
      cacheHit: Boolean(result?.upToDate || result?.fromCache),
      fromCache: result?.fromCache === true,
      logFile: ctx?.logFile ?? null,
      error: null,
      ...fields,
    };
    emit({ type: 'target:end', outcome });
    return outcome;
  };

  const scheduled = await scheduleTargets({
    targets: selected,
    engines,
    run: attempt,
    signal,
    onEngineDown: (engine, error) => {
      downErrors.set(engine.name, error);
      emit({ type: 'engine:down', engine: engine.name, error: describeError(error) });
    },
    onRetry: (target, from, error) => {
      const list = retried.get(target.name) ?? [];
      list.push({ engine: from.name, error: describeError(error) });
      retried.set(target.name, list);
      emit({ type: 'target:retry', target: target.name, from: from.name, error: describeError(error) });
    },
  });

  const outcomes = scheduled.map((s) => {
    if (s.result) return s.result;
    const last = s.attempts.at(-1);
    if (signal.aborted)
      return finished(s.target, last?.engine.name ?? null, undefined, { status: 'cancelled' });
    if (last?.error instanceof MpError && last.error.code !== 'ENGINE_FAILED')
      return finished(s.target, last.engine.name, undefined, {
        status: 'failed',
        error: failure(last.error),
      });
    // Its engine failed and no other was left, or every engine had failed before its turn.
    const why = last?.error ?? [...downErrors.values()].at(-1);
    const error = new MpError({
      code: 'NO_ENGINE',
      message: `No engine was left to build target ${s.target.name}${why ? `: ${describeError(why)}` : ''}`,
      cause: why,
    });
    return finished(s.target, last?.engine.name ?? null, undefined, {
      status: 'failed',
      error: failure(error),
    });
  });
  const down = new Set(scheduled.flatMap((s) => s.attempts.filter((a) => a.error).map((a) => a.engine)));
  return {
    outcomes,
    index: index ?? null,
    engines: engines.map((e) => ({ name: e.name, slots: e.slots, failed: down.has(e) })),
    ok: outcomes.every((o) => o.status === 'built' || o.status === 'up-to-date'),
  };
}

/** The config's engines that answer, with their slots; none answering is an error naming each. */
async function readyEngines(
  project: Project,
  env: NodeJS.ProcessEnv,
  emit: (event: TargetEvent) => void,
): Promise<ReadyEngine[]> {
  const { config } = project;
  const { ready, unreachable } = await probeEngines(
    await resolveEngines(config.engines, { env, parallel: config.parallel }),
  );
  emit({
    type: 'engines',
    engines: ready.map((e) => ({ name: e.name, slots: e.slots })),
    unreachable: unreachable.map((u) => ({ name: u.engine.name, error: u.error.message })),
  });
  if (ready.length === 0) {
    throw new MpError({
      code: 'NO_ENGINE',
      message: `No Docker engine answers, so no target can build:\n${unreachable.map((u) => `  - ${u.error.message}`).join('\n')}`,
      hint: config.engines.length
        ? 'Start one of the engines of `engines` in mp.config (or fix their addresses and TLS folders).'
        : 'Start the Docker engine, or set DOCKER_HOST to a running one; `mp doctor` checks it.',
    });
  }
  return ready;
}

/**
 * The build's steps with its export taken under the project's export lock: targets finishing
 * together each choose a free file name and update the records of protected files one at a time.
 */
function withSerializedExport(steps: Step<BuildContext>[], project: Project, signal: AbortSignal) {
  return steps.map((step) =>
    step.id === 'export'
      ? {
          ...step,
          run: (c: BuildContext, s: Parameters<Step<BuildContext>['run']>[1]) =>
            withExportLock(project, () => step.run(c, s), { signal }),
        }
      : step,
  );
}

function failure(error: unknown): Record<string, unknown> {
  return isMpError(error) ? error.toJSON() : { code: 'INTERNAL', message: describeError(error) };
}
