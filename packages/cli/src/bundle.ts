/**
 * The CLI of a clone, bundled: the workspace's TypeScript (this package and core) as a few ES
 * modules instead of some 150, because loading that many files one by one is most of a short
 * command's start-up (each is found, read, looked up in the compile cache and linked).
 * `bin/mp.js` uses the bundle only while every file it was made from is unchanged (same mtime,
 * as recorded in `current.json`); otherwise it runs the sources, and asks for a new bundle as it
 * exits (`node src/bundle.ts`, detached). An installed mp runs dist/ and never bundles.
 *
 * What is bundled behaves as the sources do: `import.meta.url` is each source file's own URL
 * (files found next to the sources are still found), packages from node_modules stay outside at
 * the files Node resolves them to (but for BUNDLED_PACKAGES), class fields and names are kept,
 * and plugins that import `@mp/core` get the bundle's core (plugin/core-resolver.ts), so there is
 * one core in the process.
 *
 * Run: node packages/cli/src/bundle.ts   (prints nothing; exit 0 when a bundle was made or is current)
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const CLI_DIR = fileURLToPath(new URL('..', import.meta.url));
const CORE_SRC = dirname(fileURLToPath(import.meta.resolve('@mp/core')));
/**
 * Under core's node_modules: never committed, removed with it, and where a module name core
 * imports at run time (MP_SERIAL_BINDING=<package>) is found from, as it is from core's sources.
 */
export const BUNDLE_ROOT = join(CORE_SRC, '..', 'node_modules', '.cache', 'mp-cli');
/** The workspace's install, as pnpm records it (see the bundle's inputs). */
export const PNPM_STATE = join(CLI_DIR, '..', '..', 'node_modules', '.pnpm', 'lock.yaml');
/**
 * Bundles that are not the current one are removed once older than this, or beyond the newest
 * KEPT_BUNDLES: a long `mp dev` may still load a chunk from the one it started with.
 */
const OLD_BUNDLE_MS = 24 * 60 * 60 * 1000;
const KEPT_BUNDLES = 20;
/** Another process making a bundle for longer than this has died. */
const STALE_BUILD_MS = 2 * 60 * 1000;

/**
 * Packages bundled too: plain ES modules without side effects, of which a build uses a part
 * (valibot is some 200 KB, the schemas take a few functions of it).
 */
const BUNDLED_PACKAGES = new Set(['valibot']);

/** `current.json`: the bundle in use and the files it was made from, with their mtimes. */
export interface BundleRecord {
  dir: string;
  inputs: Array<[file: string, mtimeMs: number]>;
}

/** The part of esbuild's API used here (esbuild comes with tsx, so its types are not a dependency of this package). */
interface Esbuild {
  build(options: Record<string, unknown> & { plugins: EsbuildPlugin[] }): Promise<{
    metafile: { inputs: Record<string, unknown> };
  }>;
}
interface EsbuildPlugin {
  name: string;
  setup(build: PluginBuild): void;
}
interface ResolveArgs {
  path: string;
  kind: string;
  resolveDir: string;
  importer: string;
  pluginData?: unknown;
}
interface PluginBuild {
  onResolve(
    options: { filter: RegExp },
    callback: (
      args: ResolveArgs,
    ) => Promise<{ path?: string; external?: boolean; errors?: unknown[] } | undefined>,
  ): void;
  onLoad(
    options: { filter: RegExp },
    callback: (args: { path: string }) => Promise<{ contents: string; loader: 'ts' }>,
  ): void;
  resolve(
    path: string,
    options: Omit<ResolveArgs, 'path'>,
  ): Promise<{ path: string; external: boolean; errors: unknown[] }>;
}

/** esbuild as tsx (a dependency of this package) has it: no dependency of its own to install. */
function loadEsbuild(): Esbuild {
  const tsx = createRequire(join(CLI_DIR, 'package.json')).resolve('tsx/package.json');
  return createRequire(tsx)('esbuild') as Esbuild;
}

export async function buildBundle(): Promise<BundleRecord | undefined> {
  await mkdir(BUNDLE_ROOT, { recursive: true });
  const building = join(BUNDLE_ROOT, 'building');
  try {
    await mkdir(building);
  } catch {
    const since = await stat(building).then(
      (s) => Date.now() - s.mtimeMs,
      () => 0,
    );
    if (since < STALE_BUILD_MS) return undefined; // another process is at it
    await rm(building, { recursive: true, force: true });
    await mkdir(building);
  }
  try {
    const dir = `b-${Date.now()}-${process.pid}`;
    const outdir = join(BUNDLE_ROOT, dir);
    const started = await sourceMtimes();
    const externals = new Set<string>();
    const result = await esbuild({
      entryPoints: {
        main: join(CLI_DIR, 'src/main.ts'),
        core: join(CORE_SRC, 'index.ts'),
      },
      outdir,
      absWorkingDir: CLI_DIR,
      bundle: true,
      splitting: true,
      // Not `.js`: under node_modules no package.json says these are ES modules, and Node would
      // read each file twice to find out.
      outExtension: { '.js': '.mjs' },
      format: 'esm',
      platform: 'node',
      target: 'esnext',
      keepNames: true,
      // As Node resolves: no `module` condition, `main` before `module`.
      conditions: [],
      mainFields: ['main'],
      // As Node runs TypeScript: type stripping keeps class fields as they are written.
      tsconfigRaw: { compilerOptions: { useDefineForClassFields: true, verbatimModuleSyntax: true } },
      metafile: true,
      write: true,
      logLevel: 'silent',
      plugins: [
        {
          name: 'mp',
          setup(b) {
            // Packages from node_modules stay outside, imported from the file Node would load.
            b.onResolve({ filter: /^[^./]/ }, async (args) => {
              if (
                args.path.startsWith('node:') ||
                args.path.startsWith('@mp/') ||
                BUNDLED_PACKAGES.has(args.path) ||
                args.pluginData === 'mp'
              )
                return undefined;
              const found = await b.resolve(args.path, {
                kind: args.kind,
                resolveDir: args.resolveDir,
                importer: args.importer,
                pluginData: 'mp',
              });
              if (found.errors.length > 0 || !found.path) return { errors: found.errors };
              if (found.external) return { path: args.path, external: true };
              externals.add(found.path);
              return { path: pathToFileURL(found.path).href, external: true };
            });
            // Each module keeps its own URL: `new URL('../package.json', import.meta.url)` works as before.
            b.onLoad({ filter: /\.ts$/ }, async (args) => {
              const text = await readFile(args.path, 'utf8');
              const url = JSON.stringify(pathToFileURL(args.path).href);
              return { contents: text.replaceAll('import.meta.url', url), loader: 'ts' };
            });
          },
        },
      ],
    });
    const inputs = new Set([
      ...Object.keys(result.metafile.inputs).map((file) => join(CLI_DIR, file)),
      ...externals,
      // How bundles are made and loaded, and how the two packages resolve: a change makes a new one.
      fileURLToPath(import.meta.url),
      join(CLI_DIR, 'bin/mp.js'),
      join(CLI_DIR, 'package.json'),
      join(CORE_SRC, '..', 'package.json'),
      // pnpm rewrites it on every install that changes node_modules: an upgraded dependency may
      // sit at a new path while the old one is still on disk, which the bundle would go on importing.
      ...(existsSync(PNPM_STATE) ? [PNPM_STATE] : []),
    ]);
    const record: BundleRecord = { dir, inputs: [] };
    for (const file of [...inputs].sort()) {
      const mtimeMs = (await stat(file)).mtimeMs;
      // A source edited while it was bundled: this bundle is not what the sources say now.
      if (started.has(file) && started.get(file) !== mtimeMs) {
        await rm(outdir, { recursive: true, force: true });
        return undefined;
      }
      record.inputs.push([file, mtimeMs]);
    }
    const temp = join(BUNDLE_ROOT, `.current.${process.pid}.json`);
    await writeFile(temp, `${JSON.stringify(record)}\n`);
    await rename(temp, join(BUNDLE_ROOT, 'current.json'));
    await rm(join(BUNDLE_ROOT, 'failed'), { force: true });
    await removeOldBundles(dir);
    return record;
  } finally {
    await rm(building, { recursive: true, force: true });
  }
}

/**
 * The bundle bin/mp.js would run now (the same check it makes), made first if there is none or
 * the sources changed; undefined under MP_BUNDLE=0 or when none could be made (mp runs the
 * sources then). For benchmarks: they measure what a clone runs after its first command.
 */
export async function ensureBundle(env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  if (env.MP_BUNDLE === '0') return undefined;
  const current = async (): Promise<string | undefined> => {
    try {
      const record = JSON.parse(await readFile(join(BUNDLE_ROOT, 'current.json'), 'utf8')) as BundleRecord;
      for (const [file, mtimeMs] of record.inputs)
        if ((await stat(file).catch(() => undefined))?.mtimeMs !== mtimeMs) return undefined;
      return join(BUNDLE_ROOT, record.dir);
    } catch {
      return undefined;
    }
  };
  return (await current()) ?? ((await buildBundle()) && (await current()));
}

/** esbuild's build; a failure is noted in `failed` (bin/mp.js waits a minute before it tries again). */
async function esbuild(options: Parameters<Esbuild['build']>[0]): ReturnType<Esbuild['build']> {
  try {
    return await loadEsbuild().build(options);
  } catch (error) {
    await writeFile(join(BUNDLE_ROOT, 'failed'), `${String(error)}\n`).catch(() => undefined);
    throw error;
  }
}

/** The mtimes of the workspace's sources before esbuild reads them, to notice an edit meanwhile. */
async function sourceMtimes(): Promise<Map<string, number>> {
  const mtimes = new Map<string, number>();
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.name.endsWith('.ts')) mtimes.set(path, (await stat(path)).mtimeMs);
    }
  };
  await walk(join(CLI_DIR, 'src'));
  await walk(CORE_SRC);
  return mtimes;
}

async function removeOldBundles(current: string): Promise<void> {
  const bundles: Array<{ path: string; mtimeMs: number }> = [];
  for (const name of await readdir(BUNDLE_ROOT).catch(() => [] as string[])) {
    if (!name.startsWith('b-') || name === current) continue;
    const path = join(BUNDLE_ROOT, name);
    const info = await stat(path).catch(() => undefined);
    if (info) bundles.push({ path, mtimeMs: info.mtimeMs });
  }
  bundles.sort((a, b) => b.mtimeMs - a.mtimeMs);
  for (const [i, { path, mtimeMs }] of bundles.entries()) {
    if (i >= KEPT_BUNDLES - 1 || Date.now() - mtimeMs > OLD_BUNDLE_MS)
      await rm(path, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await buildBundle();
}
