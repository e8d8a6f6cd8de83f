/**
 * @mp/core: the programmatic API of mp. The CLI is a thin layer over these functions.
 *
 * Folders, one concern each:
 *   plugin/    board & library contracts (valibot schemas), define*, extends, discovery, registry
 *   config/    mp.config.* schema, loading, defaults, environment and flag overrides
 *   sources/   MicroPython and library sources: git cache (shallow, mirrored, locked), its
 *              housekeeping (temporaries, builds registered as users), local folders
 *   toolchain/ the Toolchain interface and its Docker implementation: images, containers, mounts
 *   manifest/  the generated FROZEN_MANIFEST
 *   firmware/  mp build as typed stages: resolve → fetch → plan → compile → export; the sidecar
 *              schema, cache key, make invocations, C modules, dry run, clean
 *   upstream/  what a MicroPython tree says of itself: its ESP boards, the toolchain it needs
 *   serial/    ports and which is the board, USB ids, the binding (real or emulated), Web Serial, monitor
 *   flash/     esptool-js session, delta flashing against per-device records, erase, firmware images
 *   repl/      the board's raw REPL (as mpremote drives it) and copying files with it
 *   dev/       mp dev: the state machine, the effects it drives, watcher, syntax check
 *   targets/   many targets at once (`mp build --all`): scheduling over engines, export/index.json
 *   util/      atomic writes, hashes, locks, cache paths, validation kit, byte sizes
 *   errors.ts  MpError: a code from the catalog (errors-data.ts), message, hint, plugin/file/step
 *   events.ts  Steps, the one step runner and its events (core never writes to the terminal)
 */

export {
  CONFIG_FILE_NAMES,
  DEFAULTS,
  findConfigFile,
  flattenPlugins,
  loadConfig,
  MAKE_VARIABLE,
  parseMirrorEnv,
  TARGET_NAME,
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
export * from './targets/index.ts';
export * from './toolchain/engine.ts';
export * from './toolchain/index.ts';
export * from './upstream/board-plugin.ts';
export * from './upstream/boards.ts';
export * from './upstream/toolchains.ts';
export * from './upstream/tree.ts';
export { formatBytes } from './util/format.ts';
export { writeFileAtomic } from './util/fs.ts';
export { acquireLock, tryAcquireLock, withLock } from './util/lock.ts';
export { userCacheDir } from './util/paths.ts';
export { closest } from './util/validate.ts';
