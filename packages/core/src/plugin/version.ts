/** MicroPython release versions, as plugins compare them in `resolve` hooks. */
export interface ReleaseVersion {
  major: number;
  minor: number;
  patch: number;
}

/** Stable release tags only: `v1.28.0`, never `v1.29.0-preview`. */
export const STABLE_TAG = /^v(\d+)\.(\d+)\.(\d+)$/;

/** The version in a stable tag, or undefined for anything else (previews, branches, shas). */
export function parseReleaseTag(tag: string): ReleaseVersion | undefined {
  const m = STABLE_TAG.exec(tag);
  return m ? { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]) } : undefined;
}

export function compareVersions(a: ReleaseVersion, b: ReleaseVersion): number {
  return a.major - b.major || a.minor - b.minor || a.patch - b.patch;
}

/** `versionAtLeast(v, 1, 21)` is true for v1.21.0 and later. */
export function versionAtLeast(v: ReleaseVersion, major: number, minor: number, patch = 0): boolean {
  return compareVersions(v, { major, minor, patch }) >= 0;
}
