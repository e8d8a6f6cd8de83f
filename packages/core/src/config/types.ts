import type { Plugin } from '../plugin/types.ts';

/** A library as the config names it: by id, or by id with its source overridden. */
export type LibraryChoice =
  | string
  | {
      id: string;
      /** Git ref of the library's repository (branch, tag or sha). */
      ref?: string;
      /** Another git URL (a fork or mirror). */
      git?: string;
      /** A local checkout instead of git; watched by `mp dev`. */
      path?: string;
    };

/** Config entries may be nested or falsy so `cond && plugin` works (as in Vite). */
export type PluginOption = Plugin | PluginOption[] | false | null | undefined;

/**
 * The project's `mp.config.ts` (or `.js`, `.mjs`, `.json`). Every key is optional; command-line
 * flags override it.
 * @example
 * export default defineConfig({ board: 'esp32-generic', libraries: ['mqtt_as'], micropython: { ref: 'v1.28.0' } });
 */
export interface MpConfig {
  /** Board plugin id. Default `esp8266-d1mini`. */
  board?: string;
  /** Libraries to freeze. Default `['mqtt_as']`; `[]` freezes none. */
  libraries?: LibraryChoice[];
  /** Folder of the project's own Python modules to freeze, relative to the project. Default `modules`. */
  modules?: string;
  micropython?: {
    /** Tag, branch or sha. Default: the newest stable release tag (`vX.Y.Z`). */
    ref?: string;
    /** Repository URL. Default `https://github.com/micropython/micropython.git`. */
    git?: string;
    /** A local MicroPython checkout used as is (no clone). */
    path?: string;
  };
  /** Plugin objects passed directly, besides the discovered packages. */
  plugins?: PluginOption[];
  /** Where firmware is exported, relative to the project. Default `export`. */
  exportDir?: string;
  /** Toolchain image override for the board. */
  image?: string;
  /**
   * URL prefix rewrites for every git source, e.g. `{ 'https://github.com/': 'https://git.example.com/mirror/' }`.
   * Also read from `MP_GIT_MIRRORS` (`from=to` pairs separated by `;`).
   */
  mirrors?: Record<string, string>;
  flash?: {
    /** Serial port path. Default: detected. */
    port?: string;
    /** Baud rate after the stub is loaded. Default: the board's. */
    baud?: number;
  };
  /** Parallel make jobs. Default: the number of CPUs. */
  jobs?: number;
  /**
   * Make variables for the port's make, e.g. `{ MICROPY_PY_BTREE: 0 }` for a build without btree
   * or `{ MICROPY_PY_SSL: 0 }`. Added after the board's own `makeArgs`, so they win.
   */
  make?: Record<string, string | number | boolean>;
  /** The board variant (`BOARD_VARIANT`, `VARIANT` on unix), e.g. `FLASH_1M` or `SPIRAM`. Default: the board's. */
  variant?: string;
  /** Submodules of MicroPython to fetch besides the ones the port asks for, or to leave out. */
  submodules?: SubmoduleChoice;
  /**
   * User C modules: folders (relative to the project) with a `micropython.mk` and/or
   * `micropython.cmake`, compiled into the firmware through USER_C_MODULES.
   */
  cModules?: string[];
}

/** Which MicroPython submodules a build fetches, on top of what `make submodules` of the port lists. */
export interface SubmoduleChoice {
  /** Also fetch these (paths such as `lib/micropython-lib`). */
  fetch?: string[];
  /** Never fetch these, e.g. `lib/berkeley-db-1.xx` for a build with `MICROPY_PY_BTREE=0`. */
  skip?: string[];
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
}
