/**
 * The firmware cache: the flash artifacts of every build, kept in mp's user cache under a hash of
 * everything that went into them (see `firmwareKey` in plan.ts), so that any earlier state of a
 * project (a reverted edit, the other branch, an earlier config) is answered by copying files, with
 * no container and no make:
 *
 *   <cache>/firmware/<key>/entry.json      what was built: artifacts with their sha256, submodules, when
 *   <cache>/firmware/<key>/<artifact>.bin  the files (firmware, bootloader, …)
 *
 * An entry appears by rename once complete, and every hit checks the sha256 of what it hands out,
 * so a half-written or damaged entry is a miss (and is removed), never a wrong firmware. The cache
 * is bounded (config `cache.maxSize`, default 2 GB): after each store the least recently used
 * entries (a hit touches its entry.json) go until the rest fits.
 *
 * This only works because builds are reproducible (SOURCE_DATE_EPOCH, fixed container paths): the
 * firmware the cache hands out is the one make would have written.
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { readdir, readFile, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { BYTE_SIZE } from '../config/schema.ts';
import { writeFileAtomic } from '../util/fs.ts';
import { sha256Hex } from '../util/hash.ts';

/** The bound when the config sets none: 2 GB, some two thousand ESP8266 firmware images. */
export const DEFAULT_FIRMWARE_CACHE_BYTES = 2_000_000_000;

/** Temporaries older than this were left by a killed process. */
const STALE_TEMP_MS = 60 * 60 * 1000;

export interface FirmwareCacheEntry {
  key: string;
  /** When the build that made it finished, and how long it took. */
  builtAt: string;
  durationMs: number;
  /** Submodules that build fetched (the sidecar lists them with their commits). */
  submodules: string[];
  /** Artifact name (`firmware`, `bootloader`) → its file in the entry. */
  artifacts: Record<string, { file: string; sha256: string; size: number }>;
}

export interface CachedFirmware {
  entry: FirmwareCacheEntry;
  /** Artifact name → host path of the cached file (checked against its sha256 just now). */
  artifacts: Record<string, string>;
  /** Where the build found it: this machine's cache, or the remote cache (then kept here too). */
  source?: 'local' | 'remote';
}

export function firmwareCacheDir(cacheDir: string): string {
  return join(cacheDir, 'firmware');
}

/** `'2GB'` → 2e9, `'1.5GiB'` → 1.5 × 2³⁰, a number as it is; undefined → the default. */
export function parseByteSize(value: string | number | undefined): number {
  if (value === undefined) return DEFAULT_FIRMWARE_CACHE_BYTES;
  if (typeof value === 'number') return value;
  const m = BYTE_SIZE.exec(value) ? /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)/i.exec(value) : null;
  if (!m) return DEFAULT_FIRMWARE_CACHE_BYTES;
  const power = ' kmgt'.indexOf((m[2] || ' ').toLowerCase());
  return Math.floor(Number(m[1]) * (m[3] ? 1024 : 1000) ** power);
}

/**
 * The entry for `key` with every artifact intact, touched as just used; undefined when there is
 * none (or it is damaged, in which case it is removed).
 */
export async function findCachedFirmware(cacheDir: string, key: string): Promise<CachedFirmware | undefined> {
  const dir = join(firmwareCacheDir(cacheDir), key);
  let entry: FirmwareCacheEntry;
  try {
    entry = JSON.parse(await readFile(join(dir, 'entry.json'), 'utf8')) as FirmwareCacheEntry;
  } catch {
    return undefined;
  }
  const artifacts: Record<string, string> = {};
  try {
    for (const [name, artifact] of Object.entries(entry.artifacts)) {
      const file = join(dir, artifact.file);
      if (sha256Hex(await readFile(file)) !== artifact.sha256) throw new Error(`${file} is damaged`);
      artifacts[name] = file;
    }
  } catch {
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    return undefined;
  }
  const now = new Date();
  await utimes(join(dir, 'entry.json'), now, now).catch(() => undefined);
  return { entry, artifacts, source: 'local' };
}

/**
 * Keeps `artifacts` (name → host file, or the bytes themselves) under `key`, then trims the cache
 * to `maxBytes`. Storing a key that is already there changes nothing: equal keys are equal firmware.
 */
export async function storeFirmware(
  cacheDir: string,
  key: string,
  build: {
    artifacts: Record<string, string | Uint8Array>;
    submodules: string[];
    builtAt: string;
    durationMs: number;
  },
  maxBytes: number,
): Promise<{ evicted: string[] }> {
  const root = firmwareCacheDir(cacheDir);
  const dir = join(root, key);
  const temp = join(root, `.tmp-${key.slice(0, 16)}-${process.pid}-${randomBytes(4).toString('hex')}`);
  // Synchronous calls: a store is a folder, a few files written into the page cache (no fsync: a
  // cache entry lost to a power cut is a build again) and a rename, microseconds each. As promises
  // they took turns of the thread pool with the export's writes, which do wait for the disk.
  try {
    mkdirSync(temp, { recursive: true });
    const entry: FirmwareCacheEntry = {
      key,
      builtAt: build.builtAt,
      durationMs: build.durationMs,
      submodules: build.submodules,
      artifacts: {},
    };
    for (const [name, host] of Object.entries(build.artifacts)) {
      const file = `${name.replace(/[^A-Za-z0-9_.-]/g, '_')}.bin`;
      const data = typeof host === 'string' ? readFileSync(host) : host;
      writeFileSync(join(temp, file), data);
      entry.artifacts[name] = { file, sha256: sha256Hex(data), size: data.length };
    }
    const entryText = `${JSON.stringify(entry, null, 2)}\n`;
    writeFileSync(join(temp, 'entry.json'), entryText);
    let stored = true;
    try {
      renameSync(temp, dir);
    } catch (error) {
      // Another build of the same inputs got there first: its files are these files.
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
      await rm(temp, { recursive: true, force: true });
      stored = false;
    }
    if (stored) {
      const bytes = Object.values(entry.artifacts).reduce(
        (sum, a) => sum + a.size,
        Buffer.byteLength(entryText),
      );
      try {
        appendFileSync(join(root, USAGE_FILE), `+${bytes}\n`);
      } catch {
        // No record: the next store counts the entries.
      }
    }
  } catch (error) {
    await rm(temp, { recursive: true, force: true }).catch(() => undefined);
    throw error;
  }
  return { evicted: await trimFirmwareCache(cacheDir, maxBytes, key) };
}

/**
 * Removes the least recently used entries until the cache holds at most `maxBytes` (never `keep`,
 * the one just stored), and temporaries that killed processes left. Returns the keys removed.
 */
export async function trimFirmwareCache(
  cacheDir: string,
  maxBytes: number,
  keep?: string,
): Promise<string[]> {
  const root = firmwareCacheDir(cacheDir);
  const usage = await readUsage(root);
  if (usage && usage.bytes <= maxBytes) return [];
  const names = await readdir(root).catch(() => [] as string[]);
  // Every entry's stats at once: one after another they cost a millisecond per ten entries.
  const found = await Promise.all(
    names.map(async (name): Promise<{ key: string; used: number; bytes: number } | undefined> => {
      const path = join(root, name);
      // An entry's temporary, or the usage record's (writeFileAtomic's `.<name>.<pid>.<hex>.tmp`).
      if (name.startsWith('.tmp-') || (name.startsWith('.') && name.endsWith('.tmp'))) {
        const info = await stat(path).catch(() => undefined);
        if (info && Date.now() - info.mtimeMs > STALE_TEMP_MS)
          await rm(path, { recursive: true, force: true });
        return undefined;
      }
      const info = await stat(join(path, 'entry.json')).catch(() => undefined);
      return info ? { key: name, used: info.mtimeMs, bytes: await folderBytes(path) } : undefined;
    }),
  );
  const entries = found.filter((e) => e !== undefined);
  let total = entries.reduce((sum, e) => sum + e.bytes, 0);
  const removed: string[] = [];
  for (const e of entries.sort((a, b) => a.used - b.used)) {
    if (total <= maxBytes) break;
    if (e.key === keep) continue;
    await rm(join(root, e.key), { recursive: true, force: true }).catch(() => undefined);
    total -= e.bytes;
    removed.push(e.key);
  }
  if (names.length > 0) await writeUsage(root, total);
  return removed;
}

/**
 * The cache's size as last counted, plus what was stored since: `firmware/.usage` holds a line
 * `counted <bytes> <epoch ms>` written by a full count, then a line `+<bytes>` per entry stored.
 * Storing reads it instead of counting every entry (2,000 entries took 60–200 ms, every build).
 * Counting again is due when the sum passes the limit, when the file is missing or unreadable, or
 * when the count is older than USAGE_RECOUNT_MS or USAGE_RECOUNT_STORES stores behind: a store
 * another process appends while a count is being written is lost, and this bounds the drift.
 * Entries removed otherwise (a damaged one, by hand) only make the sum high, which is safe.
 */
const USAGE_FILE = '.usage';
const USAGE_RECOUNT_MS = 60 * 60 * 1000;
const USAGE_RECOUNT_STORES = 200;

async function readUsage(root: string): Promise<{ bytes: number } | undefined> {
  let text: string | undefined;
  try {
    text = readFileSync(join(root, USAGE_FILE), 'utf8');
  } catch {
    text = undefined;
  }
  const lines = text?.split('\n').filter(Boolean) ?? [];
  const counted = /^counted (\d+) (\d+)$/.exec(lines[0] ?? '');
  if (!counted || Date.now() - Number(counted[2]) > USAGE_RECOUNT_MS || lines.length > USAGE_RECOUNT_STORES)
    return undefined;
  let bytes = Number(counted[1]);
  for (const line of lines.slice(1)) {
    const added = /^\+(\d+)$/.exec(line);
    if (!added) return undefined;
    bytes += Number(added[1]);
  }
  return { bytes };
}

async function writeUsage(root: string, bytes: number): Promise<void> {
  // A lost or old record only means another count: no fsync.
  await writeFileAtomic(join(root, USAGE_FILE), `counted ${bytes} ${Date.now()}\n`, { durable: false }).catch(
    () => undefined,
  );
}

/** What the cache holds: entries and bytes (for `mp doctor`-like reports and the tests). */
export async function firmwareCacheSize(cacheDir: string): Promise<{ entries: number; bytes: number }> {
  const root = firmwareCacheDir(cacheDir);
  let entries = 0;
  let bytes = 0;
  for (const name of await readdir(root).catch(() => [] as string[])) {
    if (name.startsWith('.')) continue; // temporaries, the usage record
    entries++;
    bytes += await folderBytes(join(root, name));
  }
  return { entries, bytes };
}

async function folderBytes(dir: string): Promise<number> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const sizes = await Promise.all(
    names.map(async (name) => (await stat(join(dir, name)).catch(() => undefined))?.size ?? 0),
  );
  return sizes.reduce((sum, size) => sum + size, 0);
}
