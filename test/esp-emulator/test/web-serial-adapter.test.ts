import { SerialPortStream } from '@serialport/stream';
import { CustomReset, Transport } from 'esptool-js';
import { describe, expect, it } from 'vitest';
import {
  getWebSerialPort,
  listSerialPorts,
  NodeWebSerialPort,
  openWebSerialPort,
} from '../../../packages/core/src/serial/index.ts';
import type { BindingInterface, OpenOptions, SetOptions } from '../src/binding-types.cts';
import { createEspEmulator, makeTestFirmware } from '../src/index.ts';
import { readUntil, resetIntoApplication, sleep, writeText } from './helpers.ts';

/** Forwards to the emulator binding and records every set() the adapter sends. */
function recordingBinding(inner: BindingInterface): BindingInterface & { sets: SetOptions[] } {
  const sets: SetOptions[] = [];
  return {
    sets,
    list: () => inner.list(),
    async open(options: OpenOptions) {
      const port = await inner.open(options);
      const set = port.set.bind(port);
      port.set = (flags: SetOptions) => {
        sets.push({ ...flags });
        return set(flags);
      };
      return port;
    },
  };
}

function boardWithFirmware() {
  const image = makeTestFirmware(4096, 5);
  const flash = new Uint8Array(0x2000).fill(0xff);
  flash.set(image, 0x1000);
  return createEspEmulator([
    { chip: 'esp32', flash },
    { chip: 'esp8266', flash: image },
  ]);
}

describe('listing and identifying ports', () => {
  it('lists every plugged board with its USB-serial bridge ids', async () => {
    const emulator = boardWithFirmware();
    expect(await listSerialPorts(emulator.binding)).toEqual([
      expect.objectContaining({
        path: '/dev/ttyEMU0',
        vendorId: '10c4',
        productId: 'ea60',
        manufacturer: 'Silicon Labs',
      }),
      expect.objectContaining({
        path: '/dev/ttyEMU1',
        vendorId: '1a86',
        productId: '7523',
        serialNumber: undefined,
      }),
    ]);
  });

  it('getWebSerialPort reports the USB ids through getInfo(), as esptool-js reads them', async () => {
    const emulator = boardWithFirmware();
    const port = await getWebSerialPort('/dev/ttyEMU1', { binding: emulator.binding });
    expect(port.getInfo()).toEqual({ usbVendorId: 0x1a86, usbProductId: 0x7523 });
    expect(new Transport(port as never).getInfo()).toBe('WebSerial VendorID 0x1a86 ProductID 0x7523');
  });

  it('listing real ports never crashes the process, even without udevadm', async () => {
    await expect(listSerialPorts()).resolves.toBeInstanceOf(Array);
  });
});

describe('opening and closing', () => {
  it('has no streams until opened, rejects a second open, and reports unknown paths as NetworkError', async () => {
    const emulator = boardWithFirmware();
    const port = new NodeWebSerialPort('/dev/ttyEMU0', { binding: emulator.binding });
    expect(port.readable).toBeNull();
    expect(port.writable).toBeNull();
    await port.open({ baudRate: 115200 });
    await expect(port.open({ baudRate: 115200 })).rejects.toMatchObject({ name: 'InvalidStateError' });
    await port.close();

    const missing = new NodeWebSerialPort('/dev/ttyNOPE', { binding: emulator.binding });
    await expect(missing.open({ baudRate: 115200 })).rejects.toMatchObject({
      name: 'NetworkError',
      message: expect.stringContaining('/dev/ttyNOPE'),
    });
    await expect(missing.open({ baudRate: 0 })).rejects.toBeInstanceOf(TypeError);
  });

  it('close() releases the port while a reader is mid-read and a writer holds the lock', async () => {
    const emulator = boardWithFirmware();
    const device = emulator.device(0);
    const port = await openWebSerialPort('/dev/ttyEMU0', { binding: emulator.binding });
    const reader = port.readable!.getReader();
    const writer = port.writable!.getWriter();
    const pendingRead = reader.read();

    await port.close();

    await expect(pendingRead).resolves.toEqual({ value: undefined, done: true });
    await expect(writer.write(new Uint8Array([1]))).rejects.toMatchObject({ name: 'AbortError' });
    expect(port.readable).toBeNull();
    expect(device.portOpen).toBe(false);
    await port.close();
    await port.open({ baudRate: 115200 });
    expect(device.portOpen).toBe(true);
    await port.close();
  });
});

describe('readable', () => {
  it('is created lazily, stays the same object while open, and is replaced after a cancel', async () => {
    const emulator = boardWithFirmware();
    const port = await openWebSerialPort('/dev/ttyEMU0', { binding: emulator.binding });
    const first = port.readable;
    expect(first).toBeInstanceOf(ReadableStream);
    expect(port.readable).toBe(first);
    await first!.cancel();
    expect(port.readable).not.toBe(first);
    expect(port.readable).toBeInstanceOf(ReadableStream);
    await port.close();
  });

  it('keeps bytes that arrive while nobody reads, like the driver buffer does', async () => {
    const emulator = boardWithFirmware();
    const port = await openWebSerialPort('/dev/ttyEMU0', { binding: emulator.binding });
    await resetIntoApplication(port);
    await sleep(40);
    expect(await readUntil(port, '>>> ')).toContain('MicroPython (emulated ESP32)');
    await port.close();
  });
});

describe('writable', () => {
  it('resolves a write once the binding has the bytes, and writer.close() drains', async () => {
    const emulator = boardWithFirmware();
    const device = emulator.device(0);
    const port = await openWebSerialPort('/dev/ttyEMU0', { binding: emulator.binding });
    const before = device.stats.bytesReceived;
    const writer = port.writable!.getWriter();
    await writer.write(new Uint8Array(300));
    expect(device.stats.bytesReceived - before).toBe(300);
    await writer.close();
    expect(port.writable).toBeInstanceOf(WritableStream);
    await port.close();
  });
});

describe('control lines', () => {
  it('setSignals always sends both DTR and RTS, the one not given keeping its last value', async () => {
    const emulator = boardWithFirmware();
    const binding = recordingBinding(emulator.binding);
    const port = await openWebSerialPort('/dev/ttyEMU0', { binding });
    await port.setSignals({ dataTerminalReady: false });
    await port.setSignals({ requestToSend: false });
    await port.setSignals({ requestToSend: true });
    await port.setSignals({ dataTerminalReady: true, requestToSend: false });
    await port.setSignals({ break: true });
    expect(binding.sets.map(({ dtr, rts, brk }) => ({ dtr, rts, brk }))).toEqual([
      { dtr: false, rts: true, brk: false },
      { dtr: false, rts: false, brk: false },
      { dtr: false, rts: true, brk: false },
      { dtr: true, rts: false, brk: false },
      { dtr: true, rts: false, brk: true },
    ]);
    await expect(port.setSignals({})).rejects.toBeInstanceOf(TypeError);
    await port.close();
  });

  it("serialport alone asserts the line you leave out, so esptool-js's line-by-line reset would miss download mode", async () => {
    const emulator = boardWithFirmware();
    const device = emulator.device(0);
    const raw = new SerialPortStream({
      binding: emulator.binding,
      path: '/dev/ttyEMU0',
      baudRate: 115200,
      autoOpen: false,
    });
    const set = (flags: SetOptions) =>
      new Promise<void>((resolve, reject) => raw.set(flags, (error) => (error ? reject(error) : resolve())));
    await new Promise<void>((resolve, reject) => raw.open((error) => (error ? reject(error) : resolve())));
    // The classic reset "D0|R1|W100|D1|R0|W50|D0", one line per call, as esptool-js's setDTR/setRTS do.
    await set({ dtr: false });
    await set({ rts: true });
    await sleep(100);
    await set({ dtr: true });
    await set({ rts: false });
    await sleep(50);
    await set({ dtr: false });
    expect(device.stats.boots).not.toContain('download');
    expect(device.mode).toBe('reset');
    await new Promise<void>((resolve) => raw.close(() => resolve()));
  });

  it("esptool-js's line-by-line classic reset (setDTR / setRTS) reaches download mode", async () => {
    const emulator = boardWithFirmware();
    const device = emulator.device(0);
    const port = await getWebSerialPort('/dev/ttyEMU0', { binding: emulator.binding });
    const transport = new Transport(port as never);
    transport.trace = () => {};
    await transport.connect(115200);
    await new CustomReset(transport, 'D0|R1|W100|D1|R0|W50|D0').reset();
    expect(device.mode).toBe('download');
    expect(device.stats.boots.at(-1)).toBe('download');
    await transport.disconnect();
  });

  it('setBaudRate changes the host rate in place; bytes at the wrong rate reach the device as garbage', async () => {
    const emulator = boardWithFirmware();
    const device = emulator.device(0);
    const port = await openWebSerialPort('/dev/ttyEMU0', { binding: emulator.binding });
    await resetIntoApplication(port);
    await readUntil(port, '>>> ');
    await port.setBaudRate(460800);
    expect(port.baudRate).toBe(460800);
    await writeText(port, 'print("x")\r');
    await sleep(10);
    expect(device.stats.garbledBytesReceived).toBe(11);
    expect(device.stats.replLines).not.toContain('print("x")');
    await port.close();
  });
});

describe('unplugging', () => {
  it('ends reads with NetworkError, fires "disconnect", fails writes, and the port reappears after replug', async () => {
    const emulator = boardWithFirmware();
    const device = emulator.device(0);
    const port = await openWebSerialPort('/dev/ttyEMU0', { binding: emulator.binding });
    const disconnected = new Promise((resolve) =>
      port.addEventListener('disconnect', resolve, { once: true }),
    );
    const reader = port.readable!.getReader();
    const writer = port.writable!.getWriter();
    const pendingRead = reader.read();

    device.unplug();

    await expect(pendingRead).rejects.toMatchObject({
      name: 'NetworkError',
      message: 'The device has been lost.',
    });
    await disconnected;
    expect(port.connected).toBe(false);
    expect(port.readable).toBeNull();
    expect(port.writable).toBeNull();
    await expect(writer.write(new Uint8Array([1]))).rejects.toMatchObject({ name: 'NetworkError' });
    await expect(port.setSignals({ requestToSend: true })).rejects.toMatchObject({ name: 'NetworkError' });
    expect((await listSerialPorts(emulator.binding)).map((p) => p.path)).not.toContain('/dev/ttyEMU0');
    await port.close();
    await expect(port.open({ baudRate: 115200 })).rejects.toMatchObject({ name: 'NetworkError' });

    device.replug();
    expect((await listSerialPorts(emulator.binding)).map((p) => p.path)).toContain('/dev/ttyEMU0');
    await port.open({ baudRate: 115200 });
    expect(port.connected).toBe(true);
    await port.close();
  });
});
