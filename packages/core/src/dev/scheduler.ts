/**
 * Turns a stream of file changes into builds: bursts of saves (save-all, git checkout) become one
 * build, a change that lands during a build is never lost (one more build follows with the newest
 * state), and two builds never run at once.
 */
export interface RebuildSchedulerOptions {
  /** Quiet time after the last change before a build starts; coalesces bursts. */
  debounceMs?: number;
  /** Runs one build for the set of paths changed since the previous one. Errors are the caller's to report. */
  build: (changed: ReadonlySet<string>) => Promise<void>;
  /** Called when `build` throws (it should report, not throw). */
  onError?: (error: unknown) => void;
}

export class RebuildScheduler {
  private readonly debounceMs: number;
  private readonly options: RebuildSchedulerOptions;
  private pending = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  /** Builds started so far (for status lines and tests). */
  builds = 0;

  constructor(options: RebuildSchedulerOptions) {
    this.options = options;
    // Editors write a save-all within a few ms of each other; longer would only add latency.
    this.debounceMs = options.debounceMs ?? 10;
  }

  /** A path changed. */
  notify(path: string): void {
    if (this.stopped) return;
    this.pending.add(path);
    if (this.running) return; // picked up when the running build ends
    this.arm();
  }

  /** Resolves when no build is running or waiting. */
  async idle(): Promise<void> {
    while (this.running || this.timer) {
      if (this.running) await this.running;
      else await new Promise((resolve) => setTimeout(resolve, this.debounceMs));
    }
  }

  /** No new builds; waits for the running one to end. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private arm(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.start();
    }, this.debounceMs);
  }

  private start(): void {
    if (this.stopped || this.running || this.pending.size === 0) return;
    const changed = this.pending;
    this.pending = new Set();
    this.builds++;
    this.running = (async () => {
      try {
        await this.options.build(changed);
      } catch (error) {
        this.options.onError?.(error);
      } finally {
        this.running = undefined;
        // Changes that arrived during the build: build the newest state next.
        if (this.pending.size > 0 && !this.stopped) this.arm();
      }
    })();
  }
}
