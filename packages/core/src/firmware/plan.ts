/**
 * Stage 3, Plan (steps `toolchain` and `manifest`): what the compile will be. From the sources
 * alone ({@link draftPlan}, all `--dry-run` and `--print-manifest` need): the toolchain image to use
 * and why, and the frozen manifest. With the image made present ({@link prepareToolchain}): the
 * build directory, the cache key, and whether the last export already is the answer
 * ({@link planBuild}), in which case compile and export are skipped and no container starts.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StepContext } from '../events.ts';
import { generateFrozenManifest } from '../manifest/frozen-manifest.ts';
import type { ToolchainImageInfo } from '../toolchain/image.ts';
import type { Toolchain } from '../toolchain/toolchain.ts';
import { cmodulesCmake } from './c-modules.ts';
import { buildFolderName, hashOf, readLastBuild } from './cache-key.ts';
import type { BuildResult } from './export.ts';
import { sha256Hex } from './export-write.ts';
import { type Fetched, libraryOrigin } from './fetch.ts';
import { type CachedFirmware, findCachedFirmware, parseByteSize } from './firmware-cache.ts';
import { CONTAINER, containerLibraryDir } from './make.ts';
import { findRemoteFirmware, shownUrl } from './remote-cache.ts';
import { displayPath } from './resolve.ts';
import { type ExportSidecar, MP_VERSION } from './sidecar.ts';

/** Which toolchain image a build uses and why: `--image` (or config `image`) always wins. */
export interface ToolchainChoice {
  /** The image to use or pull; absent when it is built from the board's Dockerfile. */
  ref?: string;
  dockerfile?: string;
  reason: string;
  override: boolean;
}

/** The plan as far as it is known without Docker. */
export interface Drafted extends Fetched {
  toolchain: ToolchainChoice;
  /** The generated FROZEN_MANIFEST. */
  manifest: string;
}

export interface Planned extends Drafted {
  image: ToolchainImageInfo;
  /** `.mp/build/<board>/<hash>`: persistent between builds, so make is incremental. */
  buildDir: string;
  /** Equal keys mean equal inputs (see cache-key.ts). */
  cacheKey: string;
  /** The inputs that decide the firmware's bytes (the cache key but for where it is exported). */
  firmwareKey: string;
  /** Nothing changed since the last export, which is the answer: compile and export are skipped. */
  upToDate?: BuildResult;
  /** Built before from the same inputs: the firmware cache's files are exported, nothing compiles. */
  cached?: CachedFirmware;
  /** The remote firmware cache did not answer or refused the token: the build uploads nothing either. */
  remoteUnavailable?: boolean;
}

export function toolchainChoice(fetched: Fetched): ToolchainChoice {
  const override = fetched.project.config.image;
  if (override)
    return { ref: override, reason: 'named by --image or the config key `image`', override: true };
  const { toolchain } = fetched.target;
  const board = fetched.board.id;
  return {
    ref: toolchain.image,
    dockerfile: toolchain.dockerfile,
    reason:
      toolchain.reason ??
      (toolchain.dockerfile ? `built from board ${board}'s Dockerfile` : `board ${board}'s toolchain`),
    override: false,
  };
}

export function draftPlan(fetched: Fetched): Drafted {
  return { ...fetched, toolchain: toolchainChoice(fetched), manifest: frozenManifest(fetched) };
}

/** The `toolchain` step: the image made present (used, pulled or built). */
export async function prepareToolchain(
  fetched: Fetched,
  { toolchain, step }: { toolchain: Toolchain; step: StepContext },
): Promise<ToolchainImageInfo> {
  const choice = toolchainChoice(fetched);
  const boardId = fetched.board.id;
  const image = await toolchain.prepare(
    choice.override
      ? { boardId, ref: choice.ref, override: true }
      : {
          boardId,
          ref: choice.ref,
          dockerfile: choice.dockerfile,
          buildArgs: fetched.target.toolchain.buildArgs,
        },
    { signal: step.signal, onLine: step.output, onProgress: step.progress, onTitle: step.title },
  );
  step.title(`Toolchain: ${image.ref} (${image.obtained}; ${choice.reason})`);
  return image;
}

export interface PlanDeps {
  step: StepContext;
  /** Build even if nothing changed (`--force`). */
  force?: boolean;
  /** For the result when the build is up to date. */
  startedAt: number;
  logFile: string;
  /** mp's user cache, whose firmware cache may answer the build; none: it is not asked. */
  cacheDir?: string;
  /** Ask the remote firmware cache of `cache.remote` on a local miss (default true). */
  remote?: boolean;
}

/** The `manifest` step: the build directory with the manifest in it, unless the last export is the answer. */
export async function planBuild(
  drafted: Drafted,
  image: ToolchainImageInfo,
  deps: PlanDeps,
): Promise<Planned> {
  const { project, board } = drafted;
  const folder = buildFolderName(project.config, board.id);
  const buildDir = join(project.stateDir, 'build', folder, buildDirKey(drafted, image));
  const planned: Planned = {
    ...drafted,
    image,
    buildDir,
    cacheKey: cacheKey(drafted, image),
    firmwareKey: firmwareKey(drafted, image),
  };
  const upToDate = deps.force ? undefined : await lastExportIfCurrent(planned, deps);
  if (upToDate) {
    deps.step.title(`Up to date: ${displayPath(project, upToDate.firmware)}`);
    return { ...planned, upToDate };
  }
  const found =
    deps.force || !deps.cacheDir
      ? {}
      : await findFirmware(planned, deps.cacheDir, deps.step, deps.remote !== false);
  if (found.cached) {
    const which = found.cached.source === 'remote' ? 'the remote firmware cache' : 'the firmware cache';
    deps.step.title(`From ${which}: built ${found.cached.entry.builtAt} from the same inputs`);
    return { ...planned, cached: found.cached };
  }
  if (found.remoteUnavailable) planned.remoteUnavailable = true;
  const file = join(buildDir, 'manifest.py');
  await mkdir(buildDir, { recursive: true });
  // Rewritten only when it changes, so make sees an unchanged manifest as unchanged.
  await writeIfChanged(file, drafted.manifest);
  if (drafted.cModules.length)
    await writeIfChanged(join(buildDir, 'cmodules.cmake'), cmodulesCmake(drafted.cModules));
  deps.step.title(`Frozen manifest: ${displayPath(project, file)}`);
  return planned;
}

/**
 * This machine's firmware cache, then (on a miss) the remote one of `cache.remote`, whose hit is kept
 * here too. A remote that fails warns and the build goes on; one that did not answer or refused the
 * token is not sent the upload either.
 */
async function findFirmware(
  planned: Planned,
  cacheDir: string,
  step: StepContext,
  askRemote: boolean,
): Promise<{ cached?: CachedFirmware; remoteUnavailable?: boolean }> {
  const local = await findCachedFirmware(cacheDir, planned.firmwareKey);
  const { cache } = planned.project.config;
  if (local || !cache.remote || !askRemote) return { cached: local };
  step.title(`Asking the remote firmware cache ${shownUrl(cache.remote.url)}`);
  const found = await findRemoteFirmware(
    cache.remote,
    cacheDir,
    planned.firmwareKey,
    parseByteSize(cache.maxSize),
  );
  if (found.kind !== 'hit' && found.warning) step.logger.warn(found.warning);
  if (found.kind === 'hit') return { cached: found.cached };
  return { remoteUnavailable: found.kind === 'unavailable' };
}

async function writeIfChanged(file: string, text: string): Promise<void> {
  if ((await readFile(file, 'utf8').catch(() => undefined)) !== text) await writeFile(file, text);
}

/** The last export, when it was built from the same inputs and is still there, intact. */
async function lastExportIfCurrent(planned: Planned, deps: PlanDeps): Promise<BuildResult | undefined> {
  const { project } = planned;
  const last = await readLastBuild(project.stateDir, buildFolderName(project.config, planned.board.id));
  if (!last || last.key !== planned.cacheKey || !existsSync(last.firmware) || !existsSync(last.sidecarFile))
    return undefined;
  if (sha256Hex(await readFile(last.firmware)) !== last.sha256) return undefined;
  let sidecar: ExportSidecar;
  try {
    sidecar = JSON.parse(await readFile(last.sidecarFile, 'utf8')) as ExportSidecar;
  } catch {
    return undefined; // torn (a power cut) or edited by hand: exported again
  }
  return {
    upToDate: true,
    firmware: last.firmware,
    sidecarFile: last.sidecarFile,
    sidecar,
    logFile: deps.logFile,
    durationMs: Date.now() - deps.startedAt,
  };
}

export function frozenManifest(fetched: Fetched): string {
  const { config } = fetched.project;
  return generateFrozenManifest({
    boardId: fetched.board.id,
    defaultManifest: fetched.target.defaultManifest,
    libraries: fetched.libraries.map((l) => ({
      id: l.id,
      origin: libraryOrigin(l, l.dir),
      containerDir: containerLibraryDir(l.id),
      freeze: l.freeze,
    })),
    modules: fetched.modules.length
      ? { containerDir: CONTAINER.modules, hostDir: config.modulesDir, entries: fetched.modules }
      : undefined,
  });
}

/** What decides the build directory: change any of it and make must start from scratch. */
function buildDirKey(fetched: Fetched, image: ToolchainImageInfo): string {
  const mp = fetched.micropython;
  const t = fetched.target;
  return hashOf({
    micropython: mp.sha && !mp.local ? mp.sha : mp.dir,
    image: image.id,
    port: fetched.board.port,
    board: t.board,
    variant: t.variant,
    makeArgs: t.makeArgs ?? [],
    submodules: fetched.project.config.submodules,
    toolchain: {
      env: t.toolchain.env,
      shellPrelude: t.toolchain.shellPrelude,
      runAsHostUser: t.toolchain.runAsHostUser,
    },
  }).slice(0, 12);
}

function cacheKey(drafted: Drafted, image: ToolchainImageInfo): string {
  return hashOf(cacheInputs(drafted, image));
}

/**
 * The firmware cache's key: every input of the cache key but the export directory, which only
 * says where the files go, so another project building the same inputs finds them too.
 */
export function firmwareKey(drafted: Drafted, image: ToolchainImageInfo): string {
  const { exportDir: _where, ...inputs } = cacheInputs(drafted, image);
  // The manifest's comments name host folders; what it freezes is in its other lines.
  const manifest = drafted.manifest
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('#'))
    .join('\n');
  return hashOf({ firmware: 1, ...inputs, manifest: hashOf(manifest) });
}

function cacheInputs(drafted: Drafted, image: ToolchainImageInfo) {
  const { board, boardListing, micropython: mp, project } = drafted;
  return {
    // 2: builds are dated by SOURCE_DATE_EPOCH; firmware of format 1 carried the build day.
    format: 2,
    mp: MP_VERSION,
    board: {
      id: board.id,
      package: boardListing?.source,
      version: boardListing?.version,
      port: board.port,
      exportPrefix: board.exportPrefix,
      firmware: board.firmware,
      firmwareExtension: board.firmwareExtension,
      mpyCross: board.mpyCross,
      chip: board.chip,
      target: drafted.target,
    },
    micropython: mp.local
      ? { path: mp.dir, fingerprint: mp.local.fingerprint }
      : { url: mp.git.url, sha: mp.sha, tag: mp.tag },
    libraries: drafted.libraries.map((l) => ({
      id: l.id,
      package: l.listing?.source,
      version: l.listing?.version,
      source: l.git ? { url: l.git.url, sha: l.git.ref.sha } : { path: l.dir },
      fingerprint: l.fingerprint,
      freeze: l.freeze,
      exports: l.exports,
      nameFragment: l.plugin.nameFragment,
    })),
    modules: drafted.moduleHashes,
    submodules: project.config.submodules,
    cModules: drafted.cModules.map((m) => ({ name: m.name, fingerprint: m.fingerprint })),
    manifest: hashOf(drafted.manifest),
    image: image.id,
    exportDir: project.config.exportDir,
  };
}
