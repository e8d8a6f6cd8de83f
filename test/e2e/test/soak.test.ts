/**
 * The soak in small: 30 builds with random edits and SIGINTs beside a project that builds and
 * cleans in a loop (the full 200 are `node bench/soak.ts`; see test/utils/src/soak.ts for why).
 */
import { runSoak } from '@mp/test-utils/soak';
import { describe, expect, it } from 'vitest';

describe('soak', () => {
  it('30 interrupted and edited builds beside a cleaning neighbour leave a correct export and nothing behind', async () => {
    const report = await runSoak({ builds: 30, seed: 30 });
    expect(report.failures).toEqual([]);
    expect(report.cleans.failed).toEqual([]);
    expect(report.interrupted).toBeGreaterThan(0);
    expect(report.final.code, report.final.output).toBe(0);
    expect(report.final.exportedModuleSha).toBe(report.final.expectedModuleSha);
    expect(report.leftovers).toEqual({ containers: [], locks: [], temps: [] });
  }, 600_000);
});
