/**
 * `mp flash` to an ESP32-S3 reached through its own USB-Serial/JTAG peripheral (USB 303a:1001),
 * emulated in the `mp` subprocess: detected as a board, put into its ROM loader with the USB-JTAG
 * sequence, flashed, restarted; the board leaves the bus and comes back under another name, where
 * the next `mp flash` finds it and the serial monitor reattaches.
 */
import { readFileSync } from 'node:fs';
import { type EmulatorDeviceConfig, writeEmulatorConfig } from '@mp/esp-emulator';
import { runMp, tempProject } from '@mp/test-utils';
import { makeTestS3Firmware, S3_USB_BOARD_FILES } from '@mp/test-utils/esp-firmware';
import { describe, expect, it } from 'vitest';
import { runMpInteractive } from './flash-helpers.ts';

/** A project with its own board plugin for an ESP32-S3 (firmware.bin at 0x0, as esptool says). */
function s3Project(device: Partial<EmulatorDeviceConfig> = {}) {
  const project = tempProject({
    'mp.config.json': JSON.stringify({ board: 'esp32s3-usb', libraries: [] }),
    ...S3_USB_BOARD_FILES,
  });
  const emulator = writeEmulatorConfig(project.path('.emulator'), [
    {
      chip: 'esp32s3',
      path: '/dev/ttyACM0',
      usb: 'usb-serial-jtag',
      reenumerateMs: 150,
      renames: ['/dev/ttyACM1', '/dev/ttyACM2'],
      ...device,
    },
  ]);
  const env = { ...emulator.env, MP_CACHE_DIR: project.path('.cache') };
  return {
    project,
    emulator,
    env,
    mp: (args: string[]) => runMp(args, { cwd: project.dir, env, timeoutMs: 60_000 }),
  };
}

describe('mp flash to an ESP32-S3 on its USB-Serial/JTAG port', () => {
  it('lists the board, flashes it, and says where it came back after the restart', async () => {
    const f = s3Project();
    const ports = await f.mp(['ports']);
    expect(ports.code, ports.output).toBe(0);
    expect(ports.stdout).toContain('/dev/ttyACM0');
    expect(ports.stdout).toContain('Espressif USB-Serial/JTAG');

    const image = makeTestS3Firmware();
    f.project.write('fw.bin', image);
    const run = await f.mp(['flash', 'fw.bin']);
    expect(run.code, run.output).toBe(0);
    expect(run.stderr).toContain(
      'Connected to ESP32-S3 (QFN56) (revision v0.2) on /dev/ttyACM0 (MAC f4:12:fa:a1:b2:c3, 4MB flash, 460800 baud)',
    );
    expect(run.stderr).toContain('Restarted into the new firmware; the board is back on /dev/ttyACM1');
    expect(f.emulator.readFlash().subarray(0, image.length)).toEqual(image);
    const state = f.emulator.readState()!;
    expect(state.path).toBe('/dev/ttyACM1');
    // One reset into the loader (the USB-JTAG sequence; the port stays), one into the application.
    expect(state.stats.resets).toBe(2);
    expect(state.stats.boots.slice(-2)).toEqual(['download', 'app']);
    expect(state.stats.reenumerations).toBe(1);
    expect(state.stats.internalErrors).toEqual([]);
  });

  it('the next mp flash finds the board under its new name (by its serial number) and writes only the change', async () => {
    const f = s3Project();
    f.project.write('fw.bin', makeTestS3Firmware(1));
    expect((await f.mp(['flash', 'fw.bin'])).code).toBe(0);
    expect(JSON.parse(readFileSync(f.project.path('.mp/port.json'), 'utf8'))).toMatchObject({
      path: '/dev/ttyACM0',
      usbId: '303a:1001',
      serialNumber: 'F4:12:FA:A1:B2:C3',
    });

    const image = makeTestS3Firmware(2);
    f.project.write('fw.bin', image);
    const again = await f.mp(['flash', 'fw.bin', '--json']);
    expect(again.code, again.output).toBe(0);
    const { flash } = JSON.parse(again.stdout.trim().split('\n').at(-1)!);
    expect(flash).toMatchObject({ port: '/dev/ttyACM1', mode: 'delta', portAfterRestart: '/dev/ttyACM2' });
    expect(flash.sectorsWritten).toBeLessThan(flash.sectorsTotal);
    expect(JSON.parse(readFileSync(f.project.path('.mp/port.json'), 'utf8')).path).toBe('/dev/ttyACM1');
    expect(f.emulator.readFlash().subarray(0, image.length)).toEqual(image);
  });

  it('mp flash --monitor reattaches to the board once it is back, and the REPL answers', async () => {
    const f = s3Project();
    f.project.write('fw.bin', makeTestS3Firmware());
    const run = await runMpInteractive(
      ['flash', 'fw.bin', '--monitor'],
      { cwd: f.project.dir, env: f.env, timeoutMs: 60_000 },
      async (io) => {
        await io.until('Ctrl-] to leave.');
        io.type('print("over usb")\r');
        await io.until('over usb\r\n>>> ');
        io.type('\x1d');
      },
    );
    expect(run.code, run.output).toBe(0);
    expect(run.stderr).toContain('the board is back on /dev/ttyACM1');
    expect(run.stderr).toContain('Left the serial monitor; /dev/ttyACM1 is free.');
    const state = f.emulator.readState()!;
    expect(state.stats.replLines).toEqual(['print("over usb")']);
    expect(state.portOpen).toBe(false);
  });
});
