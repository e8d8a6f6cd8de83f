/** How mp writes amounts for people, the same in core's step titles and the CLI's summaries. */

/**
 * Bytes in binary units: one decimal for KiB, two from MiB up, so sector-sized steps stay visible.
 * @example formatBytes(4096) // '4.0 KiB'; formatBytes(1_572_864) // '1.50 MiB'
 */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(2)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}
