import { defineConfig, mergeConfig } from 'vitest/config';
import { sharedTestConfig } from '../../vitest.shared.ts';

// Real compiles take minutes on two cores: one file at a time, so two builds never fight for
// the CPU, and the global setup prints how long the whole tier took.
export default mergeConfig(
  sharedTestConfig({ testTimeout: 900_000, fileParallelism: false }),
  defineConfig({ test: { globalSetup: ['./test/global-setup.ts'] } }),
);
