/**
 * Housekeeping of the source cache shared by every project: the temporaries a killed fetch or
 * checkout leaves (swept by the next user), and the registrations of running builds that use the
 * cache (`registerCacheUse`), which `mp clean --all` reads before it removes anything.
 */
import { randomBytes } from 'node:crypto';
import { lstat, readdir, readFile, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/fs.ts';
import {
  currentProcess,
  isProcessAlive,
  type LockOwner,
  ownerGone,
  tryAcquireLock,
  withLock,
} from '../util/lock.ts';

/** `.tmp-<sha12>-<pid>-<rand>` (and its `.index`); before the pid was in the name, `.tmp-<sha12>-<rand>`. */
const TREE_TEMP = /^\.tmp-[0-9a-f]{12}-(?:(\d+)-)?[0-9a-f]{8}(?:\.index)?$/;
/** `.mp-submodule-<pid>-<rand>` (and its `.index`) inside a tree. */
const SUBMODULE_TEMP = /^\.mp-submodule-(?:(\d+)-)?[0-9a-f]{8}(?:\.index)?$/;
/** writeFileAtomic's `.<file>.<pid>.<rand>.tmp` (refs.json, .mp-checkout.json). */
const ATOMIC_TEMP = /^\.(?:refs\.json|mp-checkout\.json)\.(\d+)\.[0-9a-f]{8}\.tmp$/;
/**
 * A temporary a fetch writes inside a checked-out tree (a submodule being added, the checkout record
 * being replaced), by its name: never part of the sources, and gone by the time one reads it.
 */
export function isTreeTemporary(name: string): boolean {
  return treeTemporary(name) !== null;
}

/** `isTreeTemporary`'s match, with the pid that wrote it as group 1 (when its name has one). */
function treeTemporary(name: string): RegExpExecArray | null {
  return SUBMODULE_TEMP.exec(name) ?? ATOMIC_TEMP.exec(name);
}

/** Whatever its pid says, a temporary this old is abandoned (the pid may belong to another process by now). */
const ABANDONED_MS = 24 * 60 * 60 * 1000;

export interface SweptTemp {
  path: string;
  bytes: number;
}

/**
 * Removes what killed fetches and checkouts left in one repository's folder. Call with the
 * repository's lock held: every writer of these temporaries holds it, so none is being written;
 * still, only those whose process is gone (or that are a day old) go. `refs.json` is written
 * without the lock, so its temporaries also have to be a minute old.
 */
export async function sweepRepoTemps(repo: string): Promise<SweptTemp[]> {
  const removed: SweptTemp[] = [];
  for (const { path, pid, minAgeMs } of await repoTemps(repo)) {
    const info = await lstat(path).catch(() => undefined);
    if (!info) continue;
    const age = Date.now() - info.mtimeMs;
    const gone = pid === undefined || !isProcessAlive(Number(pid));
    if (!(age > ABANDONED_MS || (gone && age >= minAgeMs))) continue;
    const bytes = await sizeOf(path);
    await rm(path, { recursive: true, force: true }).then(
      () => removed.push({ path, bytes }),
      () => undefined,
    );
  }
  return removed;
}

/** A temporary in a repository's folder, by its name: the pid that wrote it, how old it must be to go. */
interface RepoTemp {
  path: string;
  pid: string | undefined;
  minAgeMs: number;
}

/** The temporaries in one repository's folder, found by their names alone (nothing is locked or removed). */
async function repoTemps(repo: string): Promise<RepoTemp[]> {
  const temps: RepoTemp[] = [];
  for (const name of await readdir(repo).catch(() => [] as string[])) {
    const m = ATOMIC_TEMP.exec(name);
    if (m) temps.push({ path: join(repo, name), pid: m[1], minAgeMs: 60_000 });
  }
  const trees = join(repo, 'trees');
  for (const entry of await readdir(trees, { withFileTypes: true }).catch(() => [])) {
    const m = TREE_TEMP.exec(entry.name);
    if (m) {
      temps.push({ path: join(trees, entry.name), pid: m[1], minAgeMs: 0 });
      continue;
    }
    if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
    const tree = join(trees, entry.name);
    for (const name of await readdir(tree).catch(() => [] as string[])) {
      const t = treeTemporary(name);
      if (t) temps.push({ path: join(tree, name), pid: t[1], minAgeMs: 0 });
    }
  }
  return temps;
}

/**
 * Removes the temporaries killed mp processes left anywhere in the source cache (half-written trees
 * with their index files, half-added submodules). Repositories another process is fetching into
 * right now are skipped (their next fetch sweeps them). For a build's start and `mp clean`.
 * A repository is locked only when its listing shows a temporary: taking and releasing each
 * lock is most of a sweep's time, and almost every sweep finds nothing.
 */
export async function sweepCacheTemps(cacheDir: string): Promise<SweptTemp[]> {
  const root = join(cacheDir, 'git');
  const removed: SweptTemp[] = [];
  for (const entry of await readdir(root, { withFileTypes: true }).catch(() => [])) {
    if (!entry.isDirectory()) continue;
    const repo = join(root, entry.name);
    if ((await repoTemps(repo)).length === 0) continue;
    const lock = await tryAcquireLock(join(repo, 'lock'));
    if ('heldBy' in lock) continue;
    try {
      removed.push(...(await sweepRepoTemps(repo)));
    } finally {
      await lock.release();
    }
  }
  return removed;
}

async function readCacheUser(file: string): Promise<CacheUser | undefined> {
  try {
    const user = JSON.parse(await readFile(file, 'utf8')) as CacheUser;
    if (typeof user.host !== 'string' || !Number.isInteger(user.pid)) return undefined;
    return { ...user, project: String(user.project ?? '?'), file };
  } catch {
    return undefined;
  }
}

function registrationGone(user: CacheUser): boolean {
  if (user.host === hostname() && user.pid === process.pid)
    return !(user.token && ownRegistrations.has(user.token));
  return ownerGone({ host: user.host, pid: user.pid, boot: user.boot });
}

async function sizeOf(path: string): Promise<number> {
  const info = await lstat(path).catch(() => undefined);
  if (!info) return 0;
  if (!info.isDirectory()) return info.size;
  let total = 0;
  for (const name of await readdir(path).catch(() => [] as string[])) total += await sizeOf(join(path, name));
  return total;
}

// ── builds that use the cache ────────────────────────────────────────────────────────────────

/** A running build that uses the cache (its checkouts may be mounted in a container right now). */
export interface CacheUser extends LockOwner {
  /** The project folder of the build. */
  project: string;
  /** Its registration file. */
  file: string;
}

/** The cache-wide lock: held while a build registers and while `mp clean --all` removes the cache. */
export function cacheLockDir(cacheDir: string): string {
  return join(cacheDir, 'lock');
}

function cacheUsersDir(cacheDir: string): string {
  return join(cacheDir, 'users');
}

/** Tokens of the registrations of this process (one with our pid and another token is a dead process's). */
const ownRegistrations = new Set<string>();

/**
 * Registers a running build as a user of the cache, until the function returned is called (call it
 * when the build is over, in `finally`). `mp clean --all` refuses to remove the cache while a live
 * registration exists, naming each build's project and pid. It is written under the cache lock: a
 * `clean --all` in progress is waited for (`onWait`), and one that starts later sees it. The
 * registration of a process that is killed counts no more once the process is gone.
 */
export async function registerCacheUse(
  cacheDir: string,
  use: { project: string; signal?: AbortSignal; onWait?: (owner: string) => void },
): Promise<() => Promise<void>> {
  const token = randomBytes(8).toString('hex');
  const file = join(cacheUsersDir(cacheDir), `${process.pid}-${token}.json`);
  const record = { ...currentProcess(), token, project: use.project };
  ownRegistrations.add(token);
  try {
    await withLock(
      cacheLockDir(cacheDir),
      // Says a live process uses the cache: nothing to keep over a power cut.
      () => writeFileAtomic(file, `${JSON.stringify(record, null, 2)}\n`, { durable: false }),
      { signal: use.signal, onWait: use.onWait },
    );
  } catch (error) {
    ownRegistrations.delete(token);
    throw error;
  }
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    await rm(file, { force: true }).catch(() => undefined);
    ownRegistrations.delete(token);
  };
}

/**
 * The live users of the cache; the registrations of processes that are gone are removed. Hold the
 * cache lock for an answer that stays true (no build registers meanwhile).
 */
export async function listCacheUsers(cacheDir: string): Promise<CacheUser[]> {
  const dir = cacheUsersDir(cacheDir);
  const users: CacheUser[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!name.endsWith('.json')) continue;
    const file = join(dir, name);
    const user = await readCacheUser(file);
    if (user && !registrationGone(user)) users.push(user);
    else await rm(file, { force: true }).catch(() => undefined);
  }
  return users;
}
