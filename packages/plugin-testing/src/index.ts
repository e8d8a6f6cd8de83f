/**
 * The plugin conformance suite every board and library package runs from its own vitest tests.
 * It checks the contract, the package.json declaration, discovery, and the resolve hook against
 * several MicroPython releases, so a plugin that passes here will load and plan builds in mp.
 *
 * @example
 * // test/conformance.test.ts of a board package
 * import { fileURLToPath } from 'node:url';
 * import { describeBoardConformance } from '@mp/plugin-testing';
 * import plugin from '../src/index.ts';
 *
 * describeBoardConformance(plugin, fileURLToPath(new URL('..', import.meta.url)));
 */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import {
  type BoardPlugin,
  type LibraryPlugin,
  type MicroPythonSource,
  PluginRegistry,
  parseReleaseTag,
  silentLogger,
  validatePlugin,
} from '@mp/core';
import { afterAll, describe, expect, it } from 'vitest';

const RELEASES = ['v1.20.0', 'v1.21.0', 'v1.28.0', undefined] as const;

function fakeMicroPython(tag: string | undefined, dir: string): MicroPythonSource {
  const version = tag ? parseReleaseTag(tag) : undefined;
  return {
    dir,
    ref: tag ?? 'master',
    sha: '0'.repeat(40),
    ...(tag ? { tag } : {}),
    ...(version ? { version } : {}),
  };
}

/**
 * Checks the package.json declaration, then discovers the package the way a user's project finds
 * a published plugin: as a dependency under node_modules (here a link to packageDir in a scratch
 * project), wherever the package itself lives.
 */
function discoverAsDependency(
  plugin: BoardPlugin | LibraryPlugin,
  packageDir: string,
  scratch: string,
): PluginRegistry {
  const pkg = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8'));
  expect(pkg.mp, 'package.json must declare "mp": { board | library: id }').toEqual({
    [plugin.kind]: plugin.id,
  });
  const name = typeof pkg.name === 'string' ? pkg.name : 'plugin-under-test';
  const project = join(scratch, 'project');
  mkdirSync(join(project, 'node_modules', dirname(name)), { recursive: true });
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({ name: 'project', dependencies: { [name]: '*' } }),
  );
  // A junction on Windows needs no privilege; elsewhere the type is ignored.
  symlinkSync(resolve(packageDir), join(project, 'node_modules', name), 'junction');
  const registry = PluginRegistry.create({ roots: [project] });
  expect(registry.list(plugin.kind).map((l) => l.id)).toContain(plugin.id);
  return registry;
}

export function describeBoardConformance(plugin: BoardPlugin, packageDir: string): void {
  describe(`board plugin ${plugin.id} conforms`, () => {
    const scratch = mkdtempSync(join(tmpdir(), 'mp-conformance-'));
    afterAll(() => rmSync(scratch, { recursive: true, force: true }));

    it('keeps the board contract', () => {
      expect(() => validatePlugin(plugin, { packageName: plugin.id }, 'board')).not.toThrow();
    });

    it('is declared in package.json and found by discovery', async () => {
      const registry = discoverAsDependency(plugin, packageDir, scratch);
      const loaded = await registry.load('board', plugin.id);
      expect(loaded.id).toBe(plugin.id);
    });

    it('has a toolchain that can be had: an image to pull or a Dockerfile that exists', () => {
      if (plugin.toolchain.dockerfile) expect(existsSync(plugin.toolchain.dockerfile)).toBe(true);
      else expect(plugin.toolchain.image).toMatch(/^[a-z0-9][\w./-]*(:[\w.-]+)?$/);
    });

    for (const tag of RELEASES) {
      it(`resolves a valid target for MicroPython ${tag ?? 'master (no release version)'}`, async () => {
        const dir = join(scratch, tag ?? 'master');
        mkdirSync(dir, { recursive: true });
        const patch =
          (await plugin.resolve?.({
            micropython: fakeMicroPython(tag, dir),
            logger: silentLogger,
            signal: new AbortController().signal,
          })) ?? {};
        const resolved = { ...plugin, ...patch };
        expect(() => validatePlugin(resolved, { packageName: plugin.id }, 'board')).not.toThrow();
        expect(resolved.artifacts[resolved.firmware]).toBeTruthy();
        if (plugin.chip) expect(resolved.flash?.segments.length).toBeGreaterThan(0);
      });
    }
  });
}

export function describeLibraryConformance(plugin: LibraryPlugin, packageDir: string): void {
  describe(`library plugin ${plugin.id} conforms`, () => {
    const scratch = mkdtempSync(join(tmpdir(), 'mp-conformance-'));
    afterAll(() => rmSync(scratch, { recursive: true, force: true }));

    it('keeps the library contract', () => {
      expect(() => validatePlugin(plugin, { packageName: plugin.id }, 'library')).not.toThrow();
    });

    it('is declared in package.json and found by discovery', async () => {
      const registry = discoverAsDependency(plugin, packageDir, scratch);
      expect((await registry.load('library', plugin.id)).id).toBe(plugin.id);
    });

    it('names a source that exists (local path) or a git URL', () => {
      if ('path' in plugin.source) expect(existsSync(plugin.source.path)).toBe(true);
      else expect(plugin.source.git).toMatch(/^(https?|ssh|git|file):\/\/|^git@/);
    });

    it('resolves valid freeze entries and exports against a fetched source', async () => {
      const sourceDir = 'path' in plugin.source ? plugin.source.path : join(scratch, 'source');
      mkdirSync(sourceDir, { recursive: true });
      const patch =
        (await plugin.resolve?.({
          sourceDir,
          micropython: fakeMicroPython('v1.28.0', scratch),
          logger: silentLogger,
          signal: new AbortController().signal,
        })) ?? {};
      const resolved = { ...plugin, ...patch };
      expect(() => validatePlugin(resolved, { packageName: plugin.id }, 'library')).not.toThrow();
      const names = (resolved.exports ?? []).map((e) => e.as);
      expect(new Set(names).size, 'exported file names must be unique').toBe(names.length);
    });
  });
}
