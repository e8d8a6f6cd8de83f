/**
 * A commit's files written into a folder of the cache without a .git (a private index, then
 * checkout-index), the record that says a tree is complete, and its submodules' URLs.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { runGit } from './git.ts';
import { CHECKOUT_RECORD, type CheckoutRecord, type GitOperationOptions } from './git-types.ts';

/** Writes the files of `sha` into `dir` (created), without a .git: read-tree into a private index, then checkout-index. */
export async function checkoutTree(
  gitDir: string,
  sha: string,
  dir: string,
  options: GitOperationOptions,
): Promise<void> {
  await mkdir(dir, { recursive: true });
  const index = `${dir}.index`;
  const env = { GIT_INDEX_FILE: index };
  try {
    await runGit(['--git-dir', gitDir, '--work-tree', dir, 'read-tree', sha], {
      env,
      signal: options.signal,
    });
    await runGit(['--git-dir', gitDir, '--work-tree', dir, 'checkout-index', '--all', '--force'], {
      env,
      signal: options.signal,
    });
  } finally {
    await rm(index, { force: true });
  }
}

export async function readCheckoutRecord(treeDir: string): Promise<CheckoutRecord | undefined> {
  try {
    return JSON.parse(await readFile(join(treeDir, CHECKOUT_RECORD), 'utf8')) as CheckoutRecord;
  } catch {
    return undefined;
  }
}

/** path → url from a checkout's .gitmodules. */
export async function submoduleUrls(treeDir: string): Promise<Record<string, string>> {
  const file = join(treeDir, '.gitmodules');
  if (!existsSync(file)) return {};
  const out = await runGit(['config', '--file', file, '--get-regexp', '^submodule\\..*\\.(path|url)$']).catch(
    () => '',
  );
  const byName: Record<string, { path?: string; url?: string }> = {};
  for (const line of out.split('\n')) {
    const m = /^submodule\.(.+)\.(path|url) (.*)$/.exec(line.trim());
    if (!m) continue;
    const entry = byName[m[1]!] ?? {};
    entry[m[2] as 'path' | 'url'] = m[3];
    byName[m[1]!] = entry;
  }
  const urls: Record<string, string> = {};
  for (const { path, url } of Object.values(byName)) if (path && url) urls[path] = url;
  return urls;
}

// ── leftovers of killed processes ────────────────────────────────────────────────────────────
