/**
 * The plugin contracts as schemas: the public types in ./types.ts are inferred from these, so what
 * a plugin author's editor accepts and what mp checks when it imports the plugin are one thing.
 * Every enum is written once here.
 */
import { isAbsolute } from 'node:path';
import * as v from 'valibot';
import {
  dict,
  expected,
  flag,
  hook,
  isRecord,
  issuePath,
  matching,
  oneOf,
  strict,
  text,
  texts,
  wholeNumber,
} from '../util/validate.ts';
import type { BoardPlugin, BoardResolveContext, LibraryResolveContext } from './types.ts';

/** ESP chips mp can flash. Host builds (the unix port) have no chip. */
export const CHIPS = ['ESP8266', 'ESP32', 'ESP32-S2', 'ESP32-S3', 'ESP32-C3', 'ESP32-C6'] as const;
export const FLASH_MODES = ['qio', 'qout', 'dio', 'dout', 'keep'] as const;
export const FLASH_FREQS = ['80m', '40m', '26m', '20m', 'keep'] as const;
export const FLASH_SIZES = ['1MB', '2MB', '4MB', '8MB', '16MB', 'detect', 'keep'] as const;

const KEBAB_ID = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;
const PYTHON_ID = /^[A-Za-z_][A-Za-z0-9_]*$/;
const FILE_NAME_PART = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

const strings = (what: string) => dict(v.string(), v.string(expected('a string')), what);

/** One file written to flash: the artifact named `artifact` goes to `offset`. */
export const flashSegmentSchema = strict(
  {
    offset: v.pipe(
      wholeNumber(0),
      v.check(
        (offset) => offset % 0x1000 === 0,
        (issue) => `0x${Number(issue.input).toString(16)} is not aligned to a 4 KiB flash sector`,
      ),
    ),
    /** A key of the board's `artifacts`. */
    artifact: text(),
  },
  '{ offset, artifact }',
);

const AT_LEAST_ONE_SEGMENT = 'must list at least one { offset, artifact }';

/**
 * Where and how a board's image goes into flash.
 * @example { segments: [{ offset: 0x0, artifact: 'firmware' }], mode: 'dio', freq: '40m', size: 'detect', baud: 460800 }
 */
export const flashLayoutSchema = strict({
  segments: v.pipe(v.array(flashSegmentSchema, AT_LEAST_ONE_SEGMENT), v.minLength(1, AT_LEAST_ONE_SEGMENT)),
  mode: oneOf(FLASH_MODES),
  freq: oneOf(FLASH_FREQS),
  size: oneOf(FLASH_SIZES),
  /** Baud rate after the flasher stub is running (the ROM always starts at 115200). */
  baud: wholeNumber(9600),
});

/**
 * The container a board compiles in: an image to use or pull, and/or a Dockerfile to build when the
 * image cannot be had.
 * @example { image: 'larsks/esp-open-sdk' }
 */
export const toolchainSchema = v.pipe(
  strict(
    {
      /** Image reference, e.g. `espressif/idf:v5.5.1`. Used if present, else pulled. */
      image: v.optional(text()),
      /** Absolute path of a Dockerfile built (tagged as `image`, or an mp-generated tag) when pulling is not possible. */
      dockerfile: v.optional(
        v.pipe(
          text(),
          v.check(
            isAbsolute,
            'must be an absolute path; use fileURLToPath(new URL("./Dockerfile", import.meta.url))',
          ),
        ),
      ),
      buildArgs: v.optional(strings('an object of strings')),
      /** Environment for commands inside the container. */
      env: v.optional(strings('an object of strings')),
      /** Shell commands run before `make` in the same shell, e.g. `. $IDF_PATH/export.sh`. */
      shellPrelude: v.optional(text()),
      /** Run as the host user (default true). Some images need root (their toolchain lives in /root). */
      runAsHostUser: v.optional(flag()),
      /**
       * Why this image fits the MicroPython being built, e.g. "ports/esp32/lockfiles/dependencies.lock.esp32
       * pins IDF 5.5.1". Shown in the build output and recorded in the sidecar; set it in `resolve`.
       */
      reason: v.optional(text()),
    },
    '{ image: "owner/name:tag" } and/or { dockerfile: "/abs/path/Dockerfile" }',
  ),
  v.partialCheck(
    [['image'], ['dockerfile']],
    (toolchain) => toolchain.image !== undefined || toolchain.dockerfile !== undefined,
    'needs an image to pull or a dockerfile to build (or both)',
  ),
);

/** Everything about a board that may depend on the MicroPython release being built. */
const boardTargetEntries = {
  /** `BOARD=` for make (absent for ports without boards, like unix). */
  board: v.optional(text()),
  /** `BOARD_VARIANT=` (esp ports) or `VARIANT=` (unix). */
  variant: v.optional(text()),
  toolchain: toolchainSchema,
  /** Extra make arguments, e.g. `['MICROPY_PY_BTREE=0']`. */
  makeArgs: v.optional(texts()),
  /**
   * Git submodules the port needs (`['lib/micropython-lib']`). Default: the list the port's own
   * `make submodules` prints, asked once per MicroPython commit in the toolchain container.
   */
  submodules: v.optional(texts()),
  /**
   * Build outputs by name, as paths relative to the build directory (make's `BUILD`).
   * The one named by the board's `firmware` is the exported firmware.
   */
  artifacts: v.pipe(
    dict(v.string(), text(), 'an object naming build outputs, e.g. { firmware: "firmware.bin" }'),
    v.check(
      (artifacts) => Object.keys(artifacts).length > 0,
      'must name at least one build output, e.g. { firmware: "firmware.bin" }',
    ),
  ),
  /** The manifest the board freezes by default; the generated manifest `include()`s it. */
  defaultManifest: text(),
  flash: v.optional(flashLayoutSchema),
};

export type BoardTarget = v.InferOutput<v.StrictObjectSchema<typeof boardTargetEntries, undefined>>;

export const boardEntries = {
  kind: v.literal('board'),
  /** kebab-case id used on the command line (`--board esp8266-d1mini`). */
  id: matching(KEBAB_ID, 'must be kebab-case (a-z, 0-9, -)'),
  title: text(),
  /** MicroPython port directory under `ports/`. */
  port: text(),
  /** The chip `mp flash` expects to find; absent for host builds. */
  chip: v.optional(oneOf(CHIPS)),
  /** First part of exported file names, e.g. `ESP8266`. */
  exportPrefix: matching(FILE_NAME_PART, 'must be usable in a file name'),
  /** Which artifact is the firmware (a key of `artifacts`). */
  firmware: text(),
  /** Extension of the exported firmware file (default `.bin`; the unix executable has none). */
  firmwareExtension: v.optional(v.string(expected('a string such as ".bin" or ""'))),
  /** Build mpy-cross in the board's image before the port (default true). */
  mpyCross: v.optional(flag()),
  ...boardTargetEntries,
  /**
   * Adjust the target to the MicroPython release being built: board names that changed (ESP8266
   * `GENERIC` before v1.21), toolchain versions a release needs, renamed outputs.
   */
  resolve: v.optional(
    hook<(ctx: BoardResolveContext) => Partial<BoardTarget> | Promise<Partial<BoardTarget>>>(),
  ),
};

/** A board's fields but `extends`, which names a board and so cannot be inferred with them. */
export type BoardFields = v.InferOutput<v.StrictObjectSchema<typeof boardEntries, undefined>>;

const extendsSchema = v.union(
  [text(), v.custom<BoardPlugin>((value) => isRecord(value) && value.kind === 'board')],
  expected('a board id or a board plugin object'),
);

/** A whole board: its own fields, then what ties them together. */
export const boardSchema = v.pipe(
  strict({ ...boardEntries, extends: v.optional(extendsSchema) }),
  v.forward(
    v.partialCheck(
      [['firmware'], ['artifacts']],
      (board) => board.firmware in board.artifacts,
      (issue) => {
        const board = issue.input as BoardFields;
        return `names "${board.firmware}", which is not a key of artifacts (${Object.keys(board.artifacts).join(', ')})`;
      },
    ),
    ['firmware'],
  ),
  v.forward(
    v.partialCheck(
      [['flash'], ['chip']],
      (board) => board.chip === undefined || board.flash !== undefined,
      (issue) =>
        `is required for a board with a chip (${(issue.input as BoardFields).chip}): where each artifact is written`,
    ),
    ['flash'],
  ),
  v.rawCheck(({ dataset, addIssue }) => {
    // Each segment on its own, so a bad offset elsewhere does not hide a misnamed artifact.
    const board = dataset.value as Partial<Record<string, unknown>>;
    const segments = isRecord(board.flash) ? board.flash.segments : undefined;
    if (!isRecord(board.artifacts) || !Array.isArray(segments)) return;
    segments.forEach((segment: unknown, i) => {
      const artifact = isRecord(segment) ? segment.artifact : undefined;
      if (typeof artifact === 'string' && !(artifact in (board.artifacts as object)))
        addIssue({
          message: `names "${artifact}", which is not a key of artifacts`,
          path: issuePath(board, 'flash', 'segments', i, 'artifact'),
        });
    });
  }),
);

/**
 * A board that extends another is checked loosely (known keys, its id and title, what it extends);
 * the board it becomes once merged with its base is checked whole (plugin/extends.ts).
 */
export const boardExtensionSchema = strict({
  ...Object.fromEntries(Object.keys(boardEntries).map((key) => [key, v.optional(v.unknown())])),
  kind: boardEntries.kind,
  id: boardEntries.id,
  title: boardEntries.title,
  extends: extendsSchema,
});

const gitSource = strict({ git: text(), ref: v.optional(text()) });
const pathSource = strict({ path: text() });
const noSource = v.never((issue) =>
  isRecord(issue.input)
    ? 'needs either git (a repository URL) or path (a local directory)'
    : expected('{ git: "https://…", ref?: "…" } or { path: "/abs/dir" }')(issue),
);

/** Where a library's source comes from: a git repository at a ref, or a local directory. */
const librarySourceSchema = v.lazy((input) =>
  isRecord(input) && typeof input.git === 'string'
    ? gitSource
    : isRecord(input) && typeof input.path === 'string'
      ? pathSource
      : noSource,
);

const opt = v.optional(wholeNumber(0));
const packageEntry = strict({
  /** A package folder, frozen with its .py files (or only `files`, relative to the folder). */
  package: text(),
  files: v.optional(texts()),
  /** Relative to the library's source root (default: the root). */
  base: v.optional(text()),
  opt,
});
const moduleEntry = strict({ module: text(), base: v.optional(text()), opt });
const neitherOrBoth = v.never('must have exactly one of package (a folder name) or module (a .py file name)');

/** What a library freezes: a package folder or one module. */
const freezeEntrySchema = v.lazy((input) => {
  const has = (key: string) => isRecord(input) && typeof input[key] === 'string';
  if (has('package') === has('module')) return neitherOrBoth;
  return has('package') ? packageEntry : moduleEntry;
});

const AT_LEAST_ONE_ENTRY = 'must list at least one { package } or { module } entry';

/** What a library's `resolve` may change once its source is fetched. */
const libraryContentEntries = {
  freeze: v.pipe(v.array(freezeEntrySchema, AT_LEAST_ONE_ENTRY), v.minLength(1, AT_LEAST_ONE_ENTRY)),
  /** Files copied beside the exported firmware, e.g. a config template. */
  exports: v.optional(
    v.array(
      strict(
        {
          /** Path relative to the library's source root. */
          from: text(),
          /** File name in the export directory. */
          as: matching(/^[^/\\]+$/, 'must be a plain file name'),
        },
        '{ from, as }',
      ),
      expected('a list of { from, as }'),
    ),
  ),
};

type LibraryContent = v.InferOutput<v.StrictObjectSchema<typeof libraryContentEntries, undefined>>;

export const librarySchema = strict({
  kind: v.literal('library'),
  /** The Python import name, e.g. `mqtt_as`. */
  id: matching(PYTHON_ID, 'must be the Python import name (letters, digits, _)'),
  title: text(),
  source: librarySourceSchema,
  ...libraryContentEntries,
  /** MicroPython ports it works on; absent means all. */
  ports: v.optional(texts()),
  /** Part of exported file names, e.g. `mqtt-as`. */
  nameFragment: matching(FILE_NAME_PART, 'must be usable in a file name'),
  /** Adjust freeze entries and exports to the fetched source (libraries whose layout changed). */
  resolve: v.optional(
    hook<(ctx: LibraryResolveContext) => Partial<LibraryContent> | Promise<Partial<LibraryContent>>>(),
  ),
});
