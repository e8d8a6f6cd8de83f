/**
 * `mp dev`: the inner loop. Watches the project, and on every change: syntax-checks the changed
 * Python in the warm container, rebuilds incrementally in that same container, delta-flashes the
 * board and reattaches the serial monitor. It orchestrates the build and flash pipelines and adds
 * little of its own. Whatever way it ends (Ctrl-C, an error), the container is removed, the
 * watcher closed and the port released.
 */
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { extname } from 'node:path';
import { asMpError, type MpError } from '../errors.ts';
import { runSteps, type StepEvent } from '../events.ts';
import type { PathMapping } from '../firmware/make.ts';
import { type BuildResult, createBuild, hostMpyCrossPath, pathMappings } from '../firmware/pipeline.ts';
import type { FirmwareImage } from '../flash/firmware.ts';
import { firmwareFromSidecar } from '../flash/firmware.ts';
import { type FlashResult, flashFirmware } from '../flash/flash.ts';
import type { Project } from '../project.ts';
import type { BindingInterface } from '../serial/index.ts';
import { SerialMonitor } from '../serial/monitor.ts';
import { listBoardPorts, selectPort } from '../serial/ports.ts';
import { registerCacheUse } from '../sources/git-cache.ts';
import type { ToolchainContainer } from '../toolchain/container.ts';
import { userCacheDir } from '../util/paths.ts';
import { RebuildScheduler } from './scheduler.ts';
import { checkPythonSyntax, checkPythonSyntaxOnHost, type SyntaxProblem } from './syntax-check.ts';
import { type WatchEvent, watchProject } from './watch.ts';

export type DevEvent =
  | { type: 'dev:watching'; paths: string[] }
  | { type: 'dev:change'; files: string[] }
  | { type: 'dev:reload'; configFile?: string }
  | { type: 'dev:syntax-error'; problem: SyntaxProblem }
  | { type: 'dev:build-start' }
  | { type: 'dev:built'; result: BuildResult; ms: number }
  | { type: 'dev:build-failed'; error: MpError }
  | { type: 'dev:flash-start'; port: string }
  | { type: 'dev:flashed'; result: FlashResult; ms: number }
  | { type: 'dev:flash-failed'; error: MpError; willRetry: boolean }
  | { type: 'dev:monitor'; data: Uint8Array }
  | { type: 'dev:idle' }
  | { type: 'dev:step'; pipeline: 'build' | 'flash'; event: StepEvent };

export interface DevSessionOptions {
  /** Opens (and on a config change re-opens) the project: config, plugins, flags. */
  openProject: () => Promise<Project>;
  signal: AbortSignal;
  onEvent: (event: DevEvent) => void;
  /** Flash after each good build (default true). */
  flash?: boolean;
  /** Reattach the serial monitor after each flash (default true). */
  monitor?: boolean;
  /** Serial binding (tests: the emulator); default MP_SERIAL_BINDING or real ports. */
  binding?: BindingInterface;
  env?: NodeJS.ProcessEnv;
  cacheDir?: string;
  /** Quiet time that coalesces a burst of saves (default 10 ms). */
  debounceMs?: number;
  /** How often to look for an unplugged board while a flash is owed (default 1000 ms). */
  replugPollMs?: number;
  /** A running toolchain container to start with (benchmarks); it is removed when the session ends. */
  container?: ToolchainContainer;
}

/** Marker "paths" for work that is not a file change. */
const START = '\0start';
const RETRY_FLASH = '\0retry-flash';

export async function runDevSession(options: DevSessionOptions): Promise<void> {
  const emit = options.onEvent;
  const flashWanted = options.flash !== false;
  const monitorWanted = options.monitor !== false;
  let project = await options.openProject();
  let container: ToolchainContainer | undefined = options.container;
  let mappings: PathMapping[] = [];
  /** The project's mpy-cross, built by the first build into its build folder (host path). */
  let hostMpyCross: string | undefined;
  let monitor: SerialMonitor | undefined;
  let port: string | undefined;
  let owedFlash: FirmwareImage | undefined;
  let reloadConfig = false;
  let previousExport: BuildResult | undefined;
  let replugTimer: NodeJS.Timeout | undefined;
  // Aborted when mp dev ends: kills a running make or flash instead of waiting for it.
  const stop = new AbortController();
  options.signal.addEventListener('abort', () => stop.abort(options.signal.reason), { once: true });

  const stepObserver = (pipeline: 'build' | 'flash') => (event: StepEvent) =>
    emit({ type: 'dev:step', pipeline, event });

  async function flashOwed(): Promise<void> {
    const firmware = owedFlash;
    if (!firmware || stop.signal.aborted) return;
    try {
      port ??= (
        await selectPort({
          explicit: project.config.flash.port,
          stateDir: project.stateDir,
          binding: options.binding,
        })
      ).path;
      if (monitorWanted && (!monitor || monitor.path !== port)) {
        await monitor?.detach().catch(() => undefined);
        monitor = new SerialMonitor({ path: port, binding: options.binding });
        monitor.onData((data) => emit({ type: 'dev:monitor', data }));
      }
      emit({ type: 'dev:flash-start', port });
      const started = performance.now();
      const result = await flashFirmware({
        firmware,
        port,
        binding: options.binding,
        baudRate: project.config.flash.baud,
        monitor: monitorWanted ? monitor : undefined,
        signal: stop.signal,
        observer: stepObserver('flash'),
      });
      owedFlash = undefined;
      emit({ type: 'dev:flashed', result, ms: performance.now() - started });
    } catch (error) {
      if (stop.signal.aborted) return;
      const mpError = asMpError(error, 'FLASH_FAILED');
      emit({ type: 'dev:flash-failed', error: mpError, willRetry: true });
      // The port may come back under another name; pick again next time.
      if (!project.config.flash.port) port = undefined;
      watchForBoard();
    }
  }

  /** While a flash is owed, look for the board; when a port shows up, flash through the scheduler. */
  function watchForBoard(): void {
    clearInterval(replugTimer);
    const listPaths = async () =>
      new Set(
        (await listBoardPorts({ binding: options.binding, all: true }).catch(() => [])).map((p) => p.path),
      );
    // The ports there right after the failure are the baseline: the board coming back is a new one.
    const baseline = listPaths();
    replugTimer = setInterval(async () => {
      if (!owedFlash || stop.signal.aborted) return clearInterval(replugTimer);
      const before = await baseline;
      const now = await listPaths();
      if ([...now].some((p) => !before.has(p))) {
        clearInterval(replugTimer);
        scheduler.notify(RETRY_FLASH);
        return;
      }
      // A port that went away since is not a baseline any more: its return counts.
      for (const p of before) if (!now.has(p)) before.delete(p);
    }, options.replugPollMs ?? 1000);
    replugTimer.unref();
  }

  /** mpy-cross on the host when it runs there, else in the warm container; undefined: no problem found. */
  async function syntaxCheck(files: string[], signal: AbortSignal): Promise<SyntaxProblem | undefined> {
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
  }

  async function cycle(changed: ReadonlySet<string>): Promise<void> {
    if (stop.signal.aborted) return;
    const files = [...changed].filter((p) => !p.startsWith('\0'));
    if (files.length) emit({ type: 'dev:change', files });
    if (reloadConfig) {
      reloadConfig = false;
      project = await options.openProject();
      port = undefined; // flash.port or the board may have changed
      emit({ type: 'dev:reload', configFile: project.config.configFile });
      await rewatch();
    }
    if (files.length === 0 && !changed.has(START)) {
      if (changed.has(RETRY_FLASH)) await flashOwed();
      return;
    }
    const python = files.filter((f) => extname(f) === '.py' && existsSync(f));
    emit({ type: 'dev:build-start' });
    const started = performance.now();
    // The syntax check runs beside the build's first steps and make, not before them: a bad save
    // is reported in milliseconds and stops the build; a good one costs no extra latency.
    const attempt = new AbortController();
    const onStop = () => attempt.abort();
    stop.signal.addEventListener('abort', onStop, { once: true });
    let problem: SyntaxProblem | undefined;
    const check = python.length
      ? syntaxCheck(python, attempt.signal).then((found) => {
          problem = found;
          if (found) attempt.abort();
        })
      : Promise.resolve();
    const build = createBuild({
      project,
      container,
      keepContainer: true,
      env: options.env,
      cacheDir: options.cacheDir,
    });
    try {
      await runSteps(build.steps, build.ctx, { signal: attempt.signal, observer: stepObserver('build') });
    } catch (error) {
      await check;
      if (stop.signal.aborted) return;
      if (problem) {
        emit({ type: 'dev:syntax-error', problem });
        return; // the board keeps what it runs; the next good save builds
      }
      emit({
        type: 'dev:build-failed',
        error: asMpError(error, 'BUILD_FAILED'),
      });
      return;
    } finally {
      stop.signal.removeEventListener('abort', onStop);
      if (build.ctx.container && build.ctx.container !== container) {
        await container?.stop().catch(() => undefined);
        container = build.ctx.container;
      }
      await build.dispose();
    }
    await check;
    const ctx = build.ctx;
    mappings = pathMappings(ctx);
    if (ctx.buildDir) hostMpyCross = hostMpyCrossPath(ctx.buildDir);
    const result = ctx.result!;
    emit({ type: 'dev:built', result, ms: performance.now() - started });
    // One save, one export file: the previous export of this session is replaced, not piled up.
    if (previousExport && !previousExport.upToDate && previousExport.firmware !== result.firmware) {
      await rm(previousExport.firmware, { force: true });
      await rm(previousExport.sidecarFile, { force: true });
    }
    previousExport = result;
    // A board without a chip (the unix port) has nothing to flash: its build is the result.
    if (flashWanted && ctx.board?.chip) {
      owedFlash = await firmwareFromSidecar(result.sidecarFile);
      await flashOwed();
    }
  }

  const scheduler = new RebuildScheduler({
    debounceMs: options.debounceMs,
    build: async (changed) => {
      await cycle(changed);
      if (!stop.signal.aborted) emit({ type: 'dev:idle' });
    },
    onError: (error) =>
      emit({
        type: 'dev:build-failed',
        error: asMpError(error, 'DEV_FAILED'),
      }),
  });

  let watcher: Awaited<ReturnType<typeof watchProject>> | undefined;
  async function rewatch(): Promise<void> {
    await watcher?.close();
    const config = project.config;
    const sourceDirs = [
      config.modulesDir,
      ...config.libraries.flatMap((l) => (l.path ? [l.path] : [])),
      ...config.cModules,
    ];
    for (const listing of config.libraries) {
      // Library plugins whose own source is a local folder are watched too.
      const plugin = await project.plugins.load('library', listing.id).catch(() => undefined);
      if (plugin && 'path' in plugin.source && !listing.git && !listing.ref)
        sourceDirs.push(plugin.source.path);
    }
    const configFiles = config.configFile ? [config.configFile] : [];
    watcher = await watchProject(
      { sourceDirs: [...new Set(sourceDirs)], configFiles, ignoreDirs: [config.exportDir, project.stateDir] },
      (event: WatchEvent) => {
        if (event.kind === 'config') reloadConfig = true;
        scheduler.notify(event.path);
      },
    );
    await watcher.ready;
    emit({ type: 'dev:watching', paths: [...sourceDirs, ...configFiles] });
  }

  // The warm container keeps the cache's trees mounted between builds: the whole session is a
  // user of the cache, so `mp clean --all` refuses until it ends.
  const releaseCacheUse = await registerCacheUse(options.cacheDir ?? userCacheDir(options.env), {
    project: project.config.projectDir,
    signal: stop.signal,
  });
  try {
    await rewatch();
    scheduler.notify(START);
    await new Promise<void>((resolve) => {
      if (stop.signal.aborted) resolve();
      else stop.signal.addEventListener('abort', () => resolve(), { once: true });
    });
  } finally {
    clearInterval(replugTimer);
    await scheduler.stop();
    await watcher?.close();
    await monitor?.detach().catch(() => undefined);
    await container?.stop().catch(() => undefined);
    await releaseCacheUse().catch(() => undefined);
  }
}
