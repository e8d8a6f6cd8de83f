/**
 * `mp --help` start-up time next to bare `node -e 0`, the floor no Node CLI can go under.
 * Run: node bench/startup.ts [runs]   (MP_BUNDLE=0: mp from its sources instead of its bundle)
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ensureBundle } from '../packages/cli/src/bundle.ts';

const runs = Number(process.argv[2] ?? 20);
// What a clone runs after its first command: the bundled CLI, unless MP_BUNDLE=0 (the sources).
const bundle = await ensureBundle();
const mp = fileURLToPath(new URL('../packages/cli/bin/mp.js', import.meta.url));

function median(command: string[]): number {
  const times: number[] = [];
  for (let i = 0; i < runs + 2; i++) {
    const started = performance.now();
    const r = spawnSync(process.execPath, command, { stdio: 'ignore' });
    if (r.status !== 0) throw new Error(`${command.join(' ')} exited ${r.status}`);
    if (i >= 2) times.push(performance.now() - started); // two warm-up runs fill the OS file cache
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

const node = median(['-e', '0']);
const help = median([mp, '--help']);
const boards = median([mp, 'boards']);
const row = (name: string, ms: number) =>
  console.log(`${name.padEnd(16)} ${ms.toFixed(1).padStart(7)} ms   ${(ms / node).toFixed(2)}× node`);
console.log(
  `median of ${runs} runs, Node ${process.version}, mp ${bundle ? 'bundled' : 'from its TypeScript sources'}`,
);
row('node -e 0', node);
row('mp --help', help);
row('mp boards', boards);
console.log(`mp --help: ${help.toFixed(0)} ms (goal ≤ 300 ms): ${help <= 300 ? 'met' : 'NOT met'}`);
