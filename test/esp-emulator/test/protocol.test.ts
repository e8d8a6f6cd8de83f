import { describe, expect, it } from 'vitest';
import { checksum, encodeResponse, firmwareId, garble, SlipDecoder, slipEncode } from '../src/index.ts';

describe('SLIP framing', () => {
  it('escapes 0xC0 as DB DC and 0xDB as DB DD between C0 delimiters', () => {
    expect([...slipEncode(Uint8Array.from([0x01, 0xc0, 0x02, 0xdb, 0x03]))]).toEqual([
      0xc0, 0x01, 0xdb, 0xdc, 0x02, 0xdb, 0xdd, 0x03, 0xc0,
    ]);
  });

  it('decodes frames split across reads, skips noise between frames and drops frames with bad escapes', () => {
    const decoder = new SlipDecoder();
    expect(decoder.push(Uint8Array.from([0x55, 0x55, 0xc0, 0x01, 0xdb]))).toEqual([]);
    expect(
      decoder.push(Uint8Array.from([0xdc, 0x02, 0xc0, 0xc0, 0x03, 0xdb, 0x07, 0xc0, 0xc0, 0x04, 0xc0])),
    ).toEqual([Uint8Array.from([0x01, 0xc0, 0x02]), Uint8Array.from([0x04])]);
    expect(decoder.malformed).toBe(1);
  });
});

describe('packets', () => {
  it('checksums *_DATA payloads as 0xEF XOR every byte', () => {
    expect(checksum(new Uint8Array())).toBe(0xef);
    expect(checksum(Uint8Array.from([0xef]))).toBe(0);
    expect(checksum(Uint8Array.from([1, 2, 4]))).toBe(0xef ^ 7);
  });

  it('encodes a response as 01, op, size, value, data', () => {
    expect([...encodeResponse(0x0a, 0x12345678, Uint8Array.from([0, 0]))]).toEqual([
      0x01, 0x0a, 0x02, 0x00, 0x78, 0x56, 0x34, 0x12, 0x00, 0x00,
    ]);
  });

  it('garbles every byte at a wrong baud rate, never leaving one intact', () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    const garbled = garble(all);
    expect(garbled.every((b, i) => b !== i)).toBe(true);
    expect(new Set(garbled).size).toBe(256);
  });
});

describe('firmware identity', () => {
  it('ignores trailing 0xFF padding and the flash parameter bytes esptool may rewrite', () => {
    const image = Uint8Array.from([0xe9, 0x01, 0x02, 0x20, 0xaa, 0xbb]);
    const padded = Uint8Array.from([0xe9, 0x01, 0x03, 0x40, 0xaa, 0xbb, 0xff, 0xff]);
    expect(firmwareId(padded)).toBe(firmwareId(image));
    expect(firmwareId(Uint8Array.from([0xe9, 0x01, 0x02, 0x20, 0xaa, 0xbc]))).not.toBe(firmwareId(image));
  });
});
