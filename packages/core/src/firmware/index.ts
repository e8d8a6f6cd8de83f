/** `mp build`: the stages (resolve, fetch, plan, compile, export), their steps, the cache key, make, the export and its sidecar. */

export { type CModule, cModuleTemplate, resolveCModules } from './c-modules.ts';
export { hashOf, type LastBuild, readLastBuild, stableJson } from './cache-key.ts';
export { type CleanOptions, type CleanResult, cleanProject } from './clean.ts';
export {
  type CompileDeps,
  type Compiled,
  compileFirmware,
  hostMpyCrossPath,
  mountedPaths,
  toolchainSpec,
} from './compile.ts';
export { type BuildPlan, buildPlan, dryRun } from './dry-run.ts';
export { type BuildResult, type ExportDeps, type Exported, exportFirmware, exportNameFor } from './export.ts';
export {
  type ExportNameInput,
  exportFileName,
  exportTimestamp,
  type MicroPythonIdentity,
  micropythonVersionLabel,
  safeNamePart,
} from './export-name.ts';
export {
  decideProtectedWrite,
  type ExportFile,
  type ExportOutcome,
  type ExportPlan,
  sha256Hex,
  uniqueName,
  writeExport,
} from './export-write.ts';
export {
  type FetchDeps,
  type Fetched,
  type FetchedLibrary,
  type FetchedMicroPython,
  fetchSources,
  withBuildOptions,
} from './fetch.ts';
export {
  type CachedFirmware,
  DEFAULT_FIRMWARE_CACHE_BYTES,
  type FirmwareCacheEntry,
  findCachedFirmware,
  firmwareCacheDir,
  firmwareCacheSize,
  parseByteSize,
  storeFirmware,
  trimFirmwareCache,
} from './firmware-cache.ts';
export {
  analyzeMakeFailure,
  CONTAINER,
  CONTAINER_PATHS,
  type MakeFailure,
  makeScript,
  type PathMapping,
  parseSubmoduleList,
  portMakeCommand,
  portMakeVariables,
  shellQuote,
  submodulesScript,
} from './make.ts';
export { type Build, type BuildContext, type BuildOptions, createBuild, pathMappings } from './pipeline.ts';
export {
  type Drafted,
  draftPlan,
  type PlanDeps,
  type Planned,
  planBuild,
  prepareToolchain,
  type ToolchainChoice,
  toolchainChoice,
} from './plan.ts';
export {
  type ResolveDeps,
  type Resolved,
  type ResolvedLibrary,
  type ResolvedMicroPython,
  resolveBuild,
  type SourceCache,
} from './resolve.ts';
export {
  EXPORT_SCHEMA,
  type ExportedLibraryFile,
  type ExportedSegment,
  type ExportSidecar,
  type LatestExportIndex,
  MP_VERSION,
} from './sidecar.ts';
export { type StopOptions, type StopResult, stopContainers } from './stop.ts';
export { chooseSubmodules, submodulesUnusedBy } from './submodules.ts';
export {
  compareInputs,
  createVerification,
  type InputDifference,
  type Verification,
  type VerifyOptions,
  type VerifyResult,
} from './verify.ts';
