/**
 * Discovery reads the usual pnpm-workspace.yaml and `packages/*` patterns without js-yaml and
 * tinyglobby (start-up time). Whatever the fast readers take, they must read as those libraries do;
 * whatever they cannot, they must leave to them.
 */
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempProject } from '@mp/test-utils';
import { load } from 'js-yaml';
import { globSync } from 'tinyglobby';
import { describe, expect, it } from 'vitest';
import { simpleWorkspacePatterns, workspacePackageDirs } from '../src/plugin/discovery.ts';

const YAML = [
  'packages:\n  - packages/*\n  - boards/*\n',
  'packages:\n  - \'packages/*\'\n  - "plugins/*" # local plugins\n',
  'packages:  # the workspace\n\n  - packages/*\n\n  # a comment\n  - test/*\nonlyBuiltDependencies:\n  - esbuild\n',
  'catalog:\n  x: 1\npackages:\n    - a/*\n    - b\n',
  'packages:\r\n  - packages/*\r\n',
  // Left to js-yaml: a flow list, a document marker, a name with a colon, mixed indents, anchors.
  'packages: [packages/*, boards/*]\n',
  '---\npackages:\n  - packages/*\n',
  'packages:\n  - a: b\n',
  'packages:\n  - a/*\n   - b/*\n',
  'base: &p packages/*\npackages:\n  - *p\n',
  'packages:\n  - "quoted \\"escape\\""\n',
  '"packages":\n  - x/*\n',
];

describe('the workspace fast paths', () => {
  it('read every pnpm-workspace.yaml they take as js-yaml does', () => {
    let taken = 0;
    for (const text of YAML) {
      const fast = simpleWorkspacePatterns(text);
      if (fast === undefined) continue;
      taken++;
      expect(fast, JSON.stringify(text)).toEqual((load(text) as { packages: string[] }).packages);
    }
    expect(taken).toBe(5);
  });

  it('find the packages of simple patterns as tinyglobby does (dot folders, node_modules, symlinks)', () => {
    const root = tempProject({
      'pnpm-workspace.yaml': 'packages:\n  - packages/*\n  - plugins/mp-*\n  - tools/one\n',
      'package.json': '{"name":"root"}',
      'packages/a/package.json': '{}',
      'packages/b/package.json': '{}',
      'packages/no-manifest/readme.md': '',
      'packages/.hidden/package.json': '{}',
      'packages/node_modules/package.json': '{}',
      'plugins/mp-x/package.json': '{}',
      'plugins/other/package.json': '{}',
      'tools/one/package.json': '{}',
    });
    mkdirSync(root.path('elsewhere/linked'), { recursive: true });
    writeFileSync(root.path('elsewhere/linked/package.json'), '{}');
    symlinkSync(root.path('elsewhere/linked'), join(root.dir, 'packages', 'linked'));
    const expected = globSync(
      ['packages/*/package.json', 'plugins/mp-*/package.json', 'tools/one/package.json'],
      {
        cwd: root.dir,
        ignore: ['**/node_modules/**', '**/bower_components/**'],
        expandDirectories: false,
        absolute: true,
      },
    )
      .map((file) => file.replace(/\/package\.json$/, ''))
      .sort();
    expect(workspacePackageDirs(root.dir)).toEqual(expected);
    expect(expected.map((dir) => dir.slice(root.dir.length + 1))).toEqual([
      'packages/a',
      'packages/b',
      'packages/linked',
      'plugins/mp-x',
      'tools/one',
    ]);
  });
});
