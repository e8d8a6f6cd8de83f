/**
 * The step list in a terminal, as the user sees it: core's runSteps runs the steps and the list is
 * drawn from its events into a fake terminal that applies the cursor moves and erasures, so the
 * tests read the screen, not the escape codes.
 */
import { CancelledError, MpError, type Step, type StepContext } from '@mp/core';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { renderSteps } from '../src/ui/run-steps.ts';
import { StepList } from '../src/ui/step-list.ts';
import { wrapText } from '../src/ui/wrap.ts';

/** A terminal screen: text, `CSI n A` (up), `CSI J` (erase below), `\r`, `\n`; colours ignored. */
class FakeTerminal {
  readonly isTTY = true;
  lines: string[] = [''];
  row = 0;
  col = 0;
  cursorHidden = false;
  /** Everything written, for what must never appear, even for one frame. */
  written = '';
  widest = 0;

  readonly columns: number;
  readonly rows: number | undefined;

  constructor(columns = 80, rows?: number) {
    this.columns = columns;
    this.rows = rows;
  }

  write(chunk: string | Uint8Array): boolean {
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    this.written += text;
    for (const [, csi, char] of text.matchAll(/\x1b\[([0-9;?]*[A-Za-z])|([\s\S])/gu)) {
      if (csi) this.#control(csi);
      else if (char === '\n') {
        this.row++;
        this.col = 0;
        if (this.row === this.lines.length) this.lines.push('');
      } else if (char === '\r') this.col = 0;
      else {
        const line = this.lines[this.row]!.padEnd(this.col);
        this.lines[this.row] = line.slice(0, this.col) + char + line.slice(this.col + 1);
        this.col++;
        this.widest = Math.max(this.widest, this.col);
      }
    }
    return true;
  }

  #control(csi: string): void {
    if (csi === '?25l') this.cursorHidden = true;
    else if (csi === '?25h') this.cursorHidden = false;
    else if (csi.endsWith('A')) this.row = Math.max(0, this.row - Number(csi.slice(0, -1) || 1));
    else if (csi === 'J') {
      this.lines = this.lines.slice(0, this.row + 1);
      this.lines[this.row] = this.lines[this.row]!.slice(0, this.col);
    }
  }

  /** The visible lines, without the empty one the cursor waits on. */
  get screen(): string[] {
    return this.lines.map((r) => r.trimEnd()).filter((r, i, all) => r !== '' || i < all.length - 1);
  }
}

type Ctx = Record<string, never>;
const step = (id: string, title: string, run: Step<Ctx>['run'] = async () => {}): Step<Ctx> => ({
  id,
  title,
  run,
});

/** The terminal of the current test; steps look at it while they run. */
let terminal: FakeTerminal;

/** Runs `steps` through renderSteps into a new fake terminal; resolves to the error, if any. */
async function show(
  steps: Step<Ctx>[],
  options: { columns?: number; signal?: AbortSignal } = {},
): Promise<unknown> {
  terminal = new FakeTerminal(options.columns);
  const input = {
    json: false,
    signal: options.signal ?? new AbortController().signal,
    stdout: new FakeTerminal(),
    stderr: terminal,
  } as unknown as Parameters<typeof renderSteps>[2];
  return renderSteps(steps, {}, input).then(
    () => undefined,
    (error: unknown) => error,
  );
}

const frame = () => vi.advanceTimersByTime(100);

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
  vi.stubEnv('CI', '');
});
afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllEnvs();
});

describe('the step list in a terminal', () => {
  it('shows every step from the start: a spinner on the running one, the others waiting', async () => {
    const seen: string[][] = [];
    await show([
      step('resolve', 'Resolve board and libraries', async () => {
        frame();
        seen.push(terminal.screen);
      }),
      step('compile', 'Compile firmware'),
    ]);
    const [during] = seen;
    expect(during).toEqual([expect.stringMatching(/^\S Resolve board and libraries$/), '◼ Compile firmware']);
    expect(terminal.screen).toEqual(['✔ Resolve board and libraries', '✔ Compile firmware']);
    expect(terminal.cursorHidden).toBe(false);
  });

  it('shows the last six lines of tool output under the running step, and only while it runs', async () => {
    let during: string[] = [];
    await show([
      step('compile', 'Compile firmware', async (_ctx, s) => {
        for (let i = 1; i <= 10; i++) s.output(`CC py/file${i}.c`);
        s.output('   ');
        s.output('\x1b[31mLINK\x1b[0m\tfirmware.elf');
        frame();
        during = terminal.screen;
      }),
    ]);
    expect(during.slice(1)).toEqual([
      '  › CC py/file6.c',
      '  › CC py/file7.c',
      '  › CC py/file8.c',
      '  › CC py/file9.c',
      '  › CC py/file10.c',
      '  › LINK  firmware.elf',
    ]);
    expect(terminal.screen).toEqual(['✔ Compile firmware']);
  });

  it('puts progress in the title, and a new title replaces it', async () => {
    const frames: string[] = [];
    await show(
      [
        step('write', 'Write firmware', async (_ctx, s) => {
          s.progress(1024, 4096, 'bytes');
          frame();
          frames.push(terminal.screen[0]!);
          s.title('Write 1 changed of 80 sectors');
          frame();
          frames.push(terminal.screen[0]!);
          s.progress(4096, 4096, 'bytes');
        }),
      ],
      { columns: 160 },
    );
    expect(frames[0]).toMatch(/^. Write firmware █████░+ 25% 1\.0 KiB\/4\.0 KiB/);
    expect(frames[1]).toMatch(/^. Write 1 changed of 80 sectors$/);
    expect(terminal.screen[0]).toMatch(/^✔ Write 1 changed of 80 sectors █{20} 100% 4\.0 KiB\/4\.0 KiB/);
  });

  it('marks skipped steps with the reason, whether skipped before or while running', async () => {
    await show([
      { ...step('fetch', 'Fetch sources'), skip: () => 'cached' },
      step('write', 'Write firmware', async (_ctx, s) => s.skip('the board already holds this image')),
    ]);
    expect(terminal.screen).toEqual([
      '↓ Fetch sources: cached',
      '↓ Write firmware: the board already holds this image',
    ]);
  });

  it('shows log lines under the step, keeps other scopes, hides debug, and repeats warnings after the list', async () => {
    let during: string[] = [];
    await show([
      step('resolve', 'Resolve', async (_ctx, s) => {
        s.logger.info('using MicroPython v1.28.0');
        s.logger.debug('cache key 1234');
        s.logger.child('mqtt_as').warn('mqtt_local.py is older than the library');
        s.logger.warn('no modules/ folder');
        frame();
        during = terminal.screen;
      }),
    ]);
    expect(during.slice(1)).toEqual([
      '  › using MicroPython v1.28.0',
      '  › ⚠ [mqtt_as] mqtt_local.py is older than the library',
      '  › ⚠ no modules/ folder',
    ]);
    expect(terminal.written).not.toContain('cache key');
    expect(terminal.screen).toEqual([
      '✔ Resolve',
      '⚠ [mqtt_as] mqtt_local.py is older than the library',
      '⚠ no modules/ folder',
    ]);
  });

  it('marks a failed step and the ones it stopped, and keeps the warnings that may explain it', async () => {
    const error = await show([
      step('resolve', 'Resolve', async (_ctx, s) => s.logger.warn('board.json not found; using defaults')),
      step('compile', 'Compile firmware', async () => {
        throw new MpError({ code: 'COMPILE_FAILED', message: 'make failed' });
      }),
      step('export', 'Export'),
    ]);
    expect((error as MpError).step).toBe('compile');
    expect(terminal.screen).toEqual([
      '✔ Resolve',
      '✖ Compile firmware',
      '◼ Export',
      '⚠ board.json not found; using defaults',
    ]);
  });

  it('shows no tool output after Ctrl-C, and no warnings either', async () => {
    const controller = new AbortController();
    const error = await show(
      [
        step('compile', 'Compile firmware', async (_ctx, s: StepContext) => {
          s.logger.warn('slow disk');
          s.output('CC py/obj.c');
          frame();
          controller.abort();
          s.output('OCI runtime exec failed: container is stopping');
          frame();
          throw new CancelledError('compile');
        }),
      ],
      { signal: controller.signal },
    );
    expect(error).toBeInstanceOf(CancelledError);
    expect(terminal.written).toContain('CC py/obj.c');
    expect(terminal.written).not.toContain('OCI runtime');
    expect(terminal.screen).toEqual(['✖ Compile firmware']);
  });

  it('wraps long titles and lines to the terminal, so redrawing in place leaves no debris', async () => {
    await show(
      [
        step('connect', 'Connect', async (_ctx, s) => {
          s.title('Connected to ESP8266EX on /dev/ttyUSB0 (MAC 5c:cf:7f:a1:b2:c3, 4MB flash, 460800 baud)');
          for (let i = 0; i < 5; i++) {
            s.output(`${'x'.repeat(70)} line ${i}`);
            frame();
          }
        }),
        step('write', 'Write firmware'),
      ],
      { columns: 40 },
    );
    expect(terminal.widest).toBeLessThan(40);
    expect(terminal.screen).toEqual([
      '✔ Connected to ESP8266EX on',
      '  /dev/ttyUSB0 (MAC 5c:cf:7f:a1:b2:c3,',
      '  4MB flash, 460800 baud)',
      '✔ Write firmware',
    ]);
  });

  it('redraws from the first column when the terminal echoed a key after the list', () => {
    terminal = new FakeTerminal();
    const list = new StepList(terminal, [{ id: 'a', title: 'Flash' }]);
    list.observe({ type: 'step:start', id: 'a', title: 'Flash' });
    terminal.write('^C');
    list.observe({ type: 'step:end', id: 'a', status: 'failed', ms: 5 });
    list.close();
    expect(terminal.screen).toEqual(['✖ Flash']);
  });

  it('shows only the bottom of a list taller than the terminal while it runs', () => {
    terminal = new FakeTerminal(80, 4);
    const steps = ['a', 'b', 'c', 'd', 'e'].map((id) => ({ id, title: `Step ${id}` }));
    const list = new StepList(terminal, steps);
    expect(terminal.screen).toEqual(['◼ Step c', '◼ Step d', '◼ Step e']);
    list.close();
    expect(terminal.screen).toEqual(['◼ Step a', '◼ Step b', '◼ Step c', '◼ Step d', '◼ Step e']);
  });
});

describe('wrapText', () => {
  it('breaks at spaces, cuts words longer than the line, and does not count colour codes', () => {
    expect(wrapText('aaa bbb ccc', 7)).toEqual(['aaa bbb', 'ccc']);
    expect(wrapText('abcdefghij', 4)).toEqual(['abcd', 'efgh', 'ij']);
    expect(wrapText('\x1b[2mdim text\x1b[22m here', 8)).toEqual(['\x1b[2mdim text\x1b[22m', 'here']);
  });
});
