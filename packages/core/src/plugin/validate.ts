/**
 * Checks that an imported plugin object keeps the contract in ./types.ts, reporting every problem
 * at once with its key path and the package it came from.
 */
import { ValidationError } from '../errors.ts';
import {
  checkKnownKeys,
  checkNumber,
  checkString,
  checkStringArray,
  checkStringRecord,
  Issues,
  isRecord,
  join,
  typeName,
} from '../util/validate.ts';
import type { BoardPlugin, LibraryPlugin, Plugin } from './types.ts';

const KEBAB_ID = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;
const PYTHON_ID = /^[A-Za-z_][A-Za-z0-9_]*$/;
const FRAGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

const BOARD_KEYS = [
  'kind',
  'id',
  'title',
  'port',
  'chip',
  'exportPrefix',
  'firmware',
  'firmwareExtension',
  'mpyCross',
  'resolve',
  'board',
  'variant',
  'toolchain',
  'makeArgs',
  'artifacts',
  'defaultManifest',
  'flash',
  'submodules',
  'extends',
] as const;
const LIBRARY_KEYS = [
  'kind',
  'id',
  'title',
  'source',
  'freeze',
  'exports',
  'ports',
  'nameFragment',
  'resolve',
] as const;
const CHIPS = ['ESP8266', 'ESP32', 'ESP32-S2', 'ESP32-S3', 'ESP32-C3', 'ESP32-C6'];

/** Where a plugin came from, for error messages. */
export interface PluginOrigin {
  /** npm package name, or `mp.config` for inline plugins. */
  packageName: string;
  /** The package.json or config file. */
  file?: string;
}

export function validatePlugin(value: unknown, origin: PluginOrigin, expectedKind?: Plugin['kind']): Plugin {
  const issues = new Issues();
  if (!isRecord(value)) {
    issues.add(
      '',
      `the module's default export must be a plugin object (defineBoard/defineLibrary), got ${typeName(value)}`,
    );
    throw invalid(origin, issues);
  }
  const kind = value.kind;
  if (kind !== 'board' && kind !== 'library') {
    issues.add(
      'kind',
      `must be "board" or "library", got ${typeName(kind)}; wrap the object in defineBoard() or defineLibrary()`,
    );
    throw invalid(origin, issues);
  }
  if (expectedKind && kind !== expectedKind) {
    issues.add('kind', `package.json declares a ${expectedKind} but the module exports a ${kind}`);
  }
  if (kind === 'board' && value.extends !== undefined) validateExtension(value, issues);
  else if (kind === 'board') validateBoard(value, issues);
  else validateLibrary(value, issues);
  if (!issues.ok) throw invalid(origin, issues);
  return value as unknown as Plugin;
}

function invalid(origin: PluginOrigin, issues: Issues): ValidationError {
  return new ValidationError({
    code: 'PLUGIN_INVALID',
    subject: `Plugin from ${origin.packageName}`,
    issues: issues.list,
    plugin: origin.packageName,
    file: origin.file,
    hint: 'Fix the fields listed above in the plugin module (see README "Writing a board or library plugin"), then run `mp boards` or `mp libs` to check it.',
    // A plugin written inline in mp.config is part of the user's input, like any other config key.
    exitCode: origin.packageName === 'mp.config' ? 2 : 1,
  });
}

/** A board that extends another: checked whole once merged with its base (plugin/extends.ts). */
function validateExtension(board: Record<string, unknown>, issues: Issues): void {
  checkKnownKeys(issues, board, BOARD_KEYS, '');
  checkString(issues, board, 'id', '', {
    required: true,
    pattern: KEBAB_ID,
    patternHint: 'must be kebab-case (a-z, 0-9, -)',
  });
  checkString(issues, board, 'title', '', { required: true });
  const base = board.extends;
  if (!(typeof base === 'string' && base.length > 0) && !(isRecord(base) && base.kind === 'board')) {
    issues.add('extends', `must be a board id or a board plugin object, got ${typeName(base)}`);
  }
}

function validateBoard(board: Record<string, unknown>, issues: Issues): void {
  checkKnownKeys(issues, board, BOARD_KEYS, '');
  checkString(issues, board, 'id', '', {
    required: true,
    pattern: KEBAB_ID,
    patternHint: 'must be kebab-case (a-z, 0-9, -)',
  });
  checkString(issues, board, 'title', '', { required: true });
  checkString(issues, board, 'port', '', { required: true });
  checkString(issues, board, 'exportPrefix', '', {
    required: true,
    pattern: FRAGMENT,
    patternHint: 'must be usable in a file name',
  });
  checkString(issues, board, 'board', '');
  checkString(issues, board, 'variant', '');
  checkString(issues, board, 'defaultManifest', '', { required: true });
  checkString(issues, board, 'firmware', '', { required: true });
  checkStringArray(issues, board, 'makeArgs', '');
  checkStringArray(issues, board, 'submodules', '');
  if (board.firmwareExtension !== undefined && typeof board.firmwareExtension !== 'string') {
    issues.add(
      'firmwareExtension',
      `must be a string such as ".bin" or "", got ${typeName(board.firmwareExtension)}`,
    );
  }
  if (board.chip !== undefined && !CHIPS.includes(board.chip as string)) {
    issues.add('chip', `must be one of ${CHIPS.join(', ')}, got ${typeName(board.chip)}`);
  }
  if (board.mpyCross !== undefined && typeof board.mpyCross !== 'boolean') {
    issues.add('mpyCross', `must be true or false, got ${typeName(board.mpyCross)}`);
  }
  if (board.resolve !== undefined && typeof board.resolve !== 'function') {
    issues.add('resolve', `must be a function, got ${typeName(board.resolve)}`);
  }
  validateToolchain(board.toolchain, 'toolchain', issues);
  if (!isRecord(board.artifacts) || Object.keys(board.artifacts).length === 0) {
    issues.add('artifacts', 'is required: an object naming build outputs, e.g. { firmware: "firmware.bin" }');
  } else {
    checkStringRecord(issues, board, 'artifacts', '');
    if (typeof board.firmware === 'string' && !(board.firmware in board.artifacts)) {
      issues.add(
        'firmware',
        `names "${board.firmware}", which is not a key of artifacts (${Object.keys(board.artifacts).join(', ')})`,
      );
    }
  }
  if (board.flash !== undefined) validateFlash(board.flash, board.artifacts, issues);
  else if (board.chip !== undefined)
    issues.add(
      'flash',
      `is required for a board with a chip (${String(board.chip)}): where each artifact is written`,
    );
}

function validateToolchain(value: unknown, path: string, issues: Issues): void {
  if (!isRecord(value)) {
    issues.add(
      path,
      `is required: { image: "owner/name:tag" } and/or { dockerfile: "/abs/path/Dockerfile" }, got ${typeName(value)}`,
    );
    return;
  }
  checkKnownKeys(
    issues,
    value,
    ['image', 'dockerfile', 'buildArgs', 'env', 'shellPrelude', 'runAsHostUser', 'reason'],
    path,
  );
  checkString(issues, value, 'image', path);
  checkString(issues, value, 'dockerfile', path);
  checkString(issues, value, 'shellPrelude', path);
  checkString(issues, value, 'reason', path);
  checkStringRecord(issues, value, 'buildArgs', path);
  checkStringRecord(issues, value, 'env', path);
  if (value.image === undefined && value.dockerfile === undefined) {
    issues.add(path, 'needs an image to pull or a dockerfile to build (or both)');
  }
  if (typeof value.dockerfile === 'string' && !value.dockerfile.startsWith('/')) {
    issues.add(
      join(path, 'dockerfile'),
      'must be an absolute path; use fileURLToPath(new URL("./Dockerfile", import.meta.url))',
    );
  }
}

function validateFlash(flash: unknown, artifacts: unknown, issues: Issues): void {
  if (!isRecord(flash)) {
    issues.add('flash', `must be an object, got ${typeName(flash)}`);
    return;
  }
  checkKnownKeys(issues, flash, ['segments', 'mode', 'freq', 'size', 'baud'], 'flash');
  checkNumber(issues, flash, 'baud', 'flash', { required: true, min: 9600, integer: true });
  const oneOf = (key: string, values: string[]) => {
    if (!values.includes(flash[key] as string))
      issues.add(`flash.${key}`, `must be one of ${values.join(', ')}, got ${typeName(flash[key])}`);
  };
  oneOf('mode', ['qio', 'qout', 'dio', 'dout', 'keep']);
  oneOf('freq', ['80m', '40m', '26m', '20m', 'keep']);
  oneOf('size', ['1MB', '2MB', '4MB', '8MB', '16MB', 'detect', 'keep']);
  if (!Array.isArray(flash.segments) || flash.segments.length === 0) {
    issues.add('flash.segments', 'must list at least one { offset, artifact }');
    return;
  }
  flash.segments.forEach((segment, i) => {
    const at = `flash.segments[${i}]`;
    if (!isRecord(segment)) {
      issues.add(at, `must be { offset, artifact }, got ${typeName(segment)}`);
      return;
    }
    checkNumber(issues, segment, 'offset', at, { required: true, min: 0, integer: true });
    checkString(issues, segment, 'artifact', at, { required: true });
    if (typeof segment.offset === 'number' && segment.offset % 0x1000 !== 0) {
      issues.add(`${at}.offset`, `0x${segment.offset.toString(16)} is not aligned to a 4 KiB flash sector`);
    }
    if (isRecord(artifacts) && typeof segment.artifact === 'string' && !(segment.artifact in artifacts)) {
      issues.add(`${at}.artifact`, `names "${segment.artifact}", which is not a key of artifacts`);
    }
  });
}

function validateLibrary(library: Record<string, unknown>, issues: Issues): void {
  checkKnownKeys(issues, library, LIBRARY_KEYS, '');
  checkString(issues, library, 'id', '', {
    required: true,
    pattern: PYTHON_ID,
    patternHint: 'must be the Python import name (letters, digits, _)',
  });
  checkString(issues, library, 'title', '', { required: true });
  checkString(issues, library, 'nameFragment', '', {
    required: true,
    pattern: FRAGMENT,
    patternHint: 'must be usable in a file name',
  });
  checkStringArray(issues, library, 'ports', '');
  if (library.resolve !== undefined && typeof library.resolve !== 'function') {
    issues.add('resolve', `must be a function, got ${typeName(library.resolve)}`);
  }
  const source = library.source;
  if (!isRecord(source)) {
    issues.add(
      'source',
      `is required: { git: "https://…", ref?: "…" } or { path: "/abs/dir" }, got ${typeName(source)}`,
    );
  } else if (typeof source.git === 'string') {
    checkKnownKeys(issues, source, ['git', 'ref'], 'source');
    checkString(issues, source, 'ref', 'source');
  } else if (typeof source.path === 'string') {
    checkKnownKeys(issues, source, ['path'], 'source');
  } else {
    issues.add('source', 'needs either git (a repository URL) or path (a local directory)');
  }
  if (!Array.isArray(library.freeze) || library.freeze.length === 0) {
    issues.add('freeze', 'must list at least one { package } or { module } entry');
  } else {
    library.freeze.forEach((entry, i) => {
      const at = `freeze[${i}]`;
      if (!isRecord(entry) || (typeof entry.package !== 'string') === (typeof entry.module !== 'string')) {
        issues.add(at, 'must have exactly one of package (a folder name) or module (a .py file name)');
        return;
      }
      checkKnownKeys(
        issues,
        entry,
        typeof entry.package === 'string' ? ['package', 'files', 'base', 'opt'] : ['module', 'base', 'opt'],
        at,
      );
      checkStringArray(issues, entry, 'files', at);
      checkString(issues, entry, 'base', at);
      checkNumber(issues, entry, 'opt', at, { min: 0, integer: true });
    });
  }
  if (library.exports !== undefined) {
    if (!Array.isArray(library.exports))
      issues.add('exports', `must be a list of { from, as }, got ${typeName(library.exports)}`);
    else
      library.exports.forEach((entry, i) => {
        const at = `exports[${i}]`;
        if (!isRecord(entry)) {
          issues.add(at, `must be { from, as }, got ${typeName(entry)}`);
          return;
        }
        checkString(issues, entry, 'from', at, { required: true });
        checkString(issues, entry, 'as', at, {
          required: true,
          pattern: /^[^/\\]+$/,
          patternHint: 'must be a plain file name',
        });
      });
  }
}

export function isBoard(plugin: Plugin): plugin is BoardPlugin {
  return plugin.kind === 'board';
}

export function isLibrary(plugin: Plugin): plugin is LibraryPlugin {
  return plugin.kind === 'library';
}
