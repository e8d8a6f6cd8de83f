/**
 * The schema of `mp.config.*`: `MpConfig` is inferred from it, so the type config authors see and
 * the check their file gets cannot drift apart.
 */
import * as v from 'valibot';
import {
  dict,
  expected,
  flag,
  isRecord,
  matching,
  oneOf,
  strict,
  text,
  texts,
  wholeNumber,
} from '../util/validate.ts';
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

/** A target's name: it names a build folder (`.mp/build/target-<name>`) and a part of export file names. */
export const TARGET_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

const micropythonSource = strict({
  /** Tag, branch or sha. Default: the newest stable release tag (`vX.Y.Z`). */
  ref: v.optional(text()),
  /** Repository URL. Default `https://github.com/micropython/micropython.git`. */
  git: v.optional(text()),
  /** A local MicroPython checkout used as is (no clone). */
  path: v.optional(text()),
});

/** One entry of `targets`: what differs from the top level, which gives every other key. */
const target = strict(
  {
    /** Board plugin id. Default: the top-level `board`. */
    board: v.optional(text()),
    /** The board variant. Default: the top-level `variant`. */
    variant: v.optional(text()),
    /** Make variables, merged over the top-level `make` (a target's value wins). */
    make: v.optional(make),
    /** Libraries to freeze, instead of the top-level list. */
    libraries: v.optional(v.array(libraryChoice, expected('a list'))),
    /** MicroPython for this target, layered over the top-level `micropython` (a ref replaces a path). */
    micropython: v.optional(micropythonSource),
    /** Toolchain image override. Default: the top-level `image`. */
    image: v.optional(text()),
  },
  '{ board?, variant?, make?, libraries?, micropython?, image? }',
);

/** A Docker engine builds go to: its address, or an object with its TLS material and slots. */
const engine = v.lazy((input) =>
  typeof input === 'string'
    ? text('a DOCKER_HOST address or a Docker context name')
    : strict(
        {
          /** `unix:///var/run/docker.sock`, `tcp://host:2376`, `ssh://user@host`: what DOCKER_HOST takes. */
          host: v.optional(text()),
          /** A Docker context (`docker context ls`) instead of `host`. */
          context: v.optional(text()),
          /** Folder with ca.pem, cert.pem and key.pem, as DOCKER_CERT_PATH (relative to the project). */
          certPath: v.optional(text()),
          /** Verify the engine's certificate, as DOCKER_TLS_VERIFY=1. Default: true when `certPath` is given. */
          tlsVerify: v.optional(flag()),
          /** How many targets build there at once. Default: the top-level `parallel`, else the engine's cores and memory. */
          parallel: v.optional(wholeNumber(1)),
          /** `copy` sources into volumes, or `bind` mount them (MP_DOCKER_MOUNTS). Default: bind for engines on this machine. */
          mounts: v.optional(oneOf(['bind', 'copy'] as const)),
          /** The engine's name in the output. Default: its address or context. */
          name: v.optional(text()),
        },
        'an address, a context name, or { host | context, certPath?, tlsVerify?, parallel?, mounts?, name? }',
      ),
);

const engineChoice = v.pipe(
  engine,
  v.check(
    (e) => typeof e === 'string' || (e.host === undefined) !== (e.context === undefined),
    'needs `host` (an address) or `context` (a Docker context name), one of them',
  ),
);

export const configSchema = strict({
  /** Board plugin id. Default `esp8266-d1mini`. */
  board: v.optional(text()),
  /** Libraries to freeze. Default `['mqtt_as']`; `[]` freezes none. */
  libraries: v.optional(v.array(libraryChoice, expected('a list'))),
  /** Folder of the project's own Python modules to freeze, relative to the project. Default `modules`. */
  modules: v.optional(text()),
  micropython: v.optional(micropythonSource),
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
   * Files copied to the board's filesystem after `mp flash`, after each flash of `mp dev`, and by
   * `mp put` with no arguments; relative to the project, e.g. `['export/mqtt_local.py', 'main.py']`:
   * credentials reach the board this way instead of being frozen. A name goes to `/` under its own
   * name; `{ from: 'src/app.py', to: '/lib/app.py' }` puts it elsewhere (a `to` ending in `/` is
   * a folder).
   */
  files: v.optional(
    v.array(
      v.union(
        [
          text(),
          strict({
            from: text(),
            to: v.pipe(
              text(),
              v.startsWith('/', "a board path starts with / (e.g. '/lib/app.py', or '/lib/' for a folder)"),
            ),
          }),
        ],
        expected("a file name, or { from: 'file', to: '/path/on/board' }"),
      ),
    ),
  ),
  /**
   * mp's firmware cache, which keeps each build's firmware under a hash of its inputs so that an
   * earlier state (a revert, another branch, an earlier config) is answered without compiling.
   * `maxSize` bounds it on disk, the least recently used firmware going first: `'2GB'` (the
   * default), `'500MB'`, or a number of bytes. `remote` shares it through a Turborepo remote-cache
   * server: `{ url: 'https://cache.example.com', team: 'firmware', token: '…', write: true }`, each
   * key under its environment variable (MP_REMOTE_CACHE_URL, _TEAM, _TOKEN, _WRITE); see
   * firmware/remote-cache.ts.
   */
  cache: v.optional(
    strict({
      maxSize: v.optional(
        v.union(
          [wholeNumber(0), v.pipe(v.string(), v.regex(BYTE_SIZE))],
          expected('a size such as "2GB" or "500MB", or a number of bytes'),
        ),
      ),
      remote: v.optional(
        strict(
          {
            /** The server's address (what `turbo --api` takes); MP_REMOTE_CACHE_URL wins. */
            url: v.optional(
              v.pipe(
                text(),
                v.check(
                  (url) => URL.canParse(url) && /^https?:$/.test(new URL(url).protocol),
                  'is not an http:// or https:// URL',
                ),
              ),
            ),
            /** The team artifacts are kept under (a slug, or a `team_…` id). */
            team: v.optional(text()),
            /** Sent as `Authorization: Bearer`; better kept out of the file, in MP_REMOTE_CACHE_TOKEN. */
            token: v.optional(text()),
            /** Upload what this machine compiles (default true; false for CI jobs that only read). */
            write: v.optional(flag()),
          },
          '{ url?, team?, token?, write? }',
        ),
      ),
    }),
  ),
  /**
   * Named builds of this project, for `mp build --all` and `mp build --target NAME`, e.g.
   * `{ d1mini: { board: 'esp8266-d1mini' }, 'd1mini-1m': { board: 'esp8266-d1mini', variant: 'FLASH_1M' } }`.
   * Each key a target leaves out comes from the top level.
   */
  targets: v.optional(
    dict(
      matching(
        TARGET_NAME,
        'is not a target name (letters, digits, `.`, `_` and `-`, not starting with `.`, `_` or `-`)',
      ),
      target,
      'an object of targets by name',
    ),
  ),
  /** How many targets build at once on each engine. Default: from the engine's cores and memory. */
  parallel: v.optional(wholeNumber(1)),
  /**
   * Docker engines targets are spread over, by free slots. Default: the one DOCKER_HOST names.
   * `['unix:///var/run/docker.sock', 'ssh://ci@build1', { host: 'tcp://build2:2376', certPath: 'certs/build2' }, 'my-context']`
   */
  engines: v.optional(v.array(engineChoice, expected('a list of engines'))),
});
