import { formatBytes } from '@mp/core';

// The commands that print sizes (build, clean, doctor, dev) import it from here.

/** Formats progress as "████░░░░ 42% 130.0 KiB/310.0 KiB 44.1 KiB/s ETA 3s" from (done, total) samples. */
export class ProgressMeter {
  private readonly started = performance.now();

  format(done: number, total: number | undefined, unit = ''): string {
    const seconds = (performance.now() - this.started) / 1000;
    const rate = seconds > 0 ? done / seconds : 0;
    const amount = unit === 'bytes' ? formatBytes(done) : `${done}${unit ? ` ${unit}` : ''}`;
    if (!total) return `${amount}${rate ? ` ${formatRate(rate, unit)}` : ''}`;
    const fraction = Math.min(1, done / total);
    const width = 20;
    const filled = Math.round(fraction * width);
    const eta = rate > 0 ? Math.max(0, (total - done) / rate) : undefined;
    return `${'█'.repeat(filled)}${'░'.repeat(width - filled)} ${Math.floor(fraction * 100)}% ${unit === 'bytes' ? `${formatBytes(done)}/${formatBytes(total)}` : `${done}/${total}`}${rate ? ` ${formatRate(rate, unit)}` : ''}${eta !== undefined && fraction < 1 ? ` ETA ${formatSeconds(eta)}` : ''}`;
  }
}

function formatRate(rate: number, unit: string): string {
  return unit === 'bytes' ? `${formatBytes(Math.round(rate))}/s` : `${rate.toFixed(1)}/s`;
}

export function formatSeconds(s: number): string {
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)}s`;
  return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
}
