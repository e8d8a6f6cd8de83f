/**
 * Stage 1, Resolve (step `resolve`): the project's config and plugins → the board, the libraries
 * and MicroPython, each pinned to a commit (git) or inspected (a local folder). Inputs that would
 * only fail after a long compile are refused here, before anything is fetched.
 */
import { statSync } from 'node:fs';
import { isAbsolute, relative } from 'node:path';
import { MpError } from '../errors.ts';
import type { StepContext } from '../events.ts';
import type { PluginListing } from '../plugin/registry.ts';
import type { BoardPlugin, LibraryPlugin } from '../plugin/types.ts';
import type { Project } from '../project.ts';
import type { GitOperationOptions, GitSourceCache, ResolvedRef } from '../sources/git-cache.ts';
import {
  checkLocalDir,
  checkMicroPythonTree,
  inspectLocalSource,
  type LocalSourceState,
} from '../sources/local.ts';
import { upstreamBoardPlugin } from '../upstream/board-plugin.ts';
import { looksLikeUpstreamBoard } from '../upstream/boards.ts';

/** Where sources come from: {@link GitSourceCache} by default, a fake in tests. */
export type SourceCache = Pick<
  GitSourceCache,
  'resolveRef' | 'resolveNewestStable' | 'checkout' | 'ensureSubmodules'
>;

/** MicroPython pinned: a commit of a git repository, or a local checkout as it is. */
export type ResolvedMicroPython =
  | {
      /** What was asked: a ref, or undefined for the newest stable tag. */
      requested?: string;
      git: { url: string; ref: ResolvedRef };
      local?: undefined;
      sha: string;
      tag?: string;
    }
  | {
      requested?: undefined;
      git?: undefined;
      local: LocalSourceState;
      /** HEAD, when the folder is a git checkout. */
      sha?: string;
      tag?: undefined;
    };

interface LibraryChoice {
  id: string;
  plugin: LibraryPlugin;
  listing?: PluginListing;
}

/** A library pinned: a commit of its repository, or a local folder. */
export type ResolvedLibrary = LibraryChoice &
  (
    | { git: { url: string; ref: ResolvedRef }; local?: undefined }
    | { git?: undefined; local: LocalSourceState }
  );

export interface Resolved {
  project: Project;
  board: BoardPlugin;
  boardListing?: PluginListing;
  micropython: ResolvedMicroPython;
  libraries: ResolvedLibrary[];
}

export interface ResolveDeps {
  sources: SourceCache;
  step: StepContext;
}

export async function resolveBuild(project: Project, { sources, step }: ResolveDeps): Promise<Resolved> {
  const { config, plugins } = project;
  const gitOptions = gitOptionsFor(step);
  const { board, micropython } = await resolveBoard(project, sources, step, gitOptions);
  const choices = await loadLibraries(project, board);
  checkExportDir(project);
  checkModulesDir(project);
  const libraries: ResolvedLibrary[] = [];
  for (const library of choices) {
    const choice = config.libraries.find((c) => c.id === library.id);
    const source = library.plugin.source;
    const path = choice?.path ?? ('path' in source ? source.path : undefined);
    if (path) {
      checkLocalDir(path, `library ${library.id}`, library.id);
      libraries.push({ ...library, local: await inspectLocalSource(path, { signal: step.signal }) });
      continue;
    }
    const url = choice?.git ?? ('git' in source ? source.git : undefined);
    if (!url) throw noLibrarySource(library.plugin);
    const refName = choice?.ref ?? ('git' in source ? source.ref : undefined) ?? 'HEAD';
    const ref = await sources.resolveRef(url, refName, gitOptions(`library ${library.id}`, library.id));
    libraries.push({ ...library, git: { url, ref } });
  }
  const m = micropython;
  const shown = m.tag ?? (m.sha ? m.sha.slice(0, 10) : m.local?.dir);
  step.title(
    `Resolved ${board.id}, MicroPython ${shown}${libraries.length ? `, ${libraries.map((l) => l.id).join(', ')}` : ''}`,
  );
  return {
    project,
    board,
    boardListing: plugins.listing('board', board.id),
    micropython,
    libraries,
  };
}

/**
 * The board plugin named by the config, or, for a MicroPython board name that no plugin has
 * (`ESP32_GENERIC_S3`), a board derived from that board's folder in the tree being built: then the
 * tree is needed first (its checkout is cached, so the fetch step finds it there).
 */
async function resolveBoard(
  project: Project,
  sources: SourceCache,
  step: StepContext,
  gitOptions: ReturnType<typeof gitOptionsFor>,
): Promise<{ board: BoardPlugin; micropython: ResolvedMicroPython }> {
  const { config, plugins } = project;
  if (!looksLikeUpstreamBoard(config.board) || plugins.has('board', config.board)) {
    const board = await plugins.load('board', config.board);
    return { board, micropython: await resolveMicroPython(project, board.port, sources, step, gitOptions) };
  }
  const micropython = await resolveMicroPython(project, undefined, sources, step, gitOptions);
  step.title(
    `Reading board ${config.board} from MicroPython ${micropython.tag ?? micropython.sha?.slice(0, 10) ?? ''}`,
  );
  const dir = micropython.git
    ? (await sources.checkout(micropython.git.ref, gitOptions('MicroPython'))).dir
    : micropython.local.dir;
  return { board: await upstreamBoardPlugin(dir, config.board, config.variant), micropython };
}

/** The configured libraries (each once), refusing one that does not support the board's port. */
async function loadLibraries(project: Project, board: BoardPlugin): Promise<LibraryChoice[]> {
  const { config, plugins } = project;
  const libraries: LibraryChoice[] = [];
  for (const choice of config.libraries) {
    if (libraries.some((l) => l.id === choice.id)) continue;
    const plugin = await plugins.load('library', choice.id);
    if (plugin.ports && !plugin.ports.includes(board.port)) {
      throw new MpError({
        code: 'LIBRARY_UNSUPPORTED_BOARD',
        message: `Library ${plugin.id} does not support board ${board.id} (port ${board.port}); it supports: ${plugin.ports.join(', ')}`,
        plugin: plugin.id,
        step: 'resolve',
        hint: `Leave it out (--no-libs, or --lib with the others, or \`libraries\` in mp.config), or pick a board whose port is one of ${plugin.ports.join(', ')}.`,
        exitCode: 2,
      });
    }
    libraries.push({
      id: plugin.id,
      plugin,
      listing: plugins.listing('library', plugin.id),
    });
  }
  return libraries;
}

async function resolveMicroPython(
  project: Project,
  port: string | undefined,
  sources: SourceCache,
  step: StepContext,
  gitOptions: ReturnType<typeof gitOptionsFor>,
): Promise<ResolvedMicroPython> {
  const mp = project.config.micropython;
  if (mp.path) {
    checkLocalDir(mp.path, 'MicroPython');
    checkMicroPythonTree(mp.path, port);
    const local = await inspectLocalSource(mp.path, { signal: step.signal });
    return { local, sha: local.sha };
  }
  const ref = mp.ref
    ? await sources.resolveRef(mp.git, mp.ref, gitOptions('MicroPython'))
    : await sources.resolveNewestStable(mp.git, gitOptions('MicroPython'));
  return {
    requested: mp.ref,
    git: { url: mp.git, ref },
    sha: ref.sha,
    tag: ref.kind === 'tag' ? ref.name : undefined,
  };
}

function noLibrarySource(plugin: LibraryPlugin): MpError {
  return new MpError({
    code: 'PLUGIN_INVALID',
    message: `Library ${plugin.id} names neither a git repository nor a local path as its source`,
    plugin: plugin.id,
    step: 'resolve',
    hint: 'Give the library a `git` source (or a `path`), in its plugin or in the config’s `libraries` entry.',
    exitCode: 2,
  });
}

/** An export path that is a file would fail only after the whole compile: say so first. */
function checkExportDir(project: Project): void {
  const dir = project.config.exportDir;
  const info = statSync(dir, { throwIfNoEntry: false });
  if (info && !info.isDirectory()) {
    throw new MpError({
      code: 'EXPORT_DIR_INVALID',
      message: `The export folder ${displayPath(project, dir)} is a file, not a folder`,
      file: dir,
      step: 'resolve',
      hint: 'Move the file away, or export elsewhere with --export-dir or `exportDir` in the config.',
      exitCode: 2,
    });
  }
}

/** A modules folder that the config or a flag names must exist; only the default may be absent. */
function checkModulesDir(project: Project): void {
  const { modulesDir, modulesFrom } = project.config;
  if (modulesFrom === 'default') return;
  const info = statSync(modulesDir, { throwIfNoEntry: false });
  if (!info?.isDirectory()) {
    const named = modulesFrom === 'flag' ? '--modules' : 'the config key `modules`';
    throw new MpError({
      code: 'MODULES_NOT_FOUND',
      message: `${named} names ${displayPath(project, modulesDir)}, which ${info ? 'is a file, not a folder' : 'does not exist'}`,
      file: modulesDir,
      step: 'resolve',
      hint: 'Name the folder that holds your Python modules (it is relative to the project), or leave it out to use modules/.',
      exitCode: 2,
    });
  }
}

/** Options for git operations of a step: its signal, logger and output, and a title while waiting for a lock. */
export function gitOptionsFor(step: StepContext) {
  return (label: string, plugin?: string): GitOperationOptions => ({
    signal: step.signal,
    logger: step.logger,
    onLine: step.output,
    onWait: (owner: string) => step.title(`Waiting for ${owner} (fetching ${label})`),
    label,
    plugin,
  });
}

/** A path as the user knows it: relative to the project when inside it. */
export function displayPath(project: Project, path: string): string {
  const rel = relative(project.config.projectDir, path);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
}
