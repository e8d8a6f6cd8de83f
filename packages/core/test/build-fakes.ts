/**
 * Stand-ins for Docker and git, so a whole build runs in-process: a toolchain whose `make` writes
 * the board's artifacts into the build folder, and a source cache that hands out folders of this
 * machine as checkouts. Both record what they were asked.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { SourceCache } from '../src/firmware/resolve.ts';
import type { GitCheckout, GitOperationOptions, ResolvedRef } from '../src/sources/git-cache.ts';
import type { ImageRequest, ToolchainImageInfo } from '../src/toolchain/image.ts';
import type {
  CopyInOptions,
  ExecOptions,
  ExecResult,
  Toolchain,
  ToolchainContainer,
  ToolchainSpec,
} from '../src/toolchain/toolchain.ts';

export interface FakeMake {
  /** Files make writes, relative to the port's BUILD folder (`firmware.bin`). */
  writes: Record<string, string | Uint8Array>;
  exitCode?: number;
  /** What make prints. */
  lines?: string[];
}

export class FakeToolchain implements Toolchain {
  readonly images: ImageRequest[] = [];
  readonly containers: FakeContainer[] = [];
  /** Every script run in any container. */
  readonly scripts: string[] = [];
  make: FakeMake;
  /** The engine cannot see this machine's files: the build copies in and out. */
  copies = false;

  constructor(make: FakeMake) {
    this.make = make;
  }

  async prepare(request: ImageRequest): Promise<ToolchainImageInfo> {
    this.images.push(request);
    const ref = request.ref ?? `mp-toolchain/${request.boardId}:fake`;
    return { ref, id: `sha256:fake-${ref}`, obtained: 'present' };
  }

  async start(spec: ToolchainSpec): Promise<ToolchainContainer> {
    const container = new FakeContainer(this, spec, `fake-${this.containers.length + 1}`);
    this.containers.push(container);
    return container;
  }

  async removeVolumes(): Promise<{ removed: string[]; notes: string[] }> {
    return { removed: [], notes: [] };
  }
}

export class FakeContainer implements ToolchainContainer {
  readonly id: string;
  readonly spec: ToolchainSpec;
  stopped = false;
  readonly copied: string[] = [];
  private readonly toolchain: FakeToolchain;

  constructor(toolchain: FakeToolchain, spec: ToolchainSpec, id: string) {
    this.toolchain = toolchain;
    this.spec = spec;
    this.id = id;
  }

  get copies(): boolean {
    return this.toolchain.copies;
  }

  async exec(script: string, options: ExecOptions = {}): Promise<ExecResult> {
    if (this.stopped) throw new Error('exec in a stopped container');
    this.toolchain.scripts.push(script);
    if (/ submodules$/m.test(script)) {
      options.onLine?.('Updating submodules: lib/micropython-lib');
      return { exitCode: 0 };
    }
    const make = this.toolchain.make;
    for (const line of make.lines ?? []) options.onLine?.(line);
    if (make.exitCode) return { exitCode: make.exitCode };
    const build = this.spec.mounts.find((m) => m.container === '/mp/build');
    if (!build) throw new Error('no build folder mounted');
    for (const [file, content] of Object.entries(make.writes)) {
      const path = join(build.host, 'port', file);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, content);
    }
    return { exitCode: 0 };
  }

  async copyIn(hostDir: string, containerDir: string, _options?: CopyInOptions) {
    this.copied.push(`${hostDir} -> ${containerDir}`);
    return { copied: 1, removed: 0 };
  }

  async copyOut(_containerPath: string, hostPath: string): Promise<boolean> {
    return existsSync(hostPath);
  }

  async stop(): Promise<void> {
    this.stopped = true;
  }
}

/** A repository as the fake cache knows it: one commit, its folder, and the tag that names it. */
export interface FakeRepository {
  dir: string;
  sha: string;
  tag?: string;
}

export class FakeSourceCache implements SourceCache {
  readonly calls: string[] = [];
  private readonly repositories: Record<string, FakeRepository>;

  constructor(repositories: Record<string, FakeRepository>) {
    this.repositories = repositories;
  }

  private repository(url: string): FakeRepository {
    const repository = this.repositories[url];
    if (!repository) throw new Error(`the fake source cache has no ${url}`);
    return repository;
  }

  async resolveRef(url: string, ref: string, _options?: GitOperationOptions): Promise<ResolvedRef> {
    this.calls.push(`resolveRef ${url} ${ref}`);
    const { sha, tag } = this.repository(url);
    const kind = ref === tag ? 'tag' : 'branch';
    return { url, fetchUrl: url, requested: ref, kind, name: ref, sha, from: 'cache' };
  }

  async resolveNewestStable(url: string, _options?: GitOperationOptions): Promise<ResolvedRef> {
    this.calls.push(`resolveNewestStable ${url}`);
    const { sha, tag } = this.repository(url);
    if (!tag) throw new Error(`the fake ${url} has no tag`);
    return { url, fetchUrl: url, kind: 'tag', name: tag, sha, from: 'cache' };
  }

  async checkout(ref: ResolvedRef, _options?: GitOperationOptions): Promise<GitCheckout> {
    this.calls.push(`checkout ${ref.url} ${ref.sha}`);
    return { dir: this.repository(ref.url).dir, url: ref.url, sha: ref.sha, submodules: {} };
  }

  async ensureSubmodules(
    checkout: GitCheckout,
    paths: string[],
    _options?: GitOperationOptions,
  ): Promise<GitCheckout> {
    this.calls.push(`ensureSubmodules ${paths.join(' ')}`);
    const submodules = { ...checkout.submodules };
    for (const path of paths)
      submodules[path] = { url: `https://example.com/${path}.git`, sha: 'c'.repeat(40) };
    return { ...checkout, submodules };
  }
}
