/**
 * Stage 4, Compile (step `compile`): make in a toolchain container, mpy-cross first, the build
 * directory kept between builds so the next make is incremental. `mp dev` hands in its warm
 * container, used while it fits (same image and mounts); otherwise one is started here.
 */
import { existsSync } from 'node:fs';
import { readdir, rm, stat, utimes } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import { CancelledError, MpError } from '../errors.ts';
import type { StepContext } from '../events.ts';
import { versionAtLeast } from '../plugin/version.ts';
import { isTreeTemporary } from '../sources/cache-housekeeping.ts';
import { CCACHE_DIR, ccacheHostDir } from '../toolchain/ccache.ts';
import type { Toolchain, ToolchainContainer, ToolchainSpec } from '../toolchain/toolchain.ts';
import { stableJson } from './cache-key.ts';
import type { FetchedMicroPython } from './fetch.ts';
import {
  analyzeMakeFailure,
  CONTAINER,
  CONTAINER_PATHS,
  containerLibraryDir,
  makeScript,
  type PathMapping,
  STAGE_MARKER,
} from './make.ts';
import type { Planned } from './plan.ts';
import type { SourceCache } from './resolve.ts';
import { displayPath } from './resolve.ts';
import { prepareSubmodules, writeGitShim } from './submodules.ts';

export interface Compiled extends Planned {
  /** Submodules fetched for the port. */
  submodules: string[];
  /** Artifact name → host path. */
  artifacts: Record<string, string>;
}

export interface CompileDeps {
  step: StepContext;
  toolchain: Toolchain;
  sources: SourceCache;
  cacheDir: string;
  logFile: string;
  /** mp dev: a running container to compile in, when it fits this build. */
  warm?: ToolchainContainer;
  /** Leave a container this compile starts running (mp dev); else Ctrl-C removes it at once. */
  keepContainer?: boolean;
  /** The container compiling, as soon as there is one; `owned` when this compile started it. */
  onContainer(container: ToolchainContainer, owned: boolean): void;
  /**
   * Idle seconds a container may outlive this build (`MP_CONTAINER_LEASE`): one an earlier build
   * left running is taken, or the one started here is left for the next build. 0: neither.
   */
  lease?: number;
  /** Compile through ccache, its cache kept per board and toolchain image in `cacheDir` (MP_CCACHE). */
  ccache?: boolean;
}

export async function compileFirmware(planned: Planned, deps: CompileDeps): Promise<Compiled> {
  const { step } = deps;
  const spec = toolchainSpec(planned, {
    cacheDir: deps.cacheDir,
    ccacheDir: deps.ccache ? ccacheHostDir(deps.cacheDir, planned.board.id, planned.image.id) : undefined,
  });
  const warm = deps.warm && !deps.warm.stopped && sameSpec(deps.warm.spec, spec) ? deps.warm : undefined;
  const lease = warm || deps.keepContainer ? 0 : (deps.lease ?? 0);
  let container = warm ?? (lease > 0 ? await leasedContainer(deps.toolchain, spec, lease) : undefined);
  if (container?.reused) step.title(`Compile: in the running ${planned.image.ref} container`);
  if (!container) {
    step.title(`Compile: starting ${planned.image.ref}`);
    container = await deps.toolchain.start(spec, { signal: step.signal, lease, onTitle: step.title });
  }
  deps.onContainer(container, !warm);
  // Ctrl-C: a container of our own is killed and removed at once; one that outlives the build (mp
  // dev's warm container) only loses the processes of the command running in it.
  const removeOnAbort = !warm && !deps.keepContainer;
  const signal = removeOnAbort ? undefined : step.signal;
  const onAbort = () => {
    if (removeOnAbort) void container.stop().catch(() => undefined);
  };
  step.signal.addEventListener('abort', onAbort, { once: true });
  let compiled: Compiled;
  try {
    await writeGitShim(planned.buildDir);
    await copySourcesIn(planned, container, step);
    const { micropython, submodules } = await prepareSubmodules(planned, container, { ...deps, signal });
    const current = { ...planned, micropython };
    await copySourcesIn(current, container, step);
    await runMake(current, container, step, signal, deps.logFile);
    compiled = {
      ...current,
      submodules,
      artifacts: await collectArtifacts(current, container, deps.logFile),
    };
  } catch (error) {
    if (step.signal.aborted) throw new CancelledError('compile');
    throw error;
  } finally {
    step.signal.removeEventListener('abort', onAbort);
  }
  await utimes(planned.buildDir, new Date(), new Date()).catch(() => undefined);
  await pruneBuildDirs(dirname(planned.buildDir), planned.buildDir);
  step.title(`Compiled ${planned.board.id} in ${planned.image.ref}`);
  return compiled;
}

/** A container of this spec an earlier build left under its lease; none when the engine cannot say. */
async function leasedContainer(
  toolchain: Toolchain,
  spec: ToolchainSpec,
  lease: number,
): Promise<ToolchainContainer | undefined> {
  return toolchain.reuse?.(spec, { lease }).catch(() => undefined);
}

/** The container a build compiles in; `mp dev` compares it with its warm container. */
export function toolchainSpec(
  planned: Planned,
  options: { cacheDir?: string; ccacheDir?: string } = {},
): ToolchainSpec {
  const { micropython: mp, target, buildDir } = planned;
  const { config } = planned.project;
  // ccache writes its cache as the commands' user: only for builds that run as the host user.
  const ccache =
    options.ccacheDir && target.toolchain.runAsHostUser !== false ? options.ccacheDir : undefined;
  return {
    image: planned.image.id,
    env: {
      // Python would write __pycache__ into py/, tools/ and mpy-cross/ of the shared tree.
      HOME: '/tmp',
      PYTHONDONTWRITEBYTECODE: '1',
      ...reproducibleEnv(mp),
      ...(ccache ? ccacheEnv(planned) : {}),
      ...target.toolchain.env,
    },
    ccache: ccache ? { dir: ccache } : undefined,
    hostUser: target.toolchain.runAsHostUser !== false,
    workdir: CONTAINER.micropython,
    owner: { project: config.projectDir, board: planned.board.id, cache: options.cacheDir },
    leaseMount: CONTAINER.build,
    mounts: [
      // The tree is shared by every build of that commit (and may be the user's own checkout): make
      // writes only into BUILD. Before v1.20 mpy-cross put its binary into its source folder.
      {
        host: mp.dir,
        container: CONTAINER.micropython,
        readOnly: !mp.version || versionAtLeast(mp.version, 1, 20),
        volume: mp.git
          ? { kind: 'src', key: mp.sha.slice(0, 16), shared: true }
          : { kind: 'src', key: mp.dir },
      },
      { host: buildDir, container: CONTAINER.build, volume: { kind: 'build', key: buildDir } },
      ...planned.libraries.map((l) => ({
        host: l.dir,
        container: containerLibraryDir(l.id),
        readOnly: true,
        // By folder (a commit's tree), as the other sources: targets freezing two commits of one
        // library build side by side on an engine that copies.
        volume: { kind: 'lib', key: l.dir },
      })),
      {
        host: config.modulesDir,
        container: CONTAINER.modules,
        readOnly: true,
        optional: true,
        volume: { kind: 'modules', key: config.modulesDir },
      },
      ...planned.cModules.map((m) => ({
        host: m.hostDir,
        container: m.containerDir,
        readOnly: true,
        volume: { kind: 'cmodule', key: m.hostDir },
      })),
    ],
  };
}

/**
 * The build's only clock: SOURCE_DATE_EPOCH, the MicroPython commit's time. py/makeversionhdr.py
 * dates the firmware (MICROPY_BUILD_DATE, the banner's "on 2026-04-06") from it, and GCC's
 * __DATE__/__TIME__ too, so two builds of the same inputs are the same bytes whenever they run.
 * With the container paths fixed (/mp/...), nothing else of the machine reaches the firmware.
 */
export function sourceDateEpoch(mp: FetchedMicroPython): number | undefined {
  return mp.checkout?.committedAt ?? mp.local?.committedAt;
}

/** Where ccache keeps its cache; ESP-IDF (esp32) runs ccache itself when asked to. */
function ccacheEnv(planned: Planned): Record<string, string> {
  return {
    CCACHE_DIR,
    CCACHE_MAXSIZE: '1G',
    ...(planned.board.port === 'esp32' ? { IDF_CCACHE_ENABLE: '1' } : {}),
  };
}

function reproducibleEnv(mp: FetchedMicroPython): Record<string, string> {
  const epoch = sourceDateEpoch(mp);
  return epoch === undefined ? {} : { SOURCE_DATE_EPOCH: String(epoch) };
}

/** A running container fits a build when only its owner differs. */
function sameSpec(a: ToolchainSpec, b: ToolchainSpec): boolean {
  return stableJson({ ...a, owner: undefined }) === stableJson({ ...b, owner: undefined });
}

/** When the mounts are copies: brings them up to date with this machine (only what changed travels). */
async function copySourcesIn(
  planned: Planned,
  container: ToolchainContainer,
  step: StepContext,
): Promise<void> {
  if (!container.copies) return;
  const mp = planned.micropython;
  const sync = async (host: string, into: string, options = {}) => {
    const { copied, removed } = await container.copyIn(host, into, options);
    if (copied || removed)
      step.output(
        `copied ${copied} file${copied === 1 ? '' : 's'} to ${into}${removed ? `, removed ${removed}` : ''}`,
      );
  };
  step.title('Compile: copying sources to the Docker engine');
  await sync(mp.dir, CONTAINER.micropython, {
    fingerprint: mp.checkout
      ? `${mp.sha} ${Object.keys(mp.checkout.submodules).sort().join(' ')}`
      : undefined,
    // The checkout record, and what another target's fetch is adding to the shared tree right now
    // (a submodule under a temporary name, renamed into place once complete).
    skip: (rel: string) => rel === '.mp-checkout.json' || isTreeTemporary(rel.split('/')[0]!),
  });
  for (const library of planned.libraries) await sync(library.dir, containerLibraryDir(library.id));
  const { modulesDir } = planned.project.config;
  if (existsSync(modulesDir)) await sync(modulesDir, CONTAINER.modules);
  for (const m of planned.cModules) await sync(m.hostDir, m.containerDir);
  // The build directory's outputs live in the volume; only mp's own files go in.
  await sync(planned.buildDir, CONTAINER.build, {
    prune: false,
    skip: (rel: string) =>
      !(rel === 'manifest.py' || rel === 'cmodules.cmake' || rel.startsWith('.mp-shim/')),
  });
}

async function runMake(
  planned: Planned,
  container: ToolchainContainer,
  step: StepContext,
  signal: AbortSignal | undefined,
  logFile: string,
): Promise<void> {
  const { board, target, micropython: mp } = planned;
  const { jobs } = planned.project.config;
  // Sources fetched by commit never change, so an mpy-cross built from them is never stale.
  // (With copied sources the binary lives in a volume: make decides.)
  const buildMpyCross = container.copies || !(mp.checkout && existsSync(hostMpyCrossPath(planned.buildDir)));
  step.title(
    `Compile: make -C ports/${board.port}${target.board ? ` BOARD=${target.board}` : ''} -j${jobs} in ${planned.image.ref}`,
  );
  const lines: string[] = [];
  let stage = 'port';
  // The make ports get compiler shims; ESP-IDF's CMake build has its own ccache support.
  const ccache = Boolean(container.spec.ccache) && board.port !== 'esp32';
  const { exitCode } = await container.exec(makeScript({ board, target, jobs, buildMpyCross, ccache }), {
    onLine: (line) => {
      if (line.startsWith(STAGE_MARKER)) {
        stage = line.slice(STAGE_MARKER.length).trim();
        return;
      }
      lines.push(line);
      if (lines.length > 4000) lines.splice(0, 1000);
      step.output(line);
    },
    signal,
  });
  if (exitCode !== 0) throw compileFailure(planned, lines, stage, exitCode, logFile);
}

/** The artifacts the export needs, on the host (copied out when the mounts are copies). */
async function collectArtifacts(
  planned: Planned,
  container: ToolchainContainer,
  logFile: string,
): Promise<Record<string, string>> {
  const { board, target, buildDir } = planned;
  const artifacts: Record<string, string> = {};
  for (const [name, rel] of Object.entries(target.artifacts)) artifacts[name] = join(buildDir, 'port', rel);
  const needed = new Set([board.firmware, ...(target.flash?.segments.map((s) => s.artifact) ?? [])]);
  for (const name of needed) {
    const rel = target.artifacts[name];
    const host = artifacts[name];
    if (rel && host) await container.copyOut(posix.join(CONTAINER_PATHS.portBuild, rel), host);
    if (!host || !existsSync(host)) {
      throw new MpError({
        code: 'ARTIFACT_MISSING',
        message: `make succeeded but board ${board.id}'s artifact "${name}" (${rel ?? 'not declared'}) is not in ${join(buildDir, 'port')}`,
        plugin: board.id,
        file: host,
        step: 'compile',
        hint: `The board plugin’s \`artifacts\` may not match this MicroPython version’s output; check the build folder and fix the plugin. Full log: ${logFile}`,
      });
    }
  }
  return artifacts;
}

function compileFailure(
  planned: Planned,
  lines: string[],
  stage: string,
  exitCode: number,
  logFile: string,
): MpError {
  const { board, project } = planned;
  // mpy-cross is made in its own folder; the port with `make -C ports/<port>`.
  const makeDir = posix.join(
    CONTAINER.micropython,
    stage === 'mpy-cross' ? 'mpy-cross' : `ports/${board.port}`,
  );
  const failure = analyzeMakeFailure(lines, mountedPaths(planned), frozenFileMap(planned), makeDir);
  const where = failure.file
    ? `${displayPath(project, failure.file)}${failure.line ? `:${failure.line}` : ''}`
    : undefined;
  const excerpt = failure.excerpt.map((l) => `  ${l}`).join('\n');
  if (failure.kind === 'freeze') {
    return new MpError({
      code: 'FREEZE_FAILED',
      message: `A frozen module did not compile${where ? ` (${where})` : ''}:\n${excerpt}`,
      file: where,
      step: 'compile',
      hint: `Fix the Python error above and build again. Full log: ${logFile}`,
    });
  }
  return new MpError({
    code: 'COMPILE_FAILED',
    message: `make failed building ${stage === 'mpy-cross' ? 'mpy-cross' : `port ${board.port}`} for board ${board.id} (exit ${exitCode})${where ? ` at ${where}` : ''}:\n${excerpt}`,
    file: where,
    plugin: board.id,
    step: 'compile',
    hint: `Read the compiler errors above; the full log is ${logFile}. A toolchain that does not fit this MicroPython version can be replaced with --image.`,
  });
}

/** Frozen target paths (`app.py`, `mqtt_as/__init__.py`) → host files, for compiler messages. */
function frozenFileMap(planned: Planned): Record<string, string> {
  const map: Record<string, string> = {};
  for (const library of planned.libraries) {
    for (const entry of library.freeze) {
      if ('module' in entry) map[entry.module] = join(library.dir, entry.base ?? '', entry.module);
    }
    for (const file of library.frozenFiles) {
      const entry = library.freeze.find(
        (e) => 'package' in e && file.startsWith(posix.join(e.base ?? '', e.package) + '/'),
      );
      if (entry) map[posix.relative(entry.base ?? '', file)] = join(library.dir, file);
    }
  }
  const { modulesDir } = planned.project.config;
  for (const module of planned.modules) for (const file of module.files) map[file] = join(modulesDir, file);
  return map;
}

/** Container paths of a build and the host folders behind them, for messages and mp dev's syntax check. */
export function mountedPaths(planned: Planned & { micropython: FetchedMicroPython }): PathMapping[] {
  return [
    { container: CONTAINER.micropython, host: planned.micropython.dir },
    { container: CONTAINER.build, host: planned.buildDir },
    { container: CONTAINER.modules, host: planned.project.config.modulesDir },
    ...planned.cModules.map((m) => ({ container: m.containerDir, host: m.hostDir })),
    ...planned.libraries.map((l) => ({ container: containerLibraryDir(l.id), host: l.dir })),
  ];
}

/** Where the mpy-cross built for a build directory sits on the host. */
export function hostMpyCrossPath(buildDir: string): string {
  return join(buildDir, 'mpy-cross', 'mpy-cross');
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
