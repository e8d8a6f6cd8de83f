/**
 * The baud rates each loader runs at, as the ROMs and esptool-js's stub (esp-flasher-stub) set
 * them: the ROMs' autobaud, CHANGE_BAUDRATE in the ESP32 ROM (not the ESP8266's), how each stub
 * sets its UART when it starts and when asked to switch, and the limits of an adapter and a link.
 */
import { ESPLoader, Transport } from 'esptool-js';
import { describe, expect, it } from 'vitest';
import { getWebSerialPort } from '../../../packages/core/src/serial/index.ts';
import { COMMANDS, createEspEmulator, type EspDeviceOptions } from '../src/index.ts';
import { sleep, u32s } from './helpers.ts';

/** esptool-js over the emulator, the port opened (and the ROM synced) at `syncBaud`. */
async function connectAt(options: EspDeviceOptions, syncBaud: number) {
  const emulator = createEspEmulator(options);
  const device = emulator.device();
  const port = await getWebSerialPort(device.path, { binding: emulator.binding });
  const transport = new Transport(port as unknown as ConstructorParameters<typeof Transport>[0], false);
  transport.trace = () => {};
  const loader = new ESPLoader({
    transport,
    baudrate: syncBaud,
    romBaudrate: syncBaud,
    terminal: { clean() {}, writeLine() {}, write() {} },
  });
  await loader.connect();
  return { emulator, device, port, transport, loader };
}

const magic = (loader: ESPLoader, timeout?: number) =>
  loader.readReg(0x40001000, timeout).then((value) => value >>> 0);

describe('the ESP8266', () => {
  it('syncs its ROM at the rate the SYNC packets come at; the ROM has no CHANGE_BAUDRATE; the stub keeps the rate', async () => {
    const { device, transport, loader } = await connectAt({ chip: 'esp8266' }, 460800);
    expect(device.baudRate).toBe(460800);
    expect(await magic(loader)).toBe(0xfff0c101);
    await expect(
      loader.checkCommand('change baud', COMMANDS.CHANGE_BAUDRATE, u32s(921600, 0)),
    ).rejects.toThrow(/unsupported|not supported/i);
    await loader.runStub();
    expect(device.mode).toBe('stub');
    expect(device.baudRate).toBe(460800);
    await transport.disconnect();
  });

  it("its stub's CHANGE_BAUDRATE takes the divider in use for 115200's: after a sync at 460800, asking for 230400 gives 921600", async () => {
    const { device, port, transport, loader } = await connectAt({ chip: 'esp8266' }, 460800);
    await loader.runStub();
    await loader.checkCommand('change baud', COMMANDS.CHANGE_BAUDRATE, u32s(230400, 460800));
    // The stub switches 5 ms after its answer (a command sent meanwhile is answered at the new rate).
    await sleep(10);
    expect(device.baudRate).toBe(921600);
    await port.setBaudRate(921600);
    transport.flushInput();
    expect(await magic(loader)).toBe(0xfff0c101);
    expect(device.stats.baudChanges).toEqual([921600]);
    await transport.disconnect();
  });
});

describe('the ESP32', () => {
  it('its ROM switches with CHANGE_BAUDRATE (second word 0); the crystal it measures is exactly 40 MHz', async () => {
    const { device, port, transport, loader } = await connectAt({ chip: 'esp32' }, 115200);
    // esptool esp32.py get_rom_cal_crystal_freq: RTCCALICFG1 bits 7..31, eFuse word 4 bits 0..7.
    const cali = ((await loader.readReg(0x3ff5f06c)) >>> 7) & 0x1ffffff;
    const clk8M = (await loader.readReg(0x3ff5a010)) & 0xff;
    expect((cali * 15625 * clk8M) / 40).toBe(40_000_000);
    await loader.checkCommand('change baud', COMMANDS.CHANGE_BAUDRATE, u32s(460800, 0));
    await port.setBaudRate(460800);
    transport.flushInput();
    expect(await magic(loader)).toBe(0x00f01d83);
    expect(device.baudRate).toBe(460800);
    await transport.disconnect();
  });

  it('its ROM also syncs at a faster rate', async () => {
    const { device, transport, loader } = await connectAt({ chip: 'esp32' }, 460800);
    expect(device.baudRate).toBe(460800);
    expect(await magic(loader)).toBe(0x00f01d83);
    await transport.disconnect();
  });

  it('its stub sets the UART to 115200 when it starts: uploaded over a faster link, its greeting is garbage', async () => {
    const { device, transport, loader } = await connectAt({ chip: 'esp32' }, 460800);
    await expect(loader.runStub()).rejects.toThrow();
    expect(device.mode).toBe('stub');
    expect(device.baudRate).toBe(115200);
    expect(device.stats.garbledBytesSent).toBeGreaterThan(0);
    await transport.disconnect();

    const fresh = await connectAt({ chip: 'esp32' }, 115200);
    await fresh.loader.runStub();
    expect(await magic(fresh.loader)).toBe(0x00f01d83);
    await fresh.transport.disconnect();
  });
});

describe('the stub', () => {
  it('stays whatever the reboot flag of FLASH_END says (esp-flasher-stub: "TODO: Implement reboot")', async () => {
    const { device, transport, loader } = await connectAt({ chip: 'esp8266' }, 115200);
    await loader.runStub();
    const boots = [...device.stats.boots];
    for (const reboot of [true, false]) {
      await loader.flashBegin(0, 0);
      await loader.flashFinish(reboot);
      expect(device.mode).toBe('stub');
      expect(await magic(loader)).toBe(0xfff0c101);
    }
    expect(device.stats.boots).toEqual(boots);
    await transport.disconnect();
  });
});

describe('adapter and link', () => {
  it('an adapter refuses a rate above its limit, at open and when switching', async () => {
    const emulator = createEspEmulator({ chip: 'esp32', adapterMaxBaud: 921600 });
    const port = await getWebSerialPort(emulator.device().path, { binding: emulator.binding });
    await expect(port.open({ baudRate: 1_500_000 })).rejects.toThrow(/baud rate/);
    await port.open({ baudRate: 115200 });
    await port.setBaudRate(921600);
    await expect(port.setBaudRate(1_500_000)).rejects.toThrow(/baud rate/);
    expect(port.baudRate).toBe(921600);
    await port.close();
  });

  it('above the link limit every byte is garbage, both ways', async () => {
    const { device, port, transport, loader } = await connectAt(
      { chip: 'esp32', linkMaxBaud: 921600 },
      115200,
    );
    await loader.runStub();
    await loader.checkCommand('change baud', COMMANDS.CHANGE_BAUDRATE, u32s(1_500_000, 115200));
    await sleep(10);
    await port.setBaudRate(1_500_000);
    transport.flushInput();
    await expect(magic(loader, 200)).rejects.toThrow();
    expect(device.baudRate).toBe(1_500_000);
    expect(device.stats.garbledBytesReceived).toBeGreaterThan(0);
    await transport.disconnect();
  });
});
