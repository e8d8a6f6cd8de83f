/**
 * The Docker engine connection. dockerode reads DOCKER_HOST (unix://, tcp://, ssh://,
 * npipe://) and DOCKER_TLS_VERIFY/DOCKER_CERT_PATH itself, so a remote engine works the same
 * as the local one.
 */
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

/** A client for the engine `DOCKER_HOST` names (dockerode is loaded by the first call). */
export async function connectDocker(): Promise<Docker> {
  const Dockerode = await loadDockerode();
  return new Dockerode();
}

/** Where the engine is expected, for messages. */
export function dockerEndpoint(env: NodeJS.ProcessEnv = process.env): string {
  return (
    env.DOCKER_HOST?.trim() ||
    (process.platform === 'win32' ? 'npipe:////./pipe/docker_engine' : 'unix:///var/run/docker.sock')
  );
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

export function dockerUnavailable(error: unknown): MpError {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as NodeJS.ErrnoException)?.code;
  const denied = code === 'EACCES' || /EACCES|permission denied/i.test(message);
  return new MpError({
    code: 'DOCKER_UNAVAILABLE',
    message: `The Docker engine is not reachable at ${dockerEndpoint()}: ${message}`,
    hint: denied
      ? 'Your user may not use the Docker socket: add it to the docker group (`sudo usermod -aG docker $USER`) and log in again.'
      : 'Start the Docker engine (Docker Desktop, or `sudo systemctl start docker` / `sudo dockerd &`), or set DOCKER_HOST to a running engine. `mp doctor` checks it.',
    cause: error,
  });
}
