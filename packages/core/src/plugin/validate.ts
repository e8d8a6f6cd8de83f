/**
 * Checks that an imported plugin object keeps the contract in ./schema.ts, reporting every problem
 * at once with its key path and the package it came from.
 */
import { ValidationError, type ValidationIssue } from '../errors.ts';
import { isRecord, problems, typeName } from '../util/validate.ts';
import { boardExtensionSchema, boardSchema, librarySchema } from './schema.ts';
import type { BoardPlugin, LibraryPlugin, Plugin } from './types.ts';

/** Where a plugin came from, for error messages. */
export interface PluginOrigin {
  /** npm package name, or `mp.config` for inline plugins. */
  packageName: string;
  /** The package.json or config file. */
  file?: string;
}

export function validatePlugin(value: unknown, origin: PluginOrigin, expectedKind?: Plugin['kind']): Plugin {
  if (!isRecord(value)) {
    throw invalid(origin, [
      {
        path: '',
        message: `the module's default export must be a plugin object (defineBoard/defineLibrary), got ${typeName(value)}`,
      },
    ]);
  }
  const kind = value.kind;
  if (kind !== 'board' && kind !== 'library') {
    throw invalid(origin, [
      {
        path: 'kind',
        message: `must be "board" or "library", got ${typeName(kind)}; wrap the object in defineBoard() or defineLibrary()`,
      },
    ]);
  }
  const issues: ValidationIssue[] = [];
  if (expectedKind && kind !== expectedKind) {
    issues.push({
      path: 'kind',
      message: `package.json declares a ${expectedKind} but the module exports a ${kind}`,
    });
  }
  // A board that extends another is checked whole once merged with its base (plugin/extends.ts).
  const schema =
    kind === 'library' ? librarySchema : value.extends !== undefined ? boardExtensionSchema : boardSchema;
  issues.push(...problems(schema, value));
  if (issues.length > 0) throw invalid(origin, issues);
  return value as Plugin;
}

function invalid(origin: PluginOrigin, issues: ValidationIssue[]): ValidationError {
  return new ValidationError({
    code: 'PLUGIN_INVALID',
    subject: `Plugin from ${origin.packageName}`,
    issues,
    plugin: origin.packageName,
    file: origin.file,
    hint: 'Fix the fields listed above in the plugin module (see README "Writing a board or library plugin"), then run `mp boards` or `mp libs` to check it.',
    // A plugin written inline in mp.config is part of the user's input, like any other config key.
    exitCode: origin.packageName === 'mp.config' ? 2 : 1,
  });
}

export function isBoard(plugin: Plugin): plugin is BoardPlugin {
  return plugin.kind === 'board';
}

export function isLibrary(plugin: Plugin): plugin is LibraryPlugin {
  return plugin.kind === 'library';
}
