/**
 * The two questions a no-op build asks the engine ("is it up?", "which id has this image?") over a
 * few lines of plain HTTP on the engine socket: no client library to load, a few milliseconds per
 * answer. TLS and ssh engines (DOCKER_TLS_VERIFY, ssh://) go through dockerode instead.
 */
import { connectDocker, dockerUnavailable, parseDockerHost } from './engine.ts';

export interface EngineAddress {
  /** Unix socket or Windows named pipe. */
  socketPath?: string;
  host?: string;
  port?: number;
  /** TLS or ssh: only dockerode can talk to it. */
  needsDockerode: boolean;
}

/** Where `DOCKER_HOST` (or the platform default) says the engine is. */
export function engineAddress(env: NodeJS.ProcessEnv = process.env): EngineAddress {
  const docker = parseDockerHost(env);
  if (docker.socketPath) return { socketPath: docker.socketPath, needsDockerode: false };
  if (docker.scheme === 'tcp' && !docker.url.startsWith('https:'))
    return { host: docker.host, port: docker.port, needsDockerode: docker.tls };
  return { needsDockerode: true };
}

function engineGet(
  address: EngineAddress,
  path: string,
  timeoutMs: number,
): Promise<{ status: number; body: string }> {
  // Not `import { request } from 'node:http'`: building that module's ES facade reads every export,
  // and the lazy WebSocket ones load undici: ~20 ms of start-up for every command that imports core.
  const { request } = process.getBuiltinModule('node:http');
  return new Promise((resolve, reject) => {
    const req = request(
      {
        method: 'GET',
        path,
        ...(address.socketPath
          ? { socketPath: address.socketPath }
          : { host: address.host, port: address.port }),
        headers: { Host: 'docker' },
        timeout: timeoutMs,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () =>
      req.destroy(Object.assign(new Error(`no answer within ${timeoutMs / 1000} s`), { code: 'ETIMEDOUT' })),
    );
    req.on('error', reject);
    req.end();
  });
}

/** Throws DOCKER_UNAVAILABLE unless the engine answers within `timeoutMs`. */
export async function pingEngine(env: NodeJS.ProcessEnv = process.env, timeoutMs = 5000): Promise<void> {
  const address = engineAddress(env);
  if (address.needsDockerode) {
    await (await connectDocker(env))
      .ping()
      .catch((error: unknown) => Promise.reject(dockerUnavailable(error, env)));
    return;
  }
  const answer = await engineGet(address, '/_ping', timeoutMs).catch((error) =>
    Promise.reject(dockerUnavailable(error, env)),
  );
  if (answer.status !== 200)
    throw dockerUnavailable(new Error(`HTTP ${answer.status}: ${answer.body.trim()}`), env);
}

/** The id of a local image (`sha256:…`), or undefined when the engine does not have it. */
export async function inspectImageId(
  ref: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string | undefined> {
  const address = engineAddress(env);
  if (address.needsDockerode) {
    try {
      return (await (await connectDocker(env)).getImage(ref).inspect()).Id;
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) return undefined;
      throw dockerUnavailable(error, env);
    }
  }
  const answer = await engineGet(address, `/images/${encodeURI(ref)}/json`, 10_000).catch((error) =>
    Promise.reject(dockerUnavailable(error, env)),
  );
  if (answer.status === 404) return undefined;
  if (answer.status !== 200)
    throw dockerUnavailable(new Error(`HTTP ${answer.status}: ${answer.body.trim()}`), env);
  return (JSON.parse(answer.body) as { Id: string }).Id;
}
