import { closest } from '@mp/core';

/** The command or flag the user most likely meant. */
export function closestWord(input: string, candidates: string[]): string | undefined {
  return closest(input, candidates);
}
