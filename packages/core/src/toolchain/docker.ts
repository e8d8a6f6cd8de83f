/**
 * The {@link Toolchain} on the Docker engine `DOCKER_HOST` names. A build's folders become bind
 * mounts when the engine sees this machine's files, else named volumes filled by copying (see
 * copy.ts); commands run as the host user; containers and volumes carry the labels `mp clean`
 * and the tests find them by (`mp.project`, `mp.board`, `mp.volume`).
 */

import { existsSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import type Dockerode from 'dockerode';
import { sha256Hex } from '../util/hash.ts';
import {
  CCACHE_DIR,
  CCACHE_TOOL_DIR,
  CCACHE_TOOL_VOLUME,
  ccacheToolReady,
  ensureCcacheDir,
  ensureCcacheTool,
  TOOL_LABEL,
} from './ccache.ts';
import { type ContainerMount, DockerContainer, type DockerContainerSpec } from './container.ts';
import { copyFileOut, type MountMode, mountModeFor, syncIntoContainer } from './copy.ts';
import { connectDocker } from './engine.ts';
import { pingEngine } from './engine-http.ts';
import { ensureImage } from './image.ts';
import {
  CACHE_LABEL,
  LeasedContainer,
  type LeaseOptions,
  leaseAvailable,
  removeLeasedContainers,
} from './lease.ts';
import type {
  ContainerScope,
  CopyInOptions,
  ExecOptions,
  ExecResult,
  Toolchain,
  ToolchainContainer,
  ToolchainMount,
  ToolchainSpec,
} from './toolchain.ts';

export interface DockerToolchainOptions {
  /** Where the engine is (`DOCKER_HOST`) and how folders reach it (`MP_DOCKER_MOUNTS`). */
  env?: NodeJS.ProcessEnv;
  docker?: Dockerode;
}

export function dockerToolchain(options: DockerToolchainOptions = {}): Toolchain {
  const env = options.env ?? process.env;
  return {
    async reuse(spec, { lease }) {
      const leased = leaseFor(spec, mountModeFor(env), env, lease);
      if (!leased) return undefined;
      const tool = spec.ccache ? await toolVolumeSeen(env) : false;
      const found = await LeasedContainer.find(dockerSpec(spec, 'bind', tool), leased, { env });
      return found && new DockerToolchainContainer(found, spec, false);
    },
    removeContainers: (scope) => removeLeasedContainers(scope, env),
    async prepare(request, progress = {}) {
      // The engine's ping beside the image's inspection, one round trip instead of two; when the
      // engine cannot be reached, the ping's "not reachable" is the error shown.
      const [pinged, image] = await Promise.allSettled([
        pingEngine(env),
        ensureImage(request, { ...progress, env, docker: options.docker }),
      ]);
      if (pinged.status === 'rejected') throw pinged.reason;
      if (image.status === 'rejected') throw image.reason;
      return image.value;
    },
    async start(spec, { signal, lease, onTitle } = {}) {
      const mode = mountModeFor(env);
      let tool = false;
      if (spec.ccache) {
        if (mode === 'bind') await ensureCcacheDir(spec.ccache.dir);
        tool = await ensureCcacheTool(dirname(spec.ccache.dir), { env, onTitle });
      }
      const leased = leaseFor(spec, mode, env, lease);
      if (leased) {
        const container = await LeasedContainer.start(dockerSpec(spec, mode, tool), leased, { env, signal });
        return new DockerToolchainContainer(container, spec, false);
      }
      const container = await DockerContainer.start(dockerSpec(spec, mode, tool), {
        signal,
        docker: options.docker ?? (await connectDocker(env)),
      });
      return new DockerToolchainContainer(container, spec, mode === 'copy');
    },
    removeVolumes: (scope) => removeVolumes(scope, options.docker, env),
  };
}

/** When this process last saw the ccache tool volume, per engine (DOCKER_HOST). */
const toolVolumeSeenAt = new Map<string, number>();

/**
 * Whether the engine has the ccache tool volume, for finding a leased container (whose spec names
 * it): a yes is taken as such for a minute, one round trip less for the next builds of a process
 * that builds many times (resident mp, mp dev). A yes gone stale costs nothing: a container that
 * mounts the volume keeps it (the engine removes no volume in use), and one to be started checks
 * again (ensureCcacheTool).
 */
async function toolVolumeSeen(env: NodeJS.ProcessEnv): Promise<boolean> {
  const engine = env.DOCKER_HOST ?? '';
  const seen = toolVolumeSeenAt.get(engine);
  if (seen !== undefined && Date.now() - seen < 60_000) return true;
  const ready = await ccacheToolReady(env);
  if (ready) toolVolumeSeenAt.set(engine, Date.now());
  return ready;
}

/**
 * How a container of `spec` is leased, if it can be: a lease asked for, the build folder
 * bind-mounted (the lease file is written from here), an engine spoken to over plain HTTP.
 */
function leaseFor(
  spec: ToolchainSpec,
  mode: MountMode,
  env: NodeJS.ProcessEnv,
  seconds: number | undefined,
): LeaseOptions | undefined {
  if (!seconds || seconds <= 0 || mode !== 'bind' || !spec.leaseMount || !leaseAvailable(env))
    return undefined;
  const mount = spec.mounts.find((m) => m.container === spec.leaseMount && !m.readOnly);
  return mount ? { seconds, folder: { host: mount.host, container: mount.container } } : undefined;
}

/** The engine's view of a spec: bind mounts or volumes, the host user's uid:gid, labels. */
export function dockerSpec(spec: ToolchainSpec, mode: MountMode, ccacheTool = false): DockerContainerSpec {
  const runAsHost = spec.hostUser !== false && typeof process.getuid === 'function';
  const ccache: ContainerMount[] = [];
  if (spec.ccache) {
    const key = basename(spec.ccache.dir);
    ccache.push(
      mode === 'copy'
        ? {
            volume: `mp-ccache-${key}`,
            container: CCACHE_DIR,
            labels: { 'mp.volume': '1', 'mp.ccache': key, ...cacheLabel(spec.owner) },
          }
        : { host: spec.ccache.dir, container: CCACHE_DIR },
    );
    if (ccacheTool) ccache.push({ volume: CCACHE_TOOL_VOLUME, container: CCACHE_TOOL_DIR, readOnly: true });
  }
  return {
    image: spec.image,
    env: spec.env,
    user: runAsHost ? `${process.getuid!()}:${process.getgid!()}` : undefined,
    workdir: spec.workdir,
    labels: {
      'mp.project': spec.owner.project,
      'mp.board': spec.owner.board,
      ...cacheLabel(spec.owner),
    },
    mounts:
      mode === 'copy'
        ? spec.mounts.map((m) => volumeMount(m, spec.owner)).concat(ccache)
        : spec.mounts
            .filter((m) => !m.optional || existsSync(m.host))
            .map((m): ContainerMount => ({ host: m.host, container: m.container, readOnly: m.readOnly }))
            .concat(ccache),
  };
}

/**
 * `mp-src-<commit>` for a shared key, else `mp-<kind>-<hash of project and key>`: the same names
 * from one build to the next, so make finds its objects again.
 */
export function volumeName(mount: ToolchainMount, project: string): string {
  const { kind, key, shared } = mount.volume;
  if (shared) return `mp-${kind}-${key}`;
  // The JSON of { key, project } with sorted keys, as volumes were named before this module.
  const hash = sha256Hex(JSON.stringify({ key, project }));
  return `mp-${kind}-${hash.slice(0, 16)}`;
}

function volumeMount(mount: ToolchainMount, owner: ToolchainSpec['owner']): ContainerMount {
  return {
    volume: volumeName(mount, owner.project),
    container: mount.container,
    labels: { 'mp.volume': '1', 'mp.project': owner.project, ...cacheLabel(owner) },
  };
}

/** The label naming the mp cache a container or volume was made from (`mp clean --all` takes those). */
function cacheLabel(owner: ToolchainSpec['owner']): Record<string, string> {
  return owner.cache ? { [CACHE_LABEL]: owner.cache } : {};
}

class DockerToolchainContainer implements ToolchainContainer {
  readonly spec: ToolchainSpec;
  readonly copies: boolean;
  private readonly container: DockerContainer | LeasedContainer;
  private owning: Promise<void> | undefined;

  constructor(container: DockerContainer | LeasedContainer, spec: ToolchainSpec, copies: boolean) {
    this.container = container;
    this.spec = spec;
    this.copies = copies;
  }

  get id(): string {
    return this.container.id;
  }

  get stopped(): boolean {
    return this.container.stopped;
  }

  get leased(): boolean {
    return this.container instanceof LeasedContainer;
  }

  get reused(): boolean {
    return this.container instanceof LeasedContainer && this.container.reused;
  }

  async release(): Promise<void> {
    if (this.container instanceof LeasedContainer) await this.container.release();
  }

  exec(script: string, options?: ExecOptions): Promise<ExecResult> {
    return this.container.exec(script, options);
  }

  async copyIn(hostDir: string, containerDir: string, options: CopyInOptions = {}) {
    if (!this.copies || !(this.container instanceof DockerContainer)) return { copied: 0, removed: 0 };
    await this.ownVolumes();
    return syncIntoContainer(this.container, hostDir, containerDir, {
      ...options,
      owner: this.container.spec.user,
    });
  }

  async copyOut(containerPath: string, hostPath: string): Promise<boolean> {
    if (!this.copies || !(this.container instanceof DockerContainer)) return existsSync(hostPath);
    return copyFileOut(this.container, containerPath, hostPath);
  }

  stop(): Promise<void> {
    return this.container.stop();
  }

  /** Fresh volumes belong to root; the commands run as the host user. */
  private ownVolumes(): Promise<void> {
    const { user, mounts } = this.container.spec;
    if (!user || !(this.container instanceof DockerContainer)) return Promise.resolve();
    const container = this.container;
    this.owning ??= (async () => {
      const roots = mounts.map((m) => `'${m.container}'`).join(' ');
      const { exitCode } = await container.exec(`chown ${user} ${roots}`, { user: '0' });
      if (exitCode !== 0) this.owning = undefined;
    })();
    return this.owning;
  }
}

/**
 * The mp volumes of `scope`: a project's, or those made from one mp cache. A volume made before
 * volumes were labelled with their cache counts as any cache's, so `mp clean --all` still takes it.
 */
async function removeVolumes(
  scope: ContainerScope,
  docker?: Dockerode,
  env?: NodeJS.ProcessEnv,
): Promise<{ removed: string[]; notes: string[] }> {
  const out = { removed: [] as string[], notes: [] as string[] };
  let volumes: Array<{ Name: string }>;
  try {
    docker ??= await connectDocker(env);
    const label = scope.project ? ['mp.volume', `mp.project=${scope.project}`] : ['mp.volume'];
    volumes = ((await docker.listVolumes({ filters: JSON.stringify({ label }) })).Volumes ?? []).filter(
      (v) =>
        !scope.cache ||
        // A tool volume (ccache's program) serves every cache on the engine: builds of another
        // cache may be about to mount it, so no cache's clean removes it.
        (v.Labels?.[TOOL_LABEL] === undefined && (v.Labels?.[CACHE_LABEL] ?? scope.cache) === scope.cache),
    );
  } catch (error) {
    out.notes.push(
      `Docker volumes were not checked: ${error instanceof Error ? error.message : String(error)}`,
    );
    return out;
  }
  for (const volume of volumes) {
    try {
      await docker.getVolume(volume.Name).remove();
      out.removed.push(volume.Name);
    } catch (error) {
      out.notes.push(
        `Volume ${volume.Name} was kept: ${error instanceof Error ? error.message : String(error)} (a container may still use it; \`docker volume rm ${volume.Name}\` once it is gone).`,
      );
    }
  }
  return out;
}
