/** The sector arithmetic and the device record behind delta flashing. */
import { describe, expect, it } from 'vitest';
import {
  changedRuns,
  DeviceStateStore,
  hashSectors,
  normaliseMac,
  padToWord,
  runBytes,
} from '../src/index.ts';
import { tempDir } from './flash-helpers.ts';

describe('hashSectors / changedRuns', () => {
  const image = new Uint8Array(5 * 4096 + 100).map((_, i) => (i * 7 + Math.floor(i / 4096) * 31) & 0xff);

  it('hashes each 4 KiB sector, the last one partial', () => {
    const hashes = hashSectors(image);
    expect(hashes).toHaveLength(6);
    expect(new Set(hashes).size).toBe(6);
    expect(hashes[0]).toMatch(/^[0-9a-f]{16}$/);
  });

  it('merges consecutive changed sectors into runs and ends the last run at the image end', () => {
    const next = Uint8Array.from(image);
    next[4096 + 1] = next[4096 + 1]! ^ 1;
    next[2 * 4096 + 5] = next[2 * 4096 + 5]! ^ 1;
    next[5 * 4096 + 3] = next[5 * 4096 + 3]! ^ 1;
    const runs = changedRuns(next.length, hashSectors(next), hashSectors(image));
    expect(runs).toEqual([
      { start: 4096, end: 3 * 4096 },
      { start: 5 * 4096, end: 5 * 4096 + 100 },
    ]);
    expect(runBytes(runs)).toBe(2 * 4096 + 100);
  });

  it('treats unknown (null) and missing sectors as changed', () => {
    const hashes = hashSectors(image);
    const previous: Array<string | null> = [...hashes.slice(0, 3)];
    previous[1] = null;
    expect(changedRuns(image.length, hashes, previous)).toEqual([
      { start: 4096, end: 2 * 4096 },
      { start: 3 * 4096, end: image.length },
    ]);
    expect(changedRuns(image.length, hashes, hashes)).toEqual([]);
  });

  it('pads to whole words with 0xFF like esptool', () => {
    expect(padToWord(Uint8Array.from([1, 2, 3, 4, 5]))).toEqual(
      Uint8Array.from([1, 2, 3, 4, 5, 0xff, 0xff, 0xff]),
    );
    const aligned = Uint8Array.from([1, 2, 3, 4]);
    expect(padToWord(aligned)).toBe(aligned);
  });
});

describe('DeviceStateStore', () => {
  it('keeps one JSON file per MAC, written atomically, and reads damaged files as unknown', async () => {
    const store = new DeviceStateStore(tempDir());
    expect(store.file('5C:CF:7F:0A:1B:2C')).toMatch(/5ccf7f0a1b2c\.json$/);
    expect(normaliseMac('24-0A-C4-00-11-22')).toBe('240ac4001122');
    expect(await store.read('5c:cf:7f:0a:1b:2c')).toBeUndefined();
    await store.write({
      schema: 'mp.device/1',
      mac: '5c:cf:7f:0a:1b:2c',
      chip: 'ESP8266',
      updatedAt: new Date(0).toISOString(),
      segments: [{ offset: 0, size: 4096, sha256: null, sectors: [null] }],
    });
    expect(await store.read('5C:CF:7F:0A:1B:2C')).toMatchObject({
      chip: 'ESP8266',
      segments: [{ sectors: [null] }],
    });
    const { writeFile, readdir } = await import('node:fs/promises');
    expect(await readdir(store.dir)).toEqual(['5ccf7f0a1b2c.json']);
    await writeFile(store.file('5c:cf:7f:0a:1b:2c'), '{"schema":"other"}');
    expect(await store.read('5c:cf:7f:0a:1b:2c')).toBeUndefined();
    await store.forget('5c:cf:7f:0a:1b:2c');
    expect(await readdir(store.dir)).toEqual([]);
  });
});
