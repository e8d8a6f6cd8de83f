/**
 * The rules of `mp dev`'s loop, on the state machine alone: given a state and what happened, the
 * next state and what the session is told to do. No timers, no Docker, no port.
 */
import { describe, expect, it } from 'vitest';
import {
  type DevCommand,
  type DevInput,
  type DevState,
  initialDevState,
  transition,
} from '../src/dev/machine.ts';

type Fw = string;

/** Feeds inputs in order; returns the final state and every command, in order. */
function run(inputs: DevInput<Fw>[], from: DevState<Fw> = initialDevState()) {
  let state = from;
  const commands: DevCommand<Fw>[] = [];
  for (const input of inputs) {
    const [next, out] = transition(state, input);
    state = next;
    commands.push(...out);
  }
  return { state, commands, types: commands.map((c) => c.type) };
}

const save = (path: string, config = false): DevInput<Fw> => ({ type: 'saved', path, config });
/** Started, first build good and flashed: the board runs the newest firmware. */
const flashedOnce = run([{ type: 'start' }, { type: 'built', firmware: 'fw1' }, { type: 'flashed' }]).state;

describe('the mp dev state machine', () => {
  it('builds once at start, flashes the good build, then is idle', () => {
    const { state, commands } = run([
      { type: 'start' },
      { type: 'built', firmware: 'fw1' },
      { type: 'flashed' },
    ]);
    expect(commands).toEqual([
      { type: 'build', files: [], reload: false },
      { type: 'flash', firmware: 'fw1' },
      { type: 'stop-watching-for-board' },
      { type: 'idle' },
    ]);
    expect(state.phase).toBe('idle');
    expect(state.owed).toBeUndefined();
  });

  it('a build with nothing to flash (unix, --no-flash) goes straight to idle', () => {
    const { state, types } = run([{ type: 'start' }, { type: 'built' }]);
    expect(types).toEqual(['build', 'idle']);
    expect(state.phase).toBe('idle');
  });

  it('a burst of saves re-arms the quiet time and gives one build with every file', () => {
    const { state, commands } = run(
      [save('a.py'), save('b.py'), save('a.py'), { type: 'quiet' }],
      flashedOnce,
    );
    expect(commands).toEqual([
      { type: 'arm-debounce' },
      { type: 'arm-debounce' },
      { type: 'arm-debounce' },
      { type: 'build', files: ['a.py', 'b.py'], reload: false },
    ]);
    expect(state.phase).toBe('building');
    expect(state.pending.size).toBe(0);
  });

  it('saves during a build queue one rebuild after it, with the newest files', () => {
    const building = run([save('a.py'), { type: 'quiet' }], flashedOnce).state;
    const { state, commands } = run(
      [
        save('b.py'),
        save('c.py'),
        { type: 'built', firmware: 'fw2' },
        { type: 'flashed' },
        { type: 'quiet' },
      ],
      building,
    );
    // Nothing starts while the build and its flash run; the queued saves wait for the quiet time.
    expect(commands).toEqual([
      { type: 'flash', firmware: 'fw2' },
      { type: 'stop-watching-for-board' },
      { type: 'arm-debounce' },
      { type: 'build', files: ['b.py', 'c.py'], reload: false },
    ]);
    expect(state.phase).toBe('building');
  });

  it('a failed build (a syntax error or make) flashes nothing and waits for the next save', () => {
    const { state, types } = run([save('a.py'), { type: 'quiet' }, { type: 'build-failed' }], flashedOnce);
    expect(types).toEqual(['arm-debounce', 'build', 'idle']);
    expect(state.phase).toBe('idle');
  });

  it('a config save asks for the project to be opened again before the build', () => {
    const { commands, state } = run(
      [save('mp.config.json', true), save('a.py'), { type: 'quiet' }],
      flashedOnce,
    );
    expect(commands.at(-1)).toEqual({ type: 'build', files: ['mp.config.json', 'a.py'], reload: true });
    expect(state.reload).toBe(false);
  });

  it('a failed flash keeps the firmware owed and watches for the board; its return flashes it', () => {
    const failed = run([{ type: 'start' }, { type: 'built', firmware: 'fw1' }, { type: 'flash-failed' }]);
    expect(failed.types).toEqual(['build', 'flash', 'watch-for-board', 'idle']);
    expect(failed.state).toMatchObject({ phase: 'waiting-for-board', owed: 'fw1' });
    const back = run([{ type: 'board-back' }, { type: 'flashed' }], failed.state);
    expect(back.commands).toEqual([
      { type: 'flash', firmware: 'fw1' },
      { type: 'stop-watching-for-board' },
      { type: 'idle' },
    ]);
    expect(back.state).toMatchObject({ phase: 'idle', owed: undefined });
  });

  it('a failed build keeps the last good firmware owed: a board back during it gets that one', () => {
    const waiting = run([
      { type: 'start' },
      { type: 'built', firmware: 'fw1' },
      { type: 'flash-failed' },
    ]).state;
    const { commands, state } = run(
      [save('a.py'), { type: 'quiet' }, { type: 'board-back' }, { type: 'build-failed' }],
      waiting,
    );
    expect(commands).toEqual([
      { type: 'arm-debounce' },
      { type: 'build', files: ['a.py'], reload: false },
      { type: 'flash', firmware: 'fw1' },
    ]);
    expect(state.phase).toBe('flashing');
  });

  it('a good build while the board is away replaces what is owed', () => {
    const waiting = run([
      { type: 'start' },
      { type: 'built', firmware: 'fw1' },
      { type: 'flash-failed' },
    ]).state;
    const { commands, state } = run(
      [save('a.py'), { type: 'quiet' }, { type: 'built', firmware: 'fw2' }],
      waiting,
    );
    expect(commands.at(-1)).toEqual({ type: 'flash', firmware: 'fw2' });
    expect(state.owed).toBe('fw2');
  });

  it('a board that appears while nothing is owed, or during a flash, changes nothing', () => {
    expect(run([{ type: 'board-back' }], flashedOnce).commands).toEqual([]);
    const flashing = run([{ type: 'start' }, { type: 'built', firmware: 'fw1' }]).state;
    const { state, types } = run([{ type: 'board-back' }, { type: 'flash-failed' }], flashing);
    // The flash that failed was the attempt on the board that came back: watch again, do not loop.
    expect(types).toEqual(['watch-for-board', 'idle']);
    expect(state.phase).toBe('waiting-for-board');
  });

  it('stop while idle tears down at once', () => {
    const { state, commands } = run([save('a.py'), { type: 'stop' }], flashedOnce);
    expect(commands).toEqual([
      { type: 'arm-debounce' },
      { type: 'cancel-debounce' },
      { type: 'stop-watching-for-board' },
      { type: 'teardown' },
    ]);
    expect(state.phase).toBe('stopping');
  });

  it('stop during a build waits for it to end, then tears down, and starts nothing else', () => {
    const building = run([save('a.py'), { type: 'quiet' }], flashedOnce).state;
    const { types } = run(
      [
        { type: 'stop' },
        save('b.py'),
        { type: 'quiet' },
        { type: 'board-back' },
        { type: 'built', firmware: 'fw2' },
      ],
      building,
    );
    expect(types).toEqual(['cancel-debounce', 'stop-watching-for-board', 'teardown']);
  });

  it('ignores stale timer and step outcomes that do not fit the phase', () => {
    for (const input of [
      { type: 'quiet' },
      { type: 'built', firmware: 'x' },
      { type: 'build-failed' },
      { type: 'flashed' },
      { type: 'flash-failed' },
      { type: 'start' },
    ] as DevInput<Fw>[]) {
      expect(transition(flashedOnce, input)).toEqual([flashedOnce, []]);
    }
  });
});
