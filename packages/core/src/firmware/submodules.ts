/**
 * The MicroPython submodules a port needs, for the compile: listed by the board, remembered from
 * an earlier build of the same commit, or asked of `make submodules` in the toolchain container
 * (with a `git` shim, so the container needs no network); then the project's choice applied and
 * the rest fetched on the host, shallow and through the cache.
 */
import { chmod, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MpError } from '../errors.ts';
import type { StepContext } from '../events.ts';
import type { ToolchainContainer } from '../toolchain/toolchain.ts';
import { hashOf } from './cache-key.ts';
import type { Fetched, FetchedMicroPython } from './fetch.ts';
import { GIT_SHIM, parseSubmoduleList, submodulesScript } from './make.ts';
import type { SourceCache } from './resolve.ts';

/** Where the submodule list of a port at an immutable commit is remembered. */
export function submoduleCacheFile(fetched: Fetched, cacheDir: string): string | undefined {
  const mp = fetched.micropython;
  if (!mp.git) return undefined;
  const t = fetched.target;
  const key = hashOf({
    port: fetched.board.port,
    board: t.board,
    variant: t.variant,
    makeArgs: t.makeArgs ?? [],
  }).slice(0, 12);
  return join(cacheDir, 'submodules', `${mp.sha}-${key}.json`);
}

/** The list the board declares or an earlier build remembered; undefined when only the port can tell. */
export async function knownSubmodules(fetched: Fetched, cacheDir: string): Promise<string[] | undefined> {
  if (fetched.target.submodules) return fetched.target.submodules;
  const cacheFile = submoduleCacheFile(fetched, cacheDir);
  if (!cacheFile) return undefined;
  return readFile(cacheFile, 'utf8').then(
    (text) => JSON.parse(text) as string[],
    () => undefined,
  );
}

/**
 * Submodules that a make variable leaves unused: the code that includes them is compiled only when
 * the variable is 1 (extmod/extmod.mk: `ifeq ($(MICROPY_PY_BTREE),1)` around lib/berkeley-db-1.xx,
 * `ifeq ($(MICROPY_PY_SSL),1)` around lib/axtls and lib/mbedtls), although some ports list them in
 * GIT_SUBMODULES unconditionally (ports/esp8266/Makefile: `GIT_SUBMODULES += lib/axtls lib/berkeley-db-1.xx`).
 */
const SUBMODULES_UNUSED_WHEN_OFF: Record<string, string[]> = {
  MICROPY_PY_BTREE: ['lib/berkeley-db-1.xx'],
  MICROPY_PY_SSL: ['lib/axtls', 'lib/mbedtls'],
};

/** Submodules the project's make variables switch off, with the variable that does it. */
export function submodulesUnusedBy(make: Record<string, string>): Map<string, string> {
  const unused = new Map<string, string>();
  for (const [name, paths] of Object.entries(SUBMODULES_UNUSED_WHEN_OFF))
    if (make[name] === '0') for (const path of paths) unused.set(path, `${name}=0`);
  return unused;
}

/**
 * The port's submodules with the project's `submodules.skip` and those its make variables leave
 * unused taken out, and `submodules.fetch` added (an explicit fetch wins over an implied skip).
 */
export function chooseSubmodules(
  listed: string[],
  choice: { fetch: string[]; skip: string[] },
  make: Record<string, string> = {},
): string[] {
  const skip = new Set(choice.skip);
  const unused = submodulesUnusedBy(make);
  return [...new Set([...listed, ...choice.fetch])].filter(
    (path) => !skip.has(path) && (choice.fetch.includes(path) || !unused.has(path)),
  );
}

export interface SubmoduleDeps {
  step: StepContext;
  sources: SourceCache;
  cacheDir: string;
  /** Aborts `make submodules` (undefined: the container is removed on abort instead). */
  signal: AbortSignal | undefined;
}

/** The port's submodules chosen and present in the tree; the checkout that has them. */
export async function prepareSubmodules(
  fetched: Fetched,
  container: ToolchainContainer,
  deps: SubmoduleDeps,
): Promise<{ micropython: FetchedMicroPython; submodules: string[] }> {
  const { config } = fetched.project;
  const listed = (await knownSubmodules(fetched, deps.cacheDir)) ?? (await askPort(fetched, container, deps));
  const submodules = chooseSubmodules(listed, config.submodules, config.make);
  const left = listed.filter((path) => !submodules.includes(path));
  if (left.length) deps.step.logger.info(`Not fetching ${skipReasons(fetched, left)}`);
  const micropython = await ensureSubmodules(fetched.micropython, submodules, fetched.board.port, deps);
  return { micropython, submodules };
}

/** `make submodules` in the container, its list remembered for this commit. */
async function askPort(
  fetched: Fetched,
  container: ToolchainContainer,
  deps: SubmoduleDeps,
): Promise<string[]> {
  const { board, target } = fetched;
  deps.step.title('Compile: asking the port which submodules it needs');
  const lines: string[] = [];
  const { exitCode } = await container.exec(submodulesScript(board, target), {
    onLine: (line) => {
      lines.push(line);
      deps.step.output(line);
    },
    signal: deps.signal,
  });
  const list = parseSubmoduleList(lines);
  if (exitCode !== 0 || !list) {
    deps.step.logger.warn(
      `\`make submodules\` of port ${board.port} did not list its submodules (exit ${exitCode}); fetching lib/micropython-lib only. Set \`submodules\` in the board plugin if the build misses one.`,
    );
    return ['lib/micropython-lib'];
  }
  const cacheFile = submoduleCacheFile(fetched, deps.cacheDir);
  if (cacheFile) {
    await mkdir(join(cacheFile, '..'), { recursive: true });
    await writeFile(cacheFile, JSON.stringify(list));
  }
  return list;
}

function skipReasons(fetched: Fetched, paths: string[]): string {
  const { config } = fetched.project;
  const unused = submodulesUnusedBy(config.make);
  return paths
    .map(
      (path) =>
        `${path}: ${unused.has(path) && !config.submodules.skip.includes(path) ? `unused with ${unused.get(path)}` : 'skipped by the config'}`,
    )
    .join('; ');
}

async function ensureSubmodules(
  mp: FetchedMicroPython,
  paths: string[],
  port: string,
  { step, sources }: SubmoduleDeps,
): Promise<FetchedMicroPython> {
  if (paths.length === 0) return mp;
  if (mp.checkout) {
    const have = mp.checkout.submodules;
    const missing = paths.filter((p) => !have[p]);
    if (missing.length) step.title(`Compile: fetching submodules ${missing.join(', ')}`);
    const checkout = await sources.ensureSubmodules(mp.checkout, paths, {
      signal: step.signal,
      logger: step.logger,
      onLine: step.output,
      onWait: (owner) => step.title(`Waiting for ${owner} (fetching MicroPython submodules)`),
      label: 'MicroPython',
    });
    return { ...mp, checkout };
  }
  // A local checkout: its submodules are the user's; say which are missing and how to get them.
  const missing: string[] = [];
  for (const path of paths) {
    const entries = await readdir(join(mp.dir, path)).catch(() => []);
    if (entries.length === 0) missing.push(path);
  }
  if (missing.length) {
    throw new MpError({
      code: 'SUBMODULE_MISSING',
      message: `The local MicroPython checkout ${mp.dir} lacks submodules the ${port} port needs: ${missing.join(', ')}`,
      file: mp.dir,
      step: 'compile',
      hint: `Run: git -C ${mp.dir} submodule update --init ${missing.join(' ')}`,
    });
  }
  return mp;
}

/** The `git` stand-in used by `make submodules` (see make.ts), in the build directory. */
export async function writeGitShim(buildDir: string): Promise<void> {
  const shim = join(buildDir, '.mp-shim', 'git');
  if ((await readFile(shim, 'utf8').catch(() => undefined)) === GIT_SHIM) return;
  await mkdir(join(buildDir, '.mp-shim'), { recursive: true });
  await writeFile(shim, GIT_SHIM);
  await chmod(shim, 0o755);
}
