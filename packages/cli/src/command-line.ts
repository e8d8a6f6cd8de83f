/**
 * The command line, parsed by commander over the command table (commands/table.ts): global options
 * are the program's, so they go anywhere on the line; each command has its own options and
 * arguments. Every parse error commander reports becomes one usage error here (exit code 2).
 */
import { Command, CommanderError, Option } from 'commander';
import {
  COMMANDS,
  type CommandInput,
  type CommandSpec,
  GLOBAL_OPTIONS,
  globalOptionsOf,
  type OptionSpecs,
} from './commands/table.ts';
import { commandHelp, globalHelp, versionText } from './help.ts';

/** What a command line asks for. */
export type CommandLine =
  | {
      kind: 'run';
      spec: CommandSpec;
      values: CommandInput<OptionSpecs>['values'];
      positionals: string[];
      json: boolean;
    }
  /** Help or the version: print it, exit 0. */
  | { kind: 'print'; text: string }
  | { kind: 'usage'; message: string; hint: string; json: boolean };

/** One parser for the whole line: the global options are the program's, so they go anywhere on it. */
interface Parser {
  program: Command;
  /** Each command's options by their names in the table, to read the values back under those names. */
  options: Map<Command, Map<string, Option>>;
  specs: Map<Command, CommandSpec>;
  /** Help and version text commander printed. */
  printed: () => string;
  /** The command whose action ran: the line parsed. */
  chosen: () => Command | undefined;
  /** The command that stopped the parse (exitOverride). */
  stoppedAt: () => Command | undefined;
}

function createParser(): Parser {
  let printed = '';
  let chosen: Command | undefined;
  let stoppedAt: Command | undefined;
  const options = new Map<Command, Map<string, Option>>();
  const specs = new Map<Command, CommandSpec>();
  const program: Command = new Command('mp')
    .configureOutput({
      writeOut: (text) => {
        printed += text;
      },
      // Errors reach the user from parseCommandLine, the one place that makes them usage errors.
      writeErr: () => {},
      outputError: () => {},
    })
    .helpOption(`-${GLOBAL_OPTIONS.help.short}, --help`, GLOBAL_OPTIONS.help.description)
    .helpCommand(false)
    .version(versionText(), `-${GLOBAL_OPTIONS.version.short}, --version`, GLOBAL_OPTIONS.version.description)
    .showSuggestionAfterError(false) // the suggestions come with the usage error, see usageOf
    .allowExcessArguments(false)
    .configureHelp({
      formatHelp: (command): string => {
        const spec = specs.get(command) ?? commandNamedIn(program.args);
        return spec ? commandHelp(spec) : globalHelp();
      },
    });
  program.exitOverride((error) => {
    stoppedAt = program;
    throw error;
  });
  const globals = new Map<string, Option>();
  for (const [name, spec] of Object.entries(GLOBAL_OPTIONS)) {
    if (name === 'help' || name === 'version') continue; // commander's own, set above
    const option = toOption(name, spec);
    program.addOption(option);
    globals.set(name, option);
  }
  options.set(program, globals);

  for (const spec of COMMANDS) {
    const command = program.command(spec.name).description(spec.summary);
    command.exitOverride((error) => {
      stoppedAt = command;
      throw error;
    });
    for (const argument of spec.arguments ?? []) command.argument(argument);
    const own = new Map<string, Option>();
    for (const [name, optionSpec] of Object.entries(spec.options)) {
      const option = toOption(name, optionSpec);
      command.addOption(option);
      own.set(name, option);
    }
    options.set(command, own);
    specs.set(command, spec);
    command.action(() => {
      chosen = command;
    });
  }
  return {
    program,
    options,
    specs,
    printed: () => printed,
    chosen: () => chosen,
    stoppedAt: () => stoppedAt,
  };
}

function toOption(name: string, spec: OptionSpecs[string]): Option {
  const value = spec.type === 'string' ? ` <${spec.arg ?? 'value'}>` : '';
  const option = new Option(`${spec.short ? `-${spec.short}, ` : ''}--${name}${value}`, spec.description);
  if (spec.type === 'string' && spec.multiple)
    option.argParser((text: string, previous: string[] | undefined) => [...(previous ?? []), text]);
  return option;
}

/** The values of the options given on the line, under their names in the table. */
function valuesOf(
  command: Command,
  options: Map<string, Option>,
): Record<string, string | boolean | string[]> {
  const values: Record<string, string | boolean | string[]> = {};
  for (const [name, option] of options) {
    const key = option.attributeName();
    if (command.getOptionValueSource(key) !== 'cli') continue;
    const value = command.getOptionValue(key);
    // commander reads `--no-libs` as libs=false; in the table it is a flag of its own.
    if (option.negate) {
      if (value === false) values[name] = true;
    } else if (option.isBoolean()) {
      if (value === true) values[name] = true;
    } else values[name] = value;
  }
  return values;
}

/**
 * The command line, parsed: what to run with which values, help or version to print, or the usage
 * error it makes (the only place parse errors become usage errors, exit code 2).
 */
export async function parseCommandLine(argv: string[]): Promise<CommandLine> {
  const parser = createParser();
  const { program } = parser;
  const json = () => program.getOptionValue('json') === true;
  try {
    program.parse(argv, { from: 'user' });
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version')
      return { kind: 'print', text: parser.printed() };
    // `mp` alone: the list of commands.
    if (error.code === 'commander.help' && argv.length === 0) return { kind: 'print', text: globalHelp() };
    return { kind: 'usage', json: json(), ...(await usageOf(error, parser, argv)) };
  }
  const command = parser.chosen();
  const spec = command && parser.specs.get(command);
  if (!command || !spec) throw new Error('mp: commander ran no command and reported no error');
  // As the table says: commander parsed each option by its spec there.
  const values = {
    ...valuesOf(program, parser.options.get(program)!),
    ...valuesOf(command, parser.options.get(command)!),
  } as CommandInput<OptionSpecs>['values'];
  if (!spec.project && values.config !== undefined)
    return {
      kind: 'usage',
      json: json(),
      message: `\`mp ${spec.name}\` opens no project, so --config does not apply.`,
      hint: `Run \`mp ${spec.name} --help\`.`,
    };
  return { kind: 'run', spec, values, positionals: command.args, json: json() };
}

/** A usage error from commander's error code and the words it stopped at. */
async function usageOf(
  error: CommanderError,
  parser: Parser,
  argv: string[],
): Promise<{ message: string; hint: string }> {
  const { program } = parser;
  const at = parser.stoppedAt() ?? program;
  const spec = parser.specs.get(at);
  const help = spec ? `Run \`mp ${spec.name} --help\`.` : 'Run `mp --help`.';
  const list = 'Run `mp --help` for the list.';
  switch (error.code) {
    case 'commander.help': // no command word
      return { message: 'Missing command.', hint: list };
    case 'commander.unknownCommand': {
      const word = program.args[0]!;
      const near = await closestWord(
        word,
        COMMANDS.map((c) => c.name),
      );
      return {
        message: `Unknown command "${word}".`,
        hint: `${near ? `Did you mean \`mp ${near}\`? ` : ''}${list}`,
      };
    }
    case 'commander.unknownOption': {
      // commander stops at the first option it does not know: the first option-like word left.
      const flag = at.args.find((a) => a.length > 1 && a.startsWith('-'))?.replace(/=.*/s, '');
      if (!flag) break;
      const known = [
        ...(spec ? Object.keys(spec.options) : []),
        ...Object.keys(spec ? globalOptionsOf(spec) : GLOBAL_OPTIONS),
      ];
      const near = await closestWord(flag.replace(/^-+/, ''), known);
      const elsewhere = spec ? [] : COMMANDS.filter((c) => flag.replace(/^-+/, '') in c.options);
      return {
        message: `Unknown option ${flag}${spec ? ` for \`mp ${spec.name}\`` : ''}.`,
        hint: [
          near && `Did you mean --${near}?`,
          elsewhere.length > 0 &&
            `${flag} is an option of ${elsewhere.map((c) => `\`mp ${c.name}\``).join(', ')}: put it after the command.`,
          help,
        ]
          .filter(Boolean)
          .join(' '),
      };
    }
    case 'commander.excessArguments':
    case 'commander.missingArgument': {
      if (!spec) break;
      const names = spec.arguments ?? [];
      const required = names.filter((n) => n.startsWith('<')).length;
      const count =
        required === names.length
          ? `${required}`
          : required === 0
            ? `at most ${names.length}`
            : `${required} to ${names.length}`;
      const takes =
        names.length === 0
          ? 'no arguments'
          : `${count} argument${names.length === 1 ? '' : 's'} (${names.join(' ')})`;
      return {
        message: `\`mp ${spec.name}\` takes ${takes}, got ${at.args.length}${at.args.length ? ` (${at.args.join(' ')})` : ''}.`,
        hint: `Usage: ${spec.usage}. ${help}`,
      };
    }
    case 'commander.optionMissingArgument': {
      // The command's words ended after the option: the last of its options on the line (later
      // words, if any, are global options the program took).
      const own = [...(parser.options.get(at)?.values() ?? [])];
      const word = argv.findLast((w) => own.some((o) => o.long === w || o.short === w));
      const option = own.find((o) => o.long === word || o.short === word);
      if (option) return { message: `Option ${option.long} needs a value: ${option.flags}.`, hint: help };
      break;
    }
  }
  // Anything else: commander's own message says what and where.
  const message = error.message.replace(/^error: /, '');
  return { message: `${message[0]!.toUpperCase()}${message.slice(1)}.`, hint: help };
}

/** `mp --help build`: help asked for before the command word is that command's help. */
function commandNamedIn(words: readonly string[]): CommandSpec | undefined {
  return COMMANDS.find((c) => words.includes(c.name));
}

/** Loaded only on the error path: the suggestion code lives in core, which `mp --help` never imports. */
async function closestWord(input: string, candidates: string[]): Promise<string | undefined> {
  const { closest } = await import('@mp/core');
  return closest(input, candidates);
}
