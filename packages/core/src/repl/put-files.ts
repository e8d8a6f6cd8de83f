/**
 * Copies files to the board's filesystem over its raw REPL, only those whose content differs:
 * each file's sha256 is asked from the board first (hashlib, as on every ESP port and the unix
 * port), and a file is written, in chunks like mpremote's `fs cp`, only when it is missing or
 * different. This is how credentials (`mqtt_local.py`) reach the board without being frozen.
 */
import { readFile } from 'node:fs/promises';
import { basename, posix } from 'node:path';
import { MpError } from '../errors.ts';
import { sha256Hex } from '../util/hash.ts';
import type { RawRepl } from './raw-repl.ts';

export interface PutFile {
  /** Host file to copy. */
  from: string;
  /** Path on the board, e.g. `/mqtt_local.py`. */
  to: string;
}

export interface PutOutcome {
  file: PutFile;
  status: 'copied' | 'unchanged';
  bytes: number;
}

/** Bytes per `w(…)` call: mpremote's chunk; small enough for an ESP8266's heap. */
const CHUNK = 256;

/** `files` + `--to dir` → board paths (`/` by default: the root of the board's filesystem). */
export function putTargets(files: string[], toDir = '/'): PutFile[] {
  return files.map((from) => ({ from, to: posix.join(toDir, basename(from)) }));
}

/** A Python literal for `text` (paths: quotes and backslashes escaped, nothing else needed). */
function py(text: string): string {
  return `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** `b'…'` with every byte as `\xNN` unless it is plain printable ASCII. */
function bytesLiteral(data: Uint8Array): string {
  let out = "b'";
  for (const byte of data) {
    if (byte >= 0x20 && byte < 0x7f && byte !== 0x27 && byte !== 0x5c) out += String.fromCharCode(byte);
    else out += `\\x${byte.toString(16).padStart(2, '0')}`;
  }
  return `${out}'`;
}

const HASH_ON_BOARD = (path: string) => `
try:
    import hashlib, binascii
    _h = hashlib.sha256()
    with open(${py(path)}, 'rb') as _f:
        while True:
            _b = _f.read(512)
            if not _b:
                break
            _h.update(_b)
    print(binascii.hexlify(_h.digest()).decode())
except OSError:
    print('missing')
except ImportError:
    print('no-hashlib')
`;

const MAKE_DIRS = (dir: string) => `
import os
_p = ''
for _part in ${py(dir)}.split('/'):
    if not _part:
        continue
    _p = (_p + '/' + _part) if (_p or ${py(dir)}.startswith('/')) else _part
    try:
        os.mkdir(_p)
    except OSError:
        pass
`;

export async function putFiles(
  repl: RawRepl,
  files: PutFile[],
  onProgress: (file: PutFile, done: number, total: number) => void = () => {},
): Promise<PutOutcome[]> {
  const outcomes: PutOutcome[] = [];
  for (const file of files) {
    const data = await readFile(file.from).catch((error: NodeJS.ErrnoException) => {
      throw new MpError({
        code: 'PUT_FILE_MISSING',
        message: `${file.from} cannot be read (${error.code ?? error.message}), so it cannot be copied to ${file.to}`,
        file: file.from,
        hint: 'Check the path (relative to the project), or build first if it is an exported file such as mqtt_local.py.',
        exitCode: 2,
      });
    });
    const local = sha256Hex(data);
    const remote = (await repl.exec(HASH_ON_BOARD(file.to), `reading the hash of ${file.to}`)).stdout.trim();
    if (remote === local) {
      outcomes.push({ file, status: 'unchanged', bytes: data.length });
      continue;
    }
    const dir = posix.dirname(file.to);
    if (dir !== '/' && dir !== '.') await repl.exec(MAKE_DIRS(dir), `creating ${dir}`);
    // Written to a temporary name and renamed, so a cut connection never leaves half a file under
    // the real name (a half-written main.py would stop the board from booting its program).
    const temp = `${file.to}.mp-tmp`;
    await repl.exec(`_f = open(${py(temp)}, 'wb')\n_w = _f.write`, `opening ${file.to}`);
    onProgress(file, 0, data.length);
    for (let at = 0; at < data.length; at += CHUNK) {
      await repl.exec(`_w(${bytesLiteral(data.subarray(at, at + CHUNK))})`, `writing ${file.to}`);
      onProgress(file, Math.min(at + CHUNK, data.length), data.length);
    }
    await repl.exec(
      `_f.close()\nimport os\ntry:\n    os.remove(${py(file.to)})\nexcept OSError:\n    pass\nos.rename(${py(temp)}, ${py(file.to)})`,
      `finishing ${file.to}`,
    );
    const written = (await repl.exec(HASH_ON_BOARD(file.to), `checking ${file.to}`)).stdout.trim();
    if (written !== local && written !== 'no-hashlib') {
      throw new MpError({
        code: 'PUT_VERIFY_FAILED',
        message: `${file.to} on the board does not match ${file.from} after copying (sha256 ${written.slice(0, 12)}… instead of ${local.slice(0, 12)}…)`,
        file: file.from,
        hint: 'The serial link may be unreliable: try again, with a shorter cable or a lower --baud.',
      });
    }
    outcomes.push({ file, status: 'copied', bytes: data.length });
  }
  return outcomes;
}
