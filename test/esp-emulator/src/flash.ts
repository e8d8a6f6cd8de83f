/** A NOR flash chip: erased bytes read 0xFF and programming can only clear bits. */

export const SECTOR_SIZE = 0x1000;

export interface FlashRegion {
  offset: number;
  length: number;
}

export class FlashMemory {
  readonly bytes: Uint8Array;

  constructor(size: number, initial?: Uint8Array) {
    if (!Number.isInteger(size) || size < 0x40000 || (size & (size - 1)) !== 0) {
      throw new Error(`Flash size must be a power of two of at least 256 KiB, got ${size}`);
    }
    if (initial && initial.length > size) {
      throw new Error(
        `Initial flash content (${initial.length} bytes) is larger than the flash (${size} bytes)`,
      );
    }
    this.bytes = new Uint8Array(size).fill(0xff);
    if (initial) this.bytes.set(initial);
  }

  get size(): number {
    return this.bytes.length;
  }

  /** JEDEC id as RDID returns it in SPI_W0: manufacturer | type << 8 | capacity << 16 (Winbond). */
  get jedecId(): number {
    return 0xef | (0x40 << 8) | (Math.log2(this.size) << 16);
  }

  contains(offset: number, length: number): boolean {
    return (
      Number.isInteger(offset) &&
      Number.isInteger(length) &&
      offset >= 0 &&
      length >= 0 &&
      offset + length <= this.size
    );
  }

  /** Erases every sector that overlaps [offset, offset + length). */
  eraseRange(offset: number, length: number): void {
    if (length <= 0) return;
    const start = Math.floor(offset / SECTOR_SIZE) * SECTOR_SIZE;
    const end = Math.min(this.size, Math.ceil((offset + length) / SECTOR_SIZE) * SECTOR_SIZE);
    this.bytes.fill(0xff, start, end);
  }

  /** Programs `data`; returns false if the result differs from `data` (the target was not erased). */
  program(offset: number, data: Uint8Array): boolean {
    let intact = true;
    for (let i = 0; i < data.length; i++) {
      const value = this.bytes[offset + i]! & data[i]!;
      this.bytes[offset + i] = value;
      if (value !== data[i]) intact = false;
    }
    return intact;
  }
}

/** Appends a region, merging it with the previous one when they are contiguous. */
export function recordRegion(regions: FlashRegion[], offset: number, length: number): void {
  if (length <= 0) return;
  const last = regions.at(-1);
  if (last && last.offset + last.length === offset) last.length += length;
  else regions.push({ offset, length });
}
