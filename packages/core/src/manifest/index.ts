export {
  checkFreezeEntries,
  type FrozenManifestInput,
  freezeEntryFiles,
  generateFrozenManifest,
  type ManifestLibrary,
  type ProjectModule,
  type ProjectModules,
  scanProjectModules,
} from './frozen-manifest.ts';
