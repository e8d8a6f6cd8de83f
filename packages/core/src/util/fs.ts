import { randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, type Stats, statSync, writeFileSync } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Writes a file so readers see either the old content or the whole new one, never half:
 * write a temporary sibling, fsync, rename over. On failure (disk full) the temporary file is
 * removed and the original is untouched. `durable: false` leaves out the fsync (a millisecond
 * here, often ten on a laptop's disk) for records that only save work or say who is alive: after
 * a power cut such a record may be the old one, or missing, and the cost is a rebuild. Such a
 * write, a few small calls with no fsync to wait for, is made with synchronous calls: each promise
 * of node:fs/promises costs a turn of the thread pool (100–200 µs) for microseconds of work.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: { mode?: number; durable?: boolean } = {},
): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  if (options.durable === false) {
    mkdirSync(dirname(path), { recursive: true });
    try {
      writeFileSync(temp, data, { mode: options.mode ?? 0o644 });
      renameSync(temp, path);
    } catch (error) {
      rmSync(temp, { force: true });
      throw error;
    }
    return;
  }
  await mkdir(dirname(path), { recursive: true });
  try {
    const handle = await open(temp, 'w', options.mode ?? 0o644);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/** A file's stat, or undefined when there is none to be had (gone, or not ours to look at). */
export function statQuietly(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}
