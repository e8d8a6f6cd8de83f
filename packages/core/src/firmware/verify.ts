/**
 * `mp verify <firmware or sidecar>`: builds the firmware again from the provenance its sidecar
 * records, from scratch in a scratch folder, and says whether the result is the same bytes; when it
 * is not, which input differs (a module edited since, a library's commit, the toolchain image, mp's
 * own version), or that none does and the build itself is not reproducible.
 *
 * The scratch build uses the project's plugins and mirrors, mp's source cache (sources are fetched
 * once), and nothing else of the project: the board, MicroPython (its tag, or its commit), each
 * library at its recorded commit, the build options and the toolchain image by id come from the
 * sidecar; the project's modules are copied in as they are now (the sidecar holds their sha256,
 * not their text), only those the firmware froze. It never answers from the firmware cache, never
 * reuses a build folder or a warm container: the point is to compile.
 *
 *   const v = await createVerification({ project, file: 'export/ESP8266-….bin' });
 *   try { await runSteps(v.build.steps, v.build.ctx, { signal }); const result = await v.finish(); }
 *   finally { await v.dispose(); }
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { MpError } from '../errors.ts';
import type { Project } from '../project.ts';
import { inspectImageId } from '../toolchain/engine-http.ts';
import type { Toolchain } from '../toolchain/toolchain.ts';
import { sha256Hex } from '../util/hash.ts';
import { type Build, createBuild } from './pipeline.ts';
import type { SourceCache } from './resolve.ts';
import type { ExportSidecar } from './sidecar.ts';

export interface VerifyOptions {
  /** The project the firmware belongs to: its plugins, mirrors and modules folder. */
  project: Project;
  /** The firmware file or its sidecar (`<firmware>.json`). */
  file: string;
  env?: NodeJS.ProcessEnv;
  cacheDir?: string;
  toolchain?: Toolchain;
  sources?: SourceCache;
}

/** One input that is not what the recorded build had. */
export interface InputDifference {
  /** What it is: `module app.py`, `library mqtt_as`, `toolchain image`, `mp`. */
  input: string;
  recorded: string;
  now: string;
}

export interface VerifyResult {
  /** The rebuild is byte for byte the recorded firmware. */
  identical: boolean;
  sha256: { recorded: string; rebuilt: string; file: string | null };
  /** Inputs that differ between the recorded build and the rebuild (empty when all are the same). */
  differences: InputDifference[];
  /** Same inputs, different bytes: the build is not reproducible. */
  notReproducible: boolean;
  sidecarFile: string;
  /** The rebuilt firmware, kept (with its sidecar) in the scratch folder when it differs. */
  rebuilt: string;
  /** The scratch folder: removed when the rebuild is identical, else only its export/ is left. */
  scratchDir: string;
}

export interface Verification {
  sidecar: ExportSidecar;
  sidecarFile: string;
  /** The scratch build: run its steps (the CLI renders them). */
  build: Build;
  /** After the steps: the comparison. */
  finish(): Promise<VerifyResult>;
  /** Releases the build; removes the scratch folder unless the rebuild differed. */
  dispose(): Promise<void>;
}

export async function createVerification(options: VerifyOptions): Promise<Verification> {
  const { project } = options;
  const env = options.env ?? process.env;
  const sidecarFile = sidecarOf(resolve(project.config.projectDir, options.file));
  const sidecar = await readSidecar(sidecarFile);
  const firmwareFile = join(dirname(sidecarFile), sidecar.firmware);
  const fileSha = existsSync(firmwareFile) ? sha256Hex(await readFile(firmwareFile)) : null;

  const before: InputDifference[] = [];
  if (fileSha && fileSha !== sidecar.sha256)
    before.push({ input: `firmware file ${sidecar.firmware}`, recorded: sidecar.sha256, now: fileSha });

  const scratchDir = await mkdtemp(join(tmpdir(), 'mp-verify-'));
  const modulesDir = join(scratchDir, 'modules');
  for (const module of sidecar.modules) {
    const from = join(project.config.modulesDir, module.file);
    if (!existsSync(from)) {
      before.push({ input: `module ${module.file}`, recorded: module.sha256, now: 'missing' });
      continue;
    }
    await mkdir(dirname(join(modulesDir, module.file)), { recursive: true });
    await copyFile(from, join(modulesDir, module.file));
  }

  // The image by id when the engine still has it; else what its reference names now.
  const imageNow = (await inspectImageId(sidecar.image.id, env).catch(() => undefined))
    ? sidecar.image.id
    : sidecar.image.ref;

  const mp = sidecar.micropython;
  const config = {
    ...project.config,
    projectDir: scratchDir,
    configFile: undefined,
    board: sidecar.board.id,
    variant: sidecar.options.variant ?? undefined,
    micropython: mp.path
      ? { git: project.config.micropython.git, path: mp.path }
      : { git: mp.git ?? project.config.micropython.git, ref: mp.tag ?? mp.sha ?? undefined },
    libraries: sidecar.libraries.map((l) =>
      l.path ? { id: l.id, path: l.path } : { id: l.id, git: l.git ?? undefined, ref: l.sha ?? undefined },
    ),
    modulesDir,
    modulesFrom: 'default' as const,
    exportDir: join(scratchDir, 'export'),
    image: imageNow,
    make: sidecar.options.make,
    submodules: sidecar.options.submodules,
    cModules: sidecar.options.cModules.map((m) => m.path),
  };
  const scratch: Project = { config, plugins: project.plugins, stateDir: join(scratchDir, '.mp') };
  const build = createBuild({
    project: scratch,
    force: true,
    firmwareCache: false,
    lease: 0,
    env,
    cacheDir: options.cacheDir,
    toolchain: options.toolchain,
    sources: options.sources,
  });
  let differed = false;
  return {
    sidecar,
    sidecarFile,
    build,
    async finish() {
      const result = build.ctx.result;
      if (!result) throw new Error('createVerification: finish() before the build ran');
      const differences = [...before, ...compareInputs(sidecar, result.sidecar)];
      const identical =
        result.sidecar.sha256 === sidecar.sha256 && (fileSha ?? sidecar.sha256) === sidecar.sha256;
      differed = !identical;
      return {
        identical,
        sha256: { recorded: sidecar.sha256, rebuilt: result.sidecar.sha256, file: fileSha },
        differences,
        notReproducible: !identical && differences.length === 0,
        sidecarFile,
        rebuilt: result.firmware,
        scratchDir,
      };
    },
    async dispose() {
      await build.dispose();
      // A rebuild that differs keeps its export (to compare with the recorded one), nothing else.
      const keep = differed ? ['export'] : [];
      for (const name of await readdir(scratchDir).catch(() => [] as string[]))
        if (!keep.includes(name))
          await rm(join(scratchDir, name), { recursive: true, force: true }).catch(() => undefined);
      if (!differed) await rm(scratchDir, { recursive: true, force: true }).catch(() => undefined);
    },
  };
}

/** `X.bin` → `X.bin.json`; a `.json` is the sidecar itself. */
function sidecarOf(file: string): string {
  return file.endsWith('.json') ? file : `${file}.json`;
}

async function readSidecar(file: string): Promise<ExportSidecar> {
  let data: unknown;
  try {
    data = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    throw new MpError({
      code: 'VERIFY_NO_SIDECAR',
      message: existsSync(file)
        ? `${file} is not a readable sidecar: ${error instanceof Error ? error.message : String(error)}`
        : `${file} does not exist: mp verify needs the firmware's sidecar (its provenance)`,
      file,
      hint: 'Name a firmware exported by mp build (its sidecar <firmware>.json beside it) or the sidecar itself.',
      exitCode: 2,
    });
  }
  const sidecar = data as Partial<ExportSidecar>;
  if (sidecar.schema !== 'mp.export/1' || !sidecar.board || !sidecar.micropython || !sidecar.image) {
    throw new MpError({
      code: 'VERIFY_NO_SIDECAR',
      message: `${file} is not an mp export sidecar (schema mp.export/1)`,
      file,
      hint: 'Name a firmware exported by mp build (its sidecar <firmware>.json beside it) or the sidecar itself.',
      exitCode: 2,
    });
  }
  return sidecar as ExportSidecar;
}

/** What differs between the provenance of two builds, input by input. */
export function compareInputs(recorded: ExportSidecar, now: ExportSidecar): InputDifference[] {
  const out: InputDifference[] = [];
  const same = (input: string, a: unknown, b: unknown) => {
    const [x, y] = [show(a), show(b)];
    if (x !== y) out.push({ input, recorded: x, now: y });
  };
  same('mp', recorded.mp.version, now.mp.version);
  same('board', recorded.board.id, now.board.id);
  same(`board plugin ${recorded.board.id}`, recorded.board.packageVersion, now.board.packageVersion);
  same('MicroPython commit', recorded.micropython.sha, now.micropython.sha);
  same('MicroPython local checkout', recorded.micropython.path, now.micropython.path);
  same('MicroPython uncommitted changes', recorded.micropython.dirty, now.micropython.dirty);
  same(
    'SOURCE_DATE_EPOCH',
    recorded.micropython.sourceDateEpoch ?? null,
    now.micropython.sourceDateEpoch ?? null,
  );
  for (const path of keys(recorded.micropython.submodules, now.micropython.submodules))
    same(
      `submodule ${path}`,
      recorded.micropython.submodules[path]?.sha,
      now.micropython.submodules[path]?.sha,
    );
  const libraries = (s: ExportSidecar) => new Map(s.libraries.map((l) => [l.id, l]));
  const [la, lb] = [libraries(recorded), libraries(now)];
  for (const id of keys(Object.fromEntries(la), Object.fromEntries(lb))) {
    same(`library ${id}`, la.get(id)?.sha ?? la.get(id)?.path, lb.get(id)?.sha ?? lb.get(id)?.path);
    same(`library ${id} frozen files`, la.get(id)?.frozen, lb.get(id)?.frozen);
  }
  const modules = (s: ExportSidecar) => Object.fromEntries(s.modules.map((m) => [m.file, m.sha256]));
  const [ma, mb] = [modules(recorded), modules(now)];
  for (const file of keys(ma, mb)) {
    // A module missing now is said before the build, which then froze one file fewer.
    if (mb[file] === undefined && out.some((d) => d.input === `module ${file}`)) continue;
    same(`module ${file}`, ma[file] ?? 'absent', mb[file] ?? 'absent');
  }
  same('toolchain image', recorded.image.id, now.image.id);
  same('make variables', recorded.options.make, now.options.make);
  same('make arguments', recorded.options.makeArgs, now.options.makeArgs);
  same('variant', recorded.options.variant, now.options.variant);
  same('submodule choice', recorded.options.submodules, now.options.submodules);
  for (const m of recorded.options.cModules) {
    const other = now.options.cModules.find((n) => n.name === m.name);
    same(`C module ${m.name}`, m.sha256, other?.sha256 ?? 'absent');
  }
  // Nothing named differs but the inputs as a whole do (a board plugin's resolve hook, say).
  if (out.length === 0 && recorded.firmwareKey && now.firmwareKey && recorded.firmwareKey !== now.firmwareKey)
    out.push({
      input: 'build inputs (board target, manifest)',
      recorded: recorded.firmwareKey,
      now: now.firmwareKey,
    });
  return out;
}

function keys(a: Record<string, unknown>, b: Record<string, unknown>): string[] {
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
}

function show(value: unknown): string {
  if (value === undefined || value === null) return 'none';
  return typeof value === 'string' ? value : JSON.stringify(value);
}
