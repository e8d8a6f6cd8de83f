/**
 * `mp build --dry-run`: everything a build would do, read from a build context after its resolve,
 * sources and manifest steps ran with `manifestOnly`. No Docker is asked and nothing is written
 * to the project; `--json` prints the {@link BuildPlan} as one object.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FlashLayout } from '../plugin/types.ts';
import { portMakeCommand } from './make.ts';
import {
  type BuildContext,
  chooseSubmodules,
  exportNameFor,
  submoduleCacheFile,
  type ToolchainChoice,
  toolchainChoice,
} from './pipeline.ts';

export interface BuildPlan {
  board: {
    id: string;
    title: string;
    package: string | null;
    port: string;
    chip: string | null;
    /** MicroPython's BOARD and variant after the board's resolve hook and the project's options. */
    board: string | null;
    variant: string | null;
  };
  micropython: {
    ref: string | null;
    tag: string | null;
    version: string | null;
    sha: string | null;
    git: string | null;
    path: string | null;
  };
  libraries: Array<{
    id: string;
    git: string | null;
    ref: string | null;
    sha: string | null;
    path: string | null;
    frozen: string[];
  }>;
  /** Project module files frozen, relative to the modules folder. */
  modules: string[];
  /** User C modules: folder name and host path. */
  cModules: Array<{ name: string; path: string }>;
  toolchain: ToolchainChoice;
  make: {
    /** The port's make command line as it runs in the container. */
    command: string;
    /** The project's make variables (config `make` and `--make`). */
    variables: Record<string, string>;
    jobs: number;
  };
  submodules: {
    /** What will be fetched, when it is known without asking the port in a container. */
    fetch: string[] | null;
    /** Where that list comes from. */
    source: 'board' | 'cache' | 'make submodules, asked in the container at build time';
    skip: string[];
    extra: string[];
  };
  /** The generated FROZEN_MANIFEST. */
  manifest: string;
  export: { dir: string; firmware: string };
  flash: FlashLayout | null;
}

export async function buildPlan(ctx: BuildContext, now = new Date()): Promise<BuildPlan> {
  const board = ctx.board!;
  const target = ctx.target!;
  const mp = ctx.micropython!;
  const { config } = ctx.project;
  const choice = config.submodules;
  let listed: string[] | undefined = target.submodules;
  let source: BuildPlan['submodules']['source'] = 'board';
  if (!listed) {
    const cacheFile = submoduleCacheFile(ctx);
    listed = cacheFile
      ? await readFile(cacheFile, 'utf8').then(
          (text) => JSON.parse(text) as string[],
          () => undefined,
        )
      : undefined;
    source = listed ? 'cache' : 'make submodules, asked in the container at build time';
  }
  const v = mp.version;
  return {
    board: {
      id: board.id,
      title: board.title,
      package: ctx.boardListing?.source ?? null,
      port: board.port,
      chip: board.chip ?? null,
      board: target.board ?? null,
      variant: target.variant ?? null,
    },
    micropython: {
      ref: mp.requested ?? null,
      tag: mp.tag ?? null,
      version: v ? `${v.major}.${v.minor}.${v.patch}${v.prerelease ? '-preview' : ''}` : null,
      sha: mp.sha ?? null,
      git: mp.git?.url ?? null,
      path: mp.local ? mp.dir! : null,
    },
    libraries: ctx.libraries.map((l) => ({
      id: l.id,
      git: l.git?.url ?? null,
      ref: l.git?.ref.requested ?? null,
      sha: l.git?.ref.sha ?? l.local?.sha ?? null,
      path: l.local ? l.dir! : null,
      frozen: l.frozenFiles,
    })),
    modules: ctx.moduleHashes.map((m) => m.file),
    cModules: ctx.cModules.map((m) => ({ name: m.name, path: m.hostDir })),
    toolchain: toolchainChoice(ctx),
    make: { command: portMakeCommand(board, target, config.jobs), variables: config.make, jobs: config.jobs },
    submodules: {
      fetch: listed ? chooseSubmodules(listed, choice, config.make) : null,
      source,
      skip: choice.skip,
      extra: choice.fetch,
    },
    manifest: ctx.manifest!,
    export: { dir: config.exportDir, firmware: join(config.exportDir, exportNameFor(ctx, now)) },
    flash: target.flash ?? null,
  };
}
