/**
 * The application after boot as a real process behind a pty (application.ts): what the host writes
 * in the application reaches the program, what it prints reaches the host, a program that ends is
 * started again (a board's soft reboot), and a reset into the bootloader takes the UART back.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { getWebSerialPort } from '../../../packages/core/src/serial/index.ts';
import { createEspEmulator, makeTestFirmware } from '../src/index.ts';
import { readUntil, resetIntoApplication, sleep, writeText } from './helpers.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function boardRunning(command: string) {
  const cwd = mkdtempSync(join(tmpdir(), 'mp-emulator-app-'));
  dirs.push(cwd);
  const emulator = createEspEmulator({
    chip: 'esp8266',
    flash: makeTestFirmware(8192, 3),
    application: { command, cwd },
  });
  const device = emulator.device();
  const port = await getWebSerialPort(device.path, { binding: emulator.binding });
  await port.open({ baudRate: 115200 });
  await resetIntoApplication(port);
  return { device, port };
}

describe('the emulated application as a real process', () => {
  it('passes the UART both ways after the banner', async () => {
    const { device, port } = await boardRunning('cat');
    try {
      expect(await readUntil(port, `${device.banner}\r\n`)).toContain(device.banner);
      await writeText(port, 'hello over the pty');
      expect(await readUntil(port, 'hello over the pty')).toContain('hello over the pty');
      expect(device.mode).toBe('app');
      expect(device.applicationRunning).toBe(true);
      expect(device.stats.replLines).toEqual([]); // the built-in REPL saw nothing
    } finally {
      await port.close();
      device.unplug();
    }
  });

  it('starts the program again when it ends, as a board soft-reboots', async () => {
    const { device, port } = await boardRunning('head -c 4');
    try {
      await readUntil(port, `${device.banner}\r\n`);
      await writeText(port, 'abcd');
      expect(await readUntil(port, 'MPY: soft reboot\r\n')).toContain('abcd');
      await sleep(100); // the new process starts
      await writeText(port, 'wxyz');
      expect(await readUntil(port, 'wxyz')).toContain('wxyz');
    } finally {
      await port.close();
      device.unplug();
    }
  });

  it('hands the UART back to the ROM on a reset into the bootloader', async () => {
    const { device, port } = await boardRunning('cat');
    try {
      await readUntil(port, `${device.banner}\r\n`);
      // GPIO0 low through EN: the download mode, as esptool's classic reset does.
      await port.setSignals({ dataTerminalReady: false, requestToSend: true });
      await sleep(20);
      await port.setSignals({ dataTerminalReady: true, requestToSend: false });
      await sleep(50);
      await port.setSignals({ dataTerminalReady: false, requestToSend: false });
      await sleep(50);
      expect(device.mode).toBe('download');
      expect(device.applicationRunning).toBe(false);
      await writeText(port, 'not for the application');
      expect(await readUntil(port, 'not for the application', 300)).not.toContain('not for the application');
    } finally {
      await port.close();
      device.unplug();
    }
  });
});
