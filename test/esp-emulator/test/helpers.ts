import { createHash } from 'node:crypto';
import type { FlashOptions, IEspLoaderTerminal } from 'esptool-js';
import { ESPLoader, Transport } from 'esptool-js';
import type { NodeWebSerialPort } from '../../../packages/core/src/serial/index.ts';
import { getWebSerialPort } from '../../../packages/core/src/serial/index.ts';
import type { ChipName, EspEmulator } from '../src/index.ts';

export const APP_OFFSET: Record<ChipName, number> = {
  esp8266: 0x0,
  esp32: 0x1000,
  esp32s3: 0x0,
  esp32c3: 0x0,
};

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Little-endian 32-bit words, as command payloads carry them. */
export function u32s(...values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  for (const [i, value] of values.entries()) view.setUint32(i * 4, value, true);
  return out;
}

export function md5Hex(data: Uint8Array): string {
  return createHash('md5').update(data).digest('hex');
}

export interface LoaderSession {
  port: NodeWebSerialPort;
  transport: Transport;
  loader: ESPLoader;
  /** What esptool-js printed. */
  log: string[];
}

/** An esptool-js loader talking to `path` through mp's Web Serial adapter and the emulator binding. */
export async function openLoader(
  emulator: EspEmulator,
  options: { path?: string; baudrate?: number } = {},
): Promise<LoaderSession> {
  const path = options.path ?? emulator.device(0).path;
  const port = await getWebSerialPort(path, { binding: emulator.binding });
  // esptool-js types its port as the DOM SerialPort, which Node's type environment does not have.
  const transport = new Transport(port as unknown as ConstructorParameters<typeof Transport>[0], false);
  // Transport logs "readLoop exited" & co. to the console even with tracing off.
  transport.trace = () => {};
  const log: string[] = [];
  const terminal: IEspLoaderTerminal = {
    clean: () => {},
    writeLine: (line) => log.push(line),
    write: (text) => log.push(text),
  };
  const loader = new ESPLoader({ transport, baudrate: options.baudrate ?? 460800, terminal });
  return { port, transport, loader, log };
}

export function flashOptions(
  data: Uint8Array,
  address: number,
  overrides: Partial<FlashOptions> = {},
): FlashOptions {
  return {
    fileArray: [{ data, address }],
    flashMode: 'keep',
    flashFreq: 'keep',
    flashSize: 'keep',
    eraseAll: false,
    compress: true,
    calculateMD5Hash: md5Hex,
    ...overrides,
  };
}

/** The reset a serial monitor does to start the application: EN low with GPIO0 released, then release. */
export async function resetIntoApplication(port: NodeWebSerialPort): Promise<void> {
  await port.setSignals({ dataTerminalReady: false, requestToSend: true });
  await sleep(50);
  await port.setSignals({ dataTerminalReady: false, requestToSend: false });
}

/** Reads from `port` until `needle` shows up (latin1) or `timeoutMs` passes; returns all text read. */
export async function readUntil(port: NodeWebSerialPort, needle: string, timeoutMs = 2000): Promise<string> {
  const readable = port.readable;
  if (!readable) throw new Error('port is not readable');
  const reader = readable.getReader();
  let text = '';
  const timer = setTimeout(() => void reader.cancel(), timeoutMs);
  try {
    while (!text.includes(needle)) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString('latin1');
    }
  } finally {
    clearTimeout(timer);
    reader.releaseLock();
  }
  return text;
}

export async function writeText(port: NodeWebSerialPort, text: string): Promise<void> {
  const writer = port.writable!.getWriter();
  try {
    await writer.write(new TextEncoder().encode(text));
  } finally {
    writer.releaseLock();
  }
}
