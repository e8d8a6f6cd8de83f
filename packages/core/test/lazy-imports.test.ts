/**
 * Every mp command imports core, so what core's index loads is start-up time for all of them.
 * The heavy dependencies are imported where they are used (see loadDockerode, loadEsptool,
 * loadSerialPortStream, loadTarStream); this keeps it that way.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const CORE_INDEX = new URL('../src/index.ts', import.meta.url).href;

/** Loaded only by the code that needs them: containers, copies, serial ports, flashing, TS configs. */
const LAZY = [
  'dockerode',
  'tar-stream',
  'esptool-js',
  'serialport',
  '@serialport/stream',
  'tsx',
  'chokidar',
  'js-yaml',
  'tinyglobby',
];

/** The URLs (files and builtins) a fresh Node process loads to import core's index. */
function urlsLoadedByCoreImport(): string[] {
  const script = `
    import { registerHooks } from 'node:module';
    const loaded = new Set();
    registerHooks({ load(url, context, next) { loaded.add(url); return next(url, context); } });
    await import(${JSON.stringify(CORE_INDEX)});
    process.stdout.write(JSON.stringify([...loaded]));`;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`importing core failed:\n${run.stderr}`);
  return JSON.parse(run.stdout) as string[];
}

function packageOf(url: string): string | undefined {
  return /\/node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1];
}

describe('importing @mp/core', () => {
  it('loads none of the heavy dependencies, nor the ES facade of node:http', () => {
    const urls = urlsLoadedByCoreImport();
    expect(urls).toContain(CORE_INDEX);
    const packages = new Set(urls.map(packageOf).filter((name) => name !== undefined));
    expect(LAZY.filter((name) => packages.has(name))).toEqual([]);
    // Its lazy WebSocket exports load undici (see engineGet in toolchain/engine-http.ts).
    expect(urls).not.toContain('node:http');
  });
});
