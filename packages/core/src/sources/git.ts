/**
 * Running the host's `git`: never prompts (a private URL fails instead of hanging), speaks C locale
 * (messages we match on), and streams progress lines to the caller.
 */
import { spawn } from 'node:child_process';
import { CancelledError, MpError } from '../errors.ts';

export interface GitRunOptions {
  cwd?: string;
  signal?: AbortSignal;
  /** Each line git writes to stderr (progress, warnings), `\r`-separated progress included. */
  onLine?: (line: string) => void;
  /** Extra `-c key=value` settings, e.g. `url.<mirror>.insteadOf` rewrites for submodules. */
  config?: Record<string, string>;
  /** Extra environment (e.g. `GIT_INDEX_FILE`). */
  env?: Record<string, string>;
}

/** A git command that exited non-zero; `stderr` holds what it said. */
export class GitCommandError extends Error {
  readonly args: string[];
  readonly exitCode: number | null;
  readonly stderr: string;
  constructor(args: string[], exitCode: number | null, stderr: string) {
    super(`git ${args.join(' ')} failed (exit ${exitCode}): ${lastLines(stderr, 3)}`);
    this.name = 'GitCommandError';
    this.args = args;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

function lastLines(text: string, n: number): string {
  return text
    .trim()
    .split(/\r?\n|\r/)
    .filter(Boolean)
    .slice(-n)
    .join(' | ');
}

const GIT_ENV = {
  GIT_TERMINAL_PROMPT: '0',
  // ssh URLs must fail rather than ask for a passphrase or host confirmation.
  GIT_SSH_COMMAND: 'ssh -o BatchMode=yes',
  // A stalled server (or an unreachable mirror behind a proxy) fails after 30 s below 1 KB/s.
  GIT_HTTP_LOW_SPEED_LIMIT: '1000',
  GIT_HTTP_LOW_SPEED_TIME: '30',
  LC_ALL: 'C',
};

/** Runs git and resolves with its stdout; rejects with {@link GitCommandError} or a CancelledError. */
export function runGit(args: string[], options: GitRunOptions = {}): Promise<string> {
  const configArgs = Object.entries(options.config ?? {}).flatMap(([k, v]) => ['-c', `${k}=${v}`]);
  const fullArgs = [...configArgs, ...args];
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) return reject(new CancelledError('git'));
    const child = spawn('git', fullArgs, {
      cwd: options.cwd,
      env: { ...process.env, ...GIT_ENV, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const stdout: Buffer[] = [];
    let stderr = '';
    let pending = '';
    let lastProgress = 0;
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      stderr += text;
      if (stderr.length > 64_000) stderr = stderr.slice(-32_000);
      if (!options.onLine) return;
      pending += text;
      // Progress ("Receiving objects: 42% …") is rewritten in place with \r: pass on a few per
      // second and the final ", done." line, not every percent.
      const parts = pending.split(/(\r\n|\n|\r)/);
      pending = parts.pop() ?? '';
      for (let i = 0; i < parts.length; i += 2) {
        const line = parts[i]!;
        const progress = parts[i + 1] === '\r' && !/done\.\s*$/.test(line);
        if (!line.trim()) continue;
        if (progress) {
          if (performance.now() - lastProgress < 300) continue;
          lastProgress = performance.now();
        }
        options.onLine(line.trimEnd());
      }
    });
    const onAbort = () => child.kill('SIGTERM');
    options.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (error: NodeJS.ErrnoException) => {
      options.signal?.removeEventListener('abort', onAbort);
      if (error.code === 'ENOENT') {
        reject(
          new MpError({
            code: 'GIT_NOT_FOUND',
            message: 'git is not installed (mp fetches MicroPython and library sources with it)',
            hint: 'Install git (apt-get install git, brew install git, or https://git-scm.com) and run the command again.',
            step: 'sources',
          }),
        );
      } else reject(error);
    });
    child.on('close', (code) => {
      options.signal?.removeEventListener('abort', onAbort);
      if (pending.trim() && options.onLine) options.onLine(pending);
      if (options.signal?.aborted) return reject(new CancelledError('git'));
      if (code === 0) resolve(Buffer.concat(stdout).toString('utf8'));
      else reject(new GitCommandError(fullArgs, code, stderr));
    });
  });
}

/**
 * What git said, as the lines that carry it: its `fatal:`, `error:` and `remote:` lines (without
 * the prefix), or else the last few lines; progress meters and blank lines left out. git's own
 * advice ("Please make sure you have the correct access rights …") stays out: mp's hint says more.
 */
export function gitComplaint(stderr: string): string {
  const lines = stderr
    .split(/\r?\n|\r/)
    .map((l) => l.trim())
    .filter(
      (l) =>
        l &&
        !/^(Receiving|Resolving|Counting|Compressing|Enumerating|remote: (Counting|Compressing|Enumerating|Total))/.test(
          l,
        ),
    );
  const said = lines
    .filter((l) => /^(fatal|error|remote|ERROR):/i.test(l))
    .map((l) => l.replace(/^(fatal|error|ERROR):\s*/, ''));
  const picked = said.length ? said : lines.slice(-3);
  return [...new Set(picked)].join('; ');
}

/** True when git's complaint means the repository could not be reached at all (vs. a missing ref). */
export function isUnreachable(error: unknown): boolean {
  if (!(error instanceof GitCommandError)) return false;
  return /could not read from remote|unable to access|could not resolve host|does not appear to be a git repository|repository .* not found|connection (refused|timed out)|failed to connect|no such file or directory|not found|authentication failed|terminal prompts disabled|Operation timed out/i.test(
    error.stderr,
  );
}
