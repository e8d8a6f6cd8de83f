/** What the benchmarks share: the median of a run's samples, and `mp … --json` timed. */
import { spawnSync } from 'node:child_process';
import { MP_BIN } from '../test/utils/src/index.ts';

/** The middle sample (the upper one of an even count). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/**
 * Runs `mp <args> --json` with exactly `env`, and times it; its result line, or an error with the
 * end of its output when it did not exit 0 with `ok: true`.
 */
export function timedMp(
  args: string[],
  env: NodeJS.ProcessEnv,
): { ms: number; result: Record<string, unknown> } {
  const started = performance.now();
  const r = spawnSync(process.execPath, [MP_BIN, ...args, '--json'], {
    env,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  const ms = performance.now() - started;
  const last = r.stdout
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .pop();
  const result = last ? (JSON.parse(last) as Record<string, unknown>) : {};
  if (r.status !== 0 || result.ok !== true)
    throw new Error(
      `mp ${args.join(' ')} failed (exit ${r.status}):\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`,
    );
  return { ms, result };
}
