/** Prints how long the real-upstream tier took (the README's test command must stay under 30 minutes). */
import { requireKit } from '../src/kit.ts';

export default function setup() {
  requireKit();
  const started = performance.now();
  return () => {
    const seconds = (performance.now() - started) / 1000;
    process.stdout.write(`\nreal upstream tier: ${seconds.toFixed(1)} s\n`);
  };
}
