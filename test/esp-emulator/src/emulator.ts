import { EmulatorBinding } from './binding.ts';
import type { EspDeviceOptions } from './device.ts';
import { EmulatedEsp } from './device.ts';

/** A set of emulated boards and the serialport binding that reaches them. */
export class EspEmulator {
  readonly binding: EmulatorBinding;
  readonly devices: readonly EmulatedEsp[];

  constructor(devices: EspDeviceOptions[]) {
    this.devices = devices.map(
      (options, index) => new EmulatedEsp({ ...options, path: options.path ?? `/dev/ttyEMU${index}` }),
    );
    this.binding = new EmulatorBinding(this.devices);
  }

  /** A device by path or by index. */
  device(which: string | number = 0): EmulatedEsp {
    const device =
      typeof which === 'number' ? this.devices[which] : this.devices.find((d) => d.path === which);
    if (!device) throw new Error(`No emulated device ${which}`);
    return device;
  }
}

/** `createEspEmulator({ chip: 'esp32' })` or `createEspEmulator([{ chip: 'esp8266' }, { chip: 'esp32' }])`. */
export function createEspEmulator(devices: EspDeviceOptions | EspDeviceOptions[]): EspEmulator {
  return new EspEmulator(Array.isArray(devices) ? devices : [devices]);
}
