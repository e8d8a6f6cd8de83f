/**
 * The config's `targets`: named builds of one project, each its own board, variant, make
 * variables, libraries and MicroPython (config/load.ts resolves them over the top level). A target
 * builds as a project of its own whose config is the target's: `createBuild({ project:
 * targetProject(project, target) })` keys its lock, log and build folders by the target
 * (`.mp/build/target-<name>`) and names its export with the target's name.
 */
import type { ResolvedTarget } from '../config/types.ts';
import { MpError } from '../errors.ts';
import type { Project } from '../project.ts';
import { closest } from '../util/validate.ts';

/** The project as one target builds it: the target's keys in place of the top level's. */
export function targetProject(project: Project, target: ResolvedTarget): Project {
  const { name, board, variant, make, libraries, micropython, image } = target;
  return {
    ...project,
    config: { ...project.config, board, variant, make, libraries, micropython, image, target: name },
  };
}

/**
 * The targets to build: all of them (config order), or those named, in the order named (`a,b`
 * works as `a b`); an unknown name is a usage error with the closest known one.
 * @example selectTargets(project, ['d1mini', 'unix'])
 */
export function selectTargets(project: Project, names: string[] | 'all'): ResolvedTarget[] {
  const { targets, configFile } = project.config;
  if (targets.length === 0) {
    throw new MpError({
      code: 'TARGETS_NONE',
      message: `${configFile ? `The config ${configFile}` : 'This project'} has no \`targets\` to build`,
      file: configFile,
      hint: "Add them to mp.config, e.g. `targets: { d1mini: { board: 'esp8266-d1mini' }, 'd1mini-1m': { board: 'esp8266-d1mini', variant: 'FLASH_1M' } }` (README \"Many targets\"), or build one board with `mp build` alone.",
      exitCode: 2,
    });
  }
  if (names === 'all') return targets;
  const wanted = [
    ...new Set(
      names
        .flatMap((n) => n.split(','))
        .map((n) => n.trim())
        .filter(Boolean),
    ),
  ];
  const known = targets.map((t) => t.name);
  const unknown = wanted.filter((n) => !known.includes(n));
  if (unknown.length) {
    const near = closest(unknown[0]!, known);
    throw new MpError({
      code: 'TARGET_UNKNOWN',
      message: `No target named ${unknown.map((n) => `"${n}"`).join(', ')} in the config${near ? ` (did you mean "${near}"?)` : ''}`,
      file: configFile,
      hint: `The targets are: ${known.join(', ')}. \`mp targets\` lists them with their boards.`,
      exitCode: 2,
    });
  }
  return wanted.map((n) => targets.find((t) => t.name === n)!);
}

/** A target as `mp targets` lists it. */
export interface TargetListing {
  name: string;
  board: string;
  variant: string | null;
  micropython: string;
  libraries: string[];
  make: Record<string, string>;
  image: string | null;
}

export function listTargets(project: Project): TargetListing[] {
  return project.config.targets.map((t) => ({
    name: t.name,
    board: t.board,
    variant: t.variant ?? null,
    micropython: t.micropython.path ?? t.micropython.ref ?? 'newest stable',
    libraries: t.libraries.map((l) => (l.ref ? `${l.id}@${l.ref}` : l.path ? `${l.id} (${l.path})` : l.id)),
    make: t.make,
    image: t.image ?? null,
  }));
}
