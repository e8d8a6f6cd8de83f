import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { RebuildScheduler } from '../src/dev/scheduler.ts';

function recorder(buildMs: number) {
  const builds: string[][] = [];
  let concurrent = 0;
  let maxConcurrent = 0;
  const scheduler = new RebuildScheduler({
    debounceMs: 20,
    build: async (changed) => {
      concurrent++;
      maxConcurrent = Math.max(maxConcurrent, concurrent);
      builds.push([...changed].sort());
      await sleep(buildMs);
      concurrent--;
    },
  });
  return { scheduler, builds, maxConcurrent: () => maxConcurrent };
}

describe('rebuild scheduling in mp dev', () => {
  it('turns a burst of saves into one build with every changed file', async () => {
    const { scheduler, builds } = recorder(10);
    for (const f of ['a.py', 'b.py', 'a.py', 'c.py']) scheduler.notify(f);
    await sleep(5);
    await scheduler.idle();
    expect(builds).toEqual([['a.py', 'b.py', 'c.py']]);
  });

  it('never loses a change made during a build: one more build follows with it', async () => {
    const { scheduler, builds, maxConcurrent } = recorder(80);
    scheduler.notify('a.py');
    await sleep(40); // the first build is running now
    scheduler.notify('b.py');
    scheduler.notify('c.py');
    await scheduler.idle();
    expect(builds).toEqual([['a.py'], ['b.py', 'c.py']]);
    expect(maxConcurrent()).toBe(1);
  });

  it('keeps going after a failed build and reports the error', async () => {
    const errors: unknown[] = [];
    let calls = 0;
    const scheduler = new RebuildScheduler({
      debounceMs: 5,
      build: async () => {
        calls++;
        if (calls === 1) throw new Error('syntax error');
      },
      onError: (e) => errors.push(e),
    });
    scheduler.notify('a.py');
    await sleep(10);
    await scheduler.idle();
    scheduler.notify('a.py');
    await sleep(10);
    await scheduler.idle();
    expect(calls).toBe(2);
    expect(errors).toHaveLength(1);
  });

  it('starts nothing after stop, and stop waits for the running build', async () => {
    const { scheduler, builds } = recorder(50);
    scheduler.notify('a.py');
    await sleep(30);
    scheduler.notify('b.py');
    await scheduler.stop();
    scheduler.notify('c.py');
    await sleep(40);
    expect(builds).toEqual([['a.py']]);
  });
});
