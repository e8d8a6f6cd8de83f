/**
 * Which target builds where and when: targets wait in config order and go to the engine with the
 * most free slots; an engine that fails under a build is taken out, and what ran on it goes back
 * to the queue for the others. A target is never run twice at once, and runs again only when its
 * engine failed it (a failing build of its own ends it: the others go on).
 *
 *   const done = await scheduleTargets({ targets, engines, run: (t, e) => build(t, e) });
 */

/** An engine as the scheduler sees it: a name and how many targets it takes at once. */
export interface Slots {
  name: string;
  slots: number;
}

/** What one attempt of a target on an engine came to. */
export type AttemptResult<R> =
  /** The target is finished, well or not: its result. */
  | { kind: 'done'; result: R }
  /** The engine failed under it: the engine is taken out and the target tried on another. */
  | { kind: 'engine-failed'; error: unknown };

export interface Scheduled<T, E, R> {
  target: T;
  /** Every engine it was tried on, in order, with the engine's error for all but a final success. */
  attempts: Array<{ engine: E; error?: unknown }>;
  /**
   * Absent when no engine was left to try it on (`attempts` say why), when it was cancelled before
   * it started (no attempts), or when `run` threw (the last attempt's error).
   */
  result?: R;
}

export interface ScheduleOptions<T, E extends Slots, R> {
  targets: T[];
  engines: E[];
  run(target: T, engine: E, attempt: number): Promise<AttemptResult<R>>;
  /** Once per engine taken out, with the error of the build that found it failing. */
  onEngineDown?(engine: E, error: unknown): void;
  /** A target going back to the queue after its engine failed. */
  onRetry?(target: T, from: E, error: unknown): void;
  /** No target starts once aborted; those running finish (their own signal stops them). */
  signal?: AbortSignal;
}

export async function scheduleTargets<T, E extends Slots, R>(
  options: ScheduleOptions<T, E, R>,
): Promise<Array<Scheduled<T, E, R>>> {
  const { engines, signal } = options;
  const records = options.targets.map((target): Scheduled<T, E, R> => ({ target, attempts: [] }));
  const queue = [...records];
  const running = new Map<E, number>(engines.map((e) => [e, 0]));
  const down = new Set<E>();
  let active = 0;

  return new Promise((resolve) => {
    const free = (e: E) => (down.has(e) ? 0 : e.slots - running.get(e)!);
    const pump = () => {
      while (queue.length && !signal?.aborted) {
        // The most free slots first; of equals, the engine named first.
        const engine = engines.reduce<E | undefined>(
          (best, e) => (free(e) > 0 && (!best || free(e) > free(best)) ? e : best),
          undefined,
        );
        if (!engine) break;
        start(queue.shift()!, engine);
      }
      // Nothing can run what is left: every engine is out (or the run is cancelled).
      if (active === 0) {
        queue.length = 0;
        resolve(records);
      }
    };
    const start = (record: Scheduled<T, E, R>, engine: E) => {
      active++;
      running.set(engine, running.get(engine)! + 1);
      const attempt = { engine } as { engine: E; error?: unknown };
      record.attempts.push(attempt);
      options
        .run(record.target, engine, record.attempts.length)
        // `run` answers rather than throws; a throw ends the target (it is no engine's failure).
        .catch((error: unknown) => ({ kind: 'thrown' as const, error }))
        .then((outcome) => {
          running.set(engine, running.get(engine)! - 1);
          active--;
          if (outcome.kind === 'done') record.result = outcome.result;
          else if (outcome.kind === 'thrown') attempt.error = outcome.error;
          else {
            attempt.error = outcome.error;
            if (!down.has(engine)) {
              down.add(engine);
              options.onEngineDown?.(engine, outcome.error);
            }
            if (engines.some((e) => !down.has(e))) {
              options.onRetry?.(record.target, engine, outcome.error);
              // Ahead of targets not started yet: it was started first.
              queue.unshift(record);
            }
          }
          pump();
        });
    };
    pump();
  });
}
