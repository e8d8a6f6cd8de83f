/**
 * The real unix port of MicroPython v1.28.0, built by `mp build` from the kit with mqtt_as and a
 * project module, then run: the frozen module imports and prints, and the firmware lists mqtt_as.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cModuleTemplate } from '@mp/core';
import { tempProject } from '@mp/test-utils';
import { afterAll, describe, expect, it } from 'vitest';
import { unpackKit } from '../src/kit.ts';
import { jsonResult, kitRunner } from '../src/mp.ts';

const kit = await unpackKit();
const runner = kitRunner(kit);
afterAll(() => runner.cleanup());

describe('real MicroPython: the unix port of v1.28.0', () => {
  it('builds with mqtt_as and a project module; the executable runs the module and lists mqtt_as', async () => {
    const project = tempProject({
      // No mbedtls in the kit (MICROPY_PY_SSL=0); its berkeley-db is not the pinned commit (MICROPY_PY_BTREE=0).
      'mp.config.json': JSON.stringify({
        board: 'unix',
        micropython: { ref: 'v1.28.0' },
        make: { MICROPY_PY_SSL: 0, MICROPY_PY_BTREE: 0 },
      }),
      'modules/app.py': 'GREETING = "hello from a frozen module"\nprint(GREETING)\n',
    });
    const run = await runner.mp(['build', '--cwd', project.dir, '--json']);
    expect(run.code, run.output).toBe(0);
    const result = jsonResult(run);
    const sidecar = JSON.parse(readFileSync(result.sidecar, 'utf8'));
    process.stdout.write(`real unix executable: ${result.firmware}, ${sidecar.size} bytes\n`);
    expect(sidecar.micropython.sha).toBe(kit.commit('micropython/micropython', 'v1.28.0'));
    expect(sidecar.libraries[0].sha).toBe(kit.commit('peterhinch/micropython-mqtt', 'master'));
    expect(sidecar.micropython.submodules['lib/micropython-lib'].sha).toBe(
      kit.commit('micropython/micropython-lib', 'master'),
    );
    expect(sidecar.options.make).toEqual({ MICROPY_PY_SSL: '0', MICROPY_PY_BTREE: '0' });

    const imported = spawnSync(result.firmware, ['-c', 'import app'], { encoding: 'utf8', cwd: project.dir });
    expect(imported.status, imported.stderr).toBe(0);
    expect(imported.stdout).toBe('hello from a frozen module\n');
    const modules = spawnSync(result.firmware, ['-c', "help('modules')"], { encoding: 'utf8' });
    expect(modules.stdout).toMatch(/\bmqtt_as\/__init__\b/);
    expect(modules.stdout).toMatch(/\bapp\b/);
    const version = spawnSync(result.firmware, ['-c', 'import sys; print(sys.implementation.version[:2])'], {
      encoding: 'utf8',
    });
    expect(version.stdout.trim()).toBe('(1, 28)');
  });

  it('compiles a user C module into the real unix build: mymod.add(2, 3) prints 5', async () => {
    const project = tempProject({
      'mp.config.json': JSON.stringify({
        board: 'unix',
        libraries: [],
        micropython: { ref: 'v1.28.0' },
        make: { MICROPY_PY_SSL: 0, MICROPY_PY_BTREE: 0 },
        cModules: ['cmodules/mymod'],
      }),
    });
    // The module `mp new c-module` writes.
    for (const [file, text] of Object.entries(cModuleTemplate('mymod')))
      project.write(`cmodules/mymod/${file}`, text);
    const run = await runner.mp(['build', '--cwd', project.dir, '--json']);
    expect(run.code, run.output).toBe(0);
    const result = jsonResult(run);
    const sidecar = JSON.parse(readFileSync(result.sidecar, 'utf8'));
    expect(sidecar.options.cModules).toEqual([
      expect.objectContaining({ name: 'mymod', path: project.path('cmodules/mymod') }),
    ]);
    const added = spawnSync(result.firmware, ['-c', 'import mymod; print(mymod.add(2, 3))'], {
      encoding: 'utf8',
    });
    expect(added.stderr).toBe('');
    expect(added.stdout).toBe('5\n');
  });
});
