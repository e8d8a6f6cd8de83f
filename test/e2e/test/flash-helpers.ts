/**
 * End-to-end flash set-up: a throwaway project, an emulated board the `mp` subprocess reaches
 * through MP_SERIAL_BINDING + MP_EMULATOR (flash and stats persisted in files between runs), a
 * private device-record cache, and exports written the way `mp build` writes them.
 */

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { type EmulatorDeviceConfig, type EmulatorFiles, writeEmulatorConfig } from '@mp/esp-emulator';
import { MP_BIN, type MpResult, runMp, type TempProject, tempProject } from '@mp/test-utils';
import type { TestFirmware } from '@mp/test-utils/esp-firmware';

export const BOARD_FOR = { ESP8266: 'esp8266-d1mini', ESP32: 'esp32-generic' } as const;

export interface FlashFixture {
  project: TempProject;
  emulator: EmulatorFiles;
  env: NodeJS.ProcessEnv;
  mp(args: string[], options?: { timeoutMs?: number }): Promise<MpResult>;
  /** Flash content of device `index` at `fw.offset`, as long as the image. */
  flashed(fw: TestFirmware, index?: number): Uint8Array;
}

export function flashFixture(
  board: keyof typeof BOARD_FOR,
  devices: Array<EmulatorDeviceConfig & { flash?: Uint8Array }>,
): FlashFixture {
  const project = tempProject({ 'mp.config.json': JSON.stringify({ board: BOARD_FOR[board] }) });
  const emulator = writeEmulatorConfig(project.path('.emulator'), devices);
  const env = { ...emulator.env, MP_CACHE_DIR: project.path('.cache') };
  return {
    project,
    emulator,
    env,
    mp: (args, options = {}) => runMp(args, { cwd: project.dir, env, timeoutMs: options.timeoutMs }),
    flashed: (fw, index = 0) => emulator.readFlash(index).slice(fw.offset, fw.offset + fw.image.length),
  };
}

/** Writes `export/<name>.bin` and its sidecar as `mp build` does (mp.export/1). */
export function writeExport(
  project: TempProject,
  fw: TestFirmware,
  options: { name: string; builtAt: string; index?: boolean },
): string {
  const board = BOARD_FOR[fw.chip];
  const sha256 = createHash('sha256').update(fw.image).digest('hex');
  const firmware = `${options.name}.bin`;
  const sidecar = {
    schema: 'mp.export/1',
    firmware,
    board: {
      id: board,
      port: fw.chip.toLowerCase(),
      board: `${fw.chip}_GENERIC`,
      variant: null,
      chip: fw.chip,
      exportPrefix: fw.chip,
    },
    micropython: { ref: 'v1.28.0', tag: 'v1.28.0', version: '1.28.0', sha: '0'.repeat(40) },
    sha256,
    size: fw.image.length,
    flash: {
      mode: 'keep',
      freq: 'keep',
      size: fw.chip === 'ESP8266' ? 'detect' : 'keep',
      baud: 460800,
      segments: [{ offset: fw.offset, file: firmware, artifact: 'firmware', sha256, size: fw.image.length }],
    },
    builtAt: options.builtAt,
  };
  project.write(`export/${firmware}`, fw.image);
  project.write(`export/${firmware}.json`, `${JSON.stringify(sidecar, null, 2)}\n`);
  if (options.index) {
    writeFileSync(
      project.path(`export/latest-${board}.json`),
      `${JSON.stringify({ ...sidecar, sidecar: `${firmware}.json` }, null, 2)}\n`,
    );
  }
  return project.path(`export/${firmware}`);
}

/**
 * Runs `mp` with a live stdin: `interact` gets the output so far and a way to type, and the child
 * is killed if it does not finish within the timeout.
 */
export function runMpInteractive(
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs?: number },
  interact: (io: {
    until(needle: string): Promise<void>;
    type(text: string | Uint8Array): void;
  }) => Promise<void>,
): Promise<MpResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MP_BIN, ...args], {
      cwd: options.cwd,
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', CI: '1', ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let output = '';
    const waiters: Array<() => void> = [];
    const onOutput = () => {
      for (const waiter of waiters.splice(0)) waiter();
    };
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString('latin1');
      output += d.toString('latin1');
      onOutput();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString('latin1');
      output += d.toString('latin1');
      onOutput();
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`mp ${args.join(' ')} did not finish within ${options.timeoutMs ?? 30_000} ms\n${output}`),
      );
    }, options.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      onOutput();
      resolve({ code, signal, stdout, stderr, output });
    });
    const until = async (needle: string) => {
      while (!output.includes(needle)) {
        if (child.exitCode !== null) throw new Error(`mp exited before "${needle}" appeared:\n${output}`);
        await new Promise<void>((r) => waiters.push(r));
      }
    };
    interact({ until, type: (text) => child.stdin.write(text) }).catch((error: unknown) => {
      child.kill('SIGKILL');
      reject(error);
    });
  });
}
