import { describe, expect, it } from 'vitest';
import { ESP_OPEN_SDK_IMAGE, esp8266Toolchain, MICROPYTHON_ESP8266_IMAGE } from '../src/index.ts';

// The firmware rule of ports/esp8266/Makefile in v1.28.0, and as commit 7a61d7c2e0 changed it.
const V1_28_RULE =
  '$(BUILD)/firmware.bin: $(BUILD)/firmware.elf\n\t$(ECHO) "Create $@"\n\t$(Q)$(ESPTOOL) elf2image $^\n';
const V1_29_RULE =
  '$(BUILD)/firmware.bin: $(BUILD)/firmware.elf\n\t$(ECHO) "Create $@"\n\t$(Q)$(ESPTOOL) --chip esp8266 elf2image $^\n';

describe('esp8266 toolchain choice', () => {
  it('follows what the Makefile runs, and says why', () => {
    expect(esp8266Toolchain(V1_28_RULE)).toMatchObject({ image: ESP_OPEN_SDK_IMAGE });
    const newer = esp8266Toolchain(V1_29_RULE);
    expect(newer.image).toBe(MICROPYTHON_ESP8266_IMAGE);
    expect(newer.reason).toMatch(/--chip esp8266 elf2image/);
    expect(esp8266Toolchain('\t$(Q)$(ESPTOOL) elf2image --chip esp8266 $^\n').image).toBe(
      MICROPYTHON_ESP8266_IMAGE,
    );
  });

  it('is not fooled by a comment or by --chip on another line', () => {
    expect(esp8266Toolchain(`# esptool --chip esp8266 elf2image\n${V1_28_RULE}`).image).toBe(
      ESP_OPEN_SDK_IMAGE,
    );
    expect(
      esp8266Toolchain(`deploy:\n\t$(ESPTOOL) --chip esp8266 write_flash 0 x\n${V1_28_RULE}`).image,
    ).toBe(ESP_OPEN_SDK_IMAGE);
  });
});
