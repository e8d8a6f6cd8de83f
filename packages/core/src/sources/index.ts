/** Where MicroPython and library sources come from: git (cached, shallow, mirrored) or local folders. */
export { GitCommandError, type GitRunOptions, isUnreachable, runGit } from './git.ts';
export {
  DEFAULT_REF_TTL_MS,
  type GitCacheOptions,
  type GitCheckout,
  type GitOperationOptions,
  GitSourceCache,
  type RefKind,
  type ResolvedRef,
  refTtlFromEnv,
} from './git-cache.ts';
export { checkLocalDir, fingerprintFiles, inspectLocalSource, type LocalSourceState } from './local.ts';
export { applyMirrors, repoSlug, resolveSubmoduleUrl } from './mirrors.ts';
export {
  listRemoteRefs,
  newestStableTag,
  parseLsRemote,
  type RemoteRefs,
  recentStableTags,
} from './remote-refs.ts';
