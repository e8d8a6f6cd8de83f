/**
 * `mp dev`: the inner loop. Watches the project, and on every change: syntax-checks the changed
 * Python, rebuilds incrementally in the warm container, delta-flashes the board and reattaches the
 * serial monitor. What happens when is decided by the state machine of machine.ts; this file runs
 * its commands through the side effects of effects.ts and turns their outcomes into `dev:*` events.
 * Whatever way it ends (Ctrl-C, an error), the container is removed, the watcher closed, the port
 * released and the cache registration dropped.
 */
import { asMpError, MpError } from '../errors.ts';
import type { StepEvent, StepObserver } from '../events.ts';
import type { Project } from '../project.ts';
import type { BindingInterface } from '../serial/index.ts';
import { BoardLink, watchForBoard } from './board-link.ts';
import {
  type BuildResult,
  type DevEffects,
  type FirmwareImage,
  type FlashResult,
  type PutFile,
  type PutOutcome,
  realDevEffects,
  type ToolchainContainer,
} from './effects.ts';
import { type DevCommand, type DevInput, type DevState, initialDevState, transition } from './machine.ts';
import { Rebuilder } from './rebuild.ts';
import type { SyntaxProblem } from './syntax-check.ts';
import { type ProjectWatcher, projectWatchTargets } from './watch.ts';

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
  /** The build gave the very firmware flashed last in this session (a save of a board file only). */
  | { type: 'dev:flash-skipped'; firmware: string }
  | { type: 'dev:flash-failed'; error: MpError; willRetry: boolean }
  /** The config's `files` are being copied after a flash (only when they changed since the last copy). */
  | { type: 'dev:put-start'; files: PutFile[] }
  | { type: 'dev:put'; outcomes: PutOutcome[]; ms: number }
  /** The firmware is on the board; the files are copied again after the next flash. */
  | { type: 'dev:put-failed'; error: MpError }
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
  /** Copy the config's `files` to the board after a flash when they changed (default true). */
  files?: boolean;
  /**
   * Connect to the board while the firmware builds (default true): once the saved Python compiles,
   * the board is reset into its loader, the stub loaded and the rate raised during make, so only
   * the write, the check and the restart come after it. A build that fails then restarts the board
   * into what it ran.
   */
  connectEarly?: boolean;
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
  /**
   * Replaces some of the real side effects (tests: a fake toolchain, board and watcher).
   * @example { toolchain: fakeToolchain, watch: fakeWatcher.watch, listPorts: async () => [] }
   */
  effects?: Partial<DevEffects>;
}

/**
 * Runs `mp dev` until `signal` aborts.
 * @example
 * await runDevSession({ openProject: () => openProject({ projectDir }), signal, onEvent: console.log });
 */
export async function runDevSession(options: DevSessionOptions): Promise<void> {
  const project = await options.openProject();
  const effects: DevEffects = { ...realDevEffects(options), ...options.effects };
  await new DevSession(options, effects, project).run();
}

/** Same layout, same bytes: the board holds `b` if it holds `a`. */
function sameImage(a: FirmwareImage, b: FirmwareImage): boolean {
  return (
    a.segments.length === b.segments.length &&
    a.segments.every((segment, i) => {
      const other = b.segments[i]!;
      return segment.offset === other.offset && Buffer.compare(segment.data, other.data) === 0;
    })
  );
}

/** A flash that connected while its firmware was being built. */
interface EarlyFlash {
  resolve(firmware: FirmwareImage): void;
  reject(reason: unknown): void;
  /** The firmware it writes, once the build gave it. */
  firmware?: FirmwareImage;
  port?: string;
  outcome: Promise<{ ok: true; result: FlashResult } | { ok: false; error: unknown }>;
}

class DevSession {
  readonly #options: DevSessionOptions;
  readonly #effects: DevEffects;
  readonly #rebuilder: Rebuilder;
  readonly #board: BoardLink;
  /** Resolved by the teardown. */
  #ended = () => {};
  #state: DevState<FirmwareImage> = initialDevState();
  #project: Project;
  #watcher: ProjectWatcher | undefined;
  #cancelDebounce = () => {};
  #stopWatchingForBoard = () => {};
  #releaseCacheUse = async () => {};
  /** The config's files (board path and sha256) as last copied to the board in this session. */
  #filesOnBoard: string | undefined;
  /** The firmware flashed last, while the board has not failed since: what an early connection connects as. */
  #lastFlashed: FirmwareImage | undefined;
  /** The flash that connected while its firmware builds (see #connectEarly). */
  #early: EarlyFlash | undefined;
  /** The board's work in turn: a flash waits for the one before (its restart) to finish. */
  #boardWork: Promise<unknown> = Promise.resolve();

  constructor(options: DevSessionOptions, effects: DevEffects, project: Project) {
    this.#options = options;
    this.#effects = effects;
    this.#project = project;
    this.#rebuilder = new Rebuilder(effects);
    const monitor = options.monitor !== false;
    this.#board = new BoardLink(
      effects,
      monitor ? (data) => this.#emit({ type: 'dev:monitor', data }) : undefined,
    );
  }

  async run(): Promise<void> {
    const { signal } = this.#options;
    try {
      // The warm container keeps the cache's trees mounted between builds: the whole session is a
      // user of the cache, so `mp clean --all` refuses until it ends.
      this.#releaseCacheUse = await this.#effects.registerCacheUse(this.#project.config.projectDir, signal);
      await this.#rewatch();
    } catch (error) {
      await this.#teardown();
      throw error;
    }
    const ended = new Promise<void>((resolve) => {
      this.#ended = resolve;
    });
    if (signal.aborted) this.#dispatch({ type: 'stop' });
    else {
      signal.addEventListener('abort', () => this.#dispatch({ type: 'stop' }), { once: true });
      this.#dispatch({ type: 'start' });
    }
    await ended;
  }

  #dispatch(input: DevInput<FirmwareImage>): void {
    const [state, commands] = transition(this.#state, input);
    this.#state = state;
    for (const command of commands) this.#execute(command);
  }

  #execute(command: DevCommand<FirmwareImage>): void {
    const { clock } = this.#effects;
    switch (command.type) {
      case 'arm-debounce':
        this.#cancelDebounce();
        // Editors write a save-all within a few ms of each other; longer would only add latency.
        this.#cancelDebounce = clock.after(this.#options.debounceMs ?? 10, () =>
          this.#dispatch({ type: 'quiet' }),
        );
        break;
      case 'cancel-debounce':
        this.#cancelDebounce();
        break;
      case 'build':
        void this.#build(command.files, command.reload).then((outcome) => this.#dispatch(outcome));
        break;
      case 'flash':
        void this.#flash(command.firmware).then((outcome) => this.#dispatch(outcome));
        break;
      case 'watch-for-board':
        this.#stopWatchingForBoard();
        this.#stopWatchingForBoard = watchForBoard(
          this.#effects.listPorts,
          clock,
          this.#options.replugPollMs ?? 1000,
          () => this.#dispatch({ type: 'board-back' }),
        );
        break;
      case 'stop-watching-for-board':
        this.#stopWatchingForBoard();
        break;
      case 'idle':
        this.#emit({ type: 'dev:idle' });
        break;
      case 'teardown':
        void this.#teardown().then(() => this.#ended());
        break;
    }
  }

  /** Never throws: every failure is an event, and the outcome for the state machine. */
  async #build(files: string[], reload: boolean): Promise<DevInput<FirmwareImage>> {
    const outcome = await this.#buildOnce(files, reload);
    if (outcome.type === 'built' && outcome.firmware) this.#early?.resolve(outcome.firmware);
    else this.#cancelEarly();
    return outcome;
  }

  async #buildOnce(files: string[], reload: boolean): Promise<DevInput<FirmwareImage>> {
    const { signal } = this.#options;
    try {
      if (files.length) this.#emit({ type: 'dev:change', files });
      if (reload) await this.#reload();
      this.#emit({ type: 'dev:build-start' });
      const started = this.#effects.clock.now();
      const outcome = await this.#rebuilder.run(this.#project, files, {
        signal,
        observer: this.#observer('build'),
        onChecked: () => this.#connectEarly(files),
      });
      if (signal.aborted) return { type: 'build-failed' };
      if (outcome.kind === 'syntax-error') {
        // The board keeps what it runs; the next good save builds.
        this.#emit({ type: 'dev:syntax-error', problem: outcome.problem });
        return { type: 'build-failed' };
      }
      if (outcome.kind === 'failed') {
        this.#emit({ type: 'dev:build-failed', error: asMpError(outcome.error, 'BUILD_FAILED') });
        return { type: 'build-failed' };
      }
      this.#emit({ type: 'dev:built', result: outcome.result, ms: this.#effects.clock.now() - started });
      if (this.#options.flash === false || !outcome.flashable) return { type: 'built' };
      return { type: 'built', firmware: await this.#effects.readFirmware(outcome.result.sidecarFile) };
    } catch (error) {
      if (!signal.aborted) this.#emit({ type: 'dev:build-failed', error: asMpError(error, 'DEV_FAILED') });
      return { type: 'build-failed' };
    }
  }

  /**
   * The saved Python compiles: while make runs, reset the board into its loader and get it ready
   * (the flash job waits for the firmware). Only for a board flashed in this session and a project
   * not re-opened since, so the port, chip and rate are the ones the last flash used.
   */
  #connectEarly(saved: string[]): void {
    const connectAs = this.#lastFlashed;
    // Only board files saved (a main.py that is copied, not frozen): the firmware will not change.
    const boardFiles = new Set(this.#project.config.files.map((f) => f.from));
    if (saved.length > 0 && saved.every((file) => boardFiles.has(file))) return;
    if (!connectAs || this.#early || this.#options.flash === false || this.#options.connectEarly === false)
      return;
    if (this.#state.phase !== 'building' || this.#options.signal.aborted) return;
    let resolve!: (firmware: FirmwareImage) => void;
    let reject!: (reason: unknown) => void;
    const pending = new Promise<FirmwareImage>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    pending.catch(() => {}); // the flash job reads the rejection
    const early: EarlyFlash = {
      resolve: (firmware) => {
        early.firmware = firmware;
        resolve(firmware);
      },
      reject,
      // The board's turn starts after this object exists: the callbacks see it.
      outcome: this.#boardTurn(() =>
        this.#board.flash(connectAs, this.#project, {
          signal: this.#options.signal,
          observer: this.#observer('flash'),
          onPort: (port) => {
            early.port = port;
          },
          pending,
        }),
      ).then(
        (result) => ({ ok: true as const, result }),
        (error: unknown) => ({ ok: false as const, error }),
      ),
    };
    this.#early = early;
  }

  /** The build gave nothing to flash: an early connection restarts the board into what it ran. */
  #cancelEarly(): void {
    const early = this.#early;
    this.#early = undefined;
    early?.reject(new MpError({ code: 'CANCELLED', message: 'the build gave no firmware to flash' }));
  }

  #boardTurn<T>(work: () => Promise<T>): Promise<T> {
    const turn = this.#boardWork.then(work, work);
    this.#boardWork = turn.catch(() => undefined);
    return turn;
  }

  async #reload(): Promise<void> {
    this.#project = await this.#options.openProject();
    // Another board or port may be configured now: the next flash connects from scratch.
    this.#lastFlashed = undefined;
    this.#board.forgetPort();
    this.#emit({ type: 'dev:reload', configFile: this.#project.config.configFile });
    await this.#rewatch();
  }

  /** Never throws, like #build. */
  async #flash(firmware: FirmwareImage): Promise<DevInput<FirmwareImage>> {
    const { signal } = this.#options;
    const { clock } = this.#effects;
    let started = clock.now();
    const early = this.#early;
    this.#early = undefined;
    if (!early && this.#lastFlashed && sameImage(this.#lastFlashed, firmware)) {
      // Flashing it again would only restart the board; the files may still have changed.
      this.#emit({ type: 'dev:flash-skipped', firmware: firmware.file });
      await this.#copyFiles();
      return { type: 'flashed' };
    }
    try {
      let result: FlashResult;
      if (early && early.firmware === firmware) {
        // Connected during the build: what is left is the write, the check and the restart.
        this.#emit({ type: 'dev:flash-start', port: early.port ?? this.#board.port ?? '' });
        const outcome = await early.outcome;
        if (!outcome.ok) throw outcome.error;
        result = outcome.result;
      } else {
        early?.reject(new MpError({ code: 'CANCELLED', message: 'another firmware is flashed' }));
        result = await this.#boardTurn(() =>
          this.#board.flash(firmware, this.#project, {
            signal,
            observer: this.#observer('flash'),
            onPort: (port) => {
              this.#emit({ type: 'dev:flash-start', port });
              started = clock.now();
            },
          }),
        );
      }
      this.#lastFlashed = firmware;
      this.#emit({ type: 'dev:flashed', result, ms: clock.now() - started });
      await this.#copyFiles();
      return { type: 'flashed' };
    } catch (error) {
      this.#lastFlashed = undefined;
      if (!signal.aborted)
        this.#emit({ type: 'dev:flash-failed', error: asMpError(error, 'FLASH_FAILED'), willRetry: true });
      return { type: 'flash-failed' };
    }
  }

  /**
   * After a flash, the config's `files` onto the board when they differ from what this session
   * last copied there (the first flash always looks: the board's own hashes decide what goes). A
   * failure is reported and leaves them owed; the flash itself stands.
   */
  async #copyFiles(): Promise<void> {
    const files = this.#project.config.files;
    if (this.#options.files === false || files.length === 0) return;
    const state = (
      await Promise.all(
        files.map(async (f) => `${f.to}\t${await this.#effects.hashFile(f.from).catch(() => 'missing')}`),
      )
    ).join('\n');
    if (state === this.#filesOnBoard) return;
    const { clock } = this.#effects;
    const started = clock.now();
    this.#emit({ type: 'dev:put-start', files });
    try {
      const outcomes = await this.#board.put(files);
      this.#filesOnBoard = state;
      this.#emit({ type: 'dev:put', outcomes, ms: clock.now() - started });
    } catch (error) {
      this.#filesOnBoard = undefined;
      this.#emit({ type: 'dev:put-failed', error: asMpError(error, 'REPL_PROTOCOL') });
    }
  }

  async #rewatch(): Promise<void> {
    await this.#watcher?.close();
    const targets = await projectWatchTargets(this.#project);
    this.#watcher = await this.#effects.watch(targets, (event) =>
      this.#dispatch({ type: 'saved', path: event.path, config: event.kind === 'config' }),
    );
    await this.#watcher.ready;
    this.#emit({
      type: 'dev:watching',
      paths: [...targets.sourceDirs, ...targets.configFiles, ...targets.boardFiles],
    });
  }

  /** Runs once nothing is running any more (the state machine says when). */
  async #teardown(): Promise<void> {
    this.#cancelDebounce();
    this.#stopWatchingForBoard();
    this.#cancelEarly();
    await this.#watcher?.close().catch(() => undefined);
    await this.#boardWork;
    await this.#board.close().catch(() => undefined);
    await this.#effects.toolchain.stop().catch(() => undefined);
    await this.#releaseCacheUse().catch(() => undefined);
  }

  #observer(pipeline: 'build' | 'flash'): StepObserver {
    return (event) => this.#emit({ type: 'dev:step', pipeline, event });
  }

  #emit(event: DevEvent): void {
    this.#options.onEvent(event);
  }
}
