/**
 * ccache on real compilers, from the kit of real upstream sources (../shared/upstream, or
 * MP_UPSTREAM_KIT): MicroPython v1.28.0's unix port (the unix board's toolchain image) and the
 * ESP8266 firmware of esp8266-d1mini (the kit's xtensa toolchain image, which has no ccache of its
 * own: mp mounts one). For each, after a first build that fetches everything:
 *
 *   cold     mp clean, the compiler cache emptied, mp build --force: every file compiled (and cached)
 *   warm     mp clean, mp build --force: a clean build folder, every object from the compiler cache
 *   off      mp clean, MP_CCACHE=0 mp build --force: no ccache at all, for what ccache costs when cold
 *
 * and checks that the three firmware files are the same bytes. Goal: warm ≤ 40 % of cold.
 *
 * Run: node bench/ccache.ts [--runs 1] [--only unix|esp8266]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ensureEsp8266Toolchain, unpackKit } from '../test/upstream/src/kit.ts';
import { MP_BIN } from '../test/utils/src/index.ts';
import { median, timedMp } from './lib.ts';

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '1' }, only: { type: 'string' } },
});
const runs = Number(values.runs);

function mp(args: string[], env: NodeJS.ProcessEnv): { ms: number; result: Record<string, unknown> } {
  return timedMp(args, { ...process.env, CI: '1', NO_COLOR: '1', ...env });
}

interface Target {
  name: string;
  board: string;
  config: Record<string, unknown>;
  args: string[];
}

console.log('setting up: the upstream kit, the ESP8266 toolchain image …');
const kit = await unpackKit();
const targets: Target[] = [
  {
    name: 'unix port v1.28.0',
    board: 'unix',
    config: {
      board: 'unix',
      libraries: [],
      micropython: { ref: 'v1.28.0' },
      make: { MICROPY_PY_SSL: 0, MICROPY_PY_BTREE: 0 },
    },
    args: [],
  },
];
if (values.only !== 'unix') {
  targets.push({
    name: 'ESP8266 firmware (esp8266-d1mini, mqtt_as)',
    board: 'esp8266-d1mini',
    config: { image: await ensureEsp8266Toolchain(), micropython: { ref: 'v1.28.0' } },
    args: ['--make', 'MICROPY_PY_BTREE=0'],
  });
}
if (values.only === 'esp8266') targets.shift();

const lines: string[] = [];
for (const target of targets) {
  const cacheDir = mkdtempSync(join(tmpdir(), 'mp-bench-ccache-cache-'));
  const projectDir = mkdtempSync(join(tmpdir(), 'mp-bench-ccache-project-'));
  try {
    writeFileSync(join(projectDir, 'mp.config.json'), JSON.stringify(target.config));
    const env = { MP_CACHE_DIR: cacheDir, MP_GIT_MIRRORS: kit.mirrors, MP_CONTAINER_LEASE: '0' };
    const build = (extra: NodeJS.ProcessEnv = {}) =>
      mp(['build', '--cwd', projectDir, '--force', ...target.args], { ...env, ...extra });
    const clean = () => mp(['clean', '--cwd', projectDir], env);
    const emptyCompilerCache = () => {
      const root = join(cacheDir, 'ccache');
      for (const name of readdirSync(root))
        if (name.startsWith(`${target.board}-`)) rmSync(join(root, name), { recursive: true, force: true });
    };
    console.log(`${target.name}: first build (fetches the sources) …`);
    const first = build();
    const cold: number[] = [];
    const warm: number[] = [];
    const off: number[] = [];
    const shas = new Set<unknown>([first.result.sha256]);
    for (let i = 0; i < runs; i++) {
      clean();
      emptyCompilerCache();
      const c = build();
      cold.push(c.ms);
      clean();
      const w = build();
      warm.push(w.ms);
      clean();
      const o = build({ MP_CCACHE: '0' });
      off.push(o.ms);
      for (const r of [c, w, o]) shas.add(r.result.sha256);
      console.log(
        `  run ${i + 1}: cold ${(c.ms / 1000).toFixed(1)} s, warm ${(w.ms / 1000).toFixed(1)} s, without ccache ${(o.ms / 1000).toFixed(1)} s`,
      );
    }
    const ratio = median(warm) / median(cold);
    lines.push(
      `${target.name}`,
      `  clean build, compiler cache cold   ${(median(cold) / 1000).toFixed(1).padStart(6)} s`,
      `  clean build, compiler cache warm   ${(median(warm) / 1000).toFixed(1).padStart(6)} s`,
      `  clean build without ccache         ${(median(off) / 1000).toFixed(1).padStart(6)} s`,
      `  warm / cold                        ${(ratio * 100).toFixed(0).padStart(5)} %   (goal ≤ 40 %: ${ratio <= 0.4 ? 'met' : 'NOT met'})`,
      `  cold / without ccache              ${((median(cold) / median(off)) * 100).toFixed(0).padStart(5)} %   (what filling the cache costs)`,
      `  firmware identical in every build  ${shas.size === 1 ? 'yes' : `NO (${shas.size} different sha256)`}`,
    );
  } finally {
    spawnSync(process.execPath, [MP_BIN, 'stop', '--cwd', projectDir], { stdio: 'ignore' });
    rmSync(cacheDir, { recursive: true, force: true });
    rmSync(projectDir, { recursive: true, force: true });
  }
}
console.log(`\nccache: clean builds after mp clean, median of ${runs} run${runs === 1 ? '' : 's'}`);
for (const line of lines) console.log(line);
