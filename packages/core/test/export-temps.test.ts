/**
 * An export killed (kill -9) between writing its hidden temporaries and renaming them leaves
 * `export/.<file>.<pid>.<rand>.tmp` behind; the next export removes those whose process is gone,
 * and never one a live export is writing.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempProject } from '@mp/test-utils';
import { describe, expect, it } from 'vitest';
import { sweepExportTemps, writeExport } from '../src/firmware/export-write.ts';
import type { ExportSidecar } from '../src/firmware/sidecar.ts';
import { hostTag } from '../src/util/lock.ts';

const deadPid = () => spawnSync(process.execPath, ['-e', '']).pid!;

function exportOnce(dir: string) {
  return writeExport({
    exportDir: join(dir, 'export'),
    stateDir: join(dir, '.mp'),
    boardId: 'unix',
    files: [{ name: 'fw.bin', data: Buffer.from('firmware') }],
    libraryFiles: [],
    sidecar: (exportedFiles) => ({ firmware: 'fw.bin', exportedFiles }) as unknown as ExportSidecar,
  });
}

describe('temporaries of an export that was killed', () => {
  it('are removed by the next export when their process is gone; a live writer’s are kept', async () => {
    const project = tempProject();
    const exportDir = project.path('export');
    mkdirSync(exportDir);
    const gone = deadPid();
    const leftovers = [
      `.fw-old.bin.${gone}.0badc0de.tmp`, // the name written before the host tag
      `.fw-old.bin.json.${hostTag()}-${gone}.12345678.tmp`,
    ];
    const live = [
      `.other.bin.${hostTag()}-${process.pid}.abcdef01.tmp`, // an export running now
      `.other.bin.${hostTag('another-machine')}-${gone}.abcdef02.tmp`, // its pid means nothing here
    ];
    for (const name of [...leftovers, ...live]) writeFileSync(join(exportDir, name), 'partial');

    await exportOnce(project.dir);
    const names = readdirSync(exportDir);
    for (const name of leftovers) expect(names).not.toContain(name);
    for (const name of live) expect(names).toContain(name);
    expect(names).toContain('fw.bin');
    // Nothing of this export's own is left.
    expect(names.filter((n) => n.endsWith('.tmp')).sort()).toEqual([...live].sort());
  });

  it('are removed after a day whoever wrote them; files that only look alike stay', async () => {
    const project = tempProject();
    const exportDir = project.path('export');
    mkdirSync(exportDir);
    const old = join(exportDir, `.fw.bin.${hostTag('another-machine')}-123.abcdef02.tmp`);
    writeFileSync(old, 'partial');
    const dayAgo = new Date(Date.now() - 25 * 60 * 60 * 1000);
    utimesSync(old, dayAgo, dayAgo);
    const mine = join(exportDir, 'notes.tmp');
    writeFileSync(mine, 'the user’s');
    const removed = await sweepExportTemps(exportDir);
    expect(removed).toEqual([{ path: old, bytes: 7 }]);
    expect(existsSync(old)).toBe(false);
    expect(existsSync(mine)).toBe(true);
  });
});
