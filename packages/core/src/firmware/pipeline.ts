/**
 * `mp build` as a list of Steps: resolve → sources → toolchain → manifest → compile → export.
 * The CLI renders them (listr2, plain lines or JSON); `mp dev` runs the same steps with a warm
 * container. A build whose inputs are unchanged stops after `manifest` with the last export.
 *
 *   const build = createBuild({ project });
 *   try { await runSteps(build.steps, build.ctx, { signal }); use(build.ctx.result); }
 *   finally { await build.dispose(); }
 */
import { createWriteStream, existsSync, mkdirSync, readFileSync, statSync, type WriteStream } from 'node:fs';
import { chmod, mkdir, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { extname, isAbsolute, join, posix, relative } from 'node:path';
import type { ResolvedConfig } from '../config/types.ts';
import { CancelledError, MpError } from '../errors.ts';
import type { Step, StepContext } from '../events.ts';
import {
  checkFreezeEntries,
  freezeEntryFiles,
  generateFrozenManifest,
  type ProjectModule,
  scanProjectModules,
} from '../manifest/frozen-manifest.ts';
import type { PluginListing } from '../plugin/registry.ts';
import type {
  BoardPlugin,
  BoardTarget,
  ExportedFile,
  FreezeEntry,
  LibraryPlugin,
  MicroPythonSource,
} from '../plugin/types.ts';
import { parseReleaseTag, type ReleaseVersion, versionAtLeast } from '../plugin/version.ts';
import type { Project } from '../project.ts';
import type { GitCheckout, ResolvedRef } from '../sources/git-cache.ts';
import { GitSourceCache, refTtlFromEnv, registerCacheUse, sweepCacheTemps } from '../sources/git-cache.ts';
import {
  checkLocalDir,
  checkMicroPythonTree,
  inspectLocalSource,
  type LocalSourceState,
} from '../sources/local.ts';
import { ToolchainContainer, type ToolchainContainerSpec } from '../toolchain/container.ts';
import { copyFileOut, mountModeFor, type SyncOptions, syncIntoContainer } from '../toolchain/copy.ts';
import { pingEngine } from '../toolchain/engine-http.ts';
import { ensureImage, type ToolchainImageInfo } from '../toolchain/image.ts';
import { acquireLock } from '../util/lock.ts';
import { userCacheDir } from '../util/paths.ts';
import { type CModule, cmodulesCmake, resolveCModules, userCModulesArg } from './c-modules.ts';
import { hashFiles, hashOf, readLastBuild, stableJson, writeLastBuild } from './cache-key.ts';
import { sha256Hex, uniqueName, writeExport } from './export.ts';
import { exportFileName, type MicroPythonIdentity } from './export-name.ts';
import {
  analyzeMakeFailure,
  CONTAINER,
  CONTAINER_PATHS,
  containerLibraryDir,
  GIT_SHIM,
  makeScript,
  type PathMapping,
  parseSubmoduleList,
  STAGE_MARKER,
  submodulesScript,
} from './make.ts';
import { type BuildSidecar, EXPORT_SCHEMA } from './sidecar.ts';

const MP_VERSION: string = JSON.parse(
  readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
).version;

export interface BuildOptions {
  project: Project;
  /** Build even if nothing changed, and ask remotes again for tags and branches (`--force`). */
  force?: boolean;
  env?: NodeJS.ProcessEnv;
  /** User cache root; default `userCacheDir()` (`$MP_CACHE_DIR`, `$XDG_CACHE_HOME/mp`, …). */
  cacheDir?: string;
  now?: () => Date;
  /**
   * Stop after generating the manifest (`mp build --print-manifest`, `--dry-run`): no Docker, no
   * lock, no writes to the project. Sources are still fetched into the download cache, because
   * what the plan holds (the toolchain, the board's files) depends on the tree.
   */
  manifestOnly?: boolean;
  /**
   * mp dev: a running toolchain container to compile in. It is left running; if its mounts or image
   * no longer fit (another MicroPython version), a new one is started and put in `ctx.container`.
   */
  container?: ToolchainContainer;
  /** mp dev: leave the container this build starts running (in `ctx.container`) for the next build. */
  keepContainer?: boolean;
}

export interface ResolvedMicroPython {
  /** What was asked: a ref, or undefined for the newest stable tag / a local checkout. */
  requested?: string;
  git?: { url: string; ref: ResolvedRef };
  local?: LocalSourceState;
  checkout?: GitCheckout;
  /** Host folder of the sources (known after the sources step for git). */
  dir?: string;
  tag?: string;
  sha?: string;
  version?: ReleaseVersion & { prerelease?: boolean };
}

export interface ResolvedLibrary {
  id: string;
  plugin: LibraryPlugin;
  listing?: PluginListing;
  git?: { url: string; ref: ResolvedRef };
  local?: LocalSourceState;
  checkout?: GitCheckout;
  dir?: string;
  freeze: FreezeEntry[];
  exports: ExportedFile[];
  /** Frozen files relative to the library source. */
  frozenFiles: string[];
  /** The commit, or a hash of the frozen and exported files of a local folder. */
  fingerprint?: string;
}

export interface BuildResult {
  /** Nothing changed since the last build: no container was started; the last export is the answer. */
  upToDate: boolean;
  firmware: string;
  sidecarFile: string;
  sidecar: BuildSidecar;
  logFile: string;
  durationMs: number;
}

export interface BuildContext {
  readonly options: BuildOptions;
  readonly project: Project;
  readonly startedAt: number;
  /** The full log of this build (every line of git, docker and make output). */
  readonly logFile: string;
  readonly gitCache: GitSourceCache;
  readonly cacheDir: string;
  board?: BoardPlugin;
  boardListing?: PluginListing;
  /** The board after its `resolve` hook for this MicroPython. */
  target?: BoardTarget;
  micropython?: ResolvedMicroPython;
  libraries: ResolvedLibrary[];
  modules: ProjectModule[];
  moduleHashes: Array<{ file: string; sha256: string }>;
  image?: ToolchainImageInfo;
  /** The image asked for and why (before it is pulled or built). */
  toolchain?: ToolchainChoice;
  manifest?: string;
  cacheKey?: string;
  /** `.mp/build/<board>/<config hash>`: persistent between builds, so make is incremental. */
  buildDir?: string;
  upToDate: boolean;
  /** Artifact name → host path, after compiling. */
  artifacts?: Record<string, string>;
  /** The toolchain container of this build (left running when `keepContainer`). */
  container?: ToolchainContainer;
  result?: BuildResult;
  /** Submodules fetched for the port. */
  submodules?: string[];
  /** The project's user C modules. */
  cModules: CModule[];
}

export interface Build {
  steps: Step<BuildContext>[];
  ctx: BuildContext;
  /** Releases the build lock and removes a container the build still owns. Call in `finally`. */
  dispose(): Promise<void>;
}

export function createBuild(options: BuildOptions): Build {
  const env = options.env ?? process.env;
  const { project } = options;
  const cacheDir = options.cacheDir ?? userCacheDir(env);
  const logFile = join(project.stateDir, 'build', project.config.board, 'build.log');
  const ctx: BuildContext = {
    options,
    project,
    startedAt: Date.now(),
    logFile,
    gitCache: new GitSourceCache({
      cacheDir,
      mirrors: project.config.mirrors,
      refTtlMs: refTtlFromEnv(env),
      refresh: options.force,
    }),
    cacheDir,
    libraries: [],
    modules: [],
    moduleHashes: [],
    upToDate: false,
    cModules: [],
  };
  let log: WriteStream | undefined;
  const writeLog = (line: string) => {
    if (options.manifestOnly) return;
    if (!log) {
      try {
        mkdirSync(join(logFile, '..'), { recursive: true });
        log = createWriteStream(logFile, { flags: 'w' });
        log.on('error', () => undefined);
      } catch {
        return;
      }
    }
    log.write(`${line}\n`);
  };
  let releaseLock: (() => Promise<void>) | undefined;
  let releaseCacheUse: (() => Promise<void>) | undefined;
  let ownsContainer = false;
  let stopping: Promise<void> | undefined;

  /** Every step's tool output also goes to the build log. */
  const logged = (step: StepContext): StepContext => ({
    ...step,
    output: (line) => {
      writeLog(line);
      step.output(line);
    },
  });

  const steps: Step<BuildContext>[] = [
    {
      id: 'resolve',
      title: 'Resolve board, libraries and MicroPython',
      run: async (c, step) => {
        // Before the first line of the log: `mp clean` takes this lock before removing the folder.
        if (!options.manifestOnly) releaseLock = await takeBoardLock(c, step);
        // Until dispose: `mp clean --all` refuses while the build uses the cache.
        releaseCacheUse = await registerCacheUse(c.cacheDir, {
          project: project.config.projectDir,
          signal: step.signal,
          onWait: (owner) => step.title(`Waiting for ${owner} (it is cleaning mp's cache)`),
        });
        // What killed builds left in the cache (repositories being fetched into are skipped).
        await sweepCacheTemps(c.cacheDir).catch(() => undefined);
        await resolveStep(c, logged(step));
      },
    },
    {
      id: 'sources',
      title: 'Fetch sources',
      run: (c, step) => sourcesStep(c, logged(step)),
    },
  ];
  if (!options.manifestOnly) {
    steps.push({
      id: 'toolchain',
      title: 'Toolchain image',
      run: (c, step) => toolchainStep(c, logged(step), env),
    });
  }
  steps.push({
    id: 'manifest',
    title: 'Frozen manifest',
    run: (c, step) => manifestStep(c, logged(step)),
  });
  if (!options.manifestOnly) {
    steps.push(
      {
        id: 'compile',
        title: 'Compile',
        skip: (c) => (c.upToDate ? 'up to date' : false),
        run: async (c, step) => {
          await compileStep(
            c,
            logged(step),
            (owned) => {
              ownsContainer = owned;
            },
            (promise) => {
              stopping = promise.catch(() => undefined);
            },
          );
        },
      },
      {
        id: 'export',
        title: 'Export',
        skip: (c) => (c.upToDate ? `up to date: ${displayPath(c, c.result!.firmware)}` : false),
        run: (c, step) => exportStep(c, logged(step)),
      },
    );
  }

  return {
    steps,
    ctx,
    async dispose() {
      await stopping;
      if (ctx.container && ownsContainer && !options.keepContainer)
        await ctx.container.stop().catch(() => undefined);
      // After the container: it bind-mounts the cache's trees.
      await releaseCacheUse?.().catch(() => undefined);
      releaseCacheUse = undefined;
      await releaseLock?.().catch(() => undefined);
      releaseLock = undefined;
      await new Promise<void>((resolve) => (log ? log.end(resolve) : resolve()));
    },
  };
}

// ── resolve ──────────────────────────────────────────────────────────────────────────────────

async function resolveStep(ctx: BuildContext, step: StepContext): Promise<void> {
  const { config, plugins } = ctx.project;
  const board = await plugins.load('board', config.board);
  ctx.board = board;
  ctx.boardListing = plugins.list('board').find((l) => l.id === board.id);

  const seen = new Set<string>();
  for (const choice of config.libraries) {
    if (seen.has(choice.id)) continue;
    seen.add(choice.id);
    const plugin = await plugins.load('library', choice.id);
    if (plugin.ports && !plugin.ports.includes(board.port)) {
      throw new MpError({
        code: 'LIBRARY_UNSUPPORTED_BOARD',
        message: `Library ${plugin.id} does not support board ${board.id} (port ${board.port}); it supports: ${plugin.ports.join(', ')}`,
        plugin: plugin.id,
        step: 'resolve',
        hint: `Leave it out (--no-libs, or --lib with the others, or \`libraries\` in mp.config), or pick a board whose port is one of ${plugin.ports.join(', ')}.`,
        exitCode: 2,
      });
    }
    ctx.libraries.push({
      id: plugin.id,
      plugin,
      listing: plugins.list('library').find((l) => l.id === plugin.id),
      freeze: plugin.freeze,
      exports: plugin.exports ?? [],
      frozenFiles: [],
    });
  }

  const gitOptions = gitOptionsFor(step);

  const mp = config.micropython;
  checkExportDir(ctx);
  checkModulesDir(ctx);
  if (mp.path) {
    checkLocalDir(mp.path, 'MicroPython');
    checkMicroPythonTree(mp.path, board.port);
    const local = await inspectLocalSource(mp.path, { signal: step.signal });
    ctx.micropython = { local, dir: mp.path, sha: local.sha };
  } else {
    const ref = mp.ref
      ? await ctx.gitCache.resolveRef(mp.git, mp.ref, gitOptions('MicroPython'))
      : await ctx.gitCache.resolveNewestStable(mp.git, gitOptions('MicroPython'));
    ctx.micropython = {
      requested: mp.ref,
      git: { url: mp.git, ref },
      sha: ref.sha,
      tag: ref.kind === 'tag' ? ref.name : undefined,
    };
  }

  for (const library of ctx.libraries) {
    const choice = config.libraries.find((c) => c.id === library.id)!;
    const source = library.plugin.source;
    const path = choice.path ?? ('path' in source ? source.path : undefined);
    if (path) {
      checkLocalDir(path, `library ${library.id}`, library.id);
      library.local = await inspectLocalSource(path, { signal: step.signal });
      library.dir = path;
      continue;
    }
    const url = choice.git ?? ('git' in source ? source.git : undefined)!;
    const refName = choice.ref ?? ('git' in source ? source.ref : undefined) ?? 'HEAD';
    const ref = await ctx.gitCache.resolveRef(url, refName, gitOptions(`library ${library.id}`, library.id));
    library.git = { url, ref };
    library.fingerprint = ref.sha;
  }
  const m = ctx.micropython;
  step.title(
    `Resolved ${board.id}, MicroPython ${m.tag ?? (m.sha ? m.sha.slice(0, 10) : m.dir)}${ctx.libraries.length ? `, ${ctx.libraries.map((l) => l.id).join(', ')}` : ''}`,
  );
}

/** An export path that is a file would fail only after the whole compile: say so first. */
function checkExportDir(ctx: BuildContext): void {
  const dir = ctx.project.config.exportDir;
  if (existsSync(dir) && !statSync(dir).isDirectory()) {
    throw new MpError({
      code: 'EXPORT_DIR_INVALID',
      message: `The export folder ${displayPath(ctx, dir)} is a file, not a folder`,
      file: dir,
      step: 'resolve',
      hint: 'Move the file away, or export elsewhere with --export-dir or `exportDir` in the config.',
      exitCode: 2,
    });
  }
}

/** A modules folder that the config or a flag names must exist; only the default may be absent. */
function checkModulesDir(ctx: BuildContext): void {
  const { modulesDir, modulesFrom } = ctx.project.config;
  if (modulesFrom === 'default') return;
  const info = statSync(modulesDir, { throwIfNoEntry: false });
  if (!info?.isDirectory()) {
    const named = modulesFrom === 'flag' ? '--modules' : 'the config key `modules`';
    throw new MpError({
      code: 'MODULES_NOT_FOUND',
      message: `${named} names ${displayPath(ctx, modulesDir)}, which ${info ? 'is a file, not a folder' : 'does not exist'}`,
      file: modulesDir,
      step: 'resolve',
      hint: 'Name the folder that holds your Python modules (it is relative to the project), or leave it out to use modules/.',
      exitCode: 2,
    });
  }
}

/**
 * A project module with the import name of a frozen library would freeze twice, and which one
 * `import` finds would be an accident of the manifest's order: refuse it, naming both files.
 */
function checkModuleNames(ctx: BuildContext): void {
  for (const module of ctx.modules) {
    const name = module.kind === 'module' ? module.name.replace(/\.py$/, '') : module.name;
    for (const library of ctx.libraries) {
      const entry = library.freeze.find((e) => importName(e) === name);
      if (!entry) continue;
      const ours = join(ctx.project.config.modulesDir, module.files[0]!);
      const theirs = join(library.dir!, entry.base ?? '', 'package' in entry ? entry.package : entry.module);
      throw new MpError({
        code: 'MODULE_NAME_CLASH',
        message: `Project module ${displayPath(ctx, ours)} has the import name "${name}" of library ${library.id} (${theirs}); both would be frozen`,
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

// ── sources ──────────────────────────────────────────────────────────────────────────────────

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

/** Options for git operations of a step: its signal, logger and output, and a title while waiting for a lock. */
function gitOptionsFor(step: StepContext) {
  return (label: string, plugin?: string) => ({
    signal: step.signal,
    logger: step.logger,
    onLine: step.output,
    onWait: (owner: string) => step.title(`Waiting for ${owner} (fetching ${label})`),
    label,
    plugin,
  });
}

async function sourcesStep(ctx: BuildContext, step: StepContext): Promise<void> {
  const board = ctx.board!;
  const mp = ctx.micropython!;
  const gitOptions = gitOptionsFor(step);
  const fetched: string[] = [];
  if (mp.git) {
    step.title(`Fetching MicroPython ${mp.tag ?? mp.git.ref.name}`);
    mp.checkout = await ctx.gitCache.checkout(mp.git.ref, gitOptions('MicroPython'));
    mp.dir = mp.checkout.dir;
    fetched.push(`MicroPython ${mp.tag ?? mp.sha!.slice(0, 10)}`);
  }
  mp.version = (mp.tag ? parseReleaseTag(mp.tag) : undefined) ?? (await readMpconfigVersion(mp.dir!));

  for (const library of ctx.libraries) {
    if (library.git) {
      step.title(`Fetching library ${library.id}`);
      library.checkout = await ctx.gitCache.checkout(
        library.git.ref,
        gitOptions(`library ${library.id}`, library.id),
      );
      library.dir = library.checkout.dir;
      fetched.push(`${library.id} ${library.git.ref.sha.slice(0, 10)}`);
    }
  }

  const source: MicroPythonSource = {
    dir: mp.dir!,
    ref: mp.requested ?? mp.tag ?? mp.dir!,
    tag: mp.tag,
    version: mp.version,
    sha: mp.sha ?? '',
  };
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
  ctx.target = withBuildOptions({ ...base, ...adjusted }, ctx.project.config);
  ctx.cModules = await resolveCModules(
    ctx.project.config.cModules,
    board.port,
    ctx.project.config.projectDir,
  );
  const cModulesArg = userCModulesArg(board.port, ctx.cModules);
  if (cModulesArg) ctx.target.makeArgs = [...(ctx.target.makeArgs ?? []), cModulesArg];
  if (!ctx.target.artifacts[board.firmware]) {
    throw new MpError({
      code: 'BOARD_INVALID',
      message: `Board ${board.id}: its firmware artifact "${board.firmware}" is not one of its artifacts (${Object.keys(ctx.target.artifacts).join(', ')})`,
      plugin: board.id,
      step: 'sources',
      hint: 'Fix the board plugin: `firmware` must name a key of `artifacts`.',
    });
  }

  for (const library of ctx.libraries) {
    if (library.plugin.resolve) {
      try {
        const adjustedLib = await library.plugin.resolve({
          logger: step.logger.child(library.id),
          signal: step.signal,
          sourceDir: library.dir!,
          micropython: source,
        });
        if (adjustedLib.freeze) library.freeze = adjustedLib.freeze;
        if (adjustedLib.exports) library.exports = adjustedLib.exports;
      } catch (error) {
        throw pluginHookError(library.id, 'resolve', error);
      }
    }
    const origin = libraryOrigin(library);
    await checkFreezeEntries(library.id, library.dir!, library.freeze, origin);
    library.frozenFiles = (
      await Promise.all(library.freeze.map((e) => freezeEntryFiles(library.dir!, e)))
    ).flat();
    for (const file of library.exports) {
      if (!existsSync(join(library.dir!, file.from))) {
        throw new MpError({
          code: 'LIBRARY_EXPORT_MISSING',
          message: `Library ${library.id}: ${file.from} (exported as ${file.as}) does not exist in its source (${origin})`,
          plugin: library.id,
          file: join(library.dir!, file.from),
          step: 'sources',
          hint: 'The library’s layout may have changed at this ref: pin an older ref or update the plugin’s exports / resolve hook.',
        });
      }
    }
    if (library.local) {
      // A local folder: its content is what counts, not its mtimes (exact, and these are small files).
      const files = [...library.frozenFiles, ...library.exports.map((e) => e.from)];
      library.fingerprint = hashOf(
        await hashFiles(files.map((f) => ({ name: f, path: join(library.dir!, f) }))),
      );
    }
  }

  ctx.modules = await scanProjectModules(ctx.project.config.modulesDir);
  checkModuleNames(ctx);
  ctx.moduleHashes = await hashFiles(
    ctx.modules
      .flatMap((m) => m.files)
      .map((f) => ({ name: f, path: join(ctx.project.config.modulesDir, f) })),
  );
  const parts = [...fetched];
  if (ctx.modules.length)
    parts.push(`${ctx.moduleHashes.length} project module file${ctx.moduleHashes.length === 1 ? '' : 's'}`);
  else
    step.logger.info(
      existsSync(ctx.project.config.modulesDir)
        ? `No project modules are frozen: ${displayPath(ctx, ctx.project.config.modulesDir)} has no .py files`
        : `No project modules are frozen: there is no ${displayPath(ctx, ctx.project.config.modulesDir)} folder`,
    );
  step.title(`Sources: ${parts.join(', ') || 'local'}`);
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

function libraryOrigin(library: ResolvedLibrary): string {
  if (library.git) return `${library.git.url}@${library.git.ref.sha}`;
  return library.dir!;
}

// ── toolchain ────────────────────────────────────────────────────────────────────────────────

/** Which toolchain image a build uses and why: `--image` (or config `image`) always wins. */
export interface ToolchainChoice {
  /** The image to use or pull; absent when it is built from the board's Dockerfile. */
  ref?: string;
  dockerfile?: string;
  reason: string;
  override: boolean;
}

export function toolchainChoice(ctx: BuildContext): ToolchainChoice {
  const override = ctx.project.config.image;
  if (override)
    return { ref: override, reason: 'named by --image or the config key `image`', override: true };
  const { toolchain } = ctx.target!;
  return {
    ref: toolchain.image,
    dockerfile: toolchain.dockerfile,
    reason:
      toolchain.reason ??
      (toolchain.dockerfile
        ? `built from board ${ctx.board!.id}'s Dockerfile`
        : `board ${ctx.board!.id}'s toolchain`),
    override: false,
  };
}

async function toolchainStep(ctx: BuildContext, step: StepContext, env: NodeJS.ProcessEnv): Promise<void> {
  const board = ctx.board!;
  const target = ctx.target!;
  await pingEngine(env);
  const choice = toolchainChoice(ctx);
  ctx.toolchain = choice;
  ctx.image = await ensureImage(
    choice.override
      ? { boardId: board.id, ref: choice.ref, override: true }
      : {
          boardId: board.id,
          ref: choice.ref,
          dockerfile: choice.dockerfile,
          buildArgs: target.toolchain.buildArgs,
        },
    {
      signal: step.signal,
      env,
      onLine: step.output,
      onProgress: step.progress,
      onTitle: step.title,
    },
  );
  step.title(`Toolchain: ${ctx.image.ref} (${ctx.image.obtained}; ${choice.reason})`);
}

// ── manifest + cache ─────────────────────────────────────────────────────────────────────────

function manifestText(ctx: BuildContext): string {
  const board = ctx.board!;
  const { config } = ctx.project;
  return generateFrozenManifest({
    boardId: board.id,
    defaultManifest: ctx.target!.defaultManifest,
    libraries: ctx.libraries.map((l) => ({
      id: l.id,
      origin: libraryOrigin(l),
      containerDir: containerLibraryDir(l.id),
      freeze: l.freeze,
    })),
    modules: ctx.modules.length
      ? { containerDir: CONTAINER.modules, hostDir: config.modulesDir, entries: ctx.modules }
      : undefined,
  });
}

/** What decides the build directory: change any of it and make must start from scratch. */
function buildDirKey(ctx: BuildContext): string {
  const mp = ctx.micropython!;
  const t = ctx.target!;
  return hashOf({
    micropython: mp.sha && !mp.local ? mp.sha : mp.dir,
    image: ctx.image?.id,
    port: ctx.board!.port,
    board: t.board,
    variant: t.variant,
    makeArgs: t.makeArgs ?? [],
    submodules: ctx.project.config.submodules,
    toolchain: {
      env: t.toolchain.env,
      shellPrelude: t.toolchain.shellPrelude,
      runAsHostUser: t.toolchain.runAsHostUser,
    },
  }).slice(0, 12);
}

function cacheKey(ctx: BuildContext): string {
  const board = ctx.board!;
  const mp = ctx.micropython!;
  return hashOf({
    format: 1,
    mp: MP_VERSION,
    board: {
      id: board.id,
      package: ctx.boardListing?.source,
      version: ctx.boardListing?.version,
      port: board.port,
      exportPrefix: board.exportPrefix,
      firmware: board.firmware,
      firmwareExtension: board.firmwareExtension,
      mpyCross: board.mpyCross,
      chip: board.chip,
      target: ctx.target,
    },
    micropython: mp.local
      ? { path: mp.dir, fingerprint: mp.local.fingerprint }
      : { url: mp.git?.url, sha: mp.sha, tag: mp.tag },
    libraries: ctx.libraries.map((l) => ({
      id: l.id,
      package: l.listing?.source,
      version: l.listing?.version,
      source: l.git ? { url: l.git.url, sha: l.git.ref.sha } : { path: l.dir },
      fingerprint: l.fingerprint,
      freeze: l.freeze,
      exports: l.exports,
      nameFragment: l.plugin.nameFragment,
    })),
    modules: ctx.moduleHashes,
    submodules: ctx.project.config.submodules,
    cModules: ctx.cModules.map((m) => ({ name: m.name, fingerprint: m.fingerprint })),
    manifest: hashOf(ctx.manifest!),
    image: ctx.image?.id,
    exportDir: ctx.project.config.exportDir,
  });
}

/**
 * One build per project and board at a time: the build directory, the manifest and the log are
 * shared. Taken before anything is written there (the log's first line included), held until dispose.
 */
function takeBoardLock(ctx: BuildContext, step: StepContext): Promise<() => Promise<void>> {
  const board = ctx.project.config.board;
  return acquireLock(join(ctx.project.stateDir, 'build', board, 'lock'), {
    signal: step.signal,
    onWait: (owner) => step.title(`Waiting for another build of ${board} (${owner})`),
  });
}

async function manifestStep(ctx: BuildContext, step: StepContext): Promise<void> {
  const board = ctx.board!;
  ctx.manifest = manifestText(ctx);
  if (ctx.options.manifestOnly) return;
  const boardState = join(ctx.project.stateDir, 'build', board.id);
  ctx.buildDir = join(boardState, buildDirKey(ctx));
  ctx.cacheKey = cacheKey(ctx);
  const last = ctx.options.force ? undefined : await readLastBuild(ctx.project.stateDir, board.id);
  if (last && last.key === ctx.cacheKey && existsSync(last.firmware) && existsSync(last.sidecarFile)) {
    const firmware = await readFile(last.firmware);
    if (sha256Hex(firmware) === last.sha256) {
      const sidecar = JSON.parse(await readFile(last.sidecarFile, 'utf8')) as BuildSidecar;
      ctx.upToDate = true;
      ctx.result = {
        upToDate: true,
        firmware: last.firmware,
        sidecarFile: last.sidecarFile,
        sidecar,
        logFile: ctx.logFile,
        durationMs: Date.now() - ctx.startedAt,
      };
      step.title(`Up to date: ${displayPath(ctx, last.firmware)}`);
      return;
    }
  }
  const file = join(ctx.buildDir, 'manifest.py');
  await mkdir(ctx.buildDir, { recursive: true });
  // Rewritten only when it changes, so make sees an unchanged manifest as unchanged.
  const previous = await readFile(file, 'utf8').catch(() => undefined);
  if (previous !== ctx.manifest) await writeFile(file, ctx.manifest);
  if (ctx.cModules.length) {
    const cmake = join(ctx.buildDir, 'cmodules.cmake');
    const text = cmodulesCmake(ctx.cModules);
    if ((await readFile(cmake, 'utf8').catch(() => undefined)) !== text) await writeFile(cmake, text);
  }
  step.title(`Frozen manifest: ${displayPath(ctx, file)}`);
}

function displayPath(ctx: BuildContext, path: string): string {
  const rel = relative(ctx.project.config.projectDir, path);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
}

// ── compile ──────────────────────────────────────────────────────────────────────────────────

/** The container a build compiles in; `mp dev` compares it with its warm container. */
export function buildContainerSpec(ctx: BuildContext): ToolchainContainerSpec {
  const mp = ctx.micropython!;
  const target = ctx.target!;
  const { config } = ctx.project;
  const runAsHost = target.toolchain.runAsHostUser !== false && typeof process.getuid === 'function';
  const common = {
    image: ctx.image!.id,
    // Python would write __pycache__ into py/, tools/ and mpy-cross/ of the shared tree.
    env: { HOME: '/tmp', PYTHONDONTWRITEBYTECODE: '1', ...target.toolchain.env },
    user: runAsHost ? `${process.getuid!()}:${process.getgid!()}` : undefined,
    workdir: CONTAINER.micropython,
    labels: { 'mp.project': config.projectDir, 'mp.board': ctx.board!.id },
  };
  if (mountModeFor(ctx.options.env ?? process.env) === 'copy') {
    // The engine cannot see our files: named volumes, filled by copying (see toolchain/copy.ts).
    // The sources of a commit are shared by every project; the rest belongs to this project.
    const labels = { 'mp.volume': '1', 'mp.project': config.projectDir };
    const own = (kind: string, key: string) =>
      `mp-${kind}-${hashOf({ project: config.projectDir, key }).slice(0, 16)}`;
    return {
      ...common,
      mounts: [
        {
          volume: mp.checkout ? `mp-src-${mp.sha!.slice(0, 16)}` : own('src', mp.dir!),
          container: CONTAINER.micropython,
          labels,
        },
        { volume: own('build', ctx.buildDir!), container: CONTAINER.build, labels },
        ...ctx.libraries.map((l) => ({
          volume: own('lib', l.id),
          container: containerLibraryDir(l.id),
          labels,
        })),
        { volume: own('modules', config.modulesDir), container: CONTAINER.modules, labels },
        ...ctx.cModules.map((m) => ({
          volume: own('cmodule', m.hostDir),
          container: m.containerDir,
          labels,
        })),
      ],
    };
  }
  const mounts = [
    // The tree is shared by every build of that commit (and may be the user's own checkout): make
    // writes only into BUILD. Before v1.20 mpy-cross put its binary into its source folder.
    { host: mp.dir!, container: CONTAINER.micropython, readOnly: treeIsReadOnly(mp) },
    { host: ctx.buildDir!, container: CONTAINER.build },
    ...ctx.libraries.map((l) => ({ host: l.dir!, container: containerLibraryDir(l.id), readOnly: true })),
  ];
  if (existsSync(config.modulesDir))
    mounts.push({ host: config.modulesDir, container: CONTAINER.modules, readOnly: true });
  for (const m of ctx.cModules) mounts.push({ host: m.hostDir, container: m.containerDir, readOnly: true });
  return { ...common, mounts };
}

function treeIsReadOnly(mp: ResolvedMicroPython): boolean {
  return !mp.version || versionAtLeast(mp.version, 1, 20);
}

/** Copy mode: brings the container's volumes up to date with this machine (only what changed travels). */
async function copySourcesIn(
  ctx: BuildContext,
  container: ToolchainContainer,
  step: StepContext,
): Promise<void> {
  const spec = container.spec;
  if (!spec.mounts.some((m) => 'volume' in m)) return;
  // Fresh volumes belong to root; the build runs as the host user.
  if (spec.user) {
    const roots = spec.mounts.map((m) => `'${m.container}'`).join(' ');
    await container.exec(`chown ${spec.user} ${roots}`, { user: '0' });
  }
  const mp = ctx.micropython!;
  const sync = async (host: string, into: string, options: SyncOptions = {}) => {
    const { copied, removed } = await syncIntoContainer(container, host, into, {
      owner: spec.user,
      ...options,
    });
    if (copied || removed)
      step.output(
        `copied ${copied} file${copied === 1 ? '' : 's'} to ${into}${removed ? `, removed ${removed}` : ''}`,
      );
  };
  step.title('Compile: copying sources to the Docker engine');
  await sync(mp.dir!, CONTAINER.micropython, {
    fingerprint: mp.checkout
      ? `${mp.sha} ${Object.keys(mp.checkout.submodules).sort().join(' ')}`
      : undefined,
    skip: (rel: string) => rel === '.mp-checkout.json',
  });
  for (const library of ctx.libraries) await sync(library.dir!, containerLibraryDir(library.id));
  if (existsSync(ctx.project.config.modulesDir)) await sync(ctx.project.config.modulesDir, CONTAINER.modules);
  for (const m of ctx.cModules) await sync(m.hostDir, m.containerDir);
  // The build directory's outputs live in the volume; only mp's own files go in.
  await sync(ctx.buildDir!, CONTAINER.build, {
    prune: false,
    skip: (rel: string) =>
      !(rel === 'manifest.py' || rel === 'cmodules.cmake' || rel.startsWith('.mp-shim/')),
  });
}

function sameContainer(a: ToolchainContainerSpec, b: ToolchainContainerSpec): boolean {
  const strip = (s: ToolchainContainerSpec) => stableJson({ ...s, labels: undefined });
  return strip(a) === strip(b);
}

/** The `git` stand-in used by `make submodules` (see make.ts), in the build directory. */
async function writeGitShim(buildDir: string): Promise<void> {
  const shim = join(buildDir, '.mp-shim', 'git');
  if ((await readFile(shim, 'utf8').catch(() => undefined)) === GIT_SHIM) return;
  await mkdir(join(buildDir, '.mp-shim'), { recursive: true });
  await writeFile(shim, GIT_SHIM);
  await chmod(shim, 0o755);
}

/** Where the submodule list of a port at an immutable commit is remembered. */
export function submoduleCacheFile(ctx: BuildContext): string | undefined {
  const mp = ctx.micropython!;
  if (!mp.git || !mp.sha) return undefined;
  const t = ctx.target!;
  const key = hashOf({
    port: ctx.board!.port,
    board: t.board,
    variant: t.variant,
    makeArgs: t.makeArgs ?? [],
  }).slice(0, 12);
  return join(ctx.cacheDir, 'submodules', `${mp.sha}-${key}.json`);
}

async function portSubmodules(
  ctx: BuildContext,
  container: ToolchainContainer,
  step: StepContext,
  signal: AbortSignal | undefined,
): Promise<string[]> {
  const target = ctx.target!;
  if (target.submodules) return target.submodules;
  const cacheFile = submoduleCacheFile(ctx);
  if (cacheFile) {
    const cached = await readFile(cacheFile, 'utf8').then(
      (t) => JSON.parse(t) as string[],
      () => undefined,
    );
    if (cached) return cached;
  }
  step.title('Compile: asking the port which submodules it needs');
  const lines: string[] = [];
  const { exitCode } = await container.exec(submodulesScript(ctx.board!, target), {
    onLine: (line) => {
      lines.push(line);
      step.output(line);
    },
    signal,
  });
  const list = parseSubmoduleList(lines);
  if (exitCode !== 0 || !list) {
    step.logger.warn(
      `\`make submodules\` of port ${ctx.board!.port} did not list its submodules (exit ${exitCode}); fetching lib/micropython-lib only. Set \`submodules\` in the board plugin if the build misses one.`,
    );
    return ['lib/micropython-lib'];
  }
  if (cacheFile) {
    await mkdir(join(cacheFile, '..'), { recursive: true });
    await writeFile(cacheFile, JSON.stringify(list));
  }
  return list;
}

/**
 * Submodules that a make variable leaves unused: the code that includes them is compiled only when
 * the variable is 1 (extmod/extmod.mk: `ifeq ($(MICROPY_PY_BTREE),1)` around lib/berkeley-db-1.xx,
 * `ifeq ($(MICROPY_PY_SSL),1)` around lib/axtls and lib/mbedtls), although some ports list them in
 * GIT_SUBMODULES unconditionally (ports/esp8266/Makefile: `GIT_SUBMODULES += lib/axtls lib/berkeley-db-1.xx`).
 */
const SUBMODULES_UNUSED_WHEN_OFF: Record<string, string[]> = {
  MICROPY_PY_BTREE: ['lib/berkeley-db-1.xx'],
  MICROPY_PY_SSL: ['lib/axtls', 'lib/mbedtls'],
};

/** Submodules the project's make variables switch off, with the variable that does it. */
export function submodulesUnusedBy(make: Record<string, string>): Map<string, string> {
  const unused = new Map<string, string>();
  for (const [name, paths] of Object.entries(SUBMODULES_UNUSED_WHEN_OFF))
    if (make[name] === '0') for (const path of paths) unused.set(path, `${name}=0`);
  return unused;
}

/**
 * The port's submodules with the project's `submodules.skip` and those its make variables leave
 * unused taken out, and `submodules.fetch` added (an explicit fetch wins over an implied skip).
 */
export function chooseSubmodules(
  listed: string[],
  choice: { fetch: string[]; skip: string[] },
  make: Record<string, string> = {},
): string[] {
  const skip = new Set(choice.skip);
  const unused = submodulesUnusedBy(make);
  return [...new Set([...listed, ...choice.fetch])].filter(
    (path) => !skip.has(path) && (choice.fetch.includes(path) || !unused.has(path)),
  );
}

function skipReasons(ctx: BuildContext, paths: string[]): string {
  const unused = submodulesUnusedBy(ctx.project.config.make);
  return paths
    .map(
      (path) =>
        `${path}: ${unused.has(path) && !ctx.project.config.submodules.skip.includes(path) ? `unused with ${unused.get(path)}` : 'skipped by the config'}`,
    )
    .join('; ');
}

async function ensurePortSubmodules(ctx: BuildContext, paths: string[], step: StepContext): Promise<void> {
  const mp = ctx.micropython!;
  if (paths.length === 0) return;
  if (mp.checkout) {
    const missing = paths.filter((p) => !mp.checkout!.submodules[p]);
    if (missing.length) step.title(`Compile: fetching submodules ${missing.join(', ')}`);
    mp.checkout = await ctx.gitCache.ensureSubmodules(mp.checkout, paths, {
      signal: step.signal,
      logger: step.logger,
      onLine: step.output,
      onWait: (owner) => step.title(`Waiting for ${owner} (fetching MicroPython submodules)`),
      label: 'MicroPython',
    });
    return;
  }
  // A local checkout: its submodules are the user's; say which are missing and how to get them.
  const missing: string[] = [];
  for (const path of paths) {
    const entries = await readdir(join(mp.dir!, path)).catch(() => []);
    if (entries.length === 0) missing.push(path);
  }
  if (missing.length) {
    throw new MpError({
      code: 'SUBMODULE_MISSING',
      message: `The local MicroPython checkout ${mp.dir} lacks submodules the ${ctx.board!.port} port needs: ${missing.join(', ')}`,
      file: mp.dir,
      step: 'compile',
      hint: `Run: git -C ${mp.dir} submodule update --init ${missing.join(' ')}`,
    });
  }
}

/** Frozen target paths (`app.py`, `mqtt_as/__init__.py`) → host files, for compiler messages. */
function frozenFileMap(ctx: BuildContext): Record<string, string> {
  const map: Record<string, string> = {};
  for (const library of ctx.libraries) {
    for (const entry of library.freeze) {
      const base = entry.base ?? '';
      if ('module' in entry) map[entry.module] = join(library.dir!, base, entry.module);
    }
    for (const file of library.frozenFiles) {
      const entry = library.freeze.find(
        (e) => 'package' in e && file.startsWith(posix.join(e.base ?? '', e.package) + '/'),
      );
      if (entry) map[posix.relative(entry.base ?? '', file)] = join(library.dir!, file);
    }
  }
  for (const module of ctx.modules)
    for (const file of module.files) map[file] = join(ctx.project.config.modulesDir, file);
  return map;
}

/** Where the mpy-cross built for a build directory sits on the host. */
export function hostMpyCrossPath(buildDir: string): string {
  return join(buildDir, 'mpy-cross', 'mpy-cross');
}

/** Container paths of a build and the host folders behind them, for messages and mp dev's syntax check. */
export function pathMappings(ctx: BuildContext): PathMapping[] {
  return [
    { container: CONTAINER.micropython, host: ctx.micropython!.dir! },
    { container: CONTAINER.build, host: ctx.buildDir! },
    { container: CONTAINER.modules, host: ctx.project.config.modulesDir },
    ...ctx.cModules.map((m) => ({ container: m.containerDir, host: m.hostDir })),
    ...ctx.libraries.map((l) => ({ container: containerLibraryDir(l.id), host: l.dir! })),
  ];
}

async function compileStep(
  ctx: BuildContext,
  step: StepContext,
  setOwned: (owned: boolean) => void,
  setStopping: (stopping: Promise<void>) => void,
): Promise<void> {
  let stopping: Promise<void> | undefined;
  const board = ctx.board!;
  const target = ctx.target!;
  const spec = buildContainerSpec(ctx);
  let container = ctx.options.container;
  const warm = container !== undefined && !container.stopped && sameContainer(container.spec, spec);
  if (!warm) {
    step.title(`Compile: starting ${ctx.image!.ref}`);
    container = await ToolchainContainer.start(spec, { signal: step.signal });
    setOwned(true);
  }
  ctx.container = container!;
  const owned = !warm;
  // Ctrl-C: a container of our own is killed and removed at once; one that outlives the build (mp
  // dev's warm container) only loses the processes of the command running in it.
  const removeOnAbort = owned && !ctx.options.keepContainer;
  const execSignal = removeOnAbort ? undefined : step.signal;
  const onAbort = () => {
    if (removeOnAbort) void container!.stop().catch(() => undefined);
  };
  step.signal.addEventListener('abort', onAbort, { once: true });
  const copying = container!.spec.mounts.some((m) => 'volume' in m);
  try {
    await writeGitShim(ctx.buildDir!);
    if (copying) await copySourcesIn(ctx, container!, step);
    const listed = await portSubmodules(ctx, container!, step, execSignal);
    const submodules = chooseSubmodules(listed, ctx.project.config.submodules, ctx.project.config.make);
    const left = listed.filter((path) => !submodules.includes(path));
    if (left.length) step.logger.info(`Not fetching ${skipReasons(ctx, left)}`);
    ctx.submodules = submodules;
    await ensurePortSubmodules(ctx, submodules, step);
    if (copying) await copySourcesIn(ctx, container!, step);

    const mpyCrossBinary = hostMpyCrossPath(ctx.buildDir!);
    // Sources fetched by commit never change, so an mpy-cross built from them is never stale.
    // (With copied sources the binary lives in a volume: make decides.)
    const buildMpyCross = copying || !(ctx.micropython!.checkout && existsSync(mpyCrossBinary));
    const jobs = ctx.project.config.jobs;
    step.title(
      `Compile: make -C ports/${board.port}${target.board ? ` BOARD=${target.board}` : ''} -j${jobs} in ${ctx.image!.ref}`,
    );
    const lines: string[] = [];
    let stage = 'port';
    const { exitCode } = await container!.exec(makeScript({ board, target, jobs, buildMpyCross }), {
      onLine: (line) => {
        if (line.startsWith(STAGE_MARKER)) {
          stage = line.slice(STAGE_MARKER.length).trim();
          return;
        }
        lines.push(line);
        if (lines.length > 4000) lines.splice(0, 1000);
        step.output(line);
      },
      signal: execSignal,
    });
    if (exitCode !== 0) throw compileFailure(ctx, lines, stage, exitCode);

    const artifacts: Record<string, string> = {};
    for (const [name, rel] of Object.entries(target.artifacts))
      artifacts[name] = join(ctx.buildDir!, 'port', rel);
    const needed = new Set([board.firmware, ...(target.flash?.segments.map((s) => s.artifact) ?? [])]);
    for (const name of needed) {
      const rel = target.artifacts[name];
      if (copying && rel)
        await copyFileOut(container!, posix.join(CONTAINER_PATHS.portBuild, rel), artifacts[name]!);
      if (!artifacts[name] || !existsSync(artifacts[name]!)) {
        throw new MpError({
          code: 'ARTIFACT_MISSING',
          message: `make succeeded but board ${board.id}'s artifact "${name}" (${target.artifacts[name] ?? 'not declared'}) is not in ${join(ctx.buildDir!, 'port')}`,
          plugin: board.id,
          file: artifacts[name],
          step: 'compile',
          hint: `The board plugin’s \`artifacts\` may not match this MicroPython version’s output; check the build folder and fix the plugin. Full log: ${ctx.logFile}`,
        });
      }
    }
    ctx.artifacts = artifacts;
  } catch (error) {
    if (step.signal.aborted) throw new CancelledError('compile');
    throw error;
  } finally {
    step.signal.removeEventListener('abort', onAbort);
  }
  // Removing the container overlaps the export; dispose() waits for it.
  if (owned && !ctx.options.keepContainer) stopping = container!.stop();
  await utimes(ctx.buildDir!, new Date(), new Date()).catch(() => undefined);
  if (stopping) setStopping(stopping);
  await pruneBuildDirs(join(ctx.project.stateDir, 'build', board.id), ctx.buildDir!);
  step.title(`Compiled ${board.id} in ${ctx.image!.ref}`);
}

function compileFailure(ctx: BuildContext, lines: string[], stage: string, exitCode: number): MpError {
  // mpy-cross is made in its own folder; the port with `make -C ports/<port>`.
  const makeDir = posix.join(
    CONTAINER.micropython,
    stage === 'mpy-cross' ? 'mpy-cross' : `ports/${ctx.board!.port}`,
  );
  const failure = analyzeMakeFailure(lines, pathMappings(ctx), frozenFileMap(ctx), makeDir);
  const where = failure.file
    ? `${displayPath(ctx, failure.file)}${failure.line ? `:${failure.line}` : ''}`
    : undefined;
  const excerpt = failure.excerpt.map((l) => `  ${l}`).join('\n');
  if (failure.kind === 'freeze') {
    return new MpError({
      code: 'FREEZE_FAILED',
      message: `A frozen module did not compile${where ? ` (${where})` : ''}:\n${excerpt}`,
      file: where,
      step: 'compile',
      hint: `Fix the Python error above and build again. Full log: ${ctx.logFile}`,
    });
  }
  return new MpError({
    code: 'COMPILE_FAILED',
    message: `make failed building ${stage === 'mpy-cross' ? 'mpy-cross' : `port ${ctx.board!.port}`} for board ${ctx.board!.id} (exit ${exitCode})${where ? ` at ${where}` : ''}:\n${excerpt}`,
    file: where,
    plugin: ctx.board!.id,
    step: 'compile',
    hint: `Read the compiler errors above; the full log is ${ctx.logFile}. A toolchain that does not fit this MicroPython version can be replaced with --image.`,
  });
}

/** Keeps the two most recently used other build directories of a board (switching back is fast). */
async function pruneBuildDirs(boardState: string, current: string): Promise<void> {
  const entries = await readdir(boardState, { withFileTypes: true }).catch(() => []);
  const dirs: Array<{ path: string; mtime: number }> = [];
  for (const entry of entries) {
    if (!entry.isDirectory() || entry.name === 'lock' || join(boardState, entry.name) === current) continue;
    const info = await stat(join(boardState, entry.name)).catch(() => undefined);
    if (info) dirs.push({ path: join(boardState, entry.name), mtime: info.mtimeMs });
  }
  dirs.sort((a, b) => b.mtime - a.mtime);
  for (const old of dirs.slice(2))
    await rm(old.path, { recursive: true, force: true }).catch(() => undefined);
}

// ── export ───────────────────────────────────────────────────────────────────────────────────

/** The firmware's file name in `export/` for a build finishing at `now` (before making it unique). */
export function exportNameFor(ctx: BuildContext, now: Date): string {
  const board = ctx.board!;
  const mp = ctx.micropython!;
  const identity: MicroPythonIdentity = {
    tag: mp.tag,
    version: mp.version,
    sha: mp.local && !mp.local.sha ? undefined : mp.sha,
    dirty: mp.local?.dirty && Boolean(mp.local.sha),
  };
  return exportFileName({
    exportPrefix: board.exportPrefix,
    micropython: identity,
    fragments: ctx.libraries.map((l) => l.plugin.nameFragment),
    date: now,
    extension: board.firmwareExtension ?? '.bin',
  });
}

async function exportStep(ctx: BuildContext, step: StepContext): Promise<void> {
  const board = ctx.board!;
  const target = ctx.target!;
  const mp = ctx.micropython!;
  const { config } = ctx.project;
  const now = ctx.options.now?.() ?? new Date();
  const extension = board.firmwareExtension ?? '.bin';
  const name = uniqueName(config.exportDir, exportNameFor(ctx, now));
  const firmwareData = await readFile(ctx.artifacts![board.firmware]!);
  const files = [{ name, data: firmwareData, mode: extension === '' ? 0o755 : 0o644 }];
  const segments: NonNullable<BuildSidecar['flash']>['segments'] = [];
  const stem = name.endsWith(extension) && extension ? name.slice(0, -extension.length) : name;
  for (const segment of target.flash?.segments ?? []) {
    let file = name;
    let data = firmwareData;
    if (segment.artifact !== board.firmware) {
      data = await readFile(ctx.artifacts![segment.artifact]!);
      file = `${stem}-${segment.artifact}${extname(target.artifacts[segment.artifact]!) || '.bin'}`;
      if (!files.some((f) => f.name === file)) files.push({ name: file, data, mode: 0o644 });
    }
    segments.push({
      offset: segment.offset,
      file,
      artifact: segment.artifact,
      sha256: sha256Hex(data),
      size: data.length,
    });
  }
  const libraryFiles = [];
  for (const library of ctx.libraries) {
    for (const file of library.exports) {
      libraryFiles.push({
        name: file.as,
        data: await readFile(join(library.dir!, file.from)),
        library: library.id,
        from: file.from,
        protect: true,
      });
    }
  }
  const firmwareSha = sha256Hex(firmwareData);
  const outcome = await writeExport({
    exportDir: config.exportDir,
    stateDir: ctx.project.stateDir,
    boardId: board.id,
    files,
    libraryFiles,
    sidecar: (exportedFiles) => ({
      schema: EXPORT_SCHEMA,
      firmware: name,
      board: {
        id: board.id,
        title: board.title,
        package: ctx.boardListing?.source ?? null,
        packageVersion: ctx.boardListing?.version ?? null,
        port: board.port,
        board: target.board ?? null,
        variant: target.variant ?? null,
        chip: board.chip ?? null,
        exportPrefix: board.exportPrefix,
      },
      micropython: {
        ref: mp.requested ?? null,
        tag: mp.tag ?? null,
        version: mp.version
          ? `${mp.version.major}.${mp.version.minor}.${mp.version.patch}${mp.version.prerelease ? '-preview' : ''}`
          : null,
        sha: mp.sha ?? null,
        git: mp.git?.url ?? null,
        path: mp.local ? mp.dir! : null,
        dirty: mp.local?.dirty ?? false,
        submodules: Object.fromEntries(
          (ctx.submodules ?? [])
            .filter((path) => mp.checkout?.submodules[path])
            .map((path) => [
              path,
              { git: mp.checkout!.submodules[path]!.url, sha: mp.checkout!.submodules[path]!.sha },
            ]),
        ),
      },
      libraries: ctx.libraries.map((l) => ({
        id: l.id,
        git: l.git?.url ?? null,
        path: l.local ? l.dir! : null,
        ref: l.git?.ref.requested ?? null,
        sha: l.git?.ref.sha ?? l.local?.sha ?? null,
        frozen: l.frozenFiles,
      })),
      modules: ctx.moduleHashes,
      image: {
        ref: ctx.image!.ref,
        id: ctx.image!.id,
        reason: ctx.toolchain?.reason ?? null,
        override: ctx.toolchain?.override ?? false,
      },
      options: {
        make: ctx.project.config.make,
        makeArgs: target.makeArgs ?? [],
        variant: ctx.project.config.variant ?? null,
        submodules: ctx.project.config.submodules,
        cModules: ctx.cModules.map((m) => ({ name: m.name, path: m.hostDir, sha256: m.fingerprint })),
      },
      sha256: firmwareSha,
      size: firmwareData.length,
      flash: target.flash
        ? {
            mode: target.flash.mode,
            freq: target.flash.freq,
            size: target.flash.size,
            baud: target.flash.baud,
            segments,
          }
        : null,
      exportedFiles,
      manifestSha256: hashOf(ctx.manifest!),
      cacheKey: ctx.cacheKey!,
      durationMs: Date.now() - ctx.startedAt,
      builtAt: now.toISOString(),
      mp: { version: MP_VERSION },
    }),
  });
  for (const file of outcome.sidecar.exportedFiles) {
    if (file.status === 'kept') {
      step.logger.warn(
        `${displayPath(ctx, join(config.exportDir, file.file))} was edited, so it was kept; the library’s current version is in ${file.file}.new`,
      );
    }
  }
  await writeLastBuild(ctx.project.stateDir, board.id, {
    key: ctx.cacheKey!,
    firmware: outcome.firmware,
    sidecarFile: outcome.sidecarFile,
    sha256: firmwareSha,
    builtAt: outcome.sidecar.builtAt,
  });
  ctx.result = {
    upToDate: false,
    firmware: outcome.firmware,
    sidecarFile: outcome.sidecarFile,
    sidecar: outcome.sidecar,
    logFile: ctx.logFile,
    durationMs: outcome.sidecar.durationMs,
  };
  step.title(`Exported ${displayPath(ctx, outcome.firmware)}`);
}
