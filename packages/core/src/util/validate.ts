/**
 * The validation kit config/ and plugin/ write their schemas with: valibot schemas whose messages
 * read as mp's do (`must be …, got …`, `is required (…)`), objects that name every unknown key with
 * a "did you mean", and valibot's issues turned into ValidationIssues with key paths, so the user
 * sees every problem at once instead of fixing one per run.
 */
import * as v from 'valibot';
import type { ValidationIssue } from '../errors.ts';

export function typeName(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `${typeof value} ${JSON.stringify(value)}`;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `is required (a number)` for a missing value, `must be a number, got string "x"` for a wrong one. */
export function expected(what: string): (issue: v.BaseIssue<unknown>) => string {
  return (issue) =>
    issue.input === undefined ? `is required (${what})` : `must be ${what}, got ${typeName(issue.input)}`;
}

export function text(what = 'a non-empty string') {
  return v.pipe(v.string(expected(what)), v.minLength(1, expected(what)));
}

/** A non-empty string matching `pattern`; `hint` follows the quoted value, e.g. `must be kebab-case`. */
export function matching(pattern: RegExp, hint: string) {
  // An empty string is reported as such, not also as one that does not match.
  return v.config(
    v.pipe(
      v.string(expected('a non-empty string')),
      v.minLength(1, expected('a non-empty string')),
      v.regex(pattern, (issue) => `${JSON.stringify(issue.input)} ${hint}`),
    ),
    { abortPipeEarly: true },
  );
}

export function wholeNumber(min: number) {
  return v.pipe(
    v.number(expected('a number')),
    v.integer((issue) => `must be a whole number, got ${issue.input}`),
    v.minValue(min, (issue) => `must be at least ${min}, got ${issue.input}`),
  );
}

export function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return v.picklist(values, (issue) => `must be one of ${values.join(', ')}, got ${typeName(issue.input)}`);
}

export function texts() {
  return v.array(text(), expected('a list of strings'));
}

export function flag() {
  return v.boolean(expected('true or false'));
}

/** A hook: valibot checks only that it is a function; `F` is the signature plugin authors see. */
export function hook<F extends (...args: never[]) => unknown>() {
  return v.custom<F>((value) => typeof value === 'function', expected('a function'));
}

/** An object used as a map (valibot's record alone would take an array for one). */
export function dict<K extends v.GenericSchema<string, string | number | symbol>, V extends v.GenericSchema>(
  key: K,
  value: V,
  what: string,
) {
  return v.pipe(v.custom<Record<string, unknown>>(isRecord, expected(what)), v.record(key, value));
}

type Strict<E extends v.ObjectEntries> = v.StrictObjectSchema<E, undefined>;

/**
 * An object with these entries and no other key. Unlike valibot's strictObject, every unknown key
 * is reported (with a "did you mean"), arrays are refused, and a missing key's message says what
 * belongs there, as the entry's own schema words it.
 */
export function strict<const E extends v.ObjectEntries>(entries: E, what = 'an object') {
  const known = Object.keys(entries);
  const schema = v.pipe(
    v.custom<Record<string, unknown>>(isRecord, expected(what)),
    v.looseObject(entries, (issue) => missingKeyMessage(entries, issue)),
    v.rawCheck(({ dataset, addIssue }) => {
      if (!isRecord(dataset.value)) return;
      for (const key of Object.keys(dataset.value)) {
        if (known.includes(key)) continue;
        const near = closest(key, known);
        addIssue({
          message: `is not a known key${near ? ` (did you mean "${near}"?)` : ''}`,
          path: issuePath(dataset.value, key),
        });
      }
    }),
  );
  return schema as unknown as v.GenericSchema<v.InferInput<Strict<E>>, v.InferOutput<Strict<E>>>;
}

function missingKeyMessage(entries: v.ObjectEntries, issue: v.BaseIssue<unknown>): string {
  const key = issue.path?.[0]?.key;
  const entry = typeof key === 'string' ? entries[key] : undefined;
  return (entry && v.safeParse(entry, undefined).issues?.[0]?.message) ?? 'is required';
}

/** The path of valibot issue items from `input` down through `keys`, for checks that add issues deeper. */
export function issuePath(
  input: unknown,
  ...keys: Array<string | number>
): [v.IssuePathItem, ...v.IssuePathItem[]] {
  const items: v.IssuePathItem[] = [];
  let current = input as Record<string | number, unknown>;
  for (const key of keys) {
    const value = current[key];
    items.push(
      typeof key === 'number'
        ? { type: 'array', origin: 'value', input: current as unknown as unknown[], key, value }
        : { type: 'object', origin: 'value', input: current, key, value },
    );
    current = value as Record<string | number, unknown>;
  }
  return items as [v.IssuePathItem, ...v.IssuePathItem[]];
}

/** Every problem `value` has against `schema`, each with its key path (`libraries[0].id`). */
export function problems(schema: v.GenericSchema, value: unknown): ValidationIssue[] {
  const result = v.safeParse(schema, value);
  return (result.issues ?? []).map((issue) => ({ path: keyPath(issue.path), message: issue.message }));
}

function keyPath(items: readonly v.IssuePathItem[] | undefined): string {
  let path = '';
  for (const item of items ?? []) {
    const key = item.key;
    if (typeof key === 'number') path += `[${key}]`;
    else path = path ? `${path}.${String(key)}` : String(key);
  }
  return path;
}

/** The candidate nearest to `input` by edit distance, if it is close enough to be a likely typo. */
export function closest(input: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const d = editDistance(input.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(input.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length]!;
}
