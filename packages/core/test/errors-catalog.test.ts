/**
 * Every error code is in the catalog with a title, a meaning and a hint, and no test expects a
 * code the catalog does not have (a misspelt code in a test would otherwise pass as "not that").
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ERRORS, isErrorCode, MpError } from '../src/index.ts';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

function testFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...testFiles(path));
    else if (/\.test\.ts$/.test(name)) out.push(path);
  }
  return out;
}

describe('the error catalog', () => {
  it('gives every code a title, a meaning and a hint', () => {
    for (const [code, entry] of Object.entries(ERRORS)) {
      expect(code).toMatch(/^[A-Z][A-Z0-9_]+$/);
      for (const text of [entry.title, entry.message, entry.hint])
        expect(text.length, code).toBeGreaterThan(3);
    }
  });

  it('fills in the hint of an error raised without one', () => {
    const error = new MpError({ code: 'PORT_BUSY', message: 'x' });
    expect(error.hint).toBe(ERRORS.PORT_BUSY.hint);
    expect(new MpError({ code: 'PORT_BUSY', message: 'x', hint: 'close miniterm' }).hint).toBe(
      'close miniterm',
    );
  });

  it('has every code a test expects', () => {
    const expected = new Map<string, string>();
    const patterns = [
      /code\)\.toBe\('([A-Z][A-Z0-9_]+)'\)/g,
      /\bcode: '([A-Z][A-Z0-9_]+)'/g,
      /'\(([A-Z][A-Z0-9_]{3,})\)'/g,
    ];
    for (const dir of ['packages', 'test', 'boards', 'plugins']) {
      for (const file of testFiles(join(ROOT, dir))) {
        const text = readFileSync(file, 'utf8');
        for (const pattern of patterns) for (const m of text.matchAll(pattern)) expected.set(m[1]!, file);
      }
    }
    expect(expected.size).toBeGreaterThan(30);
    // Node's errno codes (EACCES, EBUSY) appear in fakes of system errors; they are not mp's.
    const unknown = [...expected]
      .filter(([code]) => !/^E[A-Z]+$/.test(code) && !isErrorCode(code))
      .map(([code, file]) => `${code} in ${file}`);
    expect(unknown).toEqual([]);
  });
});
