/**
 * A MicroPython tree to read (its boards, its Makefiles) without building: the project's
 * MicroPython (a local checkout, or a ref fetched shallow into the shared cache, newest stable tag
 * by default), registered as a cache user while it is read so `mp clean --all` leaves it alone.
 */
import type { Project } from '../project.ts';
import { registerCacheUse } from '../sources/cache-housekeeping.ts';
import { GitSourceCache, refTtlFromEnv } from '../sources/git-cache.ts';
import { checkLocalDir } from '../sources/local.ts';
import { userCacheDir } from '../util/paths.ts';

export interface MicroPythonTree {
  dir: string;
  /** The tag, or the short sha, or the local path: what to call it in output. */
  label: string;
  sha?: string;
}

export async function withMicroPythonTree<T>(
  project: Project,
  options: { ref?: string; signal?: AbortSignal; env?: NodeJS.ProcessEnv },
  read: (tree: MicroPythonTree) => Promise<T>,
): Promise<T> {
  const { micropython } = project.config;
  const ref = options.ref ?? micropython.ref;
  if (!options.ref && micropython.path) {
    checkLocalDir(micropython.path, 'MicroPython');
    return read({ dir: micropython.path, label: micropython.path });
  }
  const env = options.env ?? process.env;
  const cacheDir = userCacheDir(env);
  const release = await registerCacheUse(cacheDir, {
    project: project.config.projectDir,
    signal: options.signal,
  });
  try {
    const cache = new GitSourceCache({
      cacheDir,
      mirrors: project.config.mirrors,
      refTtlMs: refTtlFromEnv(env),
    });
    const git = { signal: options.signal, label: 'MicroPython' };
    const resolved = ref
      ? await cache.resolveRef(micropython.git, ref, git)
      : await cache.resolveNewestStable(micropython.git, git);
    const checkout = await cache.checkout(resolved, git);
    return await read({
      dir: checkout.dir,
      label: resolved.kind === 'tag' ? resolved.name : resolved.sha.slice(0, 10),
      sha: resolved.sha,
    });
  } finally {
    await release();
  }
}
