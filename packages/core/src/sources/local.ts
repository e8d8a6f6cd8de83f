/**
 * Local sources (a MicroPython checkout or a library folder on disk) are used as they are. For the
 * build cache they still need a fingerprint: the commit plus what is modified when it is a git
 * checkout, else the names, sizes and times of its files.
 */
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { MpError } from '../errors.ts';
import { runGit } from './git.ts';

export interface LocalSourceState {
  dir: string;
  /** HEAD commit when the folder is a git checkout. */
  sha?: string;
  /** HEAD's committer time (seconds since the epoch): the build's SOURCE_DATE_EPOCH. */
  committedAt?: number;
  /** Uncommitted changes (or not a git checkout at all). */
  dirty: boolean;
  /** Changes whenever the content that matters to a build changes. */
  fingerprint: string;
}

/** Folders never part of a source's identity: build outputs and caches. */
const IGNORED_DIRS = new Set(['.git', 'node_modules', '__pycache__', '.mp', 'build']);

export function checkLocalDir(dir: string, what: string, plugin?: string): void {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new MpError({
      code: 'SOURCE_PATH_NOT_FOUND',
      message: `${what}: ${existsSync(dir) ? `${dir} is a file, not a folder` : `local folder ${dir} does not exist`}`,
      file: dir,
      plugin,
      step: 'sources',
      hint: 'Fix the path (it is relative to the project), or remove it to fetch the source with git.',
      exitCode: 2,
    });
  }
}

export async function inspectLocalSource(
  dir: string,
  options: { signal?: AbortSignal } = {},
): Promise<LocalSourceState> {
  // `%H %ct`: the commit and its time in one git call (a folder without commits answers nothing).
  const head = await runGit(['-C', dir, 'log', '-1', '--format=%H %ct', 'HEAD'], options).catch(() => '');
  const [sha, time] = head.trim().split(' ');
  if (sha) {
    const committedAt = Number(time);
    const topLevel = (await runGit(['-C', dir, 'rev-parse', '--show-toplevel'], options)).trim();
    const status = await runGit(
      ['-C', dir, 'status', '--porcelain=v1', '-z', '--untracked-files=all'],
      options,
    );
    const hash = createHash('sha256').update(sha).update('\0').update(status);
    // A modified file changes its size or time; hashing every changed file's content would be
    // slower and no more useful to a cache key that only has to notice edits.
    for (const entry of status.split('\0')) {
      const path = entry.slice(3);
      if (!path) continue;
      const info = await stat(join(topLevel, path)).catch(() => undefined);
      hash.update(`${path}\0${info?.size ?? -1}\0${info?.mtimeMs ?? -1}\0`);
    }
    return {
      dir,
      sha,
      committedAt: Number.isInteger(committedAt) ? committedAt : undefined,
      dirty: status.length > 0,
      fingerprint: `git:${hash.digest('hex')}`,
    };
  }
  return { dir, dirty: true, fingerprint: `files:${await fingerprintFiles(dir)}` };
}

/** Names, sizes and modification times of every file under `dir` (build folders left out). */
export async function fingerprintFiles(dir: string): Promise<string> {
  const hash = createHash('sha256');
  const walk = async (current: string) => {
    const entries = await readdir(current, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const full = join(current, entry.name);
      if (entry.isDirectory()) {
        if (IGNORED_DIRS.has(entry.name) || entry.name.startsWith('build-')) continue;
        await walk(full);
      } else if (entry.isFile() || entry.isSymbolicLink()) {
        const info = await stat(full).catch(() => undefined);
        hash.update(`${relative(dir, full)}\0${info?.size ?? -1}\0${info?.mtimeMs ?? -1}\0`);
      }
    }
  };
  await walk(dir);
  return hash.digest('hex');
}

/**
 * A local MicroPython checkout must look like one before any container starts: `py/mpconfig.h`
 * (the version) and the board's `ports/<port>/Makefile` or CMakeLists.txt.
 */
export function checkMicroPythonTree(dir: string, port: string | undefined): void {
  const wanted = ['py/mpconfig.h', ...(port ? [`ports/${port}`] : [])];
  const missing = wanted.filter((rel) => !existsSync(join(dir, rel)));
  if (missing.length) {
    throw new MpError({
      code: 'NOT_MICROPYTHON',
      message: `${dir} is not a MicroPython checkout: it has no ${missing.join(' and no ')} (looked for ${wanted.join(' and ')})`,
      file: dir,
      step: 'resolve',
      hint: 'Point micropython.path (or --micropython) at the top folder of a MicroPython clone, or remove it to fetch MicroPython with git.',
      exitCode: 2,
    });
  }
}
