/**
 * Re-flashing after a one-module change: mp's delta flash against esptool-js's plain compressed
 * `writeFlash` of the whole image, both over the emulated board with the link throttled to the
 * real 460800 baud (10 bits per byte), so bytes on the wire and wall time are what a USB-serial
 * adapter would see.
 *
 * Run: node bench/flash.ts [--size-esp8266 <KiB>] [--size-esp32 <KiB>]
 * Goal (issue 4): the delta re-flash sends ≤ 10 % of the bytes of the full compressed write.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import {
  DeviceStateStore,
  type FirmwareImage,
  flashFirmware,
  getWebSerialPort,
} from '../packages/core/src/index.ts';
import { createEspEmulator, type EmulatedEsp } from '../test/esp-emulator/src/index.ts';
import { makeTestFirmware, type TestChip, type TestFirmware } from '../test/utils/src/esp-firmware.ts';

const { values } = parseArgs({
  options: {
    'size-esp8266': { type: 'string', default: '620' },
    'size-esp32': { type: 'string', default: '1500' },
  },
});
const BAUD = 460800;
const BOARD = {
  ESP8266: { id: 'esp8266-d1mini', size: 'detect' },
  ESP32: { id: 'esp32-generic', size: 'keep' },
} as const;

// esptool-js as @mp/core resolves it (the bench lives outside the workspace packages).
const coreRequire = createRequire(new URL('../packages/core/package.json', import.meta.url));
const esptool: typeof import('esptool-js') = await import(
  pathToFileURL(coreRequire.resolve('esptool-js')).href
);

interface Measure {
  sent: number;
  received: number;
  ms: number;
  detail: string;
}

function image(fw: TestFirmware): FirmwareImage {
  const board = BOARD[fw.chip];
  return {
    file: `${fw.chip}.bin`,
    boardId: board.id,
    chip: fw.chip,
    segments: [{ offset: fw.offset, data: fw.image, file: `${fw.chip}.bin` }],
    mode: 'keep',
    freq: 'keep',
    size: board.size,
    baud: BAUD,
  };
}

function throttledBoard(chip: TestChip, flash: Uint8Array) {
  return createEspEmulator({ chip: chip === 'ESP8266' ? 'esp8266' : 'esp32', throttle: true, flash });
}

async function measure(device: EmulatedEsp, work: () => Promise<string>): Promise<Measure> {
  const sent0 = device.stats.bytesReceived;
  const received0 = device.stats.bytesSent;
  const started = performance.now();
  const detail = await work();
  return {
    sent: device.stats.bytesReceived - sent0,
    received: device.stats.bytesSent - received0,
    ms: performance.now() - started,
    detail,
  };
}

/** esptool-js used the plain way: connect, stub, baud, compressed writeFlash with MD5, hard reset. */
async function esptoolWriteFlash(device: EmulatedEsp, binding: unknown, fw: TestFirmware): Promise<string> {
  const port = await getWebSerialPort(device.path, { binding: binding as never });
  class QuietTransport extends esptool.Transport {
    override trace(): void {}
  }
  const transport = new QuietTransport(port as never, false);
  const loader = new esptool.ESPLoader({
    transport,
    baudrate: BAUD,
    terminal: { clean() {}, writeLine() {}, write() {} },
  });
  await loader.main();
  await loader.writeFlash({
    fileArray: [{ data: fw.image, address: fw.offset }],
    flashMode: 'keep',
    flashFreq: 'keep',
    flashSize: 'keep',
    eraseAll: false,
    compress: true,
    calculateMD5Hash: (data) => createHash('md5').update(data).digest('hex'),
  });
  await loader.after('hard_reset');
  await transport.disconnect();
  return 'whole image';
}

const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
const pct = (a: number, b: number) => `${((100 * a) / b).toFixed(1)} %`;

async function run(chip: TestChip, sizeKiB: number): Promise<boolean> {
  const before = makeTestFirmware(chip, { size: sizeKiB * 1024 });
  const after = makeTestFirmware(chip, { size: sizeKiB * 1024, revisions: { app: 2 } });
  const cache = mkdtempSync(join(tmpdir(), 'mp-bench-'));
  try {
    // The board as the last flash left it: image `before`, known to mp's device record.
    const devices = new DeviceStateStore(cache);
    const seed = createEspEmulator({ chip: chip === 'ESP8266' ? 'esp8266' : 'esp32' });
    await flashFirmware({
      firmware: image(before),
      port: seed.device().path,
      binding: seed.binding,
      devices,
    });
    const flashed = Uint8Array.from(seed.device().flash);

    const plainBoard = throttledBoard(chip, flashed);
    const plain = await measure(plainBoard.device(), () =>
      esptoolWriteFlash(plainBoard.device(), plainBoard.binding, after),
    );

    const deltaBoard = throttledBoard(chip, flashed);
    const delta = await measure(deltaBoard.device(), async () => {
      const result = await flashFirmware({
        firmware: image(after),
        port: deltaBoard.device().path,
        binding: deltaBoard.binding,
        devices,
      });
      if (result.mode !== 'delta') throw new Error(`expected a delta flash, got ${result.mode}`);
      return `${result.sectorsWritten} of ${result.sectorsTotal} sectors`;
    });
    for (const board of [plainBoard, deltaBoard]) {
      const got = board.device().flash.subarray(after.offset, after.offset + after.image.length);
      if (Buffer.compare(Buffer.from(got), Buffer.from(after.image)) !== 0)
        throw new Error('flash != image after the benchmark run');
    }

    const compressedFull = (await import('node:zlib')).deflateSync(after.image, { level: 9 }).length;
    console.log(
      `\n${chip}: ${kib(after.image.length)} image (${kib(compressedFull)} compressed), frozen module "app" changed`,
    );
    const header = `  ${'method'.padEnd(26)}${'writes'.padEnd(20)}${'host→board'.padStart(12)}${'board→host'.padStart(12)}${'total'.padStart(12)}${'time'.padStart(9)}`;
    console.log(header);
    const row = (name: string, m: Measure) =>
      console.log(
        `  ${name.padEnd(26)}${m.detail.padEnd(20)}${kib(m.sent).padStart(12)}${kib(m.received).padStart(12)}${kib(m.sent + m.received).padStart(12)}${`${(m.ms / 1000).toFixed(2)} s`.padStart(9)}`,
      );
    row('esptool-js writeFlash', plain);
    row('mp delta flash', delta);
    const bytesRatio = delta.sent / plain.sent;
    console.log(
      `  ratio (mp / esptool-js)${''.padEnd(23)}${pct(delta.sent, plain.sent).padStart(12)}${pct(delta.received, plain.received).padStart(12)}${pct(delta.sent + delta.received, plain.sent + plain.received).padStart(12)}${pct(delta.ms, plain.ms).padStart(9)}`,
    );
    const ok = bytesRatio <= 0.1;
    console.log(
      `  delta re-flash sends ${pct(delta.sent, plain.sent)} of the bytes of the full compressed write (goal ≤ 10 %): ${ok ? 'met' : 'NOT met'}`,
    );
    return ok;
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
}

console.log(
  `Link: emulated USB-serial at ${BAUD} baud after the stub (ROM at 115200), 10 bits per byte, both directions paced.`,
);
console.log('Both rows include connecting, the stub upload, the MD5 check and the final reset.');
const results = [
  await run('ESP8266', Number(values['size-esp8266'])),
  await run('ESP32', Number(values['size-esp32'])),
];
process.exitCode = results.every(Boolean) ? 0 : 1;
