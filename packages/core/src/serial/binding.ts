/**
 * Which serialport binding flashing and monitoring go through. Real hardware by default; the
 * environment variable `MP_SERIAL_BINDING=<module path>` names a module exporting `binding`
 * instead (the ESP emulator in end-to-end tests). That variable is the only test seam: everything
 * after it is the code path the CLI always takes.
 */
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describeError, MpError } from '../errors.ts';
import type { BindingInterface } from './binding-types.cts';

let defaultBindingPromise: Promise<BindingInterface> | undefined;

/**
 * The binding the `serialport` package uses for real hardware (@serialport/bindings-cpp).
 * Loaded on first use so that code running against an injected binding (the emulator) never
 * loads the native addon.
 */
export function defaultSerialBinding(): Promise<BindingInterface> {
  defaultBindingPromise ??= import('serialport').then((mod) => mod.SerialPort.binding as BindingInterface);
  return defaultBindingPromise;
}

const loaded = new Map<string, Promise<BindingInterface>>();

/** The binding named by `MP_SERIAL_BINDING`, or undefined for the real hardware binding. */
export function serialBindingFromEnv(
  env: NodeJS.ProcessEnv = process.env,
): Promise<BindingInterface | undefined> {
  const spec = env.MP_SERIAL_BINDING;
  if (!spec) return Promise.resolve(undefined);
  let promise = loaded.get(spec);
  if (!promise) {
    promise = importBinding(spec);
    loaded.set(spec, promise);
  }
  return promise;
}

/** `options.binding` if given, else the one from the environment, else undefined (real hardware). */
export async function resolveSerialBinding(
  binding: BindingInterface | undefined,
): Promise<BindingInterface | undefined> {
  return binding ?? (await serialBindingFromEnv());
}

async function importBinding(spec: string): Promise<BindingInterface> {
  const url = spec.startsWith('file:')
    ? spec
    : isAbsolute(spec) || spec.startsWith('.')
      ? pathToFileURL(resolve(spec)).href
      : spec;
  let module: { binding?: unknown; default?: { binding?: unknown } };
  try {
    module = await import(url);
  } catch (error) {
    throw new MpError({
      code: 'SERIAL_BINDING_INVALID',
      message: `MP_SERIAL_BINDING=${spec} could not be imported: ${describeError(error)}`,
      file: spec,
      hint: 'Unset MP_SERIAL_BINDING to use real serial ports, or point it at a module that exports `binding`.',
      cause: error,
    });
  }
  const binding = module.binding ?? module.default?.binding;
  if (
    !binding ||
    typeof (binding as BindingInterface).open !== 'function' ||
    typeof (binding as BindingInterface).list !== 'function'
  ) {
    throw new MpError({
      code: 'SERIAL_BINDING_INVALID',
      message: `MP_SERIAL_BINDING=${spec} does not export a serialport binding named \`binding\``,
      file: spec,
      hint: 'Export `binding` (an object with list() and open(), see @serialport/bindings-interface), or unset MP_SERIAL_BINDING.',
    });
  }
  return binding as BindingInterface;
}
