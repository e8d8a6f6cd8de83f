/**
 * Renders core's Steps three ways: listr2 in a terminal (spinners, the last lines of tool output,
 * progress bars), plain lines when output is not a TTY (CI logs), and one JSON event per line with
 * `--json`. The Steps themselves are the same objects in every mode.
 */
import { appendFileSync } from 'node:fs';
import { runSteps, type Step, type StepContext, type StepEvent, silentLogger, tagStep } from '@mp/core';
import type { CommandInput } from '../commands/table.ts';
import { formatSeconds, ProgressMeter } from './progress.ts';
import { style } from './style.ts';

export interface RenderOptions {
  /** Every output line is also appended here (the full build log). */
  logFile?: string;
  /** Lines of tool output kept visible under a running step in a TTY (default 6). */
  visibleLines?: number;
}

export async function renderSteps<C>(
  steps: Step<C>[],
  ctx: C,
  input: Pick<CommandInput, 'json' | 'signal' | 'stdout' | 'stderr'>,
  options: RenderOptions = {},
): Promise<void> {
  const tee = options.logFile ? (line: string) => appendFileSync(options.logFile!, `${line}\n`) : undefined;
  if (input.json) {
    return runSteps(steps, ctx, {
      signal: input.signal,
      observer: (event) => {
        if (event.type === 'step:output') tee?.(event.line);
        input.stdout.write(`${JSON.stringify(event)}\n`);
      },
    });
  }
  if (!input.stderr.isTTY || process.env.CI) {
    return runSteps(steps, ctx, { signal: input.signal, observer: plainObserver(input.stderr, tee) });
  }
  return runWithListr(steps, ctx, input, options, tee);
}

/** One readable line per event; progress at most every 2 s; tool output only when a step fails. */
export function plainObserver(
  out: NodeJS.WritableStream,
  tee?: (line: string) => void,
): (event: StepEvent) => void {
  const titles = new Map<string, string>();
  const recent = new Map<string, string[]>();
  const lastProgress = new Map<string, number>();
  const meters = new Map<string, ProgressMeter>();
  return (event) => {
    switch (event.type) {
      case 'step:start':
        titles.set(event.id, event.title);
        out.write(`▸ ${event.title}\n`);
        break;
      case 'step:title':
        titles.set(event.id, event.title);
        out.write(`  ${event.title}\n`);
        break;
      case 'step:output': {
        tee?.(event.line);
        const lines = recent.get(event.id) ?? [];
        lines.push(event.line);
        if (lines.length > 30) lines.shift();
        recent.set(event.id, lines);
        break;
      }
      case 'step:progress': {
        const now = performance.now();
        const meter = meters.get(event.id) ?? new ProgressMeter();
        meters.set(event.id, meter);
        const done = event.total !== undefined && event.done >= event.total;
        if (done || now - (lastProgress.get(event.id) ?? 0) > 2000) {
          lastProgress.set(event.id, now);
          out.write(`  ${meter.format(event.done, event.total, event.unit)}\n`);
        }
        break;
      }
      case 'step:skip':
        out.write(`↷ ${titles.get(event.id) ?? event.id}: ${event.reason}\n`);
        break;
      case 'step:end':
        if (event.status === 'ok')
          out.write(`✔ ${titles.get(event.id) ?? event.id} (${formatSeconds(event.ms / 1000)})\n`);
        if (event.status === 'failed') {
          out.write(`✖ ${titles.get(event.id) ?? event.id}\n`);
          for (const line of recent.get(event.id) ?? []) out.write(`  │ ${line}\n`);
        }
        break;
      case 'log':
        if (event.level !== 'debug')
          out.write(
            `${event.level === 'warn' ? '⚠ ' : event.level === 'error' ? '✖ ' : '  '}${event.scope ? `[${event.scope}] ` : ''}${event.message}\n`,
          );
        break;
    }
  };
}

async function runWithListr<C>(
  steps: Step<C>[],
  ctx: C,
  input: Pick<CommandInput, 'signal' | 'stderr'>,
  options: RenderOptions,
  tee: ((line: string) => void) | undefined,
): Promise<void> {
  const { Listr } = await import('listr2');
  const warnings: string[] = [];
  const list = new Listr(
    steps.map((step) => ({
      title: step.title,
      skip: step.skip
        ? () => {
            const reason = step.skip!(ctx);
            return reason ? `${step.title}: ${reason}` : false;
          }
        : undefined,
      rendererOptions: { outputBar: options.visibleLines ?? 6, persistentOutput: false },
      task: async (_: unknown, task: { title: string; output: string; skip(message?: string): void }) => {
        let baseTitle = step.title;
        let meter: ProgressMeter | undefined;
        const context: StepContext = {
          signal: input.signal,
          logger: {
            ...silentLogger,
            info: (m) => {
              task.output = m;
            },
            warn: (m) => {
              warnings.push(m);
              task.output = `⚠ ${m}`;
            },
            error: (m) => {
              task.output = m;
            },
            child: () => context.logger,
          },
          output: (line) => {
            tee?.(line);
            // After Ctrl-C the teardown's complaints are not shown (see core's runSteps).
            if (!input.signal.aborted) task.output = line;
          },
          progress: (done, total, unit) => {
            meter ??= new ProgressMeter();
            task.title = `${baseTitle} ${style.dim(meter.format(done, total, unit))}`;
          },
          title: (text) => {
            baseTitle = text;
            task.title = text;
          },
          skip: (reason) => task.skip(`${baseTitle}: ${reason}`),
        };
        try {
          await step.run(ctx, context);
        } catch (error) {
          tagStep(error, step.id);
          throw error;
        }
      },
    })),
    {
      renderer: 'default',
      exitOnError: true,
      registerSignalListeners: false,
      collectErrors: false,
      rendererOptions: { collapseSubtasks: false, showErrorMessage: false, formatOutput: 'wrap' },
    } as never,
  );
  await list.run();
  for (const w of warnings) input.stderr.write(`${style.yellow('⚠')} ${w}\n`);
}
