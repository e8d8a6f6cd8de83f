/**
 * Flashing over the emulated boards with the link throttled to the real rate (10 bits per byte,
 * both directions), so bytes on the wire and wall time are what a USB-serial adapter would see;
 * every comparison runs in this process, against esptool-js's own `writeFlash` on the same wire.
 *
 * 1. Save → flashed and booted after a one-module change (mp's delta flash, to the application's
 *    banner), and the delta's bytes against esptool-js's whole-image `writeFlash`.
 * 2. Re-flashing an unchanged image: the connection and one MD5 check, no write.
 * 3. `mp flash --full` against esptool-js `writeFlash` of the same image: machine code and less
 *    regular data (3-byte repeats, a random walk, random bytes).
 * 4. `--baud 921600` and `1500000`, and the fallback to the board's 460800 when the link or the
 *    adapter cannot go that fast.
 *
 * Run: node bench/flash.ts [--size-esp8266 <KiB>] [--size-esp32 <KiB>] [--size-data <KiB>]
 * Goals (issue "Performance"): save → flashed and booted ≤ 0.6 s (ESP8266) and ≤ 0.5 s (ESP32);
 * the delta sends ≤ 10 % of the bytes of the full write; --full ≤ 1.0× esptool-js, time and bytes.
 */
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { deflateSync } from 'node:zlib';
import {
  DeviceStateStore,
  type FirmwareImage,
  type FlashResult,
  flashFirmware,
  getWebSerialPort,
} from '../packages/core/src/index.ts';
import {
  createEspEmulator,
  type EmulatedEsp,
  type EspDeviceOptions,
} from '../test/esp-emulator/src/index.ts';
import { makeTestFirmware, type TestChip, type TestFirmware } from '../test/utils/src/esp-firmware.ts';

const { values } = parseArgs({
  options: {
    'size-esp8266': { type: 'string', default: '620' },
    'size-esp32': { type: 'string', default: '1500' },
    'size-data': { type: 'string', default: '192' },
  },
});
const BAUD = 460800;
const BOARD = {
  ESP8266: { id: 'esp8266-d1mini', size: 'detect', savedGoal: 0.6 },
  ESP32: { id: 'esp32-generic', size: 'keep', savedGoal: 0.5 },
} as const;
const CHIPS = ['ESP8266', 'ESP32'] as const;
const RUNS = 5;

/** The run of median time. */
function median(runs: Measure[]): Measure {
  return [...runs].sort((a, b) => a.ms - b.ms)[Math.floor(runs.length / 2)]!;
}

// esptool-js as @mp/core resolves it (the bench lives outside the workspace packages).
const coreRequire = createRequire(new URL('../packages/core/package.json', import.meta.url));
const esptool: typeof import('esptool-js') = await import(
  pathToFileURL(coreRequire.resolve('esptool-js')).href
);
// The deflate esptool-js uses, resolved beside it.
const pako = createRequire(coreRequire.resolve('esptool-js'))('pako') as {
  deflate(data: Uint8Array, options: { level: number }): Uint8Array;
};

interface Measure {
  sent: number;
  received: number;
  ms: number;
}

interface Goal {
  what: string;
  value: string;
  goal: string;
  met: boolean;
}
const goals: Goal[] = [];
function goal(what: string, value: string, goalText: string, met: boolean): void {
  goals.push({ what, value, goal: goalText, met });
  console.log(`  ${what}: ${value} (goal ${goalText}): ${met ? 'met' : 'NOT met'}`);
}

function image(chip: TestChip, offset: number, data: Uint8Array, baud = BAUD): FirmwareImage {
  const board = BOARD[chip];
  return {
    file: `${chip}.bin`,
    boardId: board.id,
    chip,
    segments: [{ offset, data, file: `${chip}.bin` }],
    mode: 'keep',
    freq: 'keep',
    size: board.size,
    baud,
  };
}

function emulated(chip: TestChip, options: Partial<EspDeviceOptions> = {}) {
  const emulator = createEspEmulator({ chip: chip === 'ESP8266' ? 'esp8266' : 'esp32', ...options });
  return { emulator, device: emulator.device() };
}

/** Resolves at the application's next boot (its banner is then on the wire). */
function nextAppBoot(device: EmulatedEsp): Promise<void> {
  return new Promise((resolve) => {
    const onBoot = (kind: string) => {
      if (kind !== 'app') return;
      device.off('boot', onBoot);
      resolve();
    };
    device.on('boot', onBoot);
  });
}

/** Time from the start of `work` to the application's boot; bytes both ways meanwhile. */
async function measure(device: EmulatedEsp, work: () => Promise<unknown>): Promise<Measure> {
  const sent0 = device.stats.bytesReceived;
  const received0 = device.stats.bytesSent;
  const booted = nextAppBoot(device);
  const started = performance.now();
  await work();
  await booted;
  return {
    sent: device.stats.bytesReceived - sent0,
    received: device.stats.bytesSent - received0,
    ms: performance.now() - started,
  };
}

/** esptool-js used the plain way: connect, stub, baud, compressed writeFlash with MD5, hard reset. */
async function esptoolWriteFlash(
  emulator: ReturnType<typeof createEspEmulator>,
  offset: number,
  data: Uint8Array,
): Promise<void> {
  const port = await getWebSerialPort(emulator.device().path, { binding: emulator.binding });
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
    fileArray: [{ data, address: offset }],
    flashMode: 'keep',
    flashFreq: 'keep',
    flashSize: 'keep',
    eraseAll: false,
    compress: true,
    calculateMD5Hash: (bytes) => createHash('md5').update(bytes).digest('hex'),
  });
  // esptool-js's after('hard_reset') leaves GPIO0 low after a connect (see the emulator's
  // esptool-flash test); the EN pulse a real `--after hard_reset` gives, as mp's reset does.
  await port.setSignals({ dataTerminalReady: false, requestToSend: true });
  await new Promise((resolve) => setTimeout(resolve, 100));
  await port.setSignals({ dataTerminalReady: false, requestToSend: false });
  await transport.disconnect();
}

function checkFlash(device: EmulatedEsp, offset: number, data: Uint8Array): void {
  const got = device.flash.subarray(offset, offset + data.length);
  if (Buffer.compare(Buffer.from(got), Buffer.from(data)) !== 0)
    throw new Error('flash != image after the benchmark run');
}

const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const pct = (a: number, b: number) => `${((100 * a) / b).toFixed(1)} %`;
const times = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
const ratio3 = (a: number, b: number) => `${(a / b).toFixed(3)}×`;

function row(name: string, detail: string, m: Measure): void {
  console.log(
    `  ${name.padEnd(30)}${detail.padEnd(22)}${kib(m.sent).padStart(12)}${kib(m.received).padStart(12)}${secs(m.ms).padStart(9)}`,
  );
}
function header(): void {
  console.log(
    `  ${'method'.padEnd(30)}${'writes'.padEnd(22)}${'host→board'.padStart(12)}${'board→host'.padStart(12)}${'time'.padStart(9)}`,
  );
}

/** A board that holds `firmware` as mp's last flash left it, with mp's device record of it. */
async function seeded(
  chip: TestChip,
  firmware: TestFirmware,
  devices: DeviceStateStore,
): Promise<Uint8Array> {
  const seed = emulated(chip);
  await flashFirmware({
    firmware: image(chip, firmware.offset, firmware.image),
    port: seed.device.path,
    binding: seed.emulator.binding,
    devices,
  });
  return Uint8Array.from(seed.device.flash);
}

async function oneModuleChange(
  chip: TestChip,
  sizeKiB: number,
): Promise<{ after: TestFirmware; esptoolFull: Measure }> {
  const before = makeTestFirmware(chip, { size: sizeKiB * 1024 });
  const after = makeTestFirmware(chip, { size: sizeKiB * 1024, revisions: { app: 2 } });
  const cache = mkdtempSync(join(tmpdir(), 'mp-bench-'));
  try {
    const devices = new DeviceStateStore(cache);
    const flashed = await seeded(chip, before, devices);

    const plain = emulated(chip, { throttle: true, flash: flashed });
    const esptoolFull = await measure(plain.device, () =>
      esptoolWriteFlash(plain.emulator, after.offset, after.image),
    );

    // Timers pace the emulated wire, so a busy machine stretches a run: the median of RUNS.
    const deltaRuns: Measure[] = [];
    const unchangedRuns: Measure[] = [];
    let result: FlashResult | undefined;
    let again: FlashResult | undefined;
    let commands: Record<string, number> = {};
    let delta = emulated(chip);
    for (let run = 0; run < RUNS; run++) {
      const records = mkdtempSync(join(tmpdir(), 'mp-bench-'));
      cpSync(cache, records, { recursive: true });
      const store = new DeviceStateStore(records);
      delta = emulated(chip, { throttle: true, flash: flashed });
      const flash = () =>
        flashFirmware({
          firmware: image(chip, after.offset, after.image),
          port: delta.device.path,
          binding: delta.emulator.binding,
          devices: store,
        });
      deltaRuns.push(await measure(delta.device, async () => (result = await flash())));
      if (result?.mode !== 'delta') throw new Error(`expected a delta flash, got ${result?.mode}`);
      const counted = { ...delta.device.stats.commands };
      unchangedRuns.push(await measure(delta.device, async () => (again = await flash())));
      commands = Object.fromEntries(
        Object.entries(delta.device.stats.commands).map(([name, n]) => [name, n - (counted[name] ?? 0)]),
      );
      rmSync(records, { recursive: true, force: true });
    }
    const deltaRun = median(deltaRuns);
    const unchanged = median(unchangedRuns);
    for (const board of [plain.device, delta.device]) checkFlash(board, after.offset, after.image);

    console.log(
      `\n${chip}: ${kib(after.image.length)} image, frozen module "app" changed, at ${BAUD} baud (time: to the application's boot)`,
    );
    header();
    row('esptool-js writeFlash', 'whole image', esptoolFull);
    row(
      `mp delta flash (median of ${RUNS})`,
      `${result!.sectorsWritten} of ${result!.sectorsTotal} sectors`,
      deltaRun,
    );
    row(`mp, same image again (median)`, `${again?.mode}`, unchanged);
    goal(
      `${chip} save → flashed and booted`,
      secs(deltaRun.ms),
      `≤ ${BOARD[chip].savedGoal.toFixed(1)} s`,
      deltaRun.ms <= BOARD[chip].savedGoal * 1000,
    );
    goal(
      `${chip} delta bytes / esptool-js whole-image bytes`,
      pct(deltaRun.sent, esptoolFull.sent),
      '≤ 10 %',
      deltaRun.sent <= 0.1 * esptoolFull.sent,
    );
    const writes = (commands.FLASH_DEFL_DATA ?? 0) + (commands.FLASH_DATA ?? 0);
    const md5s = commands.SPI_FLASH_MD5 ?? 0;
    goal(
      `${chip} unchanged re-flash`,
      `${secs(unchanged.ms)}, ${md5s} MD5 check, ${writes} data blocks, ${times(unchanged.ms, deltaRun.ms)} the delta's time`,
      'the connection, one MD5 check, no write',
      again?.mode === 'unchanged' && writes === 0 && md5s === 1,
    );
    return { after, esptoolFull };
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
}

/** mp flash --full on a fresh board (no record), measured to the application's boot. */
async function mpFull(
  chip: TestChip,
  offset: number,
  data: Uint8Array,
  options: { baudRate?: number; device?: Partial<EspDeviceOptions> } = {},
): Promise<{ measure: Measure; result: FlashResult; warnings: string[] }> {
  const cache = mkdtempSync(join(tmpdir(), 'mp-bench-'));
  try {
    const board = emulated(chip, { throttle: true, ...options.device });
    let result: FlashResult | undefined;
    const warnings: string[] = [];
    const m = await measure(board.device, async () => {
      result = await flashFirmware({
        firmware: image(chip, offset, data),
        port: board.device.path,
        binding: board.emulator.binding,
        devices: new DeviceStateStore(cache),
        full: true,
        ...(options.baudRate ? { baudRate: options.baudRate } : {}),
        observer: (event) => {
          if (event.type === 'log' && event.level === 'warn') warnings.push(event.message);
        },
      });
    });
    checkFlash(board.device, offset, data);
    return { measure: m, result: result!, warnings };
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
}

async function esptoolFullOn(chip: TestChip, offset: number, data: Uint8Array): Promise<Measure> {
  const board = emulated(chip, { throttle: true });
  const m = await measure(board.device, () => esptoolWriteFlash(board.emulator, offset, data));
  checkFlash(board.device, offset, data);
  return m;
}

/** xorshift32, so every run flashes the same bytes. */
function random(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state;
  };
}

/** Less regular images: a real image header and bootloader sector, then `kind` data. */
function dataImage(
  chip: TestChip,
  kind: 'trigrams' | 'random walk' | 'random',
  sizeKiB: number,
): TestFirmware {
  const base = makeTestFirmware(chip);
  const out = new Uint8Array(sizeKiB * 1024);
  const next = random(kind.length * 7919);
  if (kind === 'trigrams') {
    const words = Array.from({ length: 300 }, () => [next() & 0xff, next() & 0xff, next() & 0xff]);
    for (let at = 0; at < out.length; ) for (const b of words[next() % words.length]!) out[at++] = b;
  } else if (kind === 'random walk') {
    let value = 0;
    for (let at = 0; at < out.length; at++) out[at] = value = (value + (next() % 7) - 3) & 0xff;
  } else {
    for (let at = 0; at < out.length; at++) out[at] = next() & 0xff;
  }
  out.set(base.image.subarray(0, 0x1000));
  return { ...base, image: out.subarray(0, sizeKiB * 1024) };
}

async function fullAgainstEsptool(
  chip: TestChip,
  firmware: TestFirmware,
  esptoolFull: Measure,
): Promise<void> {
  const dataKiB = Number(values['size-data']);
  console.log(
    `\n${chip}: mp flash --full against esptool-js writeFlash of the same image, fresh boards, at ${BAUD} baud`,
  );
  // The last column: what Node's zlib alone (mp's deflate before) makes of the image against pako
  // (esptool-js's); mp now sends the smaller of the two.
  console.log(
    `  ${'image'.padEnd(30)}${'esptool-js'.padStart(12)}${'mp --full'.padStart(12)}${'time'.padStart(8)}${'bytes'.padStart(9)}${'zlib/pako'.padStart(11)}`,
  );
  const rows: Array<[string, Measure, Measure, number]> = [];
  const zlibOverPako = (data: Uint8Array) =>
    deflateSync(data, { level: 9 }).length / pako.deflate(data, { level: 9 }).length;
  const machine = await mpFull(chip, firmware.offset, firmware.image);
  rows.push([
    `machine code, ${kib(firmware.image.length)}`,
    esptoolFull,
    machine.measure,
    zlibOverPako(firmware.image),
  ]);
  for (const kind of ['trigrams', 'random walk', 'random'] as const) {
    const data = dataImage(chip, kind, dataKiB);
    const theirs = await esptoolFullOn(chip, data.offset, data.image);
    const ours = await mpFull(chip, data.offset, data.image);
    rows.push([`${kind}, ${kib(data.image.length)}`, theirs, ours.measure, zlibOverPako(data.image)]);
  }
  for (const [name, theirs, ours, zlib] of rows) {
    console.log(
      `  ${name.padEnd(30)}${secs(theirs.ms).padStart(12)}${secs(ours.ms).padStart(12)}${times(ours.ms, theirs.ms).padStart(8)}${ratio3(ours.sent, theirs.sent).padStart(9)}${ratio3(zlib, 1).padStart(11)}`,
    );
  }
  const worstTime = Math.max(...rows.map(([, theirs, ours]) => ours.ms / theirs.ms));
  const worstBytes = Math.max(...rows.map(([, theirs, ours]) => ours.sent / theirs.sent));
  goal(
    `${chip} --full time / esptool-js, worst of ${rows.length} images`,
    `${worstTime.toFixed(2)}×`,
    '≤ 1.0×',
    worstTime <= 1,
  );
  goal(
    `${chip} --full bytes / esptool-js, worst of ${rows.length} images`,
    `${worstBytes.toFixed(3)}×`,
    '≤ 1.0×',
    worstBytes <= 1,
  );
}

async function rates(chip: TestChip): Promise<void> {
  const firmware = makeTestFirmware(chip, { size: Number(values['size-data']) * 1024 });
  console.log(`\n${chip}: mp flash --full of a ${kib(firmware.image.length)} image at other rates`);
  const base = await mpFull(chip, firmware.offset, firmware.image);
  console.log(
    `  ${'--baud'.padEnd(12)}${'link'.padEnd(28)}${'rate used'.padStart(10)}${'time'.padStart(9)}${'vs 460800'.padStart(11)}`,
  );
  const line = (baud: number, link: string, run: Awaited<ReturnType<typeof mpFull>>) =>
    console.log(
      `  ${String(baud).padEnd(12)}${link.padEnd(28)}${String(run.result.device.baudRate).padStart(10)}${secs(run.measure.ms).padStart(9)}${times(run.measure.ms, base.measure.ms).padStart(11)}`,
    );
  line(BAUD, 'any', base);
  const fast = await mpFull(chip, firmware.offset, firmware.image, { baudRate: 921600 });
  line(921600, 'any', fast);
  const faster = await mpFull(chip, firmware.offset, firmware.image, { baudRate: 1_500_000 });
  line(1_500_000, 'any', faster);
  const link = await mpFull(chip, firmware.offset, firmware.image, {
    baudRate: 1_500_000,
    device: { linkMaxBaud: 921600 },
  });
  line(1_500_000, 'carries ≤ 921600', link);
  const adapter = await mpFull(chip, firmware.offset, firmware.image, {
    baudRate: 1_500_000,
    device: { adapterMaxBaud: 921600 },
  });
  line(1_500_000, 'adapter takes ≤ 921600', adapter);
  goal(
    `${chip} --baud 921600 / 1500000`,
    `${fast.result.device.baudRate} / ${faster.result.device.baudRate} baud, ${times(fast.measure.ms, base.measure.ms)} / ${times(faster.measure.ms, base.measure.ms)} the time at 460800`,
    'run at the rate asked for',
    fast.result.device.baudRate === 921600 && faster.result.device.baudRate === 1_500_000,
  );
  goal(
    `${chip} --baud 1500000 where it fails`,
    `link: ${link.result.device.baudRate}, adapter: ${adapter.result.device.baudRate} baud`,
    'the board’s 460800',
    link.result.device.baudRate === BAUD && adapter.result.device.baudRate === BAUD,
  );
}

console.log('Emulated USB-serial links, 10 bits per byte, both directions paced; every time ends at the');
console.log("application's boot and includes connecting, any stub upload, the MD5 check and the reset.");
const sizes = { ESP8266: Number(values['size-esp8266']), ESP32: Number(values['size-esp32']) };
for (const chip of CHIPS) {
  const { after, esptoolFull } = await oneModuleChange(chip, sizes[chip]);
  await fullAgainstEsptool(chip, after, esptoolFull);
  await rates(chip);
}
console.log('\nGoals');
for (const g of goals)
  console.log(`  ${g.met ? 'met    ' : 'NOT met'}  ${g.what}: ${g.value} (goal ${g.goal})`);
process.exitCode = goals.every((g) => g.met) ? 0 : 1;
