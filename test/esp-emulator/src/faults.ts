/** Fault injection: make chosen frames go missing, arrive damaged or late, or pull the USB cable. */

export type FaultAction = 'drop' | 'corrupt' | 'delay' | 'unplug';

export type FaultDirection = 'command' | 'response';

export interface FaultFrame {
  direction: FaultDirection;
  /** Command name (`FLASH_DEFL_DATA`, ...) of the request or of the request being answered. */
  command: string;
  /** 1-based count of frames with this command name and direction, since the device was created. */
  occurrence: number;
  /** Payload after the 8-byte header. */
  data: Uint8Array;
}

/** One rule; JSON-serialisable except for `when`. */
export interface FaultRule {
  action: FaultAction;
  /** Command name(s) the rule applies to; omitted: every command. */
  command?: string | string[];
  /** Fire on this occurrence of the command (1-based); omitted: the first frame that matches. */
  occurrence?: number;
  /** Host → device frames (`command`, default) or device → host replies (`response`). */
  direction?: FaultDirection;
  /** Extra condition, for tests. */
  when?: (frame: FaultFrame) => boolean;
  /** For `delay`: how long the frame is held back, in ms (default 500). */
  delayMs?: number;
  /** For `corrupt`: index of the byte to flip within the frame (negative: from the end; default -1). */
  byte?: number;
  /** How many times the rule fires at most (default 1). */
  times?: number;
  /** For `unplug`: the cable goes back in after this many ms (as a user would), in the same process. */
  replugAfterMs?: number;
}

export interface FiredFault {
  action: FaultAction;
  direction: FaultDirection;
  command: string;
  occurrence: number;
}

export class FaultInjector {
  readonly rules: FaultRule[] = [];
  /** How often each rule has fired, parallel to `rules` (persisted across processes by from-env). */
  readonly fired: number[] = [];
  /** Every firing, in order. */
  readonly log: FiredFault[];
  readonly #counts = new Map<string, number>();

  constructor(rules: FaultRule[] = [], fired: number[] = [], log: FiredFault[] = []) {
    this.log = log;
    for (const [i, rule] of rules.entries()) this.add(rule, fired[i] ?? 0);
  }

  add(rule: FaultRule, alreadyFired = 0): void {
    this.rules.push(rule);
    this.fired.push(alreadyFired);
  }

  clear(): void {
    this.rules.length = 0;
    this.fired.length = 0;
  }

  /** Counts the frame and returns the rule that fires for it, if any. */
  check(direction: FaultDirection, command: string, data: Uint8Array): FaultRule | undefined {
    const key = `${direction}:${command}`;
    const occurrence = (this.#counts.get(key) ?? 0) + 1;
    this.#counts.set(key, occurrence);
    const frame: FaultFrame = { direction, command, occurrence, data };
    for (const [i, rule] of this.rules.entries()) {
      if ((this.fired[i] ?? 0) >= (rule.times ?? 1)) continue;
      if ((rule.direction ?? 'command') !== direction) continue;
      if (rule.command !== undefined) {
        const names = Array.isArray(rule.command) ? rule.command : [rule.command];
        if (!names.includes(command)) continue;
      }
      if (rule.occurrence !== undefined && rule.occurrence !== occurrence) continue;
      if (rule.when && !rule.when(frame)) continue;
      this.fired[i] = (this.fired[i] ?? 0) + 1;
      this.log.push({ action: rule.action, direction, command, occurrence });
      return rule;
    }
    return undefined;
  }
}

/** A copy of `frame` with one byte inverted. */
export function corruptFrame(frame: Uint8Array, byte = -1): Uint8Array {
  const copy = Uint8Array.from(frame);
  if (copy.length === 0) return copy;
  const index = byte < 0 ? Math.max(0, copy.length + byte) : Math.min(byte, copy.length - 1);
  copy[index] = copy[index]! ^ 0xff;
  return copy;
}
