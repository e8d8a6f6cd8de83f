/**
 * An ESP32-S3 / C3 reached through its own USB-Serial/JTAG peripheral: listed as 303a:1001 with its
 * MAC as serial number, entered into the ROM loader only by esptool's USB-JTAG sequence, and gone
 * from the bus for a moment (possibly coming back under another name) when it restarts into its
 * application.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClassicReset, type Transport, UsbJtagSerialReset } from 'esptool-js';
import { afterAll, describe, expect, it } from 'vitest';
import { listSerialPorts, type NodeWebSerialPort } from '../../../packages/core/src/serial/index.ts';
import {
  createEspEmulator,
  loadEmulatorConfig,
  makeTestFirmware,
  writeEmulatorConfig,
} from '../src/index.ts';
import { flashOptions, openLoader, readUntil, resetIntoApplication, sleep, writeText } from './helpers.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function s3WithFirmware(options: { renames?: string[]; reenumerateMs?: number } = {}) {
  const image = makeTestFirmware(20_000, 9);
  const emulator = createEspEmulator({
    chip: 'esp32s3',
    path: '/dev/ttyACM0',
    usb: 'usb-serial-jtag',
    flash: image,
    reenumerateMs: options.reenumerateMs ?? 30,
    renames: options.renames,
  });
  return { emulator, device: emulator.device(), image };
}

/** Runs an esptool-js reset strategy on a port opened at the ROM's rate. */
async function runReset(
  port: NodeWebSerialPort,
  make: (transport: Transport) => { reset(): Promise<void> },
): Promise<void> {
  const { Transport } = await import('esptool-js');
  const transport = new Transport(port as unknown as ConstructorParameters<typeof Transport>[0], false);
  transport.trace = () => {};
  await transport.connect(115200);
  await make(transport).reset();
}

async function until(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}

describe('an ESP32-S3 behind its USB-Serial/JTAG peripheral', () => {
  it('is listed as Espressif 303a:1001 with its MAC as serial number', async () => {
    const { emulator } = s3WithFirmware();
    expect(await listSerialPorts(emulator.binding)).toEqual([
      expect.objectContaining({
        path: '/dev/ttyACM0',
        vendorId: '303a',
        productId: '1001',
        manufacturer: 'Espressif',
        serialNumber: 'F4:12:FA:A1:B2:C3',
      }),
    ]);
  });

  it('esptool-js picks the USB-JTAG sequence from the USB ids, enters the ROM loader and flashes; the port stays', async () => {
    const { emulator, device } = s3WithFirmware();
    const { transport, loader, log } = await openLoader(emulator);
    const image = makeTestFirmware(60_000, 10);
    await loader.main();
    expect(log).toContain('Chip is ESP32-S3 (QFN56) (revision v0.2)');
    expect(device.stats.boots).toEqual(['app', 'download']);
    expect(device.stats.reenumerations).toBe(0);
    expect(device.mode).toBe('stub');
    await loader.writeFlash(flashOptions(image, 0x0));
    expect(log).toContain('Hash of data verified.');
    expect(device.flash.subarray(0, image.length)).toEqual(image);
    expect(device.stats.internalErrors).toEqual([]);
    await transport.disconnect();
  });

  it('the classic DTR/RTS sequence of a CP210x board restarts the application instead, and the port drops', async () => {
    const { emulator, device } = s3WithFirmware();
    const { port } = await openLoader(emulator);
    // Its first step resets the chip, whose application takes the port away before the next step.
    await expect(runReset(port, (transport) => new ClassicReset(transport, 50))).rejects.toThrow('unplugged');
    expect(device.stats.boots).toEqual(['app', 'app']);
    expect(device.stats.reenumerations).toBe(1);
    await port.close();
  });

  it('the USB-JTAG sequence does not enter the loader of a board with an auto-reset circuit either', async () => {
    const emulator = createEspEmulator({ chip: 'esp32s3', flash: makeTestFirmware(4096, 1) });
    const { port } = await openLoader(emulator);
    await runReset(port, (transport) => new UsbJtagSerialReset(transport));
    await sleep(30);
    expect(emulator.device().stats.boots).toEqual(['app', 'app']);
    expect(port.connected).toBe(true);
    await port.close();
  });

  it('a hard reset leaves the bus, comes back under the next name with the flash kept, and runs the application', async () => {
    const { emulator, device, image } = s3WithFirmware({ renames: ['/dev/ttyACM1'], reenumerateMs: 40 });
    const { port } = await openLoader(emulator);
    await port.open({ baudRate: 115200 });
    const flashBefore = device.flash.slice();
    // EN low: a reset request to the peripheral; the second call finds the device gone.
    await port.setSignals({ dataTerminalReady: false, requestToSend: true });
    await sleep(20);
    await expect(port.setSignals({ dataTerminalReady: false, requestToSend: false })).rejects.toThrow(
      'unplugged',
    );
    expect(await listSerialPorts(emulator.binding)).toEqual([]);
    await port.close();

    await until(() => device.listed);
    expect(device.path).toBe('/dev/ttyACM1');
    expect((await listSerialPorts(emulator.binding)).map((p) => p.path)).toEqual(['/dev/ttyACM1']);
    expect(device.flash).toEqual(flashBefore);
    expect(device.mode).toBe('app');
    expect(device.firmwareId()).toBe(device.banner.split(' ').at(-1));
    expect(device.flash.subarray(0, image.length)).toEqual(image);

    const { port: again } = await openLoader(emulator, { path: '/dev/ttyACM1' });
    await again.open({ baudRate: 115200 });
    await writeText(again, 'print("back")\r');
    expect(await readUntil(again, 'back\r\n>>> ')).toBe('print("back")\r\nback\r\n>>> ');
    await again.close();
  });

  it('opening and closing the port (DTR and RTS together) restarts nothing', async () => {
    const { emulator, device } = s3WithFirmware();
    const { port } = await openLoader(emulator);
    await port.open({ baudRate: 115200 });
    await resetIntoApplication(port).catch(() => {});
    await port.close().catch(() => {});
    await until(() => device.listed);
    const resets = device.stats.resets;
    const again = (await openLoader(emulator)).port;
    await again.open({ baudRate: 115200 });
    await again.close();
    expect(device.stats.resets).toBe(resets);
  });

  it('an ESP32 has no such peripheral', () => {
    expect(() => createEspEmulator({ chip: 'esp32', usb: 'usb-serial-jtag' })).toThrow(
      'The ESP32 has no USB-Serial/JTAG peripheral',
    );
    const dir = mkdtempSync(join(tmpdir(), 'mp-emu-usb-'));
    dirs.push(dir);
    expect(() => writeEmulatorConfig(dir, [{ chip: 'esp32', usb: 'usb-serial-jtag' }])).toThrow(
      'devices[0].usb: the ESP32 has no USB-Serial/JTAG peripheral',
    );
  });

  it('in a subprocess setup, the name it came back under is kept for the next process', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mp-emu-usb-'));
    dirs.push(dir);
    const files = writeEmulatorConfig(dir, [
      {
        chip: 'esp32c3',
        path: '/dev/ttyACM0',
        usb: 'usb-serial-jtag',
        flash: makeTestFirmware(4096, 2),
        reenumerateMs: 20,
        renames: ['/dev/ttyACM1', '/dev/ttyACM2'],
      },
    ]);
    const first = loadEmulatorConfig(files.configPath).emulator;
    const { port } = await openLoader(first, { path: '/dev/ttyACM0' });
    await port.open({ baudRate: 115200 });
    await resetIntoApplication(port).catch(() => {});
    await port.close();
    expect(files.readState()!.path).toBe('/dev/ttyACM1');
    await until(() => first.device().listed);

    const second = loadEmulatorConfig(files.configPath).emulator;
    expect(second.device().path).toBe('/dev/ttyACM1');
    expect(second.device().pendingRenames).toEqual(['/dev/ttyACM2']);
  });
});
