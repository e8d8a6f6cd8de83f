/**
 * The firmware cache's remote backend (config `cache.remote`): a server of the Turborepo remote
 * cache HTTP API, which teams already run (Vercel, or open-source servers such as
 * ducktors/turborepo-remote-cache over local disk, S3, GCS or Azure), so a firmware one machine
 * built is a hit on every other:
 *
 *   GET  <url>/v8/artifacts/<firmwareKey>?slug=<team>   the artifact, 404 when there is none
 *   PUT  <url>/v8/artifacts/<firmwareKey>?slug=<team>   store one (application/octet-stream)
 *   with `Authorization: Bearer <token>`; a team that starts with `team_` goes as `teamId=`.
 *
 * The artifact is the local entry as it is on disk (firmware-cache.ts): a gzipped tar of
 * `entry.json` and the artifact files. A tar because it is self-describing and any `tar tzf`
 * reads it, and because tar-stream is already one of core's dependencies (the remote-engine
 * copies use it); written with fixed times and owners, so equal keys give equal bytes.
 *
 * Nothing from the server is trusted: an artifact is a hit only when its entry names this very
 * key and every file it lists is there with its sha256 and size; anything else (damaged, foreign,
 * not a tar) is a miss with a warning, never a wrong firmware. Unpacked files are only read into
 * memory and handed to storeFirmware, which writes them under names of its own, never the tar's.
 *
 * Failures are warnings, never a failed build: an unreachable or slow server (5 s to answer), a
 * refused token, an upload the server turns down. The token goes only into the Authorization
 * header: never into a message, the sidecar or the log, and the URL is shown without credentials
 * or query.
 */
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';
import type tar from 'tar-stream';
import { describeError, MpError } from '../errors.ts';
import { sha256Hex } from '../util/hash.ts';
import {
  type CachedFirmware,
  type FirmwareCacheEntry,
  findCachedFirmware,
  storeFirmware,
} from './firmware-cache.ts';

/** The remote cache a build uses: config `cache.remote` under MP_REMOTE_CACHE_URL/_TEAM/_TOKEN/_WRITE. */
export interface RemoteCacheSettings {
  url: string;
  /** The team (slug, or a `team_…` id) artifacts are kept under; some servers require one. */
  team?: string;
  token?: string;
  /** Upload what this machine compiles (default true; CI jobs that only read set false). */
  write: boolean;
}

/** How long the server has to answer (connect and headers) before the build goes on without it. */
export const REMOTE_CACHE_ANSWER_MS = 5_000;
/** Time for a download's body, and for a whole upload (after a lookup that reached the server). */
const TRANSFER_MS = 60_000;
/** No firmware entry comes near this; a larger answer is not one of mp's artifacts. */
const MAX_ARTIFACT_BYTES = 256 * 1024 * 1024;
/** What an entry's files are called (storeFirmware's names); other tar members are ignored. */
const ENTRY_FILE = /^[A-Za-z0-9_.-]+$/;

export interface RemoteCacheOptions {
  /** Default {@link REMOTE_CACHE_ANSWER_MS}. */
  answerMs?: number;
  /** Default {@link TRANSFER_MS}. */
  transferMs?: number;
  fetch?: typeof fetch;
}

export type RemoteLookup =
  /** Stored in the local cache and checked there: `cached` points at the local files. */
  | { kind: 'hit'; cached: CachedFirmware }
  /** None, or none usable (`warning` says why: a damaged or foreign artifact). An upload may follow. */
  | { kind: 'miss'; warning?: string }
  /** The server did not answer, or refused the token: no upload is tried either. */
  | { kind: 'unavailable'; warning: string };

/**
 * The remote cache of config `cache.remote`, each key under its environment variable (env wins, as
 * for every key of mp's config); none without a URL. MP_REMOTE_CACHE_WRITE=0|false turns uploads off.
 */
export function resolveRemoteCache(
  config: { url?: string; team?: string; token?: string; write?: boolean } | undefined,
  env: NodeJS.ProcessEnv,
): RemoteCacheSettings | undefined {
  const fromEnv = (name: string) => env[name]?.trim() || undefined;
  const url = fromEnv('MP_REMOTE_CACHE_URL') ?? config?.url;
  if (!url) return undefined;
  if (!isHttpUrl(url)) {
    throw new MpError({
      code: 'REMOTE_CACHE_URL_INVALID',
      message: `The remote cache URL ${JSON.stringify(shownUrl(url))} (MP_REMOTE_CACHE_URL or cache.remote.url) is not an http:// or https:// URL`,
      hint: 'Set it to the remote cache server’s address, e.g. https://cache.example.com, or unset it.',
      exitCode: 2,
    });
  }
  const write = fromEnv('MP_REMOTE_CACHE_WRITE')?.toLowerCase();
  return {
    url,
    team: fromEnv('MP_REMOTE_CACHE_TEAM') ?? config?.team,
    token: fromEnv('MP_REMOTE_CACHE_TOKEN') ?? config?.token,
    write: write === undefined ? (config?.write ?? true) : !['0', 'false', 'no', 'off'].includes(write),
  };
}

export function isHttpUrl(url: string): boolean {
  try {
    return ['http:', 'https:'].includes(new URL(url).protocol);
  } catch {
    return false;
  }
}

/** The server's address as messages show it: no user, password, query or fragment. */
export function shownUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname.replace(/\/$/, '')}`;
  } catch {
    return url.replace(/\/\/[^/@]*@/, '//').replace(/[?#].*$/, '');
  }
}

/**
 * Asks the remote cache for `key`. A hit is checked, stored in the local cache at `cacheDir`
 * (bounded by `maxBytes`) and handed out from there.
 */
export async function findRemoteFirmware(
  remote: RemoteCacheSettings,
  cacheDir: string,
  key: string,
  maxBytes: number,
  options: RemoteCacheOptions = {},
): Promise<RemoteLookup> {
  const where = `The remote firmware cache ${shownUrl(remote.url)}`;
  const answer = await request(remote, 'GET', key, undefined, options);
  if ('failed' in answer) {
    return { kind: 'unavailable', warning: `${where} ${answer.failed}; building without it.` };
  }
  let files: Map<string, Buffer>;
  try {
    const { response } = answer;
    if (response.status === 404) {
      await response.body?.cancel().catch(() => undefined);
      return { kind: 'miss' };
    }
    if (!response.ok) {
      const why = await refusal(response, remote);
      return { kind: 'unavailable', warning: `${where} ${why}; building without it.` };
    }
    files = await unpackEntry(await readBody(response, answer.transfer));
  } catch (error) {
    if (error instanceof TransferError) {
      return { kind: 'unavailable', warning: `${where} ${error.message}; building without it.` };
    }
    return { kind: 'miss', warning: damaged(where, key, `not a firmware archive: ${describeError(error)}`) };
  } finally {
    answer.done();
  }
  const checked = checkEntry(files, key);
  if (typeof checked === 'string') return { kind: 'miss', warning: damaged(where, key, checked) };

  try {
    const { entry } = checked;
    await storeFirmware(
      cacheDir,
      key,
      {
        artifacts: checked.files,
        submodules: entry.submodules,
        builtAt: entry.builtAt,
        durationMs: entry.durationMs,
      },
      maxBytes,
    );
  } catch (error) {
    return {
      kind: 'miss',
      warning: `${where} had this firmware, but it could not be kept in mp's firmware cache (${describeError(error)}); building it.`,
    };
  }
  const cached = await findCachedFirmware(cacheDir, key);
  if (!cached)
    return {
      kind: 'miss',
      warning: `${where} had this firmware, but mp's firmware cache lost it; building it.`,
    };
  return { kind: 'hit', cached: { ...cached, source: 'remote' } };
}

/**
 * Uploads the local cache's entry for `key` (checked again on the way) to the remote cache. Returns
 * a warning when it did not get there; nothing when it did.
 */
export async function uploadFirmware(
  remote: RemoteCacheSettings,
  cacheDir: string,
  key: string,
  options: RemoteCacheOptions = {},
): Promise<{ uploaded: boolean; bytes: number; warning?: string }> {
  const where = `The firmware was not uploaded to the remote firmware cache ${shownUrl(remote.url)}`;
  const local = await findCachedFirmware(cacheDir, key);
  if (!local) return { uploaded: false, bytes: 0, warning: `${where}: it is not in mp's firmware cache.` };
  const body = await packEntry(local);
  // What the build took, as turbo sends it (servers show the time a hit saves).
  const headers = { 'x-artifact-duration': String(Math.round(local.entry.durationMs)) };
  const answer = await request(
    remote,
    'PUT',
    key,
    { body, headers },
    {
      ...options,
      // An upload's answer comes when its body is in: it gets the transfer time.
      answerMs: options.transferMs ?? TRANSFER_MS,
    },
  );
  if ('failed' in answer) return { uploaded: false, bytes: 0, warning: `${where} (it ${answer.failed}).` };
  try {
    const { response } = answer;
    if (!response.ok) {
      return { uploaded: false, bytes: 0, warning: `${where} (it ${await refusal(response, remote)}).` };
    }
    await response.body?.cancel().catch(() => undefined);
    return { uploaded: true, bytes: body.length };
  } finally {
    answer.done();
  }
}

/** The local entry as the remote artifact: entry.json and its files, a gzipped tar. */
export async function packEntry(cached: CachedFirmware): Promise<Buffer> {
  const { pack: newPack } = await loadTarStream();
  const pack = newPack();
  const chunks: Buffer[] = [];
  const finished = new Promise<void>((done, fail) => {
    pack.on('data', (chunk) => chunks.push(chunk as Buffer));
    pack.on('end', () => done());
    pack.on('error', fail);
  });
  const fixed = { mtime: new Date(0), mode: 0o644, uid: 0, gid: 0, uname: '', gname: '' };
  pack.entry({ ...fixed, name: 'entry.json' }, `${JSON.stringify(cached.entry, null, 2)}\n`);
  for (const [name, artifact] of Object.entries(cached.entry.artifacts))
    pack.entry({ ...fixed, name: artifact.file }, await readFile(cached.artifacts[name]!));
  pack.finalize();
  await finished;
  return promisify(gzip)(Buffer.concat(chunks));
}

/** The plain files of an artifact by name (at most {@link MAX_ARTIFACT_BYTES} unpacked). */
export async function unpackEntry(data: Buffer): Promise<Map<string, Buffer>> {
  const { extract: newExtract } = await loadTarStream();
  const raw = await promisify(gunzip)(data, { maxOutputLength: MAX_ARTIFACT_BYTES });
  const extract = newExtract();
  extract.end(raw);
  const files = new Map<string, Buffer>();
  for await (const member of extract) {
    const chunks: Buffer[] = [];
    for await (const chunk of member) chunks.push(chunk as Buffer);
    const { name, type } = member.header;
    if (type === 'file' && ENTRY_FILE.test(name) && !files.has(name)) files.set(name, Buffer.concat(chunks));
  }
  return files;
}

/** The entry for `key` with each of its files, all checked; or why the archive is not that. */
function checkEntry(
  files: Map<string, Buffer>,
  key: string,
): { entry: FirmwareCacheEntry; files: Record<string, Buffer> } | string {
  const json = files.get('entry.json');
  if (!json) return 'it has no entry.json';
  let entry: FirmwareCacheEntry;
  try {
    entry = JSON.parse(json.toString('utf8')) as FirmwareCacheEntry;
  } catch {
    return 'its entry.json is not JSON';
  }
  if (entry?.key !== key) return `it is the entry of another key (${String(entry?.key).slice(0, 16)})`;
  const listed =
    entry.artifacts && typeof entry.artifacts === 'object' ? Object.entries(entry.artifacts) : [];
  if (!listed.length) return 'its entry lists no files';
  if (!Array.isArray(entry.submodules) || typeof entry.builtAt !== 'string') return 'its entry is incomplete';
  const out: Record<string, Buffer> = {};
  for (const [name, artifact] of listed) {
    const data = typeof artifact?.file === 'string' ? files.get(artifact.file) : undefined;
    if (!data) return `${name} is missing`;
    if (data.length !== artifact.size || sha256Hex(data) !== artifact.sha256)
      return `${artifact.file} does not match its sha256`;
    out[name] = data;
  }
  return { entry: { ...entry, durationMs: Number(entry.durationMs) || 0 }, files: out };
}

function damaged(where: string, key: string, why: string): string {
  return `${where} sent a damaged or foreign artifact for ${key.slice(0, 16)} (${why}); it is not used, the firmware is built.`;
}

class TransferError extends Error {}

type Answer = { response: Response; transfer: AbortSignal; done: () => void } | { failed: string };

/** One request with the answer time, then the transfer time for the body; `failed` says why none came. */
async function request(
  remote: RemoteCacheSettings,
  method: 'GET' | 'PUT',
  key: string,
  upload: { body: Buffer; headers: Record<string, string> } | undefined,
  options: RemoteCacheOptions,
): Promise<Answer> {
  const answerMs = options.answerMs ?? REMOTE_CACHE_ANSWER_MS;
  const controller = new AbortController();
  let timer = setTimeout(() => controller.abort(), answerMs);
  const headers: Record<string, string> = { ...upload?.headers };
  if (remote.token) headers.authorization = `Bearer ${remote.token}`;
  if (upload) headers['content-type'] = 'application/octet-stream';
  const body = upload?.body;
  try {
    const response = await (options.fetch ?? fetch)(artifactUrl(remote, key), {
      method,
      headers,
      body: body ? new Uint8Array(body) : undefined,
      signal: controller.signal,
      redirect: 'follow',
    });
    clearTimeout(timer);
    timer = setTimeout(() => controller.abort(), options.transferMs ?? TRANSFER_MS);
    return { response, transfer: controller.signal, done: () => clearTimeout(timer) };
  } catch (error) {
    clearTimeout(timer);
    if (controller.signal.aborted) return { failed: `did not answer within ${formatMs(answerMs)}` };
    return { failed: `is unreachable (${networkReason(error)})` };
  }
}

function artifactUrl(remote: RemoteCacheSettings, key: string): string {
  const url = new URL(`v8/artifacts/${encodeURIComponent(key)}`, remote.url.replace(/\/*$/, '/'));
  if (remote.team) url.searchParams.set(remote.team.startsWith('team_') ? 'teamId' : 'slug', remote.team);
  return url.href;
}

/** The body, at most {@link MAX_ARTIFACT_BYTES}, within the transfer time. */
async function readBody(response: Response, transfer: AbortSignal): Promise<Buffer> {
  const declared = Number(response.headers.get('content-length'));
  if (declared > MAX_ARTIFACT_BYTES) {
    await response.body?.cancel().catch(() => undefined);
    throw new Error(`it is ${declared} bytes`);
  }
  try {
    const data = Buffer.from(await response.arrayBuffer());
    if (data.length > MAX_ARTIFACT_BYTES) throw new Error(`it is ${data.length} bytes`);
    return data;
  } catch (error) {
    if (transfer.aborted)
      throw new TransferError(`did not send the artifact within ${formatMs(TRANSFER_MS)}`);
    throw error;
  }
}

/** What a refusal says: the token refused (401/403), or the status and the server's own message. */
async function refusal(response: Response, remote: RemoteCacheSettings): Promise<string> {
  const said = await serverMessage(response, remote);
  if (response.status === 401 || response.status === 403) {
    const token = remote.token ? 'refused the token' : 'wants a token and none is set';
    return `${token} (HTTP ${response.status}${said ? `: ${said}` : ''}); set MP_REMOTE_CACHE_TOKEN or cache.remote.token to one it accepts`;
  }
  return `answered HTTP ${response.status}${said ? `: ${said}` : ''}${response.status === 400 && !remote.team ? ' (it may want a team: cache.remote.team or MP_REMOTE_CACHE_TEAM)' : ''}`;
}

/** The `message` of a JSON error body, or the start of a text one; never the token. */
async function serverMessage(response: Response, remote: RemoteCacheSettings): Promise<string> {
  let text = '';
  try {
    text = (await response.text()).slice(0, 2000);
  } catch {
    return '';
  }
  let said = text;
  try {
    const json = JSON.parse(text) as { message?: unknown; error?: unknown };
    said = String(json.message ?? json.error ?? '');
  } catch {}
  said = said.replace(/\s+/g, ' ').trim().slice(0, 200);
  if (remote.token) said = said.split(remote.token).join('…');
  return said;
}

function networkReason(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } })?.cause;
  return cause?.code ?? cause?.message ?? describeError(error);
}

function formatMs(ms: number): string {
  return ms >= 1000 ? `${ms / 1000} s` : `${ms} ms`;
}

let tarStream: Promise<typeof tar> | undefined;

/** tar-stream, imported on first use: core's index must not load it (see lazy-imports.test.ts). */
function loadTarStream(): Promise<typeof tar> {
  tarStream ??= import('tar-stream').then((module) => module.default);
  return tarStream;
}
