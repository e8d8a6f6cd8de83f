/**
 * Deterministic, realistic-looking ESP firmware for flash tests and benchmarks: real image headers,
 * segments, checksums and (ESP32) the appended SHA-256, machine-code-like content that compresses
 * about as well as real MicroPython builds (~60 %), and a region of frozen Python modules so a test
 * can make "a one-module change" and get the image a rebuild would produce.
 *
 * - ESP8266 (`firmware.bin` at 0x0): a v1 image (iram/dram/rodata segments, checksum), padding to
 *   0x9000, then the irom0 text with the frozen modules in it.
 * - ESP32 (`firmware.bin` at 0x1000): bootloader image, partition table at +0x7000, application
 *   image at +0xF000 (flash 0x10000) whose SHA-256 changes with any module.
 */
import { createHash } from 'node:crypto';

export type TestChip = 'ESP8266' | 'ESP32';

export interface FrozenModule {
  name: string;
  /** Byte offset of the module's bytecode within the image. */
  start: number;
  length: number;
}

export interface TestFirmware {
  chip: TestChip;
  /** Where the image goes in flash (the board layout's offset). */
  offset: number;
  image: Uint8Array;
  modules: FrozenModule[];
}

export interface TestFirmwareOptions {
  /** Roughly the image size in bytes (default: ESP8266 320 KiB, ESP32 420 KiB). */
  size?: number;
  /** Changes all content (another build of another program). */
  seed?: number;
  /** Module revisions: `{ app: 2 }` rebuilds module `app` with other bytecode of the same size. */
  revisions?: Record<string, number>;
  /** Header flash size nibble: ESP8266 `1MB` or `4MB` (default `4MB`). */
  headerFlashSize?: '1MB' | '4MB';
}

const MODULE_NAMES = ['boot', 'main', 'app', 'config', 'sensors', 'mqtt_as', 'wifi', 'display'];

/** xorshift32: the same bytes on every machine and Node version. */
function random(seed: number): () => number {
  let state = seed >>> 0 || 0x9e3779b9;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state;
  };
}

function seedFor(...parts: Array<string | number>): number {
  return createHash('sha256').update(parts.join('/')).digest().readUInt32LE(0);
}

/**
 * Xtensa-like instruction stream. Compilers repeat idioms (prologues, loads, calls, compares), so
 * the stream is made of 3000 short instruction sequences picked with a skewed frequency, some with
 * one instruction changed, and literal-pool words in between. Deflate gets it to about 60-70 %,
 * like real ESP firmware.
 */
function machineCode(length: number, seed: number): Uint8Array {
  const next = random(seed);
  const instruction = (r: () => number) => {
    const size = r() % 3 === 0 ? 2 : 3;
    return Array.from({ length: size }, () => r() & 0xff);
  };
  const idioms = Array.from({ length: 3000 }, (_, i) => {
    const r = random(seedFor('idiom', i));
    return Array.from({ length: 2 + (r() % 7) }, () => instruction(r)).flat();
  });
  const out = new Uint8Array(length);
  let at = 0;
  while (at < length) {
    const pick = next();
    if ((pick & 0xff) < 40) {
      // a 32-bit literal (address or constant)
      const word = next();
      for (let i = 0; i < 4 && at < length; i++) out[at++] = (word >>> (8 * i)) & 0xff;
      continue;
    }
    const idiom =
      idioms[Math.min(idioms.length - 1, Math.floor(((pick >>> 16) / 0x10000) ** 2.5 * idioms.length))]!;
    const changed = (pick >>> 8) & 1 ? -1 : ((pick >>> 9) & 0x7f) % idiom.length;
    for (let i = 0; i < idiom.length && at < length; i++)
      out[at++] = i === changed ? next() & 0xff : idiom[i]!;
  }
  return out;
}

const WORDS = [
  'machine',
  'network',
  'socket',
  'time',
  'utime',
  'Pin',
  'I2C',
  'SPI',
  'WLAN',
  'connect',
  'publish',
  'subscribe',
  'callback',
  'buffer',
  'timeout',
  'errno',
  'OSError',
  'ValueError',
  'const',
  'micropython',
  'uasyncio',
  'sleep_ms',
  'ticks_ms',
  'gc',
  'collect',
  'print',
  'format',
  'encode',
  'decode',
  'append',
];

function textTable(length: number, seed: number): Uint8Array {
  const next = random(seed);
  const out = new Uint8Array(length);
  let at = 0;
  while (at < length) {
    const word = WORDS[next() % WORDS.length]!;
    for (let i = 0; i < word.length && at < length; i++) out[at++] = word.charCodeAt(i);
    if (at < length) out[at++] = next() % 4 === 0 ? 0 : 0x5f;
  }
  return out;
}

/** An .mpy-like frozen module: header, qstr table with identifiers, bytecode. */
function frozenModule(name: string, length: number, revision: number): Uint8Array {
  const out = new Uint8Array(length);
  out.set([0x4d, 0x06, 0x00, 0x1f]);
  const names = textTable(Math.min(256, length >> 3), seedFor('qstr', name, revision));
  out.set(names.subarray(0, Math.min(names.length, length - 4)), 4);
  const bytecode = machineCode(length - 4 - names.length, seedFor('module', name, revision));
  out.set(bytecode, 4 + names.length);
  return out;
}

function u32(out: Uint8Array, at: number, value: number): void {
  out[at] = value & 0xff;
  out[at + 1] = (value >>> 8) & 0xff;
  out[at + 2] = (value >>> 16) & 0xff;
  out[at + 3] = (value >>> 24) & 0xff;
}

/** An ESP image: header (+ ESP32 extended header), segments, checksum, optional SHA-256. */
function espImage(
  chip: TestChip,
  segments: Array<{ addr: number; data: Uint8Array }>,
  options: { flashSizeFreq: number; entry: number; sha256: boolean },
): Uint8Array {
  const headerLength = chip === 'ESP32' ? 24 : 8;
  const body = segments.reduce((n, s) => n + 8 + s.data.length, 0);
  let length = headerLength + body;
  length += 16 - (length % 16); // checksum in the last byte of a 16-byte row
  const total = length + (options.sha256 ? 32 : 0);
  const out = new Uint8Array(total);
  out.set([0xe9, segments.length, 0x02, options.flashSizeFreq]);
  u32(out, 4, options.entry);
  if (chip === 'ESP32') {
    out[8] = 0xee; // WP pin: not used
    out[12] = 0x00; // chip id ESP32 (2 bytes)
    out[23] = options.sha256 ? 1 : 0; // hash appended
  }
  let at = headerLength;
  let checksum = 0xef;
  for (const segment of segments) {
    u32(out, at, segment.addr);
    u32(out, at + 4, segment.data.length);
    out.set(segment.data, at + 8);
    for (const byte of segment.data) checksum ^= byte;
    at += 8 + segment.data.length;
  }
  out[length - 1] = checksum;
  if (options.sha256) out.set(createHash('sha256').update(out.subarray(0, length)).digest(), length);
  return out;
}

function modulesRegion(seed: number, revisions: Record<string, number>, start: number) {
  const modules: FrozenModule[] = [];
  const parts: Uint8Array[] = [];
  let at = start;
  for (const [i, name] of MODULE_NAMES.entries()) {
    const length = 1500 + (seedFor('length', seed, name) % 5000);
    const bytes = frozenModule(name, length, (revisions[name] ?? 1) * 1000 + seed);
    modules.push({ name, start: at, length });
    parts.push(bytes);
    at += bytes.length;
    // qstr/const tables between modules, as frozen_content.c lays them out
    const table = textTable(64 + ((i * 37) % 200), seedFor('table', seed, i));
    parts.push(table);
    at += table.length;
  }
  return { modules, data: concat(parts) };
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function padTo(data: Uint8Array, length: number): Uint8Array {
  const out = new Uint8Array(length).fill(0xff);
  out.set(data);
  return out;
}

function align4(data: Uint8Array): Uint8Array {
  return data.length % 4 === 0 ? data : padTo(data, data.length + 4 - (data.length % 4));
}

/** A firmware as a build for the board would export it. Same options, same bytes. */
export function makeTestFirmware(chip: TestChip, options: TestFirmwareOptions = {}): TestFirmware {
  const seed = options.seed ?? 1;
  const revisions = options.revisions ?? {};
  if (chip === 'ESP8266') {
    const size = options.size ?? 320 * 1024;
    const sizeNibble = (options.headerFlashSize ?? '4MB') === '4MB' ? 0x40 : 0x20;
    const boot = espImage(
      'ESP8266',
      [
        { addr: 0x40100000, data: machineCode(28 * 1024, seedFor('iram', seed)) },
        { addr: 0x3ffe8000, data: align4(textTable(1200, seedFor('data', seed))) },
        { addr: 0x3ffe8500, data: align4(textTable(3800, seedFor('rodata', seed))) },
      ],
      { flashSizeFreq: sizeNibble, entry: 0x40100004, sha256: false },
    );
    const iromStart = 0x9000;
    const iromLength = size - iromStart;
    // Frozen modules sit two thirds in, between the port's code and the rest of the libraries.
    const codeBefore = Math.floor(iromLength * 0.6);
    const region = modulesRegion(seed, revisions, iromStart + codeBefore);
    const codeAfter = iromLength - codeBefore - region.data.length;
    const irom = concat([
      machineCode(codeBefore, seedFor('irom-a', seed)),
      region.data,
      machineCode(codeAfter, seedFor('irom-b', seed)),
    ]);
    const image = concat([padTo(boot, iromStart), irom]);
    return { chip, offset: 0x0, image, modules: region.modules };
  }
  const size = options.size ?? 420 * 1024;
  const bootloader = espImage(
    'ESP32',
    [
      { addr: 0x3fff0030, data: align4(textTable(2300, seedFor('bl-data', seed))) },
      { addr: 0x40078000, data: machineCode(14 * 1024, seedFor('bl-iram0', seed)) },
      { addr: 0x40080400, data: machineCode(4 * 1024, seedFor('bl-iram1', seed)) },
    ],
    { flashSizeFreq: 0x20, entry: 0x40080644, sha256: true },
  );
  const partitions = new Uint8Array(0xc00).fill(0xff);
  const entries: Array<[number, number, number, number, string]> = [
    [1, 2, 0x9000, 0x6000, 'nvs'],
    [1, 1, 0xf000, 0x1000, 'phy_init'],
    [0, 0, 0x10000, 0x1f0000, 'factory'],
    [1, 0x81, 0x200000, 0x200000, 'vfs'],
  ];
  entries.forEach(([type, subtype, offset, length, name], i) => {
    const at = i * 32;
    partitions.set([0xaa, 0x50, type, subtype], at);
    u32(partitions, at + 4, offset);
    u32(partitions, at + 8, length);
    partitions.set(new TextEncoder().encode(name), at + 12);
  });
  partitions.set([0xeb, 0xeb, ...new Array<number>(14).fill(0xff)], entries.length * 32);
  partitions.set(
    createHash('md5')
      .update(partitions.subarray(0, entries.length * 32))
      .digest(),
    entries.length * 32 + 16,
  );
  const appStart = 0xf000;
  const appBudget = size - appStart;
  const dromLength = Math.floor(appBudget * 0.25);
  const region = modulesRegion(seed, revisions, 0); // offsets fixed below
  const drom = align4(
    concat([textTable(dromLength - region.data.length, seedFor('drom', seed)), region.data]),
  );
  const app = espImage(
    'ESP32',
    [
      { addr: 0x3f400020, data: drom },
      { addr: 0x3ffb0000, data: align4(textTable(12 * 1024, seedFor('dram', seed))) },
      { addr: 0x40080000, data: machineCode(72 * 1024, seedFor('iram', seed)) },
      {
        addr: 0x400d0020,
        data: machineCode(appBudget - dromLength - 84 * 1024 - 256, seedFor('irom', seed)),
      },
    ],
    { flashSizeFreq: 0x20, entry: 0x40081000, sha256: true },
  );
  // Module offsets in the image: app header (24) + first segment header (8) + text before the modules.
  const regionAt = appStart + 24 + 8 + (dromLength - region.data.length);
  const modules = region.modules.map((m) => ({ ...m, start: m.start + regionAt }));
  const image = concat([padTo(bootloader, 0x7000), padTo(partitions, appStart - 0x7000), app]);
  return { chip, offset: 0x1000, image, modules };
}

/**
 * The ESP32 test firmware with the extended header's chip id set to 9 (esptool's
 * ESP32S3ROM.IMAGE_CHIP_ID): an ESP32-S3 image. `revision` changes module `app`, as `revisions` does.
 */
export function makeTestS3Firmware(revision = 1): Uint8Array {
  const image = makeTestFirmware('ESP32', { revisions: { app: revision } }).image.slice();
  image[12] = 9;
  return image;
}

/**
 * Project files of a board plugin `esp32s3-usb`: an ESP32-S3 on its USB-Serial/JTAG port,
 * firmware.bin at 0x0 as esptool writes it (for tests that flash `makeTestS3Firmware`).
 */
export const S3_USB_BOARD_FILES: Readonly<Record<string, string>> = {
  'boards/esp32s3-usb/package.json': JSON.stringify({
    name: 'mp-board-esp32s3-usb',
    type: 'module',
    exports: './index.mjs',
    mp: { board: 'esp32s3-usb' },
  }),
  'boards/esp32s3-usb/index.mjs': `import { defineBoard } from '@mp/core';
export default defineBoard({
  id: 'esp32s3-usb',
  title: 'ESP32-S3 on its USB-Serial/JTAG port',
  port: 'esp32',
  chip: 'ESP32-S3',
  exportPrefix: 'ESP32S3',
  board: 'ESP32_GENERIC_S3',
  toolchain: { image: 'espressif/idf:v5.5.1' },
  artifacts: { firmware: 'firmware.bin' },
  firmware: 'firmware',
  defaultManifest: '$(PORT_DIR)/boards/manifest.py',
  flash: { segments: [{ offset: 0x0, artifact: 'firmware' }], mode: 'keep', freq: 'keep', size: 'keep', baud: 460800 },
});
`,
};
