/**
 * The user-wide source cache: one shallow bare repository per git URL, and one plain checkout per
 * commit, shared by every build and every project on the machine.
 *
 *   <cache>/git/<slug>-<hash>/
 *     repo.git/            bare; shallow (depth 1) fetches of each commit asked for accumulate here
 *     trees/<sha>/         the files of one commit (no .git), plus the submodules fetched so far
 *     refs.json            the remote's tags and branches from the last `ls-remote`, with its time
 *     lock/                held while fetching or adding to a tree (two builds at once are safe)
 *   <cache>/users/<pid>-<rand>.json   one per running build (registerCacheUse): `mp clean --all`
 *                                     refuses while a live one exists
 *   <cache>/lock/                     held while registering a build and by `mp clean --all`
 *
 * Temporaries carry the writer's pid (`trees/.tmp-<sha>-<pid>-<rand>` with its `.index`,
 * `trees/<sha>/.mp-submodule-<pid>-<rand>`): one left by a process that was killed is removed by the
 * next fetch of that repository, or by sweepCacheTemps (mp clean).
 *
 * A tree appears by rename once complete, so a reader never sees half of one; afterwards it only
 * grows (submodules are added under the lock). Checkouts are plain files because they are
 * bind-mounted into toolchain containers, where a `.git` pointing at a host path would be useless.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { CancelledError, MpError } from '../errors.ts';
import { silentLogger } from '../events.ts';
import { writeFileAtomic } from '../util/fs.ts';
import { sha256Hex } from '../util/hash.ts';
import { withLock } from '../util/lock.ts';
import { sweepRepoTemps } from './cache-housekeeping.ts';
import {
  CHECKOUT_RECORD,
  type CheckoutRecord,
  DEFAULT_REF_TTL_MS,
  FULL_SHA,
  type GitCacheOptions,
  type GitCheckout,
  type GitOperationOptions,
  type RefsFile,
  type ResolvedRef,
  SHORT_SHA,
} from './git-types.ts';
import { checkoutTree, readCheckoutRecord, submoduleUrls } from './tree-checkout.ts';

export {
  DEFAULT_REF_TTL_MS,
  type GitCacheOptions,
  type GitCheckout,
  type GitOperationOptions,
  type RefKind,
  type ResolvedRef,
} from './git-types.ts';

import { GitCommandError, gitComplaint, isUnreachable, runGit } from './git.ts';
import { applyMirrors, repoSlug, resolveSubmoduleUrl } from './mirrors.ts';
import { listRemoteRefs, newestStableTag, type RemoteRefs, recentStableTags } from './remote-refs.ts';

/** The ref TTL from `MP_REF_TTL` (seconds), else the default. */
export function refTtlFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const seconds = Number(env.MP_REF_TTL);
  return env.MP_REF_TTL !== undefined && Number.isFinite(seconds) && seconds >= 0
    ? seconds * 1000
    : DEFAULT_REF_TTL_MS;
}

export class GitSourceCache {
  readonly root: string;
  private readonly mirrors: Record<string, string>;
  private readonly ttlMs: number;
  private readonly refresh: boolean;
  private readonly now: () => number;

  constructor(options: GitCacheOptions) {
    this.root = join(options.cacheDir, 'git');
    this.mirrors = options.mirrors ?? {};
    this.ttlMs = options.refTtlMs ?? DEFAULT_REF_TTL_MS;
    this.refresh = options.refresh ?? false;
    this.now = options.now ?? Date.now;
  }

  /** The cache folder of one repository URL (mirrors do not change it: a mirror holds the same commits). */
  repoDir(url: string): string {
    const hash = sha256Hex(url).slice(0, 10);
    return join(this.root, `${repoSlug(url)}-${hash}`);
  }

  fetchUrl(url: string): string {
    return applyMirrors(url, this.mirrors);
  }

  /** The newest `vX.Y.Z` tag of the repository (never a `-preview`), remembered for the TTL. */
  async resolveNewestStable(url: string, options: GitOperationOptions = {}): Promise<ResolvedRef> {
    const label = options.label ?? url;
    const { refs, from } = await this.remoteRefs(url, options, (cached) => !this.isFresh(cached));
    const tag = newestStableTag(Object.keys(refs.tags));
    if (!tag) {
      throw new MpError({
        code: 'NO_STABLE_TAG',
        message: `${label}: ${this.fetchUrl(url)} has no release tag of the form vX.Y.Z`,
        plugin: options.plugin,
        step: 'resolve',
        hint: 'Name the version to build with --micropython <tag|branch|sha> (or micropython.ref in mp.config).',
      });
    }
    return { url, fetchUrl: this.fetchUrl(url), kind: 'tag', name: tag, sha: refs.tags[tag]!, from };
  }

  /**
   * Pins a tag, branch or sha to a commit. Tags are trusted from the cache (they do not move),
   * branches for the TTL; a full sha needs no network at all.
   */
  async resolveRef(url: string, ref: string, options: GitOperationOptions = {}): Promise<ResolvedRef> {
    const fetchUrl = this.fetchUrl(url);
    const name = ref.replace(/^refs\//, '').replace(/^(tags|heads)\//, '');
    const base = { url, fetchUrl, requested: ref };
    if (FULL_SHA.test(name)) return { ...base, kind: 'sha', name, sha: name, from: 'cache' };

    const cached = this.refresh ? undefined : await this.readRefs(url);
    if (cached?.tags[name]) return { ...base, kind: 'tag', name, sha: cached.tags[name]!, from: 'cache' };
    if (cached?.branches[name] && this.isFresh(cached)) {
      return { ...base, kind: 'branch', name, sha: cached.branches[name]!, from: 'cache' };
    }
    if (SHORT_SHA.test(name)) {
      const local = await this.revParse(url, name);
      if (local) return { ...base, kind: 'sha', name: local, sha: local, from: 'cache' };
    }

    const { refs, from } = await this.remoteRefs(url, options, () => true);
    if (refs.tags[name]) return { ...base, kind: 'tag', name, sha: refs.tags[name]!, from };
    if (refs.branches[name]) return { ...base, kind: 'branch', name, sha: refs.branches[name]!, from };
    if (SHORT_SHA.test(name)) {
      const tip = Object.values({ ...refs.tags, ...refs.branches }).find((sha) => sha.startsWith(name));
      if (tip) return { ...base, kind: 'sha', name: tip, sha: tip, from };
      const full = await this.findShortSha(url, name, options);
      if (full) return { ...base, kind: 'sha', name: full, sha: full, from: 'remote' };
    }
    const recent = recentStableTags(Object.keys(refs.tags));
    throw new MpError({
      code: 'UNKNOWN_REF',
      message: `${options.label ?? url} has no tag, branch or commit "${ref}" (${fetchUrl})`,
      plugin: options.plugin,
      step: 'resolve',
      hint: `${recent.length ? `Newest releases: ${recent.join(', ')}. ` : ''}Use one of those, a branch name, a full 40-character commit sha, or a local checkout path.`,
      exitCode: 2,
    });
  }

  /**
   * The files of `resolved.sha`, fetched (depth 1) and checked out if not cached yet.
   * Safe when several mp processes ask at once: the first fetches, the others wait and reuse.
   */
  async checkout(resolved: ResolvedRef, options: GitOperationOptions = {}): Promise<GitCheckout> {
    const repo = this.repoDir(resolved.url);
    const treeDir = join(repo, 'trees', resolved.sha);
    const existing = await readCheckoutRecord(treeDir);
    if (existing) return this.checkoutOf(repo, treeDir, resolved, existing);
    return withLock(
      join(repo, 'lock'),
      async () => {
        const again = await readCheckoutRecord(treeDir);
        if (again) return this.checkoutOf(repo, treeDir, resolved, again);
        await sweepRepoTemps(repo);
        const record = await this.fetchAndCheckOut(repo, resolved, options, () =>
          this.materialize(repo, resolved.sha, treeDir, resolved.url, options),
        );
        return this.checkoutOf(repo, treeDir, resolved, record);
      },
      { signal: options.signal, onWait: options.onWait },
    );
  }

  /** A checkout as builds see it; a record from before commit times were kept gets its time now. */
  private async checkoutOf(
    repo: string,
    treeDir: string,
    resolved: ResolvedRef,
    record: CheckoutRecord,
  ): Promise<GitCheckout> {
    let committedAt = record.committedAt;
    if (committedAt === undefined) {
      committedAt = await this.commitTime(repo, resolved.sha);
      // Written for the next build; losing this race to a writer adding a submodule costs nothing.
      if (committedAt !== undefined) {
        const current = (await readCheckoutRecord(treeDir)) ?? record;
        await writeFileAtomic(
          join(treeDir, CHECKOUT_RECORD),
          `${JSON.stringify({ ...current, committedAt }, null, 2)}\n`,
        ).catch(() => undefined);
      }
    }
    return { dir: treeDir, url: resolved.url, sha: resolved.sha, committedAt, submodules: record.submodules };
  }

  /** The committer time of `sha` in the repository's bare clone (seconds since the epoch). */
  private async commitTime(repo: string, sha: string): Promise<number | undefined> {
    const out = await runGit(['--git-dir', join(repo, 'repo.git'), 'log', '-1', '--format=%ct', sha]).catch(
      () => '',
    );
    const seconds = Number(out.trim());
    return out.trim() && Number.isInteger(seconds) ? seconds : undefined;
  }

  /**
   * Adds the submodules at `paths` (e.g. `lib/micropython-lib`) to a checkout, each at the commit
   * the superproject pins, fetched through the same cache and mirrors.
   */
  async ensureSubmodules(
    checkout: GitCheckout,
    paths: string[],
    options: GitOperationOptions = {},
  ): Promise<GitCheckout> {
    const wanted = [...new Set(paths.map((p) => p.replace(/\/+$/, '')))].filter(Boolean);
    if (wanted.every((p) => checkout.submodules[p])) return checkout;
    const repo = this.repoDir(checkout.url);
    return withLock(
      join(repo, 'lock'),
      async () => {
        const record = (await readCheckoutRecord(checkout.dir)) ?? {
          url: checkout.url,
          sha: checkout.sha,
          fetchedAt: new Date(this.now()).toISOString(),
          submodules: {},
        };
        const missing = wanted.filter((p) => !record.submodules[p]);
        if (missing.length === 0) return { ...checkout, submodules: record.submodules };
        await sweepRepoTemps(repo);
        const urls = await submoduleUrls(checkout.dir);
        for (const path of missing) {
          if (options.signal?.aborted) throw new CancelledError('sources');
          const gitlink = await this.gitlinkSha(repo, checkout.sha, path);
          const declared = urls[path];
          if (!gitlink || !declared) {
            throw new MpError({
              code: 'SUBMODULE_UNKNOWN',
              message: `${options.label ?? checkout.url} at ${checkout.sha.slice(0, 10)} has no submodule "${path}"`,
              plugin: options.plugin,
              step: 'sources',
              hint: 'The port asked for a submodule this MicroPython version does not have; check the board plugin (its `submodules` list) and the MicroPython ref.',
            });
          }
          const url = resolveSubmoduleUrl(checkout.url, declared);
          const sub: ResolvedRef = {
            url,
            fetchUrl: this.fetchUrl(url),
            kind: 'sha',
            name: gitlink,
            sha: gitlink,
            from: 'cache',
          };
          options.onLine?.(`submodule ${path} @ ${gitlink.slice(0, 10)} from ${sub.fetchUrl}`);
          const subRepo = this.repoDir(url);
          await withLock(
            join(subRepo, 'lock'),
            async () => {
              const target = join(checkout.dir, path);
              const subOptions = { ...options, label: `submodule ${path}` };
              const temp = await this.fetchAndCheckOut(subRepo, sub, subOptions, async () => {
                const folder = join(
                  checkout.dir,
                  `.mp-submodule-${process.pid}-${randomBytes(4).toString('hex')}`,
                );
                try {
                  await checkoutTree(join(subRepo, 'repo.git'), gitlink, folder, options);
                } catch (error) {
                  await rm(folder, { recursive: true, force: true });
                  throw error;
                }
                return folder;
              });
              // The superproject checkout left an empty folder where the submodule goes.
              await rmdir(target).catch(() => rm(target, { recursive: true, force: true }));
              await mkdir(join(target, '..'), { recursive: true });
              await rename(temp, target);
            },
            { signal: options.signal, onWait: options.onWait },
          );
          record.submodules[path] = { url, sha: gitlink };
          await writeFileAtomic(join(checkout.dir, CHECKOUT_RECORD), `${JSON.stringify(record, null, 2)}\n`);
        }
        return { ...checkout, submodules: record.submodules };
      },
      { signal: options.signal, onWait: options.onWait },
    );
  }

  // ── internals ─────────────────────────────────────────────────────────────────────────────

  private isFresh(refs: RefsFile): boolean {
    return this.now() - refs.at < this.ttlMs;
  }

  private async readRefs(url: string): Promise<RefsFile | undefined> {
    try {
      const refs = JSON.parse(await readFile(join(this.repoDir(url), 'refs.json'), 'utf8')) as RefsFile;
      return refs.url === url ? refs : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * The remote's refs: from refs.json unless `needsRemote(cached)` says otherwise (or --force).
   * When the remote cannot be reached but an older answer exists, that answer is used with a warning,
   * so a build works offline with sources fetched before.
   */
  private async remoteRefs(
    url: string,
    options: GitOperationOptions,
    needsRemote: (cached: RefsFile) => boolean,
  ): Promise<{ refs: RemoteRefs; from: ResolvedRef['from'] }> {
    const cached = await this.readRefs(url);
    if (cached && !this.refresh && !needsRemote(cached)) return { refs: cached, from: 'cache' };
    const fetchUrl = this.fetchUrl(url);
    let refs: RemoteRefs;
    try {
      refs = await listRemoteRefs(fetchUrl, { signal: options.signal });
    } catch (error) {
      if (error instanceof CancelledError || options.signal?.aborted) throw error;
      if (cached) {
        const age = Math.round((this.now() - cached.at) / 60_000);
        (options.logger ?? silentLogger).warn(
          `${options.label ?? url}: ${fetchUrl} cannot be reached; using what it offered ${age} min ago`,
        );
        return { refs: cached, from: 'stale-cache' };
      }
      throw this.fetchError(error, fetchUrl, options, 'resolve');
    }
    const record: RefsFile = { url, at: this.now(), tags: refs.tags, branches: refs.branches };
    await writeFileAtomic(join(this.repoDir(url), 'refs.json'), `${JSON.stringify(record)}\n`);
    return { refs, from: 'remote' };
  }

  private fetchError(error: unknown, fetchUrl: string, options: GitOperationOptions, step: string): MpError {
    if (error instanceof MpError) return error;
    const said = error instanceof GitCommandError ? gitComplaint(error.stderr) : String(error);
    const unreachable = isUnreachable(error);
    return new MpError({
      code: unreachable ? 'SOURCE_UNREACHABLE' : 'SOURCE_FETCH_FAILED',
      message: `${options.label ?? 'Repository'}: cannot ${unreachable ? 'reach' : 'fetch from'} ${fetchUrl}${said ? ` (git: ${said})` : ''}`,
      plugin: options.plugin,
      step,
      hint: unreachable
        ? 'Check the network and the URL. To fetch from a mirror instead, set MP_GIT_MIRRORS="<original prefix>=<mirror prefix>" or `mirrors` in mp.config.'
        : 'Run the command again; if it keeps failing, delete the repository’s folder in the mp cache (`mp doctor` shows where) and retry.',
      cause: error,
    });
  }

  private async ensureBareRepo(repo: string, options: GitOperationOptions): Promise<string> {
    const gitDir = join(repo, 'repo.git');
    if (!existsSync(join(gitDir, 'HEAD'))) {
      await mkdir(repo, { recursive: true });
      await rm(gitDir, { recursive: true, force: true });
      await runGit(['init', '--bare', '--quiet', gitDir], { signal: options.signal });
    }
    return gitDir;
  }

  private async hasCommit(gitDir: string, sha: string): Promise<boolean> {
    return runGit(['--git-dir', gitDir, 'cat-file', '-e', `${sha}^{commit}`]).then(
      () => true,
      () => false,
    );
  }

  private async revParse(url: string, short: string): Promise<string | undefined> {
    const gitDir = join(this.repoDir(url), 'repo.git');
    if (!existsSync(gitDir)) return undefined;
    const out = await runGit([
      '--git-dir',
      gitDir,
      'rev-parse',
      '--verify',
      '--quiet',
      `${short}^{commit}`,
    ]).catch(() => '');
    return out.trim() || undefined;
  }

  /** A short sha that is no branch or tag tip: fetch the history (commits only, no files) and look. */
  private async findShortSha(
    url: string,
    short: string,
    options: GitOperationOptions,
  ): Promise<string | undefined> {
    const repo = this.repoDir(url);
    return withLock(
      join(repo, 'lock'),
      async () => {
        const gitDir = await this.ensureBareRepo(repo, options);
        options.onLine?.(`looking for commit ${short} in the history of ${this.fetchUrl(url)}`);
        await runGit(
          [
            '--git-dir',
            gitDir,
            'fetch',
            '--quiet',
            '--no-tags',
            '--filter=tree:0',
            this.fetchUrl(url),
            '+refs/heads/*:refs/mp/history/*',
          ],
          { signal: options.signal, onLine: options.onLine },
        ).catch(() => undefined);
        return this.revParse(url, short);
      },
      { signal: options.signal, onWait: options.onWait },
    );
  }

  /**
   * Fetches the commit and checks it out (`checkOut`, under the repository's lock). When git finds
   * objects of the commit missing, the repository (only a cache) is fetched again from nothing and
   * checked out once more. A fetch killed while it unpacked loose objects left such a repository
   * before every fetch kept a pack (see fetchCommit); so did the object-less history a short-sha
   * lookup fetches. Without this, every later build of that commit failed the same way.
   */
  private async fetchAndCheckOut<T>(
    repo: string,
    resolved: ResolvedRef,
    options: GitOperationOptions,
    checkOut: () => Promise<T>,
  ): Promise<T> {
    await this.fetchCommit(resolved, options);
    try {
      return await checkOut();
    } catch (error) {
      if (options.signal?.aborted || !missingObjects(error)) throw error;
      options.onLine?.(
        `the cached repository of ${resolved.url} lacks objects of ${resolved.sha.slice(0, 10)}: fetching it again`,
      );
      await rm(join(repo, 'repo.git'), { recursive: true, force: true });
      await this.fetchCommit(resolved, options);
      return checkOut();
    }
  }

  private async fetchCommit(resolved: ResolvedRef, options: GitOperationOptions): Promise<void> {
    const repo = this.repoDir(resolved.url);
    const gitDir = await this.ensureBareRepo(repo, options);
    if (await this.hasCommit(gitDir, resolved.sha)) return;
    const run = (args: string[]) =>
      runGit(['--git-dir', gitDir, 'fetch', '--progress', '--no-tags', ...args], {
        signal: options.signal,
        onLine: options.onLine,
        // Always one pack, moved into place whole: below git's unpack limit (100 objects) a fetch
        // writes loose objects one by one, and killed half-way (Ctrl-C) it leaves the commit
        // without some of its files, which the check above then takes for a complete fetch.
        config: { 'fetch.unpackLimit': '1' },
      });
    const keep = `refs/mp/commits/${resolved.sha}`;
    try {
      // By name first: every server serves its tags and branches at depth 1.
      if (resolved.kind === 'tag')
        await run(['--depth', '1', resolved.fetchUrl, `+refs/tags/${resolved.name}:${keep}`]);
      else if (resolved.kind === 'branch') {
        const source = resolved.name === 'HEAD' ? 'HEAD' : `refs/heads/${resolved.name}`;
        await run(['--depth', '1', resolved.fetchUrl, `+${source}:${keep}`]);
      }
      if (!(await this.hasCommit(gitDir, resolved.sha))) {
        // A sha, or a branch that moved since ls-remote: ask for the commit itself (GitHub allows it).
        await run(['--depth', '1', resolved.fetchUrl, resolved.sha]).catch(async (error) => {
          if (options.signal?.aborted || isUnreachable(error)) throw error;
          // Servers that refuse unadvertised shas: fetch the branches' history and find it there.
          await run([resolved.fetchUrl, '+refs/heads/*:refs/mp/history/*']);
        });
      }
    } catch (error) {
      if (error instanceof CancelledError || options.signal?.aborted) throw new CancelledError('sources');
      throw this.fetchError(error, resolved.fetchUrl, options, 'sources');
    }
    if (!(await this.hasCommit(gitDir, resolved.sha))) {
      throw new MpError({
        code: 'SOURCE_FETCH_FAILED',
        message: `${options.label ?? resolved.url}: commit ${resolved.sha} is not in ${resolved.fetchUrl}`,
        plugin: options.plugin,
        step: 'sources',
        hint: 'The mirror may be out of date, or the commit was force-pushed away. Update the mirror or pick another ref.',
      });
    }
    // A ref keeps the commit from being pruned by `git gc` in this shallow repository.
    await runGit(['--git-dir', gitDir, 'update-ref', keep, resolved.sha]);
  }

  private async materialize(
    repo: string,
    sha: string,
    treeDir: string,
    url: string,
    options: GitOperationOptions,
  ): Promise<CheckoutRecord> {
    const temp = join(
      repo,
      'trees',
      `.tmp-${sha.slice(0, 12)}-${process.pid}-${randomBytes(4).toString('hex')}`,
    );
    try {
      await checkoutTree(join(repo, 'repo.git'), sha, temp, options);
      const record: CheckoutRecord = {
        url,
        sha,
        fetchedAt: new Date(this.now()).toISOString(),
        committedAt: await this.commitTime(repo, sha),
        submodules: {},
      };
      await writeFileAtomic(join(temp, CHECKOUT_RECORD), `${JSON.stringify(record, null, 2)}\n`);
      await rm(treeDir, { recursive: true, force: true });
      await rename(temp, treeDir);
      return record;
    } catch (error) {
      await rm(temp, { recursive: true, force: true });
      throw error;
    }
  }

  private async gitlinkSha(repo: string, sha: string, path: string): Promise<string | undefined> {
    const out = await runGit(['--git-dir', join(repo, 'repo.git'), 'ls-tree', sha, '--', path]).catch(
      () => '',
    );
    const m = /^160000 commit ([0-9a-f]{40,64})\t/m.exec(out);
    return m?.[1];
  }
}

/** True when git failed because objects it needs are not in the repository. */
function missingObjects(error: unknown): boolean {
  const text = error instanceof GitCommandError ? error.stderr : '';
  return /unable to read sha1 file|unable to read tree|failed to unpack tree object|bad object|missing (?:blob|tree|object)|is corrupt|did not send all necessary objects/i.test(
    text,
  );
}
