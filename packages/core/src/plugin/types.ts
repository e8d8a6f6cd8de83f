/**
 * The plugin contracts. Boards and libraries are plain data plus optional hooks; every hook takes a
 * single context object carrying a logger and an AbortSignal.
 */
import type { Logger } from '../events.ts';
import type { ReleaseVersion } from './version.ts';

/** ESP chips mp can flash. Host builds (the unix port) have no chip. */
export type EspChip = 'ESP8266' | 'ESP32' | 'ESP32-S2' | 'ESP32-S3' | 'ESP32-C3' | 'ESP32-C6';

export type FlashMode = 'qio' | 'qout' | 'dio' | 'dout' | 'keep';
export type FlashFreq = '80m' | '40m' | '26m' | '20m' | 'keep';
export type FlashSizeSetting = '1MB' | '2MB' | '4MB' | '8MB' | '16MB' | 'detect' | 'keep';

/** One file written to flash: the artifact named `artifact` goes to `offset`. */
export interface FlashSegment {
  offset: number;
  /** A key of the board's `artifacts`. */
  artifact: string;
}

/**
 * Where and how a board's image goes into flash.
 * @example { segments: [{ offset: 0x0, artifact: 'firmware' }], mode: 'dio', freq: '40m', size: 'detect', baud: 460800 }
 */
export interface FlashLayout {
  segments: FlashSegment[];
  mode: FlashMode;
  freq: FlashFreq;
  size: FlashSizeSetting;
  /** Baud rate after the flasher stub is running (the ROM always starts at 115200). */
  baud: number;
}

/**
 * The container a board compiles in: an image to use or pull, and/or a Dockerfile to build when the
 * image cannot be had.
 * @example { image: 'larsks/esp-open-sdk' }
 */
export interface ToolchainImage {
  /** Image reference, e.g. `espressif/idf:v5.5.1`. Used if present, else pulled. */
  image?: string;
  /** Absolute path of a Dockerfile built (tagged as `image`, or an mp-generated tag) when pulling is not possible. */
  dockerfile?: string;
  buildArgs?: Record<string, string>;
  /** Environment for commands inside the container. */
  env?: Record<string, string>;
  /** Shell commands run before `make` in the same shell, e.g. `. $IDF_PATH/export.sh`. */
  shellPrelude?: string;
  /** Run as the host user (default true). Some images need root (their toolchain lives in /root). */
  runAsHostUser?: boolean;
  /**
   * Why this image fits the MicroPython being built, e.g. "ports/esp32/lockfiles/dependencies.lock.esp32
   * pins IDF 5.5.1". Shown in the build output and recorded in the sidecar; set it in `resolve`.
   */
  reason?: string;
}

/** The MicroPython source being built against, as boards and libraries see it in hooks. */
export interface MicroPythonSource {
  /** Host path of the checkout (read-only for hooks). */
  dir: string;
  /** The ref asked for (tag, branch, sha or local path). */
  ref: string;
  /** Release tag when the ref is one, e.g. `v1.28.0`. */
  tag?: string;
  /** Parsed release version, when known (from the tag or from `py/mpconfig.h`). */
  version?: ReleaseVersion;
  sha: string;
}

/** Everything about a board that may depend on the MicroPython release being built. */
export interface BoardTarget {
  /** `BOARD=` for make (absent for ports without boards, like unix). */
  board?: string;
  /** `BOARD_VARIANT=` (esp ports) or `VARIANT=` (unix). */
  variant?: string;
  toolchain: ToolchainImage;
  /** Extra make arguments, e.g. `['MICROPY_PY_BTREE=0']`. */
  makeArgs?: string[];
  /**
   * Git submodules the port needs (`['lib/micropython-lib']`). Default: the list the port's own
   * `make submodules` prints, asked once per MicroPython commit in the toolchain container.
   */
  submodules?: string[];
  /**
   * Build outputs by name, as paths relative to the build directory (make's `BUILD`).
   * The one named by the board's `firmware` is the exported firmware.
   */
  artifacts: Record<string, string>;
  /** The manifest the board freezes by default; the generated manifest `include()`s it. */
  defaultManifest: string;
  flash?: FlashLayout;
}

export interface HookContext {
  logger: Logger;
  signal: AbortSignal;
}

export interface BoardResolveContext extends HookContext {
  micropython: MicroPythonSource;
}

/**
 * A board plugin.
 * @example
 * export default defineBoard({
 *   id: 'esp8266-d1mini', title: 'Wemos D1 mini', port: 'esp8266', chip: 'ESP8266', exportPrefix: 'ESP8266',
 *   board: 'ESP8266_GENERIC', toolchain: { image: 'larsks/esp-open-sdk' },
 *   artifacts: { firmware: 'firmware.bin' }, firmware: 'firmware',
 *   defaultManifest: '$(BOARD_DIR)/manifest_2MiB.py',
 *   flash: { segments: [{ offset: 0, artifact: 'firmware' }], mode: 'dio', freq: '40m', size: 'detect', baud: 460800 },
 * });
 */
export interface BoardPlugin extends BoardTarget {
  kind: 'board';
  /**
   * Another board (its id, or the plugin object) whose fields and `resolve` logic this one takes,
   * replacing what it sets itself: a variant of esp8266-d1mini is a few lines. See plugin/extends.ts.
   */
  extends?: string | BoardPlugin;
  /** kebab-case id used on the command line (`--board esp8266-d1mini`). */
  id: string;
  title: string;
  /** MicroPython port directory under `ports/`. */
  port: string;
  /** The chip `mp flash` expects to find; absent for host builds. */
  chip?: EspChip;
  /** First part of exported file names, e.g. `ESP8266`. */
  exportPrefix: string;
  /** Which artifact is the firmware (a key of `artifacts`). */
  firmware: string;
  /** Extension of the exported firmware file (default `.bin`; the unix executable has none). */
  firmwareExtension?: string;
  /** Build mpy-cross in the board's image before the port (default true). */
  mpyCross?: boolean;
  /**
   * Adjust the target to the MicroPython release being built: board names that changed (ESP8266
   * `GENERIC` before v1.21), toolchain versions a release needs, renamed outputs.
   */
  resolve?(ctx: BoardResolveContext): Partial<BoardTarget> | Promise<Partial<BoardTarget>>;
}

/** Where a library's source comes from: a git repository at a ref, or a local directory. */
export type LibrarySource = { git: string; ref?: string } | { path: string };

/** What a library freezes. `base` is relative to the library's source root (default: the root). */
export type FreezeEntry =
  | {
      /** A package folder, frozen with its .py files (or only `files`, relative to the folder). */
      package: string;
      files?: string[];
      base?: string;
      opt?: number;
    }
  | { module: string; base?: string; opt?: number };

/** A file copied beside the exported firmware, e.g. a config template. */
export interface ExportedFile {
  /** Path relative to the library's source root. */
  from: string;
  /** File name in the export directory. */
  as: string;
}

export interface LibraryResolveContext extends HookContext {
  /** Host path of the fetched library source. */
  sourceDir: string;
  micropython: MicroPythonSource;
}

/**
 * A library plugin: Python code frozen into the firmware.
 * @example
 * export default defineLibrary({
 *   id: 'mqtt_as', title: 'Asynchronous MQTT client', nameFragment: 'mqtt-as',
 *   source: { git: 'https://github.com/peterhinch/micropython-mqtt.git', ref: 'master' },
 *   freeze: [{ package: 'mqtt_as' }], exports: [{ from: 'mqtt_local_example.py', as: 'mqtt_local.py' }],
 * });
 */
export interface LibraryPlugin {
  kind: 'library';
  /** The Python import name, e.g. `mqtt_as`. */
  id: string;
  title: string;
  source: LibrarySource;
  freeze: FreezeEntry[];
  exports?: ExportedFile[];
  /** MicroPython ports it works on; absent means all. */
  ports?: string[];
  /** Part of exported file names, e.g. `mqtt-as`. */
  nameFragment: string;
  /** Adjust freeze entries and exports to the fetched source (libraries whose layout changed). */
  resolve?(
    ctx: LibraryResolveContext,
  ):
    | Partial<Pick<LibraryPlugin, 'freeze' | 'exports'>>
    | Promise<Partial<Pick<LibraryPlugin, 'freeze' | 'exports'>>>;
}

export type Plugin = BoardPlugin | LibraryPlugin;
export type PluginKind = Plugin['kind'];
