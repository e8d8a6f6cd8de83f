import { defineConfig } from 'vitest/config';

/**
 * One vitest config shape for every package: default console output plus a JSON report in
 * `.vitest/results.json`, which `scripts/test` adds up into the closing "N passed, N failed" line.
 */
export function sharedTestConfig(options: { testTimeout?: number; fileParallelism?: boolean } = {}) {
  return defineConfig({
    test: {
      include: ['test/**/*.test.ts'],
      testTimeout: options.testTimeout ?? 20_000,
      hookTimeout: options.testTimeout ?? 20_000,
      fileParallelism: options.fileParallelism ?? true,
      reporters: ['default', ['json', { outputFile: '.vitest/results.json' }]],
    },
  });
}
