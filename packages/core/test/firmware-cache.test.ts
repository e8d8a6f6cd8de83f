/**
 * The firmware cache on its own: given firmware stored under keys, when a build asks for a key, then
 * it gets the files back only while they are intact, and the cache keeps the most recently used
 * entries within its size.
 */
import { existsSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempProject } from '@mp/test-utils';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_FIRMWARE_CACHE_BYTES,
  findCachedFirmware,
  firmwareCacheSize,
  parseByteSize,
  storeFirmware,
  trimFirmwareCache,
} from '../src/firmware/firmware-cache.ts';

function setUp() {
  const dir = tempProject();
  const cacheDir = dir.path('cache');
  const artifact = (name: string, bytes: number, fill: number) =>
    dir.write(`build/${name}`, new Uint8Array(bytes).fill(fill));
  const store = (key: string, bytes: number, fill: number, maxBytes = 10_000_000) =>
    storeFirmware(
      cacheDir,
      key,
      {
        artifacts: { firmware: artifact(`${key}.bin`, bytes, fill) },
        submodules: ['lib/axtls'],
        builtAt: '2026-01-01T00:00:00.000Z',
        durationMs: 1234,
      },
      maxBytes,
    );
  return { cacheDir, store };
}

describe('firmware cache', () => {
  it('hands back what was stored, with the build facts', async () => {
    const { cacheDir, store } = setUp();
    await store('k1', 1000, 1);
    const found = await findCachedFirmware(cacheDir, 'k1');
    expect(found?.entry).toMatchObject({ key: 'k1', submodules: ['lib/axtls'], durationMs: 1234 });
    expect(readFileSync(found!.artifacts.firmware!)).toEqual(Buffer.alloc(1000, 1));
    expect(await findCachedFirmware(cacheDir, 'k2')).toBeUndefined();
  });

  it('treats a damaged entry as a miss and removes it', async () => {
    const { cacheDir, store } = setUp();
    await store('k1', 1000, 1);
    const file = join(cacheDir, 'firmware', 'k1', 'firmware.bin');
    writeFileSync(file, Buffer.alloc(1000, 2));
    expect(await findCachedFirmware(cacheDir, 'k1')).toBeUndefined();
    expect(existsSync(join(cacheDir, 'firmware', 'k1'))).toBe(false);
  });

  it('evicts the least recently used entries beyond the size; a hit counts as a use', async () => {
    const { cacheDir, store } = setUp();
    await store('old', 4000, 1);
    await store('mid', 4000, 2);
    // Ages: `old` is used again (a hit), so `mid` is now the least recently used.
    const past = new Date(Date.now() - 60_000);
    utimesSync(join(cacheDir, 'firmware', 'old', 'entry.json'), past, past);
    utimesSync(join(cacheDir, 'firmware', 'mid', 'entry.json'), past, past);
    expect(await findCachedFirmware(cacheDir, 'old')).toBeDefined();
    const { evicted } = await store('new', 4000, 3, 9000);
    expect(evicted).toEqual(['mid']);
    expect(await findCachedFirmware(cacheDir, 'old')).toBeDefined();
    expect(await findCachedFirmware(cacheDir, 'new')).toBeDefined();
    expect((await firmwareCacheSize(cacheDir)).entries).toBe(2);
  });

  it('never evicts the entry just stored, even when it alone is over the size', async () => {
    const { cacheDir, store } = setUp();
    await store('a', 4000, 1);
    const { evicted } = await store('b', 4000, 2, 100);
    expect(evicted).toEqual(['a']);
    expect(await findCachedFirmware(cacheDir, 'b')).toBeDefined();
    expect(await trimFirmwareCache(cacheDir, 0)).toEqual(['b']);
  });

  it('keeps its size in a record instead of counting every entry each store, and counts again when that is due', async () => {
    const { cacheDir, store } = setUp();
    await store('a', 4000, 1);
    await store('b', 4000, 2);
    // An entry the record does not know of (made by hand): the sum stays under the limit, no count.
    const root = join(cacheDir, 'firmware');
    mkdirSync(join(root, 'unrecorded'));
    writeFileSync(join(root, 'unrecorded', 'entry.json'), '{}');
    writeFileSync(join(root, 'unrecorded', 'firmware.bin'), Buffer.alloc(20_000));
    const past = new Date(Date.now() - 60_000);
    utimesSync(join(root, 'unrecorded', 'entry.json'), past, past);
    expect((await store('c', 4000, 3, 20_000)).evicted).toEqual([]);
    expect(readFileSync(join(root, '.usage'), 'utf8')).toMatch(/^counted \d+ \d+\n\+\d+\n\+\d+\n$/);
    // A count over an hour old is counted again, and the cache is brought within its size.
    const usage = readFileSync(join(root, '.usage'), 'utf8').split('\n');
    usage[0] = usage[0]!.replace(/ \d+$/, ` ${Date.now() - 2 * 60 * 60 * 1000}`);
    writeFileSync(join(root, '.usage'), usage.join('\n'));
    expect((await store('d', 4000, 4, 20_000)).evicted).toEqual(['unrecorded']);
    const size = await firmwareCacheSize(cacheDir);
    expect(size).toMatchObject({ entries: 4 });
    expect(readFileSync(join(root, '.usage'), 'utf8')).toMatch(new RegExp(`^counted ${size.bytes} \\d+\n$`));
  });

  it('storing a key twice keeps one entry', async () => {
    const { cacheDir, store } = setUp();
    await store('k', 1000, 1);
    await store('k', 1000, 1);
    expect(await firmwareCacheSize(cacheDir)).toMatchObject({ entries: 1 });
  });

  it('reads sizes as the config writes them', () => {
    expect(parseByteSize(undefined)).toBe(DEFAULT_FIRMWARE_CACHE_BYTES);
    expect(parseByteSize('2GB')).toBe(2e9);
    expect(parseByteSize('500 MB')).toBe(5e8);
    expect(parseByteSize('1.5GiB')).toBe(1.5 * 2 ** 30);
    expect(parseByteSize('64k')).toBe(64_000);
    expect(parseByteSize('1024')).toBe(1024);
    expect(parseByteSize(12345)).toBe(12345);
  });
});
