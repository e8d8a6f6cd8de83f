/**
 * The schema of `mp.config.*`: `MpConfig` is inferred from it, so the type config authors see and
 * the check their file gets cannot drift apart.
 */
import * as v from 'valibot';
import { dict, expected, isRecord, strict, text, texts, wholeNumber } from '../util/validate.ts';
import type { PluginOption } from './types.ts';

/** A size on disk: `2GB`, `500MB`, `1.5GiB`, `64k` (units of 1000, or 1024 with an `i`). */
export const BYTE_SIZE = /^\s*\d+(\.\d+)?\s*([kmgt]i?)?b?\s*$/i;

/** A make variable name: what make accepts on its command line as `NAME=value`. */
export const MAKE_VARIABLE = /^[A-Za-z_][A-Za-z0-9_]*$/;

const libraryOverride = v.pipe(
  strict(
    {
      id: text(),
      /** Git ref of the library's repository (branch, tag or sha). */
      ref: v.optional(text()),
      /** Another git URL (a fork or mirror). */
      git: v.optional(text()),
      /** A local checkout instead of git; watched by `mp dev`. */
      path: v.optional(text()),
    },
    'a library id or { id, ref?, git?, path? }',
  ),
  v.partialCheck(
    [['path'], ['git'], ['ref']],
    (lib) => lib.path === undefined || (lib.git === undefined && lib.ref === undefined),
    'path (a local checkout) cannot be combined with git or ref',
  ),
);

/** A library by id, or by id with its source overridden. */
const libraryChoice = v.lazy((input) => (typeof input === 'string' ? text() : libraryOverride));

/** The same rule as MP_GIT_MIRRORS: an empty side would turn every git URL relative. */
const mirrors = v.pipe(
  dict(v.string(), v.string(expected('a string')), 'an object of strings'),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!isRecord(dataset.value)) return;
    for (const [from, to] of Object.entries(dataset.value)) {
      if (typeof to === 'string' && (!from.trim() || !to.trim()))
        addIssue({
          message: `entry "${from}": "${to}" has an empty side, which would turn git URLs relative; give both sides a URL prefix`,
        });
    }
  }),
);

const make = dict(
  v.pipe(
    v.string(),
    v.regex(MAKE_VARIABLE, 'is not a make variable name (letters, digits and _, not starting with a digit)'),
  ),
  v.union([v.string(), v.number(), v.boolean()], expected('a string, number or boolean')),
  'an object of make variables',
);

export const configSchema = strict({
  /** Board plugin id. Default `esp8266-d1mini`. */
  board: v.optional(text()),
  /** Libraries to freeze. Default `['mqtt_as']`; `[]` freezes none. */
  libraries: v.optional(v.array(libraryChoice, expected('a list'))),
  /** Folder of the project's own Python modules to freeze, relative to the project. Default `modules`. */
  modules: v.optional(text()),
  micropython: v.optional(
    strict({
      /** Tag, branch or sha. Default: the newest stable release tag (`vX.Y.Z`). */
      ref: v.optional(text()),
      /** Repository URL. Default `https://github.com/micropython/micropython.git`. */
      git: v.optional(text()),
      /** A local MicroPython checkout used as is (no clone). */
      path: v.optional(text()),
    }),
  ),
  /**
   * Plugin objects passed directly, besides the discovered packages. Each is checked as a plugin
   * when the registry takes it (plugin/validate.ts), so only the list is checked here.
   */
  plugins: v.optional(
    v.array(
      v.custom<PluginOption>(() => true),
      expected('a list of plugin objects'),
    ),
  ),
  /** Where firmware is exported, relative to the project. Default `export`. */
  exportDir: v.optional(text()),
  /** Toolchain image override for the board. */
  image: v.optional(text()),
  /**
   * URL prefix rewrites for every git source, e.g. `{ 'https://github.com/': 'https://git.example.com/mirror/' }`.
   * Also read from `MP_GIT_MIRRORS` (`from=to` pairs separated by `;`).
   */
  mirrors: v.optional(mirrors),
  flash: v.optional(
    strict({
      /** Serial port path. Default: detected. */
      port: v.optional(text()),
      /** Baud rate after the stub is loaded. Default: the board's. */
      baud: v.optional(wholeNumber(9600)),
    }),
  ),
  /** Parallel make jobs. Default: the number of CPUs. */
  jobs: v.optional(wholeNumber(1)),
  /**
   * Make variables for the port's make, e.g. `{ MICROPY_PY_BTREE: 0 }` for a build without btree
   * or `{ MICROPY_PY_SSL: 0 }`. Added after the board's own `makeArgs`, so they win.
   */
  make: v.optional(make),
  /** The board variant (`BOARD_VARIANT`, `VARIANT` on unix), e.g. `FLASH_1M` or `SPIRAM`. Default: the board's. */
  variant: v.optional(text()),
  /** Submodules of MicroPython to fetch besides the ones the port asks for, or to leave out. */
  submodules: v.optional(
    strict(
      {
        /** Also fetch these (paths such as `lib/micropython-lib`). */
        fetch: v.optional(texts()),
        /** Never fetch these, e.g. `lib/berkeley-db-1.xx` for a build with `MICROPY_PY_BTREE=0`. */
        skip: v.optional(texts()),
      },
      '{ fetch?: [...], skip?: [...] }',
    ),
  ),
  /**
   * User C modules: folders (relative to the project) with a `micropython.mk` and/or
   * `micropython.cmake`, compiled into the firmware through USER_C_MODULES.
   */
  cModules: v.optional(texts()),
  /**
   * Files copied to the board's filesystem by `mp put` with no arguments (and after `mp flash`),
   * relative to the project, e.g. `['export/mqtt_local.py', 'main.py']`: credentials reach the
   * board this way instead of being frozen. Each goes to `/` under its own name.
   */
  files: v.optional(texts()),
  /**
   * mp's firmware cache, which keeps each build's firmware under a hash of its inputs so that an
   * earlier state (a revert, another branch, an earlier config) is answered without compiling.
   * `maxSize` bounds it on disk, the least recently used firmware going first: `'2GB'` (the
   * default), `'500MB'`, or a number of bytes.
   */
  cache: v.optional(
    strict({
      maxSize: v.optional(
        v.union(
          [wholeNumber(0), v.pipe(v.string(), v.regex(BYTE_SIZE))],
          expected('a size such as "2GB" or "500MB", or a number of bytes'),
        ),
      ),
    }),
  ),
});
