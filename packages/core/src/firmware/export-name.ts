/**
 * Names of exported firmware files:
 * `<PREFIX>-micropython-<version>-<library fragments>-<date>-<time><ext>`, e.g.
 * `ESP8266-micropython-v1.28.0-mqtt-as-20261121-233312.bin`. Sorting by name sorts a board's
 * builds by version, then time; the name alone tells what is inside.
 */
import type { ReleaseVersion } from '../plugin/version.ts';

export interface MicroPythonIdentity {
  /** Release tag when the build is of one. */
  tag?: string;
  /** Version read from the tag or py/mpconfig.h. */
  version?: ReleaseVersion & { prerelease?: boolean };
  sha?: string;
  /** A local checkout with uncommitted changes. */
  dirty?: boolean;
}

/** Keeps names portable (SMB shares, FAT sticks): letters, digits, `.`, `_`, `-`. */
export function safeNamePart(text: string): string {
  return text
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/-{2,}/g, '-')
    .replace(/^[-.]+|-+$/g, '');
}

/**
 * `v1.28.0` for a release; `v1.29.0-preview-g1a2b3c4` for a development commit (like `git
 * describe`); `-dirty` when a local checkout has uncommitted changes.
 */
export function micropythonVersionLabel(mp: MicroPythonIdentity): string {
  let label: string;
  if (mp.tag) label = mp.tag;
  else {
    const v = mp.version;
    const base = v ? `v${v.major}.${v.minor}.${v.patch}${v.prerelease ? '-preview' : ''}` : 'unknown';
    label = mp.sha ? `${base}-g${mp.sha.slice(0, 7)}` : `${base}-local`;
  }
  return safeNamePart(`${label}${mp.dirty ? '-dirty' : ''}`);
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/** `20261121-233312` in local time (what the user's clock said when the build finished). */
export function exportTimestamp(date: Date): string {
  return `${date.getFullYear()}${pad(date.getMonth() + 1)}${pad(date.getDate())}-${pad(date.getHours())}${pad(date.getMinutes())}${pad(date.getSeconds())}`;
}

export interface ExportNameInput {
  exportPrefix: string;
  micropython: MicroPythonIdentity;
  /** Library name fragments in config order (`mqtt-as`). */
  fragments: string[];
  date: Date;
  /** `.bin` by default; `''` for an executable. */
  extension?: string;
}

/**
 * @example exportFileName({ exportPrefix: 'ESP8266', micropython: { tag: 'v1.28.0' }, fragments: ['mqtt-as'], date })
 *   // 'ESP8266-micropython-v1.28.0-mqtt-as-20261121-233312.bin'
 */
export function exportFileName(input: ExportNameInput): string {
  const parts = [
    safeNamePart(input.exportPrefix),
    'micropython',
    micropythonVersionLabel(input.micropython),
    ...input.fragments.map(safeNamePart).filter(Boolean),
    exportTimestamp(input.date),
  ];
  return `${parts.join('-')}${input.extension ?? '.bin'}`;
}
