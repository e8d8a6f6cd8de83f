/** Toolchain images and containers (the engine connection itself is in engine.ts). */
export {
  type ContainerMount,
  type ExecOptions,
  type ExecResult,
  LineSplitter,
  ownerLabels,
  removeOrphanContainers,
  type StartOptions,
  TOOLCHAIN_LABEL,
  ToolchainContainer,
  type ToolchainContainerSpec,
} from './container.ts';
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
