/**
 * `mp flash` as steps: connect (reset into the bootloader, check the chip, stub, baud, flash
 * size), write (only the 4 KiB sectors that differ from what this device was last given), verify
 * (the board's MD5 of every region; a mismatch means a full write), restart into the application.
 */
import { createHash } from 'node:crypto';
import { MpError } from '../errors.ts';
import { runJob, type Step, type StepContext, type StepObserver } from '../events.ts';
import type { BindingInterface } from '../serial/index.ts';
import type { SerialMonitor } from '../serial/monitor.ts';
import { formatBytes as formatSize } from '../util/format.ts';
import { warmUpDeflate } from './deflate.ts';
import { type DeviceSegmentState, type DeviceState, DeviceStateStore } from './device-state.ts';
import { describeLoaderError, deviceLostHint } from './errors.ts';
import { deflateForFlash, type EspDeviceInfo, EspSession } from './esp-session.ts';
import { checkFirmwareImage, type FirmwareImage } from './firmware.ts';
import { ROM_WRITE_LIMIT } from './loaders.ts';
import { type RestartResult, restartIntoApplication } from './reset.ts';
import { changedRuns, hashSectors, padToWord, runBytes, SECTOR_SIZE, type SectorRun } from './sectors.ts';

export interface FlashFirmwareOptions {
  /** What to flash; with `pending`, a firmware of the same board to connect as (see there). */
  firmware: FirmwareImage;
  /**
   * The firmware to write is still being built (`mp dev`): the job resets the board into its
   * loader, loads the stub and raises the rate meanwhile, as for `firmware` (the one flashed last:
   * same board, chip and rate), then writes what this resolves to. If it rejects, the board is
   * restarted into what it ran and the job fails with that error.
   */
  pending?: Promise<FirmwareImage>;
  /** Serial port path (see `selectPort`). */
  port: string;
  /** Baud rate once the stub runs. Default: the firmware's (board layout or export sidecar). */
  baudRate?: number;
  /** Write every sector, whatever the device record says (`--full`). */
  full?: boolean;
  /** Erase the whole flash first (`mp flash --erase`); the write is then a full one. */
  erase?: boolean;
  /** Default: `MP_SERIAL_BINDING`, else real hardware. */
  binding?: BindingInterface;
  /** Where device records live. Default: `<userCacheDir>/devices`. */
  devices?: DeviceStateStore;
  /**
   * A monitor to hand the port to right before the board restarts (`mp flash --monitor`, `mp dev`).
   * If it is attached it is detached first, so the flasher can open the port.
   */
  monitor?: SerialMonitor;
  /** Restart the board into the new firmware at the end. Default true. */
  reset?: boolean;
  /** Reset-and-sync attempts before "no answer" (esptool's default: 7). */
  connectAttempts?: number;
  /**
   * Flash even if the main file does not look like a firmware image for the board's chip
   * (`--force`): no 0xE9 magic byte, or a header naming another chip.
   */
  force?: boolean;
}

/** What a flash did, for the summary line and `--json`. */
export interface FlashResult {
  port: string;
  device: EspDeviceInfo;
  /** `delta`: changed sectors only; `full`: every sector; `unchanged`: the board already held the image. */
  mode: 'delta' | 'full' | 'unchanged';
  /** Why every sector was written (no record of this device, --full, the flash was not what mp remembered). */
  fullReason?: string;
  /** A delta write (or an unchanged image) failed the MD5 check and the whole image was written. */
  fellBack: boolean;
  /** Size of the image (all segments). */
  imageBytes: number;
  /** Image bytes written: each sector counted once, however often it was written (fallback, retry). */
  writtenBytes: number;
  /** Compressed data bytes sent for the writes that went through (each write that was repeated counts again). */
  compressedBytes: number;
  /** Every byte sent to the board (stub uploads and commands included, a reconnection's too). */
  wireBytes: number;
  sectorsWritten: number;
  sectorsTotal: number;
  /**
   * The port the board came back on after the restart, when that is not `port`: a chip on its own
   * USB (ESP32-S3/C3 USB-Serial/JTAG) re-enumerates, e.g. /dev/ttyACM0 → /dev/ttyACM1.
   */
  portAfterRestart?: string;
}

interface PlannedSegment {
  offset: number;
  /** Content as it will sit in flash (header as esptool writes it, padded to whole words). */
  data: Uint8Array;
  hashes: string[];
  sha256: string;
  md5: string;
  runs: SectorRun[];
}

const hex = (n: number) => `0x${n.toString(16)}`;

type SegmentDigests = Pick<PlannedSegment, 'hashes' | 'sha256' | 'md5'>;

function digestsOf(data: Uint8Array): SegmentDigests {
  return {
    hashes: hashSectors(data),
    sha256: createHash('sha256').update(data).digest('hex'),
    md5: createHash('md5').update(data).digest('hex'),
  };
}

function overlaps(a: { offset: number; size: number }, b: { offset: number; size: number }): boolean {
  return a.offset < b.offset + b.size && b.offset < a.offset + a.size;
}

function isProtocolError(error: unknown): error is MpError {
  return error instanceof MpError && error.code === 'DEVICE_PROTOCOL_ERROR';
}

/**
 * One flash of one board. Run its `steps` (the CLI renders them; `flashFirmware` runs them plainly),
 * then always `dispose()`: it releases the port whatever happened.
 */
export class FlashJob {
  readonly options: FlashFirmwareOptions;
  readonly steps: Step<FlashJob>[];
  session: EspSession | undefined;
  result: FlashResult | undefined;
  readonly #devices: DeviceStateStore;
  /** What is written: `options.firmware`, or what `options.pending` resolved to once connected. */
  #firmware: FirmwareImage;
  #record: DeviceState | undefined;
  #segments: PlannedSegment[] = [];
  /** The chip the image's header names (undefined: it does not say, or --force). */
  #imageChip: string | undefined;
  #writeStarted = false;
  /** Per segment (by offset), the indexes of the sectors written. */
  readonly #writtenSectors = new Map<number, Set<number>>();
  #compressedBytes = 0;
  /** Bytes sent in sessions closed since (a reconnection after a protocol error). */
  #wireBytesBefore = 0;
  #mode: FlashResult['mode'] = 'delta';
  /** A write too large for the ROM's 1 KiB blocks came up: sessions from then on load the stub. */
  #wantStub = false;
  #fullReason: string | undefined;
  #fellBack = false;

  constructor(options: FlashFirmwareOptions) {
    this.options = options;
    this.#firmware = options.firmware;
    this.#devices = options.devices ?? new DeviceStateStore();
    const explained =
      (work: (step: StepContext) => Promise<void>) =>
      async (_: FlashJob, step: StepContext): Promise<void> => {
        try {
          await work(step);
        } catch (error) {
          throw this.#explain(error);
        }
      };
    const steps: Step<FlashJob>[] = [
      {
        id: 'connect',
        title: `Connect to the board on ${options.port}`,
        run: explained((step) => this.#connect(step)),
      },
      ...(options.erase
        ? [{ id: 'erase', title: 'Erase the whole flash', run: explained((step) => this.#erase(step)) }]
        : []),
      { id: 'write', title: 'Write firmware', run: explained((step) => this.#write(step)) },
      {
        id: 'verify',
        title: 'Verify (MD5 of the flash, computed on the board)',
        run: explained((step) => this.#verify(step)),
      },
    ];
    if (options.reset !== false) {
      steps.push({
        id: 'reset',
        title: 'Restart into the new firmware',
        run: explained((step) => this.#reset(step)),
      });
    }
    this.steps = steps;
  }

  async #connect(step: StepContext): Promise<void> {
    this.#checkImage(this.options.firmware);
    await this.options.monitor?.detach();
    const { pending } = this.options;
    // CPU work that does not need the board (~10 ms per MiB of image, 25 ms for the compressor's
    // first use) is done while the reset into the loader waits; the image as written usually is
    // the image as given.
    const early = new Map<number, { data: Uint8Array; digests: SegmentDigests }>();
    setTimeout(() => {
      warmUpDeflate();
      if (pending) return;
      for (const segment of this.options.firmware.segments) {
        const data = padToWord(segment.data);
        early.set(segment.offset, { data, digests: digestsOf(data) });
      }
    }, 20).unref();
    this.session = await this.#openSession(step);
    if (pending) {
      step.title(
        `Connected to ${this.session.info.description} on ${this.options.port}; waiting for the build`,
      );
      const connectedAs = this.#imageChip;
      // A rejection (the build failed) ends the job here: dispose() restarts the board.
      const firmware = await pending;
      this.#checkImage(firmware);
      if (this.#imageChip !== connectedAs && this.#imageChip !== undefined) {
        throw new MpError({
          code: 'IMAGE_WRONG_CHIP',
          message: `${firmware.file} is a firmware image for the ${this.#imageChip}, but the board on ${this.options.port} is an ${this.session.info.chip}`,
          file: firmware.file,
          plugin: firmware.boardId,
          hint: `Nothing was written. Build for the ${this.session.info.chip}, or connect the ${this.#imageChip} board.`,
        });
      }
      this.#firmware = firmware;
    }
    const firmware = this.#firmware;
    const session = this.session;
    const info = session.info;
    const segments: PlannedSegment[] = [];
    for (const segment of firmware.segments) {
      const data = padToWord(
        await session.imageAsWritten(
          segment.data,
          segment.offset,
          firmware.mode,
          firmware.freq,
          firmware.size,
        ),
      );
      const known = early.get(segment.offset);
      const digests = known && Buffer.compare(known.data, data) === 0 ? known.digests : digestsOf(data);
      segments.push({ offset: segment.offset, data, ...digests, runs: [] });
      const end = segment.offset + data.length;
      if (info.flashSizeBytes !== undefined && end > info.flashSizeBytes) {
        throw new MpError({
          code: 'IMAGE_TOO_LARGE',
          message: `${segment.file} (${formatSize(data.length)} at ${hex(segment.offset)}) ends at ${hex(end)}, beyond the ${info.flashSize} flash of the ${info.description} on ${this.options.port}`,
          file: segment.file,
          plugin: firmware.boardId,
          hint: `Nothing was written. Use a board with more flash, or build a smaller firmware for it (fewer libraries or frozen modules; a board plugin whose layout fits ${info.flashSize}).`,
        });
      }
    }
    this.#segments = segments;
    step.title(
      `Connected to ${info.description} on ${this.options.port} (MAC ${info.mac}${info.flashSize ? `, ${info.flashSize} flash` : ''}, ${info.baudRate} baud)`,
    );
  }

  /** The layout on sector boundaries, and the chip the image's header names (unless --force). */
  #checkImage(firmware: FirmwareImage): void {
    for (const segment of firmware.segments) {
      if (segment.offset % SECTOR_SIZE !== 0) {
        throw new MpError({
          code: 'FLASH_LAYOUT_INVALID',
          message: `${segment.file} goes to ${hex(segment.offset)}, which is not on a 4 KiB sector boundary`,
          file: segment.file,
          plugin: firmware.boardId,
          hint: `Fix the flash layout of board ${firmware.boardId}: offsets must be multiples of 0x1000.`,
        });
      }
    }
    if (!this.options.force) this.#imageChip = checkFirmwareImage(firmware);
  }

  /**
   * Connects with the loader the job needs: an ESP32's ROM writes small changes and checks MD5s
   * itself (no stub upload at 115200 baud); a full write or a chip erase takes the stub. A rate
   * above the board's that does not work falls back to the board's.
   */
  #openSession(step: StepContext): Promise<EspSession> {
    const { firmware } = this.options;
    const baudRate = this.options.baudRate ?? firmware.baud;
    return EspSession.open({
      path: this.options.port,
      binding: this.options.binding,
      baudRate,
      ...(baudRate !== firmware.baud ? { fallbackBaudRate: firmware.baud } : {}),
      loader: this.#wantStub || this.options.full || this.options.erase ? 'stub' : 'rom',
      // --full and --erase read the flash chip's id again.
      ...(this.options.full || this.options.erase
        ? {}
        : { knownFlashSize: async (mac: string) => (await this.#devices.read(mac))?.flashSize }),
      expectChip: firmware.chip,
      boardId: firmware.boardId,
      ...(this.#imageChip ? { image: { chip: this.#imageChip, file: firmware.file } } : {}),
      signal: step.signal,
      logger: step.logger,
      connectAttempts: this.options.connectAttempts,
    });
  }

  /**
   * A fresh start after a protocol error: the port is closed, the chip reset into its ROM loader
   * and the stub loaded again. A stub that took a block twice (esptool-js sent it again when an
   * answer was lost) has gone wrong or hangs; retrying in the same session cannot recover that.
   */
  async #reconnect(step: StepContext): Promise<void> {
    const old = this.session!;
    this.session = undefined;
    this.#wireBytesBefore += old.bytesSent;
    await old.close();
    const fresh = await this.#openSession(step);
    this.session = fresh;
    if (fresh.info.mac !== old.info.mac) {
      throw new MpError({
        code: 'DEVICE_CHANGED',
        message: `The board on ${this.options.port} is not the one mp was flashing (MAC ${old.info.mac} before, ${fresh.info.mac} now)`,
        file: this.options.port,
        hint: 'Nothing more was written. Run the command again to flash the board that is connected now.',
      });
    }
  }

  /**
   * Runs `work` (a write, an MD5 check); after a protocol error, restarts the board and its stub
   * (see `#reconnect`) and runs it once more. The MD5 check after the writes catches anything that
   * went wrong unnoticed.
   */
  async #retryFresh<T>(
    step: StepContext,
    what: string,
    work: (session: EspSession) => Promise<T>,
  ): Promise<T> {
    let first: MpError;
    try {
      return await work(this.session!);
    } catch (error) {
      if (!isProtocolError(error)) throw error;
      first = error;
    }
    step.logger.warn(
      `${first.message}. Restarting the board and loading the flasher stub again, then trying ${what} again.`,
    );
    await this.#reconnect(step);
    try {
      return await work(this.session!);
    } catch (error) {
      if (!isProtocolError(error)) throw error;
      const before = describeLoaderError(first.cause);
      throw new MpError({
        code: error.code,
        message:
          before === describeLoaderError(error.cause)
            ? `${error.message}, also after mp restarted the board and loaded the flasher stub again`
            : `${error.message}. mp had restarted the board and loaded the flasher stub again after the first try failed: ${before}`,
        file: error.file,
        hint: error.hint,
        cause: error.cause,
      });
    }
  }

  /** A lost device's hint says whether anything was written, which only the job knows. */
  #explain(error: unknown): unknown {
    if (!(error instanceof MpError) || error.code !== 'DEVICE_LOST') return error;
    return new MpError({
      code: error.code,
      message: error.message,
      file: error.file,
      hint: deviceLostHint(this.#writeStarted),
      cause: error.cause,
    });
  }

  /** `--erase`: the whole flash, and the device record with it (the next write is a full one). */
  async #erase(step: StepContext): Promise<void> {
    const session = this.session!;
    const started = performance.now();
    await session.eraseFlash();
    await this.#devices.forget(session.info.mac);
    step.title(
      `Erased the whole flash (${session.info.flashSize ?? 'size unknown'}) in ${((performance.now() - started) / 1000).toFixed(1)}s`,
    );
  }

  /** Decides per segment which sectors to write, from the device record. */
  async #plan(): Promise<void> {
    const info = this.session!.info;
    const record = await this.#devices.read(info.mac);
    this.#record = record;
    let reason: string | undefined;
    if (this.options.erase) reason = 'the flash was erased first (--erase)';
    else if (this.options.full) reason = '--full';
    else if (!record) reason = 'mp has not flashed this device before';
    else if (
      record.chip !== info.chip ||
      (record.flashSize && info.flashSize && record.flashSize !== info.flashSize)
    ) {
      reason = 'the device record is for another chip';
    }
    let anyFull = false;
    for (const segment of this.#segments) {
      const previous = reason ? undefined : record?.segments.find((s) => s.offset === segment.offset);
      if (previous) {
        segment.runs = changedRuns(segment.data.length, segment.hashes, previous.sectors);
      } else {
        segment.runs = [{ start: 0, end: segment.data.length }];
        anyFull = true;
        reason ??= `mp does not know what is at ${hex(segment.offset)} on this device`;
      }
    }
    const writes = this.#segments.reduce((n, s) => n + s.runs.length, 0);
    const everything = this.#segments.every((s) => runBytes(s.runs) === s.data.length);
    this.#mode = writes === 0 ? 'unchanged' : everything ? 'full' : 'delta';
    if (this.#mode === 'full') {
      const previous = this.#segments.map((s) => record?.segments.find((r) => r.offset === s.offset));
      const interrupted = previous.every((r) => r?.sectors.every((h) => h === null));
      this.#fullReason = anyFull
        ? reason
        : interrupted && previous.some((r) => r?.verifyFailed)
          ? 'the last write to this device failed its MD5 check'
          : interrupted
            ? 'the last write to this device did not finish'
            : 'every sector changed';
    }
  }

  /** Writes the planned runs; the record marks them unknown first, so an interruption is finished next time. */
  async #writeRuns(step: StepContext, segments: PlannedSegment[]): Promise<void> {
    const payloads = segments.flatMap((segment) =>
      segment.runs.map((run) => ({
        segment,
        offset: segment.offset + run.start,
        run,
        payload: deflateForFlash(segment.data.subarray(run.start, run.end)),
      })),
    );
    const total = payloads.reduce((n, p) => n + p.payload.compressed.length, 0);
    if (this.session!.loader === 'rom' && total > ROM_WRITE_LIMIT) {
      // Once per job: the ROM got the connection (the change was expected to be small); a fresh
      // start loads the stub the way esptool does (see EspSession `#useStub`).
      step.logger.debug(`${total} compressed bytes to write: connecting again with the flasher stub`);
      this.#wantStub = true;
      await this.#reconnect(step);
    }
    await this.#saveRecord(segments, 'pending');
    this.#writeStarted = true;
    let done = 0;
    step.progress(0, total, 'bytes');
    for (const { segment, offset, run, payload } of payloads) {
      const progress = (sent: number) => step.progress(done + sent, total, 'bytes');
      await this.#retryFresh(step, `the write at ${hex(offset)}`, (session) =>
        session.writeDeflated(offset, payload, progress),
      );
      done += payload.compressed.length;
      this.#compressedBytes += payload.compressed.length;
      const written = this.#writtenSectors.get(segment.offset) ?? new Set<number>();
      this.#writtenSectors.set(segment.offset, written);
      for (let i = run.start / SECTOR_SIZE; i * SECTOR_SIZE < run.end; i++) written.add(i);
    }
  }

  /** Sectors and image bytes written so far, each sector once. */
  #writtenTotals(): { bytes: number; sectors: number } {
    let bytes = 0;
    let sectors = 0;
    for (const segment of this.#segments) {
      for (const i of this.#writtenSectors.get(segment.offset) ?? []) {
        bytes += Math.min(SECTOR_SIZE, segment.data.length - i * SECTOR_SIZE);
        sectors++;
      }
    }
    return { bytes, sectors };
  }

  async #write(step: StepContext): Promise<void> {
    await this.#plan();
    const imageBytes = this.#segments.reduce((n, s) => n + s.data.length, 0);
    if (this.#mode === 'unchanged') {
      step.skip(`the board already holds this image (${formatSize(imageBytes)}), if the MD5 check agrees`);
      return;
    }
    const bytes = this.#segments.reduce((n, s) => n + runBytes(s.runs), 0);
    const sectors = this.#segments.reduce(
      (n, s) => n + s.runs.reduce((m, r) => m + Math.ceil((r.end - r.start) / SECTOR_SIZE), 0),
      0,
    );
    const totalSectors = this.#segments.reduce((n, s) => n + s.hashes.length, 0);
    step.title(
      this.#mode === 'full'
        ? `Write the whole image, ${formatSize(imageBytes)} (${this.#fullReason})`
        : `Write ${sectors} changed of ${totalSectors} sectors (${formatSize(bytes)} of ${formatSize(imageBytes)})`,
    );
    await this.#writeRuns(
      step,
      this.#segments.filter((s) => s.runs.length > 0),
    );
  }

  async #mismatched(step: StepContext): Promise<PlannedSegment[]> {
    const wrong: PlannedSegment[] = [];
    for (const segment of this.#segments) {
      const md5 = await this.#retryFresh(step, 'the MD5 check', (session) =>
        session.md5(segment.offset, segment.data.length),
      );
      if (md5 !== segment.md5) wrong.push(segment);
    }
    return wrong;
  }

  async #verify(step: StepContext): Promise<void> {
    let wrong = await this.#mismatched(step);
    const wroteEverything = (s: PlannedSegment) => runBytes(s.runs) === s.data.length;
    if (wrong.length > 0 && !wrong.every(wroteEverything)) {
      // The flash was not what the record said (another tool wrote it, or a write went wrong
      // unnoticed): write the whole of each region that differs, then check again.
      this.#fellBack = true;
      this.#fullReason = 'the flash did not match what mp remembered';
      step.title(`Flash differs from what mp remembered: writing the whole image`);
      for (const segment of wrong) segment.runs = [{ start: 0, end: segment.data.length }];
      await this.#writeRuns(step, wrong);
      wrong = await this.#mismatched(step);
    }
    if (wrong.length > 0) {
      await this.#saveRecord(wrong, 'unknown');
      const first = wrong[0]!;
      throw new MpError({
        code: 'VERIFY_FAILED',
        message: `The flash at ${hex(first.offset)} on ${this.options.port} does not match ${this.#firmware.file} after writing it (MD5 differs)`,
        file: this.#firmware.file,
        hint: 'Run `mp flash --full` again. If it fails again, lower the speed with --baud 115200, use another USB cable or port, and check the board’s power supply.',
      });
    }
    await this.#saveRecord(this.#segments, 'written');
    const session = this.session!;
    const imageBytes = this.#segments.reduce((n, s) => n + s.data.length, 0);
    const written = this.#writtenTotals();
    this.result = {
      port: this.options.port,
      device: session.info,
      mode: this.#fellBack ? 'full' : this.#mode,
      ...(this.#fullReason && (this.#fellBack || this.#mode === 'full')
        ? { fullReason: this.#fullReason }
        : {}),
      fellBack: this.#fellBack,
      imageBytes,
      writtenBytes: written.bytes,
      compressedBytes: this.#compressedBytes,
      wireBytes: this.#wireBytesBefore + session.bytesSent,
      sectorsWritten: written.sectors,
      sectorsTotal: this.#segments.reduce((n, s) => n + s.hashes.length, 0),
    };
    step.title(
      `Verified ${formatSize(imageBytes)} (MD5 ${this.#segments.map((s) => s.md5.slice(0, 8)).join(', ')})`,
    );
  }

  async #reset(step: StepContext): Promise<void> {
    const session = this.session!;
    const monitor = this.options.monitor;
    let restarted: RestartResult;
    if (monitor) {
      this.session = undefined;
      restarted = await this.#restartWithMonitor(session, monitor, step);
    } else {
      restarted = await session.restart({ signal: step.signal });
      await session.close();
      this.session = undefined;
    }
    this.#followRestart(step, restarted);
  }

  /**
   * Hands the session's port to the monitor, then restarts the board into its application: the
   * monitor reads before the reset, so the first lines the application prints are seen.
   */
  async #restartWithMonitor(
    session: EspSession,
    monitor: SerialMonitor,
    step?: Pick<StepContext, 'signal' | 'logger'>,
  ): Promise<RestartResult> {
    const port = await session.releasePort();
    await monitor.adopt(port);
    return restartIntoApplication(port, {
      binding: this.options.binding,
      signal: step?.signal,
      logger: step?.logger,
    });
  }

  /** A board on its own USB re-enumerated: say where it is now. */
  #followRestart(step: StepContext, restarted: RestartResult): void {
    if (!restarted.reenumerated || !this.result) return;
    if (restarted.path && restarted.path !== this.options.port) {
      this.result.portAfterRestart = restarted.path;
      step.title(`Restarted into the new firmware; the board is back on ${restarted.path}`);
    } else if (!restarted.path) {
      step.title('Restarted into the new firmware; the board has not come back on USB yet');
    }
  }

  /**
   * Records what the device holds: `pending` before a write (the runs about to be written become
   * unknown), `written` after a passed MD5 check, `unknown` after a failed one.
   */
  async #saveRecord(segments: PlannedSegment[], state: 'pending' | 'written' | 'unknown'): Promise<void> {
    const info = this.session!.info;
    const updated: DeviceSegmentState[] = segments.map((segment) => {
      const inRun = (i: number) =>
        segment.runs.some((r) => i * SECTOR_SIZE >= r.start && i * SECTOR_SIZE < r.end);
      const previous = this.#record?.segments.find((s) => s.offset === segment.offset);
      return {
        offset: segment.offset,
        size: segment.data.length,
        ...(state === 'unknown' ? { verifyFailed: true } : {}),
        sha256: state === 'written' ? segment.sha256 : null,
        sectors:
          state === 'written'
            ? segment.hashes
            : state === 'unknown'
              ? segment.hashes.map(() => null)
              : segment.hashes.map((h, i) =>
                  inRun(i) ? null : (previous?.sectors[i] ?? null) === h ? h : null,
                ),
      };
    });
    const others = (this.#record?.segments ?? []).filter((s) => !updated.some((u) => overlaps(u, s)));
    const record: DeviceState = {
      schema: 'mp.device/1',
      mac: info.mac,
      chip: info.chip,
      ...(info.flashSize ? { flashSize: info.flashSize } : {}),
      updatedAt: new Date().toISOString(),
      firmware: { file: this.#firmware.file, board: this.#firmware.boardId },
      segments: [...others, ...updated].sort((a, b) => a.offset - b.offset),
    };
    await this.#devices.write(record);
    this.#record = record;
  }

  /**
   * Releases the port however the steps ended. If nothing was written yet (wrong chip, image too
   * large, cancelled early) the board is restarted into the program it had.
   */
  async dispose(): Promise<void> {
    const session = this.session;
    this.session = undefined;
    if (!session) return;
    const monitor = this.options.monitor;
    if (!this.#writeStarted && monitor && !session.lost) {
      // Nothing was written (the build an early connection waited for failed, a check refused the
      // image): the board goes back to what it ran with the monitor on its port, as it was before.
      try {
        await this.#restartWithMonitor(session, monitor);
        return;
      } catch {
        // The port went away meanwhile: there is nothing to hand back.
      }
    }
    if (!this.#writeStarted) await session.resetToApp().catch(() => {});
    await session.close();
  }
}

/** A flash job for the CLI to render (`renderSteps(job.steps, job, …)`, then `job.dispose()`). */
export function createFlashJob(options: FlashFirmwareOptions): FlashJob {
  return new FlashJob(options);
}

/**
 * Flashes a firmware start to finish without a UI (programmatic use, `mp dev`, tests).
 * @example
 * const result = await flashFirmware({ firmware: await firmwareFromSidecar(file), port: '/dev/ttyUSB0' });
 * console.log(`${result.writtenBytes} of ${result.imageBytes} bytes written`);
 */
export async function flashFirmware(
  options: FlashFirmwareOptions & { signal?: AbortSignal; observer?: StepObserver },
): Promise<FlashResult> {
  return (await runJob(createFlashJob(options), options)).result!;
}
