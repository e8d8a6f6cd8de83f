/**
 * Copy mode's sync of a host folder into a container (toolchain/copy.ts), against a fake container
 * that unpacks what it is sent. Given a shared MicroPython tree that another target's fetch is
 * changing meanwhile, when a file goes between the listing and the read, then it is left out and
 * the rest arrives; when a read fails otherwise, then the error comes back and the upload still
 * ends (an unfinished archive kept the engine, and `docker rm` of the container, waiting forever).
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { tempProject } from '@mp/test-utils';
import { extract, pack } from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { isTreeTemporary } from '../src/sources/cache-housekeeping.ts';
import type { DockerContainer } from '../src/toolchain/container.ts';
import { readContainerFile, syncIntoContainer } from '../src/toolchain/copy.ts';

/** A container that unpacks each archive it gets; `beforeRead` runs as the upload starts. */
function fakeContainer(beforeRead: () => void = () => {}) {
  const received: Record<string, string> = {};
  const uploads: Array<'ended' | 'open'> = [];
  const container = {
    getArchive: async () => undefined,
    exec: async () => ({ exitCode: 0 }),
    putArchive: (stream: NodeJS.ReadableStream) => {
      const upload = uploads.push('open') - 1;
      beforeRead();
      return new Promise<void>((resolve, reject) => {
        const unpack = extract();
        unpack.on('entry', (header, body, next) => {
          const chunks: Buffer[] = [];
          body.on('data', (c: unknown) => chunks.push(c as Buffer));
          body.on('end', () => {
            if (header.type === 'file') received[header.name] = Buffer.concat(chunks).toString();
            next();
          });
        });
        unpack.on('finish', () => {
          uploads[upload] = 'ended';
          resolve();
        });
        unpack.on('error', reject);
        stream.pipe(unpack);
      });
    },
  };
  return { container: container as unknown as DockerContainer, received, uploads };
}

describe('syncing a folder into a container (copy mode)', () => {
  it('leaves out a file that went between the listing and the read, and sends the rest', async () => {
    const dir = tempProject().dir;
    writeFileSync(join(dir, 'main.c'), 'int main;');
    writeFileSync(join(dir, 'gone.index'), 'index');
    const { container, received, uploads } = fakeContainer(() => rmSync(join(dir, 'gone.index')));
    const result = await syncIntoContainer(container, dir, '/mp/micropython');
    expect(result.copied).toBe(1);
    expect(received['main.c']).toBe('int main;');
    expect(received).not.toHaveProperty('gone.index');
    // The state the container keeps names only what it got: the next sync does not think it has the file.
    expect(Object.keys(JSON.parse(received['.mp-sync-state.json']!).files)).toEqual(['main.c']);
    expect(uploads).toEqual(['ended']);
  });

  it('returns another read error, and still ends the upload', async () => {
    const dir = tempProject().dir;
    writeFileSync(join(dir, 'a.c'), 'a');
    writeFileSync(join(dir, 'b.c'), 'b');
    // b.c becomes a folder after the listing: reading it fails with EISDIR, not "gone".
    const { container, received, uploads } = fakeContainer(() => {
      rmSync(join(dir, 'b.c'));
      mkdirSync(join(dir, 'b.c'));
    });
    await expect(syncIntoContainer(container, dir, '/mp/micropython')).rejects.toMatchObject({
      code: 'EISDIR',
    });
    expect(uploads).toEqual(['ended']);
    // No state file: the next sync sends everything again.
    expect(received).not.toHaveProperty('.mp-sync-state.json');
  });
  it('returns the error of an upload the engine refused, instead of waiting for it to read on', async () => {
    const dir = tempProject().dir;
    // More than the archive buffers: adding it waits for the engine to read.
    writeFileSync(join(dir, 'big.bin'), Buffer.alloc(4 * 1024 * 1024, 7));
    const container = {
      getArchive: async () => undefined,
      exec: async () => ({ exitCode: 0 }),
      putArchive: () => Promise.reject(new Error('the engine refused the archive')),
    } as unknown as DockerContainer;
    await expect(syncIntoContainer(container, dir, '/mp/micropython')).rejects.toThrow(
      'the engine refused the archive',
    );
  });
});

describe('reading a file out of a container (copy mode)', () => {
  it('ends with an error when the download breaks off, instead of waiting for the rest', async () => {
    const archive = pack();
    archive.entry({ name: 'firmware.bin', size: 1024 * 1024 }, Buffer.alloc(1024 * 1024, 1));
    archive.finalize();
    const parts: Buffer[] = [];
    for await (const part of archive as AsyncIterable<Buffer>) parts.push(part);
    const whole = Buffer.concat(parts);
    // The engine went after 100 KiB of the archive.
    const download = new PassThrough();
    download.write(whole.subarray(0, 100 * 1024));
    setTimeout(() => download.destroy(new Error('socket hang up')), 20);
    const container = { getArchive: async () => download } as unknown as DockerContainer;
    await expect(readContainerFile(container, '/mp/build/port/firmware.bin')).rejects.toThrow(
      'socket hang up',
    );
  });
});

describe("a fetch's temporaries inside a tree", () => {
  it('are known by name (copy mode skips them)', () => {
    expect(isTreeTemporary('.mp-submodule-6158-21eacaf5')).toBe(true);
    expect(isTreeTemporary('.mp-submodule-6158-21eacaf5.index')).toBe(true);
    expect(isTreeTemporary('.mp-checkout.json.6158.21eacaf5.tmp')).toBe(true);
    expect(isTreeTemporary('.mp-checkout.json')).toBe(false);
    expect(isTreeTemporary('py')).toBe(false);
    expect(isTreeTemporary('.mp-submodule-notes')).toBe(false);
  });
});
