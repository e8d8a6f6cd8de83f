/**
 * Flashing a board through the chip's own USB-Serial/JTAG peripheral (ESP32-S3, C3; USB 303a:1001):
 * the loader is entered with esptool's USB-JTAG sequence, and after the restart into the new
 * firmware the board leaves the bus and comes back, maybe under another name, where the flash
 * result and the serial monitor follow it.
 */
import { createEspEmulator, type EspDeviceOptions, type EspEmulator } from '@mp/esp-emulator';
import { makeTestFirmware } from '@mp/test-utils/esp-firmware';
import { describe, it, vi } from 'vitest';
import {
  classicBootloaderReset,
  DeviceStateStore,
  type FirmwareImage,
  flashFirmware,
  resetWiring,
  SerialMonitor,
  type StepEvent,
  usbJtagBootloaderReset,
} from '../src/index.ts';
import { tempDir } from './flash-helpers.ts';

/** An ESP32-S3 image at 0x0: the ESP32 test firmware with the extended header's chip id set to 9. */
function s3Firmware(revision = 1): FirmwareImage {
  const fw = makeTestFirmware('ESP32', { revisions: { app: revision } });
  const image = fw.image.slice();
  image[12] = 9;
  image[13] = 0;
  const file = '/fixtures/ESP32S3.bin';
  return {
    file,
    boardId: 'esp32s3-usb',
    chip: 'ESP32-S3',
    segments: [{ offset: 0x0, data: image, file }],
    mode: 'keep',
    freq: 'keep',
    size: 'keep',
    baud: 460800,
  };
}

function s3OnUsb(options: Partial<EspDeviceOptions> = {}): EspEmulator {
  const emulator = createEspEmulator({
    chip: 'esp32s3',
    path: '/dev/ttyACM0',
    usb: 'usb-serial-jtag',
    reenumerateMs: 60,
    ...options,
  });
  emulator.device().on('internal-error', (error) => {
    throw error;
  });
  return emulator;
}

function flash(
  emulator: EspEmulator,
  image: FirmwareImage,
  extra: { monitor?: SerialMonitor; port?: string } = {},
) {
  const events: StepEvent[] = [];
  const devices = new DeviceStateStore(tempDir('mp-devices-'));
  return {
    events,
    devices,
    run: () =>
      flashFirmware({
        firmware: image,
        port: extra.port ?? emulator.device().path,
        binding: emulator.binding,
        devices,
        monitor: extra.monitor,
        observer: (event) => events.push(event),
      }),
  };
}

function collect(monitor: SerialMonitor) {
  let text = '';
  monitor.onData((bytes) => {
    text += Buffer.from(bytes).toString('latin1');
  });
  return {
    async until(needle: string, timeoutMs = 3000) {
      const deadline = Date.now() + timeoutMs;
      while (!text.includes(needle)) {
        if (Date.now() > deadline) throw new Error(`"${needle}" not seen; got ${JSON.stringify(text)}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    },
  };
}

describe('flashing an ESP32-S3 over its USB-Serial/JTAG', () => {
  it.concurrent('enters the loader with the USB-JTAG sequence, writes, verifies, and the board is back on the same port', async ({
    expect,
  }) => {
    const emulator = s3OnUsb();
    const device = emulator.device();
    const image = s3Firmware();
    const result = await flash(emulator, image).run();
    expect(result.device).toMatchObject({
      chip: 'ESP32-S3',
      description: 'ESP32-S3 (QFN56) (revision v0.2)',
    });
    expect(result.device.mac).toBe('f4:12:fa:a1:b2:c3');
    expect(result.mode).toBe('full');
    expect(result.portAfterRestart).toBeUndefined();
    expect(device.flash.subarray(0, image.segments[0]!.data.length)).toEqual(image.segments[0]!.data);
    expect(device.stats.boots).toEqual(['no-firmware', 'download', 'app']);
    expect(device.stats.reenumerations).toBe(1);
    expect(device.listed).toBe(true);
    expect(device.mode).toBe('app');
    expect(device.stats.internalErrors).toEqual([]);
  });

  it.concurrent('reports the new name when the board comes back under one, and a delta flash finds it there', async ({
    expect,
  }) => {
    const emulator = s3OnUsb({ renames: ['/dev/ttyACM1'] });
    const first = flash(emulator, s3Firmware(1));
    const result = await first.run();
    expect(result.port).toBe('/dev/ttyACM0');
    expect(result.portAfterRestart).toBe('/dev/ttyACM1');
    const titles = first.events.flatMap((e) => (e.type === 'step:title' ? [e.title] : []));
    expect(titles).toContain('Restarted into the new firmware; the board is back on /dev/ttyACM1');

    const again = await flashFirmware({
      firmware: s3Firmware(2),
      port: '/dev/ttyACM1',
      binding: emulator.binding,
      devices: first.devices,
    });
    expect(again.mode).toBe('delta');
    expect(again.portAfterRestart).toBeUndefined();
  });

  it.concurrent('the monitor handed the port before the restart reattaches to the board under its new name', async ({
    expect,
  }) => {
    const emulator = s3OnUsb({ renames: ['/dev/ttyACM1'] });
    const monitor = new SerialMonitor({ path: '/dev/ttyACM0', binding: emulator.binding });
    const seen = collect(monitor);
    const reattached = new Promise<string>((resolve) => monitor.onReattach(resolve));
    const lost = vi.fn();
    monitor.onDeviceLost(lost);
    const result = await flash(emulator, s3Firmware(), { monitor }).run();
    expect(result.portAfterRestart).toBe('/dev/ttyACM1');
    expect(await reattached).toBe('/dev/ttyACM1');
    expect(monitor.path).toBe('/dev/ttyACM1');
    expect(monitor.attached).toBe(true);
    await monitor.write('print("over usb")\r');
    await seen.until('over usb\r\n>>> ');
    expect(lost).not.toHaveBeenCalled();
    await monitor.detach();
    expect(emulator.device().portOpen).toBe(false);
  });

  it.concurrent('a monitor reattaches after a restart it asked for, and reports the board lost when it does not come back', async ({
    expect,
  }) => {
    const image = s3Firmware().segments[0]!.data;
    const emulator = s3OnUsb({ flash: image });
    const monitor = new SerialMonitor({
      path: '/dev/ttyACM0',
      binding: emulator.binding,
      reattachWithinMs: 1500,
    });
    const seen = collect(monitor);
    await monitor.attach();
    const reattached = new Promise<string>((resolve) => monitor.onReattach(resolve));
    await monitor.resetDevice();
    expect(await reattached).toBe('/dev/ttyACM0');
    await monitor.write('print("again")\r');
    await seen.until('again\r\n>>> ');

    const lost = new Promise((resolve) => monitor.onDeviceLost(resolve));
    emulator.device().unplug();
    expect(await lost).toMatchObject({ code: 'DEVICE_LOST' });
    expect(monitor.attached).toBe(false);
  });

  it.concurrent('disables the RTC watchdog and feeds the super watchdog as esptool does, only over USB-Serial/JTAG', async ({
    expect,
  }) => {
    const viaUsb = s3OnUsb();
    const viaBridge = createEspEmulator({ chip: 'esp32s3' });
    await flash(viaUsb, s3Firmware()).run();
    await flash(viaBridge, s3Firmware()).run();
    const usb = viaUsb.device().stats.commands;
    const bridge = viaBridge.device().stats.commands;
    // esptool disable_watchdogs: 3 writes for the RTC WDT, a read and 3 writes for the SWD.
    expect((usb.WRITE_REG ?? 0) - (bridge.WRITE_REG ?? 0)).toBe(6);
    expect((usb.READ_REG ?? 0) - (bridge.READ_REG ?? 0)).toBe(1);
  });
});

describe('reset sequences', () => {
  function recorder() {
    const states: string[] = [];
    return {
      states,
      setSignals: async (s: { dataTerminalReady?: boolean; requestToSend?: boolean }) => {
        states.push(`DTR=${Number(s.dataTerminalReady)} RTS=${Number(s.requestToSend)}`);
      },
    };
  }

  it('USB-Serial/JTAG: sets the download flag, goes through (1,1) to the reset, then idles', async ({
    expect,
  }) => {
    const port = recorder();
    await usbJtagBootloaderReset(port);
    expect(port.states).toEqual(['DTR=0 RTS=0', 'DTR=1 RTS=0', 'DTR=1 RTS=1', 'DTR=0 RTS=1', 'DTR=0 RTS=0']);
  });

  it('auto-reset circuit: EN low, then EN up with GPIO0 low, then GPIO0 released', async ({ expect }) => {
    const port = recorder();
    await classicBootloaderReset(port, 50);
    expect(port.states).toEqual(['DTR=0 RTS=1', 'DTR=1 RTS=0', 'DTR=0 RTS=0']);
  });

  it('the wiring follows the USB ids as esptool decides it', ({ expect }) => {
    expect(resetWiring({ usbVendorId: 0x303a, usbProductId: 0x1001 })).toBe('usb-serial-jtag');
    expect(resetWiring({ usbVendorId: 0x303a, usbProductId: 0x4001 })).toBe('auto-reset-circuit');
    expect(resetWiring({ usbVendorId: 0x10c4, usbProductId: 0xea60 })).toBe('auto-reset-circuit');
    expect(resetWiring({})).toBe('auto-reset-circuit');
  });
});
