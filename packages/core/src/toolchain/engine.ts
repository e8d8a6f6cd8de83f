/**
 * The Docker engine connection. dockerode reads DOCKER_HOST (unix://, tcp://, ssh://,
 * npipe://) and DOCKER_TLS_VERIFY/DOCKER_CERT_PATH itself, so a remote engine works the same
 * as the local one.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { MpError } from '../errors.ts';

let dockerode: Promise<typeof Docker> | undefined;

/**
 * dockerode, imported on first use: with ssh2, grpc-js and protobufjs it is ~60 ms of loading, and
 * everything imports core (`mp boards`, and `mp build` when nothing changed, which asks the engine
 * over plain HTTP: see engine-http.ts). Only code that drives containers and images pays for it.
 */
function loadDockerode(): Promise<typeof Docker> {
  dockerode ??= import('dockerode').then((module) => module.default);
  return dockerode;
}

/**
 * A client for the engine `DOCKER_HOST` of `env` names (dockerode is loaded by the first call).
 * dockerode itself reads only `process.env`: for another environment (one of several engines),
 * the same variables are read from `env` into its options.
 */
export async function connectDocker(env: NodeJS.ProcessEnv = process.env): Promise<Docker> {
  const Dockerode = await loadDockerode();
  return new Dockerode(env === process.env ? undefined : await dockerodeOptions(env));
}

/**
 * What dockerode reads from DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH (ca.pem, cert.pem,
 * key.pem; `~/.docker` when only verification is asked for, as Docker's client does), from `env`.
 * Every connection key is set, so nothing of `process.env` leaks into another engine's client.
 */
export async function dockerodeOptions(env: NodeJS.ProcessEnv): Promise<Docker.DockerOptions> {
  const host = parseDockerHost(env);
  const none = { socketPath: undefined, host: undefined, port: undefined, username: undefined };
  if (host.socketPath) return { ...none, socketPath: host.socketPath, protocol: 'http' };
  if (host.scheme === 'ssh') {
    const url = new URL(host.url);
    return {
      ...none,
      protocol: 'ssh',
      host: url.hostname,
      port: url.port || 22,
      username: decodeURIComponent(url.username) || undefined,
      sshOptions: { agent: env.SSH_AUTH_SOCK },
    };
  }
  const options: Docker.DockerOptions = {
    ...none,
    protocol: host.tls || host.url.startsWith('https:') ? 'https' : 'http',
    host: host.host,
    port: host.port,
    ca: undefined,
    cert: undefined,
    key: undefined,
  };
  const certPath =
    env.DOCKER_CERT_PATH || (env.DOCKER_TLS_VERIFY ? join(env.HOME ?? homedir(), '.docker') : '');
  if (certPath) {
    const { readFile } = await import('node:fs/promises');
    [options.ca, options.cert, options.key] = await Promise.all(
      ['ca.pem', 'cert.pem', 'key.pem'].map((name) => readFile(join(certPath, name))),
    );
  }
  return options;
}

/** Where the engine is expected, for messages. */
export function dockerEndpoint(env: NodeJS.ProcessEnv = process.env): string {
  return parseDockerHost(env).url;
}

/** `DOCKER_HOST` (or the platform's default socket), read once for every question asked of it. */
export interface DockerHost {
  url: string;
  scheme: 'unix' | 'npipe' | 'tcp' | 'ssh' | 'other';
  /** Unix socket or Windows named pipe. */
  socketPath?: string;
  host?: string;
  port?: number;
  /** TLS material is configured (DOCKER_TLS_VERIFY / DOCKER_CERT_PATH), as Docker's own client reads it. */
  tls: boolean;
  /** The engine runs on this machine (a socket, a pipe, or tcp:// to a loopback address). */
  local: boolean;
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);

export function parseDockerHost(env: NodeJS.ProcessEnv = process.env): DockerHost {
  const url =
    env.DOCKER_HOST?.trim() ||
    (process.platform === 'win32' ? 'npipe:////./pipe/docker_engine' : 'unix:///var/run/docker.sock');
  const tls = Boolean(env.DOCKER_TLS_VERIFY) || Boolean(env.DOCKER_CERT_PATH);
  if (url.startsWith('unix://'))
    return { url, scheme: 'unix', socketPath: url.slice('unix://'.length), tls, local: true };
  if (url.startsWith('npipe://'))
    return { url, scheme: 'npipe', socketPath: url.slice('npipe://'.length), tls, local: true };
  if (/^(tcp|https?):\/\//.test(url)) {
    try {
      const parsed = new URL(url.replace(/^tcp:/, 'http:'));
      return {
        url,
        scheme: 'tcp',
        host: parsed.hostname,
        port: Number(parsed.port || (tls ? 2376 : 2375)),
        tls,
        local: LOOPBACK.has(parsed.hostname),
      };
    } catch {
      return { url, scheme: 'other', tls, local: false };
    }
  }
  return { url, scheme: url.startsWith('ssh://') ? 'ssh' : 'other', tls, local: false };
}

export interface EngineVersion {
  version: string;
  apiVersion: string;
  os: string;
  arch: string;
}

/** The engine's version, or an MpError saying why it cannot be reached and what to do. */
export async function dockerEngineVersion(docker?: Docker, timeoutMs = 5000): Promise<EngineVersion> {
  docker ??= await connectDocker();
  try {
    const v = (await Promise.race([
      docker.version(),
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs).unref(),
      ),
    ])) as { Version: string; ApiVersion: string; Os: string; Arch: string };
    return { version: v.Version, apiVersion: v.ApiVersion, os: v.Os, arch: v.Arch };
  } catch (error) {
    throw dockerUnavailable(error);
  }
}

export function dockerUnavailable(error: unknown, env: NodeJS.ProcessEnv = process.env): MpError {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as NodeJS.ErrnoException)?.code;
  const denied = code === 'EACCES' || /EACCES|permission denied/i.test(message);
  return new MpError({
    code: 'DOCKER_UNAVAILABLE',
    message: `The Docker engine is not reachable at ${dockerEndpoint(env)}: ${message}`,
    hint: denied
      ? 'Your user may not use the Docker socket: add it to the docker group (`sudo usermod -aG docker $USER`) and log in again.'
      : 'Start the Docker engine (Docker Desktop, or `sudo systemctl start docker` / `sudo dockerd &`), or set DOCKER_HOST to a running engine. `mp doctor` checks it.',
    cause: error,
  });
}
