/**
 * A long-lived toolchain container that commands are exec'd in. `mp build` starts one, runs make
 * and removes it; `mp dev` keeps one warm across rebuilds and runs incremental make in it.
 *
 * No orphans, ever:
 *  - the container's main process is `cat` reading a stdin that only this process holds open. If mp
 *    dies in any way (kill -9 included) the engine closes that stdin, `cat` ends, the container stops
 *    and, being `AutoRemove`, is deleted;
 *  - `stop()` force-removes it (SIGKILL to everything inside) on success, failure and Ctrl-C;
 *  - containers are labelled with their owner (`mp.owner=<host>:<pid>`), and every start sweeps away
 *    labelled containers whose owner process on this host is gone (a belt to the braces above).
 *
 * A container meant to outlive its command (`mp build` leaving it warm for the next one) is not
 * started here but in lease.ts: its main process is a watchdog that ends it when the lease expires.
 */
import { hostname } from 'node:os';
import { PassThrough } from 'node:stream';
import type Dockerode from 'dockerode';
import { CancelledError, MpError } from '../errors.ts';
import { connectDocker, dockerUnavailable } from './engine.ts';
import type { ExecOptions, ExecResult } from './toolchain.ts';

/** Every toolchain container mp starts carries this label. */
export const TOOLCHAIN_LABEL = 'mp.toolchain';

/**
 * A bind mount of a host folder, or a named volume (for engines that cannot see the host's files:
 * see `mountModeFor`); volumes are created on first use and carry `labels`.
 */
export type ContainerMount =
  | { host: string; container: string; readOnly?: boolean }
  | { volume: string; container: string; readOnly?: boolean; labels?: Record<string, string> };

export interface DockerContainerSpec {
  /** Image reference or id. */
  image: string;
  mounts: ContainerMount[];
  /** Environment of every exec. */
  env?: Record<string, string>;
  /** `uid:gid` to run commands as (the host user, so no root-owned files are left behind). */
  user?: string;
  /** Working directory of every exec. */
  workdir?: string;
  /** Extra labels (`mp.project`, `mp.board`), besides the owner labels. */
  labels?: Record<string, string>;
  /**
   * Run commands through the image's ENTRYPOINT, as `docker run <image> <cmd>` would (default true):
   * images like espressif/idf set up their environment there.
   */
  useEntrypoint?: boolean;
}

/** A command as the engine runs it: as another user than the container's, for one. */
export interface DockerExecOptions extends ExecOptions {
  user?: string;
}

export interface StartOptions {
  docker?: Dockerode;
  signal?: AbortSignal;
}

/** Labels naming this process as the owner. */
export function ownerLabels(): Record<string, string> {
  return {
    [TOOLCHAIN_LABEL]: '1',
    'mp.owner': `${hostname()}:${process.pid}`,
    'mp.owner.host': hostname(),
    'mp.owner.pid': String(process.pid),
  };
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes toolchain containers whose owning mp process (on this host) no longer runs. Containers
 * owned by other hosts sharing a remote engine are left alone. Returns the ids removed.
 */
export async function removeOrphanContainers(
  docker?: Dockerode,
  options: { host?: string; isAlive?: (pid: number) => boolean } = {},
): Promise<string[]> {
  docker ??= await connectDocker();
  const host = options.host ?? hostname();
  const isAlive = options.isAlive ?? processAlive;
  const list = await docker.listContainers({
    all: true,
    filters: JSON.stringify({ label: [TOOLCHAIN_LABEL] }),
  });
  const removed: string[] = [];
  for (const info of list) {
    const labels = info.Labels ?? {};
    const pid = Number(labels['mp.owner.pid']);
    // A leased container outlives its starter on purpose, and ends itself (lease.ts).
    if (labels['mp.lease'] !== undefined) continue;
    if (labels['mp.owner.host'] !== host || !Number.isInteger(pid) || isAlive(pid)) continue;
    await docker
      .getContainer(info.Id)
      .remove({ force: true })
      .then(
        () => removed.push(info.Id),
        () => undefined,
      );
  }
  return removed;
}

/**
 * The rest of an exec, for either engine client: its output stream (already wired to `lines`) to
 * its end, the processes killed when `signal` aborts, then the exit code `exitCode` reads (a
 * failure there worded by the client's `asError`). A container stopped meanwhile, or an abort, is
 * a CancelledError.
 */
export async function followExec(
  container: { readonly stopped: boolean; killProcesses(): Promise<void> },
  stream: NodeJS.ReadableStream,
  lines: LineSplitter,
  signal: AbortSignal | undefined,
  exitCode: () => Promise<number | null | undefined>,
  asError: (error: unknown, doing: string) => MpError,
): Promise<ExecResult> {
  let killing: Promise<void> | undefined;
  const onAbort = () => {
    killing = container.killProcesses();
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await new Promise<void>((resolve, reject) => {
      stream.on('end', resolve);
      stream.on('close', resolve);
      stream.on('error', (error) => (container.stopped ? resolve() : reject(error)));
    });
  } finally {
    signal?.removeEventListener('abort', onAbort);
    lines.flush();
  }
  if (killing) await killing;
  if (container.stopped || signal?.aborted) throw new CancelledError('compile');
  try {
    return { exitCode: (await exitCode()) ?? -1 };
  } catch (error) {
    if (container.stopped) throw new CancelledError('compile');
    throw asError(error, 'reading the exit code of a command in the toolchain container');
  }
}

/** Splits a byte stream into lines at `\n`, `\r\n` and bare `\r` (progress updates). */
export class LineSplitter {
  private pending = '';
  private readonly onLine: (line: string) => void;
  constructor(onLine: (line: string) => void) {
    this.onLine = onLine;
  }
  push(chunk: Buffer | string): void {
    this.pending += chunk.toString();
    const parts = this.pending.split(/\r\n|\n|\r/);
    this.pending = parts.pop() ?? '';
    for (const part of parts) this.onLine(part);
  }
  flush(): void {
    if (this.pending) this.onLine(this.pending);
    this.pending = '';
  }
}

/** A toolchain container on the Docker engine; {@link dockerToolchain} hands it to builds. */
export class DockerContainer {
  readonly id: string;
  readonly spec: DockerContainerSpec;
  private readonly docker: Dockerode;
  private readonly container: Dockerode.Container;
  private readonly entrypoint: string[];
  private readonly lifeline: NodeJS.ReadWriteStream;
  private stopping: Promise<void> | undefined;

  private constructor(
    docker: Dockerode,
    container: Dockerode.Container,
    spec: DockerContainerSpec,
    entrypoint: string[],
    lifeline: NodeJS.ReadWriteStream,
  ) {
    this.docker = docker;
    this.container = container;
    this.id = container.id;
    this.spec = spec;
    this.entrypoint = entrypoint;
    this.lifeline = lifeline;
  }

  /** Creates and starts the container; it lives until {@link stop} or until this process exits. */
  static async start(spec: DockerContainerSpec, options: StartOptions = {}): Promise<DockerContainer> {
    const docker = options.docker ?? (await connectDocker());
    if (options.signal?.aborted) throw new CancelledError('compile');
    // The sweep runs beside the image lookup: neither waits for the other.
    const sweep = removeOrphanContainers(docker).catch(() => undefined);
    let entrypoint: string[] = [];
    try {
      const image = await docker.getImage(spec.image).inspect();
      const configured = image.Config?.Entrypoint as string[] | string | null | undefined;
      if (spec.useEntrypoint !== false && configured)
        entrypoint = Array.isArray(configured) ? configured : ['sh', '-c', configured];
    } catch (error) {
      throw asEngineError(error, `inspecting image ${spec.image}`);
    }
    await sweep;
    let container: Dockerode.Container;
    try {
      container = await docker.createContainer({
        Image: spec.image,
        Entrypoint: ['cat'],
        Cmd: [],
        OpenStdin: true,
        StdinOnce: true,
        AttachStdin: true,
        Tty: false,
        Labels: { ...ownerLabels(), 'mp.started': new Date().toISOString(), ...spec.labels },
        User: spec.user ?? '',
        WorkingDir: spec.workdir,
        HostConfig: {
          AutoRemove: true,
          Mounts: spec.mounts.map((m) =>
            'volume' in m
              ? {
                  Type: 'volume' as const,
                  Source: m.volume,
                  Target: m.container,
                  ReadOnly: m.readOnly ?? false,
                  // NoCopy and DriverConfig are optional to the engine, not to @types/dockerode.
                  VolumeOptions: { Labels: m.labels ?? {} } as Dockerode.MountSettings['VolumeOptions'],
                }
              : { Type: 'bind' as const, Source: m.host, Target: m.container, ReadOnly: m.readOnly ?? false },
          ),
        },
      });
    } catch (error) {
      throw asEngineError(error, `creating a container from ${spec.image}`);
    }
    let lifeline: NodeJS.ReadWriteStream | undefined;
    try {
      lifeline = (await container.attach({
        stream: true,
        stdin: true,
        stdout: false,
        stderr: false,
        hijack: true,
      })) as NodeJS.ReadWriteStream;
      // Swallow socket errors: the lifeline ends when the container goes, which is expected.
      lifeline.on('error', () => undefined);
      await container.start();
    } catch (error) {
      await container.remove({ force: true }).catch(() => undefined);
      lifeline?.end();
      throw asEngineError(error, `starting a container from ${spec.image}`);
    }
    const started = new DockerContainer(docker, container, spec, entrypoint, lifeline);
    if (options.signal?.aborted) {
      await started.stop();
      throw new CancelledError('compile');
    }
    return started;
  }

  get stopped(): boolean {
    return this.stopping !== undefined;
  }

  /**
   * Runs a shell script (`sh -c`) in the container, streaming its output. Resolves with the exit code
   * (non-zero is not an error here: the caller knows what a failure means).
   */
  async exec(script: string, options: DockerExecOptions = {}): Promise<ExecResult> {
    if (this.stopped) throw new CancelledError('compile');
    if (options.signal?.aborted) throw new CancelledError('compile');
    const env = { ...this.spec.env, ...options.env };
    let exec: Dockerode.Exec;
    let stream: NodeJS.ReadableStream;
    try {
      exec = await this.container.exec({
        Cmd: [...this.entrypoint, 'sh', '-c', script],
        AttachStdout: true,
        AttachStderr: true,
        Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
        WorkingDir: options.workdir ?? this.spec.workdir,
        User: options.user ?? this.spec.user ?? '',
      });
      stream = (await exec.start({ hijack: true, stdin: false })) as NodeJS.ReadableStream;
    } catch (error) {
      if (this.stopped) throw new CancelledError('compile');
      throw asEngineError(error, 'running a command in the toolchain container');
    }
    const lines = new LineSplitter((line) => options.onLine?.(line));
    const sink = new PassThrough();
    sink.on('data', (chunk: Buffer) => lines.push(chunk));
    this.docker.modem.demuxStream(stream, sink, sink);
    return followExec(
      this,
      stream,
      lines,
      options.signal,
      async () => (await exec.inspect()).ExitCode,
      asEngineError,
    );
  }

  /**
   * Stops what runs in the container without removing it (a rebuild of `mp dev` superseded by a newer
   * save): TERM, then KILL, to every process but the container's main one. `kill -1` skips PID 1,
   * which is the lifeline.
   */
  async killProcesses(): Promise<void> {
    if (this.stopped) return;
    try {
      const exec = await this.container.exec({
        Cmd: ['sh', '-c', 'kill -TERM -1 2>/dev/null; sleep 1; kill -KILL -1 2>/dev/null; true'],
        User: this.spec.user ?? '',
        AttachStdout: true,
        AttachStderr: true,
      });
      const stream = (await exec.start({ hijack: true, stdin: false })) as NodeJS.ReadableStream;
      await new Promise<void>((resolve) => {
        stream.on('end', resolve);
        stream.on('close', resolve);
        stream.on('error', () => resolve());
        stream.resume();
      });
    } catch {
      // The container is going away anyway.
    }
  }

  /** Unpacks a tar stream into `path` in the container (the engine does it; works with remote engines). */
  async putArchive(tar: NodeJS.ReadableStream, path: string): Promise<void> {
    try {
      // Without copyUIDGID the engine keeps the owners written in the tar headers (copyUIDGID would
      // look the user up in the image's passwd, where the host's uid usually is not).
      await this.container.putArchive(tar, { path });
    } catch (error) {
      if (this.stopped) throw new CancelledError('compile');
      throw asEngineError(error, `copying files into ${path} in the toolchain container`);
    }
  }

  /** A tar stream of `path` in the container, or undefined if it does not exist. */
  async getArchive(path: string): Promise<NodeJS.ReadableStream | undefined> {
    try {
      return (await this.container.getArchive({ path })) as NodeJS.ReadableStream;
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) return undefined;
      if (this.stopped) throw new CancelledError('compile');
      throw asEngineError(error, `copying ${path} out of the toolchain container`);
    }
  }

  /** Kills and removes the container (idempotent; safe to call from an abort handler). */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      try {
        await this.container.remove({ force: true });
      } catch (error) {
        // Already gone (AutoRemove after the lifeline closed) is fine.
        const status = (error as { statusCode?: number }).statusCode;
        if (status !== 404 && status !== 409) {
          this.lifeline.end();
          throw asEngineError(error, `removing toolchain container ${this.id.slice(0, 12)}`);
        }
      }
      this.lifeline.end();
    })();
    return this.stopping;
  }
}

function asEngineError(error: unknown, doing: string): MpError {
  if (error instanceof MpError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ECONNREFUSED' || code === 'ENOENT' || code === 'EACCES' || code === 'ECONNRESET')
    return dockerUnavailable(error);
  const message = error instanceof Error ? error.message : String(error);
  return new MpError({
    code: 'CONTAINER_FAILED',
    message: `Docker failed while ${doing}: ${message.replace(/^\(HTTP code \d+\)\s*[a-z ]*-\s*/i, '')}`,
    step: 'compile',
    hint: 'Check the engine with `docker info` and `mp doctor`; free disk space if the engine is out of it.',
    cause: error,
  });
}
