/**
 * The toolchain of one engine when several targets build there at once. Builds of one process
 * share what the engine holds under one name, so two of them must not write it at the same time:
 *   - a volume copies fill (the MicroPython tree of a commit is one volume for every build, the
 *     modules one per project): the second copy waits for the first, then finds nothing to send,
 *     instead of rewriting files under a make that already reads them;
 *   - an image being pulled or built: the second target waits and finds it present.
 * Everything else is the engine's own toolchain (`dockerToolchain({ env })`), unchanged.
 */
import type { ImageProgressOptions, ImageRequest, ToolchainImageInfo } from '../toolchain/image.ts';
import type { CopyInOptions, Toolchain, ToolchainContainer, ToolchainSpec } from '../toolchain/toolchain.ts';

/** Runs work one at a time per key; different keys do not wait for each other. */
export class KeyedQueue {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const before = this.tails.get(key) ?? Promise.resolve();
    const result = before.then(work, work);
    const tail = result.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }
}

/**
 * `base` with its image preparation and its containers' copies queued per image and per volume.
 * Everything else (and members toolchains gain later, such as reusing a warm container) passes
 * through as it is; a container any of them hands out gets the queued copies too.
 */
export function sharedEngineToolchain(base: Toolchain): Toolchain {
  const copies = new KeyedQueue();
  const images = new KeyedQueue();
  const prepare = (request: ImageRequest, options?: ImageProgressOptions): Promise<ToolchainImageInfo> => {
    const dockerfile = request.override ? null : (request.dockerfile ?? null);
    const key = JSON.stringify([request.boardId, request.ref ?? null, dockerfile]);
    return images.run(key, () => base.prepare(request, options));
  };
  return new Proxy(base, {
    get(target, property) {
      if (property === 'prepare') return prepare;
      const value = Reflect.get(target, property, target) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const answer = (value as (...a: unknown[]) => unknown).apply(target, args);
        return answer instanceof Promise ? answer.then((a) => queued(a, copies)) : answer;
      };
    },
  });
}

function isContainer(value: unknown): value is ToolchainContainer {
  return typeof value === 'object' && value !== null && 'copyIn' in value && 'exec' in value;
}

/** A container whose copies into a volume wait for other copies into that volume. */
function queued<T>(value: T, queue: KeyedQueue): T {
  if (!isContainer(value)) return value;
  const inner = value;
  const copyIn: ToolchainContainer['copyIn'] = (hostDir, containerDir, options?: CopyInOptions) =>
    inner.copies
      ? queue.run(volumeKey(inner.spec, containerDir, hostDir), () =>
          inner.copyIn(hostDir, containerDir, options),
        )
      : inner.copyIn(hostDir, containerDir, options);
  return new Proxy(inner, {
    get(target, property) {
      if (property === 'copyIn') return copyIn;
      const member = Reflect.get(target, property, target) as unknown;
      return typeof member === 'function' ? member.bind(target) : member;
    },
  }) as T;
}

/** What names the volume behind `containerDir`: its shared key, or its key in the project (see volumeName). */
function volumeKey(spec: ToolchainSpec, containerDir: string, hostDir: string): string {
  const mount = spec.mounts.find((m) => m.container === containerDir);
  if (!mount) return `${spec.owner.project}\0${containerDir}\0${hostDir}`;
  const { kind, key, shared } = mount.volume;
  return shared ? `${kind}\0${key}` : `${spec.owner.project}\0${kind}\0${key}`;
}
