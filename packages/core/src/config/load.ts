/**
 * Finds, imports and validates a project's config file, then merges defaults, file and flags.
 */
import { existsSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, join, posix, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describeError, MpError, ValidationError, type ValidationIssue } from '../errors.ts';
import { resolveRemoteCache } from '../firmware/remote-cache.ts';
import { registerCoreResolver } from '../plugin/core-resolver.ts';
import type { Plugin } from '../plugin/types.ts';
import { isRecord, problems, typeName } from '../util/validate.ts';
import { configSchema } from './schema.ts';
import type {
  ConfigOverrides,
  EngineChoice,
  LibraryChoice,
  MpConfig,
  PluginOption,
  ResolvedConfig,
  ResolvedEngine,
} from './types.ts';

export { MAKE_VARIABLE, TARGET_NAME } from './schema.ts';

export const CONFIG_FILE_NAMES = [
  'mp.config.ts',
  'mp.config.mts',
  'mp.config.js',
  'mp.config.mjs',
  'mp.config.json',
];

/** The defaults reproduce the original pipeline: a D1 mini with mqtt_as and the project's modules. */
export const DEFAULTS = {
  board: 'esp8266-d1mini',
  libraries: ['mqtt_as'],
  modules: 'modules',
  exportDir: 'export',
  micropythonGit: 'https://github.com/micropython/micropython.git',
} as const;

/** The project's config file; two of them would leave one silently unused, so that is an error. */
export function findConfigFile(projectDir: string): string | undefined {
  const found = CONFIG_FILE_NAMES.map((name) => join(projectDir, name)).filter((file) => existsSync(file));
  if (found.length > 1) {
    throw new MpError({
      code: 'CONFIG_AMBIGUOUS',
      message: `The project has ${found.length} config files: ${found.map((f) => basename(f)).join(', ')}; mp would use only one`,
      file: found[0],
      hint: `Remove all but one of them, or choose one with --config ${basename(found[0]!)}.`,
      exitCode: 2,
    });
  }
  return found[0];
}

/** Imports a config file. Each call sees the file's current content (for `mp dev` reloads). */
export async function importConfigFile(file: string): Promise<unknown> {
  if (file.endsWith('.json')) {
    const { readFile } = await import('node:fs/promises');
    const text = await readFile(file, 'utf8');
    try {
      return JSON.parse(text);
    } catch (error) {
      throw configError(file, `is not valid JSON: ${describeError(error)}`, 'Fix the JSON syntax.');
    }
  }
  registerCoreResolver();
  const url = `${pathToFileURL(file).href}?t=${Math.trunc(statSync(file).mtimeMs * 1000)}`;
  try {
    const module = await import(url);
    return module.default;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'ERR_UNSUPPORTED_TYPESCRIPT_SYNTAX' || code === 'ERR_INVALID_TYPESCRIPT_SYNTAX') {
      // Node strips types but does not transform enums and the like; tsx does.
      try {
        const { tsImport } = await import('tsx/esm/api');
        const module = await tsImport(url, import.meta.url);
        return module.default;
      } catch (tsxError) {
        throw configError(
          file,
          `could not be loaded: ${describeError(tsxError)}`,
          'Fix the error in the config file.',
        );
      }
    }
    throw configError(
      file,
      `could not be loaded: ${describeError(error)}`,
      'Fix the error in the config file.',
    );
  }
}

function configError(file: string, message: string, hint: string): MpError {
  return new MpError({
    code: 'CONFIG_LOAD_FAILED',
    message: `${basename(file)} ${message}`,
    file,
    hint,
    exitCode: 2,
  });
}

/** Checks a config object and reports every problem at once, each with its key path. */
export function validateConfig(value: unknown, file?: string): MpConfig {
  const issues: ValidationIssue[] =
    value === undefined
      ? [{ path: '', message: 'has no default export; write `export default defineConfig({ ... })`' }]
      : !isRecord(value)
        ? [{ path: '', message: `must export an object, got ${typeName(value)}` }]
        : problems(configSchema, value);
  if (issues.length > 0) {
    throw new ValidationError({
      code: 'CONFIG_INVALID',
      subject: file ? basename(file) : 'The config',
      issues,
      file,
      hint: 'Fix the keys listed above; README "A project" shows every key.',
      exitCode: 2,
    });
  }
  return value as MpConfig;
}

/** Nested arrays are flattened and falsy entries dropped, so `cond && plugin` works. */
export function flattenPlugins(options: PluginOption[] | undefined): Plugin[] {
  const out: Plugin[] = [];
  const walk = (option: PluginOption) => {
    if (!option) return;
    if (Array.isArray(option)) option.forEach(walk);
    else out.push(option);
  };
  (options ?? []).forEach(walk);
  return out;
}

/**
 * `MP_GIT_MIRRORS="https://github.com/=file:///srv/git/;https://gitlab.com/=…"`. A pair without
 * `=`, or with an empty side (which would turn every URL relative), is a usage error naming it.
 */
export function parseMirrorEnv(value: string | undefined): Record<string, string> {
  const mirrors: Record<string, string> = {};
  for (const raw of (value ?? '').split(';')) {
    const pair = raw.trim();
    if (!pair) continue;
    const at = pair.indexOf('=');
    const from = at >= 0 ? pair.slice(0, at).trim() : '';
    const to = at >= 0 ? pair.slice(at + 1).trim() : '';
    if (!from || !to) {
      throw new MpError({
        code: 'USAGE',
        message: `MP_GIT_MIRRORS: "${pair}" is not a from=to pair${at < 0 ? ' (no "=")' : !from ? ' (nothing before "=")' : ' (nothing after "=")'}`,
        hint: 'Write MP_GIT_MIRRORS as from=to pairs separated by ";", e.g. MP_GIT_MIRRORS="https://github.com/=https://git.example.com/mirror/"',
        exitCode: 2,
      });
    }
    mirrors[from] = to;
  }
  return mirrors;
}

/**
 * Where MicroPython comes from, one layer at a time (defaults < config file < environment < flags):
 * a layer that names a ref replaces a path from a lower layer, and a path replaces a ref.
 */
function micropythonSource(layers: Array<{ ref?: string; path?: string; git?: string }>): {
  ref?: string;
  path?: string;
  git: string;
} {
  let out: { ref?: string; path?: string; git: string } = { git: DEFAULTS.micropythonGit };
  for (const layer of layers) {
    if (layer.git) out.git = layer.git;
    if (layer.path) out = { git: out.git, path: layer.path };
    if (layer.ref) out = { git: out.git, ref: layer.ref };
  }
  return out;
}

/** `--micropython ../my-micropython` (or `~/mp`) names a local checkout rather than a git ref. */
function refOrPath(value: string | undefined, env: NodeJS.ProcessEnv): { ref?: string; path?: string } {
  if (!value) return {};
  if (/^(\.{1,2}(\/|$)|\/|~(\/|$))/.test(value))
    return { path: value.replace(/^~(?=\/|$)/, env.HOME ?? '~') };
  return { ref: value };
}

export interface LoadConfigOptions {
  projectDir: string;
  overrides?: ConfigOverrides;
  env?: NodeJS.ProcessEnv;
  /** An explicit config file (`--config`); otherwise looked up in the project directory. */
  configFile?: string;
}

/** Defaults ← config file ← environment ← command-line flags. */
export async function loadConfig(options: LoadConfigOptions): Promise<ResolvedConfig> {
  const projectDir = resolve(options.projectDir);
  const env = options.env ?? process.env;
  if (!existsSync(projectDir) || !statSync(projectDir).isDirectory()) {
    throw new MpError({
      code: 'PROJECT_NOT_FOUND',
      message: `Project directory ${projectDir} does not exist`,
      file: projectDir,
      hint: 'Pass an existing directory with --cwd, or create it (mkdir -p … && cd …).',
      exitCode: 2,
    });
  }
  const configFile = options.configFile
    ? resolve(projectDir, options.configFile)
    : findConfigFile(projectDir);
  if (options.configFile && !existsSync(configFile!)) {
    throw new MpError({
      code: 'CONFIG_NOT_FOUND',
      message: `Config file ${configFile} does not exist`,
      file: configFile,
      hint: `Create it, or leave out --config to use ${CONFIG_FILE_NAMES[0]} from the project if there is one.`,
      exitCode: 2,
    });
  }
  const file: MpConfig = configFile ? validateConfig(await importConfigFile(configFile), configFile) : {};
  const o = options.overrides ?? {};
  const libraries = resolveLibraries(o.libraries ?? file.libraries ?? DEFAULTS.libraries, projectDir);
  const envMicropython = {
    git: env.MP_MICROPYTHON_GIT,
    path: env.MP_MICROPYTHON_PATH,
    ...refOrPath(env.MP_MICROPYTHON_REF, env),
  };
  const micropython = micropythonSource([
    { ...file.micropython },
    envMicropython,
    refOrPath(o.micropythonRef, env),
  ]);
  return {
    projectDir,
    configFile,
    board: o.board ?? file.board ?? DEFAULTS.board,
    libraries,
    modulesDir: resolve(projectDir, o.modules ?? file.modules ?? DEFAULTS.modules),
    modulesFrom: o.modules !== undefined ? 'flag' : file.modules !== undefined ? 'config' : 'default',
    micropython: {
      ref: micropython.ref,
      git: micropython.git,
      path: micropython.path ? resolve(projectDir, micropython.path) : undefined,
    },
    plugins: flattenPlugins(file.plugins),
    exportDir: resolve(projectDir, o.exportDir ?? file.exportDir ?? DEFAULTS.exportDir),
    image: o.image ?? file.image,
    mirrors: { ...file.mirrors, ...parseMirrorEnv(env.MP_GIT_MIRRORS) },
    flash: { port: o.port ?? file.flash?.port, baud: o.baud ?? file.flash?.baud },
    jobs: o.jobs ?? file.jobs ?? availableParallelism(),
    make: {
      ...Object.fromEntries(Object.entries(file.make ?? {}).map(([k, v]) => [k, makeValue(v)])),
      ...o.make,
    },
    variant: o.variant ?? file.variant,
    files: (file.files ?? []).map((f) => boardFile(projectDir, f)),
    cache: { maxSize: file.cache?.maxSize, remote: resolveRemoteCache(file.cache?.remote, env) },
    cModules: unique(
      [...(file.cModules ?? []), ...(o.cModules ?? [])].map((dir) => resolve(projectDir, dir)),
    ),
    submodules: {
      fetch: unique([...(file.submodules?.fetch ?? []), ...(o.submodules?.fetch ?? [])].map(submodulePath)),
      skip: unique([...(file.submodules?.skip ?? []), ...(o.submodules?.skip ?? [])].map(submodulePath)),
    },
    targets: Object.entries(file.targets ?? {}).map(([name, t]) => {
      const mp = micropythonSource([
        { ...file.micropython },
        { ...t.micropython },
        envMicropython,
        refOrPath(o.micropythonRef, env),
      ]);
      return {
        name,
        board: o.board ?? t.board ?? file.board ?? DEFAULTS.board,
        variant: o.variant ?? t.variant ?? file.variant,
        make: {
          ...Object.fromEntries(
            Object.entries({ ...file.make, ...t.make }).map(([k, v]) => [k, makeValue(v)]),
          ),
          ...o.make,
        },
        libraries: resolveLibraries(
          o.libraries ?? t.libraries ?? file.libraries ?? DEFAULTS.libraries,
          projectDir,
        ),
        micropython: { ...mp, path: mp.path ? resolve(projectDir, mp.path) : undefined },
        image: o.image ?? t.image ?? file.image,
      };
    }),
    parallel: o.parallel ?? file.parallel,
    engines: (file.engines ?? []).map((e) => resolveEngine(e, projectDir, env)),
  };
}

function resolveLibraries(list: readonly LibraryChoice[], projectDir: string): ResolvedConfig['libraries'] {
  return list.map((lib) =>
    typeof lib === 'string'
      ? { id: lib }
      : { ...lib, path: lib.path ? resolve(projectDir, lib.path) : undefined },
  );
}

/** `'ssh://ci@build1'` is an address, `'build1'` a Docker context; TLS folders are relative to the project. */
function resolveEngine(choice: EngineChoice, projectDir: string, env: NodeJS.ProcessEnv): ResolvedEngine {
  if (typeof choice === 'string')
    return choice.includes('://') ? { name: choice, host: choice } : { name: choice, context: choice };
  const certPath = choice.certPath
    ? resolve(projectDir, choice.certPath.replace(/^~(?=\/|$)/, env.HOME ?? '~'))
    : undefined;
  return {
    name: choice.name ?? choice.host ?? choice.context!,
    host: choice.host,
    context: choice.context,
    certPath,
    tlsVerify: choice.tlsVerify ?? (certPath ? true : undefined),
    parallel: choice.parallel,
    mounts: choice.mounts,
  };
}

/** `true`/`false` become make's usual `1`/`0`. */
function makeValue(value: string | number | boolean): string {
  return typeof value === 'boolean' ? (value ? '1' : '0') : String(value);
}

/** `lib/axtls/` and `./lib/axtls` name the same submodule as `lib/axtls`. */
function submodulePath(path: string): string {
  return path.replace(/^\.\//, '').replace(/\/+$/, '');
}

function unique<T>(values: T[]): T[] {
  return [...new Set(values)];
}

/** A config `files` entry → host path and board path (`/` + its name unless `to` says otherwise). */
function boardFile(
  projectDir: string,
  entry: string | { from: string; to: string },
): { from: string; to: string } {
  const from = resolve(projectDir, typeof entry === 'string' ? entry : entry.from);
  if (typeof entry === 'string') return { from, to: posix.join('/', basename(from)) };
  return { from, to: entry.to.endsWith('/') ? posix.join(entry.to, basename(from)) : entry.to };
}
