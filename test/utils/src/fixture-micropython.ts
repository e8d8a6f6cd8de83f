/**
 * Fixture git repositories, written by code (nothing committed as a blob):
 *
 *   micropython.git      tags v1.27.0, v1.28.0 (annotated, like upstream) and v1.29.0-preview on master;
 *                        submodules lib/micropython-lib, lib/axtls, lib/berkeley-db-1.xx
 *   micropython-lib.git, axtls.git, berkeley-db-1.xx     the submodules' repositories
 *   micropython-mqtt.git mqtt_as laid out as peterhinch/micropython-mqtt (master)
 *
 * `mirrors` maps the real GitHub URLs to these, so tests exercise mp's defaults through
 * MP_GIT_MIRRORS. See fixture-micropython-files.ts for what the MicroPython fixture can build.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  AXTLS_FILES,
  BERKELEY_DB_FILES,
  type FixtureVersion,
  MICROPYTHON_LIB_FILES,
  MQTT_AS_FILES,
  micropythonFiles,
} from './fixture-micropython-files.ts';

export const UPSTREAM = {
  micropython: 'https://github.com/micropython/micropython.git',
  micropythonLib: 'https://github.com/micropython/micropython-lib.git',
  axtls: 'https://github.com/micropython/axtls.git',
  berkeleyDb: 'https://github.com/micropython/berkeley-db-1.xx',
  mqtt: 'https://github.com/peterhinch/micropython-mqtt.git',
} as const;

export interface FixtureRepo {
  path: string;
  /** `file://` URL of the repository. */
  url: string;
  /** Commit of the default branch. */
  head: string;
}

export interface FixtureRepos {
  dir: string;
  micropython: FixtureRepo & { tags: Record<string, string> };
  micropythonLib: FixtureRepo;
  axtls: FixtureRepo;
  berkeleyDb: FixtureRepo;
  mqtt: FixtureRepo;
  /** Upstream URL → fixture URL. */
  mirrors: Record<string, string>;
  /** The same as an `MP_GIT_MIRRORS` value. */
  mirrorEnv: string;
  /** Commits files to a repository's default branch; returns the new commit. */
  commit(repo: FixtureRepo, files: Record<string, string>, message: string): string;
  cleanup(): void;
}

const GIT_IDENTITY = [
  '-c',
  'user.name=mp fixture',
  '-c',
  'user.email=fixture@mp.invalid',
  '-c',
  'init.defaultBranch=master',
  '-c',
  'commit.gpgsign=false',
  '-c',
  'tag.gpgsign=false',
];

function git(cwd: string, args: string[]): string {
  return execFileSync('git', [...GIT_IDENTITY, ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, GIT_TERMINAL_PROMPT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  }).trim();
}

function writeFiles(root: string, files: Record<string, string>): void {
  for (const [path, content] of Object.entries(files)) {
    const file = join(root, path);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, content);
  }
}

function createRepo(path: string, files: Record<string, string>, message: string): FixtureRepo {
  mkdirSync(path, { recursive: true });
  git(path, ['init', '-q']);
  writeFiles(path, files);
  git(path, ['add', '-A']);
  git(path, ['commit', '-q', '-m', message]);
  return { path, url: pathToFileURL(path).href, head: git(path, ['rev-parse', 'HEAD']) };
}

const VERSIONS: Array<{ tag: string; version: FixtureVersion }> = [
  { tag: 'v1.27.0', version: { major: 1, minor: 27, micro: 0, prerelease: false } },
  { tag: 'v1.28.0', version: { major: 1, minor: 28, micro: 0, prerelease: false } },
  { tag: 'v1.29.0-preview', version: { major: 1, minor: 29, micro: 0, prerelease: true } },
];

/** Creates all fixture repositories under `dir` (a new temporary folder by default). */
export function createFixtureRepos(dir = mkdtempSync(join(tmpdir(), 'mp-fixture-repos-'))): FixtureRepos {
  const micropythonLib = createRepo(
    join(dir, 'micropython-lib.git'),
    MICROPYTHON_LIB_FILES,
    'micropython-lib fixture',
  );
  const axtls = createRepo(join(dir, 'axtls.git'), AXTLS_FILES, 'axtls fixture');
  const berkeleyDb = createRepo(join(dir, 'berkeley-db-1.xx'), BERKELEY_DB_FILES, 'berkeley-db fixture');
  const mqtt = createRepo(join(dir, 'micropython-mqtt.git'), MQTT_AS_FILES, 'mqtt_as fixture');

  const mpPath = join(dir, 'micropython.git');
  mkdirSync(mpPath, { recursive: true });
  git(mpPath, ['init', '-q']);
  const submodules = [
    { path: 'lib/axtls', url: UPSTREAM.axtls, sha: axtls.head },
    { path: 'lib/berkeley-db-1.xx', url: UPSTREAM.berkeleyDb, sha: berkeleyDb.head },
    { path: 'lib/micropython-lib', url: UPSTREAM.micropythonLib, sha: micropythonLib.head },
  ];
  const gitmodules = submodules
    .map((s) => `[submodule "${s.path}"]\n\tpath = ${s.path}\n\turl = ${s.url}\n`)
    .join('');
  const tags: Record<string, string> = {};
  for (const { tag, version } of VERSIONS) {
    writeFiles(mpPath, { ...micropythonFiles(version), '.gitmodules': gitmodules });
    git(mpPath, ['add', '-A']);
    // Gitlinks, as `git submodule add` would record them (without cloning anything).
    for (const s of submodules)
      git(mpPath, ['update-index', '--add', '--cacheinfo', `160000,${s.sha},${s.path}`]);
    git(mpPath, ['commit', '-q', '-m', `all: Bump version to ${tag}.`]);
    if (version.prerelease) git(mpPath, ['tag', tag]);
    else git(mpPath, ['tag', '-a', tag, '-m', `MicroPython ${tag}`]);
    tags[tag] = git(mpPath, ['rev-parse', 'HEAD']);
  }
  const micropython = {
    path: mpPath,
    url: pathToFileURL(mpPath).href,
    head: git(mpPath, ['rev-parse', 'HEAD']),
    tags,
  };

  const mirrors: Record<string, string> = {
    [UPSTREAM.micropython]: micropython.url,
    [UPSTREAM.micropythonLib]: micropythonLib.url,
    [UPSTREAM.axtls]: axtls.url,
    [UPSTREAM.berkeleyDb]: berkeleyDb.url,
    [UPSTREAM.mqtt]: mqtt.url,
  };
  return {
    dir,
    micropython,
    micropythonLib,
    axtls,
    berkeleyDb,
    mqtt,
    mirrors,
    mirrorEnv: Object.entries(mirrors)
      .map(([from, to]) => `${from}=${to}`)
      .join(';'),
    commit(repo, files, message) {
      writeFiles(repo.path, files);
      git(repo.path, ['add', '-A']);
      git(repo.path, ['commit', '-q', '-m', message]);
      repo.head = git(repo.path, ['rev-parse', 'HEAD']);
      return repo.head;
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
