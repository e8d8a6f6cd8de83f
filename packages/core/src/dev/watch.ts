/**
 * What `mp dev` watches: the user's modules, every library whose source is a local path, and the
 * config file. Editor temporary and swap files, caches, build and export folders are ignored, so
 * saving in vim or Emacs gives one event for the real file.
 */
import { basename, sep } from 'node:path';
import type { FSWatcher } from 'chokidar';
import type { Project } from '../project.ts';

export interface WatchTargets {
  /** Folders of Python sources (modules dir, local libraries). */
  sourceDirs: string[];
  /** Single files whose change reloads the project (the config file). */
  configFiles: string[];
  /**
   * The config's `files` outside export/ (a `main.py` beside the config): a save of one gives a
   * build (up to date when only it changed), no flash (the board runs that firmware already) and
   * its copy to the board.
   */
  boardFiles: string[];
  /** Folders never to watch into (export/, .mp/). */
  ignoreDirs: string[];
}

export type WatchEvent = { kind: 'source' | 'config'; path: string; event: 'add' | 'change' | 'unlink' };

/** Editor droppings and caches: vim swap/backup (`.x.swp`, `x~`, `4913`), Emacs locks (`.#x`, `#x#`), JetBrains `___jb_tmp___`, `__pycache__`, `.DS_Store`, `*.tmp`. */
export function isEditorTempFile(path: string): boolean {
  const name = basename(path);
  return (
    /^\..*\.sw[a-p]$/.test(name) ||
    name.endsWith('~') ||
    name === '4913' ||
    name.startsWith('.#') ||
    /^#.*#$/.test(name) ||
    /___jb_(tmp|old)___$/.test(name) ||
    name.endsWith('.tmp') ||
    name === '.DS_Store' ||
    name === '__pycache__' ||
    name.endsWith('.pyc')
  );
}

/** The modules folder, local libraries and C modules, and the config file of a project. */
export async function projectWatchTargets(project: Project): Promise<WatchTargets> {
  const config = project.config;
  const sourceDirs = [
    config.modulesDir,
    ...config.libraries.flatMap((l) => (l.path ? [l.path] : [])),
    ...config.cModules,
  ];
  for (const listing of config.libraries) {
    // Library plugins whose own source is a local folder are watched too.
    const plugin = await project.plugins.load('library', listing.id).catch(() => undefined);
    if (plugin && 'path' in plugin.source && !listing.git && !listing.ref)
      sourceDirs.push(plugin.source.path);
  }
  return {
    sourceDirs: [...new Set(sourceDirs)],
    configFiles: config.configFile ? [config.configFile] : [],
    boardFiles: config.files.map((f) => f.from).filter((f) => !f.startsWith(config.exportDir + sep)),
    ignoreDirs: [config.exportDir, project.stateDir],
  };
}

export interface ProjectWatcher {
  /** Resolves once the initial scan is done: later events are real changes. */
  ready: Promise<void>;
  close(): Promise<void>;
}

let chokidar: Promise<typeof import('chokidar')> | undefined;
/** chokidar is loaded by `mp dev` only, not by every command that imports core. */
function loadChokidar(): Promise<typeof import('chokidar')> {
  chokidar ??= import('chokidar');
  return chokidar;
}

export async function watchProject(
  targets: WatchTargets,
  onEvent: (event: WatchEvent) => void,
): Promise<ProjectWatcher> {
  const { watch } = await loadChokidar();
  const ignoreDirs = targets.ignoreDirs.map((d) => (d.endsWith(sep) ? d : d + sep));
  const configFiles = new Set(targets.configFiles);
  const watcher: FSWatcher = watch([...targets.sourceDirs, ...targets.configFiles, ...targets.boardFiles], {
    ignoreInitial: true,
    // Editors that save by rename (vim, JetBrains) would otherwise look like unlink + add.
    atomic: true,
    ignored: (path: string) =>
      isEditorTempFile(path) ||
      ignoreDirs.some((d) => path.startsWith(d) || path + sep === d) ||
      /(^|[/\\])(node_modules|\.git)([/\\]|$)/.test(path),
  });
  const ready = new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
  for (const event of ['add', 'change', 'unlink'] as const) {
    watcher.on(event, (path: string) =>
      onEvent({ kind: configFiles.has(path) ? 'config' : 'source', path, event }),
    );
  }
  return { ready, close: () => watcher.close() };
}
