/**
 * The real upstream kit (`../shared/upstream` beside the clone, or `MP_UPSTREAM_KIT`): shallow bare
 * repositories of MicroPython, micropython-lib, axtls, berkeley-db and mqtt_as with their real
 * commit ids, and the build context of a real ESP8266 toolchain image. The suites fail, loudly, when
 * it is absent: a real tier that silently passes would prove nothing.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { acquireLock } from '@mp/core';
import { ensureBaseImage, imageExists, REPO_ROOT } from '@mp/test-utils';

export const KIT_DIR = resolve(process.env.MP_UPSTREAM_KIT ?? join(REPO_ROOT, '..', 'shared', 'upstream'));

/** Throws a message that says where the kit was looked for and how to point the tests at it. */
export function requireKit(): string {
  if (!existsSync(join(KIT_DIR, 'unpack')) || !existsSync(join(KIT_DIR, 'repos', 'micropython.tar'))) {
    throw new Error(
      `The real upstream kit is not at ${KIT_DIR} (looked for unpack and repos/micropython.tar). ` +
        'These suites build real MicroPython from it: put shared/ beside the clone, or set MP_UPSTREAM_KIT to the kit folder.',
    );
  }
  return KIT_DIR;
}

export interface UnpackedKit {
  /** `…/github.com`: the bare repositories laid out like GitHub. */
  root: string;
  /** `MP_GIT_MIRRORS` that sends mp's default URLs into the kit. */
  mirrors: string;
  /** A commit id in one of the kit's repositories (`micropython/micropython`, `v1.28.0`). */
  commit(repo: string, ref: string): string;
  /** Tags of the kit's MicroPython. */
  tags(): string[];
}

/** Unpacks the kit once per machine into the temp folder (its tarballs are read-only inputs). */
export async function unpackKit(): Promise<UnpackedKit> {
  const kit = requireKit();
  const key = createHash('sha256')
    .update(
      readdirSync(join(kit, 'repos'))
        .map((f) => `${f}:${statSync(join(kit, 'repos', f)).size}`)
        .join('\n'),
    )
    .digest('hex')
    .slice(0, 12);
  const dir = join(tmpdir(), `mp-upstream-kit-${key}`);
  const release = await acquireLock(join(tmpdir(), 'mp-test-locks', `upstream-kit-${key}`), { pollMs: 250 });
  let out: string;
  try {
    out = execFileSync('bash', [join(kit, 'unpack'), dir], { encoding: 'utf8' });
  } finally {
    await release();
  }
  const mirrors = /MP_GIT_MIRRORS='([^']+)'/.exec(out)?.[1];
  if (!mirrors) throw new Error(`${join(kit, 'unpack')} printed no MP_GIT_MIRRORS:\n${out}`);
  const root = join(dir, 'github.com');
  const git = (repo: string, args: string[]) =>
    execFileSync('git', ['-C', join(root, `${repo}.git`), ...args], { encoding: 'utf8' }).trim();
  return {
    root,
    mirrors,
    commit: (repo, ref) => git(repo, ['rev-parse', `${ref}^{commit}`]),
    tags: () => git('micropython/micropython', ['tag', '--list']).split('\n').filter(Boolean),
  };
}

/** Files of a build context, hashed with their names, so an edited context gets a new tag. */
function contextHash(dir: string): string {
  const hash = createHash('sha256');
  const walk = (current: string) => {
    for (const name of readdirSync(current).sort()) {
      const full = join(current, name);
      if (statSync(full).isDirectory()) walk(full);
      else
        hash
          .update(`${relative(dir, full)}\0`)
          .update(readFileSync(full))
          .update('\0');
    }
  };
  walk(dir);
  return hash.digest('hex').slice(0, 12);
}

/**
 * The kit's real ESP8266 toolchain (Debian's gcc-xtensa-lx106 + the NONOS SDK), built once per
 * machine and tagged by its context's hash; later runs reuse it.
 */
export async function ensureEsp8266Toolchain(): Promise<string> {
  const context = join(requireKit(), 'esp8266-toolchain');
  const tag = `mp-test/esp8266-toolchain:${contextHash(context)}`;
  if (imageExists(tag)) return tag;
  const release = await acquireLock(join(tmpdir(), 'mp-test-locks', 'esp8266-toolchain'), { pollMs: 500 });
  try {
    if (imageExists(tag)) return tag;
    ensureBaseImage();
    const build = spawnSync('docker', ['build', '-q', '-t', tag, context], { encoding: 'utf8' });
    if (build.status !== 0)
      throw new Error(
        `docker build of ${context} failed (exit ${build.status}):\n${build.stderr.slice(-4000)}`,
      );
    return tag;
  } finally {
    await release();
  }
}

/**
 * A checksum of every file below `dir` (names, modes and contents), leaving out `except`
 * (relative paths, such as submodules a build fetched on purpose).
 */
export function treeChecksum(dir: string, except: string[] = []): string {
  const hash = createHash('sha256');
  const walk = (current: string) => {
    for (const entry of readdirSync(current, { withFileTypes: true }).sort((a, b) =>
      a.name.localeCompare(b.name),
    )) {
      const full = join(current, entry.name);
      const rel = relative(dir, full);
      if (except.includes(rel)) continue;
      if (entry.isDirectory()) {
        hash.update(`d ${rel}\n`);
        walk(full);
      } else if (entry.isFile()) {
        hash.update(`f ${rel} ${statSync(full).mode}\n`).update(readFileSync(full));
      } else hash.update(`o ${rel}\n`);
    }
  };
  walk(dir);
  return hash.digest('hex');
}
