/**
 * The emulator as a serial binding module for a subprocess: mp loads the module named by
 * `MP_SERIAL_BINDING` and uses its `binding` export; this module builds that binding from the config
 * file named by `MP_EMULATOR` (see `writeEmulatorConfig`) and writes flash and stats back to files.
 */
import { loadEmulatorConfig } from './config.ts';

const configPath = process.env.MP_EMULATOR;
if (!configPath) {
  throw new Error('MP_EMULATOR is not set: it must name an emulator config file (see writeEmulatorConfig)');
}

const loaded = loadEmulatorConfig(configPath);

export const emulator = loaded.emulator;
export const binding = loaded.emulator.binding;
/** Writes flash and state files now (they are also written on every port close and at exit). */
export const save = loaded.save;
