/**
 * The Docker engines targets build on: config `engines` (addresses, Docker contexts, or objects
 * with TLS material), else the one engine DOCKER_HOST names. Each becomes an environment of its own
 * (DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH, MP_DOCKER_MOUNTS), which is all a build needs:
 * `createBuild({ env })` talks to that engine, and copies sources into volumes when it is not on
 * this machine. How many targets an engine takes at once comes from `parallel`, else from its own
 * cores and memory (`docker info`).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { availableParallelism, homedir, totalmem } from 'node:os';
import { join } from 'node:path';
import type { ResolvedEngine } from '../config/types.ts';
import { describeError, MpError } from '../errors.ts';
import { connectDocker, dockerEndpoint } from '../toolchain/engine.ts';
import { pingEngine } from '../toolchain/engine-http.ts';
import { sha256Hex } from '../util/hash.ts';

/** An engine to build on: its name in the output and the environment that reaches it. */
export interface Engine {
  name: string;
  env: NodeJS.ProcessEnv;
  /** Slots the config gives it (its own `parallel`, else the top-level one). */
  parallel?: number;
}

/** An engine that answered, with its slots. */
export interface ReadyEngine extends Engine {
  slots: number;
  /** What `docker info` said of it (absent when `parallel` made asking unnecessary). */
  cpus?: number;
  memory?: number;
}

/** What a build needs of a machine: a core and this much memory per target building at once. */
const MEMORY_PER_BUILD = 2 * 1024 ** 3;

/**
 * Targets at once on a machine with these cores and this memory: one per core, as long as each
 * has 2 GiB (an ESP-IDF build with `make -j` takes about that); at least one.
 */
export function defaultParallel(cpus: number, memory: number): number {
  return Math.max(1, Math.min(cpus, Math.floor(memory / MEMORY_PER_BUILD)));
}

/** This machine's default, for when an engine does not say (and for the local engine's fallback). */
export function localParallel(): number {
  return defaultParallel(availableParallelism(), totalmem());
}

const DOCKER_VARIABLES = [
  'DOCKER_HOST',
  'DOCKER_TLS_VERIFY',
  'DOCKER_CERT_PATH',
  'DOCKER_CONTEXT',
  'MP_DOCKER_MOUNTS',
];

/**
 * The engines of the config, each with its environment: `env` with the DOCKER_* variables of that
 * engine alone (one engine's TLS material never reaches another). No `engines`: `env` as it is.
 */
export async function resolveEngines(
  engines: ResolvedEngine[],
  options: { env?: NodeJS.ProcessEnv; parallel?: number } = {},
): Promise<Engine[]> {
  const env = options.env ?? process.env;
  if (engines.length === 0) return [{ name: dockerEndpoint(env), env, parallel: options.parallel }];
  const out: Engine[] = [];
  for (const engine of engines) {
    const own: NodeJS.ProcessEnv = { ...env };
    for (const name of DOCKER_VARIABLES) delete own[name];
    let { host, certPath, tlsVerify } = engine;
    if (engine.context && engine.context !== 'default') {
      const context = await readDockerContext(engine.context, env);
      host = context.host;
      certPath ??= context.certPath;
      tlsVerify ??= context.tlsVerify;
    }
    if (engine.context === 'default') Object.assign(own, pick(env, DOCKER_VARIABLES));
    if (host) own.DOCKER_HOST = host;
    if (certPath) own.DOCKER_CERT_PATH = certPath;
    if (tlsVerify) own.DOCKER_TLS_VERIFY = '1';
    if (engine.mounts) own.MP_DOCKER_MOUNTS = engine.mounts;
    out.push({ name: engine.name, env: own, parallel: engine.parallel ?? options.parallel });
  }
  const names = out.map((e) => e.name);
  const twice = names.find((name, i) => names.indexOf(name) !== i);
  if (twice) {
    throw new MpError({
      code: 'CONFIG_INVALID',
      message: `The config names the engine ${twice} twice in \`engines\``,
      hint: 'Name each engine once; give it `parallel: N` for more targets at once, or a `name` of its own if two entries are different engines.',
      exitCode: 2,
    });
  }
  return out;
}

function pick(env: NodeJS.ProcessEnv, names: string[]): NodeJS.ProcessEnv {
  return Object.fromEntries(names.filter((n) => env[n] !== undefined).map((n) => [n, env[n]]));
}

/** Where Docker's client keeps its contexts: `$DOCKER_CONFIG`, else `~/.docker`. */
function dockerConfigDir(env: NodeJS.ProcessEnv): string {
  return env.DOCKER_CONFIG || join(env.HOME ?? homedir(), '.docker');
}

/**
 * A Docker context as `docker context create` stores it: `contexts/meta/<sha256 of the name>/meta.json`
 * holds the address, `contexts/tls/<same>/docker/` the certificates (when it has any).
 */
export async function readDockerContext(
  name: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ host: string; certPath?: string; tlsVerify?: boolean }> {
  const dir = dockerConfigDir(env);
  const id = sha256Hex(name);
  const metaFile = join(dir, 'contexts', 'meta', id, 'meta.json');
  let meta: { Endpoints?: { docker?: { Host?: string; SkipTLSVerify?: boolean } } };
  try {
    meta = JSON.parse(await readFile(metaFile, 'utf8'));
  } catch (error) {
    throw new MpError({
      code: 'ENGINE_CONTEXT_UNKNOWN',
      message: `The Docker context "${name}" named in \`engines\` was not found (${metaFile}: ${describeError(error)})`,
      file: metaFile,
      hint: `\`docker context ls\` lists the contexts; create it with \`docker context create ${name} --docker host=…\`, or write its address (tcp://…, ssh://…) in \`engines\` instead.`,
      exitCode: 2,
    });
  }
  const endpoint = meta.Endpoints?.docker;
  if (!endpoint?.Host) {
    throw new MpError({
      code: 'ENGINE_CONTEXT_UNKNOWN',
      message: `The Docker context "${name}" has no Docker endpoint (${metaFile})`,
      file: metaFile,
      hint: `Give it one (\`docker context update ${name} --docker host=…\`), or write the engine's address in \`engines\`.`,
      exitCode: 2,
    });
  }
  const tls = join(dir, 'contexts', 'tls', id, 'docker');
  const hasTls = existsSync(join(tls, 'cert.pem'));
  return {
    host: endpoint.Host,
    certPath: hasTls ? tls : undefined,
    tlsVerify: hasTls ? !endpoint.SkipTLSVerify : undefined,
  };
}

/**
 * Asks each engine for its cores and memory (unless its slots are given) and whether it answers at
 * all: engines that do not are left out, with why.
 */
export async function probeEngines(
  engines: Engine[],
  timeoutMs = 10_000,
): Promise<{ ready: ReadyEngine[]; unreachable: Array<{ engine: Engine; error: MpError }> }> {
  const answers = await Promise.all(
    engines.map(async (engine) => {
      try {
        return { engine, ready: await probeEngine(engine, timeoutMs) };
      } catch (error) {
        return { engine, error: engineError(engine, error) };
      }
    }),
  );
  return {
    ready: answers.flatMap((a) => (a.ready ? [a.ready] : [])),
    unreachable: answers.flatMap((a) => (a.error ? [{ engine: a.engine, error: a.error }] : [])),
  };
}

async function probeEngine(engine: Engine, timeoutMs: number): Promise<ReadyEngine> {
  await pingEngine(engine.env, timeoutMs);
  if (engine.parallel) return { ...engine, slots: engine.parallel };
  const docker = await connectDocker(engine.env);
  const info = (await withTimeout(docker.info(), timeoutMs)) as { NCPU?: number; MemTotal?: number };
  const cpus = info.NCPU ?? availableParallelism();
  const memory = info.MemTotal ?? totalmem();
  return { ...engine, slots: defaultParallel(cpus, memory), cpus, memory };
}

/** Whether the engine answers now: a build that failed on an engine that does not is the engine's failure. */
export async function engineAnswers(engine: Engine, timeoutMs = 3000): Promise<boolean> {
  return pingEngine(engine.env, timeoutMs).then(
    () => true,
    () => false,
  );
}

export function engineError(engine: Engine, error: unknown): MpError {
  return new MpError({
    code: 'ENGINE_FAILED',
    message: `Docker engine ${engine.name} failed: ${describeError(error)}`,
    hint: 'Check that engine (`docker --host … info`, or `mp doctor` with DOCKER_HOST set to it); the other engines go on without it.',
    cause: error,
  });
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return Promise.race([
    promise,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`no answer within ${ms / 1000} s`)), ms).unref(),
    ),
  ]);
}
