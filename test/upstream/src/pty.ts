/**
 * The real unix MicroPython behind a pseudo-terminal (socat from Debian): its REPL is the same
 * raw REPL as the boards' (shared/runtime/pyexec.c, with MICROPY_USE_READLINE), and its
 * filesystem is the host folder it runs in, so a test can read back what `mp put` wrote.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PtyBoard {
  /** The serial port to give mp (`--port`). */
  port: string;
  /** The folder the executable runs in: its filesystem's `.`. */
  dir: string;
  stop(): Promise<void>;
}

/** Runs `command` (a shell command line: the executable, or a stand-in) behind a new pty. */
export async function startPtyBoard(command: string): Promise<PtyBoard> {
  if (spawnSync('socat', ['-V'], { stdio: 'ignore' }).status !== 0)
    throw new Error(
      'socat is not installed (scripts/setup --test installs it): the REPL tests run MicroPython behind a pty made by socat',
    );
  const dir = mkdtempSync(join(tmpdir(), 'mp-pty-board-'));
  const port = join(dir, '..', `${dir.split('/').pop()}.tty`);
  const child: ChildProcess = spawn(
    'socat',
    [`PTY,link=${port},raw,echo=0`, `SYSTEM:${command},pty,stderr,setsid,ctty,raw,echo=0`],
    { cwd: dir, stdio: 'ignore' },
  );
  for (let i = 0; i < 100 && !existsSync(port); i++) await new Promise((r) => setTimeout(r, 50));
  if (!existsSync(port)) throw new Error(`socat made no pty at ${port}`);
  return {
    port,
    dir,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('close', r));
    },
  };
}
