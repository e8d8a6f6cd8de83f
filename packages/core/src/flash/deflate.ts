/**
 * The deflate streams mp sends with FLASH_DEFL_DATA (the stub's and the ESP32 ROM's tinfl inflates
 * them; it checks the zlib header, not the Adler-32).
 *
 * esptool-js deflates each file with pako at level 9: zlib's own algorithm. Node's zlib is
 * Chromium's fork, whose faster string hashing finds fewer short matches: on code it is as good
 * (0.99–1.00× pako), but on data made of 3-byte repeats its level 9 came out 34–46 % larger, on a
 * random walk 6 % (measured on 400 KB samples). Taking the smaller of the two keeps every stream at
 * most as large as esptool-js's for the same bytes.
 */
import { createRequire } from 'node:module';
import { deflateSync } from 'node:zlib';
import { padToWord } from './sectors.ts';

/** Bytes prepared for one compressed write: `size` bytes of flash content, deflated. */
export interface DeflatedPayload {
  size: number;
  compressed: Uint8Array;
}

interface Pako {
  deflate(data: Uint8Array, options: { level: number }): Uint8Array;
}

let pako: Pako | undefined;

/**
 * pako as esptool-js itself resolves it (its dependency, so always present beside it, and the same
 * version esptool-js's own `writeFlash` uses). Loaded on first use: only flashing needs it.
 */
function loadPako(): Pako {
  if (!pako) {
    const require = createRequire(import.meta.url);
    pako = createRequire(require.resolve('esptool-js'))('pako') as Pako;
  }
  return pako;
}

/**
 * Loads and exercises pako once (about 25 ms the first time), so the first real stream costs what
 * the others do: `FlashJob` calls it while the board resets into its loader.
 */
export function warmUpDeflate(): void {
  loadPako().deflate(new Uint8Array(256).fill(0x55), { level: 9 });
}

/**
 * Pads to whole words as esptool does, then deflates at level 9 with pako and with Node's zlib,
 * keeping the smaller stream.
 * @example const { size, compressed } = deflateForFlash(image); // size: image.length rounded up to 4
 */
export function deflateForFlash(data: Uint8Array): DeflatedPayload {
  const image = padToWord(data);
  const byPako = loadPako().deflate(image, { level: 9 });
  const byZlib = deflateSync(image, { level: 9 });
  const compressed = byZlib.length < byPako.length ? new Uint8Array(byZlib) : byPako;
  return { size: image.length, compressed };
}
