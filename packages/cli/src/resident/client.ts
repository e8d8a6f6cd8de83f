/**
 * What commands do about resident mp (bin/resident.js says what it is): a build with a lease asks
 * bin/mp.js to start one as it exits; `mp stop` and `mp clean` end them.
 */
import { readdir, unlink } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { join } from 'node:path';

/** Set by bin/mp.js when the code it runs can have a resident process (a bundle, an install). */
const STATE = Symbol.for('mp.resident');
interface ResidentState {
  codeId: string;
  /** A command asked for a resident mp after it (bin/mp.js starts one as it exits). */
  wanted?: boolean;
  /** This process is a resident mp (resident/server.ts). */
  serving?: boolean;
}
type WithState = { [STATE]?: ResidentState };

/** bin/resident.js, the client's half (plain JavaScript, loaded before the bundle). */
interface ResidentClient {
  residentDir(env?: NodeJS.ProcessEnv): string | undefined;
  residentSocket(dir: string, codeId: string, env?: NodeJS.ProcessEnv): string | undefined;
}
const CLIENT_URL = new URL('../../bin/resident.js', import.meta.url).href;

/** True in a resident mp: the command runs for a client (`mp build --json` says so as `resident`). */
export function inResident(): boolean {
  return (globalThis as WithState)[STATE]?.serving === true;
}

/** Marks this process as a resident mp (resident/server.ts; bin/mp.js set the state before). */
export function markResident(): void {
  const state = (globalThis as WithState)[STATE];
  if (state) state.serving = true;
}

/** Asks for a resident mp after this command, when it ran with a lease (MP_CONTAINER_LEASE). */
export function wantResident(leaseSeconds: number): void {
  const state = (globalThis as WithState)[STATE];
  if (state && leaseSeconds > 0) state.wanted = true;
}

/**
 * Ends resident mp processes: the one of this environment; with `all` every one of this user; with
 * `cacheDir` those whose mp cache it is (`mp clean --all` removes it under them; the others are
 * no business of it). Each ends after the command it is running, if any. Their number; sockets
 * nobody answers on (killed ones') are removed and not counted.
 */
export async function stopResidents(options: { all?: boolean; cacheDir?: string }): Promise<number> {
  const client = (await import(CLIENT_URL)) as ResidentClient;
  const dir = client.residentDir();
  if (!dir) return 0;
  let sockets: string[];
  if (options.all || options.cacheDir) {
    sockets = (await readdir(dir)).filter((name) => name.endsWith('.sock')).map((name) => join(dir, name));
  } else {
    const codeId = (globalThis as WithState)[STATE]?.codeId;
    const own = codeId && client.residentSocket(dir, codeId);
    sockets = own ? [own] : [];
  }
  const answers = await Promise.all(sockets.map((socket) => askToStop(socket, options.cacheDir)));
  return answers.filter(Boolean).length;
}

/** True when a resident process answered on `socket` and is ending. */
function askToStop(socket: string, cacheDir: string | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const connection = createConnection(socket);
    let answer = '';
    const timer = setTimeout(() => {
      connection.destroy();
      resolve(false);
    }, 5000);
    connection.setEncoding('utf8');
    connection.on('connect', () => connection.write(`${JSON.stringify({ type: 'stop', cacheDir })}\n`));
    connection.on('data', (chunk: string) => {
      answer += chunk;
    });
    connection.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      // A killed one's socket: nobody will answer on it again.
      if (error.code === 'ECONNREFUSED') void unlink(socket).catch(() => {});
      resolve(false);
    });
    connection.on('close', () => {
      clearTimeout(timer);
      resolve(answer.includes('"stopping"'));
    });
  });
}
