/**
 * Typed identity helpers: they only give plugin and config authors completion and type errors.
 * `kind` is filled in so a plugin module can `export default defineBoard({...})` without repeating it.
 */
import type { MpConfig } from '../config/types.ts';
import type { BoardPlugin, LibraryPlugin } from './types.ts';

export function defineBoard(board: Omit<BoardPlugin, 'kind'> & { kind?: 'board' }): BoardPlugin {
  return { ...board, kind: 'board' };
}

export function defineLibrary(library: Omit<LibraryPlugin, 'kind'> & { kind?: 'library' }): LibraryPlugin {
  return { ...library, kind: 'library' };
}

export function defineConfig(config: MpConfig): MpConfig {
  return config;
}
