/**
 * writeFileAtomic: given a file, when it is written, then a reader sees the whole new content, no
 * temporary is left beside it, and the data is synced to disk unless the record says it need not
 * be (`durable: false`: records that only save work).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tempProject } from '@mp/test-utils';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { writeFileAtomic } from '../src/util/fs.ts';

/** FileHandle's prototype, whose sync() is the fsync. */
async function fileHandlePrototype(file: string): Promise<{ sync(): Promise<void> }> {
  const handle = await open(file, 'w');
  await handle.close();
  return Object.getPrototypeOf(handle);
}

afterEach(() => vi.restoreAllMocks());

describe('writeFileAtomic', () => {
  it('replaces the content whole, leaves no temporary, and syncs', async () => {
    const dir = tempProject({ 'state/record.json': 'old\n' });
    const sync = vi.spyOn(await fileHandlePrototype(dir.path('probe')), 'sync');
    await writeFileAtomic(dir.path('state/record.json'), 'new\n');
    expect(readFileSync(dir.path('state/record.json'), 'utf8')).toBe('new\n');
    expect(readdirSync(dir.path('state'))).toEqual(['record.json']);
    expect(sync).toHaveBeenCalledTimes(1);
  });

  it('with durable: false, writes the same way without the fsync', async () => {
    const dir = tempProject({ 'state/record.json': 'old\n' });
    const sync = vi.spyOn(await fileHandlePrototype(dir.path('probe')), 'sync');
    await writeFileAtomic(dir.path('state/record.json'), 'new\n', { durable: false });
    await writeFileAtomic(dir.path('state/other/made.json'), 'made\n', { durable: false });
    expect(readFileSync(dir.path('state/record.json'), 'utf8')).toBe('new\n');
    expect(readFileSync(dir.path('state/other/made.json'), 'utf8')).toBe('made\n');
    expect(readdirSync(dir.path('state')).sort()).toEqual(['other', 'record.json']);
    expect(sync).not.toHaveBeenCalled();
  });
});
