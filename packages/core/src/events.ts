/**
 * Core never writes to the terminal. Long operations are lists of {@link Step}s, run by
 * {@link runSteps} alone: each step reports through a {@link StepContext}, runSteps turns that into
 * {@link StepEvent}s, and the CLI decides how they look (a live list in a TTY, plain lines in CI
 * logs, JSON events with `--json`).
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** A logger handed to plugins and steps. `plugin` loggers prefix their messages with the plugin id. */
export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  /** A logger whose messages are tagged with `scope` (e.g. a plugin id). */
  child(scope: string): Logger;
}

export interface LogRecord {
  level: LogLevel;
  message: string;
  scope?: string;
}

/** A logger that hands every record to `sink`. */
export function createLogger(sink: (record: LogRecord) => void, scope?: string): Logger {
  const emit = (level: LogLevel) => (message: string) =>
    sink(scope === undefined ? { level, message } : { level, message, scope });
  return {
    debug: emit('debug'),
    info: emit('info'),
    warn: emit('warn'),
    error: emit('error'),
    child: (child) => createLogger(sink, scope ? `${scope}:${child}` : child),
  };
}

/** A logger that drops everything (tests, programmatic callers who do not care). */
export const silentLogger: Logger = createLogger(() => {});

/** What a running step can tell its observer. */
export interface StepContext {
  readonly signal: AbortSignal;
  readonly logger: Logger;
  /** One line of tool output (compiler, git, docker pull); the UI shows the last few, all go to the log file. */
  output(line: string): void;
  /** Progress of a measurable step (bytes flashed, layers pulled). `total` may be unknown. */
  progress(done: number, total?: number, unit?: string): void;
  /** Replace the step's title, e.g. "Toolchain: pulling larsks/esp-open-sdk". */
  title(text: string): void;
  /** Mark the step as done without work, with the reason ("cached", "up to date"). */
  skip(reason: string): void;
}

/** One stage of a pipeline, as the UI shows it. */
export interface Step<C> {
  /** Stable id, used in JSON events and error messages (`step: 'compile'`). */
  id: string;
  title: string;
  /** Return a reason to skip the step (shown to the user), or false to run it. */
  skip?(ctx: C): string | false;
  run(ctx: C, step: StepContext): Promise<void>;
}

export type StepEvent =
  | { type: 'step:start'; id: string; title: string }
  | { type: 'step:title'; id: string; title: string }
  | { type: 'step:output'; id: string; line: string }
  | { type: 'step:progress'; id: string; done: number; total?: number; unit?: string }
  | { type: 'step:skip'; id: string; reason: string }
  | { type: 'step:end'; id: string; status: 'ok' | 'skipped' | 'failed'; ms: number; error?: string }
  | ({ type: 'log' } & LogRecord);

/** Something that renders or records step events. */
export type StepObserver = (event: StepEvent) => void;

/**
 * Runs steps in order, telling `observer` what happens: the one step runner, behind every view of
 * the CLI, `mp dev` and programmatic use. Errors are tagged with the step id.
 * @example await runSteps(build.steps, build.ctx, { signal, observer: (e) => console.log(e.type) });
 */
export async function runSteps<C>(
  steps: Step<C>[],
  ctx: C,
  options: { signal: AbortSignal; observer?: StepObserver; logger?: Logger },
): Promise<void> {
  const observer = options.observer ?? (() => {});
  for (const step of steps) {
    if (options.signal.aborted) {
      const { CancelledError } = await import('./errors.ts');
      throw new CancelledError(step.id);
    }
    const started = performance.now();
    const skipReason = step.skip?.(ctx);
    if (skipReason) {
      observer({ type: 'step:skip', id: step.id, reason: skipReason });
      observer({ type: 'step:end', id: step.id, status: 'skipped', ms: 0 });
      continue;
    }
    observer({ type: 'step:start', id: step.id, title: step.title });
    let skipped = false;
    const logger =
      options.logger ??
      createLogger((record) => observer({ type: 'log', ...record, scope: record.scope ?? step.id }));
    const context: StepContext = {
      signal: options.signal,
      logger,
      // Once cancelled, what tools print while they are torn down (`OCI runtime exec failed …`)
      // is noise, not news: it still reaches the build log, not the user.
      output: (line) => {
        if (!options.signal.aborted) observer({ type: 'step:output', id: step.id, line });
      },
      progress: (done, total, unit) => observer({ type: 'step:progress', id: step.id, done, total, unit }),
      title: (title) => observer({ type: 'step:title', id: step.id, title }),
      skip: (reason) => {
        skipped = true;
        observer({ type: 'step:skip', id: step.id, reason });
      },
    };
    try {
      await step.run(ctx, context);
    } catch (error) {
      tagStep(error, step.id);
      observer({
        type: 'step:end',
        id: step.id,
        status: 'failed',
        ms: performance.now() - started,
        error: error instanceof Error ? error.message : String(error),
      });
      throw error;
    }
    observer({
      type: 'step:end',
      id: step.id,
      status: skipped ? 'skipped' : 'ok',
      ms: performance.now() - started,
    });
  }
}

/** A pipeline that owns resources: its steps, and what releases them (ports, containers). */
export interface StepJob<J> {
  steps: Step<J>[];
  dispose(): Promise<void>;
}

/**
 * Runs a job's steps to the end without a UI (programmatic use, `mp dev`, tests) and disposes it
 * whatever happens; returns the job so its result can be read.
 */
export async function runJob<J extends StepJob<J>>(
  job: J,
  options: { signal?: AbortSignal; observer?: StepObserver } = {},
): Promise<J> {
  try {
    await runSteps(job.steps, job, {
      signal: options.signal ?? new AbortController().signal,
      observer: options.observer,
    });
  } finally {
    await job.dispose();
  }
  return job;
}

/** Records which step an MpError came from, unless it already says. */
export function tagStep(error: unknown, stepId: string): void {
  if (error && typeof error === 'object' && 'code' in error && 'step' in error) {
    const e = error as { step?: string };
    e.step ??= stepId;
  }
}
