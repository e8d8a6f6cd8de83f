/**
 * `mp build` as a list of Steps over five typed stages, each the previous one's result plus its own:
 *
 *   Resolve (resolve) → Fetch (sources) → Plan (toolchain, manifest) → Compile (compile) → Export (export)
 *
 * The CLI renders the steps' events (a terminal view, plain lines or JSON); `mp dev` runs the same steps with a warm
 * container. A build whose inputs are unchanged stops after `manifest` with the last export.
 * Docker and git are parameters (`toolchain`, `sources`) with the real ones as defaults.
 *
 *   const build = createBuild({ project });
 *   try { await runSteps(build.steps, build.ctx, { signal }); use(build.ctx.result); }
 *   finally { await build.dispose(); }
 */
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { MpError } from '../errors.ts';
import type { Step, StepContext } from '../events.ts';
import type { BoardPlugin, BoardTarget } from '../plugin/types.ts';
import type { Project } from '../project.ts';
import { registerCacheUse, sweepCacheTemps } from '../sources/cache-housekeeping.ts';
import { GitSourceCache, refTtlFromEnv } from '../sources/git-cache.ts';
import { ccacheFromEnv } from '../toolchain/ccache.ts';
import { dockerToolchain } from '../toolchain/docker.ts';
import type { ToolchainImageInfo } from '../toolchain/image.ts';
import { leaseSecondsFromEnv } from '../toolchain/lease.ts';
import type { Toolchain, ToolchainContainer } from '../toolchain/toolchain.ts';
import { acquireLock } from '../util/lock.ts';
import { userCacheDir } from '../util/paths.ts';
import { buildFolderName } from './cache-key.ts';
import { type Compiled, compileFirmware, mountedPaths } from './compile.ts';
import { type BuildResult, type Exported, exportFirmware } from './export.ts';
import { type Fetched, type FetchedLibrary, fetchSources } from './fetch.ts';
import { parseByteSize } from './firmware-cache.ts';
import type { PathMapping } from './make.ts';
import { type Drafted, draftPlan, type Planned, planBuild, prepareToolchain } from './plan.ts';
import { displayPath, type Resolved, resolveBuild, type SourceCache } from './resolve.ts';

export { hostMpyCrossPath } from './compile.ts';
export type { BuildResult } from './export.ts';

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
   * Ask mp's firmware cache for firmware built before from the same inputs, and keep this build's
   * there (default true). `mp verify` turns it off: it must compile to compare.
   */
  firmwareCache?: boolean;
  /**
   * Ask the remote firmware cache (`cache.remote`) on a local miss and upload what was compiled
   * (default true). `mp dev` turns it off: a save's state is its own, and the inner loop should not
   * wait on a network round trip or push every intermediate firmware to the team.
   */
  remoteCache?: boolean;
  /**
   * mp dev: a running toolchain container to compile in. It is left running; if its mounts or image
   * no longer fit (another MicroPython version), a new one is started and put in `ctx.container`.
   */
  container?: ToolchainContainer;
  /** mp dev: leave the container this build starts running (in `ctx.container`) for the next build. */
  keepContainer?: boolean;
  /**
   * Idle seconds the toolchain container may outlive this build, for the next one to compile in at
   * once (see toolchain/lease.ts). Default `MP_CONTAINER_LEASE`, else 10 minutes (none under CI).
   */
  lease?: number;
  /** Where images and containers come from; default the Docker engine of `env`. */
  toolchain?: Toolchain;
  /** Where sources come from; default mp's git cache in `cacheDir`. */
  sources?: SourceCache;
}

/** A build as it goes: each stage's result once its step has run, and what callers read of them. */
export interface BuildContext {
  readonly options: BuildOptions;
  readonly project: Project;
  readonly startedAt: number;
  /** The full log of this build (every line of git, docker and make output). */
  readonly logFile: string;
  readonly cacheDir: string;
  resolved?: Resolved;
  fetched?: Fetched;
  image?: ToolchainImageInfo;
  drafted?: Drafted;
  planned?: Planned;
  compiled?: Compiled;
  exported?: Exported;
  /** The toolchain container of this build (left running when `keepContainer`). */
  container?: ToolchainContainer;
  readonly board?: BoardPlugin;
  /** The board after its `resolve` hook for this MicroPython. */
  readonly target?: BoardTarget;
  /** The libraries with their sources, once fetched. */
  readonly libraries: FetchedLibrary[];
  readonly manifest?: string;
  readonly buildDir?: string;
  readonly upToDate: boolean;
  /** The export, or the last one when nothing changed. */
  readonly result?: BuildResult;
}

class BuildState implements BuildContext {
  readonly options: BuildOptions;
  readonly project: Project;
  readonly startedAt = Date.now();
  readonly logFile: string;
  readonly cacheDir: string;
  resolved?: Resolved;
  fetched?: Fetched;
  image?: ToolchainImageInfo;
  drafted?: Drafted;
  planned?: Planned;
  compiled?: Compiled;
  exported?: Exported;
  container?: ToolchainContainer;

  constructor(options: BuildOptions, cacheDir: string) {
    this.options = options;
    this.project = options.project;
    this.cacheDir = cacheDir;
    const { config } = options.project;
    this.logFile = join(
      options.project.stateDir,
      'build',
      buildFolderName(config, config.board),
      'build.log',
    );
  }

  get board() {
    return this.resolved?.board;
  }
  get target() {
    return this.fetched?.target;
  }
  get libraries() {
    return this.fetched?.libraries ?? [];
  }
  get manifest() {
    return this.drafted?.manifest;
  }
  get buildDir() {
    return this.planned?.buildDir;
  }
  get upToDate() {
    return this.planned?.upToDate !== undefined;
  }
  get result() {
    return this.exported?.result ?? this.planned?.upToDate;
  }
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
  const ctx: BuildContext = new BuildState(options, options.cacheDir ?? userCacheDir(env));
  const deps: StageDeps = {
    sources:
      options.sources ??
      new GitSourceCache({
        cacheDir: ctx.cacheDir,
        mirrors: project.config.mirrors,
        refTtlMs: refTtlFromEnv(env),
        refresh: options.force,
      }),
    toolchain: options.toolchain ?? dockerToolchain({ env }),
    held: new BuildResources(ctx.logFile, options),
  };
  const steps = [...sourceSteps(deps)];
  if (!options.manifestOnly) steps.push(...buildSteps(deps));
  else steps.push(manifestStep());
  return { steps, ctx, dispose: () => deps.held.release() };
}

interface StageDeps {
  sources: SourceCache;
  toolchain: Toolchain;
  held: BuildResources;
}

/** A step running one stage, its tool output also in the build log. */
function stage(
  held: BuildResources,
  id: string,
  title: string,
  run: (c: BuildContext, step: StepContext) => Promise<void>,
): Step<BuildContext> {
  return { id, title, run: (c, step) => run(c, held.logged(step)) };
}

/** Resolve and Fetch: what `--dry-run` and `--print-manifest` run too. */
function sourceSteps({ sources, held }: StageDeps): Step<BuildContext>[] {
  return [
    stage(held, 'resolve', 'Resolve board, libraries and MicroPython', async (c, step) => {
      // Importing the plugins writes nothing, so it goes on while the locks are taken (mostly waiting for files).
      const plugins = preloadPlugins(c.project);
      await held.take(c, step);
      await plugins;
      c.resolved = await resolveBuild(c.project, { sources, step });
    }),
    stage(held, 'sources', 'Fetch sources', async (c, step) => {
      c.fetched = await fetchSources(need(c.resolved, 'resolve'), { sources, step });
      held.sweepCache(c.cacheDir);
    }),
  ];
}

/**
 * Starts importing the board and the libraries the config names (the registry keeps each import);
 * never rejects: resolve reports a plugin that does not load, as it did without this.
 */
function preloadPlugins({ config, plugins }: Project): Promise<unknown> {
  const loads: Array<Promise<unknown>> = [];
  if (plugins.has('board', config.board)) loads.push(plugins.load('board', config.board));
  for (const { id } of config.libraries)
    if (plugins.has('library', id)) loads.push(plugins.load('library', id));
  return Promise.all(loads.map((load) => load.catch(() => undefined)));
}

/** `--dry-run` and `--print-manifest`: the plan as far as it goes without Docker. */
function manifestStep(): Step<BuildContext> {
  return {
    id: 'manifest',
    title: 'Frozen manifest',
    run: async (c) => {
      c.drafted = draftPlan(need(c.fetched, 'sources'));
    },
  };
}

/** Plan, Compile and Export. */
function buildSteps({ sources, toolchain, held }: StageDeps): Step<BuildContext>[] {
  return [
    stage(held, 'toolchain', 'Toolchain image', async (c, step) => {
      c.image = await prepareToolchain(need(c.fetched, 'sources'), { toolchain, step });
    }),
    stage(held, 'manifest', 'Frozen manifest', async (c, step) => {
      c.drafted = draftPlan(need(c.fetched, 'sources'));
      const { force } = c.options;
      const cacheDir = c.options.firmwareCache === false ? undefined : c.cacheDir;
      const remote = c.options.remoteCache !== false;
      const deps = { step, force, startedAt: c.startedAt, logFile: c.logFile, cacheDir, remote };
      c.planned = await planBuild(c.drafted, need(c.image, 'toolchain'), deps);
    }),
    {
      ...stage(held, 'compile', 'Compile', async (c, step) => {
        c.compiled = await compileFirmware(need(c.planned, 'manifest'), {
          step,
          toolchain,
          sources,
          cacheDir: c.cacheDir,
          logFile: c.logFile,
          warm: c.options.container,
          keepContainer: c.options.keepContainer,
          lease: c.options.lease ?? leaseSecondsFromEnv(c.options.env ?? process.env),
          ccache: ccacheFromEnv(c.options.env ?? process.env),
          onContainer: (container, owned) => {
            c.container = container;
            held.compilingIn(container, owned);
          },
        });
        // Removing the container overlaps the export; dispose() waits for it.
        held.stopContainer();
      }),
      skip: (c) => (c.upToDate ? 'up to date' : c.planned?.cached ? 'from the firmware cache' : false),
    },
    {
      ...stage(held, 'export', 'Export', async (c, step) => {
        c.exported = await exportFirmware(c.compiled ?? fromFirmwareCache(need(c.planned, 'manifest')), {
          cacheDir: c.options.firmwareCache === false ? undefined : c.cacheDir,
          cacheMaxBytes: parseByteSize(c.project.config.cache.maxSize),
          remote: c.options.remoteCache !== false,
          step,
          now: c.options.now ?? (() => new Date()),
          startedAt: c.startedAt,
          logFile: c.logFile,
        });
      }),
      skip: (c) =>
        c.planned?.upToDate ? `up to date: ${displayPath(c.project, c.planned.upToDate.firmware)}` : false,
    },
  ];
}

/**
 * What a build holds until dispose: the board lock (taken before the log's first line: `mp clean`
 * takes it before removing the folder), its registration as a user of the cache (`mp clean --all`
 * refuses meanwhile), a container of its own, and the log.
 */
class BuildResources {
  private readonly options: BuildOptions;
  private readonly log: ReturnType<typeof buildLog>;
  private releaseLock: (() => Promise<void>) | undefined;
  private releaseCacheUse: (() => Promise<void>) | undefined;
  private owned: ToolchainContainer | undefined;
  private stopping: Promise<void> | undefined;
  private sweeping: Promise<void> | undefined;
  private cacheDir: string | undefined;

  constructor(logFile: string, options: BuildOptions) {
    this.options = options;
    this.log = buildLog(logFile, !options.manifestOnly);
  }

  /** Every step's tool output also goes to the build log. */
  logged(step: StepContext): StepContext {
    return {
      ...step,
      output: (line) => {
        this.log.write(line);
        step.output(line);
      },
    };
  }

  async take(c: BuildContext, step: StepContext): Promise<void> {
    const { project } = c;
    this.cacheDir = c.cacheDir;
    // Independent, and each a few files written and waited for: side by side. What one of them
    // took when the other failed is released by release(), as always.
    const [lock, use] = await Promise.allSettled([
      this.options.manifestOnly ? undefined : takeBoardLock(project, step),
      registerCacheUse(c.cacheDir, {
        project: project.config.projectDir,
        signal: step.signal,
        // The cache lock is held for a moment by every build registering, for longer by `mp clean --all`.
        onWait: (owner) => step.title(`Waiting for mp's cache, which ${owner} holds`),
      }),
    ]);
    if (lock.status === 'fulfilled') this.releaseLock = lock.value;
    if (use.status === 'fulfilled') this.releaseCacheUse = use.value;
    if (lock.status === 'rejected') throw lock.reason;
    if (use.status === 'rejected') throw use.reason;
  }

  /**
   * Sweeps what killed builds left in the cache (repositories being fetched into are skipped),
   * beside the rest of the build: it is some 30 ms of locking and listing, which a build that
   * finds everything cached should not wait for. Started once the sources are fetched, so it never
   * holds a repository's lock a fetch waits for; finished before the build lets go of the cache.
   */
  sweepCache(cacheDir: string): void {
    this.sweeping ??= sweepCacheTemps(cacheDir).then(
      () => undefined,
      () => undefined,
    );
  }

  compilingIn(container: ToolchainContainer, owned: boolean): void {
    this.owned = owned && !this.options.keepContainer ? container : undefined;
  }

  /** Removes a container of this build's own; one under a lease is left for the next build. */
  stopContainer(): void {
    const owned = this.owned;
    this.stopping ??= (owned?.leased && !owned.stopped ? owned.release?.() : owned?.stop())?.catch(
      () => undefined,
    );
  }

  async release(): Promise<void> {
    this.stopContainer();
    await this.stopping;
    // A build that failed before its sources were fetched sweeps now.
    if (this.releaseCacheUse && this.cacheDir) this.sweepCache(this.cacheDir);
    await this.sweeping;
    // After the container: it bind-mounts the cache's trees.
    await this.releaseCacheUse?.().catch(() => undefined);
    this.releaseCacheUse = undefined;
    await this.releaseLock?.().catch(() => undefined);
    this.releaseLock = undefined;
    await this.log.close();
  }
}

/** What export needs of a compile, from the firmware cache's files instead. */
function fromFirmwareCache(planned: Planned): Compiled {
  const cached = need(planned.cached, 'compile');
  return { ...planned, submodules: cached.entry.submodules, artifacts: cached.artifacts };
}

/** A stage's input, which the step before it put there; missing only when steps run out of order. */
export function need<T>(value: T | undefined, step: string): T {
  if (value === undefined) {
    throw new MpError({
      code: 'BUILD_STEP_ORDER',
      message: `The build's ${step} step has not run, and the next one needs its result`,
      hint: 'Run the steps of createBuild() in order, e.g. runSteps(build.steps, build.ctx, { signal }).',
    });
  }
  return value;
}

/** The build log, opened on its first line (after the board lock), or nothing at all. */
function buildLog(file: string, enabled: boolean) {
  let stream: WriteStream | undefined;
  return {
    write(line: string): void {
      if (!enabled) return;
      if (!stream) {
        try {
          mkdirSync(join(file, '..'), { recursive: true });
          stream = createWriteStream(file, { flags: 'w' });
          stream.on('error', () => undefined);
        } catch {
          return;
        }
      }
      stream.write(`${line}\n`);
    },
    close: () => new Promise<void>((done) => (stream ? stream.end(done) : done())),
  };
}

/**
 * One build per project and board at a time: the build directory, the manifest and the log are
 * shared. Taken before anything is written there (the log's first line included), held until dispose.
 */
function takeBoardLock(project: Project, step: StepContext): Promise<() => Promise<void>> {
  const board = project.config.board;
  return acquireLock(join(project.stateDir, 'build', buildFolderName(project.config, board), 'lock'), {
    signal: step.signal,
    onWait: (owner) => step.title(`Waiting for another build of ${board} (${owner})`),
  });
}

/** Container paths of the build and the host folders behind them (mp dev's syntax check). */
export function pathMappings(ctx: BuildContext): PathMapping[] {
  return ctx.planned ? mountedPaths(ctx.planned) : [];
}
