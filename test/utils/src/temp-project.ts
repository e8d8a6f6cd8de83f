/**
 * Throwaway directory trees for tests: `await tempProject({ 'mp.config.json': '{…}', 'modules/app.py': 'x = 1' })`
 * writes the files and removes the whole tree when the test ends (vitest's onTestFinished), or on
 * `cleanup()` when used outside a test.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { onTestFinished } from 'vitest';

export interface TempProject {
  dir: string;
  path(...parts: string[]): string;
  write(relativePath: string, content: string | Uint8Array): string;
  cleanup(): void;
}

export function tempProject(
  files: Record<string, string | Uint8Array> = {},
  options: { autoCleanup?: boolean } = {},
): TempProject {
  const dir = mkdtempSync(join(tmpdir(), 'mp-test-'));
  const project: TempProject = {
    dir,
    path: (...parts) => join(dir, ...parts),
    write(relativePath, content) {
      const file = join(dir, relativePath);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, content);
      return file;
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
  for (const [path, content] of Object.entries(files)) project.write(path, content);
  if (options.autoCleanup !== false) {
    try {
      onTestFinished(() => project.cleanup());
    } catch {
      // Not inside a test (e.g. beforeAll or a benchmark): the caller cleans up.
    }
  }
  return project;
}
