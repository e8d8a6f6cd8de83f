/**
 * Everything `mp dev` does to the world, behind one interface: the warm toolchain container, the
 * serial port, the file watcher, the cache registration, the filesystem and the clock. The session
 * takes them as a parameter; `realDevEffects` is what the CLI runs, tests pass fakes. This is also
 * the one file of dev/ that imports the build and flash pipelines, so when they move, only these
 * imports change.
 */
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { runSteps, type StepObserver } from '../events.ts';
import type { PathMapping } from '../firmware/make.ts';
import { type BuildResult, createBuild, hostMpyCrossPath, pathMappings } from '../firmware/pipeline.ts';
import { type FirmwareImage, firmwareFromSidecar } from '../flash/firmware.ts';
import { type FlashResult, flashFirmware } from '../flash/flash.ts';
import type { Project } from '../project.ts';
import { type PutFile, type PutOutcome, putAfterFlash } from '../repl/index.ts';
import type { BindingInterface } from '../serial/index.ts';
import { SerialMonitor } from '../serial/monitor.ts';
import { listBoardPorts, selectPort } from '../serial/ports.ts';
import { registerCacheUse } from '../sources/cache-housekeeping.ts';
import type { ToolchainContainer } from '../toolchain/index.ts';
import { sha256Hex } from '../util/hash.ts';
import { userCacheDir } from '../util/paths.ts';
import { checkPythonSyntax, checkPythonSyntaxOnHost, type SyntaxProblem } from './syntax-check.ts';
import { watchProject } from './watch.ts';

export type { BuildResult, FirmwareImage, FlashResult, PutFile, PutOutcome, ToolchainContainer };

/** `flashable`: the board has a chip to flash (the unix port has none; its build is the result). */
export type DevBuildOutcome =
  | { ok: true; result: BuildResult; flashable: boolean }
  | { ok: false; error: unknown };

/** The toolchain container kept running for the session, and what runs in it. */
export interface DevToolchain {
  /** One incremental build; the first one (or one for another MicroPython) starts the container. */
  build(project: Project, run: { signal: AbortSignal; observer: StepObserver }): Promise<DevBuildOutcome>;
  /** mpy-cross over the saved files; undefined when it found nothing (or cannot run yet). */
  syntaxCheck(files: string[], signal: AbortSignal): Promise<SyntaxProblem | undefined>;
  /** Removes the container. */
  stop(): Promise<void>;
}

/** The board on one port, with its serial monitor (when wanted) attached between flashes. */
export interface DevBoard {
  readonly port: string;
  /** `pending`: connect as `firmware` (the last one flashed) now, write what it resolves to (see FlashFirmwareOptions). */
  flash(
    firmware: FirmwareImage,
    run: { baudRate?: number; signal: AbortSignal; observer: StepObserver; pending?: Promise<FirmwareImage> },
  ): Promise<FlashResult>;
  /**
   * Copies `files` onto the board that was just flashed (over its raw REPL, those that differ),
   * then soft-resets it; `port`: where it is now (a native-USB board may have come back elsewhere).
   * The monitor, when attached, carries the REPL and shows nothing of it.
   */
  put(files: PutFile[], run: { port: string }): Promise<PutOutcome[]>;
  /** Detaches the monitor: the port is free. */
  close(): Promise<void>;
}

export interface DevClock {
  now(): number;
  /** Calls `fn` once after `ms`; returns what cancels it. */
  after(ms: number, fn: () => void): () => void;
}

export interface DevEffects {
  toolchain: DevToolchain;
  /** The firmware an export's sidecar describes, checked against its sha256. */
  readFirmware(sidecarFile: string): Promise<FirmwareImage>;
  /** The port to flash: the explicit one, the remembered board, or the only one connected. */
  selectPort(choice: { explicit?: string; stateDir: string }): Promise<string>;
  /** Every serial port there now (never throws: none is an answer). */
  listPorts(): Promise<string[]>;
  /** `onData` absent: no monitor, the port stays closed between flashes. */
  openBoard(port: string, onData?: (data: Uint8Array) => void): DevBoard;
  watch: typeof watchProject;
  /** Registers the session as a user of the download cache; returns what releases it. */
  registerCacheUse(project: string, signal: AbortSignal): Promise<() => Promise<void>>;
  fileExists(path: string): boolean;
  removeFile(path: string): Promise<void>;
  /** sha256 (hex) of a file's content. */
  hashFile(path: string): Promise<string>;
  clock: DevClock;
}

export interface RealDevEffectsOptions {
  binding?: BindingInterface;
  env?: NodeJS.ProcessEnv;
  cacheDir?: string;
  /** A running toolchain container to start with; removed with the toolchain. */
  container?: ToolchainContainer;
}

export function realDevEffects(options: RealDevEffectsOptions = {}): DevEffects {
  const { binding } = options;
  return {
    toolchain: warmToolchain(options),
    readFirmware: firmwareFromSidecar,
    selectPort: async ({ explicit, stateDir }) => (await selectPort({ explicit, stateDir, binding })).path,
    listPorts: async () =>
      (await listBoardPorts({ binding, all: true }).catch(() => [])).map((port) => port.path),
    openBoard: (port, onData) => serialBoard(port, binding, onData),
    watch: watchProject,
    registerCacheUse: (project, signal) =>
      registerCacheUse(options.cacheDir ?? userCacheDir(options.env), { project, signal }),
    fileExists: existsSync,
    removeFile: (path) => rm(path, { force: true }),
    hashFile: async (path) => sha256Hex(await readFile(path)),
    clock: {
      now: () => performance.now(),
      // The global looked up at each call, so fake timers in tests apply to the default too.
      after: (ms, fn) => {
        const timer = setTimeout(fn, ms);
        return () => clearTimeout(timer);
      },
    },
  };
}

function serialBoard(
  port: string,
  binding: BindingInterface | undefined,
  onData: ((data: Uint8Array) => void) | undefined,
): DevBoard {
  const monitor = onData ? new SerialMonitor({ path: port, binding }) : undefined;
  /** While files are copied the raw REPL's traffic is not the board's output. */
  let muted = false;
  if (onData)
    monitor?.onData((data) => {
      if (!muted) onData(data);
    });
  return {
    port,
    flash: (firmware, { baudRate, signal, observer, pending }) =>
      flashFirmware({ firmware, pending, port, binding, baudRate, monitor, signal, observer }),
    put: async (files, run) => {
      muted = true;
      try {
        return await putAfterFlash({
          port: run.port,
          binding,
          files,
          transport: monitor?.attached ? monitor : undefined,
        });
      } finally {
        muted = false;
      }
    },
    close: async () => {
      await monitor?.detach().catch(() => undefined);
    },
  };
}

function warmToolchain(options: RealDevEffectsOptions): DevToolchain {
  let container = options.container;
  let mappings: PathMapping[] = [];
  /** The project's mpy-cross, built by the first build into its build folder (host path). */
  let hostMpyCross: string | undefined;
  return {
    async build(project, { signal, observer }) {
      const build = createBuild({
        project,
        container,
        keepContainer: true,
        // The remote firmware cache is for builds a teammate or CI may share, not every save.
        remoteCache: false,
        env: options.env,
        cacheDir: options.cacheDir,
      });
      try {
        await runSteps(build.steps, build.ctx, { signal, observer });
      } catch (error) {
        return { ok: false, error };
      } finally {
        // Another MicroPython needs other mounts: the build started a new container.
        if (build.ctx.container && build.ctx.container !== container) {
          await container?.stop().catch(() => undefined);
          container = build.ctx.container;
        }
        await build.dispose();
      }
      const ctx = build.ctx;
      mappings = pathMappings(ctx);
      if (ctx.buildDir) hostMpyCross = hostMpyCrossPath(ctx.buildDir);
      return { ok: true, result: ctx.result!, flashable: Boolean(ctx.board?.chip) };
    },
    async syntaxCheck(files, signal) {
      try {
        const onHost =
          hostMpyCross && process.platform === 'linux'
            ? await checkPythonSyntaxOnHost(hostMpyCross, files, signal)
            : undefined;
        if (onHost === 'ok') return undefined;
        if (onHost) return onHost;
        return container ? await checkPythonSyntax(container, files, mappings, signal) : undefined;
      } catch {
        return undefined; // the build reports what the check could not
      }
    },
    async stop() {
      await container?.stop().catch(() => undefined);
    },
  };
}
