import zlib from 'node:zlib';

/**
 * Incremental zlib inflation for FLASH_DEFL_DATA: each block yields whatever it decompresses to,
 * like the stub's tinfl loop. The end of stream (with its Adler-32 check) is verified by `finish()`.
 */
export class StreamingInflater {
  readonly #z = zlib.createInflate();
  #out: Buffer[] = [];
  #error: Error | null = null;
  #ended = false;

  constructor() {
    this.#z.on('data', (chunk: Buffer) => this.#out.push(chunk));
    this.#z.on('error', (error: Error) => {
      this.#error ??= error;
    });
    this.#z.on('end', () => {
      this.#ended = true;
    });
  }

  push(chunk: Uint8Array): Promise<Uint8Array> {
    if (this.#error) return Promise.reject(this.#error);
    return new Promise((resolve, reject) => {
      const onError = (error: Error) => reject(error);
      this.#z.once('error', onError);
      this.#z.write(Buffer.from(chunk));
      this.#z.flush(zlib.constants.Z_SYNC_FLUSH, () => {
        this.#z.off('error', onError);
        if (this.#error) return reject(this.#error);
        const out = Buffer.concat(this.#out);
        this.#out = [];
        resolve(new Uint8Array(out.buffer, out.byteOffset, out.byteLength));
      });
    });
  }

  /** Resolves with any last bytes once the stream is complete and its checksum verified. */
  finish(): Promise<Uint8Array> {
    if (this.#error) return Promise.reject(this.#error);
    return new Promise((resolve, reject) => {
      const done = () => {
        const out = Buffer.concat(this.#out);
        this.#out = [];
        resolve(new Uint8Array(out.buffer, out.byteOffset, out.byteLength));
      };
      if (this.#ended) return done();
      this.#z.once('error', reject);
      this.#z.once('end', () => {
        this.#z.off('error', reject);
        done();
      });
      this.#z.end();
    });
  }

  destroy(): void {
    this.#z.destroy();
  }
}
