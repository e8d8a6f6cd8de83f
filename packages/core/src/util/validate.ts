/**
 * A tiny validation kit: checks push every problem with its key path into one list, so the user
 * sees all of them at once instead of fixing one per run.
 */
import type { ValidationIssue } from '../errors.ts';

export class Issues {
  readonly list: ValidationIssue[] = [];

  add(path: string, message: string): void {
    this.list.push({ path, message });
  }

  get ok(): boolean {
    return this.list.length === 0;
  }
}

export function typeName(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `${typeof value} ${JSON.stringify(value)}`;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path ? `${path}.${key}` : key;
}

export function checkString(
  issues: Issues,
  obj: Record<string, unknown>,
  key: string,
  path: string,
  options: { required?: boolean; pattern?: RegExp; patternHint?: string } = {},
): void {
  const value = obj[key];
  const at = join(path, key);
  if (value === undefined) {
    if (options.required) issues.add(at, 'is required (a string)');
    return;
  }
  if (typeof value !== 'string' || value.length === 0) {
    issues.add(at, `must be a non-empty string, got ${typeName(value)}`);
    return;
  }
  if (options.pattern && !options.pattern.test(value)) {
    issues.add(at, `${JSON.stringify(value)} ${options.patternHint ?? `must match ${options.pattern}`}`);
  }
}

export function checkNumber(
  issues: Issues,
  obj: Record<string, unknown>,
  key: string,
  path: string,
  options: { required?: boolean; min?: number; integer?: boolean } = {},
): void {
  const value = obj[key];
  const at = join(path, key);
  if (value === undefined) {
    if (options.required) issues.add(at, 'is required (a number)');
    return;
  }
  if (typeof value !== 'number' || Number.isNaN(value)) {
    issues.add(at, `must be a number, got ${typeName(value)}`);
    return;
  }
  if (options.integer && !Number.isInteger(value)) issues.add(at, `must be a whole number, got ${value}`);
  if (options.min !== undefined && value < options.min)
    issues.add(at, `must be at least ${options.min}, got ${value}`);
}

export function checkStringArray(
  issues: Issues,
  obj: Record<string, unknown>,
  key: string,
  path: string,
  options: { required?: boolean } = {},
): void {
  const value = obj[key];
  const at = join(path, key);
  if (value === undefined) {
    if (options.required) issues.add(at, 'is required (a list of strings)');
    return;
  }
  if (!Array.isArray(value)) {
    issues.add(at, `must be a list of strings, got ${typeName(value)}`);
    return;
  }
  value.forEach((item, i) => {
    if (typeof item !== 'string' || item.length === 0)
      issues.add(join(at, i), `must be a non-empty string, got ${typeName(item)}`);
  });
}

export function checkStringRecord(
  issues: Issues,
  obj: Record<string, unknown>,
  key: string,
  path: string,
): void {
  const value = obj[key];
  const at = join(path, key);
  if (value === undefined) return;
  if (!isRecord(value)) {
    issues.add(at, `must be an object of strings, got ${typeName(value)}`);
    return;
  }
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') issues.add(join(at, k), `must be a string, got ${typeName(v)}`);
  }
}

/** Keys the object has that the schema does not know; almost always a typo. */
export function checkKnownKeys(
  issues: Issues,
  obj: Record<string, unknown>,
  known: readonly string[],
  path: string,
): void {
  for (const key of Object.keys(obj)) {
    if (!known.includes(key)) {
      const near = closest(key, known);
      issues.add(join(path, key), `is not a known key${near ? ` (did you mean "${near}"?)` : ''}`);
    }
  }
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
