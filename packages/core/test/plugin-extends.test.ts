/** `extends`: a board made from another in a few lines, keeping the base's resolve logic. */
import { tempProject } from '@mp/test-utils';
import { describe, expect, it } from 'vitest';
import {
  type BoardPlugin,
  defineBoard,
  PluginRegistry,
  silentLogger,
  ValidationError,
} from '../src/index.ts';

const base = defineBoard({
  id: 'base-board',
  title: 'Base',
  port: 'esp8266',
  chip: 'ESP8266',
  exportPrefix: 'BASE',
  board: 'ESP8266_GENERIC',
  toolchain: { image: 'base/image', env: { A: '1' } },
  artifacts: { firmware: 'firmware.bin' },
  firmware: 'firmware',
  defaultManifest: '$(BOARD_DIR)/manifest.py',
  flash: {
    segments: [{ offset: 0, artifact: 'firmware' }],
    mode: 'keep',
    freq: 'keep',
    size: 'detect',
    baud: 460800,
  },
  resolve: ({ micropython }) => ({
    toolchain: { image: `base/image:${micropython.tag}`, reason: 'the base decided' },
    board: 'OLD_NAME',
  }),
});

async function project(plugins: BoardPlugin[]) {
  return { plugins: PluginRegistry.create({ roots: [tempProject().dir], inline: plugins }) };
}

const source = { dir: '/nowhere', ref: 'v1.28.0', tag: 'v1.28.0', sha: 'abc' };
const hook = { logger: silentLogger, signal: new AbortController().signal, micropython: source };

describe('boards that extend another', () => {
  it('take the base fields and resolve logic; what they set themselves wins', async () => {
    const variant = defineBoard({
      extends: 'base-board',
      id: 'base-1m',
      title: 'Base, 1 MB',
      variant: 'FLASH_1M',
      board: 'MINE',
      toolchain: { env: { B: '2' } },
    });
    const p = await project([base, variant]);
    const board = await p.plugins.load('board', 'base-1m');
    expect(board).toMatchObject({
      id: 'base-1m',
      port: 'esp8266',
      chip: 'ESP8266',
      exportPrefix: 'BASE',
      variant: 'FLASH_1M',
      board: 'MINE',
    });
    expect(board.toolchain).toEqual({ image: 'base/image', env: { B: '2' } });
    const resolved = await board.resolve!(hook);
    // The base's hook still picks the toolchain; it cannot undo the board name the extension set.
    expect(resolved.toolchain).toEqual({
      image: 'base/image:v1.28.0',
      reason: 'the base decided',
      env: { B: '2' },
    });
    expect(resolved).not.toHaveProperty('board');
  });

  it('chains, runs its own resolve after the base, and reports a cycle and a merged board that is not whole', async () => {
    const middle = defineBoard({
      extends: base,
      id: 'middle',
      title: 'Middle',
      resolve: () => ({ makeArgs: ['X=1'] }),
    });
    const top = defineBoard({ extends: 'middle', id: 'top', title: 'Top' });
    const p = await project([middle, top]);
    const board = await p.plugins.load('board', 'top');
    expect(await board.resolve!(hook)).toMatchObject({ board: 'OLD_NAME', makeArgs: ['X=1'] });

    const a = defineBoard({ extends: 'cyc-b', id: 'cyc-a', title: 'A' });
    const b = defineBoard({ extends: 'cyc-a', id: 'cyc-b', title: 'B' });
    const cyclic = await project([a, b]);
    await expect(cyclic.plugins.load('board', 'cyc-a')).rejects.toThrow(
      'Boards extend each other in a circle: cyc-a → cyc-b → cyc-a',
    );

    const broken = defineBoard({ extends: base, id: 'broken', title: 'Broken', firmware: 'nope' });
    const error = await (await project([broken])).plugins.load('board', 'broken').catch((e) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).issues.map((i) => i.path)).toContain('firmware');
  });
});
