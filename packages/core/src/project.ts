/**
 * A project: the directory mp works on (config file, `modules/`, `export/`, `.mp/`), its resolved
 * config and the plugins it can use.
 */
import { join } from 'node:path';
import { type LoadConfigOptions, loadConfig } from './config/load.ts';
import type { ResolvedConfig } from './config/types.ts';
import { PluginRegistry } from './plugin/registry.ts';

export interface Project {
  config: ResolvedConfig;
  plugins: PluginRegistry;
  /** Project-local state (build directories, last build, remembered port): `<project>/.mp`. */
  stateDir: string;
}

export interface OpenProjectOptions extends LoadConfigOptions {
  /**
   * Extra directories whose workspace and dependencies hold plugins: the CLI passes its own
   * package directory, so first-party boards are found wherever mp is installed.
   */
  pluginRoots?: string[];
}

export async function openProject(options: OpenProjectOptions): Promise<Project> {
  const config = await loadConfig(options);
  const plugins = PluginRegistry.create({
    roots: [config.projectDir, ...(options.pluginRoots ?? [])],
    inline: config.plugins,
    configFile: config.configFile,
  });
  return { config, plugins, stateDir: join(config.projectDir, '.mp') };
}
