/** Running the real `mp` against the kit: a private source cache, the kit's mirrors, JSON results. */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MP_BIN, type MpResult, runMp } from '@mp/test-utils';
import type { UnpackedKit } from './kit.ts';

export interface KitRunner {
  cacheDir: string;
  env: NodeJS.ProcessEnv;
  mp(args: string[], env?: NodeJS.ProcessEnv): Promise<MpResult>;
  /** The cached MicroPython tree of a commit (what every build of it shares). */
  micropythonTree(sha: string): string;
  cleanup(): void;
}

export function kitRunner(kit: UnpackedKit): KitRunner {
  const cacheDir = mkdtempSync(join(tmpdir(), 'mp-upstream-cache-'));
  const env = { MP_CACHE_DIR: cacheDir, MP_GIT_MIRRORS: kit.mirrors };
  return {
    cacheDir,
    env,
    mp: (args, extra = {}) => runMp(args, { env: { ...env, ...extra }, timeoutMs: 900_000 }),
    micropythonTree(sha) {
      const git = join(cacheDir, 'git');
      const repo = readdirSync(git).find(
        (name) => name.startsWith('micropython-micropython-') && !name.includes('-lib-'),
      );
      if (!repo) throw new Error(`no MicroPython repository in ${git}`);
      return join(git, repo, 'trees', sha);
    },
    cleanup: () => rmSync(cacheDir, { recursive: true, force: true }),
  };
}

// biome-ignore lint/suspicious/noExplicitAny: test assertions read arbitrary JSON
export function jsonResult(run: MpResult): Record<string, any> {
  const line = run.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l))
    .findLast((e) => e.type === 'result');
  if (!line) throw new Error(`no JSON result from mp:\n${run.output}`);
  return line;
}

export interface DevJson {
  /** Every JSON event so far, in order. */
  events: Array<Record<string, unknown>>;
  /** Index of the first event of `type` at or after `from`; fails with mp's output on a timeout or exit. */
  waitFor(type: string, from?: number, timeoutMs?: number): Promise<number>;
  /** Ctrl-C, then waits for the end (SIGKILL after 30 s). */
  stop(): Promise<void>;
}

/** `mp dev --watch --json` in `dir` as a subprocess, its events collected. */
export function startDevJson(dir: string, env: NodeJS.ProcessEnv): DevJson {
  const child = spawn(process.execPath, [MP_BIN, 'dev', '--watch', '--json', '--cwd', dir], {
    env: { ...process.env, NO_COLOR: '1', CI: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const events: Array<Record<string, unknown>> = [];
  let output = '';
  let pending = '';
  child.stdout!.on('data', (data: Buffer) => {
    output += data;
    pending += data;
    for (let nl = pending.indexOf('\n'); nl !== -1; nl = pending.indexOf('\n')) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (line.startsWith('{')) events.push(JSON.parse(line));
    }
  });
  child.stderr!.on('data', (data: Buffer) => {
    output += data;
  });
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  return {
    events,
    async waitFor(type, from = 0, timeoutMs = 120_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const at = events.findIndex((e, i) => i >= from && e.type === type);
        if (at !== -1) return at;
        if (child.exitCode !== null)
          throw new Error(`mp dev exited (${child.exitCode}) before ${type}:\n${output}`);
        if (Date.now() > deadline) throw new Error(`no ${type} from mp dev in ${timeoutMs} ms:\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },
    async stop() {
      if (child.exitCode === null) child.kill('SIGINT');
      const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(killer);
    },
  };
}
