import { statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { MpError } from '../errors.ts';

/**
 * The user-wide cache (source clones shared by every project): `$MP_CACHE_DIR`, else
 * `$XDG_CACHE_HOME/mp`, else the platform's usual cache folder.
 */
export function userCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.MP_CACHE_DIR) return checkedCacheDir(env.MP_CACHE_DIR, 'MP_CACHE_DIR');
  if (env.XDG_CACHE_HOME) return checkedCacheDir(join(env.XDG_CACHE_HOME, 'mp'), 'XDG_CACHE_HOME');
  if (process.platform === 'darwin') return join(homedir(), 'Library', 'Caches', 'mp');
  if (process.platform === 'win32')
    return join(env.LOCALAPPDATA ?? join(homedir(), 'AppData', 'Local'), 'mp', 'Cache');
  return join(homedir(), '.cache', 'mp');
}

/** A cache path that exists but is not a folder is named with the variable it came from. */
function checkedCacheDir(dir: string, variable: string): string {
  const info = statSync(dir, { throwIfNoEntry: false });
  if (info && !info.isDirectory()) {
    throw new MpError({
      code: 'CACHE_DIR_INVALID',
      message: `${variable} points at ${dir}, which is a file, not a folder`,
      file: dir,
      hint: `Point ${variable} at a folder (mp creates it if missing), or unset it to use the default cache.`,
      exitCode: 2,
    });
  }
  return dir;
}
