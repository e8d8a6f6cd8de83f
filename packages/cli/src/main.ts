/**
 * `mp` entry: parses the command line, runs one command, maps errors to messages and exit codes
 * (0 ok, 1 failure, 2 usage error, 130 interrupted). Commands are imported lazily.
 */
import { parseArgs } from 'node:util';
import {
  COMMANDS,
  type CommandInput,
  type CommandSpec,
  type OptionSpec,
  projectOptions,
} from './commands/table.ts';

const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  cwd: {
    type: 'string',
    short: 'C',
    description: 'Project directory (default: the current directory)',
    arg: 'dir',
  },
  json: { type: 'boolean', description: 'Machine-readable output: JSON events and result on stdout' },
  help: { type: 'boolean', short: 'h', description: 'Show help' },
  version: { type: 'boolean', short: 'v', description: 'Show the version' },
};

export interface MainIO {
  stdout?: CommandInput['stdout'];
  stderr?: CommandInput['stderr'];
}

export async function main(argv: string[], io: MainIO = {}): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  const commandName = argv.find((a) => !a.startsWith('-'));
  const commandIndex = commandName === undefined ? -1 : argv.indexOf(commandName);
  const before = commandIndex === -1 ? argv : argv.slice(0, commandIndex);

  if (
    argv.length === 0 ||
    (commandName === undefined && (before.includes('--help') || before.includes('-h')))
  ) {
    stdout.write(globalHelp());
    return 0;
  }
  if (argv.includes('--version') || argv.includes('-v')) {
    const { readFileSync } = await import('node:fs');
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
    stdout.write(`mp ${pkg.version} (node ${process.version})\n`);
    return 0;
  }
  if (commandName === undefined)
    return usageError(stderr, `Missing command. Run \`mp --help\` for the list.`);
  const spec = COMMANDS.find((c) => c.name === commandName);
  if (!spec) {
    const near = await closestWord(
      commandName,
      COMMANDS.map((c) => c.name),
    );
    return usageError(
      stderr,
      `Unknown command "${commandName}".${near ? ` Did you mean \`mp ${near}\`?` : ''} Run \`mp --help\` for the list.`,
    );
  }

  const rest = [...before, ...argv.slice(commandIndex + 1)];
  const options = { ...projectOptions(spec), ...GLOBAL_OPTIONS };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: rest,
      options: Object.fromEntries(
        Object.entries(options).map(([name, o]) => [
          name,
          { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) },
        ]),
      ),
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    return usageError(stderr, await parseErrorMessage(error, spec, Object.keys(options)));
  }
  const values = parsed.values as CommandInput['values'];
  if (values.help) {
    stdout.write(commandHelp(spec));
    return 0;
  }
  const [min, max] = spec.positionals ?? [0, 0];
  if (parsed.positionals.length < min || parsed.positionals.length > max) {
    return usageError(
      stderr,
      `\`mp ${spec.name}\` takes ${min === max ? min : `${min} to ${max}`} argument${max === 1 ? '' : 's'}, got ${parsed.positionals.length}${parsed.positionals.length ? ` (${parsed.positionals.join(' ')})` : ''}. Usage: ${spec.usage}`,
    );
  }

  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    interrupts++;
    if (interrupts > 1) process.exit(130); // a second Ctrl-C means "now", cleanup or not
    controller.abort(new Error(`received ${signal}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const json = values.json === true;
  try {
    const { run } = await spec.load();
    const code = await run({
      values,
      positionals: parsed.positionals,
      json,
      cwd: typeof values.cwd === 'string' ? values.cwd : process.cwd(),
      signal: controller.signal,
      stdout,
      stderr,
    });
    return code ?? 0;
  } catch (error) {
    const { reportError } = await import('./ui/errors.ts');
    return reportError(error, { json, stdout, stderr, aborted: controller.signal.aborted });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** Loaded only on the error path: the suggestion code lives in core, which `mp --help` never imports. */
async function closestWord(input: string, candidates: string[]): Promise<string | undefined> {
  const { closest } = await import('@mp/core');
  return closest(input, candidates);
}

function usageError(stderr: CommandInput['stderr'], message: string): number {
  stderr.write(`mp: ${message}\n`);
  return 2;
}

async function parseErrorMessage(error: unknown, spec: CommandSpec, known: string[]): Promise<string> {
  const message = error instanceof Error ? error.message : String(error);
  const unknown = /Unknown option '(-{1,2}[^']+)'/.exec(message)?.[1];
  if (unknown) {
    const near = await closestWord(unknown.replace(/^-+/, ''), known);
    return `Unknown option ${unknown} for \`mp ${spec.name}\`.${near ? ` Did you mean --${near}?` : ''} Run \`mp ${spec.name} --help\`.`;
  }
  return `${message.replace(/\. To specify a positional.*$/s, '')}. Run \`mp ${spec.name} --help\`.`;
}

function formatOptions(options: Record<string, OptionSpec>): string {
  const rows = Object.entries(options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ` <${o.arg ?? 'value'}>` : ''}`;
    return [flag, o.description] as const;
  });
  const width = Math.max(...rows.map(([f]) => f.length));
  return rows.map(([f, d]) => `  ${f.padEnd(width)}  ${d}`).join('\n');
}

export function globalHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'mp: build custom MicroPython firmware in Docker, flash it from the host.',
    '',
    'Usage: mp <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Global options:',
    formatOptions(GLOBAL_OPTIONS),
    '',
    'Run `mp <command> --help` for a command’s options.',
    '',
  ].join('\n');
}

export function commandHelp(spec: CommandSpec): string {
  return [
    `${spec.summary}.`,
    '',
    `Usage: ${spec.usage}`,
    ...(spec.details ? ['', spec.details] : []),
    '',
    'Options:',
    formatOptions({ ...projectOptions(spec), ...GLOBAL_OPTIONS }),
    '',
  ].join('\n');
}
