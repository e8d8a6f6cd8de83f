/**
 * All plugins mp can use in one project: discovered packages (imported lazily) and plugin objects
 * passed in the config. Duplicate ids are an error naming both sources.
 */
import { MpError } from '../errors.ts';
import { closest } from '../util/validate.ts';
import {
  type DiscoverOptions,
  discoverPluginPackages,
  importPluginPackage,
  type PluginPackage,
} from './discovery.ts';
import { resolveExtends } from './extends.ts';
import type { BoardPlugin, LibraryPlugin, Plugin, PluginKind } from './types.ts';
import { validatePlugin } from './validate.ts';

/** One entry of `mp boards` / `mp libs`. */
export interface PluginListing {
  kind: PluginKind;
  id: string;
  /** npm package, or `mp.config` for inline plugins. */
  source: string;
  packageDir?: string;
  version?: string;
}

interface Entry {
  listing: PluginListing;
  load: () => Promise<Plugin>;
}

export class PluginRegistry {
  private readonly entries = new Map<string, Entry>();
  private readonly loaded = new Map<string, Promise<Plugin>>();
  private readonly raw = new Map<string, Promise<Plugin>>();
  /** Packages that declare themselves plugins but could not be read. */
  readonly problems: MpError[];

  private constructor(problems: MpError[]) {
    this.problems = problems;
  }

  static create(options: DiscoverOptions & { inline?: Plugin[]; configFile?: string }): PluginRegistry {
    const { packages, problems } = discoverPluginPackages(options);
    const registry = new PluginRegistry(problems);
    for (const found of packages) registry.addPackage(found);
    for (const plugin of options.inline ?? []) registry.addInline(plugin, options.configFile);
    return registry;
  }

  private key(kind: PluginKind, id: string): string {
    return `${kind}:${id}`;
  }

  private add(kind: PluginKind, id: string, entry: Entry): void {
    const key = this.key(kind, id);
    const existing = this.entries.get(key);
    if (existing) {
      throw new MpError({
        code: 'PLUGIN_DUPLICATE_ID',
        message: `Two plugins declare the ${kind} id "${id}": ${existing.listing.source}${existing.listing.packageDir ? ` (${existing.listing.packageDir})` : ''} and ${entry.listing.source}${entry.listing.packageDir ? ` (${entry.listing.packageDir})` : ''}`,
        plugin: entry.listing.source,
        hint: 'Rename one of them (its package.json "mp" field and the plugin id), or remove one from the workspace/dependencies.',
      });
    }
    this.entries.set(key, entry);
  }

  private addPackage(found: PluginPackage): void {
    this.add(found.kind, found.id, {
      listing: {
        kind: found.kind,
        id: found.id,
        source: found.packageName,
        packageDir: found.packageDir,
        version: found.version,
      },
      load: () => importPluginPackage(found),
    });
  }

  private addInline(plugin: Plugin, configFile?: string): void {
    const valid = validatePlugin(plugin, { packageName: 'mp.config', file: configFile });
    this.add(valid.kind, valid.id, {
      listing: { kind: valid.kind, id: valid.id, source: 'mp.config' },
      load: async () => valid,
    });
  }

  list(kind: PluginKind): PluginListing[] {
    return [...this.entries.values()]
      .map((e) => e.listing)
      .filter((l) => l.kind === kind)
      .sort((a, b) => a.id.localeCompare(b.id));
  }

  /**
   * One plugin's listing, as `list(kind)` has it, without sorting them all: a build needs only its
   * board's and libraries' (and the collation list() sorts with costs milliseconds on first use).
   */
  listing(kind: PluginKind, id: string): PluginListing | undefined {
    return this.entries.get(this.key(kind, id))?.listing;
  }

  has(kind: PluginKind, id: string): boolean {
    return this.entries.has(this.key(kind, id));
  }

  /** Imports (once) and returns the plugin; unknown ids get a suggestion and the list of known ones. */
  async load(kind: 'board', id: string): Promise<BoardPlugin>;
  async load(kind: 'library', id: string): Promise<LibraryPlugin>;
  async load(kind: PluginKind, id: string): Promise<Plugin> {
    const key = this.key(kind, id);
    const entry = this.entries.get(key);
    if (!entry) throw this.unknown(kind, id);
    let promise = this.loaded.get(key);
    if (!promise) {
      promise = this.imported(kind, id).then((plugin) =>
        plugin.kind === 'board' && plugin.extends !== undefined
          ? this.extended(plugin, entry.listing.source)
          : plugin,
      );
      this.loaded.set(key, promise);
    }
    return promise;
  }

  /** The plugin as its module exports it (before `extends` is followed), imported once. */
  private imported(kind: PluginKind, id: string): Promise<Plugin> {
    const key = this.key(kind, id);
    const entry = this.entries.get(key);
    if (!entry) return Promise.reject(this.unknown(kind, id));
    let promise = this.raw.get(key);
    if (!promise) {
      promise = entry.load();
      this.raw.set(key, promise);
    }
    return promise;
  }

  /** Loads every plugin of a kind; failures are collected, not thrown, so one broken package does not hide the rest. */
  async loadAll(
    kind: PluginKind,
  ): Promise<{ plugins: Array<{ listing: PluginListing; plugin: Plugin }>; errors: MpError[] }> {
    const plugins: Array<{ listing: PluginListing; plugin: Plugin }> = [];
    const errors: MpError[] = [...this.problems.filter((p) => p.code === 'PLUGIN_PACKAGE_INVALID')];
    for (const listing of this.list(kind)) {
      try {
        plugins.push({
          listing,
          plugin: await (this.load as (k: PluginKind, i: string) => Promise<Plugin>)(kind, listing.id),
        });
      } catch (error) {
        if (error instanceof MpError) errors.push(error);
        else throw error;
      }
    }
    return { plugins, errors };
  }

  /** A board with `extends`, merged with its base and then checked as a whole board. */
  private async extended(board: BoardPlugin, packageName: string): Promise<BoardPlugin> {
    const merged = await resolveExtends(board, async (id) => {
      const base = await this.imported('board', id);
      if (base.kind !== 'board') throw this.unknown('board', id);
      return base;
    });
    return validatePlugin(merged, { packageName }, 'board') as BoardPlugin;
  }

  private unknown(kind: PluginKind, id: string): MpError {
    const known = this.list(kind).map((l) => l.id);
    const near = closest(id, known);
    const noun = kind === 'board' ? 'board' : 'library';
    return new MpError({
      code: kind === 'board' ? 'UNKNOWN_BOARD' : 'UNKNOWN_LIBRARY',
      message: `Unknown ${noun} "${id}"${near ? ` (did you mean "${near}"?)` : ''}. Known: ${known.join(', ') || 'none'}`,
      plugin: id,
      hint:
        kind === 'board'
          ? 'Run `mp boards` to list boards, or `mp new board <id>` to create one.'
          : 'Run `mp libs` to list libraries, or `mp new library <id>` to create one.',
      exitCode: 2,
    });
  }
}
