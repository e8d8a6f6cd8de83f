/**
 * The remote firmware cache's client on its own, against a small Turborepo-API server in this
 * process: given an entry one cache folder built, when another cache folder asks the server for its
 * key, then it gets the very files back and keeps them; and whatever the server sends that is not
 * that entry intact (damaged, foreign, not an archive), or no answer at all, is a miss with a
 * warning, never a wrong firmware, and never shows the token.
 */

import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tempProject } from '@mp/test-utils';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load.ts';
import { ValidationError } from '../src/errors.ts';
import { findCachedFirmware, firmwareCacheSize, storeFirmware } from '../src/firmware/firmware-cache.ts';
import {
  findRemoteFirmware,
  packEntry,
  type RemoteCacheSettings,
  resolveRemoteCache,
  shownUrl,
  unpackEntry,
  uploadFirmware,
} from '../src/firmware/remote-cache.ts';

const TOKEN = 'secret-token-123';
const KEY = 'a'.repeat(64);

interface Seen {
  method: string;
  url: string;
  authorization?: string;
  contentType?: string;
  duration?: string;
}

/** The artifacts API of a Turborepo remote cache: GET/PUT /v8/artifacts/:hash, Bearer tokens. */
class FakeServer {
  readonly artifacts = new Map<string, Buffer>();
  readonly seen: Seen[] = [];
  /** Answer this status to everything instead. */
  status: number | undefined;
  /** Never answer. */
  hang = false;
  private server: Server | undefined;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      void this.handle(req).then(({ status, body }) => {
        if (this.hang) return;
        res.writeHead(status, { 'content-type': 'application/octet-stream' });
        res.end(body);
      });
    });
    await new Promise<void>((done) => this.server!.listen(0, '127.0.0.1', done));
    this.url = `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
  }

  private async handle(req: IncomingMessage): Promise<{ status: number; body?: Buffer | string }> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    this.seen.push({
      method: req.method!,
      url: req.url!,
      authorization: req.headers.authorization,
      contentType: req.headers['content-type'],
      duration: req.headers['x-artifact-duration'] as string | undefined,
    });
    if (this.status) return { status: this.status, body: JSON.stringify({ message: 'nope' }) };
    if (req.headers.authorization !== `Bearer ${TOKEN}`)
      return { status: 401, body: JSON.stringify({ message: `Invalid authorization token` }) };
    const path = new URL(req.url!, 'http://x').pathname;
    if (req.method === 'PUT') {
      this.artifacts.set(path, Buffer.concat(chunks));
      return { status: 200, body: '{}' };
    }
    const found = this.artifacts.get(path);
    return found ? { status: 200, body: found } : { status: 404, body: '{"message":"Artifact not found"}' };
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((done) => this.server?.close(() => done()) ?? done());
  }
}

const server = new FakeServer();
beforeAll(() => server.start());
afterAll(() => server.stop());
beforeEach(() => {
  server.artifacts.clear();
  server.seen.length = 0;
  server.status = undefined;
  server.hang = false;
});

function remote(overrides: Partial<RemoteCacheSettings> = {}): RemoteCacheSettings {
  return { url: server.url, team: 'firmware', token: TOKEN, write: true, ...overrides };
}

/** Two cache folders ("machines"); the first holds an entry for KEY with two artifacts. */
async function machines() {
  const dir = tempProject();
  const a = dir.path('cache-a');
  const b = dir.path('cache-b');
  const artifacts = {
    firmware: dir.write('build/firmware.bin', Buffer.alloc(3000, 7)),
    bootloader: dir.write('build/boot.bin', Buffer.alloc(500, 9)),
  };
  await storeFirmware(
    a,
    KEY,
    { artifacts, submodules: ['lib/axtls'], builtAt: '2026-01-01T00:00:00.000Z', durationMs: 4321 },
    10_000_000,
  );
  return { a, b };
}

const artifactPath = `/v8/artifacts/${KEY}`;

describe('the remote firmware cache', () => {
  it('gives a second cache folder the entry the first one uploaded, and keeps it there', async () => {
    const { a, b } = await machines();
    expect(await findRemoteFirmware(remote(), b, KEY, 10_000_000)).toEqual({ kind: 'miss' });
    const sent = await uploadFirmware(remote(), a, KEY);
    expect(sent).toMatchObject({ uploaded: true });
    expect(sent.warning).toBeUndefined();

    const found = await findRemoteFirmware(remote(), b, KEY, 10_000_000);
    expect(found.kind).toBe('hit');
    if (found.kind !== 'hit') return;
    expect(found.cached.source).toBe('remote');
    expect(found.cached.entry).toMatchObject({ key: KEY, submodules: ['lib/axtls'], durationMs: 4321 });
    expect(found.cached.artifacts.firmware!.startsWith(b)).toBe(true);
    expect(readFileSync(found.cached.artifacts.firmware!)).toEqual(Buffer.alloc(3000, 7));
    expect(readFileSync(found.cached.artifacts.bootloader!)).toEqual(Buffer.alloc(500, 9));
    // Now a local hit in the second folder, with no temporaries left beside it.
    expect((await findCachedFirmware(b, KEY))?.source).toBe('local');
    expect(await firmwareCacheSize(b)).toMatchObject({ entries: 1 });

    // The Turborepo API: the key under /v8/artifacts, the team as slug, the token as Bearer.
    expect(server.seen.map((s) => `${s.method} ${s.url}`)).toEqual([
      `GET ${artifactPath}?slug=firmware`,
      `PUT ${artifactPath}?slug=firmware`,
      `GET ${artifactPath}?slug=firmware`,
    ]);
    expect(server.seen.every((s) => s.authorization === `Bearer ${TOKEN}`)).toBe(true);
    expect(server.seen[1]).toMatchObject({ contentType: 'application/octet-stream', duration: '4321' });
  });

  it('sends a team_ id as teamId, and packs equal entries into equal bytes', async () => {
    const { a } = await machines();
    await uploadFirmware(remote({ team: 'team_abc' }), a, KEY);
    expect(server.seen[0]!.url).toBe(`${artifactPath}?teamId=team_abc`);
    const local = (await findCachedFirmware(a, KEY))!;
    expect((await packEntry(local)).equals(await packEntry(local))).toBe(true);
    expect([...(await unpackEntry(await packEntry(local))).keys()].sort()).toEqual([
      'bootloader.bin',
      'entry.json',
      'firmware.bin',
    ]);
  });

  it('treats a damaged download as a miss with a warning, and keeps nothing', async () => {
    const { a, b } = await machines();
    const local = (await findCachedFirmware(a, KEY))!;
    // A firmware file whose bytes are not the ones its entry's sha256 names.
    writeFileSync(local.artifacts.firmware!, Buffer.alloc(3000, 8));
    server.artifacts.set(artifactPath, await packEntry(local));
    const found = await findRemoteFirmware(remote(), b, KEY, 10_000_000);
    expect(found).toEqual({ kind: 'miss', warning: expect.stringContaining('damaged or foreign artifact') });
    expect(found.kind === 'miss' && found.warning).toContain('firmware.bin does not match its sha256');
    expect(await firmwareCacheSize(b)).toEqual({ entries: 0, bytes: 0 });
  });

  it('treats another key’s entry and a body that is no archive as misses with a warning', async () => {
    const { a, b } = await machines();
    server.artifacts.set(
      `/v8/artifacts/${'b'.repeat(64)}`,
      await packEntry((await findCachedFirmware(a, KEY))!),
    );
    const foreign = await findRemoteFirmware(remote(), b, 'b'.repeat(64), 10_000_000);
    expect(foreign.kind === 'miss' && foreign.warning).toContain('the entry of another key');

    server.artifacts.set(artifactPath, Buffer.from('<html>a proxy page</html>'));
    const garbage = await findRemoteFirmware(remote(), b, KEY, 10_000_000);
    expect(garbage.kind === 'miss' && garbage.warning).toContain('not a firmware archive');
    expect(await firmwareCacheSize(b)).toEqual({ entries: 0, bytes: 0 });
  });

  it('says a refused token is refused, without showing it, and leaves the upload out', async () => {
    const { a, b } = await machines();
    const wrong = remote({ token: 'wrong-token-456' });
    const found = await findRemoteFirmware(wrong, b, KEY, 10_000_000);
    expect(found.kind).toBe('unavailable');
    const warning = found.kind === 'unavailable' ? found.warning : '';
    expect(warning).toContain(`The remote firmware cache ${server.url} refused the token (HTTP 401`);
    expect(warning).toContain('MP_REMOTE_CACHE_TOKEN');
    expect(warning).not.toContain('wrong-token-456');

    const none = await findRemoteFirmware(remote({ token: undefined }), b, KEY, 10_000_000);
    expect(none.kind === 'unavailable' && none.warning).toContain('wants a token and none is set');

    server.status = 400;
    const teamless = await findRemoteFirmware(remote({ team: undefined }), b, KEY, 10_000_000);
    expect(teamless.kind === 'unavailable' && teamless.warning).toContain(
      'answered HTTP 400: nope (it may want a team: cache.remote.team or MP_REMOTE_CACHE_TEAM)',
    );

    server.status = 403;
    const upload = await uploadFirmware(remote(), a, KEY);
    expect(upload.uploaded).toBe(false);
    expect(upload.warning).toContain('was not uploaded');
    expect(upload.warning).toContain('refused the token (HTTP 403: nope)');
    expect(upload.warning).not.toContain(TOKEN);
  });

  it('goes on without a server that is not there or does not answer', async () => {
    const { b } = await machines();
    const gone = new FakeServer();
    await gone.start();
    await gone.stop();
    const unreachable = await findRemoteFirmware(remote({ url: gone.url }), b, KEY, 10_000_000);
    expect(unreachable).toEqual({
      kind: 'unavailable',
      warning: `The remote firmware cache ${gone.url} is unreachable (ECONNREFUSED); building without it.`,
    });

    server.hang = true;
    const started = Date.now();
    const slow = await findRemoteFirmware(remote(), b, KEY, 10_000_000, { answerMs: 300 });
    expect(slow.kind === 'unavailable' && slow.warning).toContain('did not answer within 300 ms');
    expect(Date.now() - started).toBeLessThan(3000);
  });
});

describe('cache.remote settings', () => {
  it('take each key from the environment over the config, and need a URL', () => {
    const config = { url: 'https://config.example.com', team: 't1', token: 'from-config', write: false };
    expect(resolveRemoteCache(undefined, {})).toBeUndefined();
    expect(resolveRemoteCache({ team: 't1' }, {})).toBeUndefined();
    expect(resolveRemoteCache(config, {})).toEqual(config);
    expect(
      resolveRemoteCache(config, {
        MP_REMOTE_CACHE_URL: 'http://env.example.com:3000',
        MP_REMOTE_CACHE_TOKEN: 'from-env',
        MP_REMOTE_CACHE_TEAM: 't2',
        MP_REMOTE_CACHE_WRITE: 'true',
      }),
    ).toEqual({ url: 'http://env.example.com:3000', team: 't2', token: 'from-env', write: true });
    expect(
      resolveRemoteCache(undefined, { MP_REMOTE_CACHE_URL: 'http://h', MP_REMOTE_CACHE_WRITE: '0' }),
    ).toEqual({
      url: 'http://h',
      write: false,
    });
    expect(() => resolveRemoteCache(undefined, { MP_REMOTE_CACHE_URL: 'cache.example.com' })).toThrow(
      expect.objectContaining({ code: 'REMOTE_CACHE_URL_INVALID' }),
    );
  });

  it('reach the resolved config: the file under the environment; a bad URL is a config error with its key', async () => {
    const project = tempProject({
      'mp.config.json': JSON.stringify({
        cache: { maxSize: '1GB', remote: { url: 'https://cache.example.com', team: 'fw' } },
      }),
    });
    const plain = await loadConfig({ projectDir: project.dir, env: {} });
    expect(plain.cache).toEqual({
      maxSize: '1GB',
      remote: { url: 'https://cache.example.com', team: 'fw', write: true },
    });
    const ci = await loadConfig({
      projectDir: project.dir,
      env: { MP_REMOTE_CACHE_TOKEN: 'ci-token', MP_REMOTE_CACHE_WRITE: 'false' },
    });
    expect(ci.cache.remote).toEqual({
      url: 'https://cache.example.com',
      team: 'fw',
      token: 'ci-token',
      write: false,
    });
    expect((await loadConfig({ projectDir: tempProject().dir, env: {} })).cache.remote).toBeUndefined();

    const bad = tempProject({
      'mp.config.json': JSON.stringify({ cache: { remote: { url: 'ftp://x', wrte: true } } }),
    });
    const error = await loadConfig({ projectDir: bad.dir, env: {} }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).issues.map((i) => i.path)).toEqual([
      'cache.remote.url',
      'cache.remote.wrte',
    ]);
  });

  it('show the server without credentials or query', () => {
    expect(shownUrl('https://user:pw@cache.example.com/api/?token=x#y')).toBe(
      'https://cache.example.com/api',
    );
    expect(shownUrl('http://127.0.0.1:3000/')).toBe('http://127.0.0.1:3000');
  });
});
