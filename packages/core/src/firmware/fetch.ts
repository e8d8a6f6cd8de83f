/**
 * Stage 2, Fetch (step `sources`): the resolved commits checked out from the source cache, then
 * what depends on the trees: MicroPython's version, the board's and libraries' `resolve` hooks, the
 * files each library freezes and exports, the user C modules and the project's own modules.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ResolvedConfig } from '../config/types.ts';
import { MpError } from '../errors.ts';
import type { StepContext } from '../events.ts';
import {
  checkFreezeEntries,
  freezeEntryFiles,
  type ProjectModule,
  scanProjectModules,
} from '../manifest/frozen-manifest.ts';
import type { BoardTarget, ExportedFile, FreezeEntry, MicroPythonSource } from '../plugin/types.ts';
import { parseReleaseTag, type ReleaseVersion } from '../plugin/version.ts';
import type { GitCheckout } from '../sources/git-cache.ts';
import { type CModule, resolveCModules, userCModulesArg } from './c-modules.ts';
import { hashFiles, hashOf } from './cache-key.ts';
import { credentialModules } from './credentials.ts';
import {
  displayPath,
  gitOptionsFor,
  type Resolved,
  type ResolvedLibrary,
  type ResolvedMicroPython,
  type SourceCache,
} from './resolve.ts';

export type FetchedMicroPython = ResolvedMicroPython & {
  /** Host folder of the tree. */
  dir: string;
  checkout?: GitCheckout;
  version?: ReleaseVersion & { prerelease?: boolean };
};

export type FetchedLibrary = ResolvedLibrary & {
  dir: string;
  checkout?: GitCheckout;
  /** After the library's resolve hook. */
  freeze: FreezeEntry[];
  exports: ExportedFile[];
  /** Frozen files relative to the library source. */
  frozenFiles: string[];
  /** The commit, or a hash of the frozen and exported files of a local folder. */
  fingerprint: string;
};

export interface Fetched extends Resolved {
  micropython: FetchedMicroPython;
  libraries: FetchedLibrary[];
  /** The board after its `resolve` hook for this MicroPython, with the project's build options. */
  target: BoardTarget;
  cModules: CModule[];
  modules: ProjectModule[];
  moduleHashes: Array<{ file: string; sha256: string }>;
}

export interface FetchDeps {
  sources: SourceCache;
  step: StepContext;
}

export async function fetchSources(resolved: Resolved, { sources, step }: FetchDeps): Promise<Fetched> {
  const gitOptions = gitOptionsFor(step);
  const fetched: string[] = [];
  const mp = resolved.micropython;
  let micropython: FetchedMicroPython;
  if (mp.git) {
    step.title(`Fetching MicroPython ${mp.tag ?? mp.git.ref.name}`);
    const checkout = await sources.checkout(mp.git.ref, gitOptions('MicroPython'));
    micropython = { ...mp, checkout, dir: checkout.dir };
    fetched.push(`MicroPython ${mp.tag ?? mp.git.ref.sha.slice(0, 10)}`);
  } else {
    micropython = { ...mp, dir: mp.local.dir };
  }
  micropython.version =
    (mp.tag ? parseReleaseTag(mp.tag) : undefined) ?? (await readMpconfigVersion(micropython.dir));

  const checkouts: Array<{ library: ResolvedLibrary; dir: string; checkout?: GitCheckout }> = [];
  for (const library of resolved.libraries) {
    if (!library.git) {
      checkouts.push({ library, dir: library.local.dir });
      continue;
    }
    step.title(`Fetching library ${library.id}`);
    const checkout = await sources.checkout(library.git.ref, gitOptions(`library ${library.id}`, library.id));
    checkouts.push({ library, dir: checkout.dir, checkout });
    fetched.push(`${library.id} ${library.git.ref.sha.slice(0, 10)}`);
  }

  const source: MicroPythonSource = {
    dir: micropython.dir,
    ref: mp.requested ?? mp.tag ?? micropython.dir,
    tag: mp.tag,
    version: micropython.version,
    sha: mp.sha ?? '',
  };
  const { project } = resolved;
  const cModules = await resolveCModules(
    project.config.cModules,
    resolved.board.port,
    project.config.projectDir,
  );
  // The board's hook, each library's files and the project's modules are independent reads of
  // files: side by side (a build with everything cached mostly waits for them), an error thrown
  // in the order they had one after another (the board's, the libraries', the modules').
  const [board, modulesRead, ...libraryReads] = await Promise.allSettled([
    boardTarget(resolved, source, cModules, step),
    readProjectModules(project.config.modulesDir),
    ...checkouts.map((c) => fetchLibrary(c.library, c.dir, c.checkout, source, step)),
  ]);
  const target = settled(board);
  const libraries = libraryReads.map(settled);
  const { modules, moduleHashes } = settled(modulesRead);
  checkModuleNames(resolved, modules, libraries);
  reportModules(resolved, step, fetched, moduleHashes.length);
  for (const { file, why } of await credentialModules(
    project.config.modulesDir,
    moduleHashes.map((m) => m.file),
  )) {
    step.logger.warn(
      `${displayPath(project, join(project.config.modulesDir, file))} will be frozen into the firmware, but ${why}: anyone with the .bin can read it. Keep credentials on the board instead (move it out of the modules folder, list it under \`files\` in mp.config, and copy it with \`mp put\`).`,
    );
  }
  return { ...resolved, micropython, libraries, target, cModules, modules, moduleHashes };
}

/** The project's modules and the hash of each of their files. */
async function readProjectModules(
  modulesDir: string,
): Promise<{ modules: ProjectModule[]; moduleHashes: Array<{ file: string; sha256: string }> }> {
  const modules = await scanProjectModules(modulesDir);
  const moduleHashes = await hashFiles(
    modules.flatMap((m) => m.files).map((f) => ({ name: f, path: join(modulesDir, f) })),
  );
  return { modules, moduleHashes };
}

/** The value of one of Promise.allSettled's results, or its error thrown. */
function settled<T>(result: PromiseSettledResult<T>): T {
  if (result.status === 'fulfilled') return result.value;
  throw result.reason;
}

function reportModules(resolved: Resolved, step: StepContext, fetched: string[], files: number): void {
  const { modulesDir } = resolved.project.config;
  const parts = [...fetched];
  if (files) parts.push(`${files} project module file${files === 1 ? '' : 's'}`);
  else
    step.logger.info(
      existsSync(modulesDir)
        ? `No project modules are frozen: ${displayPath(resolved.project, modulesDir)} has no .py files`
        : `No project modules are frozen: there is no ${displayPath(resolved.project, modulesDir)} folder`,
    );
  step.title(`Sources: ${parts.join(', ') || 'local'}`);
}

/** The board for this MicroPython: its resolve hook over its data, then the project's options. */
async function boardTarget(
  resolved: Resolved,
  source: MicroPythonSource,
  cModules: CModule[],
  step: StepContext,
): Promise<BoardTarget> {
  const { board } = resolved;
  const base: BoardTarget = {
    board: board.board,
    variant: board.variant,
    toolchain: board.toolchain,
    makeArgs: board.makeArgs,
    submodules: board.submodules,
    artifacts: board.artifacts,
    defaultManifest: board.defaultManifest,
    flash: board.flash,
  };
  let adjusted: Partial<BoardTarget> = {};
  if (board.resolve) {
    try {
      adjusted = await board.resolve({
        logger: step.logger.child(board.id),
        signal: step.signal,
        micropython: source,
      });
    } catch (error) {
      throw pluginHookError(board.id, 'resolve', error);
    }
  }
  const target = withBuildOptions({ ...base, ...adjusted }, resolved.project.config);
  const cModulesArg = userCModulesArg(board.port, cModules);
  if (cModulesArg) target.makeArgs = [...(target.makeArgs ?? []), cModulesArg];
  if (!target.artifacts[board.firmware]) {
    throw new MpError({
      code: 'BOARD_INVALID',
      message: `Board ${board.id}: its firmware artifact "${board.firmware}" is not one of its artifacts (${Object.keys(target.artifacts).join(', ')})`,
      plugin: board.id,
      step: 'sources',
      hint: 'Fix the board plugin: `firmware` must name a key of `artifacts`.',
    });
  }
  return target;
}

/**
 * The project's build options applied over the board: `variant` replaces the board's, `make`
 * variables come after the board's `makeArgs` (make takes the last assignment on its command line).
 */
export function withBuildOptions(target: BoardTarget, config: ResolvedConfig): BoardTarget {
  const make = Object.entries(config.make).map(([name, value]) => `${name}=${value}`);
  return {
    ...target,
    variant: config.variant ?? target.variant,
    makeArgs: make.length ? [...(target.makeArgs ?? []), ...make] : target.makeArgs,
  };
}

/** A library's files at its source: its resolve hook, then every frozen and exported file checked. */
async function fetchLibrary(
  library: ResolvedLibrary,
  dir: string,
  checkout: GitCheckout | undefined,
  micropython: MicroPythonSource,
  step: StepContext,
): Promise<FetchedLibrary> {
  let freeze = library.plugin.freeze;
  let exports = library.plugin.exports ?? [];
  if (library.plugin.resolve) {
    try {
      const adjusted = await library.plugin.resolve({
        logger: step.logger.child(library.id),
        signal: step.signal,
        sourceDir: dir,
        micropython,
      });
      freeze = adjusted.freeze ?? freeze;
      exports = adjusted.exports ?? exports;
    } catch (error) {
      throw pluginHookError(library.id, 'resolve', error);
    }
  }
  const origin = libraryOrigin(library, dir);
  await checkFreezeEntries(library.id, dir, freeze, origin);
  const frozenFiles = (await Promise.all(freeze.map((e) => freezeEntryFiles(dir, e)))).flat();
  for (const file of exports) {
    if (!existsSync(join(dir, file.from))) {
      throw new MpError({
        code: 'LIBRARY_EXPORT_MISSING',
        message: `Library ${library.id}: ${file.from} (exported as ${file.as}) does not exist in its source (${origin})`,
        plugin: library.id,
        file: join(dir, file.from),
        step: 'sources',
        hint: 'The library’s layout may have changed at this ref: pin an older ref or update the plugin’s exports / resolve hook.',
      });
    }
  }
  // A local folder: its content is what counts, not its mtimes (exact, and these are small files).
  const fingerprint = library.git
    ? library.git.ref.sha
    : hashOf(
        await hashFiles(
          [...frozenFiles, ...exports.map((e) => e.from)].map((f) => ({ name: f, path: join(dir, f) })),
        ),
      );
  return { ...library, dir, checkout, freeze, exports, frozenFiles, fingerprint };
}

/** Where a library's files come from, for the manifest's comments and messages. */
export function libraryOrigin(library: ResolvedLibrary, dir: string): string {
  return library.git ? `${library.git.url}@${library.git.ref.sha}` : dir;
}

/**
 * A project module with the import name of a frozen library would freeze twice, and which one
 * `import` finds would be an accident of the manifest's order: refuse it, naming both files.
 */
function checkModuleNames(resolved: Resolved, modules: ProjectModule[], libraries: FetchedLibrary[]): void {
  for (const module of modules) {
    const name = module.kind === 'module' ? module.name.replace(/\.py$/, '') : module.name;
    for (const library of libraries) {
      const entry = library.freeze.find((e) => importName(e) === name);
      if (!entry) continue;
      const ours = join(resolved.project.config.modulesDir, module.files[0]!);
      const theirs = join(library.dir, entry.base ?? '', 'package' in entry ? entry.package : entry.module);
      throw new MpError({
        code: 'MODULE_NAME_CLASH',
        message: `Project module ${displayPath(resolved.project, ours)} has the import name "${name}" of library ${library.id} (${theirs}); both would be frozen`,
        plugin: library.id,
        file: ours,
        step: 'sources',
        hint: `Rename your module, or leave library ${library.id} out (--no-libs, --lib, or \`libraries\` in the config) if yours replaces it.`,
        exitCode: 2,
      });
    }
  }
}

/** The top-level name `import` finds a freeze entry by: `mqtt_as` for the package, `x` for `x.py`. */
function importName(entry: FreezeEntry): string {
  const path = 'package' in entry ? entry.package : entry.module;
  return path.split('/')[0]!.replace(/\.py$/, '');
}

/** `py/mpconfig.h` says which version a checkout is, whatever its ref. */
async function readMpconfigVersion(
  dir: string,
): Promise<(ReleaseVersion & { prerelease?: boolean }) | undefined> {
  const text = await readFile(join(dir, 'py', 'mpconfig.h'), 'utf8').catch(() => undefined);
  if (!text) return undefined;
  const value = (name: string) => {
    const m = new RegExp(`^#define\\s+MICROPY_VERSION_${name}\\s+(\\d+)`, 'm').exec(text);
    return m ? Number(m[1]) : undefined;
  };
  const major = value('MAJOR');
  const minor = value('MINOR');
  const patch = value('MICRO');
  if (major === undefined || minor === undefined || patch === undefined) return undefined;
  return { major, minor, patch, prerelease: value('PRERELEASE') === 1 };
}

function pluginHookError(plugin: string, hook: string, error: unknown): MpError {
  if (error instanceof MpError) return error;
  return new MpError({
    code: 'PLUGIN_HOOK_FAILED',
    message: `Plugin ${plugin}: its ${hook} hook failed: ${error instanceof Error ? error.message : String(error)}`,
    plugin,
    step: 'sources',
    hint: `This is a problem in the plugin ${plugin}; check its resolve() against this MicroPython version, or report it to its authors.`,
    cause: error,
  });
}
