import { createHash } from 'node:crypto';
import type { ChipName } from './chips.ts';
import { CHIPS } from './chips.ts';

export const IMAGE_MAGIC = 0xe9;

/**
 * Identity of a firmware image as the emulated application reports it: the first 8 hex digits of
 * the SHA-256 of the image with trailing 0xFF bytes removed (erased flash and esptool's padding look
 * the same) and header bytes 2..3 zeroed (flash mode / size / frequency, which esptool may rewrite).
 */
export function firmwareId(image: Uint8Array): string {
  let end = image.length;
  while (end > 0 && image[end - 1] === 0xff) end--;
  const bytes = image.slice(0, end);
  if (bytes.length > 2) bytes[2] = 0;
  if (bytes.length > 3) bytes[3] = 0;
  return createHash('sha256').update(bytes).digest('hex').slice(0, 8);
}

/** The line the emulated application prints at boot for `image`. */
export function firmwareBanner(chip: ChipName, image: Uint8Array): string {
  return `MicroPython (emulated ${CHIPS[chip].displayName}) firmware ${firmwareId(image)}`;
}

/**
 * A small valid-looking firmware image for tests: ESP image magic, one segment, `size` bytes of
 * deterministic pseudo-random content (compresses like real code, i.e. not much).
 */
export function makeTestFirmware(size: number, seed = 1): Uint8Array {
  const image = new Uint8Array(size);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    image[i] = state & 0xff;
  }
  // Some runs of text-like repetition so deflate has something to do.
  for (let i = 64; i + 32 < size; i += 256)
    image.set(new TextEncoder().encode('micropython-emulated-firmware!!!'), i);
  image.set([IMAGE_MAGIC, 0x01, 0x02, 0x20]);
  return image;
}
