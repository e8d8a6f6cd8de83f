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
// From a clone the TypeScript sources run as they are; Node does not strip types under
// node_modules, so an installed mp runs the JavaScript that `pnpm build` emitted into dist/.
const installed = import.meta.url.includes('/node_modules/');
const { main } = await import(installed ? '../dist/main.js' : '../src/main.ts');
process.exitCode = await main(process.argv.slice(2));
