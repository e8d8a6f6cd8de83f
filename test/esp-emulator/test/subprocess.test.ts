import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { openWebSerialPort } from '../../../packages/core/src/serial/index.ts';
import { firmwareBanner, loadEmulatorConfig, makeTestFirmware, writeEmulatorConfig } from '../src/index.ts';
import { readUntil, resetIntoApplication } from './helpers.ts';

const CHILD = fileURLToPath(new URL('./fixtures/flash-with-env.ts', import.meta.url));
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function runChild(
  env: Record<string, string>,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CHILD, ...args],
      { env: { ...process.env, ...env } },
      (error, stdout, stderr) => {
        resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

describe('the emulator in a subprocess (MP_SERIAL_BINDING + MP_EMULATOR)', () => {
  it('survives an unplug in one process, completes in the next, and the flash it leaves boots the new firmware', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mp-emu-'));
    dirs.push(dir);
    const oldFirmware = makeTestFirmware(8_000, 21);
    const image = makeTestFirmware(80_000, 22);
    const imageFile = join(dir, 'firmware.bin');
    writeFileSync(imageFile, image);
    const files = writeEmulatorConfig(dir, [
      {
        chip: 'esp8266',
        flash: oldFirmware,
        faults: [{ action: 'unplug', command: 'FLASH_DEFL_DATA', occurrence: 2 }],
      },
    ]);

    const firstRun = await runChild(files.env, [imageFile, '0']);
    expect(firstRun.stdout.trim()).toBe('lost');
    expect(firstRun.code).toBe(3);
    expect(files.readState()).toMatchObject({ faultsFired: [1], stats: { unplugs: 1 } });
    expect(files.readFlash().subarray(0, image.length)).not.toEqual(image);

    const secondRun = await runChild(files.env, [imageFile, '0']);
    expect(secondRun).toMatchObject({ code: 0, stdout: 'flashed\n' });
    expect(files.readFlash().subarray(0, image.length)).toEqual(image);
    const state = files.readState()!;
    expect(state.faultsFired).toEqual([1]);
    expect(state.stats.unplugs).toBe(0);
    expect(state.stats.stubStarts).toBe(1);
    expect(state.stats.flashWrites).toEqual([{ offset: 0, length: image.length }]);
    expect(state.stats.commands.SPI_FLASH_MD5).toBe(1);

    // The same files, loaded in this process: the board boots what the subprocess flashed.
    const { emulator } = loadEmulatorConfig(files.configPath);
    const port = await openWebSerialPort(emulator.device().path, { binding: emulator.binding });
    await resetIntoApplication(port);
    expect(await readUntil(port, '>>> ')).toContain(firmwareBanner('esp8266', image));
    await port.close();
  });
});
