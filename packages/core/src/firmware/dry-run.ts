/**
 * `mp build --dry-run`: everything a build would do, the plan stage's draft as one object, after
 * the resolve, sources and manifest steps ran with `manifestOnly`. No Docker is asked and nothing
 * is written to the project; `--json` prints the {@link BuildPlan}.
 */
import { join } from 'node:path';
import type { FlashLayout } from '../plugin/types.ts';
import { exportNameFor, libraryRecord, type MicroPythonRecord, micropythonRecord } from './export.ts';
import { portMakeCommand } from './make.ts';
import { type BuildContext, need } from './pipeline.ts';
import type { Drafted, ToolchainChoice } from './plan.ts';
import type { ExportSidecar } from './sidecar.ts';
import { chooseSubmodules, knownSubmodules } from './submodules.ts';

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
  micropython: MicroPythonRecord;
  libraries: ExportSidecar['libraries'];
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
  return dryRun(need(ctx.drafted, 'manifest'), ctx.cacheDir, now);
}

export async function dryRun(drafted: Drafted, cacheDir: string, now = new Date()): Promise<BuildPlan> {
  const { board, target, micropython: mp, project } = drafted;
  const { config } = project;
  const listed = await knownSubmodules(drafted, cacheDir);
  return {
    board: {
      id: board.id,
      title: board.title,
      package: drafted.boardListing?.source ?? null,
      port: board.port,
      chip: board.chip ?? null,
      board: target.board ?? null,
      variant: target.variant ?? null,
    },
    micropython: micropythonRecord(mp),
    libraries: drafted.libraries.map(libraryRecord),
    modules: drafted.moduleHashes.map((m) => m.file),
    cModules: drafted.cModules.map((m) => ({ name: m.name, path: m.hostDir })),
    toolchain: drafted.toolchain,
    make: { command: portMakeCommand(board, target, config.jobs), variables: config.make, jobs: config.jobs },
    submodules: {
      fetch: listed ? chooseSubmodules(listed, config.submodules, config.make) : null,
      source: target.submodules
        ? 'board'
        : listed
          ? 'cache'
          : 'make submodules, asked in the container at build time',
      skip: config.submodules.skip,
      extra: config.submodules.fetch,
    },
    manifest: drafted.manifest,
    export: { dir: config.exportDir, firmware: join(config.exportDir, exportNameFor(drafted, now)) },
    flash: target.flash ?? null,
  };
}
