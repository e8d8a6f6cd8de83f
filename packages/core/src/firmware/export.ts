/**
 * Stage 5, Export (step `export`): the firmware and its other flash artifacts, the libraries'
 * exported files and the sidecar written into the export directory (all or nothing, see
 * export-write.ts), and the build remembered for the next up-to-date check.
 */

import { readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { describeError } from '../errors.ts';
import type { StepContext } from '../events.ts';
import { buildFolderName, hashOf, writeLastBuild } from './cache-key.ts';
import { type Compiled, sourceDateEpoch } from './compile.ts';
import { exportFileName } from './export-name.ts';
import { type ExportFile, sha256Hex, uniqueName, writeExport } from './export-write.ts';
import type { Fetched, FetchedLibrary, FetchedMicroPython } from './fetch.ts';
import { DEFAULT_FIRMWARE_CACHE_BYTES, storeFirmware } from './firmware-cache.ts';
import { shownUrl, uploadFirmware } from './remote-cache.ts';
import { displayPath } from './resolve.ts';
import {
  EXPORT_SCHEMA,
  type ExportedLibraryFile,
  type ExportedSegment,
  type ExportSidecar,
  MP_VERSION,
} from './sidecar.ts';

/** What a build answers. */
export interface BuildResult {
  /** Nothing changed since the last build: no container was started; the last export is the answer. */
  upToDate: boolean;
  /** Built before from the same inputs: exported from the firmware cache, no container started. */
  fromCache?: boolean;
  /** Which firmware cache answered: this machine's, or the remote one (`cache.remote`). */
  cacheSource?: 'local' | 'remote';
  firmware: string;
  sidecarFile: string;
  sidecar: ExportSidecar;
  logFile: string;
  durationMs: number;
}

export interface Exported extends Compiled {
  result: BuildResult;
}

export interface ExportDeps {
  step: StepContext;
  /** The clock: names the files and dates the sidecar. */
  now: () => Date;
  startedAt: number;
  logFile: string;
  /** mp's user cache: the firmware cache keeps what this build compiled. None: it is not kept. */
  cacheDir?: string;
  /** The firmware cache's bound (config `cache.maxSize`). */
  cacheMaxBytes?: number;
  /** Upload to the remote firmware cache of `cache.remote` (default true). */
  remote?: boolean;
}

export async function exportFirmware(compiled: Compiled, deps: ExportDeps): Promise<Exported> {
  const { board, project } = compiled;
  const { config } = project;
  const now = deps.now();
  const name = uniqueName(config.exportDir, exportNameFor(compiled, now));
  const { files, segments, firmwareData } = await flashFiles(compiled, name);
  const libraryFiles = [];
  for (const library of compiled.libraries) {
    for (const file of library.exports) {
      libraryFiles.push({
        name: file.as,
        data: readFileSync(join(library.dir, file.from)),
        library: library.id,
        from: file.from,
        protect: true,
      });
    }
  }
  const firmwareSha = sha256Hex(firmwareData);
  // Into the firmware cache (its own folder; it fails no build): the entry's files are written at
  // once, without fsync, and a trim it needs goes on beside the export's writes.
  const durationMs = Date.now() - deps.startedAt;
  const kept =
    !compiled.cached && deps.cacheDir
      ? keepInFirmwareCache(compiled, firmwareData, { builtAt: now.toISOString(), durationMs }, deps)
      : undefined;
  const outcome = await writeExport({
    exportDir: config.exportDir,
    stateDir: project.stateDir,
    boardId: board.id,
    files,
    libraryFiles,
    sidecar: (exportedFiles) =>
      sidecarFor(compiled, {
        name,
        now,
        segments,
        exportedFiles,
        sha256: firmwareSha,
        size: firmwareData.length,
        durationMs: Date.now() - deps.startedAt,
      }),
  }).catch(async (error: unknown) => {
    await kept; // not left running under a failed build
    throw error;
  });
  for (const file of outcome.sidecar.exportedFiles) {
    if (file.status === 'kept') {
      deps.step.logger.warn(
        `${displayPath(project, join(config.exportDir, file.file))} was edited, so it was kept; the library’s current version is in ${file.file}.new`,
      );
    }
  }
  await writeLastBuild(project.stateDir, buildFolderName(config, board.id), {
    key: compiled.cacheKey,
    firmware: outcome.firmware,
    sidecarFile: outcome.sidecarFile,
    sha256: firmwareSha,
    builtAt: outcome.sidecar.builtAt,
  });
  if (kept && (await kept)) await uploadToRemote(compiled, deps);
  const source = compiled.cached ? (compiled.cached.source ?? 'local') : undefined;
  deps.step.title(
    `Exported ${displayPath(project, outcome.firmware)}${source ? ` from the ${source === 'remote' ? 'remote ' : ''}firmware cache` : ''}`,
  );
  const result: BuildResult = {
    upToDate: false,
    fromCache: Boolean(compiled.cached),
    cacheSource: source,
    firmware: outcome.firmware,
    sidecarFile: outcome.sidecarFile,
    sidecar: outcome.sidecar,
    logFile: deps.logFile,
    durationMs: outcome.sidecar.durationMs,
  };
  return { ...compiled, result };
}

/**
 * The flash artifacts of a compiled build, into the firmware cache (a failure there fails no build).
 * True when they are there.
 */
async function keepInFirmwareCache(
  compiled: Compiled,
  firmwareData: Uint8Array,
  sidecar: Pick<ExportSidecar, 'builtAt' | 'durationMs'>,
  deps: ExportDeps,
): Promise<boolean> {
  const { board, target } = compiled;
  const names = new Set([board.firmware, ...(target.flash?.segments.map((s) => s.artifact) ?? [])]);
  // The firmware as the export read it, not read again; the other artifacts from their files.
  const artifacts = Object.fromEntries(
    [...names].map((n) => [n, n === board.firmware ? firmwareData : compiled.artifacts[n]!]),
  );
  try {
    await storeFirmware(
      deps.cacheDir!,
      compiled.firmwareKey,
      {
        artifacts,
        submodules: compiled.submodules,
        builtAt: sidecar.builtAt,
        durationMs: sidecar.durationMs,
      },
      deps.cacheMaxBytes ?? DEFAULT_FIRMWARE_CACHE_BYTES,
    );
    return true;
  } catch (error) {
    deps.step.logger.warn(
      `The firmware was not kept in mp's firmware cache (${describeError(error)}); the next build of these inputs compiles again.`,
    );
    return false;
  }
}

/**
 * The entry just kept, to the remote firmware cache (`cache.remote` with `write` on), unless its
 * lookup found the server unavailable; a failed upload is a warning.
 */
async function uploadToRemote(compiled: Compiled, deps: ExportDeps): Promise<void> {
  const remote = compiled.project.config.cache.remote;
  if (!remote?.write || compiled.remoteUnavailable || deps.remote === false) return;
  deps.step.title(`Uploading to the remote firmware cache ${shownUrl(remote.url)}`);
  const sent = await uploadFirmware(remote, deps.cacheDir!, compiled.firmwareKey);
  if (sent.warning) deps.step.logger.warn(sent.warning);
}

/** The firmware's file name in `export/` for a build finishing at `now` (before making it unique). */
export function exportNameFor(fetched: Fetched, now: Date): string {
  const mp = fetched.micropython;
  return exportFileName({
    exportPrefix: fetched.board.exportPrefix,
    micropython: {
      tag: mp.tag,
      version: mp.version,
      sha: mp.local && !mp.local.sha ? undefined : mp.sha,
      dirty: mp.local?.dirty && Boolean(mp.local.sha),
    },
    // A target's name too: two targets of one board must not differ only by a `-2`.
    fragments: [...fetched.libraries.map((l) => l.plugin.nameFragment), fetched.project.config.target ?? ''],
    date: now,
    extension: fetched.board.firmwareExtension ?? '.bin',
  });
}

/** The firmware file, and one file per other artifact the flash layout names, beside it. */
async function flashFiles(compiled: Compiled, name: string) {
  const { board, target, artifacts } = compiled;
  const extension = board.firmwareExtension ?? '.bin';
  // Read at once (under a millisecond for a megabyte in the page cache make just wrote it to):
  // node:fs/promises reads in chunks, a turn of the event loop each, 2 ms for 320 KB here.
  const firmwareData = readFileSync(artifacts[board.firmware]!);
  const files: ExportFile[] = [{ name, data: firmwareData, mode: extension === '' ? 0o755 : 0o644 }];
  const segments: ExportedSegment[] = [];
  const stem = name.endsWith(extension) && extension ? name.slice(0, -extension.length) : name;
  for (const segment of target.flash?.segments ?? []) {
    let file = name;
    let data = firmwareData;
    if (segment.artifact !== board.firmware) {
      data = readFileSync(artifacts[segment.artifact]!);
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
  return { files, segments, firmwareData };
}

interface SidecarFacts {
  name: string;
  now: Date;
  segments: ExportedSegment[];
  exportedFiles: ExportedLibraryFile[];
  sha256: string;
  size: number;
  durationMs: number;
}

/** The sidecar of an export: provenance, options and flash layout (the schema is sidecar.ts). */
function sidecarFor(compiled: Compiled, facts: SidecarFacts): ExportSidecar {
  const { board, boardListing, target, project } = compiled;
  const { config } = project;
  return {
    schema: EXPORT_SCHEMA,
    firmware: facts.name,
    board: {
      id: board.id,
      title: board.title,
      package: boardListing?.source ?? null,
      packageVersion: boardListing?.version ?? null,
      port: board.port,
      board: target.board ?? null,
      variant: target.variant ?? null,
      chip: board.chip ?? null,
      exportPrefix: board.exportPrefix,
    },
    micropython: micropythonProvenance(compiled),
    libraries: compiled.libraries.map(libraryRecord),
    modules: compiled.moduleHashes,
    image: {
      ref: compiled.image.ref,
      id: compiled.image.id,
      reason: compiled.toolchain.reason,
      override: compiled.toolchain.override,
    },
    options: {
      make: config.make,
      makeArgs: target.makeArgs ?? [],
      variant: config.variant ?? null,
      submodules: config.submodules,
      cModules: compiled.cModules.map((m) => ({ name: m.name, path: m.hostDir, sha256: m.fingerprint })),
    },
    sha256: facts.sha256,
    size: facts.size,
    flash: target.flash
      ? {
          mode: target.flash.mode,
          freq: target.flash.freq,
          size: target.flash.size,
          baud: target.flash.baud,
          segments: facts.segments,
        }
      : null,
    exportedFiles: facts.exportedFiles,
    manifestSha256: hashOf(compiled.manifest),
    cacheKey: compiled.cacheKey,
    firmwareKey: compiled.firmwareKey,
    fromCache: compiled.cached
      ? { builtAt: compiled.cached.entry.builtAt, durationMs: compiled.cached.entry.durationMs }
      : null,
    durationMs: facts.durationMs,
    builtAt: facts.now.toISOString(),
    mp: { version: MP_VERSION },
  };
}

/** Where the MicroPython tree came from (the sidecar adds its state and submodules; --dry-run shows this). */
export function micropythonRecord(mp: FetchedMicroPython): MicroPythonRecord {
  return {
    ref: mp.requested ?? null,
    tag: mp.tag ?? null,
    version: versionLabel(mp.version),
    sha: mp.sha ?? null,
    git: mp.git?.url ?? null,
    path: mp.local ? mp.dir : null,
  };
}

export type MicroPythonRecord = Omit<ExportSidecar['micropython'], 'dirty' | 'submodules'>;

/** Where a library came from and what of it is frozen. */
export function libraryRecord(l: FetchedLibrary): ExportSidecar['libraries'][number] {
  return {
    id: l.id,
    git: l.git?.url ?? null,
    path: l.local ? l.dir : null,
    ref: l.git?.ref.requested ?? null,
    sha: l.git?.ref.sha ?? l.local?.sha ?? null,
    frozen: l.frozenFiles,
  };
}

function micropythonProvenance(compiled: Compiled): ExportSidecar['micropython'] {
  const mp = compiled.micropython;
  const pinned = mp.checkout?.submodules ?? {};
  return {
    ...micropythonRecord(mp),
    dirty: mp.local?.dirty ?? false,
    sourceDateEpoch: sourceDateEpoch(mp) ?? null,
    submodules: Object.fromEntries(
      compiled.submodules.flatMap((path) => {
        const pin = pinned[path];
        return pin ? [[path, { git: pin.url, sha: pin.sha }]] : [];
      }),
    ),
  };
}

/** `1.28.0`, with `-preview` for a development version. */
function versionLabel(v: Fetched['micropython']['version']): string | null {
  return v ? `${v.major}.${v.minor}.${v.patch}${v.prerelease ? '-preview' : ''}` : null;
}
