/**
 * The control state of `mp dev`, as a pure reducer: given the state and what just happened (a save,
 * a build that ended, a board that came back, Ctrl-C), the next state and the commands to run.
 * Nothing here touches Docker, the port or the clock; the session (session.ts) runs the commands
 * and feeds their outcomes back, so every rule of the loop can be tested without either.
 *
 * The rules: one build or flash at a time; saves during one are queued and give one more build
 * after the usual quiet time; a good build is flashed; a failed build leaves the last good firmware
 * owed, and a board that comes back gets it; Ctrl-C lets the running step abort, then tears down.
 */

/**
 * - `starting`: the watcher is being set up; nothing built yet.
 * - `idle`: the board runs the newest good firmware (or there is nothing to flash).
 * - `debouncing`: saves arrived; waiting for the burst to end.
 * - `building`, `flashing`: one step running; saves queue.
 * - `waiting-for-board`: a flash failed; the ports are polled for the board's return.
 * - `stopping`: Ctrl-C; the running step is aborting, then everything is released.
 */
export type DevPhase =
  | 'starting'
  | 'idle'
  | 'debouncing'
  | 'building'
  | 'flashing'
  | 'waiting-for-board'
  | 'stopping';

/** `F` is the firmware (a FirmwareImage in the session, anything in tests). */
export interface DevState<F> {
  readonly phase: DevPhase;
  /** Paths saved since the last build started. */
  readonly pending: ReadonlySet<string>;
  /** The config file is among the saves: the project is opened again before the next build. */
  readonly reload: boolean;
  /** The newest good firmware that is not on the board yet. */
  readonly owed?: F;
  /** The board came back during other work: flash what is owed when that work ends. */
  readonly boardBack: boolean;
}

export type DevInput<F> =
  | { type: 'start' }
  | { type: 'saved'; path: string; config: boolean }
  /** The quiet time after the last save ended. */
  | { type: 'quiet' }
  /** `firmware` is absent when there is nothing to flash (`--no-flash`, a board without a chip). */
  | { type: 'built'; firmware?: F }
  | { type: 'build-failed' }
  | { type: 'flashed' }
  | { type: 'flash-failed' }
  | { type: 'board-back' }
  | { type: 'stop' };

export type DevCommand<F> =
  /** (Re)start the quiet-time timer; it answers `quiet`. */
  | { type: 'arm-debounce' }
  | { type: 'cancel-debounce' }
  /** Build; answers `built` or `build-failed`. */
  | { type: 'build'; files: string[]; reload: boolean }
  /** Flash; answers `flashed` or `flash-failed`. */
  | { type: 'flash'; firmware: F }
  /** (Re)start polling the ports, with the ports there now as the baseline; answers `board-back`. */
  | { type: 'watch-for-board' }
  | { type: 'stop-watching-for-board' }
  /** Tell the user the loop is waiting for a save. */
  | { type: 'idle' }
  /** Release the watcher, the port, the container and the cache registration; the session ends. */
  | { type: 'teardown' };

export type DevTransition<F> = [DevState<F>, DevCommand<F>[]];

export function initialDevState<F>(): DevState<F> {
  return { phase: 'starting', pending: new Set(), reload: false, boardBack: false };
}

export function transition<F>(state: DevState<F>, input: DevInput<F>): DevTransition<F> {
  if (state.phase === 'stopping') return stopping(state, input);
  switch (input.type) {
    case 'start':
      return state.phase === 'starting' ? startBuild(state) : [state, []];
    case 'saved':
      return saved(state, input);
    case 'quiet':
      return state.phase === 'debouncing' ? startBuild(state) : [state, []];
    case 'built':
      if (state.phase !== 'building') return [state, []];
      if (input.firmware === undefined) return settle(state);
      return [{ ...state, phase: 'flashing', owed: input.firmware, boardBack: false }, flash(input.firmware)];
    case 'build-failed':
      return state.phase === 'building' ? settle(state) : [state, []];
    case 'flashed':
      if (state.phase !== 'flashing') return [state, []];
      return withCommands(settle<F>({ ...state, owed: undefined }), { type: 'stop-watching-for-board' });
    case 'flash-failed':
      if (state.phase !== 'flashing') return [state, []];
      return withCommands(settle(state), { type: 'watch-for-board' });
    case 'board-back':
      return boardBack(state);
    case 'stop':
      return stop(state);
  }
}

/** While stopping, only the end of the running step matters: then the session tears down. */
function stopping<F>(state: DevState<F>, input: DevInput<F>): DevTransition<F> {
  const stepEnded = ['built', 'build-failed', 'flashed', 'flash-failed'].includes(input.type);
  return [state, stepEnded ? [{ type: 'teardown' }] : []];
}

function saved<F>(state: DevState<F>, input: { path: string; config: boolean }): DevTransition<F> {
  const next = {
    ...state,
    pending: new Set([...state.pending, input.path]),
    reload: state.reload || input.config,
  };
  // A running step picks the saves up when it ends; the first build takes them as it starts.
  if (state.phase === 'building' || state.phase === 'flashing' || state.phase === 'starting')
    return [next, []];
  return [{ ...next, phase: 'debouncing' }, [{ type: 'arm-debounce' }]];
}

function startBuild<F>(state: DevState<F>): DevTransition<F> {
  const build: DevCommand<F> = { type: 'build', files: [...state.pending], reload: state.reload };
  return [{ ...state, phase: 'building', pending: new Set(), reload: false }, [build]];
}

function flash<F>(firmware: F): DevCommand<F>[] {
  return [{ type: 'flash', firmware }];
}

function boardBack<F>(state: DevState<F>): DevTransition<F> {
  if (state.owed === undefined) return [state, []];
  if (state.phase === 'idle' || state.phase === 'waiting-for-board')
    return [{ ...state, phase: 'flashing', boardBack: false }, flash(state.owed)];
  // A flash running now is already on its way to the board; anything else flashes when it ends.
  if (state.phase === 'flashing') return [state, []];
  return [{ ...state, boardBack: true }, []];
}

function stop<F>(state: DevState<F>): DevTransition<F> {
  const running = state.phase === 'building' || state.phase === 'flashing';
  const commands: DevCommand<F>[] = [{ type: 'cancel-debounce' }, { type: 'stop-watching-for-board' }];
  if (!running) commands.push({ type: 'teardown' });
  return [{ ...state, phase: 'stopping' }, commands];
}

/** A step ended: build what was saved meanwhile, else flash a board that came back, else wait. */
function settle<F>(state: DevState<F>): DevTransition<F> {
  if (state.pending.size > 0) return [{ ...state, phase: 'debouncing' }, [{ type: 'arm-debounce' }]];
  if (state.boardBack && state.owed !== undefined)
    return [{ ...state, phase: 'flashing', boardBack: false }, flash(state.owed)];
  const phase = state.owed === undefined ? 'idle' : 'waiting-for-board';
  return [{ ...state, phase, boardBack: false }, [{ type: 'idle' }]];
}

function withCommands<F>([state, commands]: DevTransition<F>, ...first: DevCommand<F>[]): DevTransition<F> {
  return [state, [...first, ...commands]];
}
