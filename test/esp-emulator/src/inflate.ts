import zlib from 'node:zlib';

/**
 * Incremental zlib inflation for FLASH_DEFL_DATA: each block yields whatever it decompresses to,
 * like the stub's tinfl loop. Input after the end of the stream yields nothing (tinfl, once DONE,
 * takes no more input either).
 *
 * The zlib header is checked as tinfl checks it, but the Adler-32 at the end is not: the stub
 * esptool-js uploads (esp-flasher-stub, `s_flash_defl_data_post_process`) passes
 * TINFL_FLAG_PARSE_ZLIB_HEADER only for the first block, so tinfl never reads the checksum.
 */
export class StreamingInflater {
  readonly #z = zlib.createInflateRaw();
  #header: number[] = [];
  #out: Buffer[] = [];
  #error: Error | null = null;

  constructor() {
    this.#z.on('data', (chunk: Buffer) => this.#out.push(chunk));
    this.#z.on('error', (error: Error) => {
      this.#error ??= error;
    });
  }

  push(chunk: Uint8Array): Promise<Uint8Array> {
    if (this.#error) return Promise.reject(this.#error);
    let data = chunk;
    if (this.#header.length < 2) {
      const take = Math.min(2 - this.#header.length, data.length);
      this.#header.push(...data.subarray(0, take));
      data = data.subarray(take);
      if (this.#header.length === 2) {
        // tinfl: (CMF * 256 + FLG) % 31 == 0, no preset dictionary, method 8 (deflate).
        const [cmf, flg] = this.#header as [number, number];
        if ((cmf * 256 + flg) % 31 !== 0 || flg & 0x20 || (cmf & 0x0f) !== 8) {
          this.#error = new Error('incorrect header check');
          return Promise.reject(this.#error);
        }
      }
    }
    return new Promise((resolve, reject) => {
      const onError = (error: Error) => reject(error);
      this.#z.once('error', onError);
      this.#z.write(Buffer.from(data));
      this.#z.flush(zlib.constants.Z_SYNC_FLUSH, () => {
        this.#z.off('error', onError);
        if (this.#error) return reject(this.#error);
        const out = Buffer.concat(this.#out);
        this.#out = [];
        resolve(new Uint8Array(out.buffer, out.byteOffset, out.byteLength));
      });
    });
  }

  destroy(): void {
    this.#z.destroy();
  }
}
