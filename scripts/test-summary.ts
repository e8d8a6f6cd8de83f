/**
 * Adds up every package's vitest JSON report (.vitest/results.json) into the one closing line CI
 * reads: "tests: N passed, N failed, N skipped". Exits 1 when a test failed or no test ran.
 * Each failed test is named just above that line, with the first lines of its error: the end of a
 * CI log is often all there is to read, and turbo prints a suite's output far above it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { workspacePackageDirs } from '../packages/core/src/plugin/discovery.ts';

let passed = 0;
let failed = 0;
let skipped = 0;
const failures: string[] = [];
const root = join(import.meta.dirname, '..');
for (const dir of workspacePackageDirs(root)) {
  const file = join(dir, '.vitest', 'results.json');
  if (!existsSync(file)) continue;
  const report = JSON.parse(readFileSync(file, 'utf8'));
  passed += report.numPassedTests ?? 0;
  failed += report.numFailedTests ?? 0;
  skipped += (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
  for (const suite of (report.testResults ?? []) as Suite[]) {
    const where = suite.name.slice(root.length + 1);
    // A suite that failed to load counts as a failure even if it ran no test.
    if (suite.status === 'failed' && !suite.assertionResults?.length) {
      failed += 1;
      failures.push(`${where}: ${firstLines(suite.message)}`);
    }
    for (const test of suite.assertionResults ?? [])
      if (test.status === 'failed')
        failures.push(`${where} > ${test.fullName}: ${firstLines(test.failureMessages?.join('\n'))}`);
  }
}
for (const failure of failures) console.log(`FAILED ${failure}`);
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);

interface Suite {
  name: string;
  status: string;
  message?: string;
  assertionResults?: Array<{ status: string; fullName: string; failureMessages?: string[] }>;
}

/** The first lines of an error, without colour codes: enough to say what went wrong. */
function firstLines(text: string | undefined): string {
  const plain = stripVTControlCharacters(text ?? '');
  return plain
    .split('\n')
    .filter((l) => l.trim())
    .slice(0, 6)
    .join('\n    ');
}
