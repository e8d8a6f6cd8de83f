/**
 * Resident mp, the server's half: the detached process a build with a lease leaves behind, which
 * runs the next `mp build` commands of the same environment with mp already loaded. The client's
 * half, and why there is a resident process at all, is bin/resident.js; bin/mp.js starts this one.
 *
 * One command at a time, in the client's folder and with the client's terminal (whether stdout and
 * stderr are TTYs, their width, colours): the output goes back as it is written, then the exit
 * code. The environment is the one the process was started with, and only clients with the same
 * environment find its socket (the socket's name is a hash of it). A client's Ctrl-C cancels the
 * build as it would in its own process; a client that goes (closed terminal, kill -9) cancels it
 * too, so no lock or container is left to a command nobody waits for.
 *
 * It ends, removing its socket:
 *   - when idle for the lease (MP_CONTAINER_LEASE, as leased toolchain containers do; no lease, no
 *     resident process), counted by its own timer, so nothing has to be alive to end it;
 *   - on `mp stop` or `mp clean` (a `stop` message; `mp clean --all` ends those of the cache it
 *     removes), after the command it is running;
 *   - when a module file it loaded changed (a plugin edited, mp updated): it declines the command,
 *     which then runs in its own process, and that one starts a new resident process.
 * Ended by a signal (SIGTERM, SIGINT, SIGHUP), it cancels the command it runs and removes its
 * socket. Killed with -9, it leaves its socket; a client then finds nobody listening and runs the
 * command itself, and the next resident process takes the socket over.
 *
 * It warms up first: the command that started it runs again as a `--dry-run` whose output goes
 * nowhere (no Docker, no lock, nothing written to the project). That loads the modules a build of
 * that project loads, its plugins among them, and runs the build's first steps often enough for
 * V8 to have compiled them: the first build it serves is as quick as the ones after it, where it
 * was 60–120 ms slower. A command that comes meanwhile cancels the warm-up and runs once it ended.
 */
import { appendFileSync, statSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { resolve } from 'node:path';
import { Writable } from 'node:stream';
import { LineSplitter, leaseSecondsFromEnv, pingEngine, userCacheDir } from '@mp/core';
import type { MainIO } from '../main.ts';
import { commandWord } from '../plain-line.ts';
import { useTerminalColors } from '../ui/style.ts';
import { markResident } from './client.ts';

/** Commands a resident process runs: they read no standard input and hold no serial port. */
export const RESIDENT_COMMANDS: ReadonlySet<string> = new Set(['build']);

export interface ResidentOptions {
  socket: string;
  /** Every module file the process loaded, with its mtime then (recorded by bin/mp.js). */
  loaded: ReadonlyMap<string, number | undefined>;
  main: (argv: string[], io: MainIO) => Promise<number>;
  /** The command that started this process, in its folder: what the warm-up runs. */
  warmUp?: { argv: string[]; cwd: string };
}

/** Dry runs of the starting command the warm-up makes (V8 compiles a function after some calls). */
const WARM_UP_RUNS = 3;

/** What the client sends first (bin/resident.js). */
interface RunRequest {
  type: 'run';
  argv: string[];
  cwd: string;
  pwd?: string;
  oldpwd?: string;
  stdout: Terminal;
  stderr: Terminal;
}
interface Terminal {
  isTTY: boolean;
  columns?: number;
}
type Message = RunRequest | { type: 'signal'; signal: string } | { type: 'stop'; cacheDir?: string };

export async function serveResident(options: ResidentOptions): Promise<void> {
  const leaseSeconds = leaseSecondsFromEnv(process.env);
  if (leaseSeconds <= 0) return;
  // The mp cache its builds use: `mp clean --all` of it ends this process.
  const cacheDir = userCacheDir(process.env);
  const { socket } = options;
  // Only what ends a command unexpectedly: the client's message points here.
  const log = (text: string) => {
    try {
      appendFileSync(`${socket}.log`, `${new Date().toISOString()} pid ${process.pid}: ${text}\n`);
    } catch {
      // Nowhere to say it.
    }
  };
  const crash = (error: unknown) => {
    log(`ended by an error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(1);
  };
  process.on('uncaughtException', crash);
  process.on('unhandledRejection', crash);

  let busy = false;
  let retiring = false;
  /** Cancels the command running now, if any. */
  let cancelRunning: ((reason: Error) => void) | undefined;
  let warming: Promise<void> | undefined;
  const stopWarmUp = new AbortController();
  let idle: NodeJS.Timeout | undefined;
  const server = createServer((connection) => serveConnection(connection));
  if (!(await listenOn(server, socket))) return;
  const inode = statSync(socket).ino;
  markResident();
  // What `ps` shows; the folder it waits in is its own, not the last client's.
  process.title = 'mp (resident)';
  const home = process.cwd();

  const retire = () => {
    if (retiring) return;
    retiring = true;
    clearTimeout(idle);
    server.close();
    // The socket is ours unless a later resident process took the name over.
    try {
      if (statSync(socket).ino === inode) unlinkSync(socket);
    } catch {
      // Gone already.
    }
    stopWarmUp.abort(new Error('the resident mp is ending'));
    if (!busy && !warming) process.exit(0);
  };
  // Ended by a signal (`kill`, a logout's SIGHUP): as by `mp stop`, but the command it runs is
  // cancelled (its client is told so), and the socket goes too.
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.on(signal, () => {
      cancelRunning?.(new Error(`the resident mp received ${signal}`));
      retire();
    });
  }
  const armIdle = () => {
    clearTimeout(idle);
    idle = setTimeout(retire, leaseSeconds * 1000);
  };
  armIdle();
  if (options.warmUp && commandWord(options.warmUp.argv) === 'build') {
    const { argv, cwd } = options.warmUp;
    warming = (async () => {
      // The engine's ping loads Node's HTTP client, which a dry run does not (5–10 ms at first use).
      await pingEngine(process.env, 2000).catch(() => undefined);
      for (let i = 0; i < WARM_UP_RUNS && !stopWarmUp.signal.aborted; i++) {
        try {
          process.chdir(cwd);
        } catch {
          break; // Its folder went: nothing to warm up on.
        }
        await options
          .main([...argv, '--dry-run'], { stdout: sink(), stderr: sink(), signal: stopWarmUp.signal })
          .catch(() => undefined);
      }
    })().finally(() => {
      warming = undefined;
      goHome();
      if (retiring && !busy) process.exit(0);
    });
  }

  function goHome(): void {
    try {
      process.chdir(home);
    } catch {
      // Its folder went (the temp folder cleaned): it stays in the client's.
    }
  }

  function serveConnection(connection: Socket): void {
    let controller: AbortController | undefined;
    const send = (message: object) => {
      if (!connection.destroyed) connection.write(`${JSON.stringify(message)}\n`);
    };
    connection.setEncoding('utf8');
    connection.on('error', () => {
      // The client went; 'close' cancels what it asked for.
    });
    connection.on('close', () =>
      controller?.abort(new Error('the mp command that asked for this build ended')),
    );
    // One JSON message a line (JSON.stringify escapes the line breaks inside one).
    const lines = new LineSplitter((line) => {
      if (connection.destroyed) return;
      let message: Message;
      try {
        message = JSON.parse(line) as Message;
      } catch {
        connection.destroy();
        return;
      }
      handle(message);
    });
    connection.on('data', (chunk: string) => lines.push(chunk));

    const handle = (message: Message) => {
      if (message.type === 'stop') {
        const mine = message.cacheDir === undefined || resolve(message.cacheDir) === resolve(cacheDir);
        send({ type: mine ? 'stopping' : 'staying', busy });
        connection.end();
        if (mine) retire();
      } else if (message.type === 'signal') {
        controller?.abort(new Error(`received ${message.signal}`));
      } else if (message.type === 'run') {
        // Code it runs changed under it (an edited plugin or config, an update): new processes'.
        if (changedModule(options.loaded)) retire();
        const declined = retiring
          ? 'retiring'
          : busy
            ? 'busy'
            : !RESIDENT_COMMANDS.has(commandWord(message.argv) ?? '')
              ? 'command'
              : undefined;
        if (declined) return decline(declined);
        busy = true;
        clearTimeout(idle);
        // The command warms up whatever the warm-up has not: it is not needed any more.
        stopWarmUp.abort(new Error('a command came'));
        void run(message);
      }
    };

    const decline = (reason: string) => {
      send({ type: 'declined', reason });
      connection.end();
    };

    const run = async (message: RunRequest) => {
      // The warm-up ends within a step; the folder is the process's, so it goes first.
      await warming;
      // The client went while it waited: nothing to run.
      if (connection.destroyed) return free();
      if (!enter(message)) {
        send({ type: 'declined', reason: 'folder' });
        return free();
      }
      controller = new AbortController();
      const running = controller;
      cancelRunning = (reason) => running.abort(reason);
      send({ type: 'accepted' });
      useTerminalColors(message.stderr.isTTY);
      const code = await options
        .main(message.argv, {
          stdout: terminalStream(send, 1, message.stdout),
          stderr: terminalStream(send, 2, message.stderr),
          signal: controller.signal,
        })
        .catch((error: unknown) => {
          log(`the command failed outside its error handling: ${String(error)}`);
          return 1;
        });
      controller = undefined;
      cancelRunning = undefined;
      goHome();
      send({ type: 'exit', code });
      free();
    };

    /**
     * The command slot is free again. Once the client has had the last word, a process asked to
     * end meanwhile (`mp stop`, a signal) ends; otherwise it idles. Each way a command ends goes
     * through here, so none leaves a retiring process behind (one whose folder was refused did).
     */
    const free = () => {
      busy = false;
      connection.end(() => {
        if (retiring) process.exit(0);
      });
      if (!retiring) armIdle();
    };
  }
}

/** The client's folder, and the shell's idea of it, for the command; false if it is gone. */
function enter(request: RunRequest): boolean {
  try {
    process.chdir(request.cwd);
  } catch {
    return false;
  }
  for (const [name, value] of [
    ['PWD', request.pwd],
    ['OLDPWD', request.oldpwd],
  ] as const) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  return true;
}

/** A module file whose mtime is not the one it had when loaded, if any. */
function changedModule(loaded: ReadonlyMap<string, number | undefined>): string | undefined {
  for (const [file, mtimeMs] of loaded)
    if (statSync(file, { throwIfNoEntry: false })?.mtimeMs !== mtimeMs) return file;
  return undefined;
}

/** Where the warm-up's output goes: nowhere (not a terminal). */
function sink(): Writable & { isTTY: boolean } {
  const stream = new Writable({ write: (_chunk, _encoding, callback) => callback() });
  return Object.assign(stream, { isTTY: false });
}

/** A stream that sends what is written to the client's stdout (1) or stderr (2). */
function terminalStream(
  send: (message: object) => void,
  fd: 1 | 2,
  terminal: Terminal,
): Writable & { isTTY: boolean; columns?: number } {
  const stream = new Writable({
    decodeStrings: false,
    write(chunk: string | Buffer, _encoding, callback) {
      send(
        typeof chunk === 'string'
          ? { type: 'out', fd, text: chunk }
          : { type: 'out', fd, base64: chunk.toString('base64') },
      );
      callback();
    },
  });
  return Object.assign(stream, { isTTY: terminal.isTTY, columns: terminal.columns });
}

/**
 * Listens on `socket`. A socket file nobody answers on is a killed resident process's: it is
 * replaced. One somebody answers on is another resident process's, started at the same time:
 * false, and this one has nothing to do.
 */
async function listenOn(server: Server, socket: string): Promise<boolean> {
  for (let attempt = 0; attempt < 2; attempt++) {
    const error = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
      server.once('error', resolve);
      server.listen(socket, () => {
        server.off('error', resolve);
        resolve(undefined);
      });
    });
    if (!error) return true;
    if (error.code !== 'EADDRINUSE') return false;
    const answered = await new Promise<boolean>((resolve) => {
      const probe = createConnection(socket);
      probe.once('connect', () => {
        probe.destroy();
        resolve(true);
      });
      probe.once('error', () => resolve(false));
    });
    if (answered) return false;
    try {
      unlinkSync(socket);
    } catch {
      return false;
    }
  }
  return false;
}
