/**
 * The help and version texts, from the command table. Plain string work: `mp --help` prints them
 * without loading the parser.
 */
import { readFileSync } from 'node:fs';
import {
  COMMANDS,
  type CommandSpec,
  GLOBAL_OPTIONS,
  globalOptionsOf,
  type OptionSpecs,
} from './commands/table.ts';

export function versionText(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  return `mp ${pkg.version} (node ${process.version})`;
}

function formatOptions(options: OptionSpecs): string {
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
    'Global options (before or after the command):',
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
    formatOptions({ ...spec.options, ...globalOptionsOf(spec) }),
    '',
  ].join('\n');
}
