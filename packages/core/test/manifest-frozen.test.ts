import { join } from 'node:path';
import { checkFreezeEntries, generateFrozenManifest, MpError, scanProjectModules } from '@mp/core';
import { tempProject } from '@mp/test-utils';
import { describe, expect, it } from 'vitest';

describe('the generated FROZEN_MANIFEST', () => {
  it('includes the board default, then each library, then the project modules, with container paths', () => {
    const text = generateFrozenManifest({
      boardId: 'esp8266-d1mini',
      defaultManifest: '$(BOARD_DIR)/manifest_2MiB.py',
      libraries: [
        {
          id: 'mqtt_as',
          origin: 'https://github.com/peterhinch/micropython-mqtt.git@abc123',
          containerDir: '/mp/libs/mqtt_as',
          freeze: [{ package: 'mqtt_as', files: ['__init__.py', 'mqtt_v5_properties.py'] }],
        },
        {
          id: 'old',
          origin: '/src/old',
          containerDir: '/mp/libs/old',
          freeze: [{ module: 'old.py', base: 'src', opt: 3 }],
        },
      ],
      modules: {
        containerDir: '/mp/modules',
        hostDir: '/home/me/project/modules',
        entries: [
          { kind: 'module', name: 'app.py', files: ['app.py'] },
          { kind: 'package', name: 'drivers', files: ['drivers/__init__.py', 'drivers/bme280.py'] },
        ],
      },
    });
    const lines = text.split('\n').filter((l) => l && !l.startsWith('#'));
    expect(lines).toEqual([
      'include("$(BOARD_DIR)/manifest_2MiB.py")',
      'package("mqtt_as", files=["__init__.py", "mqtt_v5_properties.py"], base_path="/mp/libs/mqtt_as")',
      'module("old.py", base_path="/mp/libs/old/src", opt=3)',
      'module("app.py", base_path="/mp/modules")',
      'package("drivers", base_path="/mp/modules")',
    ]);
    expect(text).toContain(
      '# Library mqtt_as from https://github.com/peterhinch/micropython-mqtt.git@abc123',
    );
    expect(text).toContain('# Project modules from /home/me/project/modules');
  });

  it('is deterministic and quotes paths as Python strings', () => {
    const input = {
      boardId: 'unix',
      defaultManifest: '$(VARIANT_DIR)/manifest.py',
      libraries: [{ id: 'q', origin: 'x', containerDir: '/mp/libs/q"uote', freeze: [{ package: 'q' }] }],
    };
    expect(generateFrozenManifest(input)).toBe(generateFrozenManifest(input));
    expect(generateFrozenManifest(input)).toContain('package("q", base_path="/mp/libs/q\\"uote")');
  });
});

describe('project modules', () => {
  it('are top-level .py files and package folders; hidden entries and caches are left out', async () => {
    const project = tempProject({
      'modules/main.py': 'print(1)',
      'modules/app.py': 'x = 1',
      'modules/drivers/__init__.py': '',
      'modules/drivers/sensors/bme280.py': 'y = 2',
      'modules/drivers/README.md': 'not python',
      'modules/.hidden.py': 'no',
      'modules/__pycache__/app.cpython-311.pyc': 'no',
      'modules/notes.txt': 'no',
      'modules/empty/readme.txt': 'no python here',
    });
    const modules = await scanProjectModules(project.path('modules'));
    expect(modules).toEqual([
      { kind: 'module', name: 'app.py', files: ['app.py'] },
      { kind: 'package', name: 'drivers', files: ['drivers/__init__.py', 'drivers/sensors/bme280.py'] },
      { kind: 'module', name: 'main.py', files: ['main.py'] },
    ]);
  });

  it('are none when the folder does not exist', async () => {
    expect(await scanProjectModules('/nonexistent/modules')).toEqual([]);
  });
});

describe('library freeze entries', () => {
  it('must name files that exist; the error names the library and the file', async () => {
    const lib = tempProject({ 'mqtt_as/__init__.py': '' });
    await checkFreezeEntries('mqtt_as', lib.dir, [{ package: 'mqtt_as', files: ['__init__.py'] }], 'origin');
    const error = await checkFreezeEntries(
      'mqtt_as',
      lib.dir,
      [{ package: 'mqtt_as', files: ['__init__.py', 'gone.py'] }],
      'git@sha',
    ).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(MpError);
    expect((error as MpError).code).toBe('LIBRARY_FREEZE_MISSING');
    expect((error as MpError).message).toContain('Library mqtt_as: mqtt_as/gone.py');
    expect((error as MpError).file).toBe(join(lib.dir, 'mqtt_as/gone.py'));
    const missingModule = await checkFreezeEntries(
      'x',
      lib.dir,
      [{ module: 'x.py', base: 'src' }],
      'o',
    ).catch((e: MpError) => e);
    expect((missingModule as MpError).message).toContain('src/x.py');
  });
});
