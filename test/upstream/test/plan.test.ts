/**
 * `mp build --dry-run` on the real trees of the kit: the default ref, the ESP32 IDF image each
 * release's lockfile names (no IDF can be had offline, so a plan and no compile), and the ESP8266
 * toolchain chosen by what the tree's Makefile runs.
 */
import { execFileSync } from 'node:child_process';
import { tempProject } from '@mp/test-utils';
import { afterAll, describe, expect, it } from 'vitest';
import { unpackKit } from '../src/kit.ts';
import { jsonResult, kitRunner } from '../src/mp.ts';

const kit = await unpackKit();
const runner = kitRunner(kit);
afterAll(() => runner.cleanup());

async function plan(args: string[]) {
  const project = tempProject({ 'modules/app.py': 'print("plan")\n' });
  const run = await runner.mp(['build', '--cwd', project.dir, '--dry-run', '--json', ...args]);
  expect(run.code, run.output).toBe(0);
  expect(run.stderr).not.toMatch(/⚠|warn/i);
  // One JSON object on stdout, nothing else.
  expect(run.stdout.trim().split('\n')).toHaveLength(1);
  return { project, plan: jsonResult(run).plan };
}

describe('build plans on the real MicroPython trees', () => {
  it('defaults to the newest stable tag of the kit (v1.28.0, not v1.29.0-preview)', async () => {
    expect(kit.tags()).toEqual(expect.arrayContaining(['v1.27.0', 'v1.28.0', 'v1.29.0-preview']));
    const { plan: p, project } = await plan([]);
    expect(p.micropython).toMatchObject({
      tag: 'v1.28.0',
      sha: kit.commit('micropython/micropython', 'v1.28.0'),
    });
    expect(p.board).toMatchObject({ id: 'esp8266-d1mini', board: 'ESP8266_GENERIC', chip: 'ESP8266' });
    expect(p.export.firmware).toMatch(/ESP8266-micropython-v1\.28\.0-mqtt-as-\d{8}-\d{6}\.bin$/);
    expect(p.manifest).toContain('module("app.py"');
    expect(p.manifest).toContain('package("mqtt_as"');
    // Nothing was written to the project.
    expect(execFileSync('ls', ['-A', project.dir], { encoding: 'utf8' }).trim()).toBe('modules');
  });

  for (const tag of ['v1.27.0', 'v1.28.0']) {
    it(`resolves esp32-generic of ${tag} to the IDF its lockfile names`, async () => {
      const lockfile = execFileSync(
        'git',
        [
          '-C',
          `${kit.root}/micropython/micropython.git`,
          'show',
          `${tag}:ports/esp32/lockfiles/dependencies.lock.esp32`,
        ],
        { encoding: 'utf8' },
      );
      const pinned = /^ {2}idf:\n(?: {4}.*\n)*? {4}version: ([0-9.]+)/m.exec(lockfile)![1];
      const { plan: p } = await plan(['--board', 'esp32-generic', '--micropython', tag]);
      expect(p.micropython.tag).toBe(tag);
      expect(p.toolchain).toEqual({
        ref: `espressif/idf:v${pinned}`,
        reason: `ports/esp32/lockfiles/dependencies.lock.esp32 pins IDF v${pinned}`,
        override: false,
      });
      expect(p.make.command).toContain('make -C ports/esp32 BUILD=/mp/build/port BOARD=ESP32_GENERIC');
      expect(p.flash.segments).toEqual([{ offset: 0x1000, artifact: 'firmware' }]);
    });
  }

  it('picks the ESP8266 toolchain by what the Makefile runs; --image wins without a warning', async () => {
    const { plan: v128 } = await plan(['--micropython', 'v1.28.0']);
    expect(v128.toolchain.ref).toBe('larsks/esp-open-sdk');

    // A tree whose Makefile runs `esptool --chip esp8266 elf2image`, as MicroPython's since 7a61d7c2e0.
    const checkout = tempProject();
    const git = (...args: string[]) =>
      execFileSync('git', ['-C', checkout.dir, ...args], { encoding: 'utf8' });
    execFileSync('git', [
      'clone',
      '-q',
      '--branch',
      'v1.28.0',
      `${kit.root}/micropython/micropython.git`,
      checkout.dir,
    ]);
    const makefile = checkout.path('ports/esp8266/Makefile');
    const text = execFileSync('cat', [makefile], { encoding: 'utf8' });
    expect(text).toContain('$(Q)$(ESPTOOL) elf2image $^');
    checkout.write(
      'ports/esp8266/Makefile',
      text.replace('$(Q)$(ESPTOOL) elf2image $^', '$(Q)$(ESPTOOL) --chip esp8266 elf2image $^'),
    );
    git('-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qam', 'esp8266: pass --chip to elf2image');
    const { plan: newer } = await plan(['--micropython', checkout.dir]);
    expect(newer.toolchain.ref).toBe('micropython/build-micropython-esp8266');
    expect(newer.toolchain.reason).toContain('--chip esp8266 elf2image');
    expect(newer.micropython.path).toBe(checkout.dir);

    const { plan: overridden } = await plan(['--micropython', checkout.dir, '--image', 'my/toolchain:1']);
    expect(overridden.toolchain).toMatchObject({ ref: 'my/toolchain:1', override: true });
  });

  it('builds any ESP board of the tree by its MicroPython name: chip, flash offset and manifest from the tree', async () => {
    const { plan: s3 } = await plan([
      '--board',
      'ESP32_GENERIC_S3',
      '--variant',
      'SPIRAM_OCT',
      '--micropython',
      'v1.28.0',
    ]);
    expect(s3.board).toMatchObject({
      id: 'ESP32_GENERIC_S3',
      port: 'esp32',
      chip: 'ESP32-S3',
      board: 'ESP32_GENERIC_S3',
      variant: 'SPIRAM_OCT',
    });
    expect(s3.flash.segments).toEqual([{ offset: 0x0, artifact: 'firmware' }]);
    expect(s3.toolchain.reason).toBe('ports/esp32/lockfiles/dependencies.lock.esp32s3 pins IDF v5.5.1');
    expect(s3.make.command).toContain('BOARD=ESP32_GENERIC_S3 BOARD_VARIANT=SPIRAM_OCT');
    expect(s3.export.firmware).toMatch(/ESP32_GENERIC_S3-micropython-v1\.28\.0-mqtt-as-/);

    const { plan: classic } = await plan(['--board', 'ESP32_GENERIC', '--micropython', 'v1.28.0']);
    expect(classic.board.chip).toBe('ESP32');
    expect(classic.flash.segments).toEqual([{ offset: 0x1000, artifact: 'firmware' }]);

    // The variant's own mk file decides the manifest: FLASH_1M freezes the port's, the default the 2 MiB one.
    const { plan: small } = await plan([
      '--board',
      'ESP8266_GENERIC',
      '--variant',
      'FLASH_1M',
      '--micropython',
      'v1.28.0',
    ]);
    expect(small.manifest).toContain('include("$(PORT_DIR)/boards/manifest.py")');
    const { plan: big } = await plan(['--board', 'ESP8266_GENERIC', '--micropython', 'v1.28.0']);
    expect(big.manifest).toContain('include("$(BOARD_DIR)/manifest_2MiB.py")');
    expect(big.toolchain.ref).toBe('larsks/esp-open-sdk');
  });

  it('names the variants when the one asked for does not exist, and the boards when the board does not', async () => {
    const project = tempProject();
    const badVariant = await runner.mp([
      'build',
      '--cwd',
      project.dir,
      '--dry-run',
      '--board',
      'ESP32_GENERIC_S3',
      '--variant',
      'SPIRAM',
      '--micropython',
      'v1.28.0',
    ]);
    expect(badVariant.code).toBe(2);
    expect(badVariant.stderr).toContain(
      'Board ESP32_GENERIC_S3 has no variant "SPIRAM"; its variants: SPIRAM_OCT',
    );
    const badBoard = await runner.mp([
      'build',
      '--cwd',
      project.dir,
      '--dry-run',
      '--board',
      'ESP32_NOPE',
      '--micropython',
      'v1.28.0',
    ]);
    expect(badBoard.code).toBe(2);
    expect(badBoard.stderr).toContain('no ESP board "ESP32_NOPE"');
    expect(badBoard.stderr).toContain('mp boards --upstream');
  });

  it('mp boards --upstream lists the ESP boards of the tree through the kit', async () => {
    const project = tempProject();
    const run = await runner.mp([
      'boards',
      '--upstream',
      '--micropython',
      'v1.28.0',
      '--cwd',
      project.dir,
      '--json',
    ]);
    expect(run.code, run.output).toBe(0);
    const result = jsonResult(run);
    expect(result.micropython).toBe('v1.28.0');
    const names = result.boards.map((b: { name: string }) => b.name);
    expect(names).toEqual(
      expect.arrayContaining(['ESP8266_GENERIC', 'ESP32_GENERIC', 'ESP32_GENERIC_S3', 'ESP32_GENERIC_C3']),
    );
    const text = await runner.mp(['boards', '--upstream', '--micropython', 'v1.28.0', '--cwd', project.dir]);
    expect(text.stdout).toMatch(/^ESP32_GENERIC_S3\s+ESP32-S3\s+SPIRAM_OCT\s+0x0\s+Espressif/m);
  });
});
