/**
 * The inner loop, measured: save → firmware and save → flashed with `mp dev`'s session (core's
 * runDevSession, the code the CLI runs) against the real Docker engine, the fixture MicroPython
 * and an emulated D1 mini throttled to a real 460800 baud wire; next to raw incremental `make`
 * run by `docker exec` in the very same toolchain container.
 *
 * Run: node bench/dev.ts [--runs 7] [--board esp8266-d1mini|esp32-generic]
 *   (without --board and --project: both boards, one after the other, each against its goal:
 *   firmware → flashed and booted ≤ 0.6 s on the ESP8266, ≤ 0.5 s on the ESP32)
 *   --project <dir>  measure another project instead (e.g. a real MicroPython reached through
 *                    MP_GIT_MIRRORS/MP_CACHE_DIR in the environment); its modules/app.py is
 *                    edited; a board without a chip (unix) is built but not flashed.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  createBuild,
  type DevEvent,
  openProject,
  portMakeVariables,
  runDevSession,
  runSteps,
  shellQuote,
  type ToolchainContainer,
} from '../packages/core/src/index.ts';
import { type ChipName, createEspEmulator } from '../test/esp-emulator/src/index.ts';
import { createFixtureRepos, ensureFixtureToolchainImage, REPO_ROOT } from '../test/utils/src/index.ts';
import { median } from './lib.ts';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '7' },
    project: { type: 'string' },
    board: { type: 'string' },
  },
});
const runs = Number(values.runs);
/** The flash goal per chip (issue "Performance", goal 1): firmware → flashed and booted. */
const FLASH_GOAL_S: Record<string, number> = { ESP8266: 0.6, ESP32: 0.5 };

if (!values.project && !values.board) {
  // Each board in a process of its own: its own fixture project, container and emulated board.
  let status = 0;
  for (const board of ['esp8266-d1mini', 'esp32-generic']) {
    console.log(`\n=== ${board} ===`);
    const run = spawnSync(
      process.execPath,
      [import.meta.filename, '--board', board, '--runs', String(runs)],
      {
        stdio: 'inherit',
      },
    );
    status ||= run.status ?? 1;
  }
  process.exit(status);
}

let projectDir: string;
let env: NodeJS.ProcessEnv;
let cacheDir: string | undefined;
let cleanup = () => {};
if (values.project) {
  projectDir = resolve(values.project);
  env = { ...process.env };
} else {
  console.log('setting up: fixture repositories, fixture toolchain image …');
  useRealPython();
  const repos = createFixtureRepos();
  const image = await ensureFixtureToolchainImage();
  cacheDir = mkdtempSync(join(tmpdir(), 'mp-bench-cache-'));
  projectDir = mkdtempSync(join(tmpdir(), 'mp-bench-dev-'));
  mkdirSync(join(projectDir, 'modules'));
  writeFileSync(
    join(projectDir, 'mp.config.json'),
    JSON.stringify({ image, board: values.board, flash: { port: '/dev/ttyEMU0' } }),
  );
  env = { ...process.env, MP_CACHE_DIR: cacheDir, MP_GIT_MIRRORS: repos.mirrorEnv };
  const dirs = [cacheDir, projectDir];
  cleanup = () => {
    repos.cleanup();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  };
}
/**
 * The fixture's mpy-cross is a Python script standing in for the real one, a C program that
 * starts in a millisecond. mp dev runs it on the host to check a save before it resets the board
 * (the early connection waits for it): started through a version manager's shim (pyenv's takes
 * ~0.1 s) it would delay every connection by that, which no real mpy-cross does. So the
 * interpreter itself goes first on PATH, for this process and what it starts.
 */
function useRealPython(): void {
  const found = spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' });
  const real = found.status === 0 ? found.stdout.trim() : '';
  if (!real || real === execFileSync('sh', ['-c', 'command -v python3'], { encoding: 'utf8' }).trim()) return;
  const dir = mkdtempSync(join(tmpdir(), 'mp-bench-python-'));
  symlinkSync(real, join(dir, 'python3'));
  process.env.PATH = `${dir}:${process.env.PATH}`;
  console.log(`python3 is a shim here: the fixture's mpy-cross runs ${real} directly`);
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
}

const appFile = join(projectDir, 'modules/app.py');
const original = existsSync(appFile) ? readFileSync(appFile, 'utf8') : undefined;
let edits = 0;
let appBody = '';
const edit = () =>
  writeFileSync(appFile, `${appBody}\nBENCH_EDIT = ${++edits}\n\n\ndef main():\n    print(BENCH_EDIT)\n`);
edit();
const open = () => openProject({ projectDir, env, pluginRoots: [join(REPO_ROOT, 'packages/cli')] });

let container: ToolchainContainer | undefined;
const stop = new AbortController();
try {
  // 1. A warm container with the project built once, and raw make timings in it.
  const first = createBuild({
    project: await open(),
    keepContainer: true,
    env,
    ...(cacheDir ? { cacheDir } : {}),
  });
  try {
    await runSteps(first.steps, first.ctx, { signal: stop.signal });
  } finally {
    await first.dispose();
  }
  container = first.ctx.container!;
  const { board, target, project } = first.ctx as Required<typeof first.ctx>;
  const make = [
    target.toolchain.shellPrelude,
    `cd /mp/micropython && make -C ports/${board.port} ${[...portMakeVariables(board, target), 'MICROPY_MPYCROSS=/mp/build/mpy-cross/mpy-cross', `-j${project.config.jobs}`, ...(target.makeArgs ?? []).map(shellQuote)].join(' ')}`,
  ]
    .filter(Boolean)
    .join(' && ');
  // Raw make is timed between dev saves, on a frozen library file mp dev does not watch (editing
  // app.py would start a dev build beside it), so both see the machine in the same state.
  const library = first.ctx.libraries.find((l) => l.frozenFiles.length > 0);
  if (!library?.dir) throw new Error('the benchmark needs a frozen library (mqtt_as)');
  const libraryFile = join(library.dir, library.frozenFiles[0]!);
  const libraryText = readFileSync(libraryFile, 'utf8');
  // The module mp dev rebuilds gets the same size as the library file raw make rebuilds, so both
  // recompile the same amount of Python.
  appBody = libraryText;
  edit();
  const raw: number[] = [];
  const rawMake = () => {
    writeFileSync(libraryFile, `${libraryText}\nBENCH_RAW = ${++edits}\n`);
    const t = performance.now();
    execFileSync(
      'docker',
      [
        'exec',
        '-u',
        `${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}`,
        '-e',
        'HOME=/tmp',
        running.id,
        'sh',
        '-c',
        make,
      ],
      { stdio: 'ignore' },
    );
    raw.push(performance.now() - t);
  };
  const running = container;

  // 2. mp dev's session in the same container, flashing an emulated board over a 460800 baud wire.
  const flash = board.chip !== undefined;
  const chip = (board.chip ?? 'ESP8266').toLowerCase().replace('-', '') as ChipName;
  const emulator = createEspEmulator({ chip, path: '/dev/ttyEMU0', throttle: true });
  const events: Array<{ at: number; event: DevEvent }> = [];
  const waitFor = async (type: DevEvent['type'], from: number) => {
    for (;;) {
      const found = events.find((e, i) => i >= from && e.event.type === type);
      if (found) return found;
      const failed = events.find(
        (e, i) =>
          i >= from &&
          (e.event.type === 'dev:build-failed' ||
            e.event.type === 'dev:flash-failed' ||
            e.event.type === 'dev:syntax-error'),
      );
      if (failed) throw new Error(`mp dev: ${JSON.stringify(failed.event)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  const session = runDevSession({
    openProject: open,
    signal: stop.signal,
    binding: emulator.binding,
    container,
    env,
    ...(cacheDir ? { cacheDir } : {}),
    flash,
    onEvent: (event) => events.push({ at: performance.now(), event }),
  });
  container = undefined; // the session owns it now and removes it
  await waitFor('dev:idle', 0);
  const toFirmware: number[] = [];
  const breakdown: string[] = [];
  const toFlashed: number[] = [];
  const written: number[] = [];
  for (let i = 0; i < runs; i++) {
    rawMake();
    const from = events.length;
    const saved = performance.now();
    edit();
    const built = await waitFor('dev:built', from);
    toFirmware.push(built.at - saved);
    const since = (type: string, id?: string, edge: 'step:start' | 'step:end' = 'step:start') => {
      const e = events.find(
        (x, j) =>
          j >= from &&
          (id
            ? x.event.type === 'dev:step' && x.event.event.type === edge && x.event.event.id === id
            : x.event.type === type),
      );
      return e ? `${(e.at - saved).toFixed(0)}` : '-';
    };
    let line = `change ${since('dev:change')} · compile starts ${since('', 'compile')} · export starts ${since('', 'export')} · built ${(built.at - saved).toFixed(0)}`;
    if (flash) {
      const flashed = await waitFor('dev:flashed', from);
      toFlashed.push(flashed.at - saved);
      if (flashed.event.type === 'dev:flashed') written.push(flashed.event.result.writtenBytes);
      // The connection starts once the saved Python compiles, beside make (see DevSessionOptions.connectEarly).
      line += ` · connect ${since('', 'connect')}–${since('', 'connect', 'step:end')} · write ${since('', 'write')} · restart ${since('', 'reset')} · flashed ${(flashed.at - saved).toFixed(0)}`;
    }
    breakdown.push(`${line} ms`);
    await waitFor('dev:idle', from);
  }
  stop.abort();
  await session;
  writeFileSync(libraryFile, libraryText);
  // Where the time of the last save went: each pipeline step as core reported it.
  const lastSave = events.findLastIndex((e) => e.event.type === 'dev:change');
  const steps = events
    .slice(lastSave)
    .flatMap((e) =>
      e.event.type === 'dev:step' && e.event.event.type === 'step:end'
        ? [`${e.event.pipeline}:${e.event.event.id} ${e.event.event.ms.toFixed(0)}ms`]
        : [],
    );
  console.log(`\nlast save, per step: ${steps.join(', ')}`);
  console.log(`after each save: \n  ${breakdown.join('\n  ')}`);

  const rawMs = median(raw);
  const fwMs = median(toFirmware);
  console.log(
    `\nmp dev inner loop, median of ${runs} saves (${values.project ? `${projectDir}, board ${board.id}${flash ? ', emulated board at 460800 baud' : ', not flashed'}` : `fixture MicroPython, ${board.id} + mqtt_as, emulated ${board.chip} at 460800 baud`})`,
  );
  console.log(`  raw incremental make (docker exec)  ${(rawMs / 1000).toFixed(3)} s`);
  // Each save against the raw make run just before it: make's time drifts from one second to the
  // next on a shared machine, and a pair is the same moment for both.
  const pairs = toFirmware.map((t, i) => t / raw[i]!);
  const paired = median(pairs);
  const spread = `${Math.min(...pairs).toFixed(2)}–${Math.max(...pairs).toFixed(2)}`;
  console.log(
    `  save → firmware (mp dev)            ${(fwMs / 1000).toFixed(3)} s   ${paired.toFixed(2)}× raw make (median of ${runs} pairs, ${spread}, each with the raw make just before it; medians' ratio ${(fwMs / rawMs).toFixed(2)}×; goal ≤ 1.2×: ${paired <= 1.2 ? 'met' : 'NOT met'})`,
  );
  if (flash) {
    console.log(
      `  save → flashed and booted           ${(median(toFlashed) / 1000).toFixed(3)} s   ${(median(toFlashed) / rawMs).toFixed(2)}× raw make; ${median(written)} bytes of flash rewritten`,
    );
    const flashS = median(toFlashed.map((t, i) => t - toFirmware[i]!)) / 1000;
    const goal = FLASH_GOAL_S[board.chip!];
    console.log(
      `  firmware → flashed and booted       ${flashS.toFixed(3)} s   (the connection ran beside make${goal ? `; goal for the flash ≤ ${goal} s on the ${board.chip}: ${flashS <= goal ? 'met' : 'NOT met'}` : ''})`,
    );
  }
  console.log('  (save → firmware includes the watcher debounce, the mpy-cross syntax check and the export)');
} finally {
  stop.abort();
  await container?.stop().catch(() => undefined);
  if (original !== undefined) writeFileSync(appFile, original);
  cleanup();
}
