/**
 * `mp clean`: removes what builds leave behind for a project: its build folders under
 * `.mp/build` (the next build is a cold one) and the Docker volumes copy mode made for it; with
 * `all`, also mp's user-wide cache (source clones, remote answers, device records) and every mp
 * volume. Exports, the remembered port and the records that protect edited export files stay.
 */
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { MpError } from '../errors.ts';
import type { Project } from '../project.ts';
import { connectDocker } from '../toolchain/engine.ts';
import { tryAcquireLock } from '../util/lock.ts';
import { userCacheDir } from '../util/paths.ts';

export interface CleanOptions {
  project: Project;
  /** Also the user-wide cache and every project's volumes. */
  all?: boolean;
  env?: NodeJS.ProcessEnv;
}

export interface CleanResult {
  /** What was removed, for the report: a path or `volume <name>`, with its size when known. */
  removed: Array<{ what: string; bytes?: number }>;
  /** Things that could not be checked (Docker not running), said to the user. */
  notes: string[];
}

export async function cleanProject(options: CleanOptions): Promise<CleanResult> {
  const { project } = options;
  const result: CleanResult = { removed: [], notes: [] };
  const buildRoot = join(project.stateDir, 'build');
  const boards = await readdir(buildRoot).catch(() => [] as string[]);
  // A running build holds its board's lock: take every lock first, so nothing is half removed.
  const held: Array<{ board: string; release: () => Promise<void> }> = [];
  try {
    for (const board of boards) {
      const lock = await tryAcquireLock(join(buildRoot, board, 'lock'));
      if ('heldBy' in lock) {
        throw new MpError({
          code: 'BUILD_RUNNING',
          message: `A build of ${board} is running in this project (${lock.heldBy}); nothing was removed`,
          file: join(buildRoot, board),
          hint: 'Let it finish or stop it (Ctrl-C in its terminal), then run `mp clean` again.',
        });
      }
      held.push({ board, release: lock.release });
    }
    for (const { board } of held) {
      const dir = join(buildRoot, board);
      const bytes = await treeSize(dir);
      // The lock folder goes with the rest; release() then has nothing left to remove.
      await rm(dir, { recursive: true, force: true });
      result.removed.push({ what: dir, bytes });
    }
  } finally {
    for (const { release } of held) await release().catch(() => undefined);
  }
  if (options.all) {
    const cache = userCacheDir(options.env);
    const bytes = await treeSize(cache);
    if (bytes > 0) {
      await rm(cache, { recursive: true, force: true });
      result.removed.push({ what: cache, bytes });
      result.notes.push(
        'Device records went with the cache: the next flash of each board writes the whole image once.',
      );
    }
  }
  try {
    const docker = await connectDocker();
    const filters = options.all
      ? { label: ['mp.volume'] }
      : { label: ['mp.volume', `mp.project=${project.config.projectDir}`] };
    const { Volumes } = await docker.listVolumes({ filters: JSON.stringify(filters) });
    for (const volume of Volumes ?? []) {
      await docker.getVolume(volume.Name).remove();
      result.removed.push({ what: `volume ${volume.Name}` });
    }
  } catch (error) {
    result.notes.push(
      `Docker volumes were not checked: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  return result;
}

async function treeSize(path: string): Promise<number> {
  const info = await stat(path).catch(() => undefined);
  if (!info) return 0;
  if (!info.isDirectory()) return info.size;
  let total = 0;
  for (const entry of await readdir(path).catch(() => [] as string[]))
    total += await treeSize(join(path, entry));
  return total;
}
