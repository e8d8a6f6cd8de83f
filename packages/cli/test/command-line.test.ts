/**
 * The command line as a whole: global options anywhere on it, every option of every command, and
 * usage errors that follow `--json`. In-process through `main` and `parseCommandLine` (fast, so
 * every command and every position is tried), with a few runs of the real `mp` to show the same at
 * the process level.
 */
import { Writable } from 'node:stream';
import { runMp, tempProject } from '@mp/test-utils';
import { describe, expect, it } from 'vitest';
import { type CommandLine, parseCommandLine } from '../src/command-line.ts';
import { COMMANDS } from '../src/commands/table.ts';
import { main } from '../src/main.ts';

function capture() {
  let text = '';
  const stream = new Writable({
    write(chunk, _encoding, done) {
      text += String(chunk);
      done();
    },
  });
  return {
    stream,
    get text() {
      return text;
    },
  };
}

async function parsed(argv: string[]): Promise<Extract<CommandLine, { kind: 'run' }>> {
  const line = await parseCommandLine(argv);
  if (line.kind !== 'run') throw new Error(`mp ${argv.join(' ')} did not parse: ${JSON.stringify(line)}`);
  return line;
}

async function mpIn(argv: string[]) {
  const stdout = capture();
  const stderr = capture();
  const code = await main(argv, { stdout: stdout.stream, stderr: stderr.stream });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

describe('global options go anywhere on the line', () => {
  const dir = '/tmp/some project';
  for (const spec of COMMANDS) {
    for (const [where, argv] of [
      ['before', ['-C', dir, '--json', spec.name, '--help']],
      ['after', [spec.name, '--help', '--json', '-C', dir]],
      ['around', ['--cwd', dir, spec.name, '--json', '-h']],
    ] as const) {
      it(`mp ${argv.join(' ')} (${where} ${spec.name})`, async () => {
        const r = await mpIn([...argv]);
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);
        expect(r.stdout).toContain(`Usage: ${spec.usage}`);
      });
    }
  }

  for (const spec of COMMANDS) {
    // Words for the command's required arguments (`mp new board x`).
    const words = (spec.arguments ?? []).filter((a) => a.startsWith('<')).map((_, i) => `arg${i}`);
    const globals = ['-C', dir, '--json', ...(spec.project ? ['--config', 'other.json'] : [])];
    for (const [where, argv] of [
      ['before', [...globals, spec.name, ...words]],
      ['after', [spec.name, ...words, ...globals]],
      ['between', ['--json', spec.name, ...words.slice(0, 1), '--cwd', dir, ...words.slice(1)]],
    ] as const) {
      it(`mp ${argv.join(' ')} runs ${spec.name} in that directory (${where})`, async () => {
        const line = await parsed([...argv]);
        expect(line.spec.name).toBe(spec.name);
        expect(line.values.cwd).toBe(dir);
        expect(line.json).toBe(true);
        expect(line.positionals).toEqual(words);
        if (where !== 'between') expect(line.values.config).toBe(spec.project ? 'other.json' : undefined);
      });
    }
  }

  it('takes the last of a repeated global option, and --opt=value forms', async () => {
    const line = await parsed(['--cwd=/a', 'boards', '-C', '/b', '--config=x.json']);
    expect(line.values).toMatchObject({ cwd: '/b', config: 'x.json' });
  });

  it('`mp --help <command>` is that command’s help, as `mp <command> --help`', async () => {
    const before = await mpIn(['--help', 'flash']);
    const after = await mpIn(['flash', '--help']);
    expect(before.code).toBe(0);
    expect(before.stdout).toContain('Usage: mp flash');
    expect(before.stdout).toBe(after.stdout);
  });

  it('prints the same list of commands with or without the parser (`mp --help`, `mp -C x --help`)', async () => {
    const alone = await mpIn(['--help']);
    const withGlobal = await mpIn(['-C', dir, '--help']);
    expect(alone.stdout).toContain('Commands:');
    expect(withGlobal.stdout).toBe(alone.stdout);
    expect((await mpIn([])).stdout).toBe(alone.stdout);
    const version = await mpIn(['--version']);
    expect(version.stdout).toMatch(/^mp \d+\.\d+\.\d+ \(node v/);
    expect((await mpIn(['boards', '-v'])).stdout).toBe(version.stdout);
  });

  it('`mp -C <dir> new` and `mp -C <dir> boards` work on that directory (the real mp)', async () => {
    const ws = tempProject({
      'pnpm-workspace.yaml': 'packages:\n  - boards/*\n',
      'package.json': '{"name":"my-ws","private":true}',
    });
    const created = await runMp(['-C', ws.dir, 'new', 'board', 'my-board']);
    expect(created.code, created.output).toBe(0);
    const listed = await runMp(['-C', ws.dir, 'boards']);
    expect(listed.code, listed.output).toBe(0);
    expect(listed.stdout).toMatch(/^my-board\s/m);
    const json = await runMp(['--json', '-C', ws.dir, 'boards']);
    expect(json.code, json.output).toBe(0);
    expect(JSON.parse(json.stdout).boards.map((b: { id: string }) => b.id)).toContain('my-board');
  });
});

describe('usage errors follow --json', () => {
  const cases: [string, string[], RegExp][] = [
    ['an unknown command', ['biuld', '--json'], /Unknown command "biuld"/],
    ['an unknown command, --json first', ['--json', 'biuld'], /Unknown command "biuld"/],
    ['an unknown option', ['boards', '--jsn', '--json'], /Unknown option --jsn/],
    ['an unknown option before the command', ['--json', '--jsn', 'boards'], /Unknown option --jsn/],
    ['a missing option value', ['--json', 'build', '--board'], /--board/],
    ['a missing global option value', ['--json', 'boards', '--cwd'], /--cwd/],
    ['a surplus argument', ['--json', 'boards', 'extra'], /extra/],
    ['a missing argument', ['new', 'board', '--json'], /id/],
    ['no command', ['--json'], /Missing command/],
    ['--config on a command without a project', ['ports', '--config', 'x.json', '--json'], /--config/],
  ];
  for (const [what, argv, message] of cases) {
    it(`${what}: one JSON result on stdout, exit 2 (mp ${argv.join(' ')})`, async () => {
      const r = await mpIn(argv);
      expect(r.code).toBe(2);
      expect(r.stderr).toBe('');
      const lines = r.stdout.trim().split('\n');
      expect(lines).toHaveLength(1);
      const result = JSON.parse(lines[0]!);
      expect(result).toMatchObject({ type: 'result', ok: false, error: { code: 'USAGE' }, exitCode: 2 });
      expect(result.error.message).toMatch(message);
      expect(result.error.hint).toMatch(/--help/);
    });
  }

  it('keeps the suggestion in the JSON error', async () => {
    const command = JSON.parse((await mpIn(['--json', 'biuld'])).stdout);
    expect(command.error.hint).toContain('Did you mean `mp build`?');
    const option = JSON.parse((await mpIn(['boards', '--jsn', '--json'])).stdout);
    expect(option.error.hint).toContain('Did you mean --json?');
  });

  it('the real mp prints the JSON result and exits 2', async () => {
    const r = await runMp(['build', '--jsn', '--json']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout)).toMatchObject({
      type: 'result',
      ok: false,
      error: { code: 'USAGE', message: expect.stringContaining('--jsn') },
      exitCode: 2,
    });
  });

  it('without --json, the usage error stays one line on stderr', async () => {
    const r = await mpIn(['boards', '--jsn']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      'mp: Unknown option --jsn for `mp boards`. Did you mean --json? Run `mp boards --help`.\n',
    );
  });
});

describe('every option of every command', () => {
  it('mp build: short flags, repeatable options, --no-libs and --opt=value', async () => {
    const line = await parsed([
      'build',
      '-b',
      'esp32-generic',
      '-l',
      'mqtt_as',
      '--lib',
      'other',
      '-j4',
      '--make',
      'MICROPY_PY_BTREE=0',
      '--make=FROZEN_MANIFEST=',
      '--submodule',
      'lib/a',
      '--submodule',
      'lib/b',
      '--skip-submodule',
      'lib/berkeley-db-1.xx',
      '--no-libs',
      '--micropython',
      'v1.24.1',
      '--image=img:1',
      '--modules',
      'src',
      '--export-dir',
      'out',
      '--variant',
      'FLASH_1M',
      '--print-manifest',
      '--dry-run',
      '--force',
    ]);
    expect(line.values).toEqual({
      board: 'esp32-generic',
      lib: ['mqtt_as', 'other'],
      jobs: '4',
      make: ['MICROPY_PY_BTREE=0', 'FROZEN_MANIFEST='],
      submodule: ['lib/a', 'lib/b'],
      'skip-submodule': ['lib/berkeley-db-1.xx'],
      'no-libs': true,
      micropython: 'v1.24.1',
      image: 'img:1',
      modules: 'src',
      'export-dir': 'out',
      variant: 'FLASH_1M',
      'print-manifest': true,
      'dry-run': true,
      force: true,
    });
  });

  it('gives no value for an option not on the line', async () => {
    expect((await parsed(['build'])).values).toEqual({});
    expect((await parsed(['dev'])).values).toEqual({});
  });

  it('mp flash: a file, -p, -m, --baud, --full', async () => {
    const line = await parsed(['flash', 'fw.bin', '-p', '/dev/ttyUSB0', '-m', '--baud', '460800', '--full']);
    expect(line.positionals).toEqual(['fw.bin']);
    expect(line.values).toEqual({ port: '/dev/ttyUSB0', monitor: true, baud: '460800', full: true });
    expect((await parsed(['flash', '-mp', '/dev/x'])).values).toEqual({ monitor: true, port: '/dev/x' });
  });

  it('mp dev: -w, --no-flash, and the later of --monitor / --no-monitor', async () => {
    expect((await parsed(['dev', '-w', '--no-flash', '--no-monitor'])).values).toEqual({
      watch: true,
      'no-flash': true,
      'no-monitor': true,
    });
    expect((await parsed(['dev', '--no-monitor', '--monitor'])).values).toEqual({ monitor: true });
  });

  it('mp monitor, mp ports, mp clean, mp new', async () => {
    expect((await parsed(['monitor', '-p', '/dev/x', '--baud', '9600'])).values).toEqual({
      port: '/dev/x',
      baud: '9600',
    });
    expect((await parsed(['ports', '-a'])).values).toEqual({ all: true });
    expect((await parsed(['clean', '--all'])).values).toEqual({ all: true });
    const created = await parsed(['new', 'library', 'blink', '--dir', 'here']);
    expect(created.positionals).toEqual(['library', 'blink']);
    expect(created.values).toEqual({ dir: 'here' });
  });

  it('refuses an option of another command, naming the command', async () => {
    const line = await parseCommandLine(['--board', 'x', 'build']);
    expect(line).toMatchObject({ kind: 'usage', message: 'Unknown option --board.' });
    expect(line.kind === 'usage' && line.hint).toContain('`mp build`');
    expect(await parseCommandLine(['monitor', '--full'])).toMatchObject({
      kind: 'usage',
      message: 'Unknown option --full for `mp monitor`.',
    });
  });

  it('says which option lacks its value, even with global options after it', async () => {
    expect(await parseCommandLine(['build', '--board', '--json'])).toMatchObject({
      kind: 'usage',
      json: true,
      message: 'Option --board needs a value: -b, --board <id>.',
    });
    expect(await parseCommandLine(['-C'])).toMatchObject({
      kind: 'usage',
      message: 'Option --cwd needs a value: -C, --cwd <dir>.',
    });
  });
});
