/** A module that looks like credentials is frozen only with a warning that says where it belongs. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BuildFixtures, buildProject, mpBuild, setupBuildFixtures } from './build-helpers.ts';

let fixtures: BuildFixtures;
beforeAll(async () => {
  fixtures = await setupBuildFixtures();
}, 600_000);
afterAll(() => fixtures?.cleanup());

describe('credentials in the modules folder', () => {
  it('warn by name (secrets.py) and by content (an SSID and a password); other modules do not', async () => {
    const project = buildProject(fixtures, {
      'modules/secrets.py': 'TOKEN = "abc"\n',
      'modules/net.py': 'WIFI = {"ssid": "home", "password": "hunter2"}\n',
      'modules/plain.py': 'SSID_HELP = "the name of your network"\n',
    });
    const run = await mpBuild(fixtures, project);
    expect(run.code, run.output).toBe(0);
    expect(run.stderr).toContain(
      '⚠ [sources] modules/secrets.py will be frozen into the firmware, but secrets.py is where credentials usually live',
    );
    expect(run.stderr).toContain(
      '⚠ [sources] modules/net.py will be frozen into the firmware, but it sets a Wi-Fi SSID and a password',
    );
    expect(run.stderr).toContain('mp put');
    expect(run.stderr).not.toContain('modules/plain.py will be frozen');
    expect(run.stderr).not.toContain('modules/app.py will be frozen');
  });
});
