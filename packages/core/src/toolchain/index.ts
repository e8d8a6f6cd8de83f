/** The toolchain builds compile in: the interface, its Docker implementation, images and containers. */
export {
  CCACHE_BIN,
  CCACHE_DIR,
  CCACHE_DOCKERFILE,
  CCACHE_TOOL_DIR,
  CCACHE_TOOL_VOLUME,
  ccacheFromEnv,
  ccacheHostDir,
  ccacheToolReady,
  ensureCcacheTool,
  TOOL_LABEL,
} from './ccache.ts';
export {
  type ContainerMount,
  DockerContainer,
  type DockerContainerSpec,
  type DockerExecOptions,
  LineSplitter,
  ownerLabels,
  removeOrphanContainers,
  type StartOptions,
  TOOLCHAIN_LABEL,
} from './container.ts';
export { type MountMode, mountModeFor } from './copy.ts';
export { type DockerToolchainOptions, dockerSpec, dockerToolchain, volumeName } from './docker.ts';
export { type EngineApi, EngineApiError, engineApi } from './engine-api.ts';
export { type EngineAddress, engineAddress, inspectImageId, pingEngine } from './engine-http.ts';
export {
  dockerfileImageTag,
  ensureImage,
  type ImageProgressOptions,
  type ImageRequest,
  normalizeImageRef,
  type ToolchainImageInfo,
  toolchainImageRef,
} from './image.ts';
export {
  CACHE_LABEL,
  DEFAULT_LEASE_SECONDS,
  LEASE_LABEL,
  LeasedContainer,
  type LeaseOptions,
  leaseAvailable,
  leaseSecondsFromEnv,
  removeLeasedContainers,
  SPEC_LABEL,
  WATCHDOG,
} from './lease.ts';
export type {
  CopyInOptions,
  ExecOptions,
  ExecResult,
  Toolchain,
  ToolchainContainer,
  ToolchainMount,
  ToolchainSpec,
} from './toolchain.ts';
