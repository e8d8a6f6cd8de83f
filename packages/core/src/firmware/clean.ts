/**
 * `mp clean`: removes what builds leave behind for a project: its build folders under
 * `.mp/build` (the next build is a cold one) and the Docker volumes copy mode made for it; with
 * `all`, also mp's user-wide cache (source clones, remote answers, device records, the firmware
 * cache) and every mp volume made from it; toolchain containers left warm under a lease (of the
 * project, or with `all` every one whose sources come from that cache) are removed first. Another
 * cache's containers and volumes on the same engine (another user's, a concurrent test's) stay, as
 * do exports, the remembered port and the records that protect edited export files.
 * Temporaries that killed builds left (in export/ and in the cache) go too.
 *
 * Nothing a running build uses is removed, and nothing at all is removed when one is in the way:
 *   - a build of this project holds its board's lock: every board lock is taken first, and a held
 *     one refuses (BUILD_RUNNING);
 *   - with `all`, the cache lock is taken (no build registers meanwhile), then a live registration
 *     of any project's build (registerCacheUse) refuses (CACHE_IN_USE, naming its project and
 *     pid), and so does a repository lock held by a fetch. The cache is then removed under those
 *     locks, each lock folder last, by releasing it.
 */
import { existsSync } from 'node:fs';
import { lstat, readdir, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { MpError } from '../errors.ts';
import type { Project } from '../project.ts';
import { cacheLockDir, listCacheUsers, sweepCacheTemps } from '../sources/cache-housekeeping.ts';
import { dockerToolchain } from '../toolchain/docker.ts';
import type { Toolchain } from '../toolchain/toolchain.ts';
import { describeOwner, tryAcquireLock } from '../util/lock.ts';
import { userCacheDir } from '../util/paths.ts';
import { sweepExportTemps } from './export-write.ts';
import { stopContainers } from './stop.ts';

export interface CleanOptions {
  project: Project;
  /** Also the user-wide cache and every project's volumes. */
  all?: boolean;
  env?: NodeJS.ProcessEnv;
  /** Where the volumes are; default the Docker engine of `env`. */
  toolchain?: Toolchain;
}

export interface CleanResult {
  /** What was removed, for the report: a path or `volume <name>`, with its size when known. */
  removed: Array<{ what: string; bytes?: number }>;
  /** Things that could not be checked (Docker not running), said to the user. */
  notes: string[];
}

/** How long clean waits for the cache lock (a build registering holds it for milliseconds). */
const CACHE_LOCK_WAIT_MS = 5000;

export async function cleanProject(options: CleanOptions): Promise<CleanResult> {
  const { project } = options;
  const result: CleanResult = { removed: [], notes: [] };
  const buildRoot = join(project.stateDir, 'build');
  const cacheDir = userCacheDir(options.env);
  const held: Array<() => Promise<void>> = [];
  let boards: string[] = [];
  let cache: HeldCache | undefined;
  try {
    boards = await holdBoards(buildRoot, held);
    if (options.all) cache = await holdCache(cacheDir, held);

    // Containers builds left warm under a lease go first: they mount the folders and volumes below.
    const stopped = await stopContainers({ ...options, cacheDir: options.all ? cacheDir : undefined });
    for (const id of stopped.stopped) result.removed.push({ what: `container ${id.slice(0, 12)}` });
    result.notes.push(...stopped.notes);

    for (const board of boards) {
      const dir = join(buildRoot, board);
      const bytes = await treeSize(dir);
      // The lock stays until released below: a build waiting for it must not find it gone.
      await removeContents(dir, ['lock']);
      result.removed.push({ what: dir, bytes });
    }
    for (const temp of await sweepExportTemps(project.config.exportDir))
      result.removed.push({ what: temp.path, bytes: temp.bytes });
    if (cache) {
      const bytes = await treeSize(cacheDir);
      await removeCache(cache);
      if (bytes > 0) {
        result.removed.push({ what: cacheDir, bytes });
        result.notes.push(
          'Device records went with the cache: the next flash of each board writes the whole image once.',
        );
      }
    } else {
      for (const temp of await sweepCacheTemps(cacheDir))
        result.removed.push({ what: temp.path, bytes: temp.bytes });
    }
  } finally {
    for (const release of held.reverse()) await release().catch(() => undefined);
  }
  // Released: the lock folders are gone unless a build took a lock meanwhile (then its folder stays).
  for (const board of boards) await rmdir(join(buildRoot, board)).catch(() => undefined);
  if (cache) {
    for (const repo of cache.repos) await rmdir(repo).catch(() => undefined);
    await rmdir(join(cacheDir, 'git')).catch(() => undefined);
    await rmdir(cacheDir).catch(() => undefined);
  }

  await removeVolumes(options, result);
  return result;
}

/** Takes the lock of every board folder of the project; a build holding one refuses the whole clean. */
async function holdBoards(buildRoot: string, held: Array<() => Promise<void>>): Promise<string[]> {
  const entries = await readdir(buildRoot, { withFileTypes: true }).catch(() => []);
  const boards = entries.filter((e) => e.isDirectory()).map((e) => e.name);
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
    held.push(lock.release);
  }
  return boards;
}

interface HeldCache {
  dir: string;
  /** Repository folders under `git/` whose locks are held. */
  repos: string[];
}

/**
 * Takes the cache lock and every repository lock; refuses while a build of any project uses the
 * cache (a live registration) or fetches into it (a repository lock).
 */
async function holdCache(cacheDir: string, held: Array<() => Promise<void>>): Promise<HeldCache | undefined> {
  if (!existsSync(cacheDir)) return undefined;
  const deadline = Date.now() + CACHE_LOCK_WAIT_MS;
  let lock = await tryAcquireLock(cacheLockDir(cacheDir));
  while ('heldBy' in lock && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    lock = await tryAcquireLock(cacheLockDir(cacheDir));
  }
  if ('heldBy' in lock) {
    throw new MpError({
      code: 'CACHE_IN_USE',
      message: `mp's cache ${cacheDir} is locked by ${lock.heldBy}; nothing was removed`,
      file: cacheDir,
      hint: 'Another `mp clean --all`, or a build starting, holds it: let it finish, then run `mp clean --all` again.',
    });
  }
  held.push(lock.release);

  const users = await listCacheUsers(cacheDir);
  if (users.length) {
    throw cacheInUse(
      cacheDir,
      users.map((u) => `a build of ${u.project} (${describeOwner(u)})`),
      `If one of those pids is no mp build (a crashed build's pid taken by another program), remove its file in ${join(cacheDir, 'users')}.`,
    );
  }
  const repos: string[] = [];
  const root = join(cacheDir, 'git');
  for (const entry of await readdir(root, { withFileTypes: true }).catch(() => [])) {
    if (!entry.isDirectory()) continue;
    const repo = join(root, entry.name);
    const repoLock = await tryAcquireLock(join(repo, 'lock'));
    if ('heldBy' in repoLock) throw cacheInUse(cacheDir, [`a fetch into ${repo} (${repoLock.heldBy})`]);
    held.push(repoLock.release);
    repos.push(repo);
  }
  return { dir: cacheDir, repos };
}

function cacheInUse(cacheDir: string, users: string[], more?: string): MpError {
  return new MpError({
    code: 'CACHE_IN_USE',
    message: `mp's cache ${cacheDir} is in use, so nothing was removed:\n${users.map((u) => `  - ${u}`).join('\n')}`,
    file: cacheDir,
    hint: `Let those builds finish or stop them (Ctrl-C in their terminals), then run \`mp clean --all\` again. \`mp clean\` without --all cleans only this project and is safe meanwhile.${more ? ` ${more}` : ''}`,
  });
}

/** Everything in the cache but the lock folders, which go when released (after this). */
async function removeCache(cache: HeldCache): Promise<void> {
  for (const repo of cache.repos) await removeContents(repo, ['lock']);
  // A repository that appeared after the locks were taken is not ours to remove.
  await removeContents(cache.dir, ['lock', 'git']);
}

/** Removes what is in `dir` except the names in `keep`. */
async function removeContents(dir: string, keep: string[]): Promise<void> {
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (keep.includes(name)) continue;
    const path = join(dir, name);
    try {
      await rm(path, { recursive: true, force: true, maxRetries: 3 });
    } catch (error) {
      throw new MpError({
        code: 'CLEAN_FAILED',
        message: `Could not remove ${path}: ${error instanceof Error ? error.message : String(error)}`,
        file: path,
        hint: 'Check that no other program (an editor, a file manager, a container) has files open there and that you may delete it, then run `mp clean` again.',
        cause: error,
      });
    }
  }
}

async function removeVolumes(options: CleanOptions, result: CleanResult): Promise<void> {
  const toolchain = options.toolchain ?? dockerToolchain({ env: options.env });
  const { removed, notes } = await toolchain.removeVolumes(
    options.all ? { cache: userCacheDir(options.env) } : { project: options.project.config.projectDir },
  );
  for (const name of removed) result.removed.push({ what: `volume ${name}` });
  result.notes.push(...notes);
}

async function treeSize(path: string): Promise<number> {
  const info = await lstat(path).catch(() => undefined);
  if (!info) return 0;
  if (!info.isDirectory()) return info.size;
  let total = 0;
  for (const entry of await readdir(path).catch(() => [] as string[]))
    total += await treeSize(join(path, entry));
  return total;
}
