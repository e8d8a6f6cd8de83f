import { describe, expect, it } from 'vitest';
import { openWebSerialPort } from '../../../packages/core/src/serial/index.ts';
import { createEspEmulator, makeTestFirmware } from '../src/index.ts';
import { readUntil, resetIntoApplication, writeText } from './helpers.ts';

async function timeEcho(throttle: boolean, bytes: number): Promise<{ writeMs: number; echoMs: number }> {
  const flash = new Uint8Array(0x2000).fill(0xff);
  flash.set(makeTestFirmware(0x1000, 2), 0x1000);
  const emulator = createEspEmulator({ chip: 'esp32', flash, throttle });
  const port = await openWebSerialPort('/dev/ttyEMU0', { binding: emulator.binding, baudRate: 115200 });
  await resetIntoApplication(port);
  await readUntil(port, '>>> ');
  const text = `${'y'.repeat(bytes - 1)}z`;
  const started = performance.now();
  await writeText(port, text);
  const writeMs = performance.now() - started;
  await readUntil(port, 'z');
  const echoMs = performance.now() - started;
  await port.close();
  return { writeMs, echoMs };
}

describe('baud throttling', () => {
  it('paces bytes at 10 bits per byte in both directions when on, and is instantaneous when off', async () => {
    // 1152 bytes at 115200 baud: 100 ms on the wire each way.
    const throttled = await timeEcho(true, 1152);
    expect(throttled.writeMs).toBeGreaterThanOrEqual(95);
    expect(throttled.echoMs).toBeGreaterThanOrEqual(190);
    expect(throttled.echoMs).toBeLessThan(600);

    const free = await timeEcho(false, 1152);
    expect(free.echoMs).toBeLessThan(50);
  });
});
