// Resident mp, the client's half (the server's is src/resident/server.ts).
//
// A new `mp build` process spends some 120 ms before and after make that a process which already
// ran a build does not: starting Node, loading and linking mp, compiling Node's own modules, the
// first request to the engine. So a build run with a lease (MP_CONTAINER_LEASE, as warm toolchain
// containers are) leaves a resident mp behind: a detached Node process that has mp loaded and runs
// the next `mp build` commands of the same environment, each sent over a Unix socket with its
// arguments, folder and terminal, its output and exit code sent back. It ends when idle for the
// lease (or at once on `mp stop` / `mp clean`); when it is gone, killed, busy or out of date, the
// command runs in its own process as before, so nothing depends on it.
//
// Plain JavaScript, like mp.js: it runs before the bundle is loaded, and must cost little.
// Node's modules as mp.js takes them (getBuiltinModule: an import of each costs a millisecond).
const { lstatSync, mkdirSync } = process.getBuiltinModule('node:fs');
const { createConnection } = process.getBuiltinModule('node:net');
const { tmpdir } = process.getBuiltinModule('node:os');
const { join } = process.getBuiltinModule('node:path');
const { isatty } = process.getBuiltinModule('node:tty');

/** Part of every socket's name: a client and a server of different protocols never meet. */
const PROTOCOL = 1;
/** Variables that differ between two shells of one user without changing what a build does. */
const VOLATILE = new Set([
  '_',
  'PWD',
  'OLDPWD',
  'SHLVL',
  'MP_RESIDENT_SOCKET',
  'MP_RESIDENT_CODE',
  'MP_RESIDENT_WARMUP',
]);
/** Under the usual 104–108 bytes of a socket address, with room for the folder. */
const MAX_SOCKET_PATH = 100;

/**
 * This user's folder for resident sockets: `$XDG_RUNTIME_DIR/mp-<uid>`, else under the temp
 * folder. Undefined where it cannot be trusted (someone else's, or open to others: a socket there
 * runs builds as this user) and on Windows (no Unix sockets with owner-only folders).
 */
export function residentDir(env = process.env) {
  const uid = process.getuid?.();
  if (uid === undefined || process.platform === 'win32') return undefined;
  const dir = join(env.XDG_RUNTIME_DIR || tmpdir(), `mp-${uid}`);
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (error) {
    if (error.code !== 'EEXIST') return undefined;
  }
  const info = lstatSync(dir, { throwIfNoEntry: false });
  if (!info?.isDirectory() || info.uid !== uid || (info.mode & 0o077) !== 0) return undefined;
  return dir;
}

/**
 * The socket of the resident mp for this code (`codeId`: the bundle's folder, or the installed
 * dist) and this environment: a build sees the same variables in the resident process as in its
 * own, because a resident process only ever serves the environment it was started with.
 */
export function residentSocket(dir, codeId, env = process.env) {
  const entries = Object.entries(env)
    .filter(([name]) => !VOLATILE.has(name))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const key = [PROTOCOL, codeId, process.execPath, process.version, process.getuid?.()]
    .concat(entries.map(([name, value]) => `${name}=${value}`))
    .join('\0');
  const path = join(dir, `${hash64(key)}.sock`);
  return path.length <= MAX_SOCKET_PATH ? path : undefined;
}

/** FNV-1a in two 32-bit halves: enough to tell environments apart, and no crypto module to load. */
function hash64(text) {
  let a = 0x811c9dc5;
  let b = 0xcbf29ce4;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193) >>> 0;
    b = Math.imul(b ^ c ^ (a >>> 7), 0x01000193) >>> 0;
  }
  return a.toString(16).padStart(8, '0') + b.toString(16).padStart(8, '0');
}

/**
 * What the resident process needs to know of this process's stdout (1) or stderr (2): whether it
 * is a terminal, and how wide. Told without making Node's stream for one that is not a terminal
 * (a pipe's costs a millisecond): that is made when there is output for it.
 */
function terminal(fd) {
  if (!isatty(fd)) return { isTTY: false };
  return { isTTY: true, columns: (fd === 2 ? process.stderr : process.stdout).columns };
}

/**
 * Runs the command in the resident mp at `socket`: `{ code }`, its exit code; or `{ declined }`
 * when it did not run there and the caller runs it itself: 'absent' (no resident process, or a
 * killed one's socket), 'retiring' (out of date or asked to stop: a new one is due), 'busy',
 * 'command' (one it does not serve), 'folder' (it cannot enter the client's). `onStreamError`
 * handles an error of stdout or stderr (a closed pipe), once either is written to.
 */
export function runInResident(socket, argv, onStreamError) {
  const streams = new Map();
  const stream = (fd) => {
    let out = streams.get(fd);
    if (!out) {
      out = fd === 2 ? process.stderr : process.stdout;
      if (onStreamError) out.on('error', onStreamError);
      streams.set(fd, out);
    }
    return out;
  };
  return new Promise((resolve) => {
    const connection = createConnection(socket);
    let accepted = false;
    let finished = false;
    let interrupts = 0;
    let buffered = '';
    const onSignal = (signal) => {
      interrupts++;
      // A second Ctrl-C means "now"; the resident process still cleans up the build it ran.
      if (interrupts > 1) process.exit(130);
      connection.write(`${JSON.stringify({ type: 'signal', signal })}\n`);
    };
    const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'];
    const finish = (outcome) => {
      if (finished) return;
      finished = true;
      for (const signal of signals) process.off(signal, onSignal);
      // All was said (the exit code comes last): waiting for the server's end would only delay ours.
      connection.destroy();
      resolve(outcome);
    };
    connection.on('error', () => {
      // Before it accepted: nothing ran. After: 'close' says so.
      if (!accepted) finish({ declined: 'absent' });
    });
    connection.on('connect', () => {
      const request = {
        type: 'run',
        argv,
        cwd: process.cwd(),
        pwd: process.env.PWD,
        oldpwd: process.env.OLDPWD,
        stdout: terminal(1),
        stderr: terminal(2),
      };
      connection.write(`${JSON.stringify(request)}\n`);
    });
    connection.on('data', (chunk) => {
      buffered += chunk;
      let end = buffered.indexOf('\n');
      while (end >= 0) {
        const message = JSON.parse(buffered.slice(0, end));
        buffered = buffered.slice(end + 1);
        end = buffered.indexOf('\n');
        if (message.type === 'accepted') {
          accepted = true;
          for (const signal of signals) process.on(signal, onSignal);
        } else if (message.type === 'declined') {
          finish({ declined: message.reason });
        } else if (message.type === 'out') {
          stream(message.fd === 2 ? 2 : 1).write(message.text ?? Buffer.from(message.base64, 'base64'));
        } else if (message.type === 'exit') {
          // Written out already (what is still queued, on a slow pipe, waits for the natural end).
          const drained = [...streams.values()].every((out) => out.writableLength === 0);
          finish({ code: message.code, drained });
        }
      }
    });
    connection.on('close', () => {
      if (!accepted) return finish({ declined: 'absent' });
      if (finished) return;
      process.stderr.write(
        'mp: the resident mp process that ran this command ended in the middle of it (see the log beside its socket, ' +
          `${socket}.log). Run the command again: it runs in its own process if no resident one is left.\n`,
      );
      finish({ code: 1 });
    });
  });
}

/**
 * Starts a resident mp for `socket` when this process exits, detached, with this process's
 * environment; it loads mp while the user edits, and serves the next build. `argv` and the folder
 * are this command's: the resident process warms up on them (src/resident/server.ts).
 */
export function startResidentOnExit(socket, dir, codeId, argv) {
  // Loaded here, not above: most runs connect to a resident process and start none.
  const { spawn } = process.getBuiltinModule('node:child_process');
  const { fileURLToPath } = process.getBuiltinModule('node:url');
  process.once('exit', () => {
    try {
      spawn(process.execPath, [fileURLToPath(new URL('mp.js', import.meta.url))], {
        detached: true,
        stdio: 'ignore',
        cwd: dir,
        env: {
          ...process.env,
          MP_RESIDENT_SOCKET: socket,
          MP_RESIDENT_CODE: codeId,
          MP_RESIDENT_WARMUP: JSON.stringify({ argv, cwd: process.cwd() }),
        },
      }).unref();
    } catch {
      // Without one the next build runs in its own process.
    }
  });
}
