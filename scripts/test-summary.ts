/**
 * Adds up every package's vitest JSON report (.vitest/results.json) into the one closing line CI
 * reads: "tests: N passed, N failed, N skipped". Exits 1 when a test failed or no test ran.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { workspacePackageDirs } from '../packages/core/src/plugin/discovery.ts';

let passed = 0;
let failed = 0;
let skipped = 0;
const root = join(import.meta.dirname, '..');
for (const dir of workspacePackageDirs(root)) {
  const file = join(dir, '.vitest', 'results.json');
  if (!existsSync(file)) continue;
  const report = JSON.parse(readFileSync(file, 'utf8'));
  passed += report.numPassedTests ?? 0;
  failed += report.numFailedTests ?? 0;
  skipped += (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
  // A suite that failed to load counts as a failure even if it ran no test.
  failed += (report.testResults ?? []).filter(
    (r: { status: string; assertionResults?: unknown[] }) =>
      r.status === 'failed' && !r.assertionResults?.length,
  ).length;
}
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
