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
// Node's own modules are taken with getBuiltinModule, here and in resident.js: an import() of one
// costs a millisecond or more each, the most of what this file does before a resident mp answers.
// From a clone the TypeScript sources run, bundled (src/bundle.ts) while the bundle is what the
// sources say, as they are otherwise; Node does not strip types under node_modules, so an
// installed mp runs the JavaScript that `pnpm build` emitted into dist/.
const installed = import.meta.url.includes('/node_modules/');
const bundle = installed ? undefined : await currentBundle();
if (bundle) globalThis[Symbol.for('mp.bundledCore')] = new URL('core.mjs', bundle).href;
const mainUrl = installed ? '../dist/main.js' : bundle ? new URL('main.mjs', bundle).href : '../src/main.ts';
// Resident mp (bin/resident.js): only for code that stays as it is while a process lives, a
// bundle or an install, never the sources one is editing.
const codeId = installed ? installedCodeId() : bundle?.href;
if (codeId) globalThis[Symbol.for('mp.resident')] = { codeId };
const argv = process.argv.slice(2);
const serving = process.env.MP_RESIDENT_SOCKET;
if (serving) {
  await serve(serving);
} else {
  let startResident;
  if (codeId && process.env.MP_RESIDENT !== '0' && argv.includes('build')) {
    const resident = await import('./resident.js');
    const dir = resident.residentDir();
    const socket = dir && resident.residentSocket(dir, codeId);
    const outcome = socket
      ? await resident.runInResident(socket, argv, brokenPipe)
      : { declined: 'no socket' };
    // Answered, and its output written: ending now spares the millisecond Node's orderly end takes.
    if (outcome.code !== undefined && outcome.drained) process.exit(outcome.code);
    if (outcome.code !== undefined) process.exitCode = outcome.code;
    // A new one where there is none, or the one there is on its way out; a busy one stays.
    else if (outcome.declined === 'absent' || outcome.declined === 'retiring')
      startResident = () => resident.startResidentOnExit(socket, dir, codeId, argv);
  }
  if (process.exitCode === undefined) {
    // Caches compiled (and type-stripped) modules between runs: start-up is most of a short
    // command. Not before a resident mp is asked: that answer needs none of it.
    process.getBuiltinModule('node:module').enableCompileCache?.();
    for (const stream of [process.stdout, process.stderr]) stream.on('error', brokenPipe);
    const { main } = await import(mainUrl);
    process.exitCode = await main(argv);
    // The command asks for a resident mp when it ran with a lease (src/resident/client.ts).
    if (startResident && globalThis[Symbol.for('mp.resident')].wanted) startResident();
  }
}

/** `mp boards | head` closes the pipe early; that is not an error. */
function brokenPipe(error) {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
}

/**
 * Runs as the resident mp for `socket`: records every module file it loads (with its mtime, so it
 * can tell when one changed under it), then serves (src/resident/server.ts).
 */
async function serve(socket) {
  const expected = process.env.MP_RESIDENT_CODE;
  const warmUp = process.env.MP_RESIDENT_WARMUP;
  delete process.env.MP_RESIDENT_SOCKET;
  delete process.env.MP_RESIDENT_CODE;
  delete process.env.MP_RESIDENT_WARMUP;
  // Started for other code than this process loaded (the bundle changed in between): no use.
  if (!codeId || codeId !== expected) return;
  const { registerHooks } = process.getBuiltinModule('node:module');
  const { statSync } = process.getBuiltinModule('node:fs');
  const { fileURLToPath } = process.getBuiltinModule('node:url');
  const loaded = new Map();
  process.getBuiltinModule('node:module').enableCompileCache?.();
  registerHooks({
    load(url, context, nextLoad) {
      if (url.startsWith('file:')) {
        const file = fileURLToPath(url.replace(/[?#].*$/, ''));
        loaded.set(file, statSync(file, { throwIfNoEntry: false })?.mtimeMs);
      }
      return nextLoad(url, context);
    },
  });
  const { main, serveResident } = await import(mainUrl);
  await serveResident({ socket, loaded, main, warmUp: parseWarmUp(warmUp) });
}

/** The command that started this resident process, to warm up on; undefined if unreadable. */
function parseWarmUp(text) {
  try {
    const { argv, cwd } = JSON.parse(text);
    return Array.isArray(argv) && typeof cwd === 'string' ? { argv, cwd } : undefined;
  } catch {
    return undefined;
  }
}

/** An installed mp is its dist folder as it was built: the folder and its entry's mtime. */
function installedCodeId() {
  const entry = new URL('../dist/main.js', import.meta.url);
  try {
    return `${entry.href}@${process.getBuiltinModule('node:fs').statSync(entry).mtimeMs}`;
  } catch {
    return undefined;
  }
}

/**
 * The bundle's folder when every file it was made from still has the mtime it had then (some
 * 150 stats, about a millisecond); otherwise undefined, and a new bundle is made after this run
 * (not during it: it would compete for the processor). MP_BUNDLE=0 runs the sources always.
 */
async function currentBundle() {
  if (process.env.MP_BUNDLE === '0') return undefined;
  const { readFileSync, statSync } = process.getBuiltinModule('node:fs');
  let root;
  try {
    // src/bundle.ts writes it under core's node_modules: in a clone the sibling package, which
    // is where import.meta.resolve('@mp/core') leads too, but without its 2 ms of looking.
    root = new URL('../../core/node_modules/.cache/mp-cli/', import.meta.url);
    if (!statSync(new URL('current.json', root), { throwIfNoEntry: false }))
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
