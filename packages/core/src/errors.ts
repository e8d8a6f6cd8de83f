/**
 * The errors mp shows to people. Each has a permanent `code` (searchable, stable across releases),
 * a message saying what happened, and a `hint` saying what to do next. Where a plugin, file or
 * pipeline step is at fault, it is named, so the user knows where to look.
 *
 * Only the CLI decides how an error is printed and which exit code it gets (`exitCode`).
 */
import { ERRORS, type ErrorCode } from './errors-data.ts';

export { ERRORS, type ErrorCode, type ErrorEntry, isErrorCode } from './errors-data.ts';

export interface MpErrorDetails {
  /** Permanent name from the catalog (errors-data.ts), e.g. `PLUGIN_IMPORT_FAILED`. */
  code: ErrorCode;
  message: string;
  /** What to do next. */
  hint?: string;
  /** Plugin id or package name at fault. */
  plugin?: string;
  /** File at fault (absolute path or path relative to the project). */
  file?: string;
  /** Pipeline step at fault (e.g. `compile`, `export`). */
  step?: string;
  /** Process exit code the CLI uses: 1 failure (default), 2 usage error, 130 interrupted. */
  exitCode?: number;
  cause?: unknown;
}

export class MpError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly plugin: string | undefined;
  readonly file: string | undefined;
  step: string | undefined;
  readonly exitCode: number;

  constructor(details: MpErrorDetails) {
    super(details.message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'MpError';
    this.code = details.code;
    // The catalog's general advice when the raising code has nothing more specific.
    this.hint = details.hint ?? ERRORS[details.code].hint;
    this.plugin = details.plugin;
    this.file = details.file;
    this.step = details.step;
    this.exitCode = details.exitCode ?? 1;
  }

  toJSON(): Record<string, unknown> {
    return {
      code: this.code,
      message: this.message,
      hint: this.hint,
      plugin: this.plugin,
      file: this.file,
      step: this.step,
    };
  }
}

/** Bad command-line usage: exit code 2. */
export class UsageError extends MpError {
  constructor(message: string, hint?: string) {
    super({ code: 'USAGE', message, hint, exitCode: 2 });
    this.name = 'UsageError';
  }
}

/** The user (or a signal) stopped the operation: exit code 130, nothing else to say. */
export class CancelledError extends MpError {
  constructor(step?: string) {
    super({
      code: 'CANCELLED',
      message: step ? `cancelled during ${step}` : 'cancelled',
      step,
      exitCode: 130,
    });
    this.name = 'CancelledError';
  }
}

/** One problem found while validating config or a plugin, with the key path it concerns. */
export interface ValidationIssue {
  /** Dotted key path, e.g. `libraries[1].ref` or `flash.segments[0].offset`. */
  path: string;
  message: string;
}

/** All problems of one object at once, each prefixed with its key path (changesets-style). */
export class ValidationError extends MpError {
  readonly issues: ValidationIssue[];
  constructor(details: Omit<MpErrorDetails, 'message'> & { subject: string; issues: ValidationIssue[] }) {
    const lines = details.issues.map((i) => `  - ${i.path ? `${i.path}: ` : ''}${i.message}`);
    super({
      ...details,
      message: `${details.subject} is invalid (${details.issues.length} problem${details.issues.length === 1 ? '' : 's'}):\n${lines.join('\n')}`,
    });
    this.name = 'ValidationError';
    this.issues = details.issues;
  }
}

export function isMpError(error: unknown): error is MpError {
  return error instanceof MpError;
}

/** `error` itself if it is an MpError, else one with `code` carrying its text (for event streams). */
export function asMpError(error: unknown, code: ErrorCode): MpError {
  return isMpError(error) ? error : new MpError({ code, message: describeError(error), cause: error });
}

/** True when `error` came from an AbortSignal (ours or Node's). */
export function isAbortError(error: unknown): boolean {
  return (
    error instanceof CancelledError ||
    (error instanceof Error &&
      (error.name === 'AbortError' || (error as { code?: string }).code === 'ABORT_ERR'))
  );
}

/** Throws a CancelledError if the signal has fired; use between steps of long work. */
export function throwIfCancelled(signal: AbortSignal | undefined, step?: string): void {
  if (signal?.aborted) throw new CancelledError(step);
}

/** A short human description of any thrown value, for wrapping foreign errors. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
