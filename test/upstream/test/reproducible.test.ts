/**
 * Reproducible real builds: the unix port of MicroPython v1.28.0 from the kit, built from scratch in
 * two projects (two folders, two build folders) with mp's clock ten years apart, is one sha256, and
 * the executable's banner date is the v1.28.0 commit's, which the build got as SOURCE_DATE_EPOCH.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempProject } from '@mp/test-utils';
import { afterAll, describe, expect, it } from 'vitest';
import { unpackKit } from '../src/kit.ts';
import { jsonResult, kitRunner } from '../src/mp.ts';

const kit = await unpackKit();
const runner = kitRunner(kit);
afterAll(() => runner.cleanup());

/** The e2e suite's clock shifter: `Date` moved by MP_TEST_CLOCK_SHIFT_DAYS in the mp process. */
const CLOCK = fileURLToPath(new URL('../../e2e/test/verify-clock.mjs', import.meta.url));

function unixProject() {
  return tempProject({
    'mp.config.json': JSON.stringify({
      board: 'unix',
      libraries: [],
      micropython: { ref: 'v1.28.0' },
      make: { MICROPY_PY_SSL: 0, MICROPY_PY_BTREE: 0 },
    }),
    'modules/app.py': 'print("reproducible")\n',
  });
}

describe('real MicroPython: reproducible builds of the unix port', () => {
  it('two clean builds in two folders, ten years apart on mp’s clock, are one sha256 dated by the commit', async () => {
    const a = unixProject();
    const b = unixProject();
    const first = await runner.mp(['build', '--cwd', a.dir, '--json']);
    expect(first.code, first.output).toBe(0);
    const second = await runner.mp(['build', '--cwd', b.dir, '--json', '--force'], {
      NODE_OPTIONS: `--import=${CLOCK}`,
      MP_TEST_CLOCK_SHIFT_DAYS: '3653',
    });
    expect(second.code, second.output).toBe(0);
    const one = jsonResult(first);
    const two = jsonResult(second);
    expect(two.fromCache).toBe(false);
    const year = (r: typeof one) =>
      new Date(JSON.parse(readFileSync(r.sidecar, 'utf8')).builtAt).getUTCFullYear();
    expect(year(two) - year(one)).toBeGreaterThanOrEqual(9);
    process.stdout.write(`unix port v1.28.0 built twice from scratch: ${one.sha256} and ${two.sha256}\n`);
    expect(two.sha256).toBe(one.sha256);
    expect(readFileSync(two.firmware).equals(readFileSync(one.firmware))).toBe(true);

    // The banner: "MicroPython v1.28.0 on <date>" with the commit's date (UTC), not today's.
    const epoch = Number(
      execFileSync(
        'git',
        ['-C', join(kit.root, 'micropython/micropython.git'), 'log', '-1', '--format=%ct', 'v1.28.0'],
        {
          encoding: 'utf8',
        },
      ).trim(),
    );
    const commitDay = new Date(epoch * 1000).toISOString().slice(0, 10);
    const sidecar = JSON.parse(readFileSync(one.sidecar, 'utf8'));
    expect(sidecar.micropython.sourceDateEpoch).toBe(epoch);
    const banner = spawnSync(one.firmware, ['-c', 'import sys; print(sys.version)'], { encoding: 'utf8' });
    expect(banner.status, banner.stderr).toBe(0);
    expect(banner.stdout).toContain(`MicroPython v1.28.0 on ${commitDay}`);
    expect(commitDay).not.toBe(new Date().toISOString().slice(0, 10));
  });
});
