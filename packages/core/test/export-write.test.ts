import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  EXPORT_SCHEMA,
  type ExportPlan,
  type ExportSidecar,
  MpError,
  sha256Hex,
  writeExport,
} from '@mp/core';
import { tempProject } from '@mp/test-utils';
import { describe, expect, it, onTestFinished } from 'vitest';

function plan(
  dir: string,
  overrides: Partial<ExportPlan> = {},
  firmware = Buffer.alloc(300 * 1024, 7),
): ExportPlan {
  return {
    exportDir: join(dir, 'export'),
    stateDir: join(dir, '.mp'),
    boardId: 'esp8266-d1mini',
    files: [{ name: 'ESP8266-micropython-v1.28.0-mqtt-as-20261121-233312.bin', data: firmware }],
    libraryFiles: [
      {
        name: 'mqtt_local.py',
        data: Buffer.from('config = 1\n'),
        library: 'mqtt_as',
        from: 'mqtt_local_example.py',
      },
    ],
    sidecar: (exportedFiles) =>
      ({
        schema: EXPORT_SCHEMA,
        firmware: 'ESP8266-micropython-v1.28.0-mqtt-as-20261121-233312.bin',
        board: { id: 'esp8266-d1mini' },
        sha256: sha256Hex(firmware),
        size: firmware.length,
        flash: null,
        exportedFiles,
      }) as unknown as ExportSidecar,
    ...overrides,
  };
}

describe('writing an export', () => {
  it('writes the firmware, its sidecar, the latest index and the library files, and nothing else', async () => {
    const project = tempProject();
    const outcome = await writeExport(plan(project.dir));
    const names = readdirSync(project.path('export')).sort();
    expect(names).toEqual([
      'ESP8266-micropython-v1.28.0-mqtt-as-20261121-233312.bin',
      'ESP8266-micropython-v1.28.0-mqtt-as-20261121-233312.bin.json',
      'latest-esp8266-d1mini.json',
      'mqtt_local.py',
    ]);
    const latest = JSON.parse(readFileSync(outcome.latestFile, 'utf8'));
    expect(latest.sidecar).toBe('ESP8266-micropython-v1.28.0-mqtt-as-20261121-233312.bin.json');
    expect(latest.firmware).toBe(outcome.sidecar.firmware);
    expect(outcome.sidecar.exportedFiles).toEqual([
      expect.objectContaining({ file: 'mqtt_local.py', status: 'written', library: 'mqtt_as' }),
    ]);
  });

  it('replaces a library file mp wrote, but never one the user edited', async () => {
    const project = tempProject();
    await writeExport(plan(project.dir));
    // Unedited: the library's new version replaces it.
    const second = await writeExport(
      plan(project.dir, {
        files: [{ name: 'second.bin', data: Buffer.from('fw2') }],
        libraryFiles: [
          {
            name: 'mqtt_local.py',
            data: Buffer.from('config = 2\n'),
            library: 'mqtt_as',
            from: 'mqtt_local_example.py',
          },
        ],
        sidecar: (exportedFiles) =>
          ({ schema: EXPORT_SCHEMA, firmware: 'second.bin', exportedFiles }) as unknown as ExportSidecar,
      }),
    );
    expect(second.sidecar.exportedFiles[0]!.status).toBe('written');
    expect(readFileSync(project.path('export/mqtt_local.py'), 'utf8')).toBe('config = 2\n');

    // Edited by the user (wifi password): kept; the new version goes beside it.
    writeFileSync(project.path('export/mqtt_local.py'), 'config = 2\nwifi_pw = "secret"\n');
    const third = await writeExport(
      plan(project.dir, {
        files: [{ name: 'third.bin', data: Buffer.from('fw3') }],
        libraryFiles: [
          {
            name: 'mqtt_local.py',
            data: Buffer.from('config = 3\n'),
            library: 'mqtt_as',
            from: 'mqtt_local_example.py',
          },
        ],
        sidecar: (exportedFiles) =>
          ({ schema: EXPORT_SCHEMA, firmware: 'third.bin', exportedFiles }) as unknown as ExportSidecar,
      }),
    );
    expect(third.sidecar.exportedFiles[0]!.status).toBe('kept');
    expect(readFileSync(project.path('export/mqtt_local.py'), 'utf8')).toContain('secret');
    expect(readFileSync(project.path('export/mqtt_local.py.new'), 'utf8')).toBe('config = 3\n');
  });

  it('keeps a file that was there before mp wrote anything', async () => {
    const project = tempProject({ 'export/mqtt_local.py': 'mine\n' });
    const outcome = await writeExport(plan(project.dir));
    expect(outcome.sidecar.exportedFiles[0]!.status).toBe('kept');
    expect(readFileSync(project.path('export/mqtt_local.py'), 'utf8')).toBe('mine\n');
  });

  it('with too little space writes nothing at all and says so', async () => {
    const project = tempProject();
    const exportDir = project.path('export');
    mkdirSync(exportDir);
    // A 64 KiB file system: a real full disk, not a simulated one (needs root to mount).
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', exportDir]).status === 0;
    if (!mounted) return void console.warn('skipped: cannot mount a tmpfs here (not root)');
    onTestFinished(() => void spawnSync('umount', [exportDir]));
    const error = await writeExport(plan(project.dir)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MpError);
    expect((error as MpError).code).toBe('EXPORT_NO_SPACE');
    expect((error as MpError).message).toContain('Nothing was exported');
    expect(readdirSync(exportDir)).toEqual([]);
  });

  it('removes its temporary files when the disk fills up during the write', async () => {
    const project = tempProject();
    const exportDir = project.path('export');
    mkdirSync(exportDir);
    // Plenty of bytes but only a few inodes: the free-space check passes, the third file fails (ENOSPC).
    const mounted =
      spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4m,nr_inodes=4', 'tmpfs', exportDir]).status === 0;
    if (!mounted) return void console.warn('skipped: cannot mount a tmpfs here (not root)');
    onTestFinished(() => void spawnSync('umount', [exportDir]));
    const error = await writeExport(plan(project.dir)).catch((e: unknown) => e);
    expect((error as MpError).code).toBe('EXPORT_NO_SPACE');
    expect(readdirSync(exportDir)).toEqual([]);
  });
});
