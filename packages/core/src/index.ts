/**
 * @mp/core: the programmatic API of mp. The CLI is a thin layer over these functions.
 *
 * Folders, one concern each:
 *   plugin/    board & library contracts, define* helpers, discovery, validation, registry
 *   config/    mp.config.* loading, validation, defaults and flag overrides
 *   sources/   MicroPython and library sources: git cache (shallow, mirrored, locked), local folders
 *   toolchain/ Docker: images (present, pull, build), toolchain containers, orphan cleanup
 *   manifest/  the generated FROZEN_MANIFEST
 *   firmware/  mp build: steps, cache key, make, export and sidecar
 *   serial/    ports and which is the board, USB ids, the binding (real or emulated), Web Serial, monitor
 *   flash/     esptool-js session, delta flashing against per-device records, firmware images
 *   dev/       mp dev: watcher, syntax check, the session's state machine and the effects it drives
 *   util/      atomic writes, locks, cache paths, validation kit, byte sizes
 *   errors.ts  MpError and friends: permanent code, message, hint, plugin/file/step at fault
 *   events.ts  Steps and their events (core never writes to the terminal)
 */

export {
  CONFIG_FILE_NAMES,
  DEFAULTS,
  findConfigFile,
  flattenPlugins,
  loadConfig,
  MAKE_VARIABLE,
  parseMirrorEnv,
  validateConfig,
} from './config/load.ts';
export type * from './config/types.ts';
export {
  type DevBoard,
  type DevBuildOutcome,
  type DevClock,
  type DevEffects,
  type DevToolchain,
  realDevEffects,
} from './dev/effects.ts';
export { type DevEvent, type DevSessionOptions, runDevSession } from './dev/session.ts';
export { checkPythonSyntax, parseMpyCrossError, type SyntaxProblem } from './dev/syntax-check.ts';
export {
  isEditorTempFile,
  type ProjectWatcher,
  type WatchEvent,
  type WatchTargets,
  watchProject,
} from './dev/watch.ts';
export * from './errors.ts';
export * from './events.ts';
export * from './firmware/index.ts';
export * from './flash/index.ts';
export * from './manifest/index.ts';
export { registerCoreResolver } from './plugin/core-resolver.ts';
export { defineBoard, defineConfig, defineLibrary } from './plugin/define.ts';
export {
  discoverPluginPackages,
  findWorkspaceRoot,
  importPluginPackage,
  type PluginPackage,
  workspacePackageDirs,
} from './plugin/discovery.ts';
export { type PluginListing, PluginRegistry } from './plugin/registry.ts';
export * from './plugin/types.ts';
export { isBoard, isLibrary, validatePlugin } from './plugin/validate.ts';
export * from './plugin/version.ts';
export { type OpenProjectOptions, openProject, type Project } from './project.ts';
export * from './repl/index.ts';
export * from './serial/index.ts';
export * from './sources/index.ts';
export * from './toolchain/engine.ts';
export * from './toolchain/index.ts';
export * from './upstream/boards.ts';
export * from './upstream/tree.ts';
export { formatBytes } from './util/format.ts';
export { writeFileAtomic } from './util/fs.ts';
export { acquireLock, tryAcquireLock, withLock } from './util/lock.ts';
export { userCacheDir } from './util/paths.ts';
export { closest } from './util/validate.ts';
export * from './upstream/toolchains.ts';
export * from './upstream/board-plugin.ts';
