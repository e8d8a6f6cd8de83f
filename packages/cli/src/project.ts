/** Opens the project a command works on, with flags turned into config overrides. */
import { fileURLToPath } from 'node:url';
import { type ConfigOverrides, MAKE_VARIABLE, openProject, type Project, UsageError } from '@mp/core';
import type { BUILD_OPTIONS, CommandInput, FLASH_OPTIONS, OptionValues } from './commands/table.ts';

/** The CLI package: its dependencies are the first-party plugins, found wherever mp is installed. */
export const CLI_PACKAGE_DIR = fileURLToPath(new URL('..', import.meta.url));

export function loadProject(
  input: Pick<CommandInput, 'cwd' | 'values'>,
  overrides: ConfigOverrides = {},
): Promise<Project> {
  return openProject({
    projectDir: input.cwd,
    configFile: input.values.config,
    overrides,
    pluginRoots: [CLI_PACKAGE_DIR],
  });
}

/** Config overrides from the build flags shared by `mp build` and `mp dev`. */
export function buildOverrides(
  values: OptionValues<typeof BUILD_OPTIONS & typeof FLASH_OPTIONS>,
): ConfigOverrides {
  const overrides: ConfigOverrides = {};
  if (typeof values.board === 'string') overrides.board = values.board;
  if (Array.isArray(values.lib)) overrides.libraries = values.lib;
  if (values['no-libs'] === true) overrides.libraries = [];
  if (typeof values.micropython === 'string') overrides.micropythonRef = values.micropython;
  if (typeof values.image === 'string') overrides.image = values.image;
  if (typeof values.modules === 'string') overrides.modules = values.modules;
  if (typeof values['export-dir'] === 'string') overrides.exportDir = values['export-dir'];
  if (typeof values.port === 'string') overrides.port = values.port;
  if (typeof values.jobs === 'string') overrides.jobs = positiveInt('--jobs', values.jobs);
  if (typeof values.baud === 'string') overrides.baud = positiveInt('--baud', values.baud);
  if (Array.isArray(values.make)) overrides.make = Object.fromEntries(values.make.map(makeVariable));
  if (typeof values.variant === 'string') overrides.variant = values.variant;
  const fetch = Array.isArray(values.submodule) ? values.submodule : [];
  const skip = Array.isArray(values['skip-submodule']) ? values['skip-submodule'] : [];
  if (fetch.length || skip.length) overrides.submodules = { fetch, skip };
  if (Array.isArray(values['c-module'])) overrides.cModules = values['c-module'];
  return overrides;
}

/** `--make MICROPY_PY_BTREE=0` → `['MICROPY_PY_BTREE', '0']`. */
function makeVariable(text: string): [string, string] {
  const at = text.indexOf('=');
  const name = at > 0 ? text.slice(0, at) : '';
  if (!MAKE_VARIABLE.test(name))
    throw new UsageError(
      `--make takes VAR=VALUE with a make variable name before the "=", got "${text}" (for example --make MICROPY_PY_BTREE=0)`,
    );
  return [name, text.slice(at + 1)];
}

export function positiveInt(flag: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0)
    throw new UsageError(`${flag} must be a positive whole number, got "${text}"`);
  return n;
}
