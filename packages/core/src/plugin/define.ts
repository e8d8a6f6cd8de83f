/**
 * Typed identity helpers: they only give plugin and config authors completion and type errors.
 * `kind` is filled in so a plugin module can `export default defineBoard({...})` without repeating it.
 */
import type { MpConfig } from '../config/types.ts';
import type { BoardExtension } from './extends.ts';
import type { BoardPlugin, LibraryPlugin } from './types.ts';

/** A board, or one that `extends` another: then only `id` and `title` are required (see plugin/extends.ts). */
export function defineBoard(
  board: (Omit<BoardPlugin, 'kind'> & { kind?: 'board' }) | (BoardExtension & { kind?: 'board' }),
): BoardPlugin {
  return { ...board, kind: 'board' } as BoardPlugin;
}

export function defineLibrary(library: Omit<LibraryPlugin, 'kind'> & { kind?: 'library' }): LibraryPlugin {
  return { ...library, kind: 'library' };
}

export function defineConfig(config: MpConfig): MpConfig {
  return config;
}
