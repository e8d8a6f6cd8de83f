/**
 * What each chip's loaders can do, and the commands mp sends them that esptool-js has no (right)
 * call for: writes and MD5 checks in the ROM loader without the flasher stub (esptool `--no-stub`),
 * and the baud rate change of each loader.
 *
 * esptool (loader.py) marks `flash_defl_begin`, `flash_defl_block`, `flash_defl_finish`,
 * `flash_md5sum` and `change_baud` `@stub_and_esp32_function_only`, "only supported by stubs or
 * ESP32 and later chips ROM": the ESP8266 ROM has none of them, so an ESP8266 always gets the stub.
 */
import type { ESPLoader } from 'esptool-js';

/** The stub's CHANGE_BAUDRATE (esptool-js `changeBaud`, esptool `change_baud`); the ROM has it too. */
const CHANGE_BAUDRATE = 0x0f;
const SPI_SET_PARAMS = 0x0b;
const SPI_ATTACH = 0x0d;

/**
 * Chips whose ROM loader mp lets write and verify small changes itself, so no stub is uploaded at
 * the ROM's 115200 baud (6.7 KiB for the ESP32, 0.6 s). Later chips' ROMs can too, but each differs
 * (C2/C5 baud rate handling, the extended FLASH_DEFL_BEGIN, USB transports): they keep the stub.
 */
export function romFlashes(chip: string): boolean {
  return chip === 'ESP32';
}

/** esptool `ESPLoader.FLASH_WRITE_SIZE` for ROM loaders (the stub's `StubMixin` uses 0x4000). */
export const ROM_WRITE_BLOCK = 0x400;

/**
 * Writes up to this many compressed bytes stay with the ROM. The ROM erases the whole region at
 * FLASH_DEFL_BEGIN and answers each 1 KiB block only once it is written, so every block costs a
 * round trip; the stub takes 16 KiB blocks and writes one while the next arrives, but its upload at
 * 115200 baud costs about 0.6 s (ESP32). At 460800 baud 64 KiB in 1 KiB blocks cost about 0.1 s of
 * round trips more.
 */
export const ROM_WRITE_LIMIT = 64 * 1024;

function words(...values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  for (const [i, value] of values.entries()) view.setUint32(i * 4, value >>> 0, true);
  return out;
}

/**
 * FLASH_DEFL_BEGIN as esptool sends it to a ROM loader (loader.py `flash_defl_begin`, not IS_STUB):
 * the size "rounded up to erase block size" (whole 1 KiB blocks; the ROM erases it up front, so the
 * timeout grows with it), 1 KiB packets, and no fifth word ("ESP32 and ESP8266 ROMs do not support
 * extended parameter format"). Returns the number of blocks to send.
 */
export async function romFlashDeflBegin(
  loader: ESPLoader,
  size: number,
  compressedSize: number,
  offset: number,
): Promise<number> {
  const blocks = Math.ceil(compressedSize / ROM_WRITE_BLOCK);
  const writeSize = Math.ceil(size / ROM_WRITE_BLOCK) * ROM_WRITE_BLOCK;
  const timeout = loader.timeoutPerMb(loader.ERASE_REGION_TIMEOUT_PER_MB, writeSize);
  await loader.checkCommand(
    'enter compressed flash mode',
    loader.ESP_FLASH_DEFL_BEGIN,
    words(writeSize, blocks, ROM_WRITE_BLOCK, offset),
    0,
    0,
    timeout,
  );
  return blocks;
}

/**
 * SPI_FLASH_MD5 answered by a ROM loader: "32 hex-coded ASCII" (esptool serial-protocol.rst;
 * loader.py `flash_md5sum`: `res.decode("utf-8")  # already hex formatted`). esptool-js's
 * `flashMd5sum` hex-encodes those ASCII bytes once more, so it is not used with the ROM.
 */
export async function romMd5(loader: ESPLoader, offset: number, size: number): Promise<string> {
  const timeout = loader.timeoutPerMb(loader.MD5_TIMEOUT_PER_MB, size);
  const digits = await loader.checkCommand(
    'calculate md5sum',
    loader.ESP_SPI_FLASH_MD5,
    words(offset, size, 0, 0),
    0,
    32,
    timeout,
  );
  return new TextDecoder().decode(digits as Uint8Array).toLowerCase();
}

/** ESP32 eFuse words (esptool targets/esp32.py `EFUSE_RD_REG_BASE`). */
const ESP32_EFUSE = 0x3ff5a000;

/**
 * SPI_ATTACH for the ESP32 ROM, which "doesn't attach in-package flash chips" by itself (esptool
 * cmds.py `attach_flash`): the pads from the eFuses (esp32.py `get_chip_spi_pads`: BLK0 word 5
 * bits 0-19 clk/q/d/cs, word 3 bits 4-8 hd), all zero for the default pins; the ROM takes a second
 * word, "is legacy", 0 (loader.py `flash_spi_attach`).
 */
export async function attachRomFlash(loader: ESPLoader): Promise<void> {
  const word5 = await loader.readReg(ESP32_EFUSE + 0x14);
  const word3 = await loader.readReg(ESP32_EFUSE + 0x0c);
  const [clk, q, d, cs] = [0, 5, 10, 15].map((shift) => (word5 >>> shift) & 0x1f) as [
    number,
    number,
    number,
    number,
  ];
  const hd = (word3 >>> 4) & 0x1f;
  const pads = (hd << 24) | (cs << 18) | (d << 12) | (q << 6) | clk;
  await loader.checkCommand('configure SPI flash pins', SPI_ATTACH, words(pads, 0));
}

/** SPI_SET_PARAMS with esptool's fixed geometry and the flash size (loader.py `flash_set_parameters`). */
export async function setFlashParameters(loader: ESPLoader, sizeBytes: number): Promise<void> {
  await loader.checkCommand(
    'set SPI params',
    SPI_SET_PARAMS,
    words(0, sizeBytes, 64 * 1024, 4 * 1024, 256, 0xffff),
  );
}

/**
 * The two words of CHANGE_BAUDRATE that give `target` on the wire, for the loader running now.
 * - ESP32 ROM: the new rate, corrected for the ROM's own idea of its crystal (esptool esp32.py
 *   `change_baud`, "a workaround to avoid esp32 CK_8M frequency drift"), and 0.
 * - ESP8266 stub (esp-flasher-stub): it scales the divider in use as if it gave 115200 (esp-stub-lib
 *   src/target/esp8266/src/uart.c: `new_clk_div = clk_div * 115200 / baudrate`), so after a sync
 *   at another rate the rate asked for is `target × 115200 / current`.
 * - other stubs: the new rate and the current one (esptool serial-protocol.rst, CHANGE_BAUDRATE).
 */
export async function changeBaudArguments(
  loader: ESPLoader,
  inStub: boolean,
  target: number,
  current: number,
): Promise<[number, number]> {
  const chip = loader.chip.CHIP_NAME;
  if (!inStub) {
    if (chip !== 'ESP32') return [target, 0];
    const RTCCALICFG1 = 0x3ff5f06c;
    const cali = ((await loader.readReg(RTCCALICFG1)) >>> 7) & 0x1ffffff;
    const clk8M = (await loader.readReg(ESP32_EFUSE + 4 * 4)) & 0xff;
    const romFreq = (cali * 15625 * clk8M) / 40;
    const validFreq = romFreq > 33_000_000 ? 40_000_000 : 26_000_000;
    const corrected = Math.floor((target * romFreq) / validFreq);
    // Unreadable calibration (zeros) would ask for 0 baud; a drift is a few per cent at most.
    return [Math.abs(corrected / target - 1) < 0.1 ? corrected : target, 0];
  }
  if (chip === 'ESP8266') return [Math.round((target * 115200) / current), current];
  return [target, current];
}

/** Sends CHANGE_BAUDRATE; the loader answers at the old rate, then switches. */
export async function sendChangeBaud(loader: ESPLoader, args: [number, number]): Promise<void> {
  await loader.checkCommand('change the baud rate', CHANGE_BAUDRATE, words(...args));
}
