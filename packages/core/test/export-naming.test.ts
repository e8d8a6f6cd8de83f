import { exportFileName, exportTimestamp, micropythonVersionLabel, safeNamePart, uniqueName } from '@mp/core';
import { tempProject } from '@mp/test-utils';
import { describe, expect, it } from 'vitest';

const date = new Date(2026, 10, 21, 23, 33, 12);

describe('exported firmware names', () => {
  it('follow PREFIX-micropython-version-libraries-date-time', () => {
    expect(
      exportFileName({
        exportPrefix: 'ESP8266',
        micropython: { tag: 'v1.28.0' },
        fragments: ['mqtt-as'],
        date,
      }),
    ).toBe('ESP8266-micropython-v1.28.0-mqtt-as-20261121-233312.bin');
  });

  it('list several libraries in order, none at all, and honour the extension (unix: none)', () => {
    expect(
      exportFileName({
        exportPrefix: 'ESP32',
        micropython: { tag: 'v1.27.0' },
        fragments: ['mqtt-as', 'ssd1306'],
        date,
      }),
    ).toBe('ESP32-micropython-v1.27.0-mqtt-as-ssd1306-20261121-233312.bin');
    expect(
      exportFileName({
        exportPrefix: 'UNIX',
        micropython: { tag: 'v1.28.0' },
        fragments: [],
        date,
        extension: '',
      }),
    ).toBe('UNIX-micropython-v1.28.0-20261121-233312');
  });

  it('describe non-release builds like git describe, and dirty local checkouts', () => {
    const sha = '1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b';
    expect(
      micropythonVersionLabel({ sha, version: { major: 1, minor: 29, patch: 0, prerelease: true } }),
    ).toBe('v1.29.0-preview-g1a2b3c4');
    expect(micropythonVersionLabel({ sha, version: { major: 1, minor: 28, patch: 0 }, dirty: true })).toBe(
      'v1.28.0-g1a2b3c4-dirty',
    );
    expect(micropythonVersionLabel({ version: { major: 1, minor: 28, patch: 0 } })).toBe('v1.28.0-local');
  });

  it('keep names portable', () => {
    expect(safeNamePart('my lib/ä')).toBe('my-lib');
    expect(exportTimestamp(new Date(2026, 0, 2, 3, 4, 5))).toBe('20260102-030405');
  });

  it('never reuse a name already in the export folder', () => {
    const dir = tempProject({ 'A-1.bin': 'x', 'A-1-2.bin.json': '{}' }).dir;
    expect(uniqueName(dir, 'B.bin')).toBe('B.bin');
    expect(uniqueName(dir, 'A-1.bin')).toBe('A-1-3.bin');
  });
});
