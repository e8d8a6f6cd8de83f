/**
 * Board inheritance: `defineBoard({ extends: 'esp8266-d1mini', id: 'd1mini-1m', title: '…', variant: 'FLASH_1M' })`
 * is the base board with those fields replaced, keeping the base's resolve logic (as nitro presets
 * extend one another). The merged board is validated as a whole, like any other board.
 *
 * Precedence, lowest first: the base's fields, the extending board's fields, what the base's
 * `resolve` returns for keys the extending board did not set, then the extending board's own
 * `resolve`. So what a board writes itself is never undone by the board it extends.
 */
import { MpError } from '../errors.ts';
import type { BoardPlugin, BoardTarget } from './types.ts';

/** A board that names a base: every field but `id` and `title` may come from the base. */
export type BoardExtension = Partial<Omit<BoardPlugin, 'kind' | 'extends'>> & {
  id: string;
  title: string;
  extends: string | BoardPlugin;
};

export function extendBoard(base: BoardPlugin, own: BoardPlugin): BoardPlugin {
  const { extends: _base, resolve: ownResolve, kind: _kind, ...fields } = own as BoardPlugin & BoardExtension;
  const written = new Set(
    Object.keys(fields).filter((k) => (fields as Record<string, unknown>)[k] !== undefined),
  );
  const merged: BoardPlugin = {
    ...base,
    ...definedOnly(fields),
    toolchain: { ...base.toolchain, ...fields.toolchain },
    kind: 'board',
  };
  // The merged board stands on its own: a board extending it merges with it, not with its base.
  delete merged.extends;
  delete merged.resolve;
  if (base.resolve || ownResolve) {
    merged.resolve = async (ctx) => {
      const fromBase: Partial<BoardTarget> = (await base.resolve?.(ctx)) ?? {};
      const kept = Object.fromEntries(
        Object.entries(fromBase).filter(([key]) => !written.has(key) || key === 'toolchain'),
      ) as Partial<BoardTarget>;
      // A toolchain the base's hook picked (an IDF version) keeps the fields the extension set itself.
      if (fromBase.toolchain) kept.toolchain = { ...fromBase.toolchain, ...fields.toolchain };
      const fromOwn = (await ownResolve?.(ctx)) ?? {};
      return { ...kept, ...fromOwn };
    };
  }
  return merged;
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * Follows `extends` to the root and merges on the way back; `loadBoard` finds a base by id.
 * A chain that comes back to a board already in it is an error naming the chain.
 */
export async function resolveExtends(
  board: BoardPlugin,
  loadBoard: (id: string) => Promise<BoardPlugin>,
  chain: string[] = [],
): Promise<BoardPlugin> {
  if (board.extends === undefined) return board;
  const path = [...chain, board.id];
  const baseId = typeof board.extends === 'string' ? board.extends : board.extends.id;
  if (path.includes(baseId)) {
    throw new MpError({
      code: 'PLUGIN_INVALID',
      message: `Boards extend each other in a circle: ${[...path, baseId].join(' → ')}`,
      plugin: board.id,
      hint: 'Make one of these boards stand on its own (drop its `extends`), or extend another board.',
    });
  }
  const base = typeof board.extends === 'string' ? await loadBoard(board.extends) : board.extends;
  return extendBoard(await resolveExtends(base, loadBoard, path), board);
}
