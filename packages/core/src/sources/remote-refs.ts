/**
 * What a remote repository offers, from one `git ls-remote`: tags (peeled to their commits),
 * branches and the default branch (`HEAD`, listed as a branch of that name). Used to find the
 * newest stable MicroPython release and to resolve a ref.
 */
import { compareVersions, parseReleaseTag } from '../plugin/version.ts';
import { type GitRunOptions, runGit } from './git.ts';

export interface RemoteRefs {
  /** Tag name → commit sha (annotated tags peeled). */
  tags: Record<string, string>;
  /** Branch name → commit sha. */
  branches: Record<string, string>;
}

/** Parses `git ls-remote` output; `refs/tags/x^{}` (the peeled commit) wins over the tag object. */
export function parseLsRemote(output: string): RemoteRefs {
  const refs: RemoteRefs = { tags: {}, branches: {} };
  const peeled = new Set<string>();
  for (const line of output.split('\n')) {
    const [sha, name] = line.trim().split(/\s+/);
    if (!sha || !name || !/^[0-9a-f]{40,64}$/.test(sha)) continue;
    if (name === 'HEAD') refs.branches.HEAD = sha;
    else if (name.startsWith('refs/heads/')) refs.branches[name.slice('refs/heads/'.length)] = sha;
    else if (name.startsWith('refs/tags/')) {
      let tag = name.slice('refs/tags/'.length);
      if (tag.endsWith('^{}')) {
        tag = tag.slice(0, -3);
        peeled.add(tag);
        refs.tags[tag] = sha;
      } else if (!peeled.has(tag)) refs.tags[tag] = sha;
    }
  }
  return refs;
}

/** One round trip to the remote; `refs/pull/*` and the like are left out (GitHub has thousands). */
export async function listRemoteRefs(url: string, options: GitRunOptions = {}): Promise<RemoteRefs> {
  return parseLsRemote(await runGit(['ls-remote', url, 'HEAD', 'refs/heads/*', 'refs/tags/*'], options));
}

/**
 * The newest stable release among tag names: `vX.Y.Z` only, never `-preview`, `-rc` or anything else.
 * @example newestStableTag(['v1.27.0', 'v1.28.0', 'v1.29.0-preview']) // 'v1.28.0'
 */
export function newestStableTag(tags: Iterable<string>): string | undefined {
  let best: string | undefined;
  for (const tag of tags) {
    const v = parseReleaseTag(tag);
    if (!v) continue;
    if (best === undefined || compareVersions(v, parseReleaseTag(best)!) > 0) best = tag;
  }
  return best;
}

/** The few newest stable tags, for "did you mean" hints. */
export function recentStableTags(tags: Iterable<string>, count = 5): string[] {
  return [...tags]
    .filter((t) => parseReleaseTag(t))
    .sort((a, b) => compareVersions(parseReleaseTag(b)!, parseReleaseTag(a)!))
    .slice(0, count);
}
