/**
 * A cross-process lock: a folder of tickets, one per process that holds or is taking the lock.
 *
 *   <lock>/<n>                  a ticket: JSON { token, host, pid, command, since, boot }. It appears
 *                               complete: written to a temporary file, then hard-linked to the
 *                               number `n`, which fails if the number is taken.
 *   <lock>/.tmp-<pid>-<rand>    a ticket being written
 *
 * A ticket is free when its process is gone (same host, no such pid, or the machine rebooted since),
 * when it cannot be read (and is not brand new), or when it is an owner file of the earlier format
 * whose process is gone. To take the lock: when every ticket is free, create the next number;
 * then look again: the lock is ours if every *other* ticket is still free, else withdraw and wait.
 * A ticket is removed only by its owner, or once free, so of two processes that look after creating
 * theirs, the later one always sees the earlier: there is never a second holder, however many
 * waiters judged the same dead owner gone at once. A process killed at any moment leaves at worst a
 * ticket of a dead pid (free) or a temporary file (removed by the next holder).
 *
 * Release removes only our own ticket (a lock folder removed and taken by another meanwhile is left
 * alone), then the folder if it is empty. Owners on other hosts (a shared network folder) cannot be
 * checked, so they are waited for until they release.
 */
import { randomBytes } from 'node:crypto';
// Synchronous file calls: a lock taken with nobody in the way is some ten of them on tiny files, a
// few microseconds each, where each promise of node:fs/promises waits a turn of the thread pool and
// the event loop (100–200 µs here): a millisecond or two per build, which holds two locks.
import {
  linkSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { basename, extname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CancelledError, MpError } from '../errors.ts';
import { statQuietly } from './fs.ts';
import { sha256Hex } from './hash.ts';

export interface LockOptions {
  signal?: AbortSignal;
  /** Called once when the lock is busy, so the UI can say what it waits for (`mp build, pid 123`). */
  onWait?: (owner: string) => void;
  pollMs?: number;
}

/** Who holds (or held) a lock, as written in its ticket. */
export interface LockOwner {
  host: string;
  pid: number;
  /** `mp build --cwd …`, for messages. */
  command?: string;
  /** ISO time the ticket was written. */
  since?: string;
  token?: string;
  /** The machine's boot id (Linux): a ticket from before a reboot is free whatever its pid. */
  boot?: string;
}

const HOST = hostname();
const BOOT = readBootId();
const TICKET = /^[1-9]\d*$/;
const LEGACY_OWNER = 'owner';
const TEMP = /^\.tmp-(\d+)-[0-9a-f]+$/;
/** An unreadable ticket younger than this may be one being written (file systems without hard links). */
const UNREADABLE_GRACE_MS = 5000;

/** Tokens of this process's tickets: a ticket with our pid and another token is from a dead process that had our pid. */
const ownTokens = new Set<string>();

function readBootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/** True when a process with this pid exists on this machine (EPERM: it does, it is someone else's). */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** A short tag of this machine's name, for temporary file names in folders several machines share. */
export function hostTag(host: string = HOST): string {
  return sha256Hex(host).slice(0, 8);
}

/** This process as a lock owner or a cache user: host, pid, command line, boot id. */
export function currentProcess(): LockOwner {
  return {
    host: HOST,
    pid: process.pid,
    command: commandLine(),
    since: new Date().toISOString(),
    boot: BOOT,
  };
}

/** Whether the process of an owner record is gone for sure (never for another host: it cannot be checked). */
export function ownerGone(owner: Pick<LockOwner, 'host' | 'pid' | 'boot' | 'token'>): boolean {
  if (owner.host !== HOST) return false;
  if (BOOT && owner.boot && owner.boot !== BOOT) return true;
  if (owner.pid === process.pid) return !(owner.token && ownTokens.has(owner.token));
  return !isProcessAlive(owner.pid);
}

/** `mp build, pid 123` (and `on <host>` for another machine): what a waiting message names. */
export function describeOwner(owner: LockOwner | undefined): string {
  if (!owner) return 'another mp process';
  const where = owner.host === HOST ? '' : ` on ${owner.host}`;
  return `${owner.command ? `${owner.command}, ` : ''}pid ${owner.pid}${where}`;
}

function commandLine(): string {
  const script = process.argv[1] ? basename(process.argv[1], extname(process.argv[1])) : 'node';
  const text = [script, ...process.argv.slice(2)].join(' ');
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

export async function withLock<T>(
  lockDir: string,
  work: () => Promise<T>,
  options: LockOptions = {},
): Promise<T> {
  const release = await acquireLock(lockDir, options);
  try {
    return await work();
  } finally {
    await release();
  }
}

/** Waits until the lock is ours; the function returned releases it (calling it again does nothing). */
export async function acquireLock(lockDir: string, options: LockOptions = {}): Promise<() => Promise<void>> {
  const token = randomBytes(8).toString('hex');
  ownTokens.add(token);
  let told = false;
  let quickRetries = 0;
  try {
    for (;;) {
      if (options.signal?.aborted) throw new CancelledError('waiting for a lock');
      const attempt = attemptLock(lockDir, token);
      if (attempt.kind === 'held') return releaser(lockDir, attempt.ticket, token);
      if (attempt.kind === 'retry' && quickRetries++ < 5) continue;
      quickRetries = 0;
      if (attempt.kind === 'busy' && !told) {
        told = true;
        options.onWait?.(describeOwner(attempt.owner));
      }
      const pollMs = options.pollMs ?? 100;
      // Jitter: two processes that withdrew because of each other do not meet again.
      await sleep(pollMs * (0.5 + Math.random()), undefined, { signal: options.signal }).catch(() => {
        throw new CancelledError('waiting for a lock');
      });
    }
  } catch (error) {
    ownTokens.delete(token);
    throw error;
  }
}

/** Takes the lock if it is free (or its owner is gone); otherwise says who holds it, without waiting. */
export async function tryAcquireLock(
  lockDir: string,
): Promise<{ release: () => Promise<void> } | { heldBy: string }> {
  const token = randomBytes(8).toString('hex');
  ownTokens.add(token);
  try {
    let owner: LockOwner | undefined;
    for (let i = 0; i < 20; i++) {
      const attempt = attemptLock(lockDir, token);
      if (attempt.kind === 'held') return { release: releaser(lockDir, attempt.ticket, token) };
      if (attempt.kind === 'busy') {
        ownTokens.delete(token);
        return { heldBy: describeOwner(attempt.owner) };
      }
      owner = attempt.owner;
      await sleep(1 + Math.random() * 4);
    }
    ownTokens.delete(token);
    return { heldBy: describeOwner(owner) };
  } catch (error) {
    ownTokens.delete(token);
    throw error;
  }
}

type Attempt =
  | { kind: 'held'; ticket: string }
  /** Someone holds it (or is taking it): wait. */
  | { kind: 'busy'; owner?: LockOwner }
  /** The folder changed under us: look again. */
  | { kind: 'retry'; owner?: LockOwner };

interface TicketState {
  name: string;
  n: number;
  owner?: LockOwner;
  free: boolean;
}

function attemptLock(lockDir: string, token: string): Attempt {
  const before = survey(lockDir);
  if (!before) {
    try {
      mkdirSync(lockDir, { recursive: true });
    } catch (error) {
      // ENOENT: a release removed the folder while mkdir was checking it; look again.
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'EEXIST') throw lockFailed(lockDir, error);
    }
    return { kind: 'retry' };
  }
  const busy = before.tickets.find((t) => !t.free);
  if (busy) return { kind: 'busy', owner: busy.owner };
  const name = String(Math.max(0, ...before.tickets.map((t) => t.n)) + 1);
  const ticket = join(lockDir, name);
  if (!createTicket(lockDir, ticket, token)) return { kind: 'retry' };

  const after = survey(lockDir);
  const mine = after?.tickets.find((t) => t.name === name);
  const rival = after?.tickets.find((t) => t.name !== name && !t.free);
  if (!after || mine?.owner?.token !== token || rival) {
    withdraw(ticket, token);
    return rival ? { kind: 'busy', owner: rival.owner } : { kind: 'retry' };
  }
  // Ours. What is free can go (it stays free: removing it changes nothing for anyone).
  for (const t of after.tickets) if (t !== mine) unlinkQuietly(join(lockDir, t.name));
  for (const temp of after.temps) if (!isProcessAlive(temp.pid)) unlinkQuietly(join(lockDir, temp.name));
  return { kind: 'held', ticket };
}

/** The tickets in the lock folder and whether each is free; undefined if there is no folder. */
function survey(
  lockDir: string,
): { tickets: TicketState[]; temps: Array<{ name: string; pid: number }> } | undefined {
  let names: string[];
  try {
    names = readdirSync(lockDir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw lockFailed(lockDir, error);
  }
  const tickets: TicketState[] = [];
  const temps: Array<{ name: string; pid: number }> = [];
  for (const name of names) {
    const temp = TEMP.exec(name);
    if (temp) {
      temps.push({ name, pid: Number(temp[1]) });
      continue;
    }
    const legacy = name === LEGACY_OWNER;
    if (!legacy && !TICKET.test(name)) continue;
    const path = join(lockDir, name);
    const text = readText(path);
    if (text === undefined) continue; // removed meanwhile
    const owner = legacy ? parseLegacyOwner(text) : parseTicket(text);
    let free: boolean;
    if (owner) free = ownerGone(owner);
    else {
      // Unreadable: a crash while writing a legacy owner file or a ticket without hard links. Free
      // once old enough; until then it may be one being written.
      const info = statQuietly(path);
      free = !info || Date.now() - info.mtimeMs > UNREADABLE_GRACE_MS;
    }
    tickets.push({ name, n: legacy ? 0 : Number(name), owner, free });
  }
  return { tickets, temps };
}

function parseTicket(text: string): LockOwner | undefined {
  try {
    const owner = JSON.parse(text) as LockOwner;
    return typeof owner.host === 'string' && Number.isInteger(owner.pid) ? owner : undefined;
  } catch {
    return undefined;
  }
}

/** `<host> <pid>`: what mp wrote before tickets. */
function parseLegacyOwner(text: string): LockOwner | undefined {
  const [host, pid] = text.trim().split(' ');
  return host && pid && /^\d+$/.test(pid) ? { host, pid: Number(pid) } : undefined;
}

/** Creates `ticket` complete, only if no such ticket exists; false if it does (or the folder went). */
function createTicket(lockDir: string, ticket: string, token: string): boolean {
  const content = JSON.stringify({ ...currentProcess(), token });
  const temp = join(lockDir, `.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    writeFileSync(temp, content, { flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw lockFailed(lockDir, error);
  }
  try {
    linkSync(temp, ticket);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOENT') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS')
      throw lockFailed(lockDir, error);
    // No hard links here (FAT, some network shares): create exclusively and write. A crash in
    // between leaves an unreadable ticket, free after UNREADABLE_GRACE_MS.
    try {
      writeFileSync(ticket, content, { flag: 'wx' });
      return true;
    } catch (fallbackError) {
      const fallbackCode = (fallbackError as NodeJS.ErrnoException).code;
      if (fallbackCode === 'EEXIST' || fallbackCode === 'ENOENT') return false;
      throw lockFailed(lockDir, fallbackError);
    }
  } finally {
    unlinkQuietly(temp);
  }
}

/** Removes our ticket, if it is still ours. */
function withdraw(ticket: string, token: string): void {
  const owner = parseTicket(readText(ticket) ?? '');
  if (owner?.token === token) unlinkQuietly(ticket);
}

/** A ticket's text; undefined when it is gone (removed meanwhile), '' when it cannot be read. */
function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? undefined : '';
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Gone already, or not ours to remove: either way nothing to do.
  }
}

function releaser(lockDir: string, ticket: string, token: string): () => Promise<void> {
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    try {
      withdraw(ticket, token);
      // Only if empty: a waiter's ticket or temporary file keeps it.
      try {
        rmdirSync(lockDir);
      } catch {
        // Not empty, or gone.
      }
    } finally {
      ownTokens.delete(token);
    }
  };
}

function lockFailed(lockDir: string, error: unknown): MpError {
  const code = (error as NodeJS.ErrnoException).code;
  return new MpError({
    code: 'LOCK_FAILED',
    message: `Could not use the lock ${lockDir}: ${error instanceof Error ? error.message : String(error)}`,
    file: lockDir,
    hint:
      code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
        ? 'mp may not write there: fix the folder’s permissions (or point MP_CACHE_DIR elsewhere for the cache).'
        : code === 'ENOTDIR'
          ? 'Something that is not a folder is in the way: remove it and try again.'
          : 'Check the disk (full, or a network folder gone away) and try again.',
    cause: error,
  });
}
