/**
 * The command lines people and scripts type most (`mp build`, `mp build --cwd dir --json -b esp32`),
 * parsed straight from the command table without loading commander (some 25 ms of start-up:
 * its modules and a parser for every command). Only a line made of known commands, known options
 * and the right number of arguments is read here, to the same result commander gives
 * (a differential check over every option of every command agreed); anything else (help, `--opt=value`, `-abc`, `--`,
 * an option twice, an unknown word, a missing value) gets undefined, and commander parses it and
 * words the error (command-line.ts).
 */
import type { CommandLine } from './command-line.ts';
import {
  COMMANDS,
  type CommandSpec,
  GLOBAL_OPTIONS,
  type OptionSpec,
  type OptionSpecs,
} from './commands/table.ts';

/** A line to run, as parseCommandLine returns it. */
export type PlainLine = Extract<CommandLine, { kind: 'run' }>;

/**
 * The command word: the first word that is neither a global option nor such an option's value
 * (`--cwd dir`, `--cwd=dir`). Undefined before an option no command line starts with.
 */
export function commandWord(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (!word.startsWith('-')) return word;
    if (word.startsWith('--') && word.includes('=')) continue;
    const global = optionNamed(GLOBAL_OPTIONS, word);
    if (!global) return undefined;
    if (global[1].type === 'string') i++;
  }
  return undefined;
}

export function parsePlainLine(argv: readonly string[]): PlainLine | undefined {
  const name = commandWord(argv);
  const spec: CommandSpec | undefined = COMMANDS.find((c) => c.name === name);
  if (!spec) return undefined;
  const own: OptionSpecs = spec.options;
  // An option the command shares with the program: which one takes it is commander's business.
  if (Object.keys(own).some((name) => name in GLOBAL_OPTIONS)) return undefined;

  const values: Record<string, string | boolean | string[]> = {};
  const positionals: string[] = [];
  let commandSeen = false;
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (!word.startsWith('-')) {
      if (commandSeen) positionals.push(word);
      commandSeen = true;
      continue;
    }
    const found = optionNamed(own, word) ?? optionNamed(GLOBAL_OPTIONS, word);
    if (!found) return undefined;
    const [name, option] = found;
    if (name === 'help' || name === 'version') return undefined;
    // `--no-x` beside `--x` is commander's pair (the last one wins): leave it to commander.
    const twin = name.startsWith('no-') ? name.slice(3) : `no-${name}`;
    if (twin in values) return undefined;
    if (option.type === 'boolean') {
      if (name in values) return undefined;
      values[name] = true;
      continue;
    }
    const value = argv[i + 1];
    if (value === undefined || value.startsWith('-')) return undefined;
    i++;
    if (option.multiple) values[name] = [...((values[name] as string[] | undefined) ?? []), value];
    else if (name in values) return undefined;
    else values[name] = value;
  }
  if (!fitsArguments(spec.arguments ?? [], positionals.length)) return undefined;
  if (!spec.project && values.config !== undefined) return undefined;
  return {
    kind: 'run',
    spec,
    values: values as PlainLine['values'],
    positionals,
    json: values.json === true,
  };
}

/** `--name` or `-s` of one of `options`. */
function optionNamed(options: OptionSpecs, word: string): [string, OptionSpec] | undefined {
  if (word.startsWith('--')) {
    const name = word.slice(2);
    return Object.hasOwn(options, name) ? [name, options[name]!] : undefined;
  }
  if (word.length !== 2) return undefined;
  return Object.entries(options).find(([, o]) => o.short === word[1]);
}

/** Whether `count` arguments fit the command's `<required>`, `[optional]` and `[many...]` ones. */
function fitsArguments(names: readonly string[], count: number): boolean {
  const required = names.filter((n) => n.startsWith('<')).length;
  const variadic = names.some((n) => n.endsWith('...]') || n.endsWith('...>'));
  return count >= required && (variadic || count <= names.length);
}
