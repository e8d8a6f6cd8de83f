/**
 * The real ESP8266 firmware of esp8266-d1mini: the kit's newest stable tag, the default libraries
 * and a project module, compiled with the kit's real xtensa toolchain; checked with that image's
 * esptool, flashed to the emulated D1 mini through `mp flash`, then edited, rebuilt incrementally
 * and delta-flashed.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { writeEmulatorConfig } from '@mp/esp-emulator';
import { runMp, tempProject } from '@mp/test-utils';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureEsp8266Toolchain, treeChecksum, unpackKit } from '../src/kit.ts';
import { jsonResult, kitRunner } from '../src/mp.ts';

const kit = await unpackKit();
const runner = kitRunner(kit);
afterAll(() => runner.cleanup());

/** `esptool --chip esp8266 image_info` of the toolchain image the firmware was built with. */
function imageInfo(image: string, firmware: string): string {
  const run = spawnSync(
    'docker',
    [
      'run',
      '--rm',
      '-v',
      `${dirname(firmware)}:/fw:ro`,
      image,
      'esptool',
      '--chip',
      'esp8266',
      'image_info',
      `/fw/${basename(firmware)}`,
    ],
    { encoding: 'utf8' },
  );
  expect(run.status, run.stderr).toBe(0);
  return run.stdout;
}

/**
 * The image as esptool leaves it in flash: with the board's `size: 'detect'` the header's size
 * nibble becomes the chip's (4 MB on the emulated D1 mini: 0x40, esptool's ESP8266ROM.FLASH_SIZES).
 */
function asFlashed(image: Buffer): Buffer {
  const out = Buffer.from(image);
  out[3] = (out[3]! & 0x0f) | 0x40;
  return out;
}

describe('real MicroPython: ESP8266 firmware for the D1 mini', () => {
  it('builds, is a valid image with the module and mqtt_as frozen, flashes, and delta-flashes an edit', async () => {
    const image = await ensureEsp8266Toolchain();
    const project = tempProject({
      'mp.config.json': JSON.stringify({ image }),
      'modules/app.py': 'MESSAGE = "first build of the kit"\nprint(MESSAGE)\n',
    });
    const build = (extra: string[] = []) =>
      runner.mp(['build', '--cwd', project.dir, '--json', '--make', 'MICROPY_PY_BTREE=0', ...extra]);

    // The plan fetches the tree; the build must not write into it (it is shared by every build).
    const dry = await build(['--dry-run']);
    expect(dry.code, dry.output).toBe(0);
    const plan = jsonResult(dry).plan;
    expect(plan.micropython.tag).toBe('v1.28.0');
    expect(plan.toolchain).toMatchObject({ ref: image, override: true });
    const tree = runner.micropythonTree(plan.micropython.sha);
    // The submodules a build fetches on purpose, and mp's own record of them, aside.
    const fetched = ['lib/axtls', 'lib/micropython-lib', '.mp-checkout.json'];
    const before = treeChecksum(tree, fetched);

    const first = await build();
    expect(first.code, first.output).toBe(0);
    const result = jsonResult(first);
    expect(treeChecksum(tree, fetched)).toBe(before);

    const firmware = readFileSync(result.firmware);
    process.stdout.write(`real ESP8266 firmware: ${basename(result.firmware)}, ${firmware.length} bytes\n`);
    const info = imageInfo(image, result.firmware);
    expect(info).toMatch(/^Checksum: [0-9a-f]+ \(valid\)$/m);
    expect(firmware[0]).toBe(0xe9);
    expect(firmware.includes('first build of the kit')).toBe(true);
    expect(firmware.includes('mqtt_as/__init__.py')).toBe(true);
    expect(firmware.includes('app.py')).toBe(true);

    const sidecar = JSON.parse(readFileSync(result.sidecar, 'utf8'));
    expect(sidecar.micropython.sha).toBe(kit.commit('micropython/micropython', 'v1.28.0'));
    expect(sidecar.libraries).toEqual([
      expect.objectContaining({ id: 'mqtt_as', sha: kit.commit('peterhinch/micropython-mqtt', 'master') }),
    ]);
    expect(sidecar.micropython.submodules).toEqual({
      'lib/axtls': {
        git: 'https://github.com/micropython/axtls.git',
        sha: kit.commit('micropython/axtls', 'HEAD'),
      },
      'lib/micropython-lib': {
        git: 'https://github.com/micropython/micropython-lib.git',
        sha: kit.commit('micropython/micropython-lib', 'master'),
      },
    });
    expect(sidecar.options).toMatchObject({ make: { MICROPY_PY_BTREE: '0' } });
    expect(sidecar.size).toBe(firmware.length);

    // Flash it to the emulated D1 mini through the CLI's own code path.
    const emulator = writeEmulatorConfig(project.path('.emulator'), [{ chip: 'esp8266' }]);
    const flash = () => runMp(['flash', '--cwd', project.dir], { env: { ...runner.env, ...emulator.env } });
    const full = await flash();
    expect(full.code, full.output).toBe(0);
    expect(Buffer.from(emulator.readFlash().subarray(0, firmware.length)).equals(asFlashed(firmware))).toBe(
      true,
    );
    expect(emulator.readState()!.stats.boots.at(-1)).toBe('app');

    // Edit the module: an incremental build, then only the changed sectors go over the wire.
    project.write('modules/app.py', 'MESSAGE = "second build, edited"\nprint(MESSAGE)\n');
    const second = await build();
    expect(second.code, second.output).toBe(0);
    const edited = readFileSync(jsonResult(second).firmware);
    expect(edited.includes('second build, edited')).toBe(true);
    expect(imageInfo(image, jsonResult(second).firmware)).toMatch(/\(valid\)/);

    const delta = await flash();
    expect(delta.code, delta.output).toBe(0);
    const sectors = /\((\d+) of (\d+) sectors/.exec(delta.stderr);
    expect(sectors, delta.stderr).not.toBeNull();
    const [written, total] = [Number(sectors![1]), Number(sectors![2])];
    expect(total).toBe(Math.ceil(edited.length / 4096));
    expect(written).toBeGreaterThan(0);
    expect(written).toBeLessThan(total / 2);
    expect(Buffer.from(emulator.readFlash().subarray(0, edited.length)).equals(asFlashed(edited))).toBe(true);
  });
});
