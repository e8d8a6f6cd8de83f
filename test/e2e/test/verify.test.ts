/**
 * Reproducible builds and `mp verify`. Given a MicroPython commit dated 2024-03-01 whose port embeds
 * its build date as the real py/makeversionhdr.py writes it (SOURCE_DATE_EPOCH, else today), when
 * two projects in different folders build it from scratch with mp's clock ten years apart, then the
 * two firmware files have one sha256 and the date inside is the commit's, not any clock's.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runMp, type TempProject } from '@mp/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BuildFixtures,
  buildProject,
  jsonLines,
  jsonResult,
  mpBuild,
  readJson,
  setupBuildFixtures,
} from './build-helpers.ts';

/** The fixture port's version header generator, with the real one's date logic. */
const MAKEVERSIONHDR = `# Fixture of py/makeversionhdr.py: the build date as the real one takes it.
import datetime, os, sys
out = sys.argv[1]
build_date = datetime.date.today()
if "SOURCE_DATE_EPOCH" in os.environ:
    build_date = datetime.datetime.fromtimestamp(int(os.environ["SOURCE_DATE_EPOCH"]), datetime.timezone.utc).date()
data = '#define MICROPY_BUILD_DATE "%s"\\n' % build_date.strftime("%Y-%m-%d")
os.makedirs(os.path.dirname(out), exist_ok=True)
if not os.path.exists(out) or open(out).read() != data:
    open(out, "w").write(data)
`;

const COMMIT_DATE = '2024-03-01T12:00:00Z';
const CLOCK = fileURLToPath(new URL('./verify-clock.mjs', import.meta.url));

let fixtures: BuildFixtures;
let sha: string;

beforeAll(async () => {
  fixtures = await setupBuildFixtures();
  // A commit on master dated 2024-03-01 whose ESP8266 port links the version header in.
  const mp = fixtures.repos.micropython;
  const makefile = readFileSync(`${mp.path}/ports/esp8266/Makefile`, 'utf8').replace(
    '$(BUILD)/firmware.elf: $(OBJ) $(BUILD)/frozen_content.bin',
    '$(BUILD)/firmware.elf: $(OBJ) $(BUILD)/version.o $(BUILD)/frozen_content.bin',
  );
  const rules = `
$(BUILD)/genhdr/mpversion.h: FORCE
	$(Q)$(PYTHON) $(TOP)/py/makeversionhdr.py $@

$(BUILD)/version.o: $(BUILD)/genhdr/mpversion.h
	$(Q)cp $< $@
`;
  writeFileSync(`${mp.path}/py/makeversionhdr.py`, MAKEVERSIONHDR);
  writeFileSync(`${mp.path}/ports/esp8266/Makefile`, makefile + rules);
  // Only these two files: the fixture's gitlinks have no folders in its work tree.
  const git = (args: string[]) =>
    execFileSync('git', ['-c', 'user.name=mp fixture', '-c', 'user.email=fixture@mp.invalid', ...args], {
      cwd: mp.path,
      encoding: 'utf8',
      env: { ...process.env, GIT_AUTHOR_DATE: COMMIT_DATE, GIT_COMMITTER_DATE: COMMIT_DATE },
    }).trim();
  git(['add', 'py/makeversionhdr.py', 'ports/esp8266/Makefile']);
  git(['commit', '-q', '--no-gpg-sign', '-m', 'py/makeversionhdr: date the build']);
  sha = git(['rev-parse', 'HEAD']);
}, 600_000);
afterAll(() => fixtures?.cleanup());

function dated(files: Record<string, string> = {}): TempProject {
  return buildProject(fixtures, files, { micropython: { ref: sha } });
}

/** `mp build` with mp's clock moved by `days`. */
function buildOnDay(project: TempProject, days: number, args: string[] = []) {
  return mpBuild(fixtures, project, ['--json', ...args], {
    env: { NODE_OPTIONS: `--import=${CLOCK}`, MP_TEST_CLOCK_SHIFT_DAYS: String(days) },
  });
}

describe('reproducible builds: two clean builds of the same inputs at different times are the same bytes', () => {
  it('gives one sha256 for two projects built from scratch ten years apart, dated by the commit', async () => {
    const a = dated();
    const b = dated();
    const first = await buildOnDay(a, 0);
    expect(first.code, first.output).toBe(0);
    const second = await buildOnDay(b, 3653);
    expect(second.code, second.output).toBe(0);
    const one = jsonResult(first);
    const two = jsonResult(second);

    // mp's clock did differ: it names the files and dates the sidecars.
    const builtAt = (r: typeof one) => new Date(readJson(r.sidecar).builtAt).getUTCFullYear();
    expect(builtAt(two) - builtAt(one)).toBeGreaterThanOrEqual(9);
    expect(two.firmware).not.toBe(one.firmware);

    expect(two.sha256).toBe(one.sha256);
    expect(readFileSync(two.firmware).equals(readFileSync(one.firmware))).toBe(true);
    // The only date in the firmware is the commit's (SOURCE_DATE_EPOCH), not today's.
    const text = readFileSync(one.firmware).toString('latin1');
    expect(text).toContain('MICROPY_BUILD_DATE "2024-03-01"');
    expect(text).not.toContain(`MICROPY_BUILD_DATE "${new Date().toISOString().slice(0, 10)}"`);
    expect(readJson(one.sidecar).micropython).toMatchObject({
      sha,
      sourceDateEpoch: Date.parse(COMMIT_DATE) / 1000,
    });
  });
});

describe('mp verify <firmware>: rebuild from the provenance, same bytes or which input differs', () => {
  let project: TempProject;
  let firmware: string;

  beforeAll(async () => {
    project = dated({ 'modules/app.py': 'VERIFIED = 1\n', 'modules/lib/util.py': 'X = 1\n' });
    const run = await buildOnDay(project, 0);
    expect(run.code, run.output).toBe(0);
    firmware = jsonResult(run).firmware;
  }, 600_000);

  const verify = (file: string, args: string[] = []) =>
    runMp(['verify', file, '--cwd', project.dir, ...args], { env: fixtures.env, timeoutMs: 240_000 });

  it('says identical for a firmware whose inputs are unchanged, rebuilt from scratch', async () => {
    const run = await verify(firmware);
    expect(run.code, run.output).toBe(0);
    expect(run.stdout).toMatch(/✔ Identical: export\/\S+\.bin is what its provenance builds/);
    // The sidecar works as the argument too; --json carries the comparison.
    const json = await verify(`${firmware}.json`, ['--json']);
    expect(json.code, json.output).toBe(0);
    expect(jsonResult(json)).toMatchObject({ ok: true, identical: true, differences: [] });
    // It compiled (no firmware cache, no build folder of the project's).
    expect(json.stdout).toContain('"id":"compile","status":"ok"');
  });

  it('names the module that changed since the build', async () => {
    project.write('modules/app.py', 'VERIFIED = 2\n');
    try {
      const run = await verify(firmware, ['--json']);
      expect(run.code).toBe(1);
      const event = jsonLines(run.stdout).find((e) => e.type === 'verify');
      expect(event).toMatchObject({
        identical: false,
        notReproducible: false,
        differences: [{ input: 'module app.py', recorded: expect.any(String), now: expect.any(String) }],
      });
      expect(jsonResult(run).error.code).toBe('VERIFY_DIFFERENT');
      // Only the rebuilt export is kept, to compare with the recorded one.
      const scratch = String(event?.scratchDir);
      expect(readdirSync(scratch)).toEqual(['export']);
      expect(existsSync(String(event?.rebuilt))).toBe(true);
      rmSync(scratch, { recursive: true, force: true });
      const plain = await verify(firmware);
      expect(plain.code).toBe(1);
      expect(plain.stderr).toMatch(
        /Rebuilding export\/\S+\.bin from its provenance gives sha256 [0-9a-f]{64}, not/,
      );
      expect(plain.stderr).toMatch(/module app\.py: recorded [0-9a-f]{64}, now [0-9a-f]{64}/);
      const rebuilt = /The rebuilt firmware: (\S+)/.exec(plain.stderr)?.[1];
      expect(rebuilt && existsSync(rebuilt)).toBe(true);
      rmSync(rebuilt!.replace(/\/export\/.*$/, ''), { recursive: true, force: true });
    } finally {
      project.write('modules/app.py', 'VERIFIED = 1\n');
    }
  });

  it('says when the firmware file itself was changed after the build', async () => {
    const copy = project.path('export', 'copy.bin');
    const data = readFileSync(firmware);
    data[data.length - 1] = data[data.length - 1]! ^ 0xff;
    writeFileSync(copy, data);
    writeFileSync(
      `${copy}.json`,
      readFileSync(`${firmware}.json`, 'utf8').replace(/"firmware": "[^"]+"/, '"firmware": "copy.bin"'),
    );
    const run = await verify(copy, ['--json']);
    expect(run.code).toBe(1);
    const event = jsonLines(run.stdout).find((e) => e.type === 'verify');
    expect(event?.differences).toEqual([
      { input: 'firmware file copy.bin', recorded: expect.any(String), now: expect.any(String) },
    ]);
    rmSync(String(event?.scratchDir), { recursive: true, force: true });
  });

  it('refuses a file without a sidecar', async () => {
    const run = await verify(project.path('modules/app.py'));
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('VERIFY_NO_SIDECAR');
  });
});
