/**
 * The plain-line parser (plain-line.ts) answers the usual command lines without commander; it must
 * give exactly what commander gives for every line it takes, and leave the rest to commander.
 * Lines are generated from the command table: each command with each of its options (and the
 * global ones) alone and together, in both orders, with the arguments it takes.
 */
import { describe, expect, it } from 'vitest';
import { parseCommandLine } from '../src/command-line.ts';
import { COMMANDS, GLOBAL_OPTIONS, type OptionSpecs } from '../src/commands/table.ts';
import { commandWord, parsePlainLine } from '../src/plain-line.ts';

/** Each option as it may be written: long and short, with a value when it takes one. */
function spellings(options: OptionSpecs): string[][] {
  return Object.entries(options).flatMap(([name, option]) => {
    const value = option.type === 'string' ? ['some-value'] : [];
    const forms = [[`--${name}`, ...value]];
    if (option.short) forms.push([`-${option.short}`, ...value]);
    return forms;
  });
}

function linesOf(): string[][] {
  const lines: string[][] = [];
  for (const spec of COMMANDS) {
    const args = spec.arguments ?? [];
    const required = args.filter((a) => a.startsWith('<')).length;
    const positionals = [
      Array.from({ length: required }, (_, i) => `arg${i}`),
      Array.from({ length: Math.min(args.length, required + 1) }, (_, i) => `arg${i}`),
    ];
    const options = spellings(spec.options);
    const globals = spellings(GLOBAL_OPTIONS as OptionSpecs).filter(
      (g) => g[0] !== '--help' && g[0] !== '-h',
    );
    for (const given of positionals) {
      lines.push([spec.name, ...given]);
      for (const option of [...options, ...globals]) {
        lines.push([spec.name, ...option, ...given]);
        lines.push([...option, spec.name, ...given]);
      }
      for (let i = 0; i + 1 < options.length; i++)
        lines.push([spec.name, ...options[i]!, ...given, ...options[i + 1]!]);
    }
  }
  return lines;
}

describe('plain command lines', () => {
  it('parses every line it takes as commander does', async () => {
    let taken = 0;
    for (const argv of linesOf()) {
      const plain = parsePlainLine(argv);
      if (!plain) continue;
      taken++;
      const full = await parseCommandLine(argv);
      expect(full.kind, argv.join(' ')).toBe('run');
      if (full.kind !== 'run') continue;
      expect(
        { command: plain.spec.name, values: plain.values, positionals: plain.positionals, json: plain.json },
        argv.join(' '),
      ).toEqual({
        command: full.spec.name,
        values: full.values,
        positionals: full.positionals,
        json: full.json,
      });
    }
    // Most generated lines are plain; the exceptions are the shapes below.
    expect(taken).toBeGreaterThan(200);
  });

  it('leaves help, --opt=value, bundled short options, --, repeats and unknown words to commander', () => {
    for (const argv of [
      ['build', '--help'],
      ['build', '-h'],
      ['build', '--board=esp32-generic'],
      ['flash', '-mf'],
      ['put', '--', 'main.py'],
      ['build', '--board', 'a', '--board', 'b'],
      ['build', '--json', '--json'],
      ['biuld'],
      ['build', '--bord', 'x'],
      ['build', '--board'],
      ['build', '--board', '--json'],
      ['dev', '--monitor', '--no-monitor'],
    ])
      expect(parsePlainLine(argv), argv.join(' ')).toBeUndefined();
  });
});

describe('the command word (what a resident mp serves by)', () => {
  it('is the first word past the global options and their values', () => {
    expect(commandWord(['build'])).toBe('build');
    expect(commandWord(['--cwd', 'build', 'flash'])).toBe('flash');
    expect(commandWord(['-C', 'dir', '--json', 'build', 'more'])).toBe('build');
    expect(commandWord(['--cwd=dir', 'build'])).toBe('build');
  });

  it('is none before an option no line starts with, or without a word', () => {
    expect(commandWord(['--nope', 'build'])).toBeUndefined();
    expect(commandWord(['--json'])).toBeUndefined();
  });
});
