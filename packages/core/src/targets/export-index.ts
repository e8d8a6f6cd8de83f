/**
 * `export/index.json`: every target's newest firmware and sidecar, for CI jobs and people who pick
 * a file per target without reading names. Updated after each target (built or up to date) under
 * the project's export lock, and written atomically, so targets finishing together (in this
 * process or another) never lose each other's entries. Targets no longer in the config drop out.
 *
 * @example
 * { "schema": "mp.targets/1", "updatedAt": "2026-11-21T23:33:12.000Z",
 *   "targets": { "d1mini": { "board": "esp8266-d1mini", "variant": null,
 *     "firmware": "ESP8266-micropython-v1.28.0-mqtt-as-d1mini-20261121-233312.bin",
 *     "sidecar": "ESP8266-micropython-v1.28.0-mqtt-as-d1mini-20261121-233312.bin.json",
 *     "sha256": "…", "size": 634880, "micropython": "v1.28.0", "builtAt": "2026-11-21T23:33:12.000Z" } } }
 */
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { BuildResult } from '../firmware/export.ts';
import type { Project } from '../project.ts';
import { writeFileAtomic } from '../util/fs.ts';
import { type LockOptions, withLock } from '../util/lock.ts';

export const TARGETS_INDEX_SCHEMA = 'mp.targets/1';

export interface TargetsIndexEntry {
  board: string;
  variant: string | null;
  /** File names in the export folder (beside index.json). */
  firmware: string;
  sidecar: string;
  sha256: string;
  size: number;
  /** The tag, else the version, else the commit built. */
  micropython: string | null;
  builtAt: string;
}

export interface TargetsIndex {
  schema: typeof TARGETS_INDEX_SCHEMA;
  updatedAt: string;
  targets: Record<string, TargetsIndexEntry>;
}

export function targetsIndexFile(project: Project): string {
  return join(project.config.exportDir, 'index.json');
}

/**
 * One lock for writing into the project's export folder, held by a target's export and by index
 * updates: a firmware name is chosen free (`uniqueName`) and taken in one go, and the records of
 * protected files are read and written by one writer at a time.
 */
export function exportLockDir(project: Project): string {
  return join(project.stateDir, 'export.lock');
}

export function withExportLock<T>(
  project: Project,
  work: () => Promise<T>,
  options?: LockOptions,
): Promise<T> {
  return withLock(exportLockDir(project), work, options);
}

export async function readTargetsIndex(project: Project): Promise<TargetsIndex | undefined> {
  try {
    const index = JSON.parse(await readFile(targetsIndexFile(project), 'utf8')) as TargetsIndex;
    return index.schema === TARGETS_INDEX_SCHEMA ? index : undefined;
  } catch {
    return undefined;
  }
}

export function indexEntry(result: BuildResult): TargetsIndexEntry {
  const { sidecar } = result;
  const mp = sidecar.micropython;
  return {
    board: sidecar.board.id,
    variant: sidecar.board.variant,
    firmware: basename(result.firmware),
    sidecar: basename(result.sidecarFile),
    sha256: sidecar.sha256,
    size: sidecar.size,
    micropython: mp.tag ?? mp.version ?? mp.sha,
    builtAt: sidecar.builtAt,
  };
}

/** Puts a target's newest export into the index (read, changed and written under the export lock). */
export async function recordTarget(
  project: Project,
  target: string,
  entry: TargetsIndexEntry,
  options: { now?: () => Date; signal?: AbortSignal } = {},
): Promise<string> {
  const file = targetsIndexFile(project);
  const known = new Set(project.config.targets.map((t) => t.name));
  await withExportLock(
    project,
    async () => {
      const before = (await readTargetsIndex(project))?.targets ?? {};
      const targets: Record<string, TargetsIndexEntry> = {};
      for (const [name, old] of Object.entries(before)) if (known.has(name)) targets[name] = old;
      targets[target] = entry;
      const index: TargetsIndex = {
        schema: TARGETS_INDEX_SCHEMA,
        updatedAt: (options.now?.() ?? new Date()).toISOString(),
        // In config order, so the file reads like the config.
        targets: Object.fromEntries(
          [...known, ...Object.keys(targets)]
            .filter((name, i, all) => targets[name] && all.indexOf(name) === i)
            .map((name) => [name, targets[name]!]),
        ),
      };
      await writeFileAtomic(file, `${JSON.stringify(index, null, 2)}\n`);
    },
    { signal: options.signal },
  );
  return file;
}
