import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runMp, tempProject } from '@mp/test-utils';
import { describe, expect, it } from 'vitest';

describe('mp (the command line)', () => {
  it('prints help listing every command, exit 0', async () => {
    const r = await runMp(['--help']);
    expect(r.code).toBe(0);
    for (const command of [
      'build',
      'flash',
      'dev',
      'monitor',
      'ports',
      'boards',
      'libs',
      'clean',
      'doctor',
      'new',
    ]) {
      expect(r.stdout).toMatch(new RegExp(`^  ${command}\\s`, 'm'));
    }
  });

  it('gives every command its own --help', async () => {
    const r = await runMp(['build', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: mp build');
    expect(r.stdout).toContain('--micropython <ref>');
  });

  it('suggests the nearest command for a typo, exit 2', async () => {
    const r = await runMp(['biuld']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Unknown command "biuld". Did you mean `mp build`?');
  });

  it('suggests the nearest flag for a typo, exit 2', async () => {
    const r = await runMp(['boards', '--jsn']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Unknown option --jsn for `mp boards`. Did you mean --json?');
  });

  it('rejects surplus arguments with the usage, exit 2', async () => {
    const r = await runMp(['boards', 'extra']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Usage: mp boards');
  });

  it('lists the first-party boards, each from its own workspace package', async () => {
    const project = tempProject();
    const r = await runMp(['boards', '--cwd', project.dir]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^esp8266-d1mini\s+.*@mp\/board-esp8266-d1mini\s+esp8266$/m);
    expect(r.stdout).toMatch(/^esp32-generic\s+.*@mp\/board-esp32-generic\s+esp32$/m);
    expect(r.stdout).toMatch(/^unix\s+.*@mp\/board-unix\s+unix$/m);
  });

  it('lists mqtt_as from its own package; --json gives the same as data', async () => {
    const project = tempProject();
    const table = await runMp(['libs', '--cwd', project.dir]);
    expect(table.stdout).toMatch(/^mqtt_as\s+.*@mp\/lib-mqtt-as\s+esp8266, esp32/m);
    const json = await runMp(['libs', '--json', '--cwd', project.dir]);
    const result = JSON.parse(json.stdout);
    expect(result.ok).toBe(true);
    expect(result.libraries.map((l: { id: string }) => l.id)).toContain('mqtt_as');
  });

  it('`mp new board` creates a package that `mp boards` shows at once, without touching core', async () => {
    const ws = tempProject({
      'pnpm-workspace.yaml': 'packages:\n  - boards/*\n',
      'package.json': '{"name":"my-ws","private":true}',
    });
    const created = await runMp(['new', 'board', 'my-board', '--cwd', ws.dir]);
    expect(created.code, created.output).toBe(0);
    expect(existsSync(join(ws.dir, 'boards/my-board/src/index.ts'))).toBe(true);
    expect(JSON.parse(readFileSync(join(ws.dir, 'boards/my-board/package.json'), 'utf8')).mp).toEqual({
      board: 'my-board',
    });
    const listed = await runMp(['boards', '--cwd', ws.dir]);
    expect(listed.code, listed.output).toBe(0);
    expect(listed.stdout).toMatch(/^my-board\s+my-board \(ESP32\)\s+mp-board-my-board\s+esp32$/m);
  });

  it('`mp new library` creates a library that `mp libs` shows; it refuses to overwrite', async () => {
    const project = tempProject();
    expect((await runMp(['new', 'library', 'blink_lib', '--cwd', project.dir])).code).toBe(0);
    const listed = await runMp(['libs', '--cwd', project.dir]);
    expect(listed.stdout).toMatch(/^blink_lib\s+blink_lib\s+mp-lib-blink-lib\s+all$/m);
    const again = await runMp(['new', 'library', 'blink_lib', '--cwd', project.dir]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('already exists');
  });

  it('`mp new c-module` writes cmodules/<name> with both build files; the plan passes it to make', async () => {
    const project = tempProject();
    const created = await runMp(['new', 'c-module', 'sensor', '--cwd', project.dir]);
    expect(created.code, created.output).toBe(0);
    expect(readdirSync(project.path('cmodules/sensor')).sort()).toEqual([
      'micropython.cmake',
      'micropython.mk',
      'sensor.c',
    ]);
    expect(readFileSync(project.path('cmodules/sensor/sensor.c'), 'utf8')).toContain(
      'MP_REGISTER_MODULE(MP_QSTR_sensor',
    );
    expect(created.stdout).toContain("cModules: ['cmodules/sensor']");
    const again = await runMp(['new', 'c-module', 'sensor', '--cwd', project.dir]);
    expect(again.code).toBe(2);
    const bad = await runMp(['new', 'c-module', 'not-a-name', '--cwd', project.dir]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('Python identifier');
  });

  it('`mp new` rejects ids that are not kebab-case or Python names, exit 2', async () => {
    const project = tempProject();
    const r = await runMp(['new', 'board', 'My_Board', '--cwd', project.dir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('kebab-case');
  });

  it('names a broken plugin package in the listing, and still lists the others (exit 1)', async () => {
    const project = tempProject({
      'boards/broken/package.json': JSON.stringify({
        name: 'mp-board-broken',
        type: 'module',
        exports: './index.js',
        mp: { board: 'broken' },
      }),
      'boards/broken/index.js': "import './does-not-exist.js';\n",
    });
    const r = await runMp(['boards', '--cwd', project.dir]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^esp8266-d1mini/m);
    expect(r.stderr).toContain('Could not import plugin package mp-board-broken');
  });

  it('reports an unknown board in the config with a suggestion (doctor)', async () => {
    const project = tempProject({ 'mp.config.json': '{"board":"esp32-generik"}' });
    const r = await runMp(['doctor', '--cwd', project.dir]);
    expect(r.stdout).toContain('Unknown board "esp32-generik" (did you mean "esp32-generic"?)');
    expect(r.code).toBe(1);
  });

  it('`mp doctor` checks Node, Docker, serial ports, cache and disk space', async () => {
    const project = tempProject();
    const r = await runMp(['doctor', '--json', '--cwd', project.dir], {
      env: { MP_CACHE_DIR: project.path('cache') },
    });
    const result = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    const names = result.checks.map((c: { name: string }) => c.name);
    expect(names).toEqual(
      expect.arrayContaining(['Node.js', 'Docker', 'Cache', 'Disk (cache)', 'Disk (project)', 'Project']),
    );
    expect(names.some((n: string) => n.startsWith('Serial port'))).toBe(true);
    expect(result.checks.find((c: { name: string }) => c.name === 'Node.js').status).toBe('ok');
    // The tests run beside a real engine (.ci/run starts one).
    expect(result.checks.find((c: { name: string }) => c.name === 'Docker').detail).toMatch(
      /^engine \S+ \(API/,
    );
  });

  it('`mp doctor` says how to fix an unreachable Docker engine', async () => {
    const project = tempProject();
    const r = await runMp(['doctor', '--cwd', project.dir], {
      env: { DOCKER_HOST: `unix://${project.path('no.sock')}` },
    });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/✖ Docker\s+not reachable at unix:\/\/.*no\.sock/);
    expect(r.stdout).toContain('Start the Docker engine');
  });
});
