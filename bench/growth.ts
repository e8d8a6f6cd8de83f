/**
 * Cost as the work grows: a project with 100 frozen modules and a local copy of mqtt_as; edits of
 * 1, 10 and 100 modules and of one library file, each built by `mp build` (a new process, in the
 * container the previous build left warm) and compared with the image before the edit, sector by
 * sector: the 4 KiB sectors that differ are what `mp flash` writes.
 *
 * Two kinds of edit show how the layout of frozen code decides the flash cost:
 *   same size   a constant changes (`VALUE = 1000` → `1001`): the bytes after it stay where they are
 *   grows       a line is added: everything frozen after that module moves, first in frozen order
 *               (modules are frozen in name order) against last
 *
 * Run: node bench/growth.ts [--kit]   (--kit: the real ESP8266 firmware from ../shared/upstream,
 *      with the kit's xtensa toolchain; default the fixture MicroPython)
 */

import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { createFixtureRepos, ensureFixtureToolchainImage, MP_BIN } from '../test/utils/src/index.ts';
import { timedMp } from './lib.ts';

const { values } = parseArgs({ options: { kit: { type: 'boolean' } } });
const SECTOR = 4096;
const MODULES = 100;
/** What flashing one sector costs at the board's 460800 baud (4 KiB + framing, uncompressed). */
const SECTOR_SECONDS = (SECTOR * 10) / 460_800;

let env: NodeJS.ProcessEnv;
let config: Record<string, unknown>;
let args: string[] = [];
let mqttSource: string;
let cleanup = () => {};
const cacheDir = mkdtempSync(join(tmpdir(), 'mp-bench-growth-cache-'));
const projectDir = mkdtempSync(join(tmpdir(), 'mp-bench-growth-project-'));

if (values.kit) {
  const { ensureEsp8266Toolchain, unpackKit } = await import('../test/upstream/src/kit.ts');
  console.log('setting up: the upstream kit, the ESP8266 toolchain image …');
  const kit = await unpackKit();
  env = { MP_GIT_MIRRORS: kit.mirrors };
  config = { image: await ensureEsp8266Toolchain(), micropython: { ref: 'v1.28.0' } };
  args = ['--make', 'MICROPY_PY_BTREE=0'];
  mqttSource = join(tmpdir(), `mp-bench-growth-mqtt-${process.pid}`);
  const git = spawnSync('git', [
    'clone',
    '-q',
    join(kit.root, 'peterhinch/micropython-mqtt.git'),
    mqttSource,
  ]);
  if (git.status !== 0) throw new Error(`git clone of the kit's mqtt_as failed: ${git.stderr}`);
  cleanup = () => rmSync(mqttSource, { recursive: true, force: true });
} else {
  console.log('setting up: fixture repositories, fixture toolchain image …');
  const repos = createFixtureRepos();
  env = { MP_GIT_MIRRORS: repos.mirrorEnv };
  config = { image: await ensureFixtureToolchainImage() };
  mqttSource = repos.mqtt.path;
  cleanup = () => repos.cleanup();
}
env = { ...env, MP_CACHE_DIR: cacheDir, MP_CONTAINER_LEASE: '300' };

// The library as a local folder of the project, so one of its files can be edited.
cpSync(mqttSource, join(projectDir, 'libs/mqtt_as'), {
  recursive: true,
  filter: (p) => basename(p) !== '.git',
});
writeFileSync(
  join(projectDir, 'mp.config.json'),
  JSON.stringify({ ...config, libraries: [{ id: 'mqtt_as', path: 'libs/mqtt_as' }] }),
);
mkdirSync(join(projectDir, 'modules'), { recursive: true });
const moduleName = (i: number) => `m${String(i).padStart(3, '0')}.py`;
/** A module; `grow` lines that use only its own names, `names` lines that each add a new name (a qstr). */
const moduleText = (i: number, value: number, grow = 0, names = 0) =>
  [
    `# Module ${i} of the growth benchmark.`,
    `VALUE = ${value}`,
    `NAME = "module-${i}"`,
    '',
    `def work_${i}(x):`,
    '    total = 0',
    '    for k in range(x):',
    `        total += (k * ${i + 3}) % 7`,
    ...Array.from({ length: grow }, () => '    total += VALUE'),
    '    return total + VALUE',
    '',
    `class Thing${i}:`,
    '    def __init__(self, n):',
    '        self.n = n',
    '',
    '    def describe(self):',
    `        return "%s: %d" % (NAME, self.n)`,
    ...Array.from({ length: names }, (_, k) => `EXTRA_${i}_${k} = ${k}`),
    '',
  ].join('\n');
for (let i = 0; i < MODULES; i++)
  writeFileSync(join(projectDir, 'modules', moduleName(i)), moduleText(i, 1000));

function mpBuild(): { ms: number; firmware: string; container: string } {
  const { ms, result } = timedMp(['build', '--cwd', projectDir, ...args], {
    ...process.env,
    ...env,
    CI: '1',
    NO_COLOR: '1',
  });
  return { ms, firmware: result.firmware as string, container: result.container as string };
}

/** Sectors of `b` that differ from `a` (what a delta flash writes over `a`), and `b`'s sector count. */
function sectorDiff(a: Buffer, b: Buffer): { changed: number; total: number; firstChanged: number } {
  const total = Math.ceil(b.length / SECTOR);
  let changed = 0;
  let firstChanged = -1;
  for (let s = 0; s < total; s++) {
    const x = a.subarray(s * SECTOR, (s + 1) * SECTOR);
    const y = b.subarray(s * SECTOR, (s + 1) * SECTOR);
    if (!x.equals(y)) {
      changed++;
      if (firstChanged < 0) firstChanged = s;
    }
  }
  return { changed, total, firstChanged };
}

interface Row {
  edit: string;
  build: number;
  changed: number;
  total: number;
  firstChanged: number;
}
const rows: Row[] = [];
let value = 1000;

try {
  console.log(`first build of ${MODULES} modules …`);
  const first = mpBuild();
  let base = readFileSync(first.firmware);
  // Each edit is measured against the image before it, as `mp dev` or a day of edits goes: the
  // previous edit stays (undoing it would touch the files again, and make would rebuild them).
  const measure = (edit: string, change: () => void) => {
    change();
    const built = mpBuild();
    const image = readFileSync(built.firmware);
    const diff = sectorDiff(base, image);
    rows.push({ edit, build: built.ms, ...diff });
    console.log(`  ${edit}: ${(built.ms / 1000).toFixed(2)} s, ${diff.changed}/${diff.total} sectors`);
    base = image;
  };
  const grown = new Map<number, { grow: number; names: number }>();
  const editModules = (indices: number[], change: { grow?: number; names?: number } = {}) => {
    value++;
    for (const i of indices) {
      const g = grown.get(i) ?? { grow: 0, names: 0 };
      const next = { grow: g.grow + (change.grow ?? 0), names: g.names + (change.names ?? 0) };
      grown.set(i, next);
      writeFileSync(join(projectDir, 'modules', moduleName(i)), moduleText(i, value, next.grow, next.names));
    }
  };
  const spread = (n: number) => Array.from({ length: n }, (_, k) => Math.floor((k * MODULES) / n));

  for (const n of [1, 10, 100]) {
    const indices = n === 1 ? [MODULES / 2] : spread(n);
    measure(`${n} module${n === 1 ? '' : 's'}, same size`, () => editModules(indices));
  }
  measure('1 module grows, first frozen', () => editModules([0], { grow: 2 }));
  measure('1 module grows, last frozen', () => editModules([MODULES - 1], { grow: 2 }));
  measure('1 module adds a name (qstr)', () => editModules([MODULES / 2], { names: 1 }));
  const libFile = join(projectDir, 'libs/mqtt_as/mqtt_as/__init__.py');
  const original = readFileSync(libFile, 'utf8');
  measure('library file adds a name', () => writeFileSync(libFile, `${original}\n_BENCH_EDIT = 1\n`));

  const what = values.kit ? 'real ESP8266 firmware (kit, v1.28.0)' : 'fixture MicroPython, esp8266-d1mini';
  console.log(`\ncost as the work grows: ${MODULES} frozen modules + mqtt_as, ${what}`);
  console.log(
    `  ${'edit'.padEnd(32)} ${'mp build'.padStart(9)} ${'sectors written'.padStart(17)} ${'first'.padStart(6)} ${'flash (est.)'.padStart(13)}`,
  );
  for (const r of rows) {
    const share = `${r.changed}/${r.total} (${((r.changed / r.total) * 100).toFixed(0)}%)`;
    console.log(
      `  ${r.edit.padEnd(32)} ${`${(r.build / 1000).toFixed(2)} s`.padStart(9)} ${share.padStart(17)} ${String(r.firstChanged).padStart(6)} ${`${(r.changed * SECTOR_SECONDS).toFixed(2)} s`.padStart(13)}`,
    );
  }
  const one = rows[0]!;
  const hundred = rows[2]!;
  const [growFirst, growLast, name] = [rows[3]!, rows[4]!, rows[5]!];
  console.log('\nratios');
  console.log(
    `  build, 100 modules / 1 module        ${(hundred.build / one.build).toFixed(2)}×   (the fixed cost of a build against the work in it)`,
  );
  console.log(
    `  sectors, 100 modules / 1 module      ${(hundred.changed / Math.max(1, one.changed)).toFixed(1)}×`,
  );
  console.log(
    `  sectors, grows first / grows last    ${(growFirst.changed / Math.max(1, growLast.changed)).toFixed(1)}×   (${growFirst.changed} against ${growLast.changed} of ${growFirst.total})`,
  );
  console.log(
    `  sectors, a new name / same size      ${(name.changed / Math.max(1, one.changed)).toFixed(1)}×   (${name.changed} against ${one.changed} of ${name.total}, from sector ${name.firstChanged})`,
  );
  const notes: string[] = [];
  if (growFirst.changed >= 3 * Math.max(1, growLast.changed))
    notes.push(
      `a module that changes size moves everything frozen after it: ${growFirst.changed} sectors when it is frozen first, ${growLast.changed} when last`,
    );
  else if (growFirst.changed > growFirst.total / 4)
    notes.push(
      `a size change rewrites ${growFirst.changed} of ${growFirst.total} sectors wherever the module is frozen (first: ${growFirst.changed}, last: ${growLast.changed})`,
    );
  if (name.changed >= 3 * Math.max(1, one.changed))
    notes.push(
      `one new name (a new qstr) renumbers the qstrs that frozen code refers to: ${name.changed} of ${name.total} sectors from sector ${name.firstChanged}, against ${one.changed} for a same-size edit`,
    );
  for (const note of notes) console.log(`  note: ${note}`);
} finally {
  spawnSync(process.execPath, [MP_BIN, 'stop', '--cwd', projectDir], { env: { ...process.env, ...env } });
  cleanup();
  rmSync(cacheDir, { recursive: true, force: true });
  rmSync(projectDir, { recursive: true, force: true });
}
