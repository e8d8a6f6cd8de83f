/**
 * Scheduling targets over engines by free slots: given engines with slots and targets whose builds
 * take a while, then no engine runs more than its slots, the engine with the most free slots gets
 * the next target, a failing target ends alone, and the targets of an engine that fails under
 * them are built on the others, each exactly once.
 */
import { describe, expect, it } from 'vitest';
import { type AttemptResult, defaultParallel, scheduleTargets } from '../src/index.ts';

interface FakeEngine {
  name: string;
  slots: number;
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

/** A run that records concurrency per engine and answers as `decide` says. */
function recorder(decide: (target: string, engine: FakeEngine, attempt: number) => AttemptResult<string>) {
  const running = new Map<string, number>();
  const peak = new Map<string, number>();
  const log: string[] = [];
  return {
    log,
    peak,
    run: async (target: string, engine: FakeEngine, attempt: number) => {
      const now = (running.get(engine.name) ?? 0) + 1;
      running.set(engine.name, now);
      peak.set(engine.name, Math.max(peak.get(engine.name) ?? 0, now));
      log.push(`${target}@${engine.name}`);
      await tick();
      running.set(engine.name, running.get(engine.name)! - 1);
      return decide(target, engine, attempt);
    },
  };
}

describe('scheduling targets over engines', () => {
  it('runs no more than an engine’s slots at once, and fills the one with the most free slots first', async () => {
    const a = { name: 'a', slots: 2 };
    const b = { name: 'b', slots: 1 };
    const r = recorder((t) => ({ kind: 'done', result: `${t} ok` }));
    const targets = ['t1', 't2', 't3', 't4', 't5', 't6'];
    const done = await scheduleTargets({ targets, engines: [a, b], run: r.run });
    expect(done.map((d) => d.result)).toEqual(targets.map((t) => `${t} ok`));
    expect(r.peak.get('a')).toBe(2);
    expect(r.peak.get('b')).toBe(1);
    // a has 2 free, b 1: t1 → a; then a and b have 1 each, the first named wins: t2 → a; t3 → b.
    expect(r.log.slice(0, 3)).toEqual(['t1@a', 't2@a', 't3@b']);
  });

  it('with one slot builds one target at a time; a failing target ends alone and the others go on', async () => {
    const only = { name: 'local', slots: 1 };
    const r = recorder((t) => ({ kind: 'done', result: t === 't2' ? 'failed' : 'ok' }));
    const done = await scheduleTargets({ targets: ['t1', 't2', 't3'], engines: [only], run: r.run });
    expect(done.map((d) => [d.target, d.result, d.attempts.length])).toEqual([
      ['t1', 'ok', 1],
      ['t2', 'failed', 1],
      ['t3', 'ok', 1],
    ]);
    expect(r.peak.get('local')).toBe(1);
  });

  it('takes an engine that fails out, and builds its targets on the others, each once', async () => {
    const a = { name: 'a', slots: 2 };
    const b = { name: 'b', slots: 2 };
    const events: string[] = [];
    const r = recorder((t, engine) =>
      engine.name === 'b'
        ? { kind: 'engine-failed', error: new Error('b stopped') }
        : { kind: 'done', result: t },
    );
    const done = await scheduleTargets({
      targets: ['t1', 't2', 't3', 't4'],
      engines: [a, b],
      run: r.run,
      onEngineDown: (e, error) => events.push(`down ${e.name}: ${(error as Error).message}`),
      onRetry: (t, from) => events.push(`retry ${t} from ${from.name}`),
    });
    expect(done.map((d) => d.result)).toEqual(['t1', 't2', 't3', 't4']);
    // t1, t2 → a (a first, then equal); t3 → b … whichever went to b went to a afterwards.
    const onB = done.filter((d) => d.attempts.length === 2);
    expect(onB.length).toBeGreaterThan(0);
    for (const d of onB) expect(d.attempts.map((x) => x.engine.name)).toEqual(['b', 'a']);
    expect(events.filter((e) => e.startsWith('down'))).toEqual(['down b: b stopped']);
    expect(events.filter((e) => e.startsWith('retry')).length).toBe(onB.length);
    // Never twice at once, never once too often: each target ran once where it succeeded.
    for (const t of ['t1', 't2', 't3', 't4']) expect(r.log.filter((l) => l === `${t}@a`)).toHaveLength(1);
    expect(r.peak.get('a')).toBeLessThanOrEqual(2);
  });

  it('leaves a target without a result when every engine failed, saying which did', async () => {
    const a = { name: 'a', slots: 1 };
    const r = recorder(() => ({ kind: 'engine-failed', error: new Error('gone') }));
    const done = await scheduleTargets({ targets: ['t1', 't2'], engines: [a], run: r.run });
    expect(done[0]?.result).toBeUndefined();
    expect(done[0]?.attempts).toEqual([{ engine: a, error: new Error('gone') }]);
    // t2 never started: nothing was left to run it on.
    expect(done[1]?.result).toBeUndefined();
    expect(done[1]?.attempts).toEqual([]);
  });

  it('starts nothing once cancelled', async () => {
    const controller = new AbortController();
    const r = recorder((t) => {
      controller.abort();
      return { kind: 'done', result: t };
    });
    const done = await scheduleTargets({
      targets: ['t1', 't2', 't3'],
      engines: [{ name: 'a', slots: 1 }],
      run: r.run,
      signal: controller.signal,
    });
    expect(done.map((d) => d.result)).toEqual(['t1', undefined, undefined]);
  });

  it('gives an engine one slot per core while each has 2 GiB, and always at least one', () => {
    const GiB = 1024 ** 3;
    expect(defaultParallel(2, 8 * GiB)).toBe(2);
    expect(defaultParallel(16, 8 * GiB)).toBe(4);
    expect(defaultParallel(4, 1 * GiB)).toBe(1);
  });
});
