/**
 * `mp build --all` over many targets: the wall time of 8 fixture targets (three D1 mini variants,
 * two ESP32 builds, three unix builds) built from scratch
 *   - on one engine, one at a time (`parallel` 1) against four at a time (`parallel` 4);
 *   - on two engines (this machine's and a second dockerd started here, reached on a loopback TCP
 *     port with sources copied into volumes, as for a remote engine) against one, with the same
 *     slots per engine, and with the same slots in all.
 * All ratios are measured in the same run, each configuration from cold build folders (the source
 * cache and the toolchain images present, a new module so no firmware cache answers).
 *
 * Both engines share this machine's cores: what a second engine on another machine adds (its own
 * cores) cannot show here; what shows is the scheduling and the cost of copying to an engine that
 * cannot see this machine's files.
 *
 * Run: node bench/targets.ts [--runs 1]   (needs root for the second dockerd; --no-second skips it)
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createFixtureRepos, ensureFixtureToolchainImage, MP_BIN } from '../test/utils/src/index.ts';
import { type SecondEngine, startSecondEngine } from '../test/utils/src/second-engine.ts';
import { median } from './lib.ts';

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '1' }, 'no-second': { type: 'boolean' } },
});
const runs = Number(values.runs);

const TARGETS = {
  d1mini: { board: 'esp8266-d1mini' },
  'd1mini-1m': { board: 'esp8266-d1mini', variant: 'FLASH_1M' },
  'd1mini-2m': { board: 'esp8266-d1mini', variant: 'FLASH_2M_ROMFS', make: { MICROPY_PY_BTREE: 0 } },
  esp32: { board: 'esp32-generic' },
  'esp32-spiram': { board: 'esp32-generic', variant: 'SPIRAM' },
  unix: { board: 'unix' },
  'unix-nobtree': { board: 'unix', make: { MICROPY_PY_BTREE: 0 } },
  'unix-nolibs': { board: 'unix', libraries: [] },
};

/** `mp build --all --json` (asynchronous: the second engine's TCP proxy lives in this process). */
function buildAll(
  projectDir: string,
  env: NodeJS.ProcessEnv,
): Promise<{ ms: number; engines: Record<string, number> }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MP_BIN, 'build', '--all', '--cwd', projectDir, '--json'], {
      env: { ...process.env, ...env, CI: '1', NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => {
      const ms = performance.now() - started;
      const last = stdout
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .pop();
      const result = last ? JSON.parse(last) : {};
      if (code !== 0 || result.ok !== true) {
        reject(
          new Error(`mp build --all failed (exit ${code}):\n${stdout.slice(-3000)}\n${stderr.slice(-2000)}`),
        );
        return;
      }
      const engines: Record<string, number> = {};
      for (const t of result.targets as Array<{ engine: string; result: string }>) {
        if (t.result !== 'built') throw new Error(`target not built from scratch: ${JSON.stringify(t)}`);
        engines[t.engine] = (engines[t.engine] ?? 0) + 1;
      }
      resolve({ ms, engines });
    });
  });
}

console.log('setting up: fixture repositories, fixture toolchain image …');
const repos = createFixtureRepos();
const image = await ensureFixtureToolchainImage();
const cacheDir = mkdtempSync(join(tmpdir(), 'mp-bench-cache-'));
const projectDir = mkdtempSync(join(tmpdir(), 'mp-bench-targets-'));
const env = { MP_CACHE_DIR: cacheDir, MP_GIT_MIRRORS: repos.mirrorEnv };
let second: SecondEngine | undefined;

const LOCAL = { host: 'unix:///var/run/docker.sock', name: 'local' };
let edit = 0;
/** Cold build folders and a module not built before: every target compiles from scratch. */
function configure(parallel: number, engines: Array<Record<string, unknown>>): void {
  rmSync(join(projectDir, '.mp/build'), { recursive: true, force: true });
  writeFileSync(join(projectDir, 'modules/app.py'), `BENCH = ${++edit}\n\n\ndef main():\n    print(BENCH)\n`);
  writeFileSync(
    join(projectDir, 'mp.config.json'),
    JSON.stringify({ image, targets: TARGETS, parallel, engines }, null, 2),
  );
}

try {
  mkdirSync(join(projectDir, 'modules'));

  // Warm-up: sources fetched into the cache, images present, submodules checked out.
  configure(4, [LOCAL]);
  await buildAll(projectDir, env);

  if (!values['no-second']) {
    console.log('starting a second Docker engine and loading the toolchain image into it …');
    second = await startSecondEngine();
    await second.loadImage(image);
  }
  const remote = second && { host: second.host, name: 'second', mounts: 'copy' };

  const configs: Array<{ label: string; parallel: number; engines: Array<Record<string, unknown>> }> = [
    { label: 'one engine, parallel 1', parallel: 1, engines: [LOCAL] },
    { label: 'one engine, parallel 4', parallel: 4, engines: [LOCAL] },
  ];
  if (remote) {
    configs.push(
      { label: 'two engines, parallel 4 each', parallel: 4, engines: [LOCAL, remote] },
      { label: 'two engines, parallel 2 each', parallel: 2, engines: [LOCAL, remote] },
    );
    // The second engine's copies (tree, libraries) made once, as a remote engine has them after its first build.
    configure(2, [LOCAL, remote]);
    await buildAll(projectDir, env);
  }
  const times = new Map<string, number[]>();
  const spread = new Map<string, Record<string, number>>();
  for (let run = 0; run < runs; run++) {
    for (const c of configs) {
      configure(c.parallel, c.engines);
      const { ms, engines } = await buildAll(projectDir, env);
      times.set(c.label, [...(times.get(c.label) ?? []), ms]);
      spread.set(c.label, engines);
    }
  }
  const t = (label: string) => median(times.get(label)!);
  console.log(
    `\n8 fixture targets from cold build folders, median of ${runs} run${runs === 1 ? '' : 's'} (${availableParallelism()} cores, ${Math.round(totalmem() / 1024 ** 3)} GiB):\n`,
  );
  for (const c of configs) {
    const where = Object.entries(spread.get(c.label)!)
      .map(([e, n]) => `${n} on ${e}`)
      .join(', ');
    console.log(`  ${c.label.padEnd(30)} ${(t(c.label) / 1000).toFixed(1).padStart(6)} s   (${where})`);
  }
  const one = t('one engine, parallel 1');
  const four = t('one engine, parallel 4');
  console.log(
    `\n  parallel 4 / parallel 1 on one engine:           ${(four / one).toFixed(2)}× the time (${(one / four).toFixed(2)}× faster)`,
  );
  if (remote) {
    const two4 = t('two engines, parallel 4 each');
    const two2 = t('two engines, parallel 2 each');
    console.log(`  two engines / one engine, parallel 4 each:       ${(two4 / four).toFixed(2)}× the time`);
    console.log(`  two engines × 2 / one engine × 4 (same slots):   ${(two2 / four).toFixed(2)}× the time`);
  }
} finally {
  await second?.cleanup();
  repos.cleanup();
  rmSync(cacheDir, { recursive: true, force: true });
  rmSync(projectDir, { recursive: true, force: true });
}
