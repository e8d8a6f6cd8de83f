/**
 * Leased toolchain containers: how a container outlives the `mp build` that started it, so the next
 * build (a new process, a second later) runs make at once instead of starting one, and how it is
 * sure to go away when nobody uses it any more, even when mp was killed with -9 and no process of
 * mp is left to remove it.
 *
 * The container's main process is a watchdog (shell, in the toolchain image): every second it reads
 * the lease file in the container's build folder, `.mp-lease-<spec hash>`, which holds the lease's
 * length in seconds and a token. mp writes a new token when a build takes the container and every
 * few seconds while the build holds it. When the token has not changed for the lease's length, or
 * the file is gone (`mp clean` removed the folder), the watchdog exits, and the container stops and,
 * being AutoRemove, is deleted by the engine. No host process, no clock shared with the host: the
 * watchdog counts its own seconds.
 *
 * A later build finds the container by its `mp.spec` label (the hash of everything it was started
 * with: image, mounts, environment, user, project, board) and takes it only while its lease has a
 * few seconds left, so the watchdog cannot exit under it. `mp stop` and `mp clean` remove leased
 * containers at once. Leases need the build folder bind-mounted and the engine's plain HTTP API
 * (the local socket, tcp://): other engines get a container per build, as before.
 *
 *   MP_CONTAINER_LEASE=600   seconds (or `90s`, `10m`, `1h`) of idle time; `0`: no lease.
 *                            Default 10 minutes, and no lease when CI is set (one build per job).
 */
import { randomBytes } from 'node:crypto';
// Synchronous file calls for the lease's few tiny files (see util/lock.ts for why).
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, posix } from 'node:path';
import { CancelledError, MpError } from '../errors.ts';
import { statQuietly } from '../util/fs.ts';
import { hashOf } from '../util/hash.ts';
import {
  type DockerContainerSpec,
  followExec,
  LineSplitter,
  ownerLabels,
  TOOLCHAIN_LABEL,
} from './container.ts';
import { type EngineApi, engineApi, FrameReader } from './engine-api.ts';
import { engineAddress } from './engine-http.ts';
import type { ContainerScope, ExecOptions, ExecResult } from './toolchain.ts';

/** Every leased container carries it, with the lease's length at its start as the value. */
export const LEASE_LABEL = 'mp.lease';
export const SPEC_LABEL = 'mp.spec';
/** The mp cache (MP_CACHE_DIR) a container's sources come from: `mp clean --all` stops those. */
export const CACHE_LABEL = 'mp.cache';
const MOUNTS_LABEL = 'mp.mounts';
const ENTRYPOINT_LABEL = 'mp.entrypoint';
export const DEFAULT_LEASE_SECONDS = 600;
/**
 * A container whose lease has less left than this is not taken: its watchdog, reading the lease
 * once a second, may exit before the renewal lands. (A held one always has two thirds left.)
 */
const LEASE_MARGIN_MS = 1500;

/** The idle time a container may outlive its build by: `MP_CONTAINER_LEASE`, else 10 min (0 under CI). */
export function leaseSecondsFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.MP_CONTAINER_LEASE?.trim();
  if (raw) {
    const m = /^(\d+(?:\.\d+)?)\s*(s|m|h)?$/i.exec(raw);
    if (m) return Math.round(Number(m[1]) * { s: 1, m: 60, h: 3600 }[(m[2] ?? 's').toLowerCase() as 's']);
  }
  return env.CI && env.CI !== 'false' && env.CI !== '0' ? 0 : DEFAULT_LEASE_SECONDS;
}

/**
 * The container's main process. `$1` is the lease file. It exits when the file is gone, unreadable,
 * or unchanged for as many of its own seconds as the file's first word says.
 */
export const WATCHDOG = `f="$1"; last=""; idle=0
while :; do
  { read -r line < "$f"; } 2>/dev/null || exit 0
  secs=\${line%% *}
  case "$secs" in ''|*[!0-9]*) exit 0 ;; esac
  if [ "$line" != "$last" ]; then last="$line"; idle=0; else idle=$((idle + 1)); fi
  [ "$idle" -ge "$secs" ] && exit 0
  sleep 1
done`;

export interface LeaseOptions {
  /** Idle seconds the container may outlive the process holding it. */
  seconds: number;
  /** The folder the watchdog reads the lease from: `host` on this machine, `container` inside. */
  folder: { host: string; container: string };
}

/** Whether a spec can be leased on the engine of `env`: the engine speaks plain HTTP. */
export function leaseAvailable(env: NodeJS.ProcessEnv = process.env): boolean {
  return !engineAddress(env).needsDockerode;
}

/**
 * The folders a container's bind mounts hold, by device and inode: a bind mount keeps the folder
 * it was made with, so one deleted and made again on the host is no longer what the container sees.
 */
async function mountsIdentity(spec: DockerContainerSpec): Promise<string> {
  const ids: string[] = [];
  for (const m of spec.mounts) {
    if ('volume' in m) continue;
    const info = statQuietly(m.host);
    ids.push(`${m.container}=${info ? `${info.dev}:${info.ino}` : 'none'}`);
  }
  return hashOf(ids).slice(0, 24);
}

/** The label that finds a container again: everything it was started with. */
export function specHash(spec: DockerContainerSpec): string {
  return hashOf({ spec, host: hostname() }).slice(0, 24);
}

interface ContainerSummary {
  Id: string;
  State?: string;
  Labels?: Record<string, string>;
}

/**
 * A leased toolchain container, driven over the engine's plain HTTP API. Same surface as
 * DockerContainer for bind-mounted builds: exec, killProcesses, stop; plus the lease.
 */
export class LeasedContainer {
  readonly id: string;
  readonly spec: DockerContainerSpec;
  /** True when this process found it running (an earlier build started it). */
  readonly reused: boolean;
  private readonly api: EngineApi;
  private readonly entrypoint: string[];
  private readonly leaseFile: string;
  private seconds: number;
  private renewals = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;

  private constructor(
    api: EngineApi,
    id: string,
    spec: DockerContainerSpec,
    entrypoint: string[],
    leaseFile: string,
    seconds: number,
    reused: boolean,
  ) {
    this.api = api;
    this.id = id;
    this.spec = spec;
    this.entrypoint = entrypoint;
    this.leaseFile = leaseFile;
    this.seconds = seconds;
    this.reused = reused;
  }

  /** Starts a container whose main process is the watchdog, with a lease taken for this process. */
  static async start(
    spec: DockerContainerSpec,
    lease: LeaseOptions,
    options: { env?: NodeJS.ProcessEnv; signal?: AbortSignal } = {},
  ): Promise<LeasedContainer> {
    const api = engineApi(engineAddress(options.env));
    if (options.signal?.aborted) throw new CancelledError('compile');
    const hash = specHash(spec);
    const name = `.mp-lease-${hash.slice(0, 12)}`;
    const leaseFile = join(lease.folder.host, name);
    // The lease exists before the watchdog first reads it.
    await writeLease(leaseFile, lease.seconds, 0);
    let entrypoint: string[] = [];
    try {
      const image = await api.json<{ Config?: { Entrypoint?: string[] | string | null } }>(
        'GET',
        `/images/${encodeURIComponent(spec.image)}/json`,
      );
      const configured = image.Config?.Entrypoint;
      if (spec.useEntrypoint !== false && configured)
        entrypoint = Array.isArray(configured) ? configured : ['sh', '-c', configured];
    } catch (error) {
      throw asEngineError(error, `inspecting image ${spec.image}`);
    }
    let id: string;
    try {
      ({ Id: id } = await api.json<{ Id: string }>('POST', '/containers/create', {
        Image: spec.image,
        Entrypoint: ['sh', '-c', WATCHDOG, 'mp-lease', posix.join(lease.folder.container, name)],
        Cmd: [],
        Tty: false,
        Labels: {
          ...ownerLabels(),
          'mp.started': new Date().toISOString(),
          [LEASE_LABEL]: String(lease.seconds),
          [SPEC_LABEL]: hash,
          [MOUNTS_LABEL]: await mountsIdentity(spec),
          [ENTRYPOINT_LABEL]: JSON.stringify(entrypoint),
          ...spec.labels,
        },
        User: spec.user ?? '',
        WorkingDir: spec.workdir,
        // The watchdog's sleep must not wait for a SIGTERM it ignores as PID 1: stop means kill.
        StopSignal: 'SIGKILL',
        HostConfig: {
          AutoRemove: true,
          Mounts: spec.mounts.map((m) =>
            'volume' in m
              ? {
                  Type: 'volume',
                  Source: m.volume,
                  Target: m.container,
                  ReadOnly: m.readOnly ?? false,
                  VolumeOptions: { Labels: m.labels ?? {} },
                }
              : { Type: 'bind', Source: m.host, Target: m.container, ReadOnly: m.readOnly ?? false },
          ),
        },
      }));
    } catch (error) {
      throw asEngineError(error, `creating a container from ${spec.image}`);
    }
    try {
      await api.json('POST', `/containers/${id}/start`);
    } catch (error) {
      await api.json('DELETE', `/containers/${id}?force=1`).catch(() => undefined);
      throw asEngineError(error, `starting a container from ${spec.image}`);
    }
    const started = new LeasedContainer(api, id, spec, entrypoint, leaseFile, lease.seconds, false);
    started.hold();
    if (options.signal?.aborted) {
      await started.stop();
      throw new CancelledError('compile');
    }
    return started;
  }

  /**
   * A running container started with exactly `spec` whose lease has time left, renewed and held
   * for this process; undefined when there is none. One that is about to expire is removed.
   */
  static async find(
    spec: DockerContainerSpec,
    lease: LeaseOptions,
    options: { env?: NodeJS.ProcessEnv } = {},
  ): Promise<LeasedContainer | undefined> {
    const api = engineApi(engineAddress(options.env));
    const hash = specHash(spec);
    const filters = encodeURIComponent(JSON.stringify({ label: [`${SPEC_LABEL}=${hash}`] }));
    const list = await api.json<ContainerSummary[]>('GET', `/containers/json?filters=${filters}`);
    const leaseFile = join(lease.folder.host, `.mp-lease-${hash.slice(0, 12)}`);
    for (const info of list) {
      const labels = info.Labels ?? {};
      // What the watchdog goes by: the length the last holder wrote, from when it wrote it.
      const renewed = statQuietly(leaseFile);
      const length = Number(readLeaseText(leaseFile).split(' ')[0]);
      const left = renewed && length ? renewed.mtimeMs + length * 1000 - Date.now() : -1;
      // With less than the margin left the watchdog may exit at any moment: not this one.
      // A folder replaced since (a checkout that removed and made `modules/` again) is not what
      // the container sees: its mount still holds the old one.
      const stale = labels[MOUNTS_LABEL] !== (await mountsIdentity(spec));
      if (info.State !== 'running' || left < LEASE_MARGIN_MS || stale) {
        await api.json('DELETE', `/containers/${info.Id}?force=1`).catch(() => undefined);
        continue;
      }
      let entrypoint: string[] = [];
      try {
        entrypoint = JSON.parse(labels[ENTRYPOINT_LABEL] ?? '[]') as string[];
      } catch {
        continue;
      }
      const found = new LeasedContainer(api, info.Id, spec, entrypoint, leaseFile, lease.seconds, true);
      await found.renew();
      found.hold();
      return found;
    }
    return undefined;
  }

  get stopped(): boolean {
    return this.stopping !== undefined;
  }

  /** Writes a new token: the watchdog's idle count starts again. */
  async renew(): Promise<void> {
    if (this.stopped) return;
    await writeLease(this.leaseFile, this.seconds, ++this.renewals).catch(() => undefined);
  }

  /** Renews the lease every third of it (at least every 10 s) while this process holds the container. */
  hold(): void {
    if (this.timer) return;
    const every = Math.max(500, Math.min(10_000, (this.seconds * 1000) / 3));
    this.timer = setInterval(() => void this.renew(), every);
    this.timer.unref();
  }

  /** Lets the container go: one last renewal, then it lives on for the lease unless a build takes it. */
  async release(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.renew();
  }

  async exec(script: string, options: ExecOptions & { user?: string } = {}): Promise<ExecResult> {
    if (this.stopped || options.signal?.aborted) throw new CancelledError('compile');
    const env = { ...this.spec.env, ...options.env };
    let stream: import('node:http').IncomingMessage;
    let execId: string;
    try {
      ({ Id: execId } = await this.api.json<{ Id: string }>('POST', `/containers/${this.id}/exec`, {
        Cmd: [...this.entrypoint, 'sh', '-c', script],
        AttachStdout: true,
        AttachStderr: true,
        Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
        WorkingDir: options.workdir ?? this.spec.workdir,
        User: options.user ?? this.spec.user ?? '',
      }));
      stream = await this.api.stream('POST', `/exec/${execId}/start`, { Detach: false, Tty: false });
    } catch (error) {
      if (this.stopped) throw new CancelledError('compile');
      throw asEngineError(error, 'running a command in the toolchain container');
    }
    const lines = new LineSplitter((line) => options.onLine?.(line));
    const frames = new FrameReader((chunk) => lines.push(chunk));
    stream.on('data', (chunk: Buffer) => frames.push(chunk));
    return followExec(
      this,
      stream,
      lines,
      options.signal,
      async () => (await this.api.json<{ ExitCode: number | null }>('GET', `/exec/${execId}/json`)).ExitCode,
      asEngineError,
    );
  }

  /** TERM, then KILL, to every process but the watchdog (`kill -1` spares PID 1). */
  async killProcesses(): Promise<void> {
    if (this.stopped) return;
    await this.exec('kill -TERM -1 2>/dev/null; sleep 1; kill -KILL -1 2>/dev/null; true').catch(
      () => undefined,
    );
  }

  /** Removes the container now (idempotent). */
  stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.stopping ??= this.api.json('DELETE', `/containers/${this.id}?force=1`).then(
      () => undefined,
      (error: unknown) => {
        const status = (error as { statusCode?: number }).statusCode;
        if (status !== 404 && status !== 409)
          throw asEngineError(error, `removing toolchain container ${this.id.slice(0, 12)}`);
      },
    );
    return this.stopping;
  }
}

/** A new token, by rename so the watchdog never reads half of one (no fsync: it is not data). */
/** The lease file's text, '' when it cannot be read. */
function readLeaseText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

async function writeLease(file: string, seconds: number, renewal: number): Promise<void> {
  const temp = `${file}.${process.pid}.${randomBytes(3).toString('hex')}.tmp`;
  try {
    writeFileSync(temp, `${seconds} ${process.pid}-${renewal}-${randomBytes(3).toString('hex')}\n`);
    renameSync(temp, file);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
}

/**
 * Removes leased toolchain containers at once (`mp stop`, `mp clean`): those of `scope` (a
 * project's, those made from one mp cache), or every one on the engine when it names neither.
 * Returns the ids removed.
 */
export async function removeLeasedContainers(
  scope: ContainerScope,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string[]> {
  if (!leaseAvailable(env)) return [];
  const api = engineApi(engineAddress(env));
  const label = [
    TOOLCHAIN_LABEL,
    LEASE_LABEL,
    ...(scope.project ? [`mp.project=${scope.project}`] : []),
    ...(scope.cache ? [`${CACHE_LABEL}=${scope.cache}`] : []),
  ];
  const filters = encodeURIComponent(JSON.stringify({ label }));
  const list = await api.json<ContainerSummary[]>('GET', `/containers/json?all=1&filters=${filters}`);
  const removed: string[] = [];
  for (const info of list) {
    await api.json('DELETE', `/containers/${info.Id}?force=1`).then(
      () => removed.push(info.Id),
      () => undefined,
    );
  }
  return removed;
}

function asEngineError(error: unknown, doing: string): MpError {
  if (error instanceof MpError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new MpError({
    code: 'CONTAINER_FAILED',
    message: `Docker failed while ${doing}: ${message.replace(/^\(HTTP code \d+\)\s*/i, '')}`,
    step: 'compile',
    hint: 'Check the engine with `docker info` and `mp doctor`; free disk space if the engine is out of it.',
    cause: error,
  });
}
