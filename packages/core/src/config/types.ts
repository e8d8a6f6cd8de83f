import type * as v from 'valibot';
import type { RemoteCacheSettings } from '../firmware/remote-cache.ts';
import type { Plugin } from '../plugin/types.ts';
import type { configSchema } from './schema.ts';

/** Config entries may be nested or falsy so `cond && plugin` works (as in Vite). */
export type PluginOption = Plugin | PluginOption[] | false | null | undefined;

/**
 * The project's `mp.config.ts` (or `.js`, `.mjs`, `.json`). Every key is optional; command-line
 * flags override it. The keys and their documentation are in ./schema.ts.
 * @example
 * export default defineConfig({ board: 'esp32-generic', libraries: ['mqtt_as'], micropython: { ref: 'v1.28.0' } });
 */
export type MpConfig = v.InferOutput<typeof configSchema>;

/** A library as the config names it: by id, or by id with its source overridden. */
export type LibraryChoice = NonNullable<MpConfig['libraries']>[number];

/** Which MicroPython submodules a build fetches, on top of what `make submodules` of the port lists. */
export type SubmoduleChoice = NonNullable<MpConfig['submodules']>;

/** An engine as the config names it (`engines`): an address, a context name, or an object. */
export type EngineChoice = NonNullable<MpConfig['engines']>[number];

/** One of `targets`, resolved: its own keys over the top level's, under the environment and flags. */
export interface ResolvedTarget {
  name: string;
  board: string;
  variant?: string;
  make: Record<string, string>;
  libraries: ResolvedConfig['libraries'];
  micropython: ResolvedConfig['micropython'];
  image?: string;
}

/** An engine of `engines`, resolved: where it is and how to reach it, as DOCKER_* variables take it. */
export interface ResolvedEngine {
  /** For the output: the config's `name`, else the context name or the address. */
  name: string;
  /** DOCKER_HOST; absent for the default engine of the environment. */
  host?: string;
  /** A Docker context to read the address and TLS material from (`docker context ls`). */
  context?: string;
  /** Absolute DOCKER_CERT_PATH. */
  certPath?: string;
  tlsVerify?: boolean;
  /** Slots of this engine; absent: the top-level `parallel`, else its cores and memory. */
  parallel?: number;
  mounts?: 'bind' | 'copy';
}

/** Flags from the command line that override config keys. */
export interface ConfigOverrides {
  board?: string;
  libraries?: LibraryChoice[];
  modules?: string;
  micropythonRef?: string;
  image?: string;
  exportDir?: string;
  port?: string;
  baud?: number;
  jobs?: number;
  /** `--make VAR=VALUE`: merged over the file's `make`. */
  make?: Record<string, string>;
  variant?: string;
  /** `--submodule PATH` / `--skip-submodule PATH`: added to the file's lists. */
  submodules?: SubmoduleChoice;
  /** `--c-module DIR`: added to the file's `cModules`. */
  cModules?: string[];
  /** `--parallel N`: targets at once per engine. */
  parallel?: number;
}

/** Config after defaults, file and flags are merged, with paths made absolute. */
export interface ResolvedConfig {
  projectDir: string;
  /** The config file used, if any. */
  configFile?: string;
  board: string;
  libraries: Array<{ id: string; ref?: string; git?: string; path?: string }>;
  /** Absolute path of the modules folder (may not exist when it is the default). */
  modulesDir: string;
  /** Who named the modules folder: a folder the config or a flag names must exist. */
  modulesFrom: 'default' | 'config' | 'flag';
  micropython: { ref?: string; git: string; path?: string };
  plugins: Plugin[];
  exportDir: string;
  image?: string;
  mirrors: Record<string, string>;
  flash: { port?: string; baud?: number };
  jobs: number;
  /** Make variables from the config and `--make`, as given (values turned into strings). */
  make: Record<string, string>;
  variant?: string;
  submodules: { fetch: string[]; skip: string[] };
  /** Absolute folders of the user C modules (config `cModules`, then `--c-module`). */
  cModules: string[];
  /**
   * The files copied to the board after a flash and by `mp put` with none named (config `files`):
   * absolute host path and board path.
   */
  files: Array<{ from: string; to: string }>;
  /** The firmware cache's bound as the config writes it (`cache.maxSize`); see firmware/firmware-cache.ts. */
  cache: {
    maxSize?: string | number;
    /** `cache.remote` under MP_REMOTE_CACHE_*; absent without a URL (see firmware/remote-cache.ts). */
    remote?: RemoteCacheSettings;
  };
  /** Config `targets` in config order (`mp build --all`); empty when there are none. */
  targets: ResolvedTarget[];
  /** Targets at once per engine (config `parallel`, `--parallel`); absent: from each engine's cores and memory. */
  parallel?: number;
  /** Config `engines`; empty: the one engine DOCKER_HOST names. */
  engines: ResolvedEngine[];
  /**
   * The target this config builds (set by targets/ for each of `targets`): its build folder is
   * `.mp/build/target-<name>` and its name is part of the export's file name.
   */
  target?: string;
}
