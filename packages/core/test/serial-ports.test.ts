/**
 * Port selection: --port wins; otherwise the project's remembered port; otherwise the one known
 * USB serial adapter; several are asked about (TTY) or listed in an error (elsewhere).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createEspEmulator } from '@mp/esp-emulator';
import { describe, expect, it } from 'vitest';
import { knownUsbAdapter, listBoardPorts, MpError, rememberPort, selectPort } from '../src/index.ts';
import { tempDir } from './flash-helpers.ts';

function twoBoards() {
  return createEspEmulator([{ chip: 'esp8266' }, { chip: 'esp32' }]);
}

describe('USB ids', () => {
  it('knows CH340, CP210x, FTDI and Espressif USB adapters', () => {
    expect(knownUsbAdapter(0x1a86, 0x7523)?.family).toBe('CH340');
    expect(knownUsbAdapter(0x10c4, 0xea60)?.family).toBe('CP210x');
    expect(knownUsbAdapter(0x0403, 0x6001)?.family).toBe('FTDI');
    expect(knownUsbAdapter(0x303a, 0x1001)?.name).toBe('Espressif USB-Serial/JTAG');
    expect(knownUsbAdapter(0x303a, 0x0002)?.family).toBe('Espressif USB');
    expect(knownUsbAdapter(0x2341, 0x0043)).toBeUndefined();
    expect(knownUsbAdapter(undefined, undefined)).toBeUndefined();
  });
});

describe('listBoardPorts', () => {
  it('lists ports with a known adapter; --all adds the others', async () => {
    const emulator = createEspEmulator([
      { chip: 'esp8266' },
      { chip: 'esp32', usb: { vendorId: '2341', productId: '0043', manufacturer: 'Arduino' } },
    ]);
    const known = await listBoardPorts({ binding: emulator.binding });
    expect(known.map((p) => [p.path, p.adapter?.name, p.usbId])).toEqual([
      ['/dev/ttyEMU0', 'WCH CH340', '1a86:7523'],
    ]);
    const all = await listBoardPorts({ binding: emulator.binding, all: true });
    expect(all.map((p) => p.path)).toEqual(['/dev/ttyEMU0', '/dev/ttyEMU1']);
    expect(all[1]!.adapter).toBeUndefined();
  });
});

describe('selectPort', () => {
  it('uses --port as given and remembers nothing', async () => {
    const stateDir = tempDir();
    const selected = await selectPort({ explicit: '/dev/ttyUSB3', stateDir, binding: twoBoards().binding });
    expect(selected).toEqual({ path: '/dev/ttyUSB3', source: 'explicit' });
    await expect(readFile(join(stateDir, 'port.json'), 'utf8')).rejects.toThrow();
  });

  it('picks the only board and remembers it for the project', async () => {
    const stateDir = tempDir();
    const emulator = createEspEmulator({ chip: 'esp32' });
    const selected = await selectPort({ stateDir, binding: emulator.binding });
    expect(selected).toMatchObject({ path: '/dev/ttyEMU0', source: 'detected' });
    expect(JSON.parse(await readFile(join(stateDir, 'port.json'), 'utf8'))).toMatchObject({
      path: '/dev/ttyEMU0',
      usbId: '10c4:ea60',
      serialNumber: '0001',
    });
  });

  it('lists several boards in an error when it cannot ask', async () => {
    const error = await selectPort({ stateDir: tempDir(), binding: twoBoards().binding }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(MpError);
    expect((error as MpError).code).toBe('PORT_AMBIGUOUS');
    expect((error as MpError).message).toBe(
      'Several boards are connected:\n  /dev/ttyEMU0  WCH CH340 (1a86:7523)\n  /dev/ttyEMU1  Silicon Labs CP2102/CP2104 (10c4:ea60)  serial 0001',
    );
    expect((error as MpError).hint).toMatch(/--port \/dev\/ttyEMU0/);
  });

  it('asks when it can, remembers the answer, and uses it next time without asking', async () => {
    const stateDir = tempDir();
    const emulator = twoBoards();
    const asked: string[][] = [];
    const selected = await selectPort({
      stateDir,
      binding: emulator.binding,
      choose: async (ports) => {
        asked.push(ports.map((p) => p.path));
        return ports[1]!;
      },
    });
    expect(asked).toEqual([['/dev/ttyEMU0', '/dev/ttyEMU1']]);
    expect(selected).toMatchObject({ path: '/dev/ttyEMU1', source: 'chosen' });
    const again = await selectPort({
      stateDir,
      binding: emulator.binding,
      choose: async () => {
        throw new Error('should not ask');
      },
    });
    expect(again).toMatchObject({ path: '/dev/ttyEMU1', source: 'remembered' });
  });

  it('finds a remembered adapter that came back under another name by its serial number', async () => {
    const stateDir = tempDir();
    await rememberPort(stateDir, { path: '/dev/ttyUSB0', usbId: '10c4:ea60', serialNumber: '0001' });
    const selected = await selectPort({ stateDir, binding: twoBoards().binding });
    expect(selected).toMatchObject({ path: '/dev/ttyEMU1', source: 'remembered' });
    expect(JSON.parse(await readFile(join(stateDir, 'port.json'), 'utf8')).path).toBe('/dev/ttyEMU1');
  });

  it('says what to check when no board is connected', async () => {
    const emulator = createEspEmulator({ chip: 'esp8266' });
    emulator.device().unplug();
    const error = (await selectPort({ stateDir: tempDir(), binding: emulator.binding }).catch(
      (e: unknown) => e,
    )) as MpError;
    expect(error.code).toBe('PORT_NOT_FOUND');
    expect(error.message).toMatch(
      /^No board found: no USB serial adapter \(CH340, CP210x, FTDI, Espressif USB\) is connected/,
    );
    expect(error.hint).toMatch(/data cable.*--port/);
  });
});
