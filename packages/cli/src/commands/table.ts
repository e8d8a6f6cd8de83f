/**
 * Every `mp` command: its summary, options and the module that runs it. Modules are imported only
 * when their command runs, so `mp --help` loads none of them (start-up time).
 */
interface OptionBase {
  /** One letter: `-b`. */
  short?: string;
  /** Shown in help. */
  description: string;
}

/** A flag: true when given. A `no-…` name is the flag itself (`--no-libs`), not a negation of another. */
export interface FlagSpec extends OptionBase {
  type: 'boolean';
}

/** An option with a value; `multiple`: repeatable, every value kept in order. */
export interface ValueSpec extends OptionBase {
  type: 'string';
  multiple?: boolean;
  /** The value's placeholder in help: `--board <id>`. */
  arg?: string;
}

export type OptionSpec = FlagSpec | ValueSpec;
export type OptionSpecs = Record<string, OptionSpec>;

/** What a command gets for an option it was given (absent when it was not). */
type OptionValue<O extends OptionSpec> = O extends FlagSpec
  ? boolean
  : O extends { multiple: true }
    ? string[]
    : O extends { type: 'string'; multiple?: false }
      ? string
      : string | string[];

export type OptionValues<Os extends OptionSpecs> = { -readonly [K in keyof Os]?: OptionValue<Os[K]> };

/** Options of every command, accepted anywhere on the line, before or after the command word. */
export const GLOBAL_OPTIONS = {
  cwd: {
    type: 'string',
    short: 'C',
    description: 'Project directory (default: the current directory)',
    arg: 'dir',
  },
  config: {
    type: 'string',
    description: 'Config file to use (default: mp.config.{ts,mts,js,mjs,json} in the project)',
    arg: 'file',
  },
  json: { type: 'boolean', description: 'Machine-readable output: JSON events and result on stdout' },
  help: { type: 'boolean', short: 'h', description: 'Show help' },
  version: { type: 'boolean', short: 'v', description: 'Show the version' },
} satisfies OptionSpecs;

export type GlobalValues = OptionValues<typeof GLOBAL_OPTIONS>;

export interface CommandSpec<Os extends OptionSpecs = OptionSpecs> {
  name: string;
  summary: string;
  usage: string;
  /** Longer help text shown under the usage line. */
  details?: string;
  /** The command's own options; the global ones come on top. */
  options: Os;
  /** Whether the command opens a project (only those take --config). */
  project?: boolean;
  /** Positional arguments, in commander's notation: `<required>`, `[optional]`. None if absent. */
  arguments?: string[];
  load: () => Promise<{ run(input: CommandInput<Os>): Promise<number | undefined> }>;
}

export interface CommandInput<Os extends OptionSpecs = Record<never, OptionSpec>> {
  values: OptionValues<Os> & GlobalValues;
  positionals: string[];
  /** Global flags. */
  json: boolean;
  cwd: string;
  signal: AbortSignal;
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

export type CommandRun<Os extends OptionSpecs = Record<never, OptionSpec>> = (
  input: CommandInput<Os>,
) => Promise<number | undefined>;

/** A command of the table, its `run` checked against its options. */
function command<const Os extends OptionSpecs>(spec: CommandSpec<Os>): CommandSpec {
  return spec;
}

/** The build flags shared by `mp build` and `mp dev`. */
export const BUILD_OPTIONS = {
  board: { type: 'string', short: 'b', description: 'Board plugin id (see `mp boards`)', arg: 'id' },
  lib: {
    type: 'string',
    short: 'l',
    multiple: true,
    description: 'Library plugin id to freeze; repeat for several (see `mp libs`)',
    arg: 'id',
  },
  'no-libs': { type: 'boolean', description: 'Freeze no libraries' },
  micropython: {
    type: 'string',
    description: 'MicroPython tag, branch, sha or local checkout path (default: newest stable tag)',
    arg: 'ref',
  },
  image: { type: 'string', description: "Toolchain image to build in, instead of the board's", arg: 'ref' },
  modules: {
    type: 'string',
    description: 'Folder of your Python modules to freeze (default: modules)',
    arg: 'dir',
  },
  'export-dir': { type: 'string', description: 'Where firmware is exported (default: export)', arg: 'dir' },
  jobs: { type: 'string', short: 'j', description: 'Parallel make jobs (default: number of CPUs)', arg: 'n' },
  make: {
    type: 'string',
    multiple: true,
    description: 'A make variable for the port, e.g. MICROPY_PY_BTREE=0; repeat for several',
    arg: 'VAR=VALUE',
  },
  variant: {
    type: 'string',
    description: "Board variant (BOARD_VARIANT, unix: VARIANT), e.g. FLASH_1M (default: the board's)",
    arg: 'name',
  },
  submodule: {
    type: 'string',
    multiple: true,
    description: 'Also fetch this MicroPython submodule; repeat for several',
    arg: 'path',
  },
  'c-module': {
    type: 'string',
    multiple: true,
    description:
      'A user C module folder (micropython.mk / micropython.cmake) to compile in; repeat for several',
    arg: 'dir',
  },
  'skip-submodule': {
    type: 'string',
    multiple: true,
    description: 'Do not fetch this MicroPython submodule (e.g. lib/berkeley-db-1.xx); repeat for several',
    arg: 'path',
  },
} satisfies OptionSpecs;

/** The serial flags shared by `mp flash` and `mp dev`. */
export const FLASH_OPTIONS = {
  port: {
    type: 'string',
    short: 'p',
    description: 'Serial port (default: detected, remembered per project)',
    arg: 'path',
  },
  baud: {
    type: 'string',
    description: "Baud rate after the flasher stub is loaded (default: the board's)",
    arg: 'rate',
  },
} satisfies OptionSpecs;

/** Each command's own options, by command: its `run` is typed with them (`CommandRun<typeof OPTIONS.build>`). */
export const OPTIONS = {
  build: {
    ...BUILD_OPTIONS,
    'print-manifest': { type: 'boolean', description: 'Print the generated frozen manifest and exit' },
    'dry-run': {
      type: 'boolean',
      description:
        'Show the whole build plan (toolchain and why, make command, manifest, export name); no Docker, no writes',
    },
    force: { type: 'boolean', description: 'Build even if nothing changed since the last build' },
    all: {
      type: 'boolean',
      description: 'Build every target of the config (`targets`), side by side over the engines',
    },
    target: {
      type: 'string',
      multiple: true,
      description: 'Build this target of the config; repeat (or a,b) for several (see `mp targets`)',
      arg: 'name',
    },
    parallel: {
      type: 'string',
      description: 'With --all/--target: targets at once per engine (default: its cores and memory)',
      arg: 'n',
    },
  },
  flash: {
    board: BUILD_OPTIONS.board,
    ...FLASH_OPTIONS,
    full: { type: 'boolean', description: 'Write the whole image, not only changed sectors' },
    force: {
      type: 'boolean',
      description: 'Flash the file even if its header is not a firmware image for the board’s chip',
    },
    monitor: { type: 'boolean', short: 'm', description: 'Open the serial monitor after flashing' },
    erase: { type: 'boolean', description: 'Erase the whole flash first (then every sector is written)' },
    'no-files': {
      type: 'boolean',
      description: 'Do not copy the config’s `files` to the board after flashing',
    },
  },
  erase: {
    board: BUILD_OPTIONS.board,
    port: FLASH_OPTIONS.port,
    yes: {
      type: 'boolean',
      short: 'y',
      description: 'Do not ask for confirmation (required without a terminal)',
    },
  },
  dev: {
    ...BUILD_OPTIONS,
    ...FLASH_OPTIONS,
    watch: { type: 'boolean', short: 'w', description: 'Keep watching (default; mp dev always watches)' },
    'no-flash': { type: 'boolean', description: 'Build only, do not flash' },
    monitor: { type: 'boolean', description: 'Reattach the serial monitor after each flash (default)' },
    'no-monitor': { type: 'boolean', description: 'Do not open the serial monitor' },
    'no-files': {
      type: 'boolean',
      description: 'Do not copy the config’s `files` to the board after each flash',
    },
  },
  put: {
    to: { type: 'string', description: 'Folder on the board to copy into (default: /)', arg: 'dir' },
    port: FLASH_OPTIONS.port,
    baud: { type: 'string', description: "The REPL's baud rate (default 115200)", arg: 'rate' },
  },
  monitor: {
    port: FLASH_OPTIONS.port,
    baud: { type: 'string', description: 'Baud rate (default 115200)', arg: 'rate' },
  },
  ports: {
    all: { type: 'boolean', short: 'a', description: 'Also list ports without a known USB serial adapter' },
  },
  boards: {
    upstream: {
      type: 'boolean',
      description: 'Also list the ESP boards of the MicroPython tree (build them with --board <NAME>)',
    },
    micropython: {
      type: 'string',
      description:
        'With --upstream: the MicroPython tag, branch, sha or checkout to read (default: the project’s)',
      arg: 'ref',
    },
  },
  libs: {},
  targets: {},
  clean: {
    all: {
      type: 'boolean',
      description: 'Also remove mp’s user-wide cache (source clones, device records) and every mp volume',
    },
  },
  stop: {
    all: {
      type: 'boolean',
      description: 'Every warm toolchain container of mp on the engine, not only this project’s',
    },
  },
  verify: {},
  doctor: {},
  new: {
    dir: {
      type: 'string',
      description:
        'Folder to create it in (default: boards/<id>, plugins/<id>, or cmodules/<id> of the project)',
      arg: 'dir',
    },
  },
} satisfies Record<string, OptionSpecs>;

export const COMMANDS: CommandSpec[] = [
  command({
    name: 'build',
    summary: 'Build firmware in the board’s toolchain container and export it',
    usage: 'mp build [options]',
    details:
      'Resolves MicroPython (newest stable tag by default), fetches library sources, writes one frozen manifest,\nruns make in the toolchain container and exports a named firmware file, a JSON sidecar and library files.',
    project: true,
    options: OPTIONS.build,
    load: () => import('./build.ts'),
  }),
  command({
    name: 'flash',
    summary: 'Flash firmware to a board over serial (only the sectors that changed)',
    usage: 'mp flash [firmware.bin] [options]',
    details: 'Flashes the given file, or the newest export of the project for its board.',
    project: true,
    arguments: ['[firmware]'],
    options: OPTIONS.flash,
    load: () => import('./flash.ts'),
  }),
  command({
    name: 'dev',
    summary: 'Watch your modules; rebuild, flash and monitor on every save',
    usage: 'mp dev [--watch] [options]',
    project: true,
    options: OPTIONS.dev,
    load: () => import('./dev.ts'),
  }),
  command({
    name: 'erase',
    summary: 'Erase the whole flash of the board (asks first; --yes without a terminal)',
    usage: 'mp erase [--yes] [options]',
    details:
      'Erases every sector, as `esptool erase_flash`: the firmware and the filesystem with your files are gone.\nmp forgets what it wrote to that board, so the next `mp flash` writes the whole image.',
    project: true,
    options: OPTIONS.erase,
    load: () => import('./erase.ts'),
  }),
  command({
    name: 'put',
    summary: "Copy files to the board's filesystem over its REPL (only those that differ)",
    usage: 'mp put [file...] [--to /dir] [options]',
    details:
      "Copies each file into --to (default /) over the board's raw REPL, as mpremote does: a file whose\nsha256 on the board already matches is not sent again. For credentials such as export/mqtt_local.py.\nWith no files, copies the config's `files` list.",
    project: true,
    arguments: ['[files...]'],
    options: OPTIONS.put,
    load: () => import('./put.ts'),
  }),
  command({
    name: 'monitor',
    summary: 'Open the serial console of a board (Ctrl-] to leave)',
    usage: 'mp monitor [options]',
    project: true,
    options: OPTIONS.monitor,
    load: () => import('./monitor.ts'),
  }),
  command({
    name: 'ports',
    summary: 'List serial ports with USB serial adapters',
    usage: 'mp ports',
    options: OPTIONS.ports,
    load: () => import('./ports.ts'),
  }),
  command({
    name: 'boards',
    summary: 'List board plugins (--upstream: also the ESP boards of MicroPython itself)',
    usage: 'mp boards [--upstream [--micropython <ref>]]',
    project: true,
    options: OPTIONS.boards,
    load: () => import('./boards.ts'),
  }),
  command({
    name: 'libs',
    summary: 'List library plugins',
    usage: 'mp libs',
    project: true,
    options: OPTIONS.libs,
    load: () => import('./libs.ts'),
  }),
  command({
    name: 'targets',
    summary: 'List the targets of the config (`mp build --all` builds them) and its engines',
    usage: 'mp targets',
    project: true,
    options: OPTIONS.targets,
    load: () => import('./targets.ts'),
  }),
  command({
    name: 'clean',
    summary: 'Remove the project’s build folders and copied volumes (--all: also mp’s cache)',
    usage: 'mp clean [--all]',
    details:
      'Exports, the remembered serial port and the records that protect edited export files are kept.\nThe next build starts from scratch.',
    project: true,
    options: OPTIONS.clean,
    load: () => import('./clean.ts'),
  }),
  command({
    name: 'stop',
    summary: 'Remove the toolchain containers builds left warm (they end by themselves when idle)',
    usage: 'mp stop [--all]',
    details:
      'After a build the toolchain container stays up for the next one (MP_CONTAINER_LEASE, default 10 minutes\nof idle time; none when CI is set), then removes itself. mp stop (and mp clean) remove it now.',
    project: true,
    options: OPTIONS.stop,
    load: () => import('./stop.ts'),
  }),
  command({
    name: 'verify',
    summary: 'Rebuild a firmware from its sidecar’s provenance and check it is the same bytes',
    usage: 'mp verify <firmware|sidecar>',
    details:
      'Builds again from scratch, in a scratch folder, from what the sidecar records (board, MicroPython and\nlibrary commits, options, toolchain image, your modules as they are now); says identical, or which input differs.',
    project: true,
    arguments: ['<firmware>'],
    options: OPTIONS.verify,
    load: () => import('./verify.ts'),
  }),
  command({
    name: 'doctor',
    summary: 'Check Node, Docker, serial ports, cache and disk space',
    usage: 'mp doctor',
    project: true,
    options: OPTIONS.doctor,
    load: () => import('./doctor.ts'),
  }),
  command({
    name: 'new',
    summary: 'Create a board or library plugin package, or a user C module',
    usage: 'mp new <board|library|c-module> <id> [options]',
    details:
      'Writes a working plugin package into boards/<id> or plugins/<id> of the workspace (or --dir),\nfound by mp at once and passing the plugin conformance suite.',
    arguments: ['<board|library|c-module>', '<id>'],
    options: OPTIONS.new,
    load: () => import('./new.ts'),
  }),
];

/** The global options a command takes: --config only where there is a project to configure. */
export function globalOptionsOf(spec: CommandSpec): OptionSpecs {
  if (spec.project) return GLOBAL_OPTIONS;
  const { config: _config, ...rest } = GLOBAL_OPTIONS;
  return rest;
}
