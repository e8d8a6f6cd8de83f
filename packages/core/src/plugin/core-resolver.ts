import { registerHooks } from 'node:module';

let registered = false;

/**
 * Set by the CLI of a clone when it runs bundled (packages/cli/src/bundle.ts): the URL of the
 * bundle's core, which plugins must get instead of core's sources (one core in the process).
 */
const BUNDLED_CORE = Symbol.for('mp.bundledCore');
type BundledCore = { [BUNDLED_CORE]?: string };

/**
 * Plugin modules and config files say `import { defineBoard } from '@mp/core'`. A project outside
 * this repository, or a plugin package just created by `mp new` and not installed yet, has no
 * `@mp/core` in its node_modules; resolve the specifier to the running core so both work at once,
 * and so there is only ever one copy of the API in the process.
 */
export function registerCoreResolver(): void {
  if (registered) return;
  registered = true;
  const coreUrl = (globalThis as BundledCore)[BUNDLED_CORE] ?? import.meta.resolve('@mp/core');
  registerHooks({
    resolve(specifier, context, nextResolve) {
      if (specifier === '@mp/core') return { url: coreUrl, shortCircuit: true, format: 'module' };
      return nextResolve(specifier, context);
    },
  });
}
