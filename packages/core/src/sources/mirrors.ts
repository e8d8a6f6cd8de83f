/**
 * Mirror rewriting: every git URL mp fetches (MicroPython, libraries, submodules) passes through
 * here, so a company mirror or an offline copy replaces GitHub without touching plugins.
 */

/**
 * The URL to fetch from: the longest matching prefix in `mirrors` is replaced.
 * @example applyMirrors('https://github.com/micropython/micropython.git', { 'https://github.com/': 'https://git.example.com/gh/' })
 *   // → 'https://git.example.com/gh/micropython/micropython.git'
 */
export function applyMirrors(url: string, mirrors: Record<string, string> | undefined): string {
  let best: string | undefined;
  for (const from of Object.keys(mirrors ?? {})) {
    if (url.startsWith(from) && (best === undefined || from.length > best.length)) best = from;
  }
  return best === undefined ? url : mirrors![best] + url.slice(best.length);
}

/** A short readable name for a repository URL, used in cache folder names (`micropython-micropython`). */
export function repoSlug(url: string): string {
  const path = url
    .replace(/[?#].*$/, '')
    .replace(/\.git\/?$/, '')
    .replace(/\/+$/, '');
  const parts = path.split(/[/:]/).filter(Boolean).slice(-2);
  const slug = parts
    .join('-')
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^[.-]+/, '');
  return slug.slice(0, 60) || 'repo';
}

/** Resolves a submodule URL from `.gitmodules` (may be relative, `../foo.git`) against its superproject. */
export function resolveSubmoduleUrl(superUrl: string, submoduleUrl: string): string {
  if (!submoduleUrl.startsWith('./') && !submoduleUrl.startsWith('../')) return submoduleUrl;
  let base = superUrl.replace(/\/+$/, '');
  let rest = submoduleUrl;
  for (;;) {
    if (rest.startsWith('./')) rest = rest.slice(2);
    else if (rest.startsWith('../')) {
      rest = rest.slice(3);
      base = base.replace(/[/:][^/:]*$/, '');
    } else break;
  }
  return `${base}/${rest}`;
}
