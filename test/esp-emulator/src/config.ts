import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChipName, UsbIdentity } from './chips.ts';
import { chipDefinition } from './chips.ts';
import type { EmulatedEsp, EmulatorStats } from './device.ts';
import { DEFAULT_FLASH_SIZE } from './device.ts';
import { EspEmulator } from './emulator.ts';
import type { FaultAction, FaultRule } from './faults.ts';

/** One device in an emulator config file (JSON). */
export interface EmulatorDeviceConfig {
  chip: ChipName;
  path?: string;
  flashSize?: number;
  /**
   * Flash content: read at start when the file exists, written back whenever the port closes and at
   * process exit. Relative to the config file. Default `flash-<index>.bin`.
   */
  flashFile?: string;
  /** Stats of the last process plus fault bookkeeping (JSON). Default `state-<index>.json`. */
  stateFile?: string;
  mac?: string;
  throttle?: boolean;
  adapterMaxBaud?: number;
  linkMaxBaud?: number;
  /** Faults fire at most `times` in total across processes, so a rerun after an injected unplug completes. */
  faults?: Omit<FaultRule, 'when'>[];
  enRiseMs?: number;
  appOffset?: number;
  /** `'usb-serial-jtag'`: reached through the chip's USB-Serial/JTAG peripheral (see `EspDeviceOptions.usb`). */
  usb?: Partial<UsbIdentity> | 'usb-serial-jtag';
  reenumerateMs?: number;
  /** Names taken on successive re-enumerations; the state file keeps the current one across processes. */
  renames?: string[];
  /** The application after boot: a real program behind a pty (see application.ts). */
  application?: { command: string; cwd: string };
}

export interface EmulatorConfig {
  devices: EmulatorDeviceConfig[];
}

/** Content of a device's state file. */
export interface EmulatorState {
  stats: EmulatorStats;
  /** How often each configured fault has fired, over all processes. */
  faultsFired: number[];
  /** Whether the process still held the port when it saved (false after a clean release). */
  portOpen: boolean;
  /** The name the port is listed under (or comes back under, mid re-enumeration). */
  path: string;
}

export interface PersistentEmulator {
  emulator: EspEmulator;
  /** Writes every device's flash and state file now. */
  save(): void;
}

/** Module a subprocess loads (through `MP_SERIAL_BINDING`) to get the emulator binding. */
export const FROM_ENV_MODULE = fileURLToPath(new URL('./from-env.ts', import.meta.url));

const FAULT_ACTIONS: readonly FaultAction[] = ['drop', 'corrupt', 'delay', 'unplug'];

/** Builds the emulator a config file describes and keeps its files up to date. */
export function loadEmulatorConfig(configPath: string): PersistentEmulator {
  const absolute = resolve(configPath);
  const base = dirname(absolute);
  let config: EmulatorConfig;
  try {
    config = JSON.parse(readFileSync(absolute, 'utf8')) as EmulatorConfig;
  } catch (error) {
    throw new Error(`Cannot read emulator config ${absolute}: ${(error as Error).message}`);
  }
  validateConfig(config, absolute);
  const files = config.devices.map((device, index) => deviceFiles(base, device, index));
  const emulator = new EspEmulator(
    config.devices.map((device, index) => {
      const { flashFile, stateFile } = files[index]!;
      const state = readState(stateFile);
      // A USB-Serial/JTAG port that came back under another name in an earlier process keeps it.
      const path = state?.path ?? device.path;
      const renames = device.renames ?? [];
      const renamed = path === undefined ? -1 : renames.indexOf(path);
      return {
        chip: device.chip,
        path,
        usb: device.usb,
        reenumerateMs: device.reenumerateMs,
        renames: renamed === -1 ? renames : renames.slice(renamed + 1),
        flashSize: device.flashSize,
        flash: existsSync(flashFile) ? new Uint8Array(readFileSync(flashFile)) : undefined,
        mac: device.mac,
        throttle: device.throttle,
        adapterMaxBaud: device.adapterMaxBaud,
        linkMaxBaud: device.linkMaxBaud,
        faults: device.faults?.map((rule) => ({ ...rule })),
        faultsFired: state?.faultsFired,
        enRiseMs: device.enRiseMs,
        appOffset: device.appOffset,
        application: device.application,
      };
    }),
  );
  const saveDevice = (device: EmulatedEsp, index: number) => {
    const { flashFile, stateFile } = files[index]!;
    writeAtomic(flashFile, device.flash);
    const state: EmulatorState = {
      stats: device.stats,
      faultsFired: [...device.faults.fired],
      portOpen: device.portOpen,
      path: device.settledPath,
    };
    writeAtomic(stateFile, `${JSON.stringify(state, null, 2)}\n`);
  };
  const save = () => emulator.devices.forEach(saveDevice);
  emulator.devices.forEach((device, index) => {
    device.on('close', () => saveDevice(device, index));
    // A long-running process (mp dev) keeps the port open after flashing: save when the new firmware boots.
    device.on('boot', () => saveDevice(device, index));
    device.on('unplug', () => saveDevice(device, index));
    device.on('off-bus', () => saveDevice(device, index));
    device.on('on-bus', () => saveDevice(device, index));
  });
  lockPortsAcrossProcesses(
    emulator,
    files.map((f) => `${f.stateFile}.lock`),
  );
  process.once('exit', save);
  return { emulator, save };
}

/**
 * A real serial port can be open in one process only; the emulator of each process is its own
 * object, so a lock file per device gives the same "port busy" a second `mp` process meets on
 * hardware (with the message the serialport binding gives on Linux).
 */
function lockPortsAcrossProcesses(emulator: EspEmulator, lockFiles: string[]): void {
  const held = new Set<string>();
  const release = (lock: string) => {
    if (held.delete(lock)) rmSync(lock, { force: true });
  };
  const binding = emulator.binding;
  const open = binding.open.bind(binding);
  binding.open = async (options) => {
    const index = emulator.devices.findIndex((d) => d.path === options?.path);
    const lock = lockFiles[index];
    if (lock && !held.has(lock)) {
      try {
        writeFileSync(lock, String(process.pid), { flag: 'wx' });
      } catch {
        const owner = Number(readFileSync(lock, 'utf8'));
        if (processAlive(owner))
          throw new Error(`Error Resource temporarily unavailable Cannot lock port ${options.path}`);
        writeFileSync(lock, String(process.pid)); // left by a process that died
      }
      held.add(lock);
    }
    try {
      return await open(options);
    } catch (error) {
      if (lock) release(lock);
      throw error;
    }
  };
  emulator.devices.forEach((device, index) => {
    const lock = lockFiles[index]!;
    device.on('close', () => release(lock));
    device.on('unplug', () => release(lock));
    device.on('off-bus', () => release(lock));
  });
  process.once('exit', () => {
    for (const lock of [...held]) release(lock);
  });
}

function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface EmulatorFiles {
  configPath: string;
  /** Environment for a subprocess (the mp CLI) that should talk to the emulator. */
  env: { MP_EMULATOR: string; MP_SERIAL_BINDING: string };
  flashFile(index?: number): string;
  stateFile(index?: number): string;
  /** The flash as the subprocess left it (erased if it never wrote the file). */
  readFlash(index?: number): Uint8Array;
  readState(index?: number): EmulatorState | undefined;
}

/**
 * Writes a config (and initial flash images) into `dir` for a subprocess to load through
 * `MP_SERIAL_BINDING=<FROM_ENV_MODULE>` and `MP_EMULATOR=<config>`.
 */
export function writeEmulatorConfig(
  dir: string,
  devices: (EmulatorDeviceConfig & { flash?: Uint8Array })[],
): EmulatorFiles {
  mkdirSync(dir, { recursive: true });
  const configPath = join(resolve(dir), 'emulator.json');
  const base = dirname(configPath);
  const config: EmulatorConfig = { devices: devices.map(({ flash: _flash, ...device }) => device) };
  validateConfig(config, configPath);
  const files = config.devices.map((device, index) => deviceFiles(base, device, index));
  devices.forEach((device, index) => {
    if (device.flash) writeAtomic(files[index]!.flashFile, device.flash);
  });
  writeAtomic(configPath, `${JSON.stringify(config, null, 2)}\n`);
  const at = (index: number) => {
    const entry = files[index];
    if (!entry) throw new Error(`No emulated device ${index} in ${configPath}`);
    return entry;
  };
  return {
    configPath,
    env: { MP_EMULATOR: configPath, MP_SERIAL_BINDING: FROM_ENV_MODULE },
    flashFile: (index = 0) => at(index).flashFile,
    stateFile: (index = 0) => at(index).stateFile,
    readFlash: (index = 0) => {
      const { flashFile } = at(index);
      if (existsSync(flashFile)) return new Uint8Array(readFileSync(flashFile));
      return new Uint8Array(config.devices[index]!.flashSize ?? DEFAULT_FLASH_SIZE).fill(0xff);
    },
    readState: (index = 0) => readState(at(index).stateFile),
  };
}

function deviceFiles(base: string, device: EmulatorDeviceConfig, index: number) {
  const locate = (file: string | undefined, fallback: string) =>
    file === undefined ? join(base, fallback) : isAbsolute(file) ? file : join(base, file);
  return {
    flashFile: locate(device.flashFile, `flash-${index}.bin`),
    stateFile: locate(device.stateFile, `state-${index}.json`),
  };
}

function readState(file: string): EmulatorState | undefined {
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, 'utf8')) as EmulatorState;
}

function writeAtomic(file: string, data: Uint8Array | string): void {
  mkdirSync(dirname(file), { recursive: true });
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, data);
  renameSync(temp, file);
}

function validateConfig(config: EmulatorConfig, where: string): void {
  const fail = (message: string): never => {
    throw new Error(`Invalid emulator config ${where}: ${message}`);
  };
  if (!config || !Array.isArray(config.devices) || config.devices.length === 0)
    fail('"devices" must be a non-empty array');
  config.devices.forEach((device, index) => {
    let chip: ReturnType<typeof chipDefinition> | undefined;
    try {
      chip = chipDefinition(String(device.chip));
    } catch (error) {
      fail(`devices[${index}].chip: ${(error as Error).message}`);
    }
    if (device.usb === 'usb-serial-jtag' && !chip?.usbSerialJtag) {
      fail(`devices[${index}].usb: the ${chip?.displayName} has no USB-Serial/JTAG peripheral`);
    }
    for (const [i, rule] of (device.faults ?? []).entries()) {
      if (!FAULT_ACTIONS.includes(rule.action)) {
        fail(`devices[${index}].faults[${i}].action must be one of ${FAULT_ACTIONS.join(', ')}`);
      }
    }
  });
}
