/** Running the real `mp` against the kit: a private source cache, the kit's mirrors, JSON results. */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type MpResult, runMp } from '@mp/test-utils';
import type { UnpackedKit } from './kit.ts';

export interface KitRunner {
  cacheDir: string;
  env: NodeJS.ProcessEnv;
  mp(args: string[], env?: NodeJS.ProcessEnv): Promise<MpResult>;
  /** The cached MicroPython tree of a commit (what every build of it shares). */
  micropythonTree(sha: string): string;
  cleanup(): void;
}

export function kitRunner(kit: UnpackedKit): KitRunner {
  const cacheDir = mkdtempSync(join(tmpdir(), 'mp-upstream-cache-'));
  const env = { MP_CACHE_DIR: cacheDir, MP_GIT_MIRRORS: kit.mirrors };
  return {
    cacheDir,
    env,
    mp: (args, extra = {}) => runMp(args, { env: { ...env, ...extra }, timeoutMs: 900_000 }),
    micropythonTree(sha) {
      const git = join(cacheDir, 'git');
      const repo = readdirSync(git).find(
        (name) => name.startsWith('micropython-micropython-') && !name.includes('-lib-'),
      );
      if (!repo) throw new Error(`no MicroPython repository in ${git}`);
      return join(git, repo, 'trees', sha);
    },
    cleanup: () => rmSync(cacheDir, { recursive: true, force: true }),
  };
}

// biome-ignore lint/suspicious/noExplicitAny: test assertions read arbitrary JSON
export function jsonResult(run: MpResult): Record<string, any> {
  const line = run.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l))
    .findLast((e) => e.type === 'result');
  if (!line) throw new Error(`no JSON result from mp:\n${run.output}`);
  return line;
}
