import type {
  BindingInterface,
  BindingPortInterface,
  OpenOptions,
  PortInfo,
  PortStatus,
  SetOptions,
  UpdateOptions,
} from './binding-types.cts';
import type { EmulatedEsp, HostLink } from './device.ts';

const BITS_PER_BYTE = 10;

function canceledError(message: string): Error {
  return Object.assign(new Error(message), { canceled: true });
}

/** What bindings-cpp reports when the USB device vanishes under an open tty. */
function unpluggedError(path: string, operation: 'read' | 'write'): Error {
  return Object.assign(new Error(`EIO: i/o error, ${operation} (${path} was unplugged)`), {
    code: 'EIO',
    errno: -5,
  });
}

/** The adapter's limit (`adapterMaxBaud`), refused the way a driver refuses a custom divisor. */
function assertAdapterTakes(device: EmulatedEsp, baudRate: number): void {
  if (baudRate > device.adapterMaxBaud) {
    throw Object.assign(new Error(`EINVAL: Invalid argument, cannot set baud rate ${baudRate}`), {
      code: 'EINVAL',
    });
  }
}

function wireTimeMs(bytes: number, baud: number): number {
  return (bytes * BITS_PER_BYTE * 1000) / baud;
}

/** The host side of one open port on an emulated device. */
export class EmulatedPort implements BindingPortInterface, HostLink {
  readonly openOptions: Required<OpenOptions>;
  isOpen = true;
  readonly device: EmulatedEsp;
  #baudRate: number;
  #gone = false;
  #writing = false;
  #rx: Uint8Array[] = [];
  #wakeReader: (() => void) | null = null;
  #txFreeAt = 0;
  #rxFreeAt = 0;
  #pendingDeliveries = new Set<NodeJS.Timeout>();

  constructor(device: EmulatedEsp, options: Required<OpenOptions>) {
    this.device = device;
    this.openOptions = options;
    this.#baudRate = options.baudRate;
    device.attach(this);
    // The OS asserts DTR and RTS when a tty is opened.
    device.setLines(true, true);
  }

  get baudRate(): number {
    return this.#baudRate;
  }

  deliver(bytes: Uint8Array, wireBaud: number): void {
    if (!this.isOpen || this.#gone || bytes.length === 0) return;
    const copy = Uint8Array.from(bytes);
    if (!this.device.throttle) {
      this.#push(copy);
      return;
    }
    const now = performance.now();
    this.#rxFreeAt = Math.max(now, this.#rxFreeAt) + wireTimeMs(copy.length, wireBaud);
    const timer = setTimeout(
      () => {
        this.#pendingDeliveries.delete(timer);
        this.#push(copy);
      },
      Math.max(0, this.#rxFreeAt - now),
    );
    this.#pendingDeliveries.add(timer);
  }

  deviceGone(): void {
    this.#gone = true;
    this.#clearDeliveries();
    this.#wakeReader?.();
  }

  async read(buffer: Buffer, offset: number, length: number): Promise<{ buffer: Buffer; bytesRead: number }> {
    if (length <= 0 || offset + length > buffer.length) throw new RangeError('read() outside the buffer');
    for (;;) {
      if (!this.isOpen) throw canceledError('Port is closed');
      if (this.#rx.length > 0) break;
      if (this.#gone) throw unpluggedError(this.device.path, 'read');
      await new Promise<void>((resolve) => {
        this.#wakeReader = resolve;
      });
      this.#wakeReader = null;
    }
    let bytesRead = 0;
    while (bytesRead < length && this.#rx.length > 0) {
      const chunk = this.#rx[0]!;
      const take = Math.min(chunk.length, length - bytesRead);
      buffer.set(chunk.subarray(0, take), offset + bytesRead);
      bytesRead += take;
      if (take === chunk.length) this.#rx.shift();
      else this.#rx[0] = chunk.subarray(take);
    }
    return { buffer, bytesRead };
  }

  async write(buffer: Buffer): Promise<void> {
    if (!this.isOpen) throw canceledError('Port is closed');
    if (this.#gone) throw unpluggedError(this.device.path, 'write');
    // The binding contract: the caller never overlaps writes. Catch callers that do.
    if (this.#writing) throw new Error('write() called while another write is pending');
    this.#writing = true;
    try {
      const bytes = Uint8Array.from(buffer);
      const baud = this.#baudRate;
      if (this.device.throttle) {
        const now = performance.now();
        this.#txFreeAt = Math.max(now, this.#txFreeAt) + wireTimeMs(bytes.length, baud);
        await new Promise((resolve) => setTimeout(resolve, this.#txFreeAt - now));
        if (!this.isOpen) throw canceledError('Port is closed');
        if (this.#gone) throw unpluggedError(this.device.path, 'write');
      }
      this.device.receive(bytes, baud);
    } finally {
      this.#writing = false;
    }
  }

  async update(options: UpdateOptions): Promise<void> {
    this.#assertUsable();
    if (!Number.isInteger(options.baudRate) || options.baudRate <= 0) {
      throw new TypeError(`"baudRate" must be a positive integer, got ${options.baudRate}`);
    }
    assertAdapterTakes(this.device, options.baudRate);
    this.#baudRate = options.baudRate;
  }

  async set(options: SetOptions): Promise<void> {
    this.#assertUsable();
    // Flags left out take the serialport defaults (asserted), as a real set() call would.
    this.device.setLines(options.dtr ?? true, options.rts ?? true);
  }

  async get(): Promise<PortStatus> {
    this.#assertUsable();
    return { cts: false, dsr: false, dcd: false };
  }

  async getBaudRate(): Promise<{ baudRate: number }> {
    this.#assertUsable();
    return { baudRate: this.#baudRate };
  }

  async flush(): Promise<void> {
    this.#assertUsable();
    this.#rx = [];
    this.#clearDeliveries();
  }

  async drain(): Promise<void> {
    this.#assertUsable();
    const wait = this.#txFreeAt - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }

  async close(): Promise<void> {
    if (!this.isOpen) throw new Error('Port is not open');
    this.isOpen = false;
    this.#clearDeliveries();
    this.#rx = [];
    this.#wakeReader?.();
    if (!this.#gone) this.device.detach(this);
  }

  #push(bytes: Uint8Array): void {
    if (!this.isOpen || this.#gone) return;
    this.#rx.push(bytes);
    this.#wakeReader?.();
  }

  #clearDeliveries(): void {
    for (const timer of this.#pendingDeliveries) clearTimeout(timer);
    this.#pendingDeliveries.clear();
  }

  #assertUsable(): void {
    if (!this.isOpen) throw new Error('Port is not open');
    if (this.#gone) throw unpluggedError(this.device.path, 'write');
  }
}

const OPEN_DEFAULTS = {
  dataBits: 8,
  lock: true,
  stopBits: 1,
  parity: 'none',
  rtscts: false,
  xon: false,
  xoff: false,
  xany: false,
  hupcl: true,
} as const;

/**
 * A serialport binding (`@serialport/bindings-interface`) whose ports are emulated ESP boards.
 * Give it to `SerialPortStream({ binding })` or to mp's Web Serial adapter.
 */
export class EmulatorBinding implements BindingInterface<EmulatedPort> {
  /** By index, not by path: a USB-Serial/JTAG device may come back under another name. */
  readonly #devices: EmulatedEsp[] = [];

  constructor(devices: Iterable<EmulatedEsp> = []) {
    for (const device of devices) this.add(device);
  }

  add(device: EmulatedEsp): void {
    if (this.#devices.some((d) => d.path === device.path))
      throw new Error(`Duplicate emulated port path ${device.path}`);
    this.#devices.push(device);
  }

  async list(): Promise<PortInfo[]> {
    return this.#devices
      .filter((device) => device.listed)
      .map((device) => ({
        path: device.path,
        manufacturer: device.usb.manufacturer,
        serialNumber: device.usb.serialNumber,
        pnpId: device.usb.pnpId,
        locationId: undefined,
        vendorId: device.usb.vendorId,
        productId: device.usb.productId,
      }));
  }

  async open(options: OpenOptions): Promise<EmulatedPort> {
    if (!options || typeof options.path !== 'string') throw new TypeError('"path" must be a string');
    if (!Number.isInteger(options.baudRate) || options.baudRate <= 0) {
      throw new TypeError(`"baudRate" must be a positive integer, got ${options.baudRate}`);
    }
    const device = this.#devices.find((d) => d.listed && d.path === options.path);
    if (!device) {
      throw Object.assign(new Error(`Error: No such file or directory, cannot open ${options.path}`), {
        code: 'ENOENT',
      });
    }
    assertAdapterTakes(device, options.baudRate);
    const full = { ...OPEN_DEFAULTS, ...options } as Required<OpenOptions>;
    return new EmulatedPort(device, full);
  }
}
