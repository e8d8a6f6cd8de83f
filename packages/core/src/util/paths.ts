import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * The user-wide cache (source clones shared by every project): `$MP_CACHE_DIR`, else
 * `$XDG_CACHE_HOME/mp`, else the platform's usual cache folder.
 */
export function userCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.MP_CACHE_DIR) return env.MP_CACHE_DIR;
  if (env.XDG_CACHE_HOME) return join(env.XDG_CACHE_HOME, 'mp');
  if (process.platform === 'darwin') return join(homedir(), 'Library', 'Caches', 'mp');
  if (process.platform === 'win32')
    return join(env.LOCALAPPDATA ?? join(homedir(), 'AppData', 'Local'), 'mp', 'Cache');
  return join(homedir(), '.cache', 'mp');
}
