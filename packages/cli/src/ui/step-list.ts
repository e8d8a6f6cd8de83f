/**
 * The step list in a terminal, drawn from core's step events alone (core's runSteps runs the
 * steps): every step from the start, a spinner on the running one with the last lines of its tool
 * output under it and its progress in the title, then ✔, ↓ with the reason, or ✖. The warnings
 * are kept for the caller to repeat after the list, because the lines under a step go when it
 * ends. The live part is redrawn in place on a timer, which is also the spinner's clock.
 */
import type { LogRecord, StepEvent } from '@mp/core';
import { ProgressMeter } from './progress.ts';
import { style } from './style.ts';
import { printableLine, wrapText } from './wrap.ts';

/** Where the list is drawn: stderr in a terminal, a fake terminal in tests. */
export interface TerminalStream {
  write(chunk: string): unknown;
  columns?: number;
  rows?: number;
}

export interface StepListOptions {
  /** Lines of tool output kept under the running step (default 6). */
  visibleLines?: number;
  /** Redraw interval and spinner speed (default 100 ms). */
  intervalMs?: number;
}

type RowState = 'waiting' | 'running' | 'ok' | 'skipped' | 'failed';

interface Row {
  id: string;
  title: string;
  state: RowState;
  progress?: string;
  meter?: ProgressMeter;
  skipReason?: string;
  output: string[];
}

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const CSI = '\x1b[';
const HIDE_CURSOR = `${CSI}?25l`;
const SHOW_CURSOR = `${CSI}?25h`;
const ERASE_DOWN = `${CSI}J`;

export class StepList {
  /** Warnings of all steps, in order, with their scope when it is not the step's own. */
  readonly warnings: string[] = [];
  readonly #out: TerminalStream;
  readonly #rows: Row[];
  readonly #visibleLines: number;
  readonly #timer: NodeJS.Timeout;
  #running: Row | undefined;
  #failed = false;
  #tick = 0;
  /** Terminal rows of the live frame; the cursor waits at the start of the row below it. */
  #drawn = 0;
  #lastFrame = '';
  #closed = false;
  // A second Ctrl-C exits at once, without close(): the cursor must not stay hidden.
  readonly #showCursor = () => this.#out.write(SHOW_CURSOR);

  constructor(
    out: TerminalStream,
    steps: ReadonlyArray<{ id: string; title: string }>,
    options: StepListOptions = {},
  ) {
    this.#out = out;
    this.#rows = steps.map((step) => ({ id: step.id, title: step.title, state: 'waiting', output: [] }));
    this.#visibleLines = options.visibleLines ?? 6;
    out.write(HIDE_CURSOR);
    process.once('exit', this.#showCursor);
    this.#timer = setInterval(() => {
      this.#tick++;
      this.#draw();
    }, options.intervalMs ?? 100);
    this.#timer.unref();
    this.#draw();
  }

  /** The observer to hand to runSteps. */
  readonly observe = (event: StepEvent): void => {
    if (event.type === 'log') {
      this.#log(event);
      return;
    }
    const row = this.#row(event.id);
    switch (event.type) {
      case 'step:start':
        row.title = event.title;
        row.state = 'running';
        this.#running = row;
        break;
      case 'step:title':
        // A new title replaces the progress too, until the next progress event.
        row.title = event.title;
        row.progress = undefined;
        break;
      case 'step:progress':
        row.meter ??= new ProgressMeter();
        row.progress = row.meter.format(event.done, event.total, event.unit);
        break;
      case 'step:output':
        this.#addOutput(row, event.line);
        break;
      case 'step:skip':
        row.skipReason = event.reason;
        break;
      case 'step:end':
        row.state = event.status;
        row.output = [];
        if (event.status === 'failed') this.#failed = true;
        if (this.#running === row) this.#running = undefined;
        break;
    }
  };

  /** Stops the live view and leaves the final list on the screen. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    process.off('exit', this.#showCursor);
    this.#out.write(`${this.#erase()}${this.#lines(false).join('')}${SHOW_CURSOR}`);
    this.#drawn = 0;
  }

  #row(id: string): Row {
    let row = this.#rows.find((r) => r.id === id);
    if (!row) {
      // A step the list was not given up front (core decides the steps): shown where it comes.
      row = { id, title: id, state: 'waiting', output: [] };
      this.#rows.push(row);
    }
    return row;
  }

  #log(record: LogRecord): void {
    if (record.level === 'debug') return;
    // runSteps tags unscoped records with the step's id; under that step the tag says nothing.
    const scope = record.scope && record.scope !== this.#running?.id ? `[${record.scope}] ` : '';
    const message = `${scope}${record.message}`;
    if (record.level === 'warn') this.warnings.push(message);
    if (this.#running) this.#addOutput(this.#running, record.level === 'warn' ? `⚠ ${message}` : message);
  }

  #addOutput(row: Row, text: string): void {
    if (row.state !== 'running') return;
    for (const line of text.split('\n').map(printableLine)) if (line.trim()) row.output.push(line);
    if (row.output.length > this.#visibleLines) row.output.splice(0, row.output.length - this.#visibleLines);
  }

  #draw(): void {
    if (this.#closed) return;
    let lines = this.#lines(true);
    // A frame taller than the terminal cannot be redrawn in place: its top would have scrolled away.
    const height = this.#out.rows;
    if (height && lines.length >= height) lines = lines.slice(lines.length - height + 1);
    const frame = lines.join('');
    if (frame === this.#lastFrame) return;
    this.#out.write(`${this.#erase()}${frame}`);
    this.#lastFrame = frame;
    this.#drawn = lines.length;
  }

  #erase(): string {
    // From column 0: the terminal may have echoed a key (^C) after the frame.
    return this.#drawn ? `\r${CSI}${this.#drawn}A${ERASE_DOWN}` : '';
  }

  /** Terminal rows, each ending in a newline. */
  #lines(live: boolean): string[] {
    const width = Math.max(20, (this.#out.columns ?? 80) - 1);
    const lines: string[] = [];
    for (const row of this.#rows) {
      lines.push(...item(this.#icon(row), this.#text(row), width, ''));
      if (live && row.state === 'running') {
        for (const line of row.output) lines.push(...item('›', line, width, '  '));
      }
    }
    return lines;
  }

  #icon(row: Row): string {
    switch (row.state) {
      case 'running':
        return style.yellow(SPINNER[this.#tick % SPINNER.length]!);
      case 'ok':
        return style.green('✔');
      case 'skipped':
        return style.yellow('↓');
      case 'failed':
        return style.red('✖');
      case 'waiting':
        return this.#failed ? style.red('◼') : style.dim('◼');
    }
  }

  #text(row: Row): string {
    if (row.state === 'skipped') return row.skipReason ? `${row.title}: ${row.skipReason}` : row.title;
    return row.progress ? `${row.title} ${style.dim(row.progress)}` : row.title;
  }
}

/** `icon text`, wrapped to `width` with the continuation lines under the text. */
function item(icon: string, text: string, width: number, indent: string): string[] {
  return wrapText(text, width - indent.length - 2).map(
    (line, i) => `${indent}${i === 0 ? `${icon} ` : '  '}${line}\n`,
  );
}
