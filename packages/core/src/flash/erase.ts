/**
 * `mp erase`: the whole flash of the board, as `esptool erase_flash` (seed: `make erase`), then
 * the board's device record is forgotten, so the next `mp flash` writes every sector. The chip
 * is restarted afterwards; with nothing in flash, its ROM has nothing to boot until flashed.
 */
import { MpError } from '../errors.ts';
import { runJob, type Step, type StepContext, type StepObserver } from '../events.ts';
import type { EspChip } from '../plugin/types.ts';
import type { BindingInterface } from '../serial/index.ts';
import { DeviceStateStore } from './device-state.ts';
import { EspSession } from './esp-session.ts';

export interface EraseOptions {
  port: string;
  /** The chip the project's board expects; another one found on the port is refused. */
  chip?: EspChip;
  boardId?: string;
  binding?: BindingInterface;
  devices?: DeviceStateStore;
  connectAttempts?: number;
}

export interface EraseResult {
  port: string;
  chip: string;
  mac: string;
  flashSize?: string;
  ms: number;
}

export interface EraseJob {
  steps: Step<EraseJob>[];
  result?: EraseResult;
  dispose(): Promise<void>;
}

export function createEraseJob(options: EraseOptions): EraseJob {
  const devices = options.devices ?? new DeviceStateStore();
  let session: EspSession | undefined;
  const started = performance.now();
  const job: EraseJob = {
    steps: [
      {
        id: 'connect',
        title: `Connect to the board on ${options.port}`,
        run: async (_job, step: StepContext) => {
          session = await EspSession.open({
            path: options.port,
            binding: options.binding,
            expectChip: options.chip,
            boardId: options.boardId,
            signal: step.signal,
            logger: step.logger,
            connectAttempts: options.connectAttempts,
          });
          const { info } = session;
          step.title(
            `Connected to ${info.description} on ${options.port} (MAC ${info.mac}${info.flashSize ? `, ${info.flashSize} flash` : ''})`,
          );
        },
      },
      {
        id: 'erase',
        title: 'Erase the whole flash',
        run: async (_job, step: StepContext) => {
          if (!session) throw new MpError({ code: 'FLASH_FAILED', message: 'not connected' });
          await session.eraseFlash();
          await devices.forget(session.info.mac);
          await session.resetToApp();
          const { info } = session;
          job.result = {
            port: options.port,
            chip: info.description,
            mac: info.mac,
            flashSize: info.flashSize,
            ms: performance.now() - started,
          };
          step.title(`Erased ${info.flashSize ?? 'the'} flash of ${info.description} on ${options.port}`);
        },
      },
    ],
    async dispose() {
      await session?.close();
    },
  };
  return job;
}

/** Erases start to finish without a UI (programmatic use, tests). */
export async function eraseBoard(
  options: EraseOptions & { signal?: AbortSignal; observer?: StepObserver },
): Promise<EraseResult> {
  return (await runJob(createEraseJob(options), options)).result!;
}
