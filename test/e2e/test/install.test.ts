/**
 * mp as a user gets it from npm: the publishable packages are built and packed exactly as
 * `pnpm publish` would, installed with plain npm into a project outside this repository, and the
 * installed `mp` (JavaScript from dist/, no TypeScript under node_modules) finds its plugins and
 * plans a build. A plugin scaffolded there passes the installed conformance suite.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFixtureRepos, type FixtureRepos, REPO_ROOT } from '@mp/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const PACKAGES = [
  'packages/core',
  'packages/cli',
  'packages/plugin-testing',
  'boards/esp8266-d1mini',
  'boards/esp32-generic',
  'boards/unix',
  'plugins/mqtt_as',
];

let work: string;
let project: string;
let repos: FixtureRepos;

function mp(args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync(join(project, 'node_modules/.bin/mp'), args, {
    cwd: project,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1', CI: '1', MP_CACHE_DIR: join(work, 'cache'), ...env },
  });
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'mp-install-'));
  project = join(work, 'my-firmware');
  repos = createFixtureRepos();
  const packs = join(work, 'packs');
  for (const dir of PACKAGES) {
    const cwd = join(REPO_ROOT, dir);
    execFileSync('pnpm', ['run', 'build'], { cwd, stdio: 'ignore' });
    execFileSync('pnpm', ['pack', '--pack-destination', packs], { cwd, stdio: 'ignore' });
  }
  execFileSync('mkdir', ['-p', join(project, 'modules')]);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'my-firmware', private: true }));
  writeFileSync(join(project, 'modules/app.py'), 'print("hello")\n');
  const tarballs = readdirSync(packs).map((f) => join(packs, f));
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', ...tarballs], {
    cwd: project,
    stdio: 'ignore',
  });
}, 300_000);

afterAll(() => {
  repos?.cleanup();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('mp installed from npm into a project outside the repository', () => {
  it('lists the first-party boards and libraries from node_modules', () => {
    const boards = mp(['boards']);
    expect(boards.status, boards.stderr).toBe(0);
    expect(boards.stdout).toMatch(/^esp8266-d1mini\s+.*@mp\/board-esp8266-d1mini/m);
    expect(boards.stdout).toMatch(/^unix\s+.*@mp\/board-unix/m);
    expect(mp(['libs']).stdout).toMatch(/^mqtt_as\s/m);
  });

  it('plans the default build: the generated manifest freezes mqtt_as and the project modules', () => {
    const r = mp(['build', '--print-manifest'], { MP_GIT_MIRRORS: repos.mirrorEnv });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('include("$(BOARD_DIR)/manifest_2MiB.py")');
    expect(r.stdout).toContain(
      'package("mqtt_as", files=["__init__.py", "mqtt_v5_properties.py"], base_path="/mp/libs/mqtt_as")',
    );
    expect(r.stdout).toContain('module("app.py", base_path="/mp/modules")');
  });

  it('reads an mp.config.ts that imports @mp/core', () => {
    writeFileSync(
      join(project, 'mp.config.ts'),
      "import { defineConfig } from '@mp/core';\nexport default defineConfig({ board: 'unix', libraries: [] });\n",
    );
    const r = mp(['build', '--print-manifest'], { MP_GIT_MIRRORS: repos.mirrorEnv });
    rmSync(join(project, 'mp.config.ts'));
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('$(VARIANT_DIR)/manifest.py');
    expect(r.stdout).not.toContain('package("mqtt_as"');
  });

  it('scaffolds a library whose conformance test passes with the installed @mp/plugin-testing', () => {
    const created = mp(['new', 'library', 'blink_lib']);
    const dir = join(project, 'plugins', 'blink_lib');
    try {
      expect(created.status, created.stderr).toBe(0);
      expect(readFileSync(join(dir, 'test/conformance.test.ts'), 'utf8')).toContain(
        "from '@mp/plugin-testing'",
      );
      // Outside the mp repository there is no workspace to take @mp/* from.
      expect(readFileSync(join(dir, 'package.json'), 'utf8')).not.toContain('workspace:');
      // vitest came with @mp/plugin-testing (its peer dependency, which npm installs). This
      // run's VITEST_* variables would make the child think it is one of this run's workers.
      const env = Object.fromEntries(
        Object.entries(process.env).filter(([key]) => !key.startsWith('VITEST')),
      );
      const run = spawnSync(join(project, 'node_modules/.bin/vitest'), ['run'], {
        cwd: dir,
        encoding: 'utf8',
        env: { ...env, NO_COLOR: '1', CI: '1' },
      });
      expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
      expect(run.stdout).toMatch(/Tests\s+4 passed/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
