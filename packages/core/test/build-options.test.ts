/** Build options without writing a board: make variables, the variant, and the submodule choice. */
import { tempProject } from '@mp/test-utils';
import { describe, expect, it } from 'vitest';
import { withBuildOptions } from '../src/firmware/fetch.ts';
import { chooseSubmodules, submodulesUnusedBy } from '../src/firmware/submodules.ts';
import {
  CancelledError,
  loadConfig,
  runSteps,
  type Step,
  type StepEvent,
  ValidationError,
} from '../src/index.ts';

describe('build options', () => {
  it('merge make variables, variant and submodules: config file, then flags', async () => {
    const project = tempProject({
      'mp.config.json': JSON.stringify({
        make: { MICROPY_PY_BTREE: 0, FROZEN_OPT: true, NAME: 'x y' },
        variant: 'FLASH_1M',
        submodules: { fetch: ['lib/extra/'], skip: ['./lib/berkeley-db-1.xx'] },
      }),
    });
    const config = await loadConfig({
      projectDir: project.dir,
      env: {},
      overrides: {
        make: { NAME: 'flag', MICROPY_PY_SSL: '0' },
        variant: 'FLASH_512K',
        submodules: { fetch: [], skip: ['lib/axtls'] },
      },
    });
    expect(config.make).toEqual({
      MICROPY_PY_BTREE: '0',
      FROZEN_OPT: '1',
      NAME: 'flag',
      MICROPY_PY_SSL: '0',
    });
    expect(config.variant).toBe('FLASH_512K');
    expect(config.submodules).toEqual({ fetch: ['lib/extra'], skip: ['lib/berkeley-db-1.xx', 'lib/axtls'] });

    const target = withBuildOptions(
      {
        toolchain: {},
        artifacts: { firmware: 'firmware.bin' },
        defaultManifest: 'm.py',
        variant: 'BOARD_DEFAULT',
        makeArgs: ['NAME=board'],
      },
      config,
    );
    // The project's variables come after the board's: make takes the last assignment.
    expect(target.makeArgs).toEqual([
      'NAME=board',
      'MICROPY_PY_BTREE=0',
      'FROZEN_OPT=1',
      'NAME=flag',
      'MICROPY_PY_SSL=0',
    ]);
    expect(target.variant).toBe('FLASH_512K');
  });

  it('reports every bad build option with its key path', async () => {
    const project = tempProject({
      'mp.config.json': JSON.stringify({
        make: { '1BAD': 1, GOOD: { nested: true } },
        variant: '',
        submodules: { fetch: 'lib/x', other: [] },
      }),
    });
    const error = await loadConfig({ projectDir: project.dir, env: {} }).catch((e) => e);
    expect(error).toBeInstanceOf(ValidationError);
    const paths = (error as ValidationError).issues.map((i) => i.path);
    expect(paths).toEqual(
      expect.arrayContaining(['make.1BAD', 'make.GOOD', 'variant', 'submodules.fetch', 'submodules.other']),
    );
  });

  it('skips submodules the make variables leave unused, unless asked to fetch them', () => {
    const listed = ['lib/axtls', 'lib/berkeley-db-1.xx', 'lib/micropython-lib'];
    expect(submodulesUnusedBy({ MICROPY_PY_BTREE: '0' })).toEqual(
      new Map([['lib/berkeley-db-1.xx', 'MICROPY_PY_BTREE=0']]),
    );
    expect(chooseSubmodules(listed, { fetch: [], skip: [] }, { MICROPY_PY_BTREE: '0' })).toEqual([
      'lib/axtls',
      'lib/micropython-lib',
    ]);
    expect(chooseSubmodules(listed, { fetch: [], skip: [] }, { MICROPY_PY_BTREE: '1' })).toEqual(listed);
    expect(
      chooseSubmodules(
        listed,
        { fetch: ['lib/berkeley-db-1.xx', 'lib/lwip'], skip: ['lib/axtls'] },
        { MICROPY_PY_BTREE: '0' },
      ),
    ).toEqual(['lib/berkeley-db-1.xx', 'lib/micropython-lib', 'lib/lwip']);
  });
});

describe('steps cancelled', () => {
  it('show no tool output printed after the cancel (the teardown’s complaints)', async () => {
    const controller = new AbortController();
    const events: StepEvent[] = [];
    const step: Step<object> = {
      id: 'compile',
      title: 'Compile',
      run: async (_ctx, s) => {
        s.output('CC main.c');
        controller.abort();
        s.output('OCI runtime exec failed: exec failed: unable to start container process');
        throw new CancelledError('compile');
      },
    };
    await expect(
      runSteps([step], {}, { signal: controller.signal, observer: (e) => events.push(e) }),
    ).rejects.toThrow('cancelled');
    expect(events.filter((e) => e.type === 'step:output').map((e) => (e as { line: string }).line)).toEqual([
      'CC main.c',
    ]);
  });
});
