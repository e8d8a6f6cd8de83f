/** One size formatter for core and the CLI: what `mp build`, `mp flash` and `mp clean` print. */
import { describe, expect, it } from 'vitest';
import { formatBytes } from '../src/index.ts';

describe('formatBytes', () => {
  it('writes bytes below 1 KiB as they are', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
  });

  it('uses one decimal for KiB and two for MiB and GiB', () => {
    expect(formatBytes(1024)).toBe('1.0 KiB');
    expect(formatBytes(320 * 1024)).toBe('320.0 KiB');
    expect(formatBytes(1024 ** 2)).toBe('1.00 MiB');
    expect(formatBytes(1.5 * 1024 ** 2)).toBe('1.50 MiB');
    expect(formatBytes(3.2 * 1024 ** 3)).toBe('3.20 GiB');
  });
});
