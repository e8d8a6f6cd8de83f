/**
 * Given any image, the stream mp sends is no larger than what esptool-js sends for it (pako at
 * level 9), and it inflates back to the image, padded to whole words as esptool pads it.
 */
import { createRequire } from 'node:module';
import { inflateSync } from 'node:zlib';
import { describe, it } from 'vitest';
import { deflateForFlash } from '../src/index.ts';

const coreRequire = createRequire(new URL('../package.json', import.meta.url));
const pako = createRequire(coreRequire.resolve('esptool-js'))('pako') as {
  deflate(data: Uint8Array, options: { level: number }): Uint8Array;
};

function random(seed: number): () => number {
  let state = seed;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state;
  };
}

/** Data made of 3-byte words: Node's zlib alone sends about 45 % more than pako for it. */
function trigrams(length: number): Uint8Array {
  const next = random(7);
  const words = Array.from({ length: 300 }, () => [next() & 0xff, next() & 0xff, next() & 0xff]);
  const out = new Uint8Array(length);
  for (let at = 0; at < length; ) for (const b of words[next() % words.length]!) out[at++] = b;
  return out;
}

describe('the deflate stream of a write', () => {
  it.concurrent('is at most as large as esptool-js’s for the same bytes, on data zlib alone does badly', async ({
    expect,
  }) => {
    const data = trigrams(128 * 1024 + 3);
    const { size, compressed } = deflateForFlash(data);
    expect(size).toBe(128 * 1024 + 4);
    const padded = new Uint8Array(size).fill(0xff);
    padded.set(data);
    expect(compressed.length).toBeLessThanOrEqual(pako.deflate(padded, { level: 9 }).length);
    expect(new Uint8Array(inflateSync(compressed))).toEqual(padded);
  });

  it.concurrent('is at most as large as esptool-js’s on random bytes and on zeros', async ({ expect }) => {
    const next = random(11);
    for (const data of [Uint8Array.from({ length: 40_000 }, () => next() & 0xff), new Uint8Array(40_000)]) {
      const { compressed } = deflateForFlash(data);
      expect(compressed.length).toBeLessThanOrEqual(pako.deflate(data, { level: 9 }).length);
      expect(new Uint8Array(inflateSync(compressed))).toEqual(data);
    }
  });
});
