/** The source cache's options and what it answers: pinned refs and checked-out trees. */
import type { Logger } from '../events.ts';

/** How long an `ls-remote` answer (newest tag, branch tips) is trusted: 10 minutes. */
export const DEFAULT_REF_TTL_MS = 10 * 60 * 1000;

export interface GitCacheOptions {
  /** The user cache root (`userCacheDir()`); repositories go in `<cacheDir>/git`. */
  cacheDir: string;
  /** URL prefix rewrites (config `mirrors` + `MP_GIT_MIRRORS`). */
  mirrors?: Record<string, string>;
  /** How long remote answers are reused; `MP_REF_TTL` (seconds) sets it from the environment. */
  refTtlMs?: number;
  /** Ask the remote again even if the cached answer is fresh (`mp build --force`). */
  refresh?: boolean;
  now?: () => number;
}

export interface GitOperationOptions {
  signal?: AbortSignal;
  /** git's progress and messages, line by line. */
  onLine?: (line: string) => void;
  /** Waiting for another mp process that holds the repository's lock. */
  onWait?: (owner: string) => void;
  logger?: Logger;
  /** What the repository is, for messages: `MicroPython`, `library mqtt_as`. */
  label?: string;
  /** Plugin id to name in errors. */
  plugin?: string;
}

export type RefKind = 'tag' | 'branch' | 'sha';

/** A ref pinned to a commit. */
export interface ResolvedRef {
  /** The repository URL as configured (before mirrors): what provenance records. */
  url: string;
  /** Where it is fetched from (after mirrors). */
  fetchUrl: string;
  /** What was asked for; `undefined` means "newest stable tag". */
  requested?: string;
  kind: RefKind;
  /** Tag or branch name, or the sha itself. */
  name: string;
  sha: string;
  /** `cache`: from refs.json or the local repository, no network; `remote`: asked just now; `stale-cache`: remote unreachable, older answer reused. */
  from: 'cache' | 'remote' | 'stale-cache';
}

/** A checked-out commit. */
export interface GitCheckout {
  dir: string;
  url: string;
  sha: string;
  /**
   * The commit's committer time, in seconds since the epoch: a build's SOURCE_DATE_EPOCH, so the
   * firmware's build date is the commit's, not the clock's (absent only from fakes).
   */
  committedAt?: number;
  /** Submodules present in the tree: path → commit. */
  submodules: Record<string, { url: string; sha: string }>;
}

export interface RefsFile {
  url: string;
  /** ms since epoch of the last successful ls-remote. */
  at: number;
  tags: Record<string, string>;
  branches: Record<string, string>;
}

export interface CheckoutRecord {
  url: string;
  sha: string;
  fetchedAt: string;
  /** Committer time (seconds since the epoch); absent in records written before mp kept it. */
  committedAt?: number;
  submodules: Record<string, { url: string; sha: string }>;
}

export const CHECKOUT_RECORD = '.mp-checkout.json';
export const FULL_SHA = /^[0-9a-f]{40}$/;
export const SHORT_SHA = /^[0-9a-f]{7,39}$/;
