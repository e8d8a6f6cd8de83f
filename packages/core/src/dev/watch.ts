/**
 * What `mp dev` watches: the user's modules, every library whose source is a local path, and the
 * config file. Editor temporary and swap files, caches, build and export folders are ignored, so
 * saving in vim or Emacs gives one event for the real file.
 */
import { basename, sep } from 'node:path';
import type { FSWatcher } from 'chokidar';

export interface WatchTargets {
  /** Folders of Python sources (modules dir, local libraries). */
  sourceDirs: string[];
  /** Single files whose change reloads the project (the config file). */
  configFiles: string[];
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

let chokidar: Promise<typeof import('chokidar')> | undefined;
/** chokidar is loaded by `mp dev` only, not by every command that imports core. */
function loadChokidar(): Promise<typeof import('chokidar')> {
  chokidar ??= import('chokidar');
  return chokidar;
}

export async function watchProject(
  targets: WatchTargets,
  onEvent: (event: WatchEvent) => void,
): Promise<{ ready: Promise<void>; close: () => Promise<void> }> {
  const { watch } = await loadChokidar();
  const ignoreDirs = targets.ignoreDirs.map((d) => (d.endsWith(sep) ? d : d + sep));
  const configFiles = new Set(targets.configFiles);
  const watcher: FSWatcher = watch([...targets.sourceDirs, ...targets.configFiles], {
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
