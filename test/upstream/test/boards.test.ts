/** The ESP boards the real MicroPython trees describe (board.json), as mp reads them. */
import { execSync } from 'node:child_process';
import { listUpstreamBoards } from '@mp/core';
import { tempProject } from '@mp/test-utils';
import { describe, expect, it } from 'vitest';
import { unpackKit } from '../src/kit.ts';

const kit = await unpackKit();

function tree(tag: string): string {
  const dir = tempProject().dir;
  execSync(
    `git --git-dir ${kit.root}/micropython/micropython.git archive ${tag} ports/esp8266 ports/esp32/boards | tar -x -C ${dir}`,
  );
  return dir;
}

describe('upstream ESP boards', () => {
  it('v1.28.0: every board folder with board.json, with chip, flash offset, variants and native USB', async () => {
    const boards = await listUpstreamBoards(tree('v1.28.0'));
    const byName = Object.fromEntries(boards.map((b) => [b.name, b]));
    expect(boards.length).toBeGreaterThan(30);
    expect(byName.ESP8266_GENERIC).toMatchObject({ port: 'esp8266', chip: 'ESP8266', flashOffset: 0 });
    expect(byName.ESP8266_GENERIC!.variants.map((v) => v.name)).toEqual([
      'FLASH_1M',
      'FLASH_512K',
      'FLASH_2M_ROMFS',
    ]);
    expect(byName.ESP32_GENERIC).toMatchObject({
      port: 'esp32',
      mcu: 'esp32',
      chip: 'ESP32',
      flashOffset: 0x1000,
      flashOffsetFrom: 'board.json',
    });
    expect(byName.ESP32_GENERIC_S3).toMatchObject({ chip: 'ESP32-S3', flashOffset: 0, vendor: 'Espressif' });
    expect(byName.ESP32_GENERIC_S3!.variants).toEqual([
      { name: 'SPIRAM_OCT', description: 'Support for Octal-SPIRAM' },
    ]);
    expect(byName.ESP32_GENERIC_S2).toMatchObject({ chip: 'ESP32-S2', flashOffset: 0x1000 });
    expect(byName.ESP32_GENERIC_C3).toMatchObject({ chip: 'ESP32-C3', flashOffset: 0 });
    expect(byName.ESP32_GENERIC_C6).toMatchObject({ chip: 'ESP32-C6', flashOffset: 0 });
    // The port's own deploy notes put C5 and P4 images at 0x2000 (their bootloader offset).
    expect(byName.ESP32_GENERIC_C5).toMatchObject({ chip: 'ESP32-C5', flashOffset: 0x2000 });
    expect(byName.ESP32_GENERIC_P4).toMatchObject({ chip: 'ESP32-P4', flashOffset: 0x2000 });
    expect(byName.UM_TINYS3).toMatchObject({ chip: 'ESP32-S3', nativeUsb: true });
    expect(byName.ESP32_GENERIC!.nativeUsb).toBe(false);
    // Every esp32 board says where its image goes; ESP8266's board.json has no deploy_options.
    for (const board of boards.filter((b) => b.port === 'esp32'))
      expect(board.flashOffsetFrom, board.name).toBe('board.json');
    expect(byName.ESP8266_GENERIC!.flashOffsetFrom).toBe('chip default');
  });
});
