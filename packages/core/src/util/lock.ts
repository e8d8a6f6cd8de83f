/**
 * A cross-process lock made of a directory (mkdir is atomic everywhere, including network
 * filesystems). The owner's pid is written inside so a lock left by a crashed process is taken
 * over instead of blocking forever.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CancelledError } from '../errors.ts';

export interface LockOptions {
  signal?: AbortSignal;
  /** Called once when the lock is busy, so the UI can say what it waits for. */
  onWait?: (owner: string) => void;
  pollMs?: number;
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

export async function acquireLock(lockDir: string, options: LockOptions = {}): Promise<() => Promise<void>> {
  let told = false;
  for (;;) {
    if (options.signal?.aborted) throw new CancelledError('waiting for a lock');
    try {
      await mkdir(lockDir, { recursive: false });
      await writeFile(join(lockDir, 'owner'), `${hostname()} ${process.pid}\n`);
      return async () => {
        await rm(lockDir, { recursive: true, force: true });
      };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        await mkdir(join(lockDir, '..'), { recursive: true });
        continue;
      }
      if (code !== 'EEXIST') throw error;
    }
    const owner = await readFile(join(lockDir, 'owner'), 'utf8').catch(() => '');
    if (owner && isStale(owner)) {
      await rm(lockDir, { recursive: true, force: true });
      continue;
    }
    if (!told) {
      told = true;
      options.onWait?.(owner.trim() || 'another mp process');
    }
    await sleep(options.pollMs ?? 100);
  }
}

/** A lock is stale when its owner ran on this host and that process is gone. */
function isStale(owner: string): boolean {
  const [host, pidText] = owner.trim().split(' ');
  const pid = Number(pidText);
  if (host !== hostname() || !Number.isInteger(pid)) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** Takes the lock if it is free (or stale); otherwise says who holds it, without waiting. */
export async function tryAcquireLock(
  lockDir: string,
): Promise<{ release: () => Promise<void> } | { heldBy: string }> {
  const giveUp = new AbortController();
  let heldBy = '';
  try {
    const release = await acquireLock(lockDir, {
      signal: giveUp.signal,
      onWait: (owner) => {
        heldBy = owner;
        giveUp.abort();
      },
      pollMs: 1,
    });
    return { release };
  } catch (error) {
    if (heldBy) return { heldBy };
    throw error;
  }
}
