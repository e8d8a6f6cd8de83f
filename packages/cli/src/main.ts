/**
 * `mp` entry: parses the command line (command-line.ts), runs one command, maps errors to
 * messages and exit codes (0 ok, 1 failure, 2 usage error, 130 interrupted). The parser and the
 * commands are imported lazily, so `mp --help` loads neither (start-up time); a plain line
 * (plain-line.ts) does not load the parser either.
 */
import type { CommandInput } from './commands/table.ts';
import { globalHelp, versionText } from './help.ts';
import { parsePlainLine } from './plain-line.ts';

export interface MainIO {
  stdout?: CommandInput['stdout'];
  stderr?: CommandInput['stderr'];
  /**
   * Cancels the command (a resident process's client pressed Ctrl-C, or went). Given, the process's
   * own signals are left alone: they are not this command's.
   */
  signal?: AbortSignal;
}

/** Runs as a resident mp (src/resident/server.ts); loaded only by the process that does. */
export async function serveResident(options: import('./resident/server.ts').ResidentOptions): Promise<void> {
  const { serveResident } = await import('./resident/server.ts');
  return serveResident(options);
}

export async function main(argv: string[], io: MainIO = {}): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  // `mp`, `mp --help`, `mp --version` alone: the same text the parser prints, without loading it.
  const alone = argv.length === 1 ? argv[0] : argv.length === 0 ? '--help' : undefined;
  if (alone === '--help' || alone === '-h' || alone === '--version' || alone === '-v') {
    stdout.write(alone === '--help' || alone === '-h' ? globalHelp() : `${versionText()}\n`);
    return 0;
  }
  // The usual lines without commander (start-up time); commander parses the rest, errors included.
  const line = parsePlainLine(argv) ?? (await (await import('./command-line.ts')).parseCommandLine(argv));
  if (line.kind === 'print') {
    stdout.write(line.text);
    return 0;
  }
  if (line.kind === 'usage') {
    const { reportUsageError } = await import('./ui/errors.ts');
    return reportUsageError(line, { json: line.json, stdout, stderr });
  }

  const { spec, values, positionals, json } = line;
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    interrupts++;
    if (interrupts > 1) process.exit(130); // a second Ctrl-C means "now", cleanup or not
    controller.abort(new Error(`received ${signal}`));
  };
  // A closed terminal (SIGHUP) gets the same cleanup as Ctrl-C: no container or lock is left.
  const signals: NodeJS.Signals[] = io.signal ? [] : ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const signal of signals) process.on(signal, onSignal);
  io.signal?.addEventListener('abort', () => controller.abort(io.signal?.reason), { once: true });
  try {
    const { run } = await spec.load();
    const code = await run({
      values,
      positionals,
      json,
      cwd: values.cwd ?? process.cwd(),
      signal: controller.signal,
      stdout,
      stderr,
    });
    return code ?? 0;
  } catch (error) {
    const { reportError } = await import('./ui/errors.ts');
    return reportError(error, { json, stdout, stderr, aborted: controller.signal.aborted });
  } finally {
    for (const signal of signals) process.off(signal, onSignal);
  }
}
