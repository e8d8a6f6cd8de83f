/**
 * What can go wrong between mp and a board, said so the user knows what to do next. Foreign errors
 * (serialport, esptool-js, DOMExceptions of the Web Serial adapter) are turned into MpErrors with
 * permanent codes here, in one place.
 */
import { CancelledError, describeError, isAbortError, MpError } from '../errors.ts';

/** Error codes and messages of the operating system and serialport found anywhere in a cause chain. */
function causeText(error: unknown): { codes: string[]; text: string } {
  const codes: string[] = [];
  const texts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current && depth < 6; depth++) {
    if (typeof current === 'object') {
      const code = (current as { code?: unknown }).code;
      if (typeof code === 'string') codes.push(code);
      const errno = (current as { errno?: unknown }).errno;
      if (typeof errno === 'number') codes.push(`errno:${errno}`);
      texts.push(describeError(current));
      current = (current as { cause?: unknown }).cause;
    } else {
      texts.push(String(current));
      break;
    }
  }
  return { codes, text: texts.join(' | ') };
}

function matches(error: unknown, codes: string[], pattern: RegExp): boolean {
  const found = causeText(error);
  return found.codes.some((c) => codes.includes(c)) || pattern.test(found.text);
}

export function isPortBusy(error: unknown): boolean {
  return matches(
    error,
    ['EBUSY', 'EAGAIN'],
    /EBUSY|resource busy|cannot lock port|temporarily unavailable|already open|access is denied/i,
  );
}

export function isPermissionDenied(error: unknown): boolean {
  return matches(error, ['EACCES', 'EPERM'], /EACCES|permission denied|operation not permitted/i);
}

export function isPortMissing(error: unknown): boolean {
  return matches(
    error,
    ['ENOENT', 'ENODEV', 'ENXIO'],
    /ENOENT|no such file|no such device|not found|does not exist|file not found/i,
  );
}

/** The USB device went away (unplugged, reset of a native-USB chip, cable glitch). */
export function isDeviceLost(error: unknown): boolean {
  return matches(
    error,
    ['EIO', 'ENXIO'],
    /device has been lost|disconnected|device not configured|EIO\b|input\/output error/i,
  );
}

/** Which group owns serial devices, for the permission hint. */
function serialGroupHint(path: string): string {
  if (process.platform === 'linux') {
    return `Add yourself to the group that owns ${path} and log in again: \`sudo usermod -aG dialout $USER\` (Debian, Ubuntu, Fedora) or \`sudo usermod -aG uucp $USER\` (Arch, openSUSE). Check the group with \`ls -l ${path}\`.`;
  }
  if (process.platform === 'darwin')
    return `Check that ${path} is readable by you (\`ls -l ${path}\`) and that no security tool blocks serial access.`;
  return `Check that your user may open ${path}.`;
}

/** Opening a serial port failed: busy, permission denied, missing, or something else. */
export function portOpenError(path: string, error: unknown): MpError {
  if (error instanceof MpError) return error;
  if (isAbortError(error)) return new CancelledError('opening the serial port');
  if (isPermissionDenied(error)) {
    return new MpError({
      code: 'PORT_PERMISSION_DENIED',
      message: `Permission denied opening serial port ${path}`,
      file: path,
      hint: serialGroupHint(path),
      cause: error,
    });
  }
  if (isPortBusy(error)) {
    return new MpError({
      code: 'PORT_BUSY',
      message: `Serial port ${path} is busy: another program has it open`,
      file: path,
      hint: `Close the other program using ${path} (a serial monitor, screen, minicom, Thonny, the Arduino IDE, another \`mp monitor\`), then run the command again. \`fuser ${path}\` or \`lsof ${path}\` names it.`,
      cause: error,
    });
  }
  if (isPortMissing(error)) {
    return new MpError({
      code: 'PORT_NOT_FOUND',
      message: `Serial port ${path} does not exist`,
      file: path,
      hint: 'Plug the board in (with a data cable, not a charge-only one) and run `mp ports` to see which ports there are; then pass one with --port.',
      cause: error,
    });
  }
  return new MpError({
    code: 'PORT_OPEN_FAILED',
    message: `Could not open serial port ${path}: ${causeText(error).text}`,
    file: path,
    hint: 'Check the board is plugged in and `mp ports` lists it, then run the command again.',
    cause: error,
  });
}

/**
 * What to do after the board went away. `writeBegan` (a flash knows it): whether writing had
 * started, so the device record marks what the rerun has to rewrite; false: nothing was written.
 */
export function deviceLostHint(writeBegan?: boolean): string {
  if (writeBegan === true) {
    return 'Plug it back in and run the same command again: mp remembers which sectors were being written and rewrites them, then checks the whole image.';
  }
  if (writeBegan === false) {
    return 'Plug it back in and run the same command again. Nothing had been written yet: the board still has the firmware it had.';
  }
  return 'Plug it back in and run the same command again.';
}

export function deviceLostError(path: string, during: string, error?: unknown): MpError {
  return new MpError({
    code: 'DEVICE_LOST',
    message: `The board on ${path} went away during ${during} (unplugged, or the USB connection dropped)`,
    file: path,
    hint: deviceLostHint(),
    cause: error,
  });
}

export function noAnswerError(path: string, error?: unknown): MpError {
  return new MpError({
    code: 'DEVICE_NO_ANSWER',
    message: `No answer from an ESP bootloader on ${path}`,
    file: path,
    hint: 'Hold the BOOT (GPIO0/FLASH) button, press and release RESET (EN/RST), release BOOT, then run the command again within a few seconds. Also check that nothing else holds the port and that --port names the board.',
    cause: error,
  });
}

/**
 * What the flasher stub's error codes mean. Both stubs answer the code first, then 0 (esptool's
 * util.py `FatalError.WithResult` reads them as 0xC000…0xFF00).
 */
const STUB_ERRORS: ReadonlyMap<number, string> = new Map([
  [0xc0, 'the data did not have the length announced'],
  [0xc1, 'the data arrived damaged'],
  [0xc2, 'the block size was wrong'],
  [0xc3, 'it got an invalid command'],
  [0xc4, 'a flash operation failed'],
  [0xc5, 'it could not unlock the flash'],
  [0xc6, 'it was not in flash mode'],
  [0xc7, 'the data would not decompress'],
  [0xc8, 'less data arrived than announced'],
  [0xc9, 'more data arrived than announced'],
  [0xca, 'programming the NAND flash failed'],
  [0xcb, 'erasing the NAND flash failed'],
  [0xff, 'it does not know the command'],
]);

/** What the ROM loaders' error codes mean: they answer 1, then the code (0x105…0x10F in util.py). */
const ROM_ERRORS: ReadonlyMap<number, string> = new Map([
  [0x05, 'it got an invalid message'],
  [0x06, 'it failed to act on the command'],
  [0x07, 'the data arrived damaged'],
  [0x08, 'writing the flash failed'],
  [0x09, 'reading the flash failed'],
  [0x0a, 'the flash read length was wrong'],
  [0x0b, 'the data would not decompress'],
  [0x0c, 'the decompressed data failed its Adler-32 check'],
  [0x0e, 'the RAM image had a wrong size'],
  [0x0f, 'the RAM image had a wrong address'],
]);

/** esptool-js's "Failed to <op> failed with status A,B", split; undefined for any other error. */
export function loaderStatus(error: unknown): { op: string; code: number; stub: boolean } | undefined {
  const m = /Failed to (.+?) failed with status (\d+),(\d+)/.exec(causeText(error).text);
  if (!m) return undefined;
  const [first, second] = [Number(m[2]), Number(m[3])];
  // A stub sends its code first (C0..FF, then 0); a ROM sends 1, then its code.
  return first === 1 ? { op: m[1]!, code: second, stub: false } : { op: m[1]!, code: first, stub: true };
}

/**
 * The board answered a write block with a status saying the block was damaged on the way: it was
 * not taken, and sending it again is safe. Any other answer, or none, may mean the block was taken.
 */
export function isDamagedBlockRefusal(error: unknown): boolean {
  const status = loaderStatus(error);
  if (!status) return false;
  return status.stub ? status.code === 0xc0 || status.code === 0xc1 : status.code === 0x07;
}

/** esptool-js's wording of a failed command, said so that someone can act on it. */
export function describeLoaderError(error: unknown): string {
  const status = loaderStatus(error);
  if (status) {
    const hex = `0x${status.code.toString(16).toUpperCase().padStart(2, '0')}`;
    const meaning = (status.stub ? STUB_ERRORS : ROM_ERRORS).get(status.code) ?? 'something went wrong';
    const who = status.stub ? 'the flasher stub' : 'the ROM bootloader';
    const block = /after seq (\d+)/.exec(status.op);
    const when = /^leave (compressed )?flash mode$/.test(status.op)
      ? 'at the end of the write'
      : block
        ? `at block ${block[1]}`
        : `when asked to ${status.op}`;
    const consequence =
      status.stub && [0xc0, 0xc7, 0xc8, 0xc9].includes(status.code)
        ? ': the flash does not hold what was sent (a block taken twice after its answer was lost does this)'
        : '';
    return `${who} reported ${when} that ${meaning} (error ${hex})${consequence}`;
  }
  const text = describeError(error);
  if (/Serial data stream stopped|No serial data received/.test(text)) return 'it did not answer in time';
  if (/invalid response|Invalid head of packet|Invalid SLIP escape/i.test(text)) {
    return 'its answers were garbled (noise on the line, or a speed it cannot keep up with)';
  }
  return text;
}

/**
 * Any failure while talking to the board after the port opened. Errors that are already MpErrors
 * pass through; a lost device wins over whatever timeout it caused.
 */
export function sessionError(path: string, during: string, error: unknown, deviceLost: boolean): MpError {
  if (error instanceof MpError) return error;
  if (isAbortError(error)) return new CancelledError(during);
  if (deviceLost || isDeviceLost(error)) return deviceLostError(path, during, error);
  return new MpError({
    code: 'DEVICE_PROTOCOL_ERROR',
    message: `The board on ${path} stopped answering properly during ${during}: ${describeLoaderError(error)}`,
    file: path,
    hint: 'Run the command again (mp checks what is on the flash and finishes the job). If it keeps failing, try a lower speed with --baud 115200 and a shorter or better USB cable.',
    cause: error,
  });
}
