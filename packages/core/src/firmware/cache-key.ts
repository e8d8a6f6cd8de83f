/**
 * The build cache: a key over every input of a build. Equal key, and the exported firmware still
 * there and intact → the build is answered from the last export without starting a container.
 *
 * The key covers: the board plugin (package, version, resolved target), each library (package,
 * version, commit or content, freeze entries, exports), the project's module files (content), the
 * generated manifest, the MicroPython commit (or the state of a local checkout), the toolchain
 * image id and the export directory. Parallel jobs do not change the output and are left out.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/fs.ts';

export { hashFiles, hashOf, stableJson } from '../util/hash.ts';

/** What `.mp/build/<board>/last-build.json` remembers about the last successful export. */
export interface LastBuild {
  key: string;
  firmware: string;
  sidecarFile: string;
  sha256: string;
  builtAt: string;
}

/**
 * A build's folder under `.mp/build`: its board's, or `target-<name>` for one of the config's
 * `targets`, so two targets of one board (another variant, say) each have their own lock, log,
 * build folders and last build, and build side by side.
 */
export function buildFolderName(config: { target?: string }, boardId: string): string {
  return config.target ? `target-${config.target}` : boardId;
}

export function lastBuildFile(stateDir: string, boardId: string): string {
  return join(stateDir, 'build', boardId, 'last-build.json');
}

export async function readLastBuild(stateDir: string, boardId: string): Promise<LastBuild | undefined> {
  try {
    return JSON.parse(await readFile(lastBuildFile(stateDir, boardId), 'utf8')) as LastBuild;
  } catch {
    return undefined;
  }
}

export async function writeLastBuild(stateDir: string, boardId: string, record: LastBuild): Promise<void> {
  // Only saves a build: lost, the next one compiles (or answers from the firmware cache).
  await writeFileAtomic(lastBuildFile(stateDir, boardId), `${JSON.stringify(record, null, 2)}\n`, {
    durable: false,
  });
}
