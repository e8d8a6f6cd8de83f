#!/usr/bin/env node
// The mp command. Plain JavaScript so an old Node gets a clear message instead of a syntax error;
// the TypeScript sources run through Node's built-in type stripping (Node >= 22.18).
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(
    `mp needs Node.js 22.18 or newer (this is ${process.version}).\n` +
      'Install a current Node (https://nodejs.org, or `npm install -g node@24`), or run `scripts/setup` in the mp repository, which installs one for you.\n',
  );
  process.exit(1);
}
// Caches compiled (and type-stripped) modules between runs: start-up is most of a short command.
const { enableCompileCache } = await import('node:module');
enableCompileCache?.();
// `mp boards | head` closes the pipe early; that is not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
}
// From a clone the TypeScript sources run, bundled (src/bundle.ts) while the bundle is what the
// sources say, as they are otherwise; Node does not strip types under node_modules, so an
// installed mp runs the JavaScript that `pnpm build` emitted into dist/.
const installed = import.meta.url.includes('/node_modules/');
const bundle = installed ? undefined : await currentBundle();
if (bundle) globalThis[Symbol.for('mp.bundledCore')] = new URL('core.mjs', bundle).href;
const { main } = await import(
  installed ? '../dist/main.js' : bundle ? new URL('main.mjs', bundle).href : '../src/main.ts'
);
process.exitCode = await main(process.argv.slice(2));

/**
 * The bundle's folder when every file it was made from still has the mtime it had then (some
 * 150 stats, about a millisecond); otherwise undefined, and a new bundle is made after this run
 * (not during it: it would compete for the processor). MP_BUNDLE=0 runs the sources always.
 */
async function currentBundle() {
  if (process.env.MP_BUNDLE === '0') return undefined;
  const { readFileSync, statSync } = await import('node:fs');
  let root;
  try {
    // src/bundle.ts writes it under core's node_modules.
    root = new URL('../node_modules/.cache/mp-cli/', import.meta.resolve('@mp/core'));
    const record = JSON.parse(readFileSync(new URL('current.json', root), 'utf8'));
    if (
      record.inputs.every(([file, mtimeMs]) => statSync(file, { throwIfNoEntry: false })?.mtimeMs === mtimeMs)
    )
      return new URL(`${record.dir}/`, root);
  } catch {
    // No bundle yet, or an unreadable record: make one.
  }
  // Not while another process makes one, nor within a minute of a failure (no esbuild, a source
  // that does not parse): each try is a Node process.
  const recent = (name, ms) => {
    const info = root && statSync(new URL(name, root), { throwIfNoEntry: false });
    return info && Date.now() - info.mtimeMs < ms;
  };
  if (!root || recent('building', 120_000) || recent('failed', 60_000)) return undefined;
  const { spawn } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  process.once('exit', () => {
    try {
      spawn(process.execPath, [fileURLToPath(new URL('../src/bundle.ts', import.meta.url))], {
        detached: true,
        stdio: 'ignore',
      }).unref();
    } catch {
      // Without a bundle mp still runs; the next run tries again.
    }
  });
  return undefined;
}
