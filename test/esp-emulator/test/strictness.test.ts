import { deflateSync } from 'node:zlib';
import { getStubJsonByChipName, UnsupportedCommandError } from 'esptool-js';
import { describe, expect, it } from 'vitest';
import type { EspDeviceOptions } from '../src/index.ts';
import { COMMANDS, checksum, createEspEmulator, ROM_ERROR, STUB_ERROR } from '../src/index.ts';
import { flashOptions, md5Hex, openLoader, sleep, u32s } from './helpers.ts';

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** A *_DATA payload: length, sequence number, two zero words, data. */
function dataPayload(data: Uint8Array, seq: number): Uint8Array {
  return concat(u32s(data.length, seq, 0, 0), data);
}

/** esptool-js's checkCommand message for a ROM's status: [1, code]. */
const romError = (code: number) => new RegExp(`failed with status 1,${code}\\b`);
/** esptool-js's checkCommand message for a flasher stub's status: [code, 0]. */
const stubError = (code: number) => new RegExp(`failed with status ${code},0\\b`);

/** A zlib stream of stored (uncompressed) deflate blocks, one per part, each part a block to send. */
function storedBlocks(parts: Uint8Array[]): Uint8Array[] {
  const all = concat(...parts);
  let a = 1;
  let b = 0;
  for (const byte of all) {
    a = (a + byte) % 65521;
    b = (b + a) % 65521;
  }
  return parts.map((part, i) => {
    const last = i === parts.length - 1;
    const header = [
      last ? 1 : 0,
      part.length & 0xff,
      part.length >> 8,
      ~part.length & 0xff,
      (~part.length >> 8) & 0xff,
    ];
    return concat(
      Uint8Array.from(i === 0 ? [0x78, 0x01] : []),
      Uint8Array.from(header),
      part,
      Uint8Array.from(last ? [b >> 8, b & 0xff, a >> 8, a & 0xff] : []),
    );
  });
}

async function romSession(options: EspDeviceOptions) {
  const emulator = createEspEmulator(options);
  const session = await openLoader(emulator);
  await session.loader.connect();
  return { ...session, emulator, device: emulator.device() };
}

async function stubSession(options: EspDeviceOptions) {
  const session = await romSession(options);
  await session.loader.runStub();
  return session;
}

describe('data blocks', () => {
  it('a block whose checksum does not match its data gets status 0xC1 from the stub and 0x07 from the ROM', async () => {
    const data = new Uint8Array(1024).fill(0x5a);
    const stub = await stubSession({ chip: 'esp32' });
    await stub.loader.flashBegin(data.length, 0x10000);
    await expect(
      stub.loader.checkCommand('write', COMMANDS.FLASH_DATA, dataPayload(data, 0), checksum(data) ^ 1),
    ).rejects.toThrow(stubError(STUB_ERROR.BAD_DATA_CHECKSUM));
    // the block was not taken: the same sequence number with the right checksum is accepted
    await stub.loader.checkCommand('write', COMMANDS.FLASH_DATA, dataPayload(data, 0), checksum(data));
    await stub.transport.disconnect();

    const rom = await romSession({ chip: 'esp8266' });
    await rom.loader.flashBegin(data.length, 0x10000);
    await expect(
      rom.loader.checkCommand('write', COMMANDS.FLASH_DATA, dataPayload(data, 0), checksum(data) ^ 1),
    ).rejects.toThrow(romError(ROM_ERROR.CHECKSUM));
    await rom.transport.disconnect();
  });

  it('a block with the wrong sequence number is refused and does not advance the transfer', async () => {
    const data = new Uint8Array(0x4000).fill(0x11);
    const { loader, transport, device } = await stubSession({ chip: 'esp8266' });
    loader.WRITE_BLOCK_ATTEMPTS = 1;
    await loader.flashBegin(3 * data.length, 0);
    await expect(loader.flashBlock(data, 1, 1000)).rejects.toThrow(stubError(STUB_ERROR.INVALID_COMMAND));
    await loader.flashBlock(data, 0, 1000);
    await expect(loader.flashBlock(data, 0, 1000)).rejects.toThrow(stubError(STUB_ERROR.INVALID_COMMAND));
    await loader.flashBlock(data, 1, 1000);
    await loader.flashBlock(data, 2, 1000);
    await expect(loader.flashBlock(data, 3, 1000)).rejects.toThrow(stubError(STUB_ERROR.TOO_MUCH_DATA));
    expect(device.stats.flashWrites).toEqual([{ offset: 0, length: 3 * data.length }]);
    await transport.disconnect();
  });

  it('the stub answers a compressed block before inflating it: a bad stream is reported at the next command, a wrong size at the end', async () => {
    const { loader, transport, device } = await stubSession({ chip: 'esp32' });
    loader.WRITE_BLOCK_ATTEMPTS = 1;
    const half = deflateSync(new Uint8Array(500).fill(7));
    await loader.flashDeflBegin(1000, half.length, 0x10000);
    await loader.flashDeflBlock(half, 0, 1000);
    await expect(loader.flashDeflFinish(false)).rejects.toThrow(stubError(STUB_ERROR.BAD_DATA_LEN));

    // More than announced, but inside the announced region's last sector: written, refused at the end.
    await loader.flashDeflBegin(100, half.length, 0x20000);
    await loader.flashDeflBlock(half, 0, 1000);
    await expect(loader.flashDeflFinish(false)).rejects.toThrow(stubError(STUB_ERROR.BAD_DATA_LEN));
    expect(device.flash.subarray(0x20000, 0x20000 + 500)).toEqual(new Uint8Array(500).fill(7));

    const garbage = new Uint8Array(64).fill(0x42);
    await loader.flashDeflBegin(1000, garbage.length, 0x30000);
    await loader.flashDeflBlock(garbage, 0, 1000);
    await expect(loader.flashDeflFinish(false)).rejects.toThrow(stubError(STUB_ERROR.INFLATE_ERROR));
    // The carried error was answered once, instead of executing that command.
    expect((await loader.readReg(0x40001000)) >>> 0).toBe(0x00f01d83);
    expect(device.stats.errorResponses.filter((e) => e.stub).map((e) => e.error)).toEqual([
      STUB_ERROR.BAD_DATA_LEN,
      STUB_ERROR.BAD_DATA_LEN,
      STUB_ERROR.INFLATE_ERROR,
    ]);
    await transport.disconnect();
  });

  it('a compressed block sent twice is inflated twice; past the announced region the stub hangs until a reset', async () => {
    const sector = (fill: number) => new Uint8Array(0x1000).fill(fill);
    const [first, second, third] = storedBlocks([sector(1), sector(2), sector(3)]);
    const { loader, transport, device, emulator } = await stubSession({ chip: 'esp8266' });
    loader.WRITE_BLOCK_ATTEMPTS = 1;
    await loader.flashDeflBegin(0x3000, first!.length + second!.length + third!.length, 0x10000);
    await loader.flashDeflBlock(first!, 0, 1000);
    await loader.flashDeflBlock(second!, 1, 1000);
    // No sequence check: the repeat is taken as more of the stream.
    await loader.flashDeflBlock(second!, 1, 1000);
    // Answered on receipt; writing it would pass 0x13000, so the stub never answers again.
    await loader.flashDeflBlock(third!, 2, 1000);
    expect(device.flash.subarray(0x12000, 0x13000)).toEqual(sector(2));
    await expect(loader.flashDeflFinish(false, 300)).rejects.toThrow();
    await expect(loader.readReg(0x40001000, 300)).rejects.toThrow();
    expect(device.stats.stubHangs).toBe(1);
    expect(device.flash[0x13000]).toBe(0xff);
    await transport.disconnect();

    // A reset brings back the ROM loader, and a new stub writes normally.
    const again = await openLoader(emulator);
    await again.loader.main();
    await again.loader.writeFlash(flashOptions(concat(sector(1), sector(2), sector(3)), 0x10000));
    expect(again.log).toContain('Hash of data verified.');
    await again.transport.disconnect();
  });
});

describe('flash', () => {
  it('refuses to write past the end of the flash', async () => {
    const stub = await stubSession({ chip: 'esp32', flashSize: 0x100000 });
    await expect(stub.loader.flashBegin(0x2000, 0x100000 - 0x1000)).rejects.toThrow(
      stubError(STUB_ERROR.BAD_DATA_LEN),
    );
    await stub.transport.disconnect();

    const rom = await romSession({ chip: 'esp8266', flashSize: 0x80000 });
    await expect(rom.loader.flashBegin(0x2000, 0x7f000)).rejects.toThrow(
      romError(ROM_ERROR.INVALID_PARAMETER),
    );
    await rom.transport.disconnect();
  });

  it('programming flash that was not erased is caught by the ROM read-back check (0x08)', async () => {
    const { loader, transport } = await romSession({ chip: 'esp8266', flash: new Uint8Array(0x1000) });
    loader.WRITE_BLOCK_ATTEMPTS = 1;
    // FLASH_BEGIN that erases nothing but announces one block at offset 0 (all zero bytes there)
    await loader.checkCommand('begin', COMMANDS.FLASH_BEGIN, u32s(0, 1, 0x1000, 0, 0));
    await expect(loader.flashBlock(new Uint8Array(0x1000).fill(0xa5), 0, 1000)).rejects.toThrow(
      romError(ROM_ERROR.FLASH_WRITE),
    );
    await transport.disconnect();
  });

  it('the ESP32 ROM needs SPI_ATTACH before it touches flash, then answers MD5 as 32 hex digits', async () => {
    const { loader, transport } = await romSession({ chip: 'esp32' });
    await expect(loader.flashBegin(0x1000, 0)).rejects.toThrow(romError(ROM_ERROR.RESULT_WRONG));
    await loader.flashSpiAttach(0);
    const [, data] = await loader.command(COMMANDS.SPI_FLASH_MD5, u32s(0, 0x1000, 0, 0));
    expect(new TextDecoder().decode(data.subarray(0, 32))).toBe(md5Hex(new Uint8Array(0x1000).fill(0xff)));
    expect(data.subarray(32)).toEqual(new Uint8Array([0, 0, 0, 0]));
    await transport.disconnect();
  });
});

describe('protocol dialects', () => {
  it('the ESP32 ROM ends responses with 4 status bytes; the ESP8266 ROM and every stub with 2', async () => {
    const esp32 = await romSession({ chip: 'esp32' });
    const [magic32, status32] = await esp32.loader.command(COMMANDS.READ_REG, u32s(0x40001000));
    expect([magic32 >>> 0, status32]).toEqual([0x00f01d83, new Uint8Array(4)]);
    await esp32.loader.runStub();
    expect((await esp32.loader.command(COMMANDS.READ_REG, u32s(0x40001000)))[1]).toEqual(new Uint8Array(2));
    await esp32.transport.disconnect();

    const esp8266 = await romSession({ chip: 'esp8266' });
    const [magic8266, status8266] = await esp8266.loader.command(COMMANDS.READ_REG, u32s(0x40001000));
    expect([magic8266 >>> 0, status8266]).toEqual([0xfff0c101, new Uint8Array(2)]);
    await esp8266.transport.disconnect();
  });

  it('commands a ROM does not implement come back as unsupported (ESP8266: no MD5, no compressed writes)', async () => {
    const { loader, transport, device } = await romSession({ chip: 'esp8266' });
    await expect(loader.flashMd5sum(0, 0x1000)).rejects.toBeInstanceOf(UnsupportedCommandError);
    await expect(loader.flashDeflBegin(0x1000, 100, 0)).rejects.toBeInstanceOf(UnsupportedCommandError);
    expect(device.stats.errorResponses.slice(-2)).toEqual([
      { command: 'SPI_FLASH_MD5', error: ROM_ERROR.INVALID_MESSAGE, stub: false },
      { command: 'FLASH_DEFL_BEGIN', error: ROM_ERROR.INVALID_MESSAGE, stub: false },
    ]);
    await transport.disconnect();
  });

  it('malformed frames get no answer at all: bad SLIP escape, wrong length field, wrong direction, bad SYNC', async () => {
    const { loader, transport, port, device } = await romSession({ chip: 'esp32' });
    const readMagic = [0x00, COMMANDS.READ_REG, 4, 0, 0, 0, 0, 0, 0x00, 0x10, 0x00, 0x40];
    const frames = [
      [0xc0, ...readMagic.slice(0, 9), 0xdb, 0x01, 0x00, 0x40, 0xc0],
      [0xc0, 0x00, COMMANDS.READ_REG, 8, 0, 0, 0, 0, 0, 0x00, 0x10, 0x00, 0x40, 0xc0],
      [0xc0, 0x01, ...readMagic.slice(1), 0xc0],
      [0xc0, 0x00, COMMANDS.SYNC, 36, 0, 0, 0, 0, 0, ...new Array<number>(36).fill(0x55), 0xc0],
    ];
    const writer = port.writable!.getWriter();
    for (const frame of frames) await writer.write(Uint8Array.from(frame));
    writer.releaseLock();
    await sleep(50);
    expect(transport.inWaiting()).toBe(0);
    expect(device.stats.malformedFrames).toBe(4);
    expect((await loader.readReg(0x40001000)) >>> 0).toBe(0x00f01d83);
    await transport.disconnect();
  });

  it('after CHANGE_BAUDRATE the device only understands the new rate', async () => {
    const { loader, transport, port, device } = await stubSession({ chip: 'esp32' });
    await loader.command(COMMANDS.CHANGE_BAUDRATE, u32s(921600, 115200));
    // The stub switches 5 ms after its answer (esp-stub-lib `stub_target_uart_rominit_set_baudrate`).
    await new Promise((resolve) => setTimeout(resolve, 10));
    await expect(loader.readReg(0x40001000, 200)).rejects.toThrow();
    expect(device.stats.garbledBytesReceived).toBeGreaterThan(0);
    await port.setBaudRate(921600);
    transport.flushInput();
    expect((await loader.readReg(0x40001000)) >>> 0).toBe(0x00f01d83);
    await transport.disconnect();
  });
});

describe('stub upload', () => {
  it("only esptool-js's own stub, byte for byte and with its entry point, is started", async () => {
    const { loader, transport, device } = await romSession({ chip: 'esp32' });
    const stub = (await getStubJsonByChipName('ESP32'))!;
    const upload = async (text: Uint8Array, entry: number) => {
      for (const [offset, bytes] of [
        [stub.text_start, text],
        [stub.data_start, stub.decodedData],
      ] as const) {
        const blocks = Math.ceil(bytes.length / loader.ESP_RAM_BLOCK);
        await loader.memBegin(bytes.length, blocks, loader.ESP_RAM_BLOCK, offset);
        for (let seq = 0; seq < blocks; seq++) {
          await loader.memBlock(
            bytes.slice(seq * loader.ESP_RAM_BLOCK, (seq + 1) * loader.ESP_RAM_BLOCK),
            seq,
          );
        }
      }
      await loader.memFinish(entry);
    };
    const tampered = Uint8Array.from(stub.decodedText);
    tampered[100] = tampered[100]! ^ 0x01;
    await expect(upload(tampered, stub.entry)).rejects.toThrow(romError(ROM_ERROR.RESULT_WRONG));
    await expect(upload(stub.decodedText, stub.entry + 4)).rejects.toThrow(romError(ROM_ERROR.RESULT_WRONG));
    expect(device.stats.stubRejections).toEqual([
      "text segment differs from esptool-js's stub",
      `entry 0x${(stub.entry + 4).toString(16)}, expected 0x${stub.entry.toString(16)}`,
    ]);
    expect(device.mode).toBe('download');
    await loader.runStub();
    expect(device.mode).toBe('stub');
    await transport.disconnect();
  });
});
