import {
  applyMirrors,
  newestStableTag,
  parseLsRemote,
  recentStableTags,
  repoSlug,
  resolveSubmoduleUrl,
} from '@mp/core';
import { describe, expect, it } from 'vitest';

describe('stable tag detection', () => {
  it('takes the highest vX.Y.Z and ignores previews, release candidates and other tags', () => {
    expect(newestStableTag(['v1.27.0', 'v1.28.0', 'v1.29.0-preview', 'v1.9.4', 'v2.0.0-rc1', 'latest'])).toBe(
      'v1.28.0',
    );
    expect(newestStableTag(['v1.9.4', 'v1.10.0'])).toBe('v1.10.0');
    expect(newestStableTag(['v1.29.0-preview', 'nightly'])).toBeUndefined();
    expect(recentStableTags(['v1.9.4', 'v1.28.0', 'v1.27.0', 'v1.28.0-preview'], 2)).toEqual([
      'v1.28.0',
      'v1.27.0',
    ]);
  });

  it('reads ls-remote output, peeling annotated tags to their commits', () => {
    const refs = parseLsRemote(
      [
        `${'a'.repeat(40)}\tHEAD`,
        `${'a'.repeat(40)}\trefs/heads/master`,
        `${'b'.repeat(40)}\trefs/tags/v1.28.0`,
        `${'c'.repeat(40)}\trefs/tags/v1.28.0^{}`,
        `${'d'.repeat(40)}\trefs/tags/v1.29.0-preview`,
      ].join('\n'),
    );
    expect(refs.tags).toEqual({ 'v1.28.0': 'c'.repeat(40), 'v1.29.0-preview': 'd'.repeat(40) });
    expect(refs.branches).toEqual({ HEAD: 'a'.repeat(40), master: 'a'.repeat(40) });
  });
});

describe('mirrors', () => {
  it('rewrites the longest matching prefix', () => {
    const mirrors = {
      'https://github.com/': 'https://git.example.com/gh/',
      'https://github.com/micropython/micropython.git': 'file:///srv/mpy.git',
    };
    expect(applyMirrors('https://github.com/micropython/micropython.git', mirrors)).toBe(
      'file:///srv/mpy.git',
    );
    expect(applyMirrors('https://github.com/peterhinch/micropython-mqtt.git', mirrors)).toBe(
      'https://git.example.com/gh/peterhinch/micropython-mqtt.git',
    );
    expect(applyMirrors('https://gitlab.com/x/y.git', mirrors)).toBe('https://gitlab.com/x/y.git');
    expect(applyMirrors('https://gitlab.com/x/y.git', undefined)).toBe('https://gitlab.com/x/y.git');
  });

  it('resolves relative submodule URLs against the superproject', () => {
    expect(
      resolveSubmoduleUrl('https://github.com/micropython/micropython.git', '../micropython-lib.git'),
    ).toBe('https://github.com/micropython/micropython-lib.git');
    expect(resolveSubmoduleUrl('https://github.com/a/b.git', 'https://x/y.git')).toBe('https://x/y.git');
  });

  it('names cache folders readably', () => {
    expect(repoSlug('https://github.com/micropython/micropython.git')).toBe('micropython-micropython');
    expect(repoSlug('git@github.com:peterhinch/micropython-mqtt.git')).toBe('peterhinch-micropython-mqtt');
  });
});
