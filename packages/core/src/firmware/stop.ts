/**
 * `mp stop [--all]`: ends at once the toolchain containers that builds left running under a lease
 * (see toolchain/lease.ts), those of the project or, with `all`, every one on the engine. They end
 * themselves when their lease runs out; this is for when you want them gone now (`mp clean` does
 * it too). A build running at that moment loses its container and fails, so the caller says so.
 */
import type { Project } from '../project.ts';
import { dockerToolchain } from '../toolchain/docker.ts';
import type { Toolchain } from '../toolchain/toolchain.ts';

export interface StopOptions {
  project: Project;
  /** Every leased container on the engine, not only the project's. */
  all?: boolean;
  /**
   * With `all`, only those whose sources come from this mp cache (`mp clean --all` removes that
   * cache; another user's or test's cache on the same engine keeps its containers).
   */
  cacheDir?: string;
  env?: NodeJS.ProcessEnv;
  /** Where the containers are; default the Docker engine of `env`. */
  toolchain?: Toolchain;
}

export interface StopResult {
  /** Ids of the containers removed. */
  stopped: string[];
  /** What could not be checked (the engine not running), said to the user. */
  notes: string[];
}

export async function stopContainers(options: StopOptions): Promise<StopResult> {
  const toolchain = options.toolchain ?? dockerToolchain({ env: options.env });
  const result: StopResult = { stopped: [], notes: [] };
  if (!toolchain.removeContainers) return result;
  try {
    result.stopped = await toolchain.removeContainers(
      options.all ? { cache: options.cacheDir } : { project: options.project.config.projectDir },
    );
  } catch (error) {
    result.notes.push(
      `Toolchain containers were not checked: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  return result;
}
