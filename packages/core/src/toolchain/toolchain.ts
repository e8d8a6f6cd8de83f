/**
 * The toolchain a firmware is compiled in, as a build sees it: an image made present, a container
 * started from it with the project's folders inside, commands run there, files copied in and out,
 * the container stopped. {@link dockerToolchain} (docker.ts) is the real one; tests pass a fake.
 *
 * How the folders get in (bind mounts, or volumes filled by copying when the engine cannot see
 * this machine's files), which uid:gid commands run as, the labels and the volume names are the
 * toolchain's business alone: a build only says which host folder it wants where.
 *
 *   const container = await toolchain.start({ image, mounts, owner: { project, board } });
 *   try { await container.exec('make', { onLine }); } finally { await container.stop(); }
 */
import type { ImageProgressOptions, ImageRequest, ToolchainImageInfo } from './image.ts';

/** A host folder the toolchain's commands see at `container`. */
export interface ToolchainMount {
  host: string;
  container: string;
  /** Commands only read it (sources); the build folder is written to. */
  readOnly?: boolean;
  /** Only when the folder exists (the default modules folder may not). */
  optional?: boolean;
  /**
   * What the copy is called when folders are copied into volumes: `kind` and a key unique in the
   * project (the host folder, say), or a `shared` key (a commit) for content that never changes
   * under that key, which every project then shares.
   */
  volume: { kind: string; key: string; shared?: boolean };
}

/**
 * Which leased containers `removeContainers` and which volumes `removeVolumes` take: those of a
 * project, those made from one mp cache (every given field must match), or all when neither is given.
 */
export interface ContainerScope {
  project?: string;
  cache?: string;
}

/**
 * A toolchain container as a build asks for it.
 * @example { image: 'sha256:…', mounts: [{ host: '/p/.mp/build/unix/3f…', container: '/mp/build', volume: { kind: 'build', key: '/p/.mp/build/unix/3f…' } }], owner: { project: '/p', board: 'unix' } }
 */
export interface ToolchainSpec {
  /** Image id or reference. */
  image: string;
  mounts: ToolchainMount[];
  /** Environment of every command. */
  env?: Record<string, string>;
  /** Working directory of every command. */
  workdir?: string;
  /** Run commands as the host user (default true), so the build folder holds no root-owned files. */
  hostUser?: boolean;
  /**
   * The project and board it builds, and the mp cache its sources come from: `mp clean` and the
   * tests find containers and volumes by them.
   */
  owner: { project: string; board: string; cache?: string };
  /**
   * The container path of a writable mount (the build folder) where a leased container keeps its
   * lease file; without one a container is never leased.
   */
  leaseMount?: string;
  /**
   * Compile through ccache, its cache in `dir` (one per board and toolchain image, in mp's cache):
   * mounted at /mp/ccache, with ccache itself at /mp/ccache-tool (see ccache.ts).
   */
  ccache?: { dir: string };
}

export interface ExecOptions {
  env?: Record<string, string>;
  workdir?: string;
  /** Each output line (stdout and stderr), `\r` progress lines included. */
  onLine?: (line: string) => void;
  /** On abort, the command's processes are killed; the container stays up. */
  signal?: AbortSignal;
}

export interface ExecResult {
  exitCode: number;
}

export interface CopyInOptions {
  /** Relative paths (posix) to leave out. */
  skip?: (rel: string) => boolean;
  /** Removes files that are in the container but no longer on the host (default true). */
  prune?: boolean;
  /**
   * For content that cannot change under the same name (a git tree at a commit, with its
   * submodules): when the last copy recorded the same fingerprint, the host folder is not even walked.
   */
  fingerprint?: string;
}

/** A running toolchain container. */
export interface ToolchainContainer {
  readonly id: string;
  readonly spec: ToolchainSpec;
  readonly stopped: boolean;
  /**
   * The mounts are copies (the engine cannot see this machine's files): {@link copyIn} before
   * commands read a folder, {@link copyOut} for what they wrote. False: they are the host's folders.
   */
  readonly copies: boolean;
  /**
   * Runs a shell script (`sh -c`), streaming its output; resolves with the exit code (non-zero is no
   * error here: the caller knows what a failure means).
   */
  exec(script: string, options?: ExecOptions): Promise<ExecResult>;
  /** Makes `containerDir` hold what `hostDir` holds (only what changed travels); nothing to do when mounted. */
  copyIn(
    hostDir: string,
    containerDir: string,
    options?: CopyInOptions,
  ): Promise<{ copied: number; removed: number }>;
  /** Copies the file `containerPath` to `hostPath`; false when there is no such file. */
  copyOut(containerPath: string, hostPath: string): Promise<boolean>;
  /** Kills and removes the container (idempotent; safe to call from an abort handler). */
  stop(): Promise<void>;
  /** Started or found under a lease: it may outlive this process (see lease.ts). */
  readonly leased?: boolean;
  /** Found running, started by an earlier process. */
  readonly reused?: boolean;
  /** A leased container: stop renewing it; it lives on for its lease, for the next build to take. */
  release?(): Promise<void>;
}

/** Where builds compile: images, containers, and the volumes copies leave behind. */
export interface Toolchain {
  /** The image present on the engine (used, pulled, or built from the board's Dockerfile). */
  prepare(request: ImageRequest, options?: ImageProgressOptions): Promise<ToolchainImageInfo>;
  /** With `lease` (seconds), the container may outlive this process by that idle time, when the engine allows. */
  start(
    spec: ToolchainSpec,
    options?: { signal?: AbortSignal; lease?: number; onTitle?: (title: string) => void },
  ): Promise<ToolchainContainer>;
  /**
   * A container started with this spec by an earlier process and still under its lease, taken for
   * this one (renewed while held); undefined when there is none.
   */
  reuse?(spec: ToolchainSpec, options: { lease: number }): Promise<ToolchainContainer | undefined>;
  /**
   * Removes leased containers at once (`mp stop`, `mp clean`): those of `project`, or that use the
   * mp cache `cache`, or every one when neither is given; their ids.
   */
  removeContainers?(scope: ContainerScope): Promise<string[]>;
  /**
   * Removes the volumes copies made: for `project`, or from the mp cache `cache` (`mp clean --all`),
   * or every one when neither is given. What could not be removed, or checked at all, is said in
   * `notes`.
   */
  removeVolumes(scope: ContainerScope): Promise<{ removed: string[]; notes: string[] }>;
}
