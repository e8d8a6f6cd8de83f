import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { tempProject } from '@mp/test-utils';
import { describe, expect, it } from 'vitest';
import { isEditorTempFile, type WatchEvent, watchProject } from '../src/dev/watch.ts';

describe('what mp dev watches', () => {
  it('recognises editor temporary and swap files', () => {
    for (const name of [
      '.app.py.swp',
      '.app.py.swo',
      'app.py~',
      '4913',
      '.#app.py',
      '#app.py#',
      'app.py___jb_tmp___',
      'x.tmp',
      '__pycache__',
    ]) {
      expect(isEditorTempFile(`/p/modules/${name}`), name).toBe(true);
    }
    for (const name of ['app.py', 'main.py', 'data.json', 'swap.py'])
      expect(isEditorTempFile(`/p/modules/${name}`), name).toBe(false);
  });

  it('reports module and config changes, and nothing for temp files, export/ or .mp/', async () => {
    const project = tempProject({
      'modules/app.py': 'x = 1\n',
      'mp.config.json': '{}',
      'export/old.bin': '',
    });
    mkdirSync(project.path('.mp'));
    const events: WatchEvent[] = [];
    const watcher = await watchProject(
      {
        sourceDirs: [project.path('modules')],
        configFiles: [project.path('mp.config.json')],
        boardFiles: [],
        ignoreDirs: [project.path('export'), project.path('.mp')],
      },
      (e) => events.push(e),
    );
    try {
      await watcher.ready;
      writeFileSync(project.path('modules/.app.py.swp'), 'swap');
      writeFileSync(project.path('export/new.bin'), 'x');
      writeFileSync(project.path('modules/app.py'), 'x = 2\n');
      writeFileSync(project.path('mp.config.json'), '{"board":"unix"}');
      // vim-style save: write a temp file, rename it over the original.
      writeFileSync(project.path('modules/lib.py.tmp'), 'y = 1\n');
      renameSync(project.path('modules/lib.py.tmp'), project.path('modules/lib.py'));
      const deadline = Date.now() + 3000;
      while (
        Date.now() < deadline &&
        !(events.some((e) => e.path.endsWith('lib.py')) && events.some((e) => e.kind === 'config'))
      )
        await sleep(20);
      await sleep(100);
    } finally {
      await watcher.close();
    }
    const seen = events.map((e) => `${e.kind}:${e.path.slice(project.dir.length + 1)}`);
    expect(seen).toContain('source:modules/app.py');
    expect(seen).toContain('source:modules/lib.py');
    expect(seen).toContain('config:mp.config.json');
    expect(seen.filter((s) => s.includes('.swp') || s.includes('export/') || s.includes('.tmp'))).toEqual([]);
  });
});
