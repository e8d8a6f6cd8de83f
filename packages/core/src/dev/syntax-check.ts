/**
 * Fast feedback in `mp dev`: before make runs, the changed .py files go through mpy-cross in the
 * warm toolchain container (MicroPython's own parser, not CPython's), which takes milliseconds;
 * the first error is shown as file:line without waiting for the whole build.
 */
import { execFile } from 'node:child_process';
import { setPriority } from 'node:os';
import { CONTAINER_PATHS, type PathMapping, shellQuote, toHostPath } from '../firmware/make.ts';
import type { ToolchainContainer } from '../toolchain/toolchain.ts';

export interface SyntaxProblem {
  /** Host path of the file. */
  file: string;
  line?: number;
  message: string;
  /** mpy-cross's own words (host paths). */
  output: string[];
}

/** Container path of a host file, if it lies under a mounted folder. */
export function toContainerPath(hostFile: string, mappings: PathMapping[]): string | undefined {
  for (const m of [...mappings].sort((a, b) => b.host.length - a.host.length)) {
    if (hostFile.startsWith(`${m.host}/`)) return `${m.container}/${hostFile.slice(m.host.length + 1)}`;
  }
  return undefined;
}

/** Parses mpy-cross's `Traceback … File "x.py", line 3 … SyntaxError: invalid syntax`. */
export function parseMpyCrossError(lines: string[]): { file?: string; line?: number; message: string } {
  let file: string | undefined;
  let line: number | undefined;
  for (const text of lines) {
    const m = /^\s*File "(.+?)", line (\d+)/.exec(text);
    if (m) {
      file = m[1];
      line = Number(m[2]);
    }
  }
  const message =
    [...lines]
      .reverse()
      .find((l) => /^\w*(Error|Exception)\b/.test(l.trim()))
      ?.trim() ??
    lines.at(-1)?.trim() ??
    'mpy-cross failed';
  return { file, line, message };
}

/** Compiles each file with the container's mpy-cross; returns the first problem, if any. */
export async function checkPythonSyntax(
  container: ToolchainContainer,
  hostFiles: string[],
  mappings: PathMapping[],
  signal?: AbortSignal,
): Promise<SyntaxProblem | undefined> {
  const targets = hostFiles
    .map((f) => [f, toContainerPath(f, mappings)] as const)
    .filter(([, c]) => c !== undefined);
  if (targets.length === 0) return undefined;
  const mpyCross = `${CONTAINER_PATHS.mpyCrossBuild}/mpy-cross`;
  // One exec for all files: stop at the first failure, name the file that failed.
  const script = [
    `test -x ${mpyCross} || exit 0`,
    ...targets.map(
      ([, c]) =>
        `nice -n 19 ${mpyCross} -o /dev/null ${shellQuote(c!)} || { echo "::mp-failed ${c}"; exit 1; }`,
    ),
  ].join('\n');
  const lines: string[] = [];
  const { exitCode } = await container.exec(script, { onLine: (l) => lines.push(l), signal });
  if (exitCode === 0) return undefined;
  const failedContainerPath = lines.find((l) => l.startsWith('::mp-failed '))?.slice('::mp-failed '.length);
  const output = lines.filter((l) => !l.startsWith('::mp-failed ')).map((l) => toHostPath(l, mappings));
  const parsed = parseMpyCrossError(output);
  const failed = targets.find(([, c]) => c === failedContainerPath)?.[0];
  return {
    file: failed ?? parsed.file ?? targets[0]![0],
    line: parsed.line,
    message: parsed.message,
    output,
  };
}

/**
 * The same check without Docker: mpy-cross as built into the project's build folder, run on the
 * host when the host can run it (a Linux host usually can; macOS and Windows cannot, and answer
 * `undefined` for "not available here"). No exec round trip through the engine, and at the lowest
 * priority, so it does not slow the make it runs beside.
 */
export async function checkPythonSyntaxOnHost(
  mpyCross: string,
  hostFiles: string[],
  signal?: AbortSignal,
): Promise<SyntaxProblem | 'ok' | undefined> {
  for (const file of hostFiles) {
    const outcome = await new Promise<{ code: number | string | null; output: string }>((resolve) => {
      const child = execFile(
        mpyCross,
        ['-o', '/dev/null', file],
        { signal, timeout: 10_000 },
        (error, stdout, stderr) => {
          const code = error
            ? ((error as NodeJS.ErrnoException).code ?? (error as { status?: number }).status ?? 1)
            : 0;
          resolve({
            code: typeof code === 'number' || typeof code === 'string' ? code : 1,
            output: `${stdout}${stderr}`,
          });
        },
      );
      if (child.pid) setPriority(child.pid, 19);
    });
    if (outcome.code === 0) continue;
    const lines = outcome.output.split('\n').filter((l) => l.trim());
    // Could not run here (missing interpreter or libraries, wrong format): let the container check.
    if (
      typeof outcome.code === 'string' ||
      outcome.code === 126 ||
      outcome.code === 127 ||
      !lines.some((l) => /Error\b/.test(l))
    ) {
      return undefined;
    }
    const parsed = parseMpyCrossError(lines);
    return { file, line: parsed.line, message: parsed.message, output: lines };
  }
  return 'ok';
}
