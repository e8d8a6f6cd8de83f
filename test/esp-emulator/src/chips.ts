import { COMMANDS } from './protocol.ts';

export type ChipName = 'esp8266' | 'esp32' | 'esp32s3' | 'esp32c3';

/** The USB-serial bridge the emulated board carries, as `list()` reports it. */
export interface UsbIdentity {
  /** 4 lowercase hex digits, like bindings-cpp reports them. */
  vendorId: string;
  productId: string;
  manufacturer: string;
  serialNumber: string | undefined;
  pnpId: string | undefined;
}

/** Why the chip last started, as its ROM reports it in the boot banner. */
export type ResetCause = 'power-on' | 'reset' | 'software' | 'usb';

/**
 * What the emulator needs to know about a chip: the registers esptool-js reads to identify it
 * (targets/esp8266.js, esp32.js, esp32s3.js, esp32c3.js), the ROM loader's dialect, and the boot
 * messages.
 */
export interface ChipDefinition {
  name: ChipName;
  /** Name esptool-js uses (`CHIP_NAME`), also the key of its bundled flasher stub. */
  displayName: 'ESP8266' | 'ESP32' | 'ESP32-S3' | 'ESP32-C3';
  /** Value of CHIP_DETECT_MAGIC_REG (0x40001000). */
  magic: number;
  /**
   * What the ROM's GET_SECURITY_INFO (0x14) answers; absent: the ROM does not implement it
   * (ESP8266, ESP32). esptool loader.py `get_security_info`: 32-bit flags, flash_crypt_cnt, 7 key
   * purposes, then "32-bit word chip_id (ESP32-S3 and later)" and the API version. esptool-js
   * `identifyChip` asks for it first and only falls back to the magic register when the ROM
   * answers it as unsupported.
   */
  securityInfo?: { chipId: number; apiVersion: number };
  /** The chip has a USB-Serial/JTAG peripheral (device option `usb: 'usb-serial-jtag'`). */
  usbSerialJtag: boolean;
  /** Status bytes at the end of a ROM response (every stub uses 2). */
  romStatusBytes: 2 | 4;
  /** Value field of the ROM's SYNC replies (the stub replies 0). */
  romSyncValue: number;
  /** Baud rate of the ROM's boot messages (ESP8266 with a 26 MHz crystal: 74880). */
  romBaud: number;
  /** Commands the ROM loader implements; the rest get the invalid-message reply. */
  romCommands: ReadonlySet<number>;
  /** Commands the flasher stub implements. */
  stubCommands: ReadonlySet<number>;
  /** Whether the ROM needs SPI_ATTACH before it can touch flash (ESP32 does). */
  romNeedsSpiAttach: boolean;
  /**
   * The rate the flasher stub sets UART0 to when it starts, where it does: esp-flasher-stub
   * src/main.c on the ESP32 (and S2, P4) boosts the CPU clock and reprograms the divider for
   * `stub_lib_uart_rominit_get_baudrate()`, the rate the ROM's UART driver holds. That is 115200
   * from the ROM's start; whether a CHANGE_BAUDRATE to the ROM or its autobaud update it is not
   * documented, so the emulator takes the rate they leave behind to be 115200 either way. Undefined:
   * the stub keeps the UART as the ROM left it (ESP8266: `stub_lib_clock_init` only for USB).
   */
  stubUartBaud?: number;
  xtalMHz: number;
  /** esptool-js XTAL_CLK_DIVIDER: UART clock = crystal * divider. */
  xtalClkDivider: number;
  uartClkdivReg: number;
  spiRegBase: number;
  spiUsr2Offset: number;
  spiW0Offset: number;
  /** Flash offset of the application image whose banner the emulated app prints. */
  appOffset: number;
  /** RAM the ROM accepts MEM_BEGIN for: [start, end). */
  ramRanges: ReadonlyArray<readonly [number, number]>;
  usb: UsbIdentity;
  defaultMac: string;
  /** Constant registers (eFuses, chip id, date registers) for a given MAC. */
  constantRegisters(mac: Uint8Array): Map<number, number>;
  romBanner(kind: 'download' | 'flash', cause: ResetCause): string;
  /** What the ROM prints when there is no valid image at the app offset. */
  noFirmwareMessage: string;
}

export const CHIP_DETECT_MAGIC_REG = 0x40001000;

const COMMON_LOADER = [
  COMMANDS.FLASH_BEGIN,
  COMMANDS.FLASH_DATA,
  COMMANDS.FLASH_END,
  COMMANDS.MEM_BEGIN,
  COMMANDS.MEM_END,
  COMMANDS.MEM_DATA,
  COMMANDS.SYNC,
  COMMANDS.WRITE_REG,
  COMMANDS.READ_REG,
];

const STUB_COMMANDS = new Set<number>([
  ...COMMON_LOADER,
  COMMANDS.SPI_SET_PARAMS,
  COMMANDS.SPI_ATTACH,
  COMMANDS.CHANGE_BAUDRATE,
  COMMANDS.FLASH_DEFL_BEGIN,
  COMMANDS.FLASH_DEFL_DATA,
  COMMANDS.FLASH_DEFL_END,
  COMMANDS.SPI_FLASH_MD5,
  // Chip erase is the stub's alone: esptool's loader.py marks erase_flash `@stub_function_only`;
  // esptool-js's ESPLoader.eraseFlash sends ESP_ERASE_FLASH (0xd0) with CHIP_ERASE_TIMEOUT.
  COMMANDS.ERASE_FLASH,
  COMMANDS.ERASE_REGION,
  COMMANDS.READ_FLASH,
  COMMANDS.RUN_USER_CODE,
]);

const ESP32_ROM_COMMANDS = new Set<number>([
  ...COMMON_LOADER,
  COMMANDS.SPI_SET_PARAMS,
  COMMANDS.SPI_ATTACH,
  COMMANDS.CHANGE_BAUDRATE,
  COMMANDS.FLASH_DEFL_BEGIN,
  COMMANDS.FLASH_DEFL_DATA,
  COMMANDS.FLASH_DEFL_END,
  COMMANDS.SPI_FLASH_MD5,
]);

const ESP8266: ChipDefinition = {
  name: 'esp8266',
  displayName: 'ESP8266',
  magic: 0xfff0c101,
  usbSerialJtag: false,
  romStatusBytes: 2,
  romSyncValue: 0x20120707,
  romBaud: 74880,
  // The ESP8266 ROM has no SPI_ATTACH/SPI_SET_PARAMS, no compressed writes, no MD5, no baud change.
  romCommands: new Set(COMMON_LOADER),
  stubCommands: STUB_COMMANDS,
  romNeedsSpiAttach: false,
  xtalMHz: 26,
  xtalClkDivider: 2,
  uartClkdivReg: 0x60000014,
  spiRegBase: 0x60000200,
  spiUsr2Offset: 0x24,
  spiW0Offset: 0x40,
  appOffset: 0x0,
  ramRanges: [
    [0x3ffe8000, 0x40000000],
    [0x40100000, 0x40110000],
  ],
  usb: {
    vendorId: '1a86',
    productId: '7523',
    manufacturer: '1a86',
    serialNumber: undefined,
    pnpId: 'usb-1a86_USB2.0-Serial-if00-port0',
  },
  defaultMac: '5c:cf:7f:a1:b2:c3',
  constantRegisters(mac) {
    const base = 0x3ff00050;
    // esptool-js readMac: OUI from efuse3 when non-zero, then efuse1 bits 15..0 and efuse0 bits 31..24.
    // ESP8285 detection looks at efuse0 bit 4 and efuse2 bit 16: both clear for an ESP8266EX.
    return new Map([
      [CHIP_DETECT_MAGIC_REG, 0xfff0c101],
      [base + 0x0, (mac[5]! << 24) >>> 0],
      [base + 0x4, (mac[3]! << 8) | mac[4]!],
      [base + 0x8, 0],
      [base + 0xc, (mac[0]! << 16) | (mac[1]! << 8) | mac[2]!],
    ]);
  },
  romBanner(kind, cause) {
    const rst = cause === 'power-on' ? 1 : 2;
    const mode = kind === 'download' ? '(1,7)' : '(3,6)';
    return `\r\n ets Jan  8 2013,rst cause:${rst}, boot mode:${mode}\r\n\r\n`;
  },
  noFirmwareMessage: 'csum err\r\nets_main.c \r\n',
};

const ESP32: ChipDefinition = {
  name: 'esp32',
  displayName: 'ESP32',
  magic: 0x00f01d83,
  usbSerialJtag: false,
  romStatusBytes: 4,
  romSyncValue: 0x20120707,
  romBaud: 115200,
  romCommands: ESP32_ROM_COMMANDS,
  stubCommands: STUB_COMMANDS,
  romNeedsSpiAttach: true,
  stubUartBaud: 115200,
  xtalMHz: 40,
  xtalClkDivider: 1,
  uartClkdivReg: 0x3ff40014,
  spiRegBase: 0x3ff42000,
  spiUsr2Offset: 0x24,
  spiW0Offset: 0x80,
  appOffset: 0x1000,
  ramRanges: [
    [0x3ff90000, 0x40000000],
    [0x40070000, 0x400c2000],
  ],
  usb: cp210x('CP2102', '0001'),
  defaultMac: '24:0a:c4:a1:b2:c3',
  constantRegisters(mac) {
    const efuse = 0x3ff5a000;
    // An ESP32-D0WD-V3 (revision 3), dual core, 240 MHz, BT, ADC vref calibrated, no coding scheme:
    // word3 = rev bit 0 (15) | CPU freq rated (13) | package 1 (bits 11..9); word5 bit 20 = rev bit 1;
    // APB_CTRL_DATE bit 31 = rev bit 2.
    return new Map([
      [CHIP_DETECT_MAGIC_REG, 0x00f01d83],
      [efuse + 0x00, 0],
      [efuse + 0x04, ((mac[2]! << 24) | (mac[3]! << 16) | (mac[4]! << 8) | mac[5]!) >>> 0],
      [efuse + 0x08, (mac[0]! << 8) | mac[1]!],
      [efuse + 0x0c, (1 << 15) | (1 << 13) | (1 << 9)],
      // word 4 bits 0..7: CK8M_FREQ (64); with RTCCALICFG1's calibration value (bits 7..31: 1600)
      // the crystal as the ROM measures it is 1600 * 15625 * 64 / 40 = 40 MHz exactly (esptool
      // targets/esp32.py `get_rom_cal_crystal_freq`): this chip does not drift, and a ROM
      // CHANGE_BAUDRATE gives the rate asked for.
      [efuse + 0x10, (0x0a << 8) | 64],
      [efuse + 0x14, 1 << 20],
      [efuse + 0x18, 0],
      [0x3ff5f06c, 1600 << 7],
      [0x3ff6607c, 0x96042000],
    ]);
  },
  romBanner(kind, cause) {
    const rst = cause === 'software' ? 'rst:0xc (SW_CPU_RESET)' : 'rst:0x1 (POWERON_RESET)';
    return kind === 'download'
      ? `ets Jun  8 2016 00:22:57\r\n\r\n${rst},boot:0x3 (DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))\r\nwaiting for download\r\n`
      : `ets Jun  8 2016 00:22:57\r\n\r\n${rst},boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n`;
  },
  noFirmwareMessage: 'flash read err, 1000\r\nets_main.c 371 \r\n',
};

/** A Silicon Labs USB-serial bridge (VID 10c4, PID ea60) as Linux lists it. */
function cp210x(model: 'CP2102' | 'CP2102N', serialNumber: string): UsbIdentity {
  return {
    vendorId: '10c4',
    productId: 'ea60',
    manufacturer: 'Silicon Labs',
    serialNumber,
    pnpId: `usb-Silicon_Labs_${model}_USB_to_UART_Bridge_Controller_${serialNumber}-if00-port0`,
  };
}

/**
 * The S3's, C3's and later chips' constant registers: the detect magic, the BLOCK1 MAC words
 * (esptool-js `readMac` of targets/esp32s3.js) and the package/revision words (word3, word5) of a
 * package 0 chip of minor revision `minor`, major 0.
 */
function block1Registers(magic: number, block1: number, mac: Uint8Array, minor: number): Map<number, number> {
  return new Map([
    [CHIP_DETECT_MAGIC_REG, magic],
    [block1, ((mac[2]! << 24) | (mac[3]! << 16) | (mac[4]! << 8) | mac[5]!) >>> 0],
    [block1 + 4, (mac[0]! << 8) | mac[1]!],
    [block1 + 4 * 3, minor << 18],
    [block1 + 4 * 5, 0],
  ]);
}

/**
 * The banner of the newer ROMs (S3, C3): their ROM line, the reset cause, then the boot mode.
 * One shape for both chips; only the ROM line and the boot-mode words differ.
 */
function newRomBanner(rom: string, downloadBoot: string, flashBoot: string): ChipDefinition['romBanner'] {
  return (kind, cause) => {
    const rst =
      cause === 'usb'
        ? 'rst:0x15 (USB_UART_CHIP_RESET)'
        : cause === 'software'
          ? 'rst:0x3 (RTC_SW_SYS_RST)'
          : 'rst:0x1 (POWERON)';
    const head = `${rom}\r\n${rst},`;
    return kind === 'download'
      ? `${head}${downloadBoot}\r\nwaiting for download\r\n`
      : `${head}${flashBoot}\r\n`;
  };
}

/**
 * ESP32-S3 as esptool defines it (targets/esp32s3.py; esptool-js targets/esp32s3.js):
 * IMAGE_CHIP_ID 9, identified by GET_SECURITY_INFO (`USES_MAGIC_VALUE = False`; the magic register
 * reads 0x9, esptool-js `magic2Chip`), BOOTLOADER_FLASH_OFFSET 0x0, SPI_REG_BASE 0x60002000 with
 * USR2 at 0x20 and W0 at 0x58, UART_CLKDIV_REG 0x60000014, eFuses at 0x60007000. Its ROM answers
 * with 4 status bytes like the ESP32's (esptool v3.3 ESP32S3ROM inherits ESP32ROM's
 * `STATUS_BYTES_LENGTH = 4`).
 */
const ESP32S3: ChipDefinition = {
  name: 'esp32s3',
  displayName: 'ESP32-S3',
  magic: 0x9,
  securityInfo: { chipId: 9, apiVersion: 0 },
  usbSerialJtag: true,
  romStatusBytes: 4,
  romSyncValue: 0x20120707,
  romBaud: 115200,
  romCommands: new Set([...ESP32_ROM_COMMANDS, COMMANDS.GET_SECURITY_INFO]),
  stubCommands: STUB_COMMANDS,
  romNeedsSpiAttach: true,
  xtalMHz: 40,
  xtalClkDivider: 1,
  uartClkdivReg: 0x60000014,
  spiRegBase: 0x60002000,
  spiUsr2Offset: 0x20,
  spiW0Offset: 0x58,
  // esptool: BOOTLOADER_FLASH_OFFSET = 0x0 (MicroPython's firmware.bin starts with the bootloader).
  appOffset: 0x0,
  // MEMORY_MAP: DRAM 0x3FC88000-0x3FD00000, IRAM 0x40370000-0x403E0000.
  ramRanges: [
    [0x3fc88000, 0x3fd00000],
    [0x40370000, 0x403e0000],
  ],
  // ESP32-S3-DevKitC-1's UART port: a CP2102N.
  usb: cp210x('CP2102N', '0002'),
  defaultMac: 'f4:12:fa:a1:b2:c3',
  // esptool-js esp32s3.js: package = word3 bits 23..21 (0: QFN56), minor revision = word5 bit 23
  // and word3 bits 20..18, major = word5 bits 25..24; an ESP32-S3 (QFN56) revision v0.2.
  constantRegisters: (mac) => block1Registers(0x9, 0x60007044, mac, 2),
  romBanner: newRomBanner(
    'ESP-ROM:esp32s3-20210327\r\nBuild:Mar 27 2021',
    'boot:0x0 (DOWNLOAD(USB/UART0))',
    'boot:0x8 (SPI_FAST_FLASH_BOOT)',
  ),
  noFirmwareMessage: 'invalid header: 0xffffffff\r\n',
};

/**
 * ESP32-C3 as esptool defines it (targets/esp32c3.py; esptool-js targets/esp32c3.js):
 * IMAGE_CHIP_ID 5, identified by GET_SECURITY_INFO (magic 0x1B31506F for revision v0.3),
 * BOOTLOADER_FLASH_OFFSET 0x0, SPI_REG_BASE 0x60002000 (USR2 0x20, W0 0x58), eFuses at 0x60008800;
 * ROM status bytes as the ESP32's (esptool v3.3 ESP32C3ROM inherits ESP32ROM).
 */
const ESP32C3: ChipDefinition = {
  ...ESP32S3,
  name: 'esp32c3',
  displayName: 'ESP32-C3',
  magic: 0x1b31506f,
  securityInfo: { chipId: 5, apiVersion: 0 },
  // MEMORY_MAP: DRAM 0x3FC80000-0x3FCE0000, IRAM 0x4037C000-0x403E0000.
  ramRanges: [
    [0x3fc80000, 0x3fce0000],
    [0x4037c000, 0x403e0000],
  ],
  // ESP32-C3-DevKitM-1's UART port: a CP2102N.
  usb: cp210x('CP2102N', '0003'),
  defaultMac: '34:85:18:a1:b2:c3',
  // esptool-js esp32c3.js: package word3 bits 23..21 (0: QFN32), minor word5 bit 23 + word3
  // bits 20..18, major word5 bits 25..24; an ESP32-C3 (QFN32) revision v0.3.
  constantRegisters: (mac) => block1Registers(0x1b31506f, 0x60008844, mac, 3),
  romBanner: newRomBanner(
    'ESP-ROM:esp32c3-api1-20210207\r\nBuild:Feb 7 2021',
    'boot:0x4 (DOWNLOAD(USB/UART0/1))',
    'boot:0xc (SPI_FAST_FLASH_BOOT)',
  ),
};

export const CHIPS: Readonly<Record<ChipName, ChipDefinition>> = {
  esp8266: ESP8266,
  esp32: ESP32,
  esp32s3: ESP32S3,
  esp32c3: ESP32C3,
};

/**
 * The USB-Serial/JTAG peripheral's USB identity (esp-iot-solution docs/en/usb/usb_overview/
 * usb_device_const_COM.rst, "In the ESP ROM Code, the configuration of USB descriptors": ESP32-S3,
 * C3, C6…: VID 0x303a, PID 0x1001, Serial = the MAC address). Linux names it ttyACM<n>.
 */
export function usbSerialJtagIdentity(mac: Uint8Array): UsbIdentity {
  const serial = [...mac].map((b) => b.toString(16).padStart(2, '0').toUpperCase()).join(':');
  return {
    vendorId: '303a',
    productId: '1001',
    manufacturer: 'Espressif',
    serialNumber: serial,
    pnpId: `usb-Espressif_USB_JTAG_serial_debug_unit_${serial}-if00`,
  };
}

export function chipDefinition(name: string): ChipDefinition {
  const chip = CHIPS[name.toLowerCase() as ChipName];
  if (!chip) throw new Error(`Unknown emulated chip "${name}" (known: ${Object.keys(CHIPS).join(', ')})`);
  return chip;
}

export function parseMac(mac: string): Uint8Array {
  const parts = mac.split(/[:-]/);
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p))) {
    throw new Error(`Invalid MAC address "${mac}" (expected aa:bb:cc:dd:ee:ff)`);
  }
  return Uint8Array.from(parts.map((p) => Number.parseInt(p, 16)));
}
