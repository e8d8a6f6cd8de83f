/**
 * The conformance suite is itself tested: vitest runs it on purpose-made plugins (test/fixtures),
 * in a child process like a plugin package's own `vitest run`. A plugin that keeps the contract
 * passes every check; each broken one fails the check about its fault, and only that one.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const FIXTURES = fileURLToPath(new URL('fixtures', import.meta.url));
const VITEST = join(dirname(createRequire(import.meta.url).resolve('vitest/package.json')), 'vitest.mjs');

interface JsonReport {
  testResults: Array<{ name: string; assertionResults: Array<{ title: string; status: string }> }>;
}

/** Fixture folder (`boards/good-board`) → check title → passed | failed. */
const outcomes = new Map<string, Map<string, string>>();

beforeAll(() => {
  const scratch = mkdtempSync(join(tmpdir(), 'mp-plugin-testing-'));
  try {
    const report = join(scratch, 'report.json');
    // This run's own VITEST_* variables would make the child think it is one of its workers.
    const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('VITEST')));
    const run = spawnSync(
      process.execPath,
      [VITEST, 'run', '--root', FIXTURES, '--reporter=json', `--outputFile=${report}`],
      { cwd: FIXTURES, env: { ...env, NO_COLOR: '1' }, encoding: 'utf8' },
    );
    expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(1);
    const parsed = JSON.parse(readFileSync(report, 'utf8')) as JsonReport;
    for (const file of parsed.testResults) {
      const fixture = dirname(relative(FIXTURES, file.name)).split(sep).join('/');
      outcomes.set(fixture, new Map(file.assertionResults.map((a) => [a.title, a.status])));
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}, 120_000);

function failed(fixture: string): string[] {
  const checks = outcomes.get(fixture);
  expect(checks, `no report for ${fixture}`).toBeDefined();
  return [...(checks ?? [])].filter(([, status]) => status !== 'passed').map(([title]) => title);
}

describe('the board conformance suite', () => {
  it('passes a board that keeps the contract, on every check', () => {
    expect(failed('boards/good-board')).toEqual([]);
    expect([...(outcomes.get('boards/good-board')?.keys() ?? [])]).toEqual([
      'keeps the board contract',
      'is declared in package.json and found by discovery',
      'has a toolchain that can be had: an image to pull or a Dockerfile that exists',
      'resolves a valid target for MicroPython v1.20.0',
      'resolves a valid target for MicroPython v1.21.0',
      'resolves a valid target for MicroPython v1.28.0',
      'resolves a valid target for MicroPython master (no release version)',
    ]);
  });

  it('fails a board whose package.json does not declare it', () => {
    expect(failed('boards/undeclared-board')).toEqual(['is declared in package.json and found by discovery']);
  });

  it('fails a board whose resolve hook breaks it for one MicroPython release only', () => {
    expect(failed('boards/old-release-board')).toEqual(['resolves a valid target for MicroPython v1.20.0']);
  });
});

describe('the library conformance suite', () => {
  it('passes a library that keeps the contract, on every check', () => {
    expect(failed('plugins/good_lib')).toEqual([]);
    expect(outcomes.get('plugins/good_lib')?.size).toBe(4);
  });

  it('fails a library that exports two files under one name', () => {
    expect(failed('plugins/clashing_lib')).toEqual([
      'resolves valid freeze entries and exports against a fetched source',
    ]);
  });
});
