/**
 * The serial monitor: reads the board's console, steps aside for a flash and takes the port back
 * before the board restarts (so the new firmware's banner is seen), and the console on a pair of
 * streams ends on Ctrl-] with the port released.
 */
import { PassThrough } from 'node:stream';
import { firmwareBanner } from '@mp/esp-emulator';
import { describe, it, vi } from 'vitest';
import { runSerialConsole, SerialMonitor } from '../src/index.ts';
import { bench, firmware, firmwareImage } from './flash-helpers.ts';

function collect(monitor: SerialMonitor) {
  let text = '';
  monitor.onData((bytes) => {
    text += Buffer.from(bytes).toString('latin1');
  });
  return {
    get text() {
      return text;
    },
    async until(needle: string, timeoutMs = 2000) {
      const deadline = Date.now() + timeoutMs;
      while (!text.includes(needle)) {
        if (Date.now() > deadline) throw new Error(`"${needle}" not seen; got ${JSON.stringify(text)}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    },
  };
}

describe('SerialMonitor', () => {
  it.concurrent('shows the console of the running firmware and sends keystrokes', async ({ expect }) => {
    const b = bench('ESP8266');
    const fw = firmware('ESP8266');
    await b.flash(firmwareImage(fw));
    const monitor = new SerialMonitor({ path: '/dev/ttyEMU0', binding: b.emulator.binding });
    const seen = collect(monitor);
    await monitor.attach();
    await monitor.resetDevice();
    await seen.until(firmwareBanner('esp8266', fw.image));
    await monitor.write("print('hello from the board')\r");
    await seen.until('hello from the board\r\n>>> ');
    await monitor.detach();
    expect(b.emulator.device().portOpen).toBe(false);
  });

  it.concurrent('is detached for a flash and re-attached before the reset: the new banner is the first thing it shows', async ({
    expect,
  }) => {
    const b = bench('ESP32');
    const before = firmware('ESP32');
    const after = firmware('ESP32', { revisions: { app: 2 } });
    await b.flash(firmwareImage(before));
    const monitor = new SerialMonitor({ path: '/dev/ttyEMU0', binding: b.emulator.binding });
    const seen = collect(monitor);
    await monitor.attach();
    const result = await b.flash(firmwareImage(after), { monitor });
    expect(result.mode).toBe('delta');
    expect(monitor.attached).toBe(true);
    await seen.until(firmwareBanner('esp32', after.image));
    expect(seen.text).not.toContain(firmwareBanner('esp32', before.image));
    await monitor.write('print("still here")\r');
    await seen.until('still here');
    await monitor.detach();
    expect(b.emulator.device().portOpen).toBe(false);
  });

  it.concurrent('reports a board that goes away', async ({ expect }) => {
    const b = bench('ESP8266');
    await b.flash(firmwareImage(firmware('ESP8266')));
    const monitor = new SerialMonitor({ path: '/dev/ttyEMU0', binding: b.emulator.binding });
    const lost = new Promise((resolve) => monitor.onDeviceLost(resolve));
    await monitor.attach();
    b.emulator.device().unplug();
    const error = await lost;
    expect(error).toMatchObject({
      code: 'DEVICE_LOST',
      message: expect.stringContaining('during the serial monitor'),
    });
    expect(monitor.attached).toBe(false);
  });
});

describe('runSerialConsole', () => {
  async function consoleOn(chip: 'ESP8266' | 'ESP32') {
    const b = bench(chip);
    const fw = firmware(chip);
    await b.flash(firmwareImage(fw));
    const monitor = new SerialMonitor({ path: '/dev/ttyEMU0', binding: b.emulator.binding });
    const input = new PassThrough() as PassThrough & { isTTY?: boolean; setRawMode?: (raw: boolean) => void };
    const output = new PassThrough();
    let text = '';
    output.on('data', (d: Buffer) => {
      text += d.toString('latin1');
    });
    const until = async (needle: string) => {
      const deadline = Date.now() + 2000;
      while (!text.includes(needle)) {
        if (Date.now() > deadline) throw new Error(`"${needle}" not seen; got ${JSON.stringify(text)}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    return { b, fw, monitor, input, output, until };
  }

  it.concurrent('passes keys to the board and its output back, and Ctrl-] leaves with the port released', async ({
    expect,
  }) => {
    const { b, monitor, input, output, until } = await consoleOn('ESP8266');
    const ended = runSerialConsole(monitor, { input, output });
    await vi.waitFor(() => expect(monitor.attached).toBe(true));
    input.write("print('typed')\r");
    await until('typed\r\n>>> ');
    input.write(Buffer.from([0x61, 0x1d, 0x62]));
    await expect(ended).resolves.toBe('escape');
    expect(b.emulator.device().portOpen).toBe(false);
    // Bytes before Ctrl-] were sent, bytes after it were not.
    expect(b.emulator.device().stats.replLines).toEqual(["print('typed')"]);
  });

  it.concurrent('puts a terminal in raw mode and restores it', async ({ expect }) => {
    const { monitor, input, output } = await consoleOn('ESP32');
    const modes: boolean[] = [];
    input.isTTY = true;
    input.setRawMode = (raw: boolean) => {
      modes.push(raw);
    };
    const ended = runSerialConsole(monitor, { input, output });
    await vi.waitFor(() => expect(modes).toEqual([true]));
    input.write('\x1d');
    await expect(ended).resolves.toBe('escape');
    expect(modes).toEqual([true, false]);
  });

  it.concurrent('ends when the board is unplugged, and on the abort signal', async ({ expect }) => {
    const first = await consoleOn('ESP8266');
    const lost = runSerialConsole(first.monitor, { input: first.input, output: first.output });
    await vi.waitFor(() => expect(first.monitor.attached).toBe(true));
    first.b.emulator.device().unplug();
    await expect(lost).resolves.toBe('device-lost');

    const second = await consoleOn('ESP32');
    const controller = new AbortController();
    const cancelled = runSerialConsole(
      second.monitor,
      { input: second.input, output: second.output },
      { signal: controller.signal },
    );
    await vi.waitFor(() => expect(second.monitor.attached).toBe(true));
    controller.abort();
    await expect(cancelled).resolves.toBe('cancelled');
    expect(second.b.emulator.device().portOpen).toBe(false);
  });
});
