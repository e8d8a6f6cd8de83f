/** Wire format of the ESP serial bootloader protocol: SLIP framing, command ops, status codes. */

export const SLIP_END = 0xc0;
export const SLIP_ESC = 0xdb;
export const SLIP_ESC_END = 0xdc;
export const SLIP_ESC_ESC = 0xdd;

export const COMMANDS = {
  FLASH_BEGIN: 0x02,
  FLASH_DATA: 0x03,
  FLASH_END: 0x04,
  MEM_BEGIN: 0x05,
  MEM_END: 0x06,
  MEM_DATA: 0x07,
  SYNC: 0x08,
  WRITE_REG: 0x09,
  READ_REG: 0x0a,
  SPI_SET_PARAMS: 0x0b,
  SPI_ATTACH: 0x0d,
  READ_FLASH_SLOW: 0x0e,
  CHANGE_BAUDRATE: 0x0f,
  FLASH_DEFL_BEGIN: 0x10,
  FLASH_DEFL_DATA: 0x11,
  FLASH_DEFL_END: 0x12,
  SPI_FLASH_MD5: 0x13,
  GET_SECURITY_INFO: 0x14,
  ERASE_FLASH: 0xd0,
  ERASE_REGION: 0xd1,
  READ_FLASH: 0xd2,
  RUN_USER_CODE: 0xd3,
} as const;

export type CommandName = keyof typeof COMMANDS;

const NAMES = new Map<number, CommandName>(
  Object.entries(COMMANDS).map(([name, op]) => [op, name as CommandName] as const),
);

/** `FLASH_DATA` for known ops, `UNKNOWN_0x42` otherwise. */
export function commandName(op: number): string {
  return NAMES.get(op) ?? `UNKNOWN_0x${op.toString(16).padStart(2, '0')}`;
}

/** Error codes the ROM loader puts in the second status byte. */
export const ROM_ERROR = {
  INVALID_PARAMETER: 0x01,
  INVALID_MESSAGE: 0x05,
  RESULT_WRONG: 0x06,
  CHECKSUM: 0x07,
  FLASH_WRITE: 0x08,
  FLASH_READ: 0x09,
  DEFLATE: 0x0b,
  RAM_SIZE: 0x0e,
  RAM_ADDRESS: 0x0f,
} as const;

/** Error codes of the esptool flasher stub (flasher_stub/include/stub_flasher.h). */
export const STUB_ERROR = {
  BAD_DATA_LEN: 0xc0,
  BAD_DATA_CHECKSUM: 0xc1,
  BAD_BLOCKSIZE: 0xc2,
  INVALID_COMMAND: 0xc3,
  FAILED_SPI_OP: 0xc4,
  NOT_IN_FLASH_MODE: 0xc6,
  INFLATE_ERROR: 0xc7,
  NOT_ENOUGH_DATA: 0xc8,
  TOO_MUCH_DATA: 0xc9,
  CMD_NOT_IMPLEMENTED: 0xff,
} as const;

export const CHECKSUM_SEED = 0xef;

export function checksum(data: Uint8Array): number {
  let state = CHECKSUM_SEED;
  for (const byte of data) state ^= byte;
  return state;
}

export function slipEncode(payload: Uint8Array): Uint8Array {
  const out: number[] = [SLIP_END];
  for (const byte of payload) {
    if (byte === SLIP_END) out.push(SLIP_ESC, SLIP_ESC_END);
    else if (byte === SLIP_ESC) out.push(SLIP_ESC, SLIP_ESC_ESC);
    else out.push(byte);
  }
  out.push(SLIP_END);
  return Uint8Array.from(out);
}

/**
 * Incremental SLIP decoder with the ROM's tolerance: bytes outside a frame are noise and skipped,
 * a frame with a bad escape sequence is dropped whole, and `C0 C0` is an empty frame (ignored).
 */
export class SlipDecoder {
  #frame: number[] = [];
  #inFrame = false;
  #escaping = false;
  #broken = false;
  /** Frames dropped for bad escapes. */
  malformed = 0;

  push(bytes: Uint8Array): Uint8Array[] {
    const frames: Uint8Array[] = [];
    for (const byte of bytes) {
      if (!this.#inFrame) {
        if (byte === SLIP_END) this.#start();
        continue;
      }
      if (byte === SLIP_END) {
        if (this.#frame.length > 0 || this.#broken) {
          if (this.#broken) this.malformed++;
          else frames.push(Uint8Array.from(this.#frame));
        }
        // The closing C0 of one frame may double as the opening C0 of the next.
        this.#start();
        continue;
      }
      if (this.#escaping) {
        this.#escaping = false;
        if (byte === SLIP_ESC_END) this.#frame.push(SLIP_END);
        else if (byte === SLIP_ESC_ESC) this.#frame.push(SLIP_ESC);
        else this.#broken = true;
      } else if (byte === SLIP_ESC) {
        this.#escaping = true;
      } else {
        this.#frame.push(byte);
      }
    }
    return frames;
  }

  reset(): void {
    this.#frame = [];
    this.#inFrame = false;
    this.#escaping = false;
    this.#broken = false;
  }

  #start(): void {
    this.#frame = [];
    this.#inFrame = true;
    this.#escaping = false;
    this.#broken = false;
  }
}

export interface CommandPacket {
  op: number;
  name: string;
  /** Checksum field of the header (only meaningful for *_DATA commands). */
  checksum: number;
  data: Uint8Array;
}

/** Parses a request frame; `undefined` for anything the ROM would silently ignore. */
export function parseCommand(frame: Uint8Array): CommandPacket | undefined {
  if (frame.length < 8 || frame[0] !== 0x00) return undefined;
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const size = view.getUint16(2, true);
  if (size !== frame.length - 8) return undefined;
  const op = frame[1]!;
  return { op, name: commandName(op), checksum: view.getUint32(4, true), data: frame.subarray(8) };
}

export function encodeResponse(op: number, value: number, data: Uint8Array): Uint8Array {
  const packet = new Uint8Array(8 + data.length);
  const view = new DataView(packet.buffer);
  packet[0] = 0x01;
  packet[1] = op;
  view.setUint16(2, data.length, true);
  view.setUint32(4, value >>> 0, true);
  packet.set(data, 8);
  return packet;
}

export function u32(data: Uint8Array, index: number): number {
  const offset = index * 4;
  if (data.length < offset + 4) return 0;
  return new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(offset, true);
}

export function u32le(value: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value >>> 0, true);
  return out;
}
