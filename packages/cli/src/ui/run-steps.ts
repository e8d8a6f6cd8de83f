/**
 * Shows core's Steps three ways while core's runSteps runs them: a live list in a terminal
 * (step-list.ts), plain lines when stderr is not a TTY (CI logs), and one JSON event per line with
 * `--json`. Every view only observes the step events.
 */
import { runSteps, type Step, type StepEvent } from '@mp/core';
import type { CommandInput } from '../commands/table.ts';
import { formatSeconds, ProgressMeter } from './progress.ts';
import { StepList } from './step-list.ts';
import { style } from './style.ts';

export async function renderSteps<C>(
  steps: Step<C>[],
  ctx: C,
  input: Pick<CommandInput, 'json' | 'signal' | 'stdout' | 'stderr'>,
): Promise<void> {
  const { signal } = input;
  if (input.json) {
    return runSteps(steps, ctx, {
      signal,
      observer: (event) => input.stdout.write(`${JSON.stringify(event)}\n`),
    });
  }
  if (!input.stderr.isTTY || process.env.CI) {
    return runSteps(steps, ctx, { signal, observer: plainObserver(input.stderr) });
  }
  const list = new StepList(input.stderr, steps);
  try {
    await runSteps(steps, ctx, { signal, observer: list.observe });
  } finally {
    list.close();
    // After a failure too, since they may explain it; after Ctrl-C they are not news.
    if (!signal.aborted) for (const w of list.warnings) input.stderr.write(`${style.yellow('⚠')} ${w}\n`);
  }
}

/** One readable line per event; progress at most every 2 s; tool output only when a step fails. */
export function plainObserver(out: NodeJS.WritableStream): (event: StepEvent) => void {
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
