/** The plugin contract as mp checks it: every problem at once, each with its key path. */
import { describe, expect, it } from 'vitest';
import { defineBoard, defineLibrary, ValidationError, validateConfig, validatePlugin } from '../src/index.ts';

const library = {
  kind: 'library',
  id: 'my_lib',
  title: 'Mine',
  nameFragment: 'my-lib',
  source: { git: 'https://example.com/my_lib.git' },
  freeze: [{ module: 'my_lib.py' }],
};

function issuesOf(check: () => unknown): Array<[string, string]> {
  try {
    check();
  } catch (error) {
    if (error instanceof ValidationError) return error.issues.map((i) => [i.path, i.message]);
    throw error;
  }
  return [];
}

describe('plugin validation', () => {
  it('takes a valid plugin as it is, hooks included', () => {
    const plugin = defineLibrary({
      ...library,
      kind: undefined,
      source: { path: '/src' },
      resolve: () => ({}),
    });
    expect(validatePlugin(plugin, { packageName: '@x/lib' })).toBe(plugin);
  });

  it('names every unknown key, not only the first, with the key it was probably meant to be', () => {
    const issues = issuesOf(() =>
      validatePlugin(
        { ...library, titel: 'x', nameFragmnt: 'y', freeze: [{ package: 'p', fils: ['a.py'] }] },
        { packageName: '@x/lib' },
      ),
    );
    expect(issues).toEqual([
      ['freeze[0].fils', 'is not a known key (did you mean "files"?)'],
      ['titel', 'is not a known key (did you mean "title"?)'],
      ['nameFragmnt', 'is not a known key (did you mean "nameFragment"?)'],
    ]);
  });

  it('checks that hooks are functions and that a freeze entry is a package or a module, not both', () => {
    const issues = issuesOf(() =>
      validatePlugin(
        { ...library, resolve: 'later', freeze: [{ package: 'p', module: 'm.py' }] },
        { packageName: 'mp.config' },
      ),
    );
    expect(issues).toEqual([
      ['freeze[0]', 'must have exactly one of package (a folder name) or module (a .py file name)'],
      ['resolve', 'must be a function, got string "later"'],
    ]);
  });

  it('checks a board that extends another loosely: known keys, id, title and what it extends', () => {
    const extension = defineBoard({
      extends: 'esp8266-d1mini',
      id: 'd1-1m',
      title: '1 MB',
      variant: 'FLASH_1M',
    });
    expect(validatePlugin(extension, { packageName: '@x/board' })).toBe(extension);
    const issues = issuesOf(() =>
      validatePlugin(
        { kind: 'board', extends: 7, id: 'D1', title: 'x', varaint: 'A' },
        { packageName: '@x/b' },
      ),
    );
    expect(issues.map(([path]) => path)).toEqual(['id', 'extends', 'varaint']);
  });
});

describe('config validation', () => {
  it('reports an empty side of a mirror among the other problems of the file', () => {
    const issues = issuesOf(() =>
      validateConfig({ mirrors: { 'https://github.com/': ' ' }, flash: { prot: 'x', baud: 115200.5 } }),
    );
    expect(issues).toEqual([
      [
        'mirrors',
        'entry "https://github.com/": " " has an empty side, which would turn git URLs relative; give both sides a URL prefix',
      ],
      ['flash.baud', 'must be a whole number, got 115200.5'],
      ['flash.prot', 'is not a known key (did you mean "port"?)'],
    ]);
  });
});
