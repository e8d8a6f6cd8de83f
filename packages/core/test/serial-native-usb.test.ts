/**
 * Finding a board on the chip's own USB (ESP32-S3/C3 USB-Serial/JTAG, 303a:1001): detected as a
 * board, recognised again by its serial number (the chip's MAC) when it comes back under another
 * name, and followed while it leaves the bus and returns.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createEspEmulator } from '@mp/esp-emulator';
import { makeTestFirmware } from '@mp/test-utils/esp-firmware';
import { describe, expect, it } from 'vitest';
import {
  describePort,
  findBoardPort,
  knownUsbAdapter,
  listBoardPorts,
  rememberPort,
  selectPort,
  waitForBoardPort,
} from '../src/index.ts';
import { tempDir } from './flash-helpers.ts';

function s3OnUsb(options: { renames?: string[]; mac?: string; path?: string; reenumerateMs?: number } = {}) {
  const image = makeTestFirmware('ESP32').image.slice();
  image[12] = 9;
  return {
    chip: 'esp32s3' as const,
    path: options.path ?? '/dev/ttyACM0',
    usb: 'usb-serial-jtag' as const,
    flash: image,
    reenumerateMs: options.reenumerateMs ?? 80,
    renames: options.renames,
    mac: options.mac,
  };
}

/** What the USB-Serial/JTAG peripheral's reset request does to a running board: restart, re-enumerate. */
function restart(device: { setLines(dtr: boolean, rts: boolean): void }): void {
  device.setLines(false, true);
  device.setLines(false, false);
}

describe('detecting a board on its own USB', () => {
  it('lists the USB-Serial/JTAG port as a board, with the MAC as serial number', async () => {
    const emulator = createEspEmulator(s3OnUsb());
    const [port] = await listBoardPorts({ binding: emulator.binding });
    expect(port).toMatchObject({
      path: '/dev/ttyACM0',
      usbId: '303a:1001',
      serialNumber: 'F4:12:FA:A1:B2:C3',
    });
    expect(describePort(port!)).toBe(
      '/dev/ttyACM0  Espressif USB-Serial/JTAG (303a:1001)  serial F4:12:FA:A1:B2:C3',
    );
    expect(knownUsbAdapter(0x303a, 0x0002)?.name).toBe('Espressif USB-OTG (ESP32-S2 ROM)');
    expect(knownUsbAdapter(0x303a, 0x4001)?.name).toBe('Espressif USB');
  });

  it('finds the remembered board under its new name by its serial number, and remembers that', async () => {
    const emulator = createEspEmulator(s3OnUsb({ path: '/dev/ttyACM1' }));
    const stateDir = tempDir();
    await rememberPort(stateDir, {
      path: '/dev/ttyACM0',
      usbId: '303a:1001',
      serialNumber: 'F4:12:FA:A1:B2:C3',
    });
    const selected = await selectPort({ stateDir, binding: emulator.binding });
    expect(selected).toMatchObject({ path: '/dev/ttyACM1', source: 'remembered' });
    expect(JSON.parse(await readFile(join(stateDir, 'port.json'), 'utf8')).path).toBe('/dev/ttyACM1');
  });

  it('does not take another board of the same kind for it', async () => {
    const emulator = createEspEmulator([
      s3OnUsb({ path: '/dev/ttyACM1', mac: 'f4:12:fa:00:00:01' }),
      s3OnUsb({ path: '/dev/ttyACM2', mac: 'f4:12:fa:00:00:02' }),
    ]);
    const ports = await listBoardPorts({ binding: emulator.binding });
    const gone = { path: '/dev/ttyACM0', usbId: '303a:1001', serialNumber: 'F4:12:FA:00:00:03' };
    expect(findBoardPort(gone, ports)).toBeUndefined();
    // Same name, another board: not it either.
    expect(findBoardPort({ ...gone, path: '/dev/ttyACM1' }, ports)).toBeUndefined();
    expect(findBoardPort({ ...gone, serialNumber: 'F4:12:FA:00:00:02' }, ports)?.path).toBe('/dev/ttyACM2');
  });
});

describe('waitForBoardPort', () => {
  const identity = { path: '/dev/ttyACM0', usbId: '303a:1001', serialNumber: 'F4:12:FA:A1:B2:C3' };

  it('follows the board off the bus and back under its new name', async () => {
    const emulator = createEspEmulator(s3OnUsb({ renames: ['/dev/ttyACM1'] }));
    const waiting = waitForBoardPort(identity, {
      binding: emulator.binding,
      goneWithinMs: 500,
      backWithinMs: 2000,
      pollMs: 10,
    });
    restart(emulator.device());
    const back = await waiting;
    expect(back).toMatchObject({ returned: true, reenumerated: true, port: { path: '/dev/ttyACM1' } });
  });

  it('says so when the board stays on the bus', async () => {
    const emulator = createEspEmulator(s3OnUsb());
    const back = await waitForBoardPort(identity, {
      binding: emulator.binding,
      goneWithinMs: 60,
      backWithinMs: 500,
      pollMs: 10,
    });
    expect(back).toMatchObject({ returned: true, reenumerated: false, port: { path: '/dev/ttyACM0' } });
  });

  it('gives up when it does not come back in time', async () => {
    const emulator = createEspEmulator(s3OnUsb());
    emulator.device().unplug();
    const back = await waitForBoardPort(identity, {
      binding: emulator.binding,
      goneWithinMs: 50,
      backWithinMs: 100,
      pollMs: 10,
    });
    expect(back).toEqual({ returned: false, reenumerated: true });
  });

  it('stops when cancelled', async () => {
    const emulator = createEspEmulator(s3OnUsb());
    emulator.device().unplug();
    const abort = new AbortController();
    const waiting = waitForBoardPort(identity, {
      binding: emulator.binding,
      signal: abort.signal,
      goneWithinMs: 50,
      backWithinMs: 10_000,
      pollMs: 10,
    });
    setTimeout(() => abort.abort(), 30);
    await expect(waiting).rejects.toMatchObject({ code: 'CANCELLED' });
  });
});
