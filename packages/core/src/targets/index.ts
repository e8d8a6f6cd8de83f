/** Many targets at once: the config's `targets`, the engines they are spread over, export/index.json. */

export {
  type BuildTargetsOptions,
  buildTargets,
  type TargetEvent,
  type TargetOutcome,
  type TargetsRun,
} from './build-targets.ts';
export { KeyedQueue, sharedEngineToolchain } from './engine-toolchain.ts';
export {
  defaultParallel,
  type Engine,
  engineAnswers,
  localParallel,
  probeEngines,
  type ReadyEngine,
  readDockerContext,
  resolveEngines,
} from './engines.ts';
export {
  indexEntry,
  readTargetsIndex,
  recordTarget,
  TARGETS_INDEX_SCHEMA,
  type TargetsIndex,
  type TargetsIndexEntry,
  targetsIndexFile,
  withExportLock,
} from './export-index.ts';
export {
  type AttemptResult,
  type Scheduled,
  type ScheduleOptions,
  type Slots,
  scheduleTargets,
} from './schedule.ts';
export { listTargets, selectTargets, type TargetListing, targetProject } from './targets.ts';
