/**
 * The emulated board's application as a real process: after a boot into the application the
 * device hands its UART to a program behind a pseudo-terminal, typically the real unix MicroPython
 * built from the kit, whose REPL is the boards' REPL (shared/runtime/pyexec.c: friendly, raw and
 * raw-paste modes) and whose filesystem is the folder it runs in. So `mp flash` and `mp dev` talk
 * to a real MicroPython REPL after flashing, through the same serial code path as on a board.
 *
 * socat (from Debian; `scripts/setup --test` installs it) makes the pty: its stdio is our pipe, the
 * program gets a raw pty as its controlling terminal, as `test/upstream/src/pty.ts` does for a
 * standalone board. A reset ends the process (the chip stops running it); the program ending by
 * itself (the unix port exits on Ctrl-D, where a board soft-reboots) starts it again, as a board's
 * soft reboot starts MicroPython again with its filesystem kept: on the boards, Ctrl-D at the
 * friendly REPL returns PYEXEC_FORCED_EXIT (shared/runtime/pyexec.c, pyexec_friendly_repl), and
 * ports/esp8266/main.c and ports/esp32/main.c print "MPY: soft reboot" and go round their
 * `soft_reset:` loop, running boot.py and main.py again.
 */
import { type ChildProcess, spawn } from 'node:child_process';

export interface ApplicationOptions {
  /** The program and its arguments (no shell: socat's EXEC; no commas or colons in them). */
  command: string;
  /** The folder it runs in: the board's filesystem. */
  cwd: string;
}

export class ApplicationProcess {
  readonly #options: ApplicationOptions;
  readonly #output: (bytes: Uint8Array) => void;
  readonly #exited: () => void;
  #child: ChildProcess | undefined;

  /** `output`: what the program prints; `exited`: it ended by itself (not by `stop`). */
  constructor(options: ApplicationOptions, output: (bytes: Uint8Array) => void, exited: () => void) {
    this.#options = options;
    this.#output = output;
    this.#exited = exited;
  }

  start(): void {
    this.stop();
    const child = spawn('socat', ['-', `EXEC:${this.#options.command},pty,raw,echo=0,stderr,setsid,ctty`], {
      cwd: this.#options.cwd,
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    this.#child = child;
    child.on('error', (error) => {
      const text = `\r\nemulator: cannot start the application (${error.message}; is socat installed?)\r\n`;
      this.#output(new TextEncoder().encode(text));
    });
    child.stdout?.on('data', (bytes: Buffer) => {
      if (this.#child === child) this.#output(new Uint8Array(bytes));
    });
    child.stdin?.on('error', () => undefined); // writes racing the process's end
    child.on('exit', () => {
      if (this.#child !== child) return;
      this.#child = undefined;
      this.#exited();
    });
    // The emulator's host process must be free to exit while the application runs.
    child.unref();
    (child.stdout as unknown as { unref?: () => void })?.unref?.();
    (child.stdin as unknown as { unref?: () => void })?.unref?.();
    live.add(child);
    child.on('exit', () => live.delete(child));
  }

  /** The program runs (started and not ended or stopped). */
  get running(): boolean {
    return this.#child !== undefined;
  }

  write(bytes: Uint8Array): void {
    this.#child?.stdin?.write(bytes);
  }

  /** Ends the program (a reset or power loss): no output and no restart from it any more. */
  stop(): void {
    const child = this.#child;
    this.#child = undefined;
    if (child && child.exitCode === null) child.kill('SIGTERM');
  }
}

/** Processes still running, ended when the host process exits so none outlives it. */
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGTERM');
});
