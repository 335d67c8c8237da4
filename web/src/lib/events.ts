/**
 * Resume logic of the `events` channel: no event lost or repeated across reconnects and
 * reloads.
 *
 * The server streams events "after `fromSequence`", and one sequence number may carry several
 * events (told apart by `index`). The cursor remembers the last (sequence, index) delivered,
 * resumes after the sequence before it so a half-delivered sequence is replayed, and drops
 * whatever it has already delivered.
 */

import type { KeyValueStorage } from "./session";

export interface EventPosition {
  readonly sequence: bigint;
  /** Index within the sequence; `ALL_OF_SEQUENCE` means every event of it was seen. */
  readonly index: number;
}

export const ALL_OF_SEQUENCE = Number.MAX_SAFE_INTEGER;

export interface SequencedEvent {
  readonly sequence: string;
  readonly index?: number;
}

function parseSequence(text: string): bigint | null {
  return /^\d+$/.test(text) ? BigInt(text) : null;
}

function comparePositions(a: EventPosition, b: EventPosition): number {
  if (a.sequence !== b.sequence) {
    return a.sequence < b.sequence ? -1 : 1;
  }
  return a.index - b.index;
}

export class EventCursor {
  private last: EventPosition | null;
  private readonly persist: (position: EventPosition) => void;

  constructor(
    last: EventPosition | null,
    persist: (position: EventPosition) => void = () => undefined,
  ) {
    this.last = last;
    this.persist = persist;
  }

  /** Whether the cursor knows where to resume (from a stored position or a baseline). */
  hasPosition(): boolean {
    return this.last !== null;
  }

  position(): EventPosition | null {
    return this.last;
  }

  /**
   * Start from a state snapshot taken at `sequence` (e.g. the `positions` channel's first
   * message): events up to it are already reflected, so they are not announced. Ignored when
   * the cursor already has a position.
   */
  setBaseline(sequence: string): void {
    if (this.last !== null) {
      return;
    }
    const parsed = parseSequence(sequence);
    if (parsed === null) {
      return;
    }
    this.advance({ sequence: parsed, index: ALL_OF_SEQUENCE });
  }

  /** The `fromSequence` to subscribe with: after the sequence before the last one seen. */
  fromSequence(): string {
    if (this.last === null || this.last.sequence === 0n) {
      return "0";
    }
    return (this.last.sequence - 1n).toString();
  }

  /** Record an incoming event; true when it is new and must be handled, false if a repeat. */
  accept(event: SequencedEvent): boolean {
    const sequence = parseSequence(event.sequence);
    if (sequence === null) {
      return false;
    }
    const position: EventPosition = { sequence, index: event.index ?? 0 };
    if (this.last !== null && comparePositions(position, this.last) <= 0) {
      return false;
    }
    this.advance(position);
    return true;
  }

  private advance(position: EventPosition): void {
    this.last = position;
    this.persist(position);
  }
}

const KEY_PREFIX = "cfd.events.";

/** Load the cursor of one user from storage, saving every advance back to it. */
export function storedEventCursor(storage: KeyValueStorage | null, userId: string): EventCursor {
  const key = `${KEY_PREFIX}${userId}`;
  let last: EventPosition | null = null;
  const text = storage?.getItem(key) ?? null;
  if (text !== null) {
    const match = /^(\d+):(\d+)$/.exec(text);
    if (match !== null) {
      last = { sequence: BigInt(match[1]), index: Number(match[2]) };
    }
  }
  return new EventCursor(last, (position) => {
    storage?.setItem(key, `${position.sequence.toString()}:${position.index}`);
  });
}
