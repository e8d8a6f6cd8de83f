import { describe, expect, it } from 'vitest';
import { listSerialPorts } from '../../../packages/core/src/serial/index.ts';
import { createEspEmulator, makeTestFirmware, STUB_ERROR } from '../src/index.ts';
import { flashOptions, openLoader } from './helpers.ts';

const dataSeq = (data: Uint8Array) =>
  new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(4, true);

describe('fault injection', () => {
  it('a dropped SYNC is retried by esptool-js and the connection still succeeds', async () => {
    const emulator = createEspEmulator({
      chip: 'esp8266',
      faults: [{ action: 'drop', command: 'SYNC', occurrence: 1 }],
    });
    const device = emulator.device();
    const { loader, transport } = await openLoader(emulator);
    await loader.connect();
    expect(device.stats.faultsFired).toEqual([
      { action: 'drop', direction: 'command', command: 'SYNC', occurrence: 1 },
    ]);
    expect(device.stats.commands.SYNC).toBe(1);
    await transport.disconnect();
  });

  it('a delayed frame holds everything behind it for the given time', async () => {
    const emulator = createEspEmulator({ chip: 'esp32' });
    const device = emulator.device();
    const { loader, transport } = await openLoader(emulator);
    await loader.connect();
    device.faults.add({ action: 'delay', command: 'READ_REG', delayMs: 250 });
    const started = performance.now();
    expect((await loader.readReg(0x40001000)) >>> 0).toBe(0x00f01d83);
    expect(performance.now() - started).toBeGreaterThanOrEqual(240);
    await transport.disconnect();
  });

  it('a corrupted data block gets an error status; the retry of the same block completes the flash', async () => {
    const image = makeTestFirmware(60_000, 11);
    const emulator = createEspEmulator({
      chip: 'esp32',
      faults: [{ action: 'corrupt', command: 'FLASH_DEFL_DATA', when: (frame) => dataSeq(frame.data) === 1 }],
    });
    const device = emulator.device();
    const { loader, transport, log } = await openLoader(emulator);
    await loader.main();
    await loader.writeFlash(flashOptions(image, 0x1000));
    expect(log).toContain('Hash of data verified.');
    expect(device.flash.subarray(0x1000, 0x1000 + image.length)).toEqual(image);
    expect(device.stats.errorResponses).toContainEqual({
      command: 'FLASH_DEFL_DATA',
      error: STUB_ERROR.BAD_DATA_CHECKSUM,
      stub: true,
    });
    expect(device.stats.faultsFired).toEqual([
      { action: 'corrupt', direction: 'command', command: 'FLASH_DEFL_DATA', occurrence: 2 },
    ]);
    await transport.disconnect();
  });

  it('a lost answer to a data block: esptool-js sends the block again, the stub inflates it twice and stops answering', async () => {
    const image = makeTestFirmware(200_000, 7);
    const emulator = createEspEmulator({
      chip: 'esp32',
      faults: [{ action: 'drop', direction: 'response', command: 'FLASH_DEFL_DATA', occurrence: 2 }],
    });
    const device = emulator.device();
    const { loader, transport } = await openLoader(emulator);
    await loader.main();
    await expect(loader.writeFlash(flashOptions(image, 0x1000))).rejects.toThrow(
      /Serial data stream stopped/,
    );
    expect(device.stats.stubHangs).toBe(1);
    // The block whose answer was lost arrived twice, with the same sequence number.
    expect(device.stats.commands.FLASH_DEFL_DATA).toBeGreaterThan(3);
    await transport.disconnect();
  }, 30_000);

  it('a corrupted reply is not taken for the answer', async () => {
    const emulator = createEspEmulator({
      chip: 'esp32',
      faults: [{ action: 'corrupt', direction: 'response', command: 'READ_REG', byte: 1 }],
    });
    const { loader, transport } = await openLoader(emulator);
    await loader.connect('default_reset', 7, false);
    await expect(loader.readReg(0x40001000, 200)).rejects.toThrow();
    expect((await loader.readReg(0x40001000)) >>> 0).toBe(0x00f01d83);
    await transport.disconnect();
  });

  it('unplugged mid-write, the port reports the loss at once; after replug a rerun completes', async () => {
    const image = makeTestFirmware(120_000, 13);
    const emulator = createEspEmulator({
      chip: 'esp32',
      faults: [{ action: 'unplug', command: 'FLASH_DEFL_DATA', occurrence: 3 }],
    });
    const device = emulator.device();
    const first = await openLoader(emulator);
    await first.loader.main();
    // esptool-js does not watch for device loss (it waits out a 3 s read timeout), so a flasher has to
    // race it against the port's "disconnect" event, as done here.
    const lost = new Promise((resolve) => first.port.addEventListener('disconnect', resolve, { once: true }));
    const flashing = first.loader.writeFlash(flashOptions(image, 0x1000));
    flashing.catch(() => {});
    const outcome = await Promise.race([flashing.then(() => 'flashed'), lost.then(() => 'device lost')]);
    expect(outcome).toBe('device lost');
    expect(device.stats.unplugs).toBe(1);
    expect(device.stats.commands.FLASH_DEFL_DATA).toBe(2);
    expect(device.flash.subarray(0x1000, 0x1000 + image.length)).not.toEqual(image);
    expect(await listSerialPorts(emulator.binding)).toEqual([]);
    await first.transport.disconnect();

    device.replug();
    const second = await openLoader(emulator);
    await second.loader.main();
    await second.loader.writeFlash(flashOptions(image, 0x1000));
    expect(second.log).toContain('Hash of data verified.');
    expect(device.flash.subarray(0x1000, 0x1000 + image.length)).toEqual(image);
    await second.transport.disconnect();
  });
});
