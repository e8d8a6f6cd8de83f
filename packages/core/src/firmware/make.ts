/**
 * The make invocations a build runs in the toolchain container, and reading their output when they
 * fail. Paths inside the container are fixed (see {@link CONTAINER}) so make's dependency files stay
 * valid from one build to the next, which keeps builds incremental.
 */
import { posix } from 'node:path';
import type { BoardPlugin, BoardTarget } from '../plugin/types.ts';
import { ccacheShimScript } from '../toolchain/ccache.ts';

/** Where things are mounted in the toolchain container. */
export const CONTAINER = {
  micropython: '/mp/micropython',
  /** Library sources: `/mp/libs/<id>`. */
  libs: '/mp/libs',
  modules: '/mp/modules',
  /** User C modules: `/mp/cmodules/<folder name>` (see c-modules.ts). */
  cmodules: '/mp/cmodules',
  /** The persistent per-board build directory (mpy-cross, the port's BUILD, the manifest). */
  build: '/mp/build',
} as const;

export const CONTAINER_PATHS = {
  manifest: `${CONTAINER.build}/manifest.py`,
  mpyCrossBuild: `${CONTAINER.build}/mpy-cross`,
  portBuild: `${CONTAINER.build}/port`,
  shim: `${CONTAINER.build}/.mp-shim`,
};

/** A stage marker the make script prints so failures can be attributed; never shown to users. */
export const STAGE_MARKER = '::mp-stage ';

export function shellQuote(value: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

export interface MakeInvocation {
  board: BoardPlugin;
  target: BoardTarget;
  jobs: number;
  /** Build mpy-cross (skipped when the binary exists and the sources cannot have changed). */
  buildMpyCross: boolean;
  /** Compile through ccache when the container has it (toolchain/ccache.ts). */
  ccache?: boolean;
}

/** `BOARD=… BOARD_VARIANT=… BUILD=… FROZEN_MANIFEST=…` for the port's make. */
export function portMakeVariables(board: BoardPlugin, target: BoardTarget): string[] {
  const vars = [`BUILD=${CONTAINER_PATHS.portBuild}`];
  if (target.board) vars.push(`BOARD=${target.board}`);
  // The unix port calls its variants VARIANT; the board-based ports BOARD_VARIANT.
  if (target.variant) vars.push(`${board.port === 'unix' ? 'VARIANT' : 'BOARD_VARIANT'}=${target.variant}`);
  // The unix port's variant manifests are found through $(VARIANT_DIR), which only make knows;
  // MICROPY_MANIFEST_* variables on the command line reach the manifest tool as well.
  if (board.port === 'unix') {
    vars.push(
      `MICROPY_MANIFEST_VARIANT_DIR=${CONTAINER.micropython}/ports/unix/variants/${target.variant ?? 'standard'}`,
    );
  }
  vars.push(`FROZEN_MANIFEST=${CONTAINER_PATHS.manifest}`);
  return vars;
}

/**
 * The shell script that compiles: mpy-cross into the build directory (built in this image: one
 * built elsewhere may not run here), then the port with it. Command-line variables override the
 * Makefiles' own assignments; `MICROPY_MPYCROSS` is also exported for CMake ports (esp32) and the
 * manifest tool, which read it from the environment.
 */
export function makeScript(invocation: MakeInvocation): string {
  const { board, target, jobs } = invocation;
  const lines = ['set -e'];
  if (target.toolchain.shellPrelude) lines.push(target.toolchain.shellPrelude);
  // After the prelude, which may put the compilers on PATH.
  if (invocation.ccache) lines.push(ccacheShimScript());
  lines.push(`cd ${CONTAINER.micropython}`);
  const mpyCross = `${CONTAINER_PATHS.mpyCrossBuild}/mpy-cross`;
  if (board.mpyCross !== false) {
    if (invocation.buildMpyCross) {
      lines.push(`echo '${STAGE_MARKER}mpy-cross'`);
      lines.push(`make -C mpy-cross BUILD=${CONTAINER_PATHS.mpyCrossBuild} -j${jobs}`);
    }
    // Before v1.20 mpy-cross wrote its executable into its source folder whatever BUILD said.
    lines.push(
      `MPY_CROSS=${mpyCross}`,
      `[ -x "$MPY_CROSS" ] || MPY_CROSS=${CONTAINER.micropython}/mpy-cross/mpy-cross`,
    );
    lines.push('export MICROPY_MPYCROSS="$MPY_CROSS"');
  }
  lines.push(`echo '${STAGE_MARKER}port'`);
  lines.push(portMakeCommand(board, target, jobs, '"$MPY_CROSS"'));
  return lines.join('\n');
}

/**
 * The port's make command line, as it runs in the container (`mp build --dry-run` shows it).
 * `mpyCross` is how the command names the mpy-cross binary (a shell variable in the script).
 */
export function portMakeCommand(
  board: BoardPlugin,
  target: BoardTarget,
  jobs: number,
  mpyCross = `${CONTAINER_PATHS.mpyCrossBuild}/mpy-cross`,
): string {
  const args = [
    ...portMakeVariables(board, target),
    ...(board.mpyCross !== false ? [`MICROPY_MPYCROSS=${mpyCross}`] : []),
    `-j${jobs}`,
    ...(target.makeArgs ?? []).map(shellQuote),
  ];
  return `make -C ports/${shellQuote(board.port)} ${args.join(' ')}`;
}

/**
 * A `git` stand-in put first on PATH while `make submodules` runs: it answers the submodule
 * commands without fetching (the host fetches them, shallow and through the cache), so the list
 * is read from make's own "Updating submodules: …" line and the container needs no network.
 */
export const GIT_SHIM = `#!/bin/sh
# Written by mp: answers "git submodule ..." during "make submodules"; everything else goes to git.
if [ "$1" = "submodule" ]; then echo "mp-shim: git $*"; exit 0; fi
for dir in /usr/local/bin /usr/bin /bin; do [ -x "$dir/git" ] && exec "$dir/git" "$@"; done
echo "git: not found" >&2
exit 127
`;

export function submodulesScript(board: BoardPlugin, target: BoardTarget): string {
  const lines = ['set -e'];
  if (target.toolchain.shellPrelude) lines.push(target.toolchain.shellPrelude);
  lines.push(`export PATH=${CONTAINER_PATHS.shim}:$PATH`, `cd ${CONTAINER.micropython}`);
  const args = [...portMakeVariables(board, target), ...(target.makeArgs ?? []).map(shellQuote)];
  lines.push(`make -C ports/${shellQuote(board.port)} ${args.join(' ')} submodules`);
  return lines.join('\n');
}

/** The submodule paths from make's "Updating submodules: lib/axtls lib/berkeley-db-1.xx …" lines. */
export function parseSubmoduleList(lines: string[]): string[] | undefined {
  let found: string[] | undefined;
  for (const line of lines) {
    const m = /Updating submodules:(.*)$/.exec(line);
    if (!m) continue;
    found ??= [];
    for (const path of m[1]!.replace(/["']/g, ' ').split(/[\s;]+/)) {
      if (path && !found.includes(path)) found.push(path);
    }
  }
  return found;
}

/** Maps paths inside the container back to the host, for messages. */
export interface PathMapping {
  container: string;
  host: string;
}

export function toHostPath(text: string, mappings: PathMapping[]): string {
  let out = text;
  for (const m of [...mappings].sort((a, b) => b.container.length - a.container.length)) {
    out = out.split(`${m.container}/`).join(`${m.host}/`);
  }
  return out;
}

export interface MakeFailure {
  /** The compiler's error lines (and enough around them to read them), host paths. */
  excerpt: string[];
  /** The file at fault, as a host path, when one is named. */
  file?: string;
  line?: number;
  /** `freeze`: a Python module did not compile (mpy-cross) or the manifest failed; `compile`: C/make. */
  kind: 'freeze' | 'compile';
}

const GCC_ERROR = /^(.+?):(\d+)(?::\d+)?: (?:fatal )?error:/;
const PY_FILE = /^\s*File "(.+?)", line (\d+)/;

/**
 * Finds what went wrong in make's output: mpy-cross syntax errors (`error compiling app.py:`
 * followed by a traceback), manifest errors, compiler `file:line: error:` lines and make's own
 * `*** … Error` lines. `frozenFiles` maps frozen target paths (`app.py`, `mqtt_as/__init__.py`)
 * to host files, because mpy-cross reports those, not real paths.
 */
/**
 * A compiler location relative to where make ran (`main.c:224`, `../../py/persistentcode.h:72`;
 * gcc names files as make passed them) made absolute, so it maps to a host path the user can open.
 */
const RELATIVE_LOCATION =
  /(^|[\s[(]|\bfrom )((?:\.\.?\/)*[A-Za-z0-9_][A-Za-z0-9_./+-]*\.(?:c|h|cpp|cc|S|s|ld|mk|py)):(\d+)/g;

export function absoluteLocations(text: string, makeDir: string): string {
  return text.replace(RELATIVE_LOCATION, (_, lead: string, file: string, line: string) => {
    return `${lead}${posix.normalize(posix.join(makeDir, file))}:${line}`;
  });
}

export function analyzeMakeFailure(
  lines: string[],
  mappings: PathMapping[],
  frozenFiles: Record<string, string>,
  /** The container folder make ran in (`/mp/micropython/ports/esp8266`), for relative locations. */
  makeDir?: string,
): MakeFailure {
  const tail = lines.slice(-600);
  const picked = new Set<number>();
  let file: string | undefined;
  let lineNo: number | undefined;
  let kind: MakeFailure['kind'] = 'compile';
  const pick = (from: number, to: number) => {
    for (let i = Math.max(0, from); i <= Math.min(tail.length - 1, to); i++) picked.add(i);
  };
  tail.forEach((text, i) => {
    if (
      /^error compiling /.test(text) ||
      /^freeze error/.test(text) ||
      /^Traceback \(most recent call last\)/.test(text)
    ) {
      kind = 'freeze';
      let end = i + 1;
      while (end < tail.length && end < i + 12 && !/^make(\[\d+\])?: \*\*\*/.test(tail[end]!)) end++;
      pick(i, end - 1);
      const target = /^error compiling (.+):$/.exec(text)?.[1];
      if (target && !file) file = frozenFiles[target];
    }
    const py = PY_FILE.exec(text);
    if (py && kind === 'freeze' && lineNo === undefined) {
      file ??= frozenFiles[py[1]!] ?? py[1];
      lineNo = Number(py[2]);
    }
    const gcc = GCC_ERROR.exec(text);
    if (gcc) {
      // The include chain gcc prints above the error says how the file was reached.
      let first = i;
      while (first > 0 && /^(In file included from |\s+from )/.test(tail[first - 1]!)) first--;
      pick(first, i + 3);
      if (!file) {
        file = makeDir && !posix.isAbsolute(gcc[1]!) ? posix.normalize(posix.join(makeDir, gcc[1]!)) : gcc[1];
        lineNo = Number(gcc[2]);
      }
    }
    if (/^make(\[\d+\])?: \*\*\*/.test(text) || /\berror\b/i.test(text)) pick(i, i);
  });
  let excerpt = [...picked].sort((a, b) => a - b).map((i) => tail[i]!);
  if (excerpt.length === 0) excerpt = tail.slice(-15);
  if (excerpt.length > 30) excerpt = [...excerpt.slice(0, 25), '…', ...excerpt.slice(-4)];
  return {
    excerpt: excerpt.map((l) => toHostPath(makeDir ? absoluteLocations(l, makeDir) : l, mappings)),
    file: file ? toHostPath(file, mappings) : undefined,
    line: lineNo,
    kind,
  };
}

/** `/mp/libs/<id>` */
export function containerLibraryDir(id: string): string {
  return posix.join(CONTAINER.libs, id);
}
