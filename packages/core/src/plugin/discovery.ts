/**
 * Finds mp plugins without core knowing any of them: every package that declares itself in its
 * package.json, `"mp": { "board": "<id>" }` or `"mp": { "library": "<id>" }`, found among
 *  - the packages of the pnpm/npm workspace a search root lives in (boards/*, plugins/* here), and
 *  - the dependencies of each search root's package.json (installed under node_modules).
 * Only package.json files are read here; plugin modules are imported when first needed, so
 * `mp build` imports one board, not all of them.
 */
import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describeError, MpError } from '../errors.ts';
import { registerCoreResolver } from './core-resolver.ts';
import type { Plugin, PluginKind } from './types.ts';
import { validatePlugin } from './validate.ts';

/** A plugin package found by discovery, not yet imported. */
export interface PluginPackage {
  kind: PluginKind;
  id: string;
  packageName: string;
  version: string;
  packageDir: string;
  packageJsonPath: string;
  /** The module to import (the package's "." export or main). */
  entry: string;
}

export interface DiscoverOptions {
  /** Directories whose workspace and dependencies are searched (the project, the mp install). */
  roots: string[];
}

export interface DiscoveryResult {
  packages: PluginPackage[];
  /** Packages that say they are plugins but whose package.json is unusable. */
  problems: MpError[];
}

export function discoverPluginPackages(options: DiscoverOptions): DiscoveryResult {
  const seen = new Map<string, PluginPackage>();
  const problems: MpError[] = [];
  const visit = (packageDir: string) => {
    let real: string;
    try {
      real = realpathSync(packageDir);
    } catch {
      return;
    }
    if (seen.has(real)) return;
    const found = readPluginPackage(real, problems);
    if (found) seen.set(real, found);
  };
  for (const root of options.roots) {
    for (const dir of workspacePackageDirs(root)) visit(dir);
    for (const dir of localPluginDirs(root)) visit(dir);
    for (const dir of dependencyDirs(root)) visit(dir);
  }
  return { packages: [...seen.values()], problems };
}

function readPluginPackage(packageDir: string, problems: MpError[]): PluginPackage | undefined {
  const packageJsonPath = join(packageDir, 'package.json');
  let pkg: Record<string, unknown>;
  try {
    pkg = JSON.parse(readFileSync(packageJsonPath, 'utf8'));
  } catch {
    return undefined;
  }
  const mp = pkg.mp as Record<string, unknown> | undefined;
  if (mp === undefined) return undefined;
  const packageName = typeof pkg.name === 'string' ? pkg.name : packageDir;
  const fail = (message: string) => {
    problems.push(
      new MpError({
        code: 'PLUGIN_PACKAGE_INVALID',
        message: `${packageName}: ${message}`,
        plugin: packageName,
        file: packageJsonPath,
        hint: 'Declare exactly one of "mp": { "board": "<kebab-id>" } or "mp": { "library": "<python_name>" } in package.json.',
      }),
    );
    return undefined;
  };
  if (typeof mp !== 'object' || mp === null) return fail('the "mp" field must be an object');
  const kind: PluginKind | undefined =
    typeof mp.board === 'string' ? 'board' : typeof mp.library === 'string' ? 'library' : undefined;
  if (!kind || (typeof mp.board === 'string' && typeof mp.library === 'string')) {
    return fail('the "mp" field must name one board or one library');
  }
  const entry = packageEntry(packageDir, pkg);
  if (!entry) return fail('no entry module: set "exports" (".") or "main" in package.json');
  return {
    kind,
    id: (kind === 'board' ? mp.board : mp.library) as string,
    packageName,
    version: typeof pkg.version === 'string' ? pkg.version : '0.0.0',
    packageDir,
    packageJsonPath,
    entry,
  };
}

function packageEntry(packageDir: string, pkg: Record<string, unknown>): string | undefined {
  let target: unknown = pkg.exports;
  if (target && typeof target === 'object' && !Array.isArray(target) && '.' in target) {
    target = (target as Record<string, unknown>)['.'];
  }
  // Conditional exports: prefer "import", then "default".
  while (target && typeof target === 'object' && !Array.isArray(target)) {
    const t = target as Record<string, unknown>;
    target = t.import ?? t.node ?? t.default;
  }
  const file = typeof target === 'string' ? target : typeof pkg.main === 'string' ? pkg.main : 'index.js';
  const path = resolve(packageDir, file);
  return existsSync(path) ? path : undefined;
}

/**
 * Packages of the workspace `dir` belongs to, found as pnpm finds them: each pattern of
 * pnpm-workspace.yaml (or of package.json "workspaces") names folders holding a package.json, `**`
 * reaches any depth, a pattern starting with `!` takes folders out, node_modules is never searched.
 */
export function workspacePackageDirs(dir: string): string[] {
  const root = findWorkspaceRoot(dir);
  if (!root || root.patterns.length === 0) return [];
  const simple = simplePackageDirs(root.dir, root.patterns);
  if (simple) return simple;
  const { globSync } = lazyRequire<typeof import('tinyglobby')>('tinyglobby');
  const manifests = globSync(
    root.patterns.map((pattern) => `${pattern.replace(/\/+$/, '')}/package.json`),
    {
      cwd: root.dir,
      ignore: ['**/node_modules/**', '**/bower_components/**'],
      expandDirectories: false,
      absolute: true,
    },
  );
  return manifests.map((manifest) => dirname(manifest)).sort();
}

/** What the glob below never enters, as its `ignore` says. */
const IGNORED_FOLDERS = new Set(['node_modules', 'bower_components']);

/**
 * The common case without the glob library (start-up time: it is some ten modules): patterns like
 * `packages/*` or `plugins/mp-*`, each segment a name or a `*` wildcard, none negated. Matches as
 * the glob does: `*` takes no name starting with a dot, node_modules is never entered, symlinked
 * folders count. Any other pattern (`**`, `!`, `?`, braces, classes) gets undefined: the glob's.
 */
function simplePackageDirs(rootDir: string, patterns: string[]): string[] | undefined {
  const split = patterns.map((pattern) => pattern.replace(/\/+$/, '').replace(/^\.\//, '').split('/'));
  const simple = (segment: string) =>
    segment !== '' &&
    segment !== '.' &&
    segment !== '..' &&
    segment !== '**' &&
    !IGNORED_FOLDERS.has(segment) &&
    !/[?[\]{}()!+@\\]/.test(segment);
  if (!split.every((segments) => segments.every(simple))) return undefined;
  const dirs = new Set<string>();
  const walk = (dir: string, segments: string[]): void => {
    if (segments.length === 0) {
      if (existsSync(join(dir, 'package.json'))) dirs.add(dir);
      return;
    }
    const [segment, ...rest] = segments as [string, ...string[]];
    if (!segment.includes('*')) {
      walk(join(dir, segment), rest);
      return;
    }
    const match = new RegExp(`^${segment.split('*').map(escapeRegExp).join('[^/]*')}$`);
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names) {
      if (name.startsWith('.') || IGNORED_FOLDERS.has(name) || !match.test(name)) continue;
      walk(join(dir, name), rest);
    }
  };
  for (const segments of split) walk(resolve(rootDir), segments);
  return [...dirs].sort();
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * The nearest folder at or above `start` that is a workspace root: one with pnpm-workspace.yaml,
 * or a package.json with "workspaces" (npm, yarn), with its package patterns.
 */
export function findWorkspaceRoot(start: string): { dir: string; patterns: string[] } | undefined {
  let dir = resolve(start);
  for (;;) {
    const yaml = join(dir, 'pnpm-workspace.yaml');
    if (existsSync(yaml)) return { dir, patterns: pnpmWorkspacePatterns(yaml) };
    const pkgPath = join(dir, 'package.json');
    if (existsSync(pkgPath)) {
      try {
        const pkg = JSON.parse(readFileSync(pkgPath, 'utf8'));
        const ws = Array.isArray(pkg.workspaces) ? pkg.workspaces : pkg.workspaces?.packages;
        if (Array.isArray(ws)) return { dir, patterns: ws.filter((p: unknown) => typeof p === 'string') };
      } catch {
        // An unreadable package.json is not a workspace root; keep looking up.
      }
    }
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** The `packages` patterns of a pnpm-workspace.yaml, read with js-yaml as pnpm itself reads it. */
function pnpmWorkspacePatterns(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const simple = simpleWorkspacePatterns(text);
  if (simple) return simple;
  const { load } = lazyRequire<typeof import('js-yaml')>('js-yaml');
  let manifest: unknown;
  try {
    manifest = load(text);
  } catch (error) {
    throw new MpError({
      code: 'WORKSPACE_INVALID',
      message: `${file} is not valid YAML: ${describeError(error)}`,
      file,
      hint: 'Fix pnpm-workspace.yaml; pnpm cannot read it either.',
      cause: error,
    });
  }
  const packages = (manifest as { packages?: unknown } | null)?.packages;
  return Array.isArray(packages) ? packages.filter((p): p is string => typeof p === 'string') : [];
}

/** One item of a block list: `  - packages/*`, `  - 'boards/*'`, `  - "plugins/*" # note`. */
const LIST_ITEM = /^(\s+)-\s+(?:'([^']*)'|"([^"\\]*)"|([A-Za-z0-9_./][^#'"]*?))(?:\s+#.*)?\s*$/;

/**
 * The `packages` of the pnpm-workspace.yaml every workspace has, without the YAML library
 * (start-up time): a top-level `packages:` followed by a block list of plain or quoted names,
 * the rest of the file left unread. Anything else (a flow list, anchors, tags, several
 * documents, a name that would need YAML's escapes) gets undefined: js-yaml reads it.
 */
export function simpleWorkspacePatterns(text: string): string[] | undefined {
  const lines = text.split(/\r?\n/);
  if (lines.some((line) => /^(?:---|\.\.\.|%)/.test(line) || line.includes('\t'))) return undefined;
  const keys = lines.flatMap((line, i) => (/^["']?packages["']?\s*:/.test(line) ? [i] : []));
  const start = keys[0];
  if (keys.length !== 1 || start === undefined || !/^packages\s*:\s*(?:#.*)?$/.test(lines[start]!))
    return undefined;
  const patterns: string[] = [];
  let indent: string | undefined;
  for (const line of lines.slice(start + 1)) {
    if (/^\s*(?:#.*)?$/.test(line)) continue;
    if (/^\S/.test(line)) break;
    const item = LIST_ITEM.exec(line);
    if (!item || (indent !== undefined && item[1] !== indent)) return undefined;
    indent = item[1];
    const value = item[2] ?? item[3] ?? item[4]!;
    if (item[4] !== undefined && /:(?:\s|$)/.test(value)) return undefined;
    patterns.push(value);
  }
  return patterns.length ? patterns : undefined;
}

/**
 * Discovery is synchronous, and most commands never reach it, so its YAML and glob libraries are
 * loaded on first use instead of with core (start-up time; see test/lazy-imports.test.ts).
 */
function lazyRequire<T>(name: string): T {
  return createRequire(import.meta.url)(name) as T;
}

/**
 * A project's own `boards/*` and `plugins/*` packages (where `mp new` puts them), so a project
 * that is not a workspace can still keep local plugins.
 */
function localPluginDirs(root: string): string[] {
  const dirs: string[] = [];
  for (const folder of ['boards', 'plugins']) {
    let entries: string[] = [];
    try {
      entries = readdirSync(join(root, folder));
    } catch {
      continue;
    }
    for (const entry of entries.sort()) {
      const candidate = join(root, folder, entry);
      if (existsSync(join(candidate, 'package.json'))) dirs.push(candidate);
    }
  }
  return dirs;
}

/** Installed dependencies named in `root`'s package.json, resolved through node_modules upwards. */
function dependencyDirs(root: string): string[] {
  let pkg: Record<string, Record<string, string> | undefined>;
  try {
    pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  } catch {
    return [];
  }
  const names = new Set([
    ...Object.keys(pkg.dependencies ?? {}),
    ...Object.keys(pkg.devDependencies ?? {}),
    ...Object.keys(pkg.optionalDependencies ?? {}),
  ]);
  const dirs: string[] = [];
  for (const name of names) {
    let dir = resolve(root);
    for (;;) {
      const candidate = join(dir, 'node_modules', name);
      if (existsSync(join(candidate, 'package.json'))) {
        dirs.push(candidate);
        break;
      }
      const parent = dirname(dir);
      if (parent === dir) break;
      dir = parent;
    }
  }
  return dirs;
}

/**
 * Imports (once per process) a discovered plugin and checks it against the plugin contract. Once:
 * Node keeps a module for the life of the process, so a second import gives the very object the
 * first checked, and the check (a schema over the whole plugin) is a millisecond per build in a
 * process that builds many times (resident mp, mp dev). A resident mp whose plugin file changed
 * steps aside for a new process (cli src/resident/server.ts).
 */
export function importPluginPackage(found: PluginPackage): Promise<Plugin> {
  const key = [found.kind, found.id, found.entry, found.packageName, found.packageJsonPath].join('\0');
  let imported = importedPlugins.get(key);
  if (!imported) {
    imported = importAndCheck(found);
    importedPlugins.set(key, imported);
    // A failure is not kept: the next build reports it afresh (or finds it fixed).
    imported.catch(() => importedPlugins.delete(key));
  }
  return imported;
}
const importedPlugins = new Map<string, Promise<Plugin>>();

/** Imports and validates one discovered plugin; errors name the package and what to do. */
async function importAndCheck(found: PluginPackage): Promise<Plugin> {
  let module: Record<string, unknown>;
  registerCoreResolver();
  try {
    module = await import(pathToFileURL(found.entry).href);
  } catch (error) {
    throw new MpError({
      code: 'PLUGIN_IMPORT_FAILED',
      message: `Could not import plugin package ${found.packageName} (${found.entry}): ${describeError(error)}`,
      plugin: found.packageName,
      file: found.entry,
      hint: `Fix the error in ${found.packageName}, or remove it from the workspace/dependencies. Run \`pnpm install\` if it imports a package that is not installed.`,
      cause: error,
    });
  }
  const plugin = validatePlugin(
    module.default,
    { packageName: found.packageName, file: found.entry },
    found.kind,
  );
  if (plugin.id !== found.id) {
    throw new MpError({
      code: 'PLUGIN_ID_MISMATCH',
      message: `${found.packageName}: package.json declares ${found.kind} "${found.id}" but the module exports id "${plugin.id}"`,
      plugin: found.packageName,
      file: found.packageJsonPath,
      hint: `Make "mp": { "${found.kind}": "…" } in package.json and the plugin's id the same.`,
    });
  }
  return plugin;
}
