/**
 * A clone's `mp` runs a bundle of the CLI and core while every file it was made from keeps its
 * mtime (src/bundle.ts, bin/mp.js): the bundle answers as the sources do; a source touched since
 * makes mp run the sources and ask for a new bundle as it exits, which the next run uses.
 * Which one ran is read from Node's own module log (NODE_DEBUG=esm).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { BUNDLE_ROOT, type BundleRecord, ensureBundle, PNPM_STATE } from '../src/bundle.ts';

const MP = fileURLToPath(new URL('../bin/mp.js', import.meta.url));

/** `mp boards` and what it loaded: the bundle's folder, or 'sources'. */
function mpBoards(env: NodeJS.ProcessEnv = {}): { stdout: string; ran: string } {
  const run = spawnSync(process.execPath, [MP, 'boards'], {
    encoding: 'utf8',
    // Node's module log of the sources is megabytes.
    maxBuffer: 256 * 1024 * 1024,
    env: { ...process.env, NODE_DEBUG: 'esm', NO_COLOR: '1', ...env },
  });
  expect(run.status, run.stderr).toBe(0);
  const bundled = /mp-cli\/(b-[^/]+)\/main\.mjs/.exec(run.stderr);
  const sources = run.stderr.includes('cli/src/main.ts');
  expect(Boolean(bundled) !== sources, 'exactly one of the bundle and the sources ran').toBe(true);
  return { stdout: run.stdout, ran: bundled ? bundled[1]! : 'sources' };
}

function record(): BundleRecord {
  return JSON.parse(readFileSync(join(BUNDLE_ROOT, 'current.json'), 'utf8')) as BundleRecord;
}

describe('the bundled CLI of a clone', () => {
  it('runs the bundle while the sources are as bundled, and answers as the sources do', async () => {
    expect(await ensureBundle({})).toBeDefined();
    const { dir, inputs } = record();
    expect(inputs.map(([file]) => file)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/cli\/src\/main\.ts$/),
        expect.stringMatching(/core\/src\/index\.ts$/),
        // A `pnpm install` that changes node_modules makes a new bundle too.
        PNPM_STATE,
      ]),
    );
    const bundled = mpBoards();
    expect(bundled.ran).toBe(dir);
    const sources = mpBoards({ MP_BUNDLE: '0' });
    expect(sources.ran).toBe('sources');
    expect(bundled.stdout).toBe(sources.stdout);
  });

  it('runs the sources once one is touched, and the bundle made after that run next time', async () => {
    await ensureBundle({});
    const before = record().dir;
    // Touched, not changed: only the mtime moves, as an editor's save without edits does.
    const help = fileURLToPath(new URL('../src/help.ts', import.meta.url));
    const { atime } = statSync(help);
    utimesSync(help, atime, new Date());
    expect(mpBoards().ran).toBe('sources');
    // That run asked for a new bundle as it exited (a detached `node src/bundle.ts`).
    const deadline = Date.now() + 60_000;
    while (record().dir === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    const after = record().dir;
    expect(after).not.toBe(before);
    expect(mpBoards().ran).toBe(after);
  }, 90_000);
});
