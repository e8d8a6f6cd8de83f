/**
 * The full soak: 200 `mp build` runs with random module edits and random SIGINTs, beside another
 * project that builds and runs `mp clean` (and `mp clean --all`) in a loop on the same cache.
 * Prints what went wrong, if anything, and exits non-zero then.
 *
 * Run: node bench/soak.ts [--builds 200] [--seed 1]
 */
import { parseArgs } from 'node:util';
import { runSoak } from '../test/utils/src/soak.ts';

const { values } = parseArgs({
  options: { builds: { type: 'string', default: '200' }, seed: { type: 'string', default: '1' } },
});
const report = await runSoak({
  builds: Number(values.builds),
  seed: Number(values.seed),
  log: (line) => process.stderr.write(`${line}\n`),
});
const ok =
  report.failures.length === 0 &&
  report.cleans.failed.length === 0 &&
  report.final.code === 0 &&
  report.final.exportedModuleSha === report.final.expectedModuleSha &&
  Object.values(report.leftovers).every((list) => list.length === 0);
console.log(
  `soak: ${report.builds} builds (${report.interrupted} interrupted), neighbour cleans ${report.cleans.ok} ok / ${report.cleans.refused} refused, in ${report.seconds.toFixed(0)} s: ${ok ? 'ok' : 'FAILED'}`,
);
if (!ok) {
  console.log(
    JSON.stringify(
      {
        failures: report.failures,
        cleans: report.cleans.failed,
        final: report.final,
        leftovers: report.leftovers,
      },
      null,
      2,
    ),
  );
  process.exit(1);
}
