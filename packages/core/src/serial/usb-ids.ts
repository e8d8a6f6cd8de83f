/**
 * USB serial adapters found on ESP boards, by USB vendor and product id. A port whose ids are in
 * this table is almost certainly a board; anything else (Bluetooth modems, built-in UARTs,
 * 3D printers) is left out of detection unless named with --port.
 */

export interface UsbAdapter {
  vendorId: number;
  /** Absent: every product of the vendor (Espressif's own USB ids vary by chip and mode). */
  productId?: number;
  /** Short chip family name shown in `mp ports`, e.g. `CP210x`. */
  family: 'CH340' | 'CP210x' | 'FTDI' | 'Espressif USB';
  name: string;
}

export const KNOWN_USB_ADAPTERS: readonly UsbAdapter[] = [
  // WCH: the D1 mini and most cheap boards
  { vendorId: 0x1a86, productId: 0x7523, family: 'CH340', name: 'WCH CH340' },
  { vendorId: 0x1a86, productId: 0x7522, family: 'CH340', name: 'WCH CH340K' },
  { vendorId: 0x1a86, productId: 0x5523, family: 'CH340', name: 'WCH CH341' },
  { vendorId: 0x1a86, productId: 0x55d3, family: 'CH340', name: 'WCH CH343' },
  { vendorId: 0x1a86, productId: 0x55d4, family: 'CH340', name: 'WCH CH9102' },
  // Silicon Labs: ESP32 DevKitC, NodeMCU v2
  { vendorId: 0x10c4, productId: 0xea60, family: 'CP210x', name: 'Silicon Labs CP2102/CP2104' },
  { vendorId: 0x10c4, productId: 0xea70, family: 'CP210x', name: 'Silicon Labs CP2105' },
  { vendorId: 0x10c4, productId: 0xea71, family: 'CP210x', name: 'Silicon Labs CP2108' },
  // FTDI: ESP-Prog, WROVER-KIT
  { vendorId: 0x0403, productId: 0x6001, family: 'FTDI', name: 'FTDI FT232R' },
  { vendorId: 0x0403, productId: 0x6010, family: 'FTDI', name: 'FTDI FT2232' },
  { vendorId: 0x0403, productId: 0x6011, family: 'FTDI', name: 'FTDI FT4232' },
  { vendorId: 0x0403, productId: 0x6014, family: 'FTDI', name: 'FTDI FT232H' },
  { vendorId: 0x0403, productId: 0x6015, family: 'FTDI', name: 'FTDI FT-X' },
  // Espressif: the chips' own USB. The ROM's descriptors (esp-iot-solution docs/en/usb/usb_overview/
  // usb_device_const_COM.rst): USB-Serial/JTAG 303a:1001 on the S3, C3, C5, C6, C61, H2 and P4 (the
  // serial number is the chip's MAC), USB-OTG 303a:0002 on the S2; applications with TinyUSB (USB-OTG
  // CDC on S2/S3) use other product ids of the vendor. All of them re-enumerate when the chip restarts.
  { vendorId: 0x303a, productId: 0x1001, family: 'Espressif USB', name: 'Espressif USB-Serial/JTAG' },
  { vendorId: 0x303a, productId: 0x0002, family: 'Espressif USB', name: 'Espressif USB-OTG (ESP32-S2 ROM)' },
  { vendorId: 0x303a, family: 'Espressif USB', name: 'Espressif USB' },
];

/** The adapter a port's USB ids belong to, if it is one of the known ones. */
export function knownUsbAdapter(
  vendorId: number | undefined,
  productId: number | undefined,
): UsbAdapter | undefined {
  if (vendorId === undefined) return undefined;
  return (
    KNOWN_USB_ADAPTERS.find((a) => a.vendorId === vendorId && a.productId === productId) ??
    KNOWN_USB_ADAPTERS.find((a) => a.vendorId === vendorId && a.productId === undefined)
  );
}

/** `10c4:ea60` */
export function formatUsbId(vendorId: number | undefined, productId: number | undefined): string {
  if (vendorId === undefined) return '';
  const hex = (n: number | undefined) => (n === undefined ? '????' : n.toString(16).padStart(4, '0'));
  return `${hex(vendorId)}:${hex(productId)}`;
}
