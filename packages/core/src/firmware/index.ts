/** `mp build`: planning, the cache key, compiling in the toolchain container, export. */

export { type CModule, cModuleTemplate, resolveCModules } from './c-modules.ts';
export { hashOf, type LastBuild, readLastBuild, stableJson } from './cache-key.ts';
export { type CleanOptions, type CleanResult, cleanProject } from './clean.ts';
export {
  decideProtectedWrite,
  type ExportFile,
  type ExportOutcome,
  type ExportPlan,
  sha256Hex,
  uniqueName,
  writeExport,
} from './export.ts';
export {
  type ExportNameInput,
  exportFileName,
  exportTimestamp,
  type MicroPythonIdentity,
  micropythonVersionLabel,
  safeNamePart,
} from './export-name.ts';
export {
  analyzeMakeFailure,
  CONTAINER,
  CONTAINER_PATHS,
  type MakeFailure,
  makeScript,
  parseSubmoduleList,
  portMakeCommand,
  portMakeVariables,
  shellQuote,
  submodulesScript,
} from './make.ts';
export {
  type Build,
  type BuildContext,
  type BuildOptions,
  type BuildResult,
  buildContainerSpec,
  createBuild,
  type ResolvedLibrary,
  type ResolvedMicroPython,
  type ToolchainChoice,
  toolchainChoice,
  withBuildOptions,
} from './pipeline.ts';
export { type BuildPlan, buildPlan } from './plan.ts';
export {
  type BuildSidecar,
  EXPORT_SCHEMA,
  type ExportedLibraryFile,
  type ExportedSegment,
  type LatestExportIndex,
} from './sidecar.ts';
