/**
 * ccache on real compilers: the kit's unix port of v1.28.0 built, then `mp clean` and built again,
 * takes its objects from the compiler cache mp keeps per board and toolchain image (ccache's own
 * counters say so), and the firmware is the same bytes as the cold build's. How much faster that
 * is, is bench/ccache.ts's business.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CCACHE_BIN, CCACHE_DIR, CCACHE_TOOL_DIR, CCACHE_TOOL_VOLUME } from '@mp/core';
import { tempProject } from '@mp/test-utils';
import { afterAll, describe, expect, it } from 'vitest';
import { unpackKit } from '../src/kit.ts';
import { jsonResult, kitRunner } from '../src/mp.ts';

const kit = await unpackKit();
const runner = kitRunner(kit);
afterAll(() => runner.cleanup());

/** ccache's counters for a cache folder, read with the tool mp mounts into toolchain containers. */
function ccacheStats(dir: string, image: string): { hits: number; misses: number } {
  const run = spawnSync(
    'docker',
    [
      'run',
      '--rm',
      '-v',
      `${CCACHE_TOOL_VOLUME}:${CCACHE_TOOL_DIR}:ro`,
      '-v',
      `${dir}:${CCACHE_DIR}`,
      '-e',
      `CCACHE_DIR=${CCACHE_DIR}`,
      image,
      CCACHE_BIN,
      '--print-stats',
    ],
    { encoding: 'utf8' },
  );
  expect(run.status, run.stderr).toBe(0);
  const count = (name: string) => Number(new RegExp(`^${name}\\t(\\d+)$`, 'm').exec(run.stdout)?.[1] ?? 0);
  return {
    hits: count('direct_cache_hit') + count('preprocessed_cache_hit'),
    misses: count('cache_miss'),
  };
}

describe('real MicroPython: ccache in the toolchain container', () => {
  it('a clean build after mp clean compiles from the cache, and the firmware is the same', async () => {
    const project = tempProject({
      'mp.config.json': JSON.stringify({
        board: 'unix',
        libraries: [],
        micropython: { ref: 'v1.28.0' },
        make: { MICROPY_PY_SSL: 0, MICROPY_PY_BTREE: 0 },
      }),
      'modules/app.py': 'print("ccache")\n',
    });
    const cold = await runner.mp(['build', '--cwd', project.dir, '--json']);
    expect(cold.code, cold.output).toBe(0);
    const first = jsonResult(cold);
    const sidecar = JSON.parse(readFileSync(first.sidecar, 'utf8'));
    const caches = readdirSync(join(runner.cacheDir, 'ccache')).filter((n) => n.startsWith('unix-'));
    expect(caches).toHaveLength(1);
    const dir = join(runner.cacheDir, 'ccache', caches[0]!);
    const afterCold = ccacheStats(dir, sidecar.image.id);
    expect(afterCold.misses).toBeGreaterThan(100);

    const clean = await runner.mp(['clean', '--cwd', project.dir]);
    expect(clean.code, clean.output).toBe(0);
    const warm = await runner.mp(['build', '--cwd', project.dir, '--json', '--force']);
    expect(warm.code, warm.output).toBe(0);
    const second = jsonResult(warm);
    const afterWarm = ccacheStats(dir, sidecar.image.id);
    const hits = afterWarm.hits - afterCold.hits;
    const misses = afterWarm.misses - afterCold.misses;
    process.stdout.write(`clean build after mp clean: ${hits} ccache hits, ${misses} misses\n`);
    expect(hits).toBeGreaterThan(100);
    expect(misses).toBe(0);
    expect(second.sha256).toBe(first.sha256);
  });
});
