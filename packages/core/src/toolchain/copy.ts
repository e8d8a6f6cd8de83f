/**
 * Engines that cannot see this machine's files (a remote `DOCKER_HOST` such as ssh://buildhost):
 * sources are copied into named volumes with tar (the engine unpacks them), incrementally: only
 * files whose size or modification time changed since the last copy travel, and times are kept,
 * so make stays incremental from one build to the next. Artifacts come back the same way.
 */
import type { Dirent } from 'node:fs';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join, posix, relative, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type tar from 'tar-stream';
import type { DockerContainer } from './container.ts';
import { parseDockerHost } from './engine.ts';
import type { CopyInOptions } from './toolchain.ts';

let tarStream: Promise<typeof tar> | undefined;

/** tar-stream, imported on first copy: only engines that cannot see this machine's files need it. */
function loadTarStream(): Promise<typeof tar> {
  tarStream ??= import('tar-stream').then((module) => module.default);
  return tarStream;
}

/** How sources reach the toolchain container: bind mounts (the engine shares this machine's files) or copies. */
export type MountMode = 'bind' | 'copy';

/**
 * `bind` for engines on this machine (the default socket, unix://, npipe://, tcp://localhost, and
 * Docker Desktop, which shares the user's files); `copy` for any other host. `MP_DOCKER_MOUNTS=bind|copy`
 * decides instead (an engine on another host that mounts the same paths over NFS can use bind).
 */
export function mountModeFor(env: NodeJS.ProcessEnv = process.env): MountMode {
  const forced = env.MP_DOCKER_MOUNTS?.trim();
  if (forced === 'bind' || forced === 'copy') return forced;
  return parseDockerHost(env).local ? 'bind' : 'copy';
}

/** What was copied last time: relative path → [size, mtime ms, mode]. Kept inside the volume itself. */
interface SyncState {
  fingerprint?: string;
  files: Record<string, [number, number, number]>;
}

const STATE_FILE = '.mp-sync-state.json';
const REMOVE_LIST = '.mp-sync-remove';
const SKIPPED = new Set(['.git', 'node_modules', '__pycache__']);

interface HostEntry {
  rel: string;
  full: string;
  size: number;
  mtimeMs: number;
  mode: number;
  symlink: boolean;
}

/** A file or folder that went between listing and reading: another process's temporary. */
function isGone(error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === 'ENOENT';
}

async function walk(root: string, skip: (rel: string) => boolean): Promise<HostEntry[]> {
  const out: HostEntry[] = [];
  const visit = async (dir: string) => {
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (error) {
      if (dir !== root && isGone(error)) return;
      throw error;
    }
    for (const entry of entries) {
      const full = join(dir, entry.name);
      const rel = relative(root, full).split(sep).join('/');
      if (SKIPPED.has(entry.name) || rel === STATE_FILE || skip(rel)) continue;
      if (entry.isDirectory()) await visit(full);
      else if (entry.isFile() || entry.isSymbolicLink()) {
        const info = await lstat(full).catch((error: unknown) => {
          if (isGone(error)) return undefined;
          throw error;
        });
        if (!info) continue;
        out.push({
          rel,
          full,
          size: info.size,
          mtimeMs: info.mtimeMs,
          mode: info.mode & 0o7777,
          symlink: entry.isSymbolicLink(),
        });
      }
    }
  };
  await visit(root);
  return out;
}

/** Reads one file from the container, or undefined if it is not there. */
export async function readContainerFile(
  container: DockerContainer,
  path: string,
): Promise<Buffer | undefined> {
  const tar = await loadTarStream();
  const stream = await container.getArchive(path);
  if (!stream) return undefined;
  const extract = tar.extract();
  // pipeline, not pipe: a download that breaks off (the engine went) ends the read with its error
  // instead of leaving it waiting for the rest; a read that stops early lets go of the download.
  const piping = pipeline(stream, extract as unknown as NodeJS.WritableStream);
  piping.catch(() => undefined);
  let content: Buffer | undefined;
  try {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      if (content === undefined && entry.header.type === 'file') content = Buffer.concat(chunks);
    }
  } catch (error) {
    (stream as Partial<Readable>).destroy?.();
    throw error;
  }
  await piping;
  return content;
}

/** Copies `containerPath` (a file) out of the container to `hostPath`; false if it does not exist. */
export async function copyFileOut(
  container: DockerContainer,
  containerPath: string,
  hostPath: string,
): Promise<boolean> {
  const data = await readContainerFile(container, containerPath);
  if (data === undefined) return false;
  const { mkdir, writeFile } = await import('node:fs/promises');
  await mkdir(join(hostPath, '..'), { recursive: true });
  await writeFile(hostPath, data);
  return true;
}

export interface SyncOptions extends CopyInOptions {
  /** `uid:gid` the copied files belong to (the user commands run as). */
  owner?: string;
}

/**
 * Makes `containerDir` hold what `hostDir` holds, sending only what changed since the last sync.
 * Files are unpacked as `options.owner`.
 */
export async function syncIntoContainer(
  container: DockerContainer,
  hostDir: string,
  containerDir: string,
  options: SyncOptions = {},
): Promise<{ copied: number; removed: number }> {
  const statePath = posix.join(containerDir, STATE_FILE);
  const previousText = await readContainerFile(container, statePath);
  const previous: SyncState = previousText
    ? (JSON.parse(previousText.toString('utf8')) as SyncState)
    : { files: {} };
  if (options.fingerprint && previous.fingerprint === options.fingerprint) return { copied: 0, removed: 0 };
  const entries = await walk(hostDir, options.skip ?? (() => false));
  const state: SyncState = { fingerprint: options.fingerprint, files: {} };
  const changed: HostEntry[] = [];
  for (const e of entries) {
    state.files[e.rel] = [e.size, e.mtimeMs, e.mode];
    const before = previous.files?.[e.rel];
    if (!before || before[0] !== e.size || before[1] !== e.mtimeMs || before[2] !== e.mode) changed.push(e);
  }
  if (options.prune === false) {
    // Files left in place stay known, so they are not sent again.
    for (const [rel, value] of Object.entries(previous.files ?? {})) state.files[rel] ??= value;
  }
  const removed =
    options.prune === false ? [] : Object.keys(previous.files ?? {}).filter((rel) => !(rel in state.files));
  if (changed.length === 0 && removed.length === 0 && previous.fingerprint === options.fingerprint)
    return { copied: 0, removed: 0 };

  const [uid = 0, gid = 0] = (options.owner ?? '0:0').split(':').map(Number);
  const tar = await loadTarStream();
  const pack = tar.pack();
  const dirs = new Set<string>();
  const putting = container.putArchive(pack as unknown as NodeJS.ReadableStream, containerDir);
  // An upload the engine refused reads no more: an entry waiting for room would wait forever.
  const refused = new Promise<never>((_, reject) => {
    putting.catch(reject);
  });
  refused.catch(() => undefined);
  const add = (entry: Partial<tar.Header> & { name: string }, data?: Buffer) =>
    Promise.race([
      new Promise<void>((resolve, reject) => {
        const header = { uid, gid, ...entry };
        const done = (error?: Error | null) => (error ? reject(error) : resolve());
        if (data) pack.entry(header, data, done);
        else pack.entry(header, done);
      }),
      refused,
    ]);
  let sent = 0;
  try {
    for (const e of changed) {
      // Read first: a file gone since the listing (another process's temporary) is left out.
      let content: { linkname: string } | { data: Buffer };
      try {
        content = e.symlink ? { linkname: await readlink(e.full) } : { data: await readFile(e.full) };
      } catch (error) {
        if (!isGone(error)) throw error;
        delete state.files[e.rel];
        continue;
      }
      // Parent folders first, so the engine creates them with sane modes.
      const parts = e.rel.split('/').slice(0, -1);
      for (let i = 1; i <= parts.length; i++) {
        const dir = parts.slice(0, i).join('/');
        if (dirs.has(dir)) continue;
        dirs.add(dir);
        await add({ name: `${dir}/`, type: 'directory', mode: 0o755, mtime: new Date(0) });
      }
      // A tar header holds whole seconds; the PAX record keeps the fraction. Without it a file edited
      // in the same second as its last compile would look older than its object, and not be rebuilt.
      const times = { mtime: new Date(e.mtimeMs), pax: { mtime: (e.mtimeMs / 1000).toFixed(6) } };
      if ('linkname' in content)
        await add({ name: e.rel, type: 'symlink', linkname: content.linkname, mode: e.mode, ...times });
      else await add({ name: e.rel, type: 'file', mode: e.mode, ...times }, content.data);
      sent += 1;
    }
    if (removed.length)
      await add({ name: REMOVE_LIST, type: 'file', mode: 0o644 }, Buffer.from(`${removed.join('\0')}\0`));
    await add({ name: STATE_FILE, type: 'file', mode: 0o644 }, Buffer.from(JSON.stringify(state)));
  } catch (error) {
    // The upload still ends (a shorter archive, and the old state file, so the next sync sends
    // what this one did not): left open, the engine would wait for the rest of it forever, with
    // the container busy, and removing the container would wait for that.
    pack.finalize();
    await putting.catch(() => undefined);
    throw error;
  }
  pack.finalize();
  await putting;
  if (removed.length) {
    await container.exec(`cd '${containerDir}' && xargs -0 rm -f -- < ${REMOVE_LIST}; rm -f ${REMOVE_LIST}`);
  }
  return { copied: sent, removed: removed.length };
}
