/**
 * Sector bookkeeping for delta flashing: an image is a row of 4 KiB sectors (the flash erase
 * unit); each gets a short hash, and a re-flash writes only the runs of sectors whose hash changed
 * (the approach of esptool 5.2 `--diff-with`, with hashes instead of the old file).
 */
import { createHash } from 'node:crypto';

/** The SPI flash erase unit of every ESP chip. */
export const SECTOR_SIZE = 0x1000;

/**
 * One hash per 4 KiB sector of `data` (the last one may be shorter). 64 bits of SHA-256 are plenty:
 * a collision could only skip a sector that the final MD5 check of the whole region then catches.
 */
export function hashSectors(data: Uint8Array): string[] {
  const hashes: string[] = [];
  for (let start = 0; start < data.length; start += SECTOR_SIZE) {
    const sector = data.subarray(start, Math.min(start + SECTOR_SIZE, data.length));
    hashes.push(createHash('sha256').update(sector).digest('hex').slice(0, 16));
  }
  return hashes;
}

/** A stretch of the image to write: byte offsets within the segment, `start` sector-aligned. */
export interface SectorRun {
  start: number;
  end: number;
}

/**
 * Runs of consecutive sectors to write so that flash holding `previous` ends up holding the image
 * hashed as `next`. A `null` (unknown: a write was interrupted there) or missing previous hash
 * counts as changed.
 */
export function changedRuns(
  size: number,
  next: readonly string[],
  previous: readonly (string | null)[],
): SectorRun[] {
  const runs: SectorRun[] = [];
  let current: SectorRun | undefined;
  for (let i = 0; i < next.length; i++) {
    const changed = previous[i] == null || previous[i] !== next[i];
    if (!changed) {
      current = undefined;
      continue;
    }
    const start = i * SECTOR_SIZE;
    const end = Math.min(start + SECTOR_SIZE, size);
    if (current) current.end = end;
    else {
      current = { start, end };
      runs.push(current);
    }
  }
  return runs;
}

/** Bytes covered by `runs`. */
export function runBytes(runs: readonly SectorRun[]): number {
  return runs.reduce((sum, r) => sum + (r.end - r.start), 0);
}

/** Pads to a multiple of 4 with 0xFF, as esptool does before writing (the stub writes words). */
export function padToWord(data: Uint8Array): Uint8Array {
  const rest = data.length % 4;
  if (rest === 0) return data;
  const padded = new Uint8Array(data.length + 4 - rest).fill(0xff);
  padded.set(data);
  return padded;
}
