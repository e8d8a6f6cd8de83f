/**
 * Word wrap measured without colour codes. The live step list redraws itself in place, so it has
 * to know how many terminal rows each of its lines takes: none may be wider than the terminal.
 */
import { stripVTControlCharacters } from 'node:util';

/** An escape sequence (no width) or one code point (one column: wide characters are rare here). */
const UNIT = /\x1b\[[0-9;?]*[A-Za-z]|[\s\S]/gu;

/** Breaks `text` into lines of at most `width` columns, at spaces where it can, inside words where it must. */
export function wrapText(text: string, width: number): string[] {
  return text.split('\n').flatMap((paragraph) => wrapParagraph(paragraph, Math.max(1, width)));
}

/** Tool output as one printable line: colours, cursor moves, tabs and carriage returns would break the count. */
export function printableLine(line: string): string {
  return stripVTControlCharacters(line)
    .replace(/\t/g, '  ')
    .replace(/[\x00-\x1f\x7f]/g, '')
    .trimEnd();
}

const columns = (unit: string) => (unit.length > 1 && unit.startsWith('\x1b') ? 0 : 1);

function wrapParagraph(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  let used = 0;
  for (const token of text.match(/\s+|\S+/g) ?? ['']) {
    const units = token.match(UNIT) ?? [];
    const size = units.reduce((sum, unit) => sum + columns(unit), 0);
    if (/^\s/.test(token)) {
      // Spaces are kept inside a line and dropped where it breaks.
      if (used + size <= width) {
        line += token;
        used += size;
      } else {
        lines.push(line.trimEnd());
        line = '';
        used = 0;
      }
      continue;
    }
    if (used + size <= width) {
      line += token;
      used += size;
      continue;
    }
    if (size <= width && used > 0) {
      lines.push(line.trimEnd());
      line = token;
      used = size;
      continue;
    }
    // A word longer than the line: cut it where the line is full.
    for (const unit of units) {
      const unitSize = columns(unit);
      if (used + unitSize > width) {
        lines.push(line);
        line = '';
        used = 0;
      }
      line += unit;
      used += unitSize;
    }
  }
  lines.push(line.trimEnd());
  return lines;
}
