/**
 * One rebuild of `mp dev`: the incremental build in the warm container with mpy-cross over the
 * saved Python files beside it, and the session's previous export cleared away after a good build.
 */
import { extname } from 'node:path';
import type { StepObserver } from '../events.ts';
import type { Project } from '../project.ts';
import type { BuildResult, DevEffects } from './effects.ts';
import type { SyntaxProblem } from './syntax-check.ts';

export type RebuildOutcome =
  | { kind: 'built'; result: BuildResult; flashable: boolean }
  | { kind: 'syntax-error'; problem: SyntaxProblem }
  | { kind: 'failed'; error: unknown };

export class Rebuilder {
  readonly #effects: Pick<DevEffects, 'toolchain' | 'fileExists' | 'removeFile'>;
  #previous: BuildResult | undefined;

  constructor(effects: Pick<DevEffects, 'toolchain' | 'fileExists' | 'removeFile'>) {
    this.#effects = effects;
  }

  async run(
    project: Project,
    files: string[],
    run: {
      signal: AbortSignal;
      observer: StepObserver;
      /** The saved Python compiled (or there was none): the build is likely to succeed. */
      onChecked?: () => void;
    },
  ): Promise<RebuildOutcome> {
    const { toolchain } = this.#effects;
    const python = files.filter((f) => extname(f) === '.py' && this.#effects.fileExists(f));
    // The syntax check runs beside the build's first steps and make, not before them: a bad save
    // is reported in milliseconds and stops the build; a good one costs no extra latency.
    const attempt = new AbortController();
    const onStop = () => attempt.abort(run.signal.reason);
    run.signal.addEventListener('abort', onStop, { once: true });
    let problem: SyntaxProblem | undefined;
    const check = python.length
      ? toolchain.syntaxCheck(python, attempt.signal).then((found) => {
          problem = found;
          if (found) attempt.abort();
          else run.onChecked?.();
        })
      : Promise.resolve().then(() => run.onChecked?.());
    let outcome: Awaited<ReturnType<typeof toolchain.build>>;
    try {
      outcome = await toolchain.build(project, { signal: attempt.signal, observer: run.observer });
    } finally {
      run.signal.removeEventListener('abort', onStop);
    }
    await check;
    if (!outcome.ok)
      return problem ? { kind: 'syntax-error', problem } : { kind: 'failed', error: outcome.error };
    await this.#replacePrevious(outcome.result);
    return { kind: 'built', result: outcome.result, flashable: outcome.flashable };
  }

  /** One save, one export file: the previous export of this session is replaced, not piled up. */
  async #replacePrevious(result: BuildResult): Promise<void> {
    const previous = this.#previous;
    this.#previous = result;
    if (!previous || previous.upToDate || previous.firmware === result.firmware) return;
    await this.#effects.removeFile(previous.firmware);
    await this.#effects.removeFile(previous.sidecarFile);
  }
}
