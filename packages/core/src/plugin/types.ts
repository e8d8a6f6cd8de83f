/**
 * The plugin contracts. Boards and libraries are plain data plus optional hooks; every hook takes a
 * single context object carrying a logger and an AbortSignal. The data types are inferred from the
 * schemas in ./schema.ts (where each field is documented), so the types and the checks agree.
 */
import type * as v from 'valibot';
import type { Logger } from '../events.ts';
import type {
  BoardFields,
  CHIPS,
  FLASH_FREQS,
  FLASH_MODES,
  FLASH_SIZES,
  flashLayoutSchema,
  flashSegmentSchema,
  librarySchema,
  toolchainSchema,
} from './schema.ts';
import type { ReleaseVersion } from './version.ts';

export type { BoardTarget } from './schema.ts';

/** ESP chips mp can flash. Host builds (the unix port) have no chip. */
export type EspChip = (typeof CHIPS)[number];
export type FlashMode = (typeof FLASH_MODES)[number];
export type FlashFreq = (typeof FLASH_FREQS)[number];
export type FlashSizeSetting = (typeof FLASH_SIZES)[number];

/** One file written to flash: the artifact named `artifact` goes to `offset`. */
export type FlashSegment = v.InferOutput<typeof flashSegmentSchema>;

/**
 * Where and how a board's image goes into flash.
 * @example { segments: [{ offset: 0x0, artifact: 'firmware' }], mode: 'dio', freq: '40m', size: 'detect', baud: 460800 }
 */
export type FlashLayout = v.InferOutput<typeof flashLayoutSchema>;

/**
 * The container a board compiles in: an image to use or pull, and/or a Dockerfile to build when the
 * image cannot be had.
 * @example { image: 'larsks/esp-open-sdk' }
 */
export type ToolchainImage = v.InferOutput<typeof toolchainSchema>;

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
export interface BoardPlugin extends BoardFields {
  /**
   * Another board (its id, or the plugin object) whose fields and `resolve` logic this one takes,
   * replacing what it sets itself: a variant of esp8266-d1mini is a few lines. See plugin/extends.ts.
   */
  extends?: string | BoardPlugin;
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
export type LibraryPlugin = v.InferOutput<typeof librarySchema>;

/** Where a library's source comes from: a git repository at a ref, or a local directory. */
export type LibrarySource = LibraryPlugin['source'];

/** What a library freezes. `base` is relative to the library's source root (default: the root). */
export type FreezeEntry = LibraryPlugin['freeze'][number];

/** A file copied beside the exported firmware, e.g. a config template. */
export type ExportedFile = NonNullable<LibraryPlugin['exports']>[number];

export interface LibraryResolveContext extends HookContext {
  /** Host path of the fetched library source. */
  sourceDir: string;
  micropython: MicroPythonSource;
}

export type Plugin = BoardPlugin | LibraryPlugin;
export type PluginKind = Plugin['kind'];
