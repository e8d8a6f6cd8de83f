/**
 * The JSON sidecar written beside every exported firmware (`<firmware file>.json`): where the
 * firmware came from and how to flash it. The one description of the export format: the build
 * writes it (export.ts) and `mp flash` reads it (flash/firmware.ts) to find the newest export and
 * its flash layout; people read it to know what a file on a network share is.
 */
import { readFileSync } from 'node:fs';
import type { EspChip, FlashFreq, FlashMode, FlashSizeSetting } from '../plugin/types.ts';

export const EXPORT_SCHEMA = 'mp.export/1';

/** mp's own version: recorded in every sidecar, and part of the build cache key. */
export const MP_VERSION: string = JSON.parse(
  readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
).version;

export interface ExportedSegment {
  offset: number;
  /** File name in the export directory (the firmware itself, or another artifact such as a bootloader). */
  file: string;
  /** The board artifact it is (`firmware`, `bootloader`). */
  artifact: string;
  sha256: string;
  size: number;
}

export interface ExportedLibraryFile {
  /** File name in the export directory, e.g. `mqtt_local.py`. */
  file: string;
  library: string;
  /** Path in the library's source. */
  from: string;
  sha256: string;
  /**
   * `written`: new or replaced; `unchanged`: already identical; `kept`: the file in export/ was edited
   * by the user, so it was left alone and the library's version written as `<file>.new`.
   */
  status: 'written' | 'unchanged' | 'kept';
}

/**
 * @example
 * { "schema": "mp.export/1", "firmware": "ESP8266-micropython-v1.28.0-mqtt-as-20261121-233312.bin",
 *   "board": { "id": "esp8266-d1mini", "port": "esp8266", "board": "ESP8266_GENERIC", "variant": null, "chip": "ESP8266", "exportPrefix": "ESP8266" },
 *   "micropython": { "ref": "v1.28.0", "tag": "v1.28.0", "version": "1.28.0", "sha": "…", "git": "https://github.com/micropython/micropython.git", "path": null, "dirty": false,
 *     "submodules": { "lib/micropython-lib": { "git": "https://github.com/micropython/micropython-lib.git", "sha": "…" } } },
 *   "libraries": [{ "id": "mqtt_as", "git": "https://github.com/peterhinch/micropython-mqtt.git", "ref": "master", "sha": "…" }],
 *   "image": { "ref": "larsks/esp-open-sdk:latest", "id": "sha256:…" }, "sha256": "…", "size": 634880,
 *   "flash": { "mode": "keep", "freq": "keep", "size": "detect", "baud": 460800, "segments": [{ "offset": 0, "file": "ESP8266-….bin", "artifact": "firmware", "sha256": "…", "size": 634880 }] },
 *   "exportedFiles": [{ "file": "mqtt_local.py", "library": "mqtt_as", "from": "mqtt_local_example.py", "sha256": "…", "status": "written" }],
 *   "durationMs": 48210, "builtAt": "2026-11-21T23:33:12.000Z" }
 */
export interface ExportSidecar {
  schema: typeof EXPORT_SCHEMA;
  /** File name of the firmware, in the same directory as the sidecar. */
  firmware: string;
  board: {
    id: string;
    title: string;
    /** npm package of the board plugin and its version. */
    package: string | null;
    packageVersion: string | null;
    port: string;
    board: string | null;
    variant: string | null;
    chip: EspChip | null;
    exportPrefix: string;
  };
  micropython: {
    /** What was asked for (tag, branch, sha), or null for "newest stable" / a local checkout. */
    ref: string | null;
    /** Release tag built, when it was one. */
    tag: string | null;
    /** `1.28.0` (from the tag or py/mpconfig.h), with `-preview` for development versions. */
    version: string | null;
    /** Commit built (HEAD of a local checkout). */
    sha: string | null;
    /** Repository URL as configured (before mirrors); null for a local checkout. */
    git: string | null;
    /** Local checkout used instead of git. */
    path: string | null;
    /** A local checkout with uncommitted changes. */
    dirty: boolean;
    /** Submodules fetched for the port, at the commits MicroPython pins: path → { git, sha }. */
    submodules: Record<string, { git: string; sha: string }>;
    /**
     * The commit's time, which the build used as SOURCE_DATE_EPOCH (seconds) and so as the
     * firmware's build date; null for a folder that is no git checkout (then the date is the day's).
     */
    sourceDateEpoch?: number | null;
  };
  libraries: Array<{
    id: string;
    git: string | null;
    path: string | null;
    ref: string | null;
    sha: string | null;
    /** Files frozen into the firmware, relative to the library source. */
    frozen: string[];
  }>;
  /** The project's own modules frozen into the firmware. */
  modules: Array<{ file: string; sha256: string }>;
  /** The toolchain image, why it was chosen, and whether the user named it (`--image`). */
  image: { ref: string; id: string; reason: string | null; override: boolean };
  /**
   * The build options used: the project's make variables and variant (config and flags), every
   * argument make got beyond BOARD/BUILD, and the submodule choice.
   */
  options: {
    make: Record<string, string>;
    makeArgs: string[];
    variant: string | null;
    submodules: { fetch: string[]; skip: string[] };
    /** User C modules compiled in: folder name, host path, hash of their files. */
    cModules: Array<{ name: string; path: string; sha256: string }>;
  };
  /** sha256 and size of the firmware file. */
  sha256: string;
  size: number;
  /** How to flash it; null for host builds (the unix port). */
  flash: {
    mode: FlashMode;
    freq: FlashFreq;
    size: FlashSizeSetting;
    baud: number;
    segments: ExportedSegment[];
  } | null;
  exportedFiles: ExportedLibraryFile[];
  /** sha256 of the generated FROZEN_MANIFEST. */
  manifestSha256: string;
  /** Build cache key: equal keys mean equal inputs. */
  cacheKey: string;
  /** The firmware cache's key: the inputs that decide the firmware's bytes. */
  firmwareKey?: string;
  /**
   * Not compiled: the firmware cache held this firmware, built at `builtAt` (taking `durationMs`)
   * from the same inputs. Null when this build compiled it.
   */
  fromCache?: { builtAt: string; durationMs: number } | null;
  /** Wall time from the start of `mp build` to the export. */
  durationMs: number;
  builtAt: string;
  mp: { version: string };
}

/**
 * `export/latest-<board id>.json`: the sidecar of the newest export for that board, plus the name
 * of the sidecar file. `mp flash` reads it to find what to flash without listing the directory.
 */
export interface LatestExportIndex extends ExportSidecar {
  sidecar: string;
}
