/**
 * Every `mp` command: its summary, options and the module that runs it. Modules are imported only
 * when their command runs, so `mp --help` loads none of them (start-up time).
 */
export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** Shown in help; for string options the placeholder goes in `arg`. */
  description: string;
  arg?: string;
}

export interface CommandSpec {
  name: string;
  summary: string;
  usage: string;
  /** Longer help text shown under the usage line. */
  details?: string;
  options: Record<string, OptionSpec>;
  /** Whether the command takes a project (--cwd, --config). */
  project?: boolean;
  /** Positional arguments accepted: [min, max]. */
  positionals?: [number, number];
  load: () => Promise<{ run: CommandRun }>;
}

export interface CommandInput {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  /** Global flags. */
  json: boolean;
  cwd: string;
  signal: AbortSignal;
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

export type CommandRun = (input: CommandInput) => Promise<number | undefined>;

const PROJECT_OPTIONS: Record<string, OptionSpec> = {
  config: {
    type: 'string',
    description: 'Config file to use (default: mp.config.{ts,mts,js,mjs,json} in the project)',
    arg: 'file',
  },
};

const BUILD_OPTIONS: Record<string, OptionSpec> = {
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
  'skip-submodule': {
    type: 'string',
    multiple: true,
    description: 'Do not fetch this MicroPython submodule (e.g. lib/berkeley-db-1.xx); repeat for several',
    arg: 'path',
  },
};

const FLASH_OPTIONS: Record<string, OptionSpec> = {
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
};

export const COMMANDS: CommandSpec[] = [
  {
    name: 'build',
    summary: 'Build firmware in the board’s toolchain container and export it',
    usage: 'mp build [options]',
    details:
      'Resolves MicroPython (newest stable tag by default), fetches library sources, writes one frozen manifest,\nruns make in the toolchain container and exports a named firmware file, a JSON sidecar and library files.',
    project: true,
    options: {
      ...BUILD_OPTIONS,
      'print-manifest': { type: 'boolean', description: 'Print the generated frozen manifest and exit' },
      'dry-run': {
        type: 'boolean',
        description:
          'Show the whole build plan (toolchain and why, make command, manifest, export name); no Docker, no writes',
      },
      force: { type: 'boolean', description: 'Build even if nothing changed since the last build' },
    },
    load: () => import('./build.ts'),
  },
  {
    name: 'flash',
    summary: 'Flash firmware to a board over serial (only the sectors that changed)',
    usage: 'mp flash [firmware.bin] [options]',
    details: 'Flashes the given file, or the newest export of the project for its board.',
    project: true,
    positionals: [0, 1],
    options: {
      board: BUILD_OPTIONS.board!,
      ...FLASH_OPTIONS,
      full: { type: 'boolean', description: 'Write the whole image, not only changed sectors' },
      force: {
        type: 'boolean',
        description: 'Flash the file even if its header is not a firmware image for the board’s chip',
      },
      monitor: { type: 'boolean', short: 'm', description: 'Open the serial monitor after flashing' },
    },
    load: () => import('./flash.ts'),
  },
  {
    name: 'dev',
    summary: 'Watch your modules; rebuild, flash and monitor on every save',
    usage: 'mp dev [--watch] [options]',
    project: true,
    options: {
      ...BUILD_OPTIONS,
      ...FLASH_OPTIONS,
      watch: { type: 'boolean', short: 'w', description: 'Keep watching (default; mp dev always watches)' },
      'no-flash': { type: 'boolean', description: 'Build only, do not flash' },
      monitor: { type: 'boolean', description: 'Reattach the serial monitor after each flash (default)' },
      'no-monitor': { type: 'boolean', description: 'Do not open the serial monitor' },
    },
    load: () => import('./dev.ts'),
  },
  {
    name: 'monitor',
    summary: 'Open the serial console of a board (Ctrl-] to leave)',
    usage: 'mp monitor [options]',
    project: true,
    options: {
      port: FLASH_OPTIONS.port!,
      baud: { type: 'string', description: 'Baud rate (default 115200)', arg: 'rate' },
    },
    load: () => import('./monitor.ts'),
  },
  {
    name: 'ports',
    summary: 'List serial ports with USB serial adapters',
    usage: 'mp ports',
    options: {
      all: { type: 'boolean', short: 'a', description: 'Also list ports without a known USB serial adapter' },
    },
    load: () => import('./ports.ts'),
  },
  {
    name: 'boards',
    summary: 'List board plugins',
    usage: 'mp boards',
    project: true,
    options: {},
    load: () => import('./boards.ts'),
  },
  {
    name: 'libs',
    summary: 'List library plugins',
    usage: 'mp libs',
    project: true,
    options: {},
    load: () => import('./libs.ts'),
  },
  {
    name: 'clean',
    summary: 'Remove the project’s build folders and copied volumes (--all: also mp’s cache)',
    usage: 'mp clean [--all]',
    details:
      'Exports, the remembered serial port and the records that protect edited export files are kept.\nThe next build starts from scratch.',
    project: true,
    options: {
      all: {
        type: 'boolean',
        description: 'Also remove mp’s user-wide cache (source clones, device records) and every mp volume',
      },
    },
    load: () => import('./clean.ts'),
  },
  {
    name: 'doctor',
    summary: 'Check Node, Docker, serial ports, cache and disk space',
    usage: 'mp doctor',
    project: true,
    options: {},
    load: () => import('./doctor.ts'),
  },
  {
    name: 'new',
    summary: 'Create a board or library plugin package',
    usage: 'mp new <board|library> <id> [options]',
    details:
      'Writes a working plugin package into boards/<id> or plugins/<id> of the workspace (or --dir),\nfound by mp at once and passing the plugin conformance suite.',
    positionals: [2, 2],
    options: {
      dir: {
        type: 'string',
        description: 'Folder to create the package in (default: boards/<id> or plugins/<id>)',
        arg: 'dir',
      },
    },
    load: () => import('./new.ts'),
  },
];

export function projectOptions(spec: CommandSpec): Record<string, OptionSpec> {
  return spec.project ? { ...spec.options, ...PROJECT_OPTIONS } : spec.options;
}
