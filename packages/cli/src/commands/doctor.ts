/**
 * `mp doctor`: checks everything mp needs, each with what to do when it is missing.
 * Fails (exit 1) only on problems that stop a build or flash; warnings exit 0.
 */

import { constants } from 'node:fs';
import { access, mkdir, readdir, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { formatBytes, userCacheDir } from '@mp/core';
import { loadProject } from '../project.ts';
import { style } from '../ui/style.ts';
import type { CommandInput, CommandRun } from './table.ts';

interface Check {
  name: string;
  status: 'ok' | 'warn' | 'fail';
  detail: string;
  hint?: string;
}

const MIN_FREE_BYTES = 4 * 1024 ** 3; // an ESP-IDF image alone is about 3 GiB

export const run: CommandRun = async (input) => {
  const checks: Check[] = [];
  const add = (check: Check) => {
    checks.push(check);
    if (!input.json) printCheck(input, check);
  };
  add(checkNode());
  add(await checkDocker());
  for (const check of await checkSerialPorts()) add(check);
  for (const check of await checkDisk(input)) add(check);
  add(await checkProject(input));
  const failed = checks.filter((c) => c.status === 'fail').length;
  if (input.json) input.stdout.write(`${JSON.stringify({ type: 'result', ok: failed === 0, checks })}\n`);
  else input.stdout.write(failed ? `\n${failed} problem${failed > 1 ? 's' : ''} to fix.\n` : '\nAll good.\n');
  return failed ? 1 : 0;
};

function printCheck(input: CommandInput, check: Check): void {
  const mark =
    check.status === 'ok' ? style.green('✔') : check.status === 'warn' ? style.yellow('⚠') : style.red('✖');
  input.stdout.write(`${mark} ${check.name.padEnd(14)} ${check.detail}\n`);
  if (check.hint) input.stdout.write(`  ${' '.repeat(14)} ${style.cyan('→')} ${check.hint}\n`);
}

function checkNode(): Check {
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  const ok = major > 22 || (major === 22 && minor >= 18);
  return ok
    ? { name: 'Node.js', status: 'ok', detail: process.version }
    : {
        name: 'Node.js',
        status: 'fail',
        detail: `${process.version} (mp needs 22.18 or newer)`,
        hint: 'Install Node.js 24 LTS, or run scripts/setup in the mp repository.',
      };
}

async function checkDocker(): Promise<Check> {
  const { dockerEndpoint, dockerEngineVersion } = await import('@mp/core');
  try {
    const v = await dockerEngineVersion();
    return {
      name: 'Docker',
      status: 'ok',
      detail: `engine ${v.version} (API ${v.apiVersion}, ${v.os}/${v.arch}) at ${dockerEndpoint()}`,
    };
  } catch (error) {
    const e = error as { message: string; hint?: string };
    return {
      name: 'Docker',
      status: 'fail',
      detail: e.message.replace(/^The Docker engine is /, ''),
      hint: e.hint,
    };
  }
}

async function checkSerialPorts(): Promise<Check[]> {
  let ports: Awaited<ReturnType<typeof import('@mp/core').listBoardPorts>>;
  try {
    const { listBoardPorts } = await import('@mp/core');
    ports = await listBoardPorts();
  } catch (error) {
    return [
      {
        name: 'Serial ports',
        status: 'warn',
        detail: `could not list serial ports: ${(error as Error).message}`,
      },
    ];
  }
  if (ports.length === 0) {
    return [
      {
        name: 'Serial ports',
        status: 'warn',
        detail: 'no USB serial adapter found',
        hint: 'Plug the board in with a data (not charge-only) USB cable; `mp ports --all` lists every port.',
      },
    ];
  }
  const checks: Check[] = [];
  for (const port of ports) {
    const label = `${port.path} (${port.adapter?.name ?? 'USB serial'} ${port.usbId}${port.manufacturer ? `, ${port.manufacturer}` : ''})`;
    try {
      await access(port.path, constants.R_OK | constants.W_OK);
      checks.push({ name: 'Serial port', status: 'ok', detail: `${label}, you may open it` });
    } catch {
      checks.push({
        name: 'Serial port',
        status: 'fail',
        detail: `${label}, but this user may not open it`,
        hint:
          process.platform === 'linux'
            ? 'Add yourself to the group owning the port: `sudo usermod -aG dialout $USER` (Debian/Ubuntu/Fedora) or `uucp` (Arch), then log out and in.'
            : 'Check the port permissions or driver for this adapter.',
      });
    }
  }
  return checks;
}

async function checkDisk(input: CommandInput): Promise<Check[]> {
  const cache = userCacheDir();
  await mkdir(cache, { recursive: true }).catch(() => {});
  const checks: Check[] = [];
  const used = await directorySize(cache, 20_000).catch(() => undefined);
  checks.push({
    name: 'Cache',
    status: 'ok',
    detail: `${cache}${used ? `, ${formatBytes(used.bytes)}${used.partial ? '+' : ''}` : ''}`,
  });
  for (const [label, dir] of [
    ['Disk (cache)', cache],
    ['Disk (project)', input.cwd],
  ] as const) {
    try {
      const fs = await statfs(dir);
      const free = fs.bavail * fs.bsize;
      checks.push(
        free < MIN_FREE_BYTES
          ? {
              name: label,
              status: 'warn',
              detail: `${formatBytes(free)} free at ${dir}`,
              hint: 'Toolchain images and builds need several GiB; free some space (docker system prune, or clear the mp cache).',
            }
          : { name: label, status: 'ok', detail: `${formatBytes(free)} free` },
      );
    } catch (error) {
      checks.push({
        name: label,
        status: 'warn',
        detail: `cannot read free space of ${dir}: ${(error as Error).message}`,
      });
    }
  }
  return checks;
}

/** Size of a tree, giving up (partial) after `limit` entries so doctor stays quick on a big cache. */
async function directorySize(dir: string, limit: number): Promise<{ bytes: number; partial: boolean }> {
  let bytes = 0;
  let seen = 0;
  const stack = [dir];
  while (stack.length) {
    const current = stack.pop()!;
    for (const entry of await readdir(current, { withFileTypes: true }).catch(() => [])) {
      if (++seen > limit) return { bytes, partial: true };
      const path = join(current, entry.name);
      if (entry.isDirectory()) stack.push(path);
      else if (entry.isFile()) bytes += (await stat(path).catch(() => ({ size: 0 }))).size;
    }
  }
  return { bytes, partial: false };
}

async function checkProject(input: CommandInput): Promise<Check> {
  try {
    const project = await loadProject(input);
    await project.plugins.load('board', project.config.board);
    for (const lib of project.config.libraries) await project.plugins.load('library', lib.id);
    return {
      name: 'Project',
      status: 'ok',
      detail: `${project.config.projectDir}: board ${project.config.board}, libraries ${project.config.libraries.map((l) => l.id).join(', ') || 'none'}${project.config.configFile ? '' : ' (defaults, no config file)'}`,
    };
  } catch (error) {
    const e = error as { message: string; hint?: string };
    return { name: 'Project', status: 'fail', detail: e.message, hint: e.hint };
  }
}
