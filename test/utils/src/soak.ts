/**
 * The soak: many `mp build` runs of one project with random module edits and random SIGINTs,
 * while another project sharing the source cache builds and cleans in a loop (`mp clean`, and
 * `mp clean --all`, which must wait or refuse while builds use the cache). It ends with one
 * uninterrupted build and checks what a user would: that build exports the last edit, and no
 * container, lock or temporary file is left anywhere.
 *
 * The test suite runs it with a few dozen builds (test/e2e/test/soak.test.ts) so CI watches for
 * regressions; `node bench/soak.ts` runs the full 200 on demand, because 200 container builds
 * take minutes that every CI run should not pay.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureFixtureToolchainImage } from './docker.ts';
import { createFixtureRepos } from './fixture-micropython.ts';
import { MP_BIN } from './run-mp.ts';

export interface SoakOptions {
  builds: number;
  /** Chance that a build is interrupted with SIGINT at a random moment. */
  interruptChance?: number;
  seed?: number;
  log?: (line: string) => void;
}

export interface SoakReport {
  builds: number;
  interrupted: number;
  /** Exit codes other than 0 and 130, with the output that came with them. */
  failures: Array<{ run: number; code: number | null; signal: NodeJS.Signals | null; output: string }>;
  cleans: { ok: number; refused: number; failed: Array<{ code: number | null; output: string }> };
  final: { code: number | null; output: string; exportedModuleSha?: string; expectedModuleSha: string };
  leftovers: { containers: string[]; locks: string[]; temps: string[] };
  seconds: number;
}

/** A small seeded generator, so a failing soak can be rerun with the same choices. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function runMp(args: string[], env: NodeJS.ProcessEnv, interruptAfterMs?: number) {
  return new Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
    output: string;
    interrupted: boolean;
  }>((resolve) => {
    const child = spawn(process.execPath, [MP_BIN, ...args], {
      env: { ...process.env, NO_COLOR: '1', CI: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    let interrupted = false;
    const timer =
      interruptAfterMs === undefined
        ? undefined
        : setTimeout(() => {
            interrupted = true;
            child.kill('SIGINT');
          }, interruptAfterMs);
    const hang = setTimeout(() => child.kill('SIGKILL'), 240_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(hang);
      resolve({ code, signal, output, interrupted });
    });
  });
}

function walk(dir: string, visit: (path: string, name: string) => void): void {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of entries) {
    const path = join(dir, name);
    visit(path, name);
    if (statSync(path, { throwIfNoEntry: false })?.isDirectory()) walk(path, visit);
  }
}

export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const started = performance.now();
  const log = options.log ?? (() => {});
  const rand = random(options.seed ?? 1);
  const repos = createFixtureRepos();
  const image = await ensureFixtureToolchainImage();
  const cacheDir = mkdtempSync(join(tmpdir(), 'mp-soak-cache-'));
  const projects = [0, 1].map((i) => {
    const dir = mkdtempSync(join(tmpdir(), `mp-soak-${i}-`));
    writeFileSync(join(dir, 'mp.config.json'), JSON.stringify({ image }));
    rmSync(join(dir, 'modules'), { recursive: true, force: true });
    spawnSync('mkdir', ['-p', join(dir, 'modules')]);
    writeFileSync(join(dir, 'modules', 'app.py'), 'VALUE = 0\n');
    return dir;
  });
  const [soaked, other] = projects as [string, string];
  const env = { MP_CACHE_DIR: cacheDir, MP_GIT_MIRRORS: repos.mirrorEnv };
  const report: SoakReport = {
    builds: options.builds,
    interrupted: 0,
    failures: [],
    cleans: { ok: 0, refused: 0, failed: [] },
    final: { code: null, output: '', expectedModuleSha: '' },
    leftovers: { containers: [], locks: [], temps: [] },
    seconds: 0,
  };
  try {
    let done = false;
    // The other project: build, clean, sometimes clean --all, until the soak ends.
    const neighbour = (async () => {
      let n = 0;
      while (!done) {
        await runMp(['build', '--cwd', other], env);
        const all = n++ % 4 === 3;
        const clean = await runMp(['clean', '--cwd', other, ...(all ? ['--all'] : [])], env);
        if (clean.code === 0) report.cleans.ok++;
        else if (all && /in use|is using|refus|running build/i.test(clean.output)) report.cleans.refused++;
        else report.cleans.failed.push({ code: clean.code, output: clean.output.slice(-2000) });
      }
    })();
    for (let run = 1; run <= options.builds; run++) {
      writeFileSync(
        join(soaked, 'modules', 'app.py'),
        `VALUE = ${run}\nNAME = "edit ${Math.floor(rand() * 1e6)}"\n`,
      );
      const interrupt =
        rand() < (options.interruptChance ?? 0.25) ? Math.floor(50 + rand() * 1500) : undefined;
      const result = await runMp(['build', '--cwd', soaked], env, interrupt);
      if (result.interrupted) report.interrupted++;
      // A SIGINT before mp has installed its handler (the first ~50 ms of Node's start-up) ends the
      // process by the signal itself, as Ctrl-C ends any program then: no code, nothing started.
      const fine =
        result.code === 0 || (result.interrupted && (result.code === 130 || result.signal === 'SIGINT'));
      if (!fine)
        report.failures.push({
          run,
          code: result.code,
          signal: result.signal,
          output: result.output.slice(-3000),
        });
      log(`build ${run}/${options.builds}: exit ${result.code}${result.interrupted ? ' (SIGINT)' : ''}`);
    }
    done = true;
    await neighbour;
    const finalSource = `VALUE = "final"\n`;
    writeFileSync(join(soaked, 'modules', 'app.py'), finalSource);
    report.final.expectedModuleSha = createHash('sha256').update(finalSource).digest('hex');
    const final = await runMp(['build', '--cwd', soaked, '--json'], env);
    report.final.code = final.code;
    report.final.output = final.output.slice(-3000);
    const result = final.output
      .split('\n')
      .filter((l) => l.startsWith('{"type":"result"'))
      .map((l) => JSON.parse(l))
      .at(-1);
    if (result?.sidecar) {
      const sidecar = JSON.parse(readFileSync(result.sidecar, 'utf8'));
      report.final.exportedModuleSha = sidecar.modules.find(
        (m: { file: string }) => m.file === 'app.py',
      )?.sha256;
    }
    for (const dir of projects) {
      const ids = spawnSync('docker', ['ps', '-aq', '--filter', `label=mp.project=${dir}`], {
        encoding: 'utf8',
      }).stdout.trim();
      if (ids) report.leftovers.containers.push(...ids.split('\n'));
    }
    for (const root of [...projects, cacheDir]) {
      walk(root, (path, name) => {
        if (name === 'lock' || name.endsWith('.lock')) report.leftovers.locks.push(path);
        if (/\.tmp$|^\.tmp-|^\.mp-submodule-/.test(name)) report.leftovers.temps.push(path);
      });
    }
  } finally {
    for (const dir of [...projects, cacheDir]) rmSync(dir, { recursive: true, force: true });
    repos.cleanup();
    report.seconds = (performance.now() - started) / 1000;
  }
  return report;
}
