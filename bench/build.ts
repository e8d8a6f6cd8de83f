/**
 * `mp build` timings against the real Docker engine:
 *   cold        first build: empty source cache, empty build directory (toolchain image present)
 *   no-op       nothing changed: answered from the build cache, no container started
 *   cached      back to an earlier state (the edit before last): answered from the firmware cache,
 *               no container, no make
 *   incremental one line of one module changed, `mp build` as a user runs it (a new process each
 *               time), run by the resident mp the previous build left (packages/cli/bin/resident.js)
 *               in the container it left warm, both under the lease (MP_CONTAINER_LEASE); without
 *               a resident mp (MP_RESIDENT=0: each build loads mp itself); and without a lease
 *               (container started and removed each time, no resident mp)
 *   warm        the same edit built by core's pipeline in an already running toolchain container
 *               (what `mp dev` does)
 *   raw make    the same edit built by `docker exec <that container> make …`: the floor; also run
 *               after each new-process build in its leased container ("beside"), which is what
 *               the new-process builds are compared with
 *
 * Every ratio is printed with its goal, all measured in the same run. mp runs bundled, as a
 * clone does after its first command (packages/cli/src/bundle.ts); MP_BUNDLE=0: from its sources.
 *
 * Run: node bench/build.ts [--runs 15]
 *   Uses the fixture MicroPython/mqtt_as repositories (test/utils) behind mp's default URLs.
 *   To measure another project instead (e.g. a real MicroPython via mirrors), pass
 *   --project <dir>; its environment (MP_GIT_MIRRORS, MP_CACHE_DIR) is used as it is, and only
 *   the no-op, cached, incremental, warm and raw numbers are taken.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ensureBundle } from '../packages/cli/src/bundle.ts';
import {
  createBuild,
  openProject,
  portMakeVariables,
  runSteps,
  shellQuote,
  type ToolchainContainer,
} from '../packages/core/src/index.ts';
import {
  createFixtureRepos,
  ensureFixtureToolchainImage,
  MP_BIN,
  REPO_ROOT,
} from '../test/utils/src/index.ts';
import { median, timedMp } from './lib.ts';

// What a clone runs after its first command: the bundled CLI, unless MP_BUNDLE=0 (the sources).
const bundle = await ensureBundle();
console.log(`mp runs ${bundle ? `bundled (${bundle})` : 'from its TypeScript sources'}`);

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '15' }, project: { type: 'string' } },
});
const runs = Number(values.runs);

/** The environment mp runs in: a lease of its own, as CI (set for plain output) would turn leases off. */
function mpEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...process.env, MP_CONTAINER_LEASE: '120', ...env, CI: '1', NO_COLOR: '1' };
}

function mpBuild(
  projectDir: string,
  env: NodeJS.ProcessEnv,
  args: string[] = [],
): { ms: number; result: Record<string, unknown> } {
  return timedMp(['build', '--cwd', projectDir, ...args], mpEnv(env));
}

/** Ends the project's warm container and the resident mp of the builds' environment. */
function mpStop(projectDir: string, env: NodeJS.ProcessEnv): void {
  spawnSync(process.execPath, [MP_BIN, 'stop', '--cwd', projectDir], { env: mpEnv(env) });
}

function containersCreated(projectDir: string, since: number, until: number): number {
  const out = execFileSync(
    'docker',
    [
      'events',
      '--since',
      String(Math.floor(since / 1000)),
      '--until',
      String(Math.ceil(until / 1000) + 1),
      '--filter',
      'type=container',
      '--filter',
      'event=create',
      '--filter',
      `label=mp.project=${projectDir}`,
      '--format',
      '{{.ID}}',
    ],
    { encoding: 'utf8' },
  ).trim();
  return out ? out.split('\n').length : 0;
}

/**
 * Edits one line of one module, a different value each time, and one no earlier run of the bench
 * wrote (a --project keeps its firmware cache between runs: an old value would be a cache hit).
 */
let edits = Date.now() * 1000;
function editModule(modulesDir: string): void {
  const name = readdirSync(modulesDir)
    .filter((f) => f.endsWith('.py'))
    .sort()[0]!;
  const file = join(modulesDir, name);
  const lines = readFileSync(file, 'utf8').split('\n');
  const marker = lines.findIndex((l) => l.startsWith('BENCH_EDIT = '));
  const line = `BENCH_EDIT = ${++edits}`;
  if (marker >= 0) lines[marker] = line;
  else lines.unshift(line);
  writeFileSync(file, lines.join('\n'));
}

let cleanup = () => {};
let projectDir: string;
let env: NodeJS.ProcessEnv;
const rows: Array<[string, number, string]> = [];

if (values.project) {
  projectDir = resolve(values.project);
  env = {};
} else {
  console.log('setting up: fixture repositories, fixture toolchain image …');
  const repos = createFixtureRepos();
  const image = await ensureFixtureToolchainImage();
  const cacheDir = mkdtempSync(join(tmpdir(), 'mp-bench-cache-'));
  projectDir = mkdtempSync(join(tmpdir(), 'mp-bench-project-'));
  writeFileSync(join(projectDir, 'mp.config.json'), JSON.stringify({ image }));
  execFileSync('mkdir', ['-p', join(projectDir, 'modules/drivers')]);
  writeFileSync(
    join(projectDir, 'modules/app.py'),
    'import asyncio\nfrom mqtt_as import MQTTClient, config\n\n\nasync def main():\n    client = MQTTClient(config)\n    await client.connect()\n',
  );
  writeFileSync(join(projectDir, 'modules/drivers/__init__.py'), '');
  writeFileSync(
    join(projectDir, 'modules/drivers/bme280.py'),
    'class BME280:\n    def __init__(self, i2c):\n        self.i2c = i2c\n',
  );
  env = { MP_CACHE_DIR: cacheDir, MP_GIT_MIRRORS: repos.mirrorEnv };
  cleanup = () => {
    repos.cleanup();
    rmSync(cacheDir, { recursive: true, force: true });
    rmSync(projectDir, { recursive: true, force: true });
  };
}

try {
  if (!values.project) {
    const cold = mpBuild(projectDir, env);
    rows.push(['cold build', cold.ms, 'fetch sources, submodules, mpy-cross, port, export']);
  }
  // Make sure the current state is built, then time builds with nothing to do.
  mpBuild(projectDir, env);
  const noop: number[] = [];
  let created = 0;
  for (let i = 0; i < runs; i++) {
    const since = Date.now();
    const { ms, result } = mpBuild(projectDir, env);
    if (result.upToDate !== true) throw new Error('expected an up-to-date build');
    created += containersCreated(projectDir, since, Date.now());
    noop.push(ms);
  }
  rows.push(['no-op build', median(noop), `${created} containers started in ${runs} runs`]);

  const modulesDir = join(projectDir, 'modules');
  // Back and forth between two states built before: each build is the firmware cache's answer.
  const cached: number[] = [];
  let cachedContainers = 0;
  {
    editModule(modulesDir);
    const a = readFileSync(join(modulesDir, 'app.py'), 'utf8');
    mpBuild(projectDir, env);
    editModule(modulesDir);
    const b = readFileSync(join(modulesDir, 'app.py'), 'utf8');
    mpBuild(projectDir, env);
    for (let i = 0; i < runs; i++) {
      writeFileSync(join(modulesDir, 'app.py'), i % 2 === 0 ? a : b);
      const since = Date.now();
      const { ms, result } = mpBuild(projectDir, env);
      if (result.fromCache !== true) throw new Error('expected an answer from the firmware cache');
      cachedContainers += containersCreated(projectDir, since, Date.now());
      cached.push(ms);
    }
  }
  rows.push([
    'earlier state (cache)',
    median(cached),
    `firmware cache, ${cachedContainers} containers started in ${runs} runs`,
  ]);

  // The same edit in one running container: core's pipeline (mp dev) and raw make.
  const openOptions = {
    projectDir,
    env: { ...process.env, ...env },
    pluginRoots: [join(REPO_ROOT, 'packages/cli')],
  };
  let container: ToolchainContainer | undefined;
  const warm: number[] = [];
  const raw: number[] = [];
  let rawCommand = '';
  try {
    for (let i = 0; i <= runs; i++) {
      editModule(modulesDir);
      const project = await openProject(openOptions);
      const build = createBuild({ project, container, keepContainer: true, env: { ...process.env, ...env } });
      const started = performance.now();
      try {
        await runSteps(build.steps, build.ctx, { signal: new AbortController().signal });
      } finally {
        await build.dispose();
      }
      if (!build.ctx.compiled) throw new Error('expected a compile');
      if (i > 0) warm.push(performance.now() - started); // the first run starts the container
      container = build.ctx.container;
      const { board, target } = build.ctx as Required<typeof build.ctx>;
      const jobs = project.config.jobs;
      const makeArgs = [
        ...portMakeVariables(board, target),
        `MICROPY_MPYCROSS=/mp/build/mpy-cross/mpy-cross`,
        `-j${jobs}`,
        ...(target.makeArgs ?? []).map(shellQuote),
      ];
      rawCommand = [
        target.toolchain.shellPrelude,
        `cd /mp/micropython && make -C ports/${board.port} ${makeArgs.join(' ')}`,
      ]
        .filter(Boolean)
        .join(' && ');
      if (i === 0) continue;
      editModule(modulesDir);
      const user = `${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}`;
      const t = performance.now();
      execFileSync('docker', ['exec', '-u', user, '-e', 'HOME=/tmp', container!.id, 'sh', '-c', rawCommand], {
        stdio: 'ignore',
      });
      raw.push(performance.now() - t);
    }
  } finally {
    await container?.stop();
  }
  rows.push(['incremental (warm)', median(warm), 'core pipeline in the running container (mp dev)']);
  rows.push(['raw make', median(raw), `docker exec … ${rawCommand.slice(0, 60)}…`]);

  // One build leaves the container warm; each edit after it is built there by a new process.
  // Raw make runs after each, in that same leased container: make's time drifts by a quarter
  // over a minute on this machine, so each ratio compares builds of the same moments.
  editModule(modulesDir);
  mpBuild(projectDir, env);
  const rawBeside: number[] = [];
  const rawMakeInLeased = (): number => {
    const leased = execFileSync(
      'docker',
      ['ps', '-q', '--filter', `label=mp.project=${projectDir}`, '--filter', 'label=mp.lease'],
      { encoding: 'utf8' },
    )
      .trim()
      .split('\n')[0];
    if (!leased) throw new Error('no leased container to run raw make in');
    editModule(modulesDir);
    const user = `${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}`;
    const t = performance.now();
    execFileSync('docker', ['exec', '-u', user, '-e', 'HOME=/tmp', leased, 'sh', '-c', rawCommand], {
      stdio: 'ignore',
    });
    return performance.now() - t;
  };
  /**
   * `runs` one-module edits, each compiled by a new `mp build` process; with `beside`, raw make
   * after each, and each build's ratio to the make right after it (`ratios`): make's own time
   * drifts from one second to the next here, and a pair is the same moment for both.
   */
  const compiles = (extraEnv: NodeJS.ProcessEnv, beside = false) => {
    const ms: number[] = [];
    const ratios: number[] = [];
    let reused = 0;
    let resident = 0;
    for (let i = 0; i < runs; i++) {
      editModule(modulesDir);
      const build = mpBuild(projectDir, { ...env, ...extraEnv });
      if (build.result.fromCache === true || build.result.upToDate === true)
        throw new Error('expected a compile');
      if (build.result.container === 'reused') reused++;
      if (build.result.resident === true) resident++;
      ms.push(build.ms);
      if (beside) {
        const raw = rawMakeInLeased();
        rawBeside.push(raw);
        ratios.push(build.ms / raw);
      }
    }
    return { ms, ratios, reused, resident };
  };
  const leasedRuns = compiles({}, true);
  const incremental = leasedRuns.ms;
  rows.push([
    'incremental (mp build)',
    median(incremental),
    `new process, run by the resident mp (${leasedRuns.resident}/${runs}), container left warm (${leasedRuns.reused}/${runs} reused)`,
  ]);
  // The same without a resident mp: each build loads mp in its own process.
  const ownRuns = compiles({ MP_RESIDENT: '0' }, true);
  const ownProcess = ownRuns.ms;
  rows.push([
    'incremental (no resident)',
    median(ownProcess),
    'new process that loads mp itself (MP_RESIDENT=0), container left warm',
  ]);
  mpStop(projectDir, env);
  const oneShot = compiles({ MP_CONTAINER_LEASE: '0' }).ms;
  rows.push([
    'incremental (no lease)',
    median(oneShot),
    'new process: container started and removed (MP_CONTAINER_LEASE=0)',
  ]);

  rows.push([
    'raw make (beside)',
    median(rawBeside),
    'the same, in the leased container, after each new-process build',
  ]);
  const rawMs = median(raw);
  const rawBesideMs = median(rawBeside);
  const noopMs = median(noop);
  const cachedMs = median(cached);
  const met = (ok: boolean) => (ok ? 'met' : 'NOT met');
  console.log(
    `\nmp build timings, median of ${runs} runs (${values.project ? projectDir : 'fixture MicroPython, esp8266-d1mini + mqtt_as'})`,
  );
  for (const [name, ms, note] of rows)
    console.log(`  ${name.padEnd(24)} ${(ms / 1000).toFixed(3).padStart(7)} s   ${note}`);
  console.log('\nratios (goal beside each)');
  const leased = median(leasedRuns.ratios);
  const spread = (xs: number[]) => `${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}`;
  console.log(
    `  incremental (mp build) / raw make   ${leased.toFixed(2)}×   (median of ${runs} pairs, ${spread(leasedRuns.ratios)}, each with the raw make right after it; medians' ratio ${(median(incremental) / rawBesideMs).toFixed(2)}×; goal ≤ 1.3×: ${met(leased <= 1.3)})`,
  );
  console.log(
    `  incremental (no resident) / raw make ${median(ownRuns.ratios).toFixed(2)}×  (median of ${runs} pairs; for comparison: mp loaded by each build)`,
  );
  console.log(
    `  incremental (no lease) / raw make   ${(median(oneShot) / rawMs).toFixed(2)}×   (for comparison: a container per build)`,
  );
  console.log(
    `  incremental (warm) / raw make       ${(median(warm) / rawMs).toFixed(2)}×   (goal ≤ 1.5×: ${met(median(warm) / rawMs <= 1.5)})`,
  );
  console.log(
    `  no-op                               ${(noopMs / 1000).toFixed(3)} s  (goal ≤ 0.5 s, no container: ${met(noopMs <= 500 && created === 0)})`,
  );
  console.log(
    `  earlier state, firmware cache       ${(cachedMs / 1000).toFixed(3)} s  (goal ≤ 0.2 s, no container: ${met(cachedMs <= 200 && cachedContainers === 0)})`,
  );
  const coldRow = rows.find((r) => r[0] === 'cold build');
  if (coldRow)
    console.log(`  cold / incremental (mp build)       ${(coldRow[1] / median(incremental)).toFixed(1)}×`);
} finally {
  mpStop(projectDir, env);
  cleanup();
}
