/**
 * Runs the real `mp` CLI as a subprocess, exactly as a user would (same bin script, same Node).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const MP_BIN = fileURLToPath(new URL('../../../packages/cli/bin/mp.js', import.meta.url));

export interface MpResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout + stderr, for "the user sees this" assertions. */
  output: string;
}

export interface RunMpOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: string;
  timeoutMs?: number;
  /** Called with the child once it is running (to send signals mid-run). */
  onSpawn?: (child: import('node:child_process').ChildProcess) => void;
}

export function runMp(args: string[], options: RunMpOptions = {}): Promise<MpResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MP_BIN, ...args], {
      cwd: options.cwd ?? REPO_ROOT,
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', CI: '1', ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let output = '';
    child.stdout.on('data', (d) => {
      stdout += d;
      output += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
      output += d;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`mp ${args.join(' ')} did not finish within ${options.timeoutMs ?? 60_000} ms\n${output}`),
      );
    }, options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, output });
    });
    if (options.input !== undefined) child.stdin.end(options.input);
    else child.stdin.end();
    options.onSpawn?.(child);
  });
}
