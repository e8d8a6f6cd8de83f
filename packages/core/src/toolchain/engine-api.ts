/**
 * The engine's API over plain HTTP on its socket, for what a leased toolchain container needs:
 * create, start, exec with its output streamed, list, remove. No client library: a `mp build` that
 * finds its container still running loads no dockerode (~130 ms with ssh2 and grpc-js), and one
 * that starts a container does not either. Only engines reachable without TLS or ssh (the local
 * socket, plain tcp://) are spoken to this way; the others go through dockerode (container.ts).
 */
import type { IncomingMessage } from 'node:http';
import { dockerUnavailable } from './engine.ts';
import type { EngineAddress } from './engine-http.ts';

/** An answer of the engine that is not a success: `statusCode` as dockerode's errors carry it. */
export class EngineApiError extends Error {
  readonly statusCode: number;
  constructor(statusCode: number, message: string) {
    super(`(HTTP code ${statusCode}) ${message}`);
    this.name = 'EngineApiError';
    this.statusCode = statusCode;
  }
}

export interface EngineApi {
  /** A request whose answer is JSON (or nothing); rejects with EngineApiError on 4xx/5xx. */
  json<T>(method: string, path: string, body?: unknown): Promise<T>;
  /** A request whose answer is a stream (exec output), once its status is known to be a success. */
  stream(method: string, path: string, body?: unknown): Promise<IncomingMessage>;
}

/** The API of the engine at `address`, which must not need dockerode (`address.needsDockerode`). */
export function engineApi(address: EngineAddress): EngineApi {
  const send = (method: string, path: string, body?: unknown): Promise<IncomingMessage> => {
    // As engine-http.ts: not a static import of node:http (start-up time of every command).
    const { request } = process.getBuiltinModule('node:http');
    return new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = request(
        {
          method,
          path,
          ...(address.socketPath
            ? { socketPath: address.socketPath }
            : { host: address.host, port: address.port }),
          headers: {
            Host: 'docker',
            ...(payload !== undefined
              ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) }
              : {}),
          },
        },
        resolve,
      );
      req.on('error', (error) => reject(dockerUnavailable(error)));
      req.end(payload);
    });
  };
  const failure = async (res: IncomingMessage): Promise<EngineApiError> => {
    const text = await readAll(res);
    let message = text.trim();
    try {
      message = (JSON.parse(text) as { message?: string }).message ?? message;
    } catch {
      // Not JSON: the text as it is.
    }
    return new EngineApiError(res.statusCode ?? 0, message);
  };
  return {
    async json<T>(method: string, path: string, body?: unknown): Promise<T> {
      const res = await send(method, path, body);
      if ((res.statusCode ?? 0) >= 400) throw await failure(res);
      const text = await readAll(res);
      return (text ? JSON.parse(text) : undefined) as T;
    },
    async stream(method: string, path: string, body?: unknown): Promise<IncomingMessage> {
      const res = await send(method, path, body);
      if ((res.statusCode ?? 0) >= 400) throw await failure(res);
      return res;
    },
  };
}

function readAll(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      text += chunk;
    });
    res.on('end', () => resolve(text));
    res.on('error', reject);
  });
}

/**
 * Splits the engine's multiplexed exec stream (8-byte frame headers: stream, 0, 0, 0, size) into
 * the bytes of stdout and stderr, in order.
 */
export class FrameReader {
  private pending: Buffer = Buffer.alloc(0);
  private readonly onData: (chunk: Buffer) => void;
  constructor(onData: (chunk: Buffer) => void) {
    this.onData = onData;
  }
  push(chunk: Buffer): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    while (this.pending.length >= 8) {
      const size = this.pending.readUInt32BE(4);
      if (this.pending.length < 8 + size) break;
      this.onData(this.pending.subarray(8, 8 + size));
      this.pending = this.pending.subarray(8 + size);
    }
  }
}
